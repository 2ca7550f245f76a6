"""mapping->invalidate_lock (Linux 5.15, commit 730633f0b7f9 and the ext4 conversion
d4f5258eae7b): an rwsem held exclusive across a punch's or truncate's flush, page cache
invalidation and block removal, and shared wherever pages are added to the cache (fault
miss, read(2) miss, readahead) and in page_mkwrite."""

from ..kernel.locking import down_read, up_read
from .base import ExclusiveOverRemoval


class InvalidateLock(ExclusiveOverRemoval):
    name = "invalidate-lock"
    summary = "5.15 invalidate_lock: exclusive in punch/truncate, shared in faults, mkwrite, reads"
    era = "Linux 5.15: 730633f0b7f9, d4f5258eae7b (ext4_fallocate: inode_lock, invalidate_lock)"

    @staticmethod
    def lock_of(inode):
        return inode.invalidate_lock

    # Shared wherever pages are added to the cache, and in page_mkwrite.
    def page_mkwrite_begin(self, cur, k, inode):
        return down_read(cur, inode.invalidate_lock)

    def page_mkwrite_end(self, cur, k, inode):
        return up_read(cur, inode.invalidate_lock)

    fault_miss_begin = read_miss_begin = readahead_begin = page_mkwrite_begin
    fault_miss_end = read_miss_end = readahead_end = page_mkwrite_end
