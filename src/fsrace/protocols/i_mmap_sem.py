"""ext4 in Linux 4.5, ea3d7209ca01 "ext4: fix races between page faults and hole punching"
(Jan Kara): EXT4_I(inode)->i_mmap_sem, shared over ->fault and ->page_mkwrite, exclusive
(inside i_mutex) over punch, truncate and the other block-removing operations. read(2) and
readahead are not covered; that waited for invalidate_lock in 5.15."""

from ..kernel.locking import down_read, down_write, mutex_lock, mutex_unlock, up_read, up_write
from .base import Protocol


class Ext4IMmapSem(Protocol):
    name = "ext4-i_mmap_sem"
    summary = "ext4 4.5 i_mmap_sem: shared in faults and page_mkwrite, exclusive in punch"
    era = "Linux 4.5: ea3d7209ca01 (ext4), after XFS 4.1's MMAPLOCK (653c60b633a9)"

    def remove_blocks_begin(self, cur, k, inode, op):
        if op == "punch":
            yield from mutex_lock(cur, inode.i_mutex)
        yield from down_write(cur, inode.i_mmap_sem)

    def remove_blocks_end(self, cur, k, inode, op):
        yield from up_write(cur, inode.i_mmap_sem)
        if op == "punch":
            yield from mutex_unlock(cur, inode.i_mutex)

    # ext4_filemap_fault and ext4_page_mkwrite
    def fault_begin(self, cur, k, inode):
        return down_read(cur, inode.i_mmap_sem)

    def fault_end(self, cur, k, inode):
        return up_read(cur, inode.i_mmap_sem)

    page_mkwrite_begin = fault_begin
    page_mkwrite_end = fault_end
