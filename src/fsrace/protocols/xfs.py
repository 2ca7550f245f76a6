"""XFS, before and after its MMAPLOCK.

xfs-2012 is XFS in Linux 3.4: the punch (xfs_free_file_space) runs under the IO lock and
flushes and invalidates from the punch start to EOF; read(2) and direct I/O take the IO
lock shared, so they cannot refill the cache behind the punch, but faults take nothing.

xfs-mmaplock is XFS 4.1 (653c60b633a9 "xfs: introduce mmap/truncate lock", de0e8c20ba3a,
075a924d45cc, e8e9ad42c1f1): i_mmaplock shared over ->fault and ->page_mkwrite, exclusive
with the IO lock over truncate, punch and the other fallocate modes. Standalone readahead
(fadvise/madvise WILLNEED) took neither lock until xfs_file_fadvise (2019).

The other fallocate modes run the model's ext4 code under XFS's locks (fsrace.kernel.xfs
says what is shared)."""

from ..kernel.locking import down_read, down_write, up_read, up_write
from .iolock_mkwrite import XfsIolock


class Xfs2012(XfsIolock):
    name = "xfs-2012"
    summary = "XFS 3.4: punch under the IO lock, flush+invalidate to EOF; faults take nothing"
    era = "Linux 3.4.2 xfs_free_file_space, xfs_file_aio_read (IOLOCK_SHARED)"
    filesystem = "xfs"  # its own punch, xfs_free_file_space; the rest is ext4's model


class XfsMmaplock(Xfs2012):
    name = "xfs-mmaplock"
    summary = "XFS 4.1 MMAPLOCK: shared in faults and page_mkwrite, exclusive in punch"
    era = "Linux 4.1: 653c60b633a9, de0e8c20ba3a, 075a924d45cc, e8e9ad42c1f1"

    def remove_blocks_begin(self, cur, k, inode, op):
        yield from XfsIolock.remove_blocks_begin(self, cur, k, inode, op)
        yield from down_write(cur, inode.i_mmaplock)

    def remove_blocks_end(self, cur, k, inode, op):
        yield from up_write(cur, inode.i_mmaplock)
        yield from XfsIolock.remove_blocks_end(self, cur, k, inode, op)

    # xfs_filemap_fault and xfs_vm_page_mkwrite (xfs_filemap_page_mkwrite)
    def fault_begin(self, cur, k, inode):
        return down_read(cur, inode.i_mmaplock)

    def fault_end(self, cur, k, inode):
        return up_read(cur, inode.i_mmaplock)

    page_mkwrite_begin = fault_begin
    page_mkwrite_end = fault_end

