"""The modelled kernel: disk and allocator, inodes and block maps, page cache, processes,
faults, writeback and the syscalls that take blocks away from a file.

Lock order (each protocol adds its own lock; see fsrace.protocols):

  2012 (ext4 3.4):       i_mutex -> mmap_sem -> page lock -> i_data_sem
                         (punch took no i_mutex; faults take mmap_sem and the page lock)
  4.1 XFS MMAPLOCK:      IOLOCK -> mmap_sem -> MMAPLOCK -> page lock -> ILOCK
                         (punch, truncate: IOLOCK and MMAPLOCK exclusive; ->fault and
                         page_mkwrite: MMAPLOCK shared; write(2) faults in its source
                         under the IOLOCK, hence IOLOCK before mmap_sem)
  4.5 ext4 i_mmap_sem:   i_mutex -> mmap_sem -> i_mmap_sem -> page lock -> i_data_sem
                         (as XFS's, with i_mutex for the IOLOCK)
  5.15 invalidate_lock:  i_rwsem -> mmap_lock -> invalidate_lock -> page lock -> i_data_sem
                         (punch, truncate: i_rwsem, invalidate_lock exclusive; faults that
                         add pages and page_mkwrite: invalidate_lock shared)

Units: a page holds PAGE_SIZE cells ("bytes"); a block holds PAGE_SIZE / blocks_per_page
cells. A store changes one cell, so stale data left around it stays visible.
"""
