"""The FUSE client with the writeback cache (fs/fuse/file.c), as in Debian's 6.1 to 7.3,
and the fix in the spirit of 5.15's invalidate_lock.

fuse-wb: the punch and the zero range (fuse_file_fallocate) hold the inode lock across
writeback, FUSE_FALLOCATE and truncate_pagecache_range, the copy (__fuse_copy_file_range)
the destination's across writeback, FUSE_COPY_FILE_RANGE and truncate_inode_pages_range;
invalidate_lock only on DAX; fuse_page_mkwrite takes nothing, so a store can dirty a
page of the range while the request is out and a writeback sends it to the server after
it punched (docs/findings/fuse-writeback-mmap.md).

fuse-fallocate-locked: filemap_invalidate_lock exclusive across the punch's, zero
range's and copy's writeback, request and page-cache truncate (what fuse_file_fallocate
does on DAX, for every file), shared in fuse_page_mkwrite and wherever pages are added;
the page still dirtied by the fault code after ->page_mkwrite has dropped the lock. On
7.3-rc7 (docs/findings/fuse-writeback-mmap-7.3-locked.diff) it left a few stale rounds.

fuse-invalidate-lock: the same, and fuse_page_mkwrite marks the page dirty itself, under
the lock, as block_page_mkwrite does (docs/findings/fuse-writeback-mmap-7.3.diff)."""

from .base import LocksOwnInode
from .invalidate_lock import InvalidateLock

# The model's FUSE client has the punch, zero range, copy, truncate (fuse_do_setattr,
# which holds writeback back with FUSE_NOWRITE and trims the writes queued meanwhile),
# faults, writeback and buffered I/O; its direct I/O is not modelled, and its
# page_mkwrite is not block_page_mkwrite.
FUSE_LACKS = frozenset({"direct I/O", "block_page_mkwrite", "shared blocks"})


class FuseWriteback(LocksOwnInode):
    name = "fuse-wb"
    summary = "FUSE writeback cache: punch = inode lock, writeback, FUSE_FALLOCATE, truncate"
    era = ("Linux 6.1-7.3 fs/fuse/file.c fuse_file_fallocate, __fuse_copy_file_range, "
           "fuse_page_mkwrite (FUSE_WRITEBACK_CACHE)")
    filesystem = "fuse"
    unsupported = FUSE_LACKS


class FuseFallocateLocked(InvalidateLock):
    name = "fuse-fallocate-locked"
    summary = "FUSE with invalidate_lock across writeback+request+truncate; fault dirties later"
    era = ("fix tried on 7.3-rc7, incomplete: fuse_file_fallocate's DAX invalidate_lock for "
           "every file, over the copy too, shared in fuse_page_mkwrite")
    filesystem = "fuse"
    unsupported = FUSE_LACKS
    mkwrite_dirties = False


class FuseInvalidateLock(FuseFallocateLocked):
    name = "fuse-invalidate-lock"
    summary = "fuse-fallocate-locked, and fuse_page_mkwrite dirties the page under the lock"
    era = ("proposed fix (not merged): fuse-fallocate-locked, and fuse_page_mkwrite marks "
           "the folio dirty before it drops invalidate_lock")
    mkwrite_dirties = True
