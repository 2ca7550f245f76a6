"""ext4 in Linux 4.5, ea3d7209ca01 "ext4: fix races between page faults and hole punching"
(Jan Kara): EXT4_I(inode)->i_mmap_sem, shared over ->fault and ->page_mkwrite, exclusive
(inside i_mutex) over punch, truncate and the other block-removing operations. read(2) and
readahead are not covered; that waited for invalidate_lock in 5.15."""

from ..kernel.locking import down_read, up_read
from .base import ExclusiveOverRemoval


class Ext4IMmapSem(ExclusiveOverRemoval):
    name = "ext4-i_mmap_sem"
    summary = "ext4 4.5 i_mmap_sem: shared in faults and page_mkwrite, exclusive in punch"
    era = "Linux 4.5: ea3d7209ca01 (ext4), after XFS 4.1's MMAPLOCK (653c60b633a9)"

    @staticmethod
    def lock_of(inode):
        return inode.i_mmap_sem

    # ext4_filemap_fault and ext4_page_mkwrite
    def fault_begin(self, cur, k, inode):
        return down_read(cur, inode.i_mmap_sem)

    def fault_end(self, cur, k, inode):
        return up_read(cur, inode.i_mmap_sem)

    page_mkwrite_begin = fault_begin
    page_mkwrite_end = fault_end
