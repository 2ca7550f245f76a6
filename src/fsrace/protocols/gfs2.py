"""gfs2 on a local (lock_nolock) mount, as in Debian's 6.1 (unchanged in 7.2.13): the inode
glock is its one lock against faults and reads.

gfs2_fallocate and gfs2_setattr hold the inode lock and the glock exclusive across the
punch and the truncate; gfs2_page_mkwrite takes the glock exclusive, gfs2_fault shared
around filemap_fault, and read(2) shared once a lockless pass over the cached pages
(IOCB_NOIO) came up short. gfs2 never took invalidate_lock (the 5.15 series converted
ext4, ext2, xfs, zonefs, f2fs, fuse, ceph and cifs), and gfs2_readahead takes no glock:
readahead(2) and fadvise(WILLNEED) may read a punched range's blocks back into the cache
after the punch dropped it and before it freed them."""

from ..kernel.locking import down_read, down_write, up_read, up_write
from .base import ExclusiveOverRemoval


class Gfs2_61(ExclusiveOverRemoval):
    name = "gfs2-6.1"
    summary = "gfs2 6.1: the inode glock over punch, faults, mkwrite, reads; none in readahead"
    era = "Linux 6.1-7.2.13 fs/gfs2/file.c gfs2_fallocate, gfs2_fault, gfs2_page_mkwrite"
    filesystem = "gfs2"
    # copy_file_range is the VFS's copy through the page cache, under the glock of
    # gfs2's read and write; the clone is refused by the file system itself.
    unsupported = frozenset()

    @staticmethod
    def lock_of(inode):
        return inode.i_gl

    # gfs2_page_mkwrite: LM_ST_EXCLUSIVE. gfs2_file_buffered_write: likewise, inside the
    # inode lock, after faulting the source in and with page faults disabled (as in 6.1),
    # dropping it to fault in again when a copy comes up short. gfs2_file_direct_read:
    # LM_ST_DEFERRED, which shares with neither SH nor EX holders; with one direct reader,
    # exclusive is the same.
    def page_mkwrite_begin(self, cur, k, inode):
        return down_write(cur, inode.i_gl)

    def page_mkwrite_end(self, cur, k, inode):
        return up_write(cur, inode.i_gl)

    write_copy_begin = dio_begin = page_mkwrite_begin
    write_copy_end = dio_end = page_mkwrite_end

    # gfs2_fault: LM_ST_SHARED around filemap_fault; gfs2_file_read_iter: likewise once
    # the cached pages did not suffice.
    def fault_begin(self, cur, k, inode):
        return down_read(cur, inode.i_gl)

    def fault_end(self, cur, k, inode):
        return up_read(cur, inode.i_gl)

    read_miss_begin = fault_begin
    read_miss_end = fault_end


class Gfs2InvalidateLock(Gfs2_61):
    """The fix: gfs2_fallocate takes the mapping's invalidate_lock exclusive around
    __gfs2_punch_hole, inside the glock, as the 5.15 series did for ext4 and XFS. The
    generic code already takes it shared where pages are added (filemap_fault,
    filemap_read, page_cache_ra_unbounded), inside gfs2's glock. The truncate needs none:
    it sets i_size before it drops the cache, and readahead stops at i_size."""

    name = "gfs2-invalidate-lock"
    summary = "gfs2 with invalidate_lock exclusive around the punch: readahead waits for it"
    era = "fix tried on 6.1 (docs/findings/gfs2-punch-readahead.diff), not merged"

    def remove_blocks_begin(self, cur, k, inode, op):
        yield from Gfs2_61.remove_blocks_begin(self, cur, k, inode, op)
        if op == "punch":
            yield from down_write(cur, inode.invalidate_lock)

    def remove_blocks_end(self, cur, k, inode, op):
        if op == "punch":
            yield from up_write(cur, inode.invalidate_lock)
        yield from Gfs2_61.remove_blocks_end(self, cur, k, inode, op)

    def readahead_begin(self, cur, k, inode):
        return down_read(cur, inode.invalidate_lock)

    def readahead_end(self, cur, k, inode):
        return up_read(cur, inode.invalidate_lock)

    def fault_miss_begin(self, cur, k, inode):
        return down_read(cur, inode.invalidate_lock)

    def fault_miss_end(self, cur, k, inode):
        return up_read(cur, inode.invalidate_lock)

    def read_miss_begin(self, cur, k, inode):
        yield from Gfs2_61.read_miss_begin(self, cur, k, inode)
        yield from down_read(cur, inode.invalidate_lock)

    def read_miss_end(self, cur, k, inode):
        yield from up_read(cur, inode.invalidate_lock)
        yield from Gfs2_61.read_miss_end(self, cur, k, inode)
