"""The NFS v4.2 client's hole punch (nfs42_proc_deallocate), as in Debian's 6.1, 6.12 and
7.2.13 kernels, and the fix in the spirit of 5.15's invalidate_lock.

nfs-4.2: the punch holds the inode lock across flush, DEALLOCATE RPC and
truncate_pagecache_range; nfs_vm_page_mkwrite takes nothing, so a store can dirty the
cached page while the RPC is in flight and any writeback sends it back to the server
after the punch (../shared/reference/nfs-deallocate-race.md); 7.x's zero range
(nfs42_proc_zero_range) takes the same steps with a ZERO_RANGE RPC. A clone
(nfs42_remap_file_range) has the same shape: inode lock, flush, CLONE RPC, then the
destination's pages are dropped; so has a truncate (nfs_setattr: flush, SETATTR RPC,
then nfs_vmtruncate), and a copy offloaded to the server (nfs42_proc_copy: flush, COPY
RPC, then invalidate_inode_pages2_range, whose launder writes a page dirtied meanwhile
back over the copy).

nfs-invalidate-lock: filemap_invalidate_lock exclusive across flush, RPC and page-cache
truncate (of a punch, a zero range, a clone, a copy and a truncate), shared in
nfs_vm_page_mkwrite and wherever the client adds pages to the cache. The same locks in
the real client (docs/findings/nfs-invalidate-lock.diff, built as modules for 6.1.192)
made the reproducers of all four clean there; the model's verdict is in
docs/verdicts.md."""

from .base import LocksOwnInode
from .invalidate_lock import InvalidateLock

# The model's NFS client has the punch (DEALLOCATE), 7.x's zero range (ZERO_RANGE), the
# clone, the copy (COPY), truncate and buffered I/O; its collapse, insert and direct I/O
# would run ext4's code under NFS's locks, which stands for nothing, and its page_mkwrite
# is not block_page_mkwrite.
NFS_LACKS = frozenset({"collapse range", "insert range", "direct I/O",
                       "block_page_mkwrite", "shared blocks"})


class Nfs42(LocksOwnInode):
    name = "nfs-4.2"
    summary = "NFS v4.2 client: punch = inode lock, flush, DEALLOCATE, truncate; mkwrite free"
    era = ("Linux 6.1-7.2 fs/nfs/nfs42proc.c nfs42_proc_deallocate, nfs42_proc_copy, "
           "nfs42_proc_zero_range (7.x), "
           "fs/nfs/inode.c nfs_setattr, nfs_vm_page_mkwrite")
    filesystem = "nfs"
    unsupported = NFS_LACKS


class NfsInvalidateLock(InvalidateLock):
    name = "nfs-invalidate-lock"
    summary = "NFS client, invalidate_lock across flush+RPC+cache truncate, shared in mkwrite"
    era = ("proposed fix (not merged): 5.15's invalidate_lock applied to nfs42_proc_deallocate, "
           "nfs42_proc_zero_range, nfs42_remap_file_range, nfs42_proc_copy and nfs_setattr")
    filesystem = "nfs"
    unsupported = NFS_LACKS
