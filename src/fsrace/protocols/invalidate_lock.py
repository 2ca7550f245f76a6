"""mapping->invalidate_lock (Linux 5.15, commit 730633f0b7f9 and the ext4 conversion
d4f5258eae7b): an rwsem held exclusive across a punch's or truncate's flush, page cache
invalidation and block removal, and shared wherever pages are added to the cache (fault
miss, read(2) miss, readahead) and in page_mkwrite."""

from ..kernel.locking import down_read, up_read
from .base import ExclusiveOverRemoval, Protocol


class SharedWhereAdded(Protocol):
    """mm/filemap.c and mm/readahead.c since 5.15, whatever the file system: invalidate_lock
    taken shared wherever a page is added to the cache (filemap_fault on a miss,
    filemap_create_folio, page_cache_ra_unbounded)."""

    def fault_miss_begin(self, cur, k, inode):
        return down_read(cur, inode.invalidate_lock)

    def fault_miss_end(self, cur, k, inode):
        return up_read(cur, inode.invalidate_lock)

    read_miss_begin = readahead_begin = fault_miss_begin
    read_miss_end = readahead_end = fault_miss_end


class InvalidateLock(ExclusiveOverRemoval, SharedWhereAdded):
    name = "invalidate-lock"
    summary = "5.15 invalidate_lock: exclusive in punch/truncate, shared in faults, mkwrite, reads"
    era = "Linux 5.15: 730633f0b7f9, d4f5258eae7b (ext4_fallocate: inode_lock, invalidate_lock)"

    # copy_file_range within one file is the VFS's copy through the page cache on the
    # file systems it stands for (ext4, f2fs); none of them has a clone.
    unsupported = frozenset({"clone range", "shared blocks"})

    @staticmethod
    def lock_of(inode):
        return inode.invalidate_lock

    # Shared in page_mkwrite too, besides where pages are added.
    page_mkwrite_begin = SharedWhereAdded.fault_miss_begin
    page_mkwrite_end = SharedWhereAdded.fault_miss_end


class XfsInvalidateLock(InvalidateLock):
    """XFS since 5.15: its MMAPLOCK is the mapping's invalidate_lock (2433480a7e1d), and its
    IO lock the inode's i_rwsem, so the locks are those above; what differs is whose code
    runs under them: XFS's punch (xfs_free_file_space) and its reflink remap
    (xfs_file_remap_range, 4.9 on), which copy_file_range within a file reaches too."""

    name = "xfs-5.15"
    summary = "XFS since 5.15: MMAPLOCK is invalidate_lock, over punch, truncate and reflink"
    era = "Linux 5.15: 2433480a7e1d (xfs: Convert to use invalidate_lock); reflink 4.9"
    filesystem = "xfs"
    unsupported = frozenset({"shared blocks"})  # the model's remap copies the blocks
