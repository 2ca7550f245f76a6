"""The 9p client's truncate (v9fs_vfs_setattr_dotl), as in Debian's 6.1, and the fix in
the spirit of 5.15's invalidate_lock.

9p-6.1: the truncate comes with the inode lock from the VFS and holds nothing else across
its flush, Tsetattr and truncate_setsize; v9fs_vm_page_mkwrite takes nothing, so a store
that dirties a page after the flush, written back before truncate_setsize, puts the page
back past the server's new end of file (docs/findings/9p-truncate-mmap.md).

9p-invalidate-lock: filemap_invalidate_lock exclusive across the truncate's flush,
Tsetattr and truncate_setsize, shared in v9fs_vm_page_mkwrite and wherever the client adds
pages to the cache, as nfs-invalidate-lock does for the NFS client, and
v9fs_vm_page_mkwrite marks the page dirty before it drops the lock (as
fuse-invalidate-lock: with the fault code dirtying it after, the truncate's flush can
pass the page clean and its writeback still go out in the window). On Debian's 6.1.192
(docs/findings/9p-truncate-mmap-6.1.diff) it made the finding's reproducer clean."""

from .base import LocksOwnInode
from .invalidate_lock import InvalidateLock

# The model's 9p client has the truncate, faults, writeback, buffered I/O and the VFS's
# copy through the page cache; 9p has no fallocate, clone or copy of its own (the model
# refuses them, as the kernel does), its direct I/O is not modelled, and its page_mkwrite
# is not block_page_mkwrite.
V9FS_LACKS = frozenset({"direct I/O", "block_page_mkwrite", "shared blocks"})


class V9fs61(LocksOwnInode):
    name = "9p-6.1"
    summary = "9p client: truncate = flush, Tsetattr, truncate_setsize; mkwrite free"
    era = "Linux 6.1 fs/9p/vfs_inode_dotl.c v9fs_vfs_setattr_dotl, vfs_file.c v9fs_vm_page_mkwrite"
    filesystem = "v9fs"
    unsupported = V9FS_LACKS


class V9fsInvalidateLock(InvalidateLock):
    name = "9p-invalidate-lock"
    summary = "9p client, invalidate_lock across flush+Tsetattr+truncate; mkwrite dirties under it"
    era = ("proposed fix (not merged): 5.15's invalidate_lock applied to "
           "v9fs_vfs_setattr_dotl, shared in v9fs_vm_page_mkwrite, which marks the folio "
           "dirty before it drops the lock")
    filesystem = "v9fs"
    unsupported = V9FS_LACKS
    mkwrite_dirties = True
