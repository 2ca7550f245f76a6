"""The SMB client as in Debian's 6.1 (its copy_file_range, cifs_file_copychunk_range, and
its truncate), the fix tried on that kernel, and the fixes the model says it needs.

smb-6.1: the copy holds only the inode lock across its flushes, the drop of the
destination's pages and the server's copy; punch, zero, collapse and insert range hold
invalidate_lock from their flush to the end; the truncate holds only the inode lock (the
VFS's); cifs_page_mkwrite takes nothing.

smb-invalidate-lock: docs/findings/smb-copy-mmap.diff, built and run on 6.1: the
destination's invalidate_lock exclusive across the copy, shared in cifs_page_mkwrite
(and, in 6.1's generic code, wherever a fault or read adds a page). The patch leaves the
truncate as it was: under the inode lock alone. On the real kernel it closed the
reproducer's window but fsrace stress still flagged it.

smb-mkwrite-recheck: the same, and cifs_page_mkwrite returns VM_FAULT_NOPAGE for a page
truncated while it waited (page->mapping rechecked under the page lock, as
nfs_vm_page_mkwrite and block_page_mkwrite do): docs/findings/smb-copy-mmap-recheck.diff,
which passed fsrace stress as a module on 6.1.

smb-setattr-locked: the same, and cifs_setattr_nounix holds invalidate_lock exclusive
across a resize, from its flush to cifs_setsize: docs/findings/smb-truncate-mmap.diff on
top of the recheck patch, which made fstests' truncate helper clean on 6.1.192."""

from ..kernel.locking import down_write, up_write
from .base import LocksOwnInode, Protocol
from .invalidate_lock import InvalidateLock, SharedWhereAdded

# The model's SMB client has the copy, punch, zero, collapse and insert range, the
# truncate, faults, writeback and buffered reads; its direct I/O is not modelled.
SMB_LACKS = frozenset({"clone range", "direct I/O", "block_page_mkwrite", "shared blocks"})


class SmbClient(Protocol):
    """What every SMB protocol here runs: the model's 6.1 client and its copy, and
    invalidate_lock exclusive over the operations in `invalidate_locked`, from their flush
    to the end, inside the inode lock (which the punch and the copy take here, the zero,
    collapse and insert range themselves, and the truncate from do_truncate)."""

    filesystem = "cifs"
    unsupported = SMB_LACKS
    mkwrite_rechecks_mapping = False
    invalidate_locked: tuple[str, ...] = ()

    def remove_blocks_begin(self, cur, k, inode, op):
        yield from LocksOwnInode.remove_blocks_begin(self, cur, k, inode, op)
        if op in self.invalidate_locked:
            yield from down_write(cur, inode.invalidate_lock)

    def remove_blocks_end(self, cur, k, inode, op):
        if op in self.invalidate_locked:
            yield from up_write(cur, inode.invalidate_lock)
        yield from LocksOwnInode.remove_blocks_end(self, cur, k, inode, op)


# 6.1's generic code takes invalidate_lock shared where it adds a page (SharedWhereAdded);
# cifs_page_mkwrite takes nothing.
class Smb61(SmbClient, SharedWhereAdded):
    name = "smb-6.1"
    summary = "SMB client 6.1: copy = inode lock, flush, drop dest pages, server copy; mkwrite free"
    era = ("Linux 6.1.192 fs/smb/client cifs_file_copychunk_range, smb3_punch_hole, "
           "smb3_zero_range, smb3_collapse_range, smb3_insert_range, cifs_page_mkwrite")
    # smb3_punch_hole, smb3_zero_range, smb3_collapse_range and smb3_insert_range.
    invalidate_locked: tuple[str, ...] = ("punch", "zero", "collapse", "insert")


class SmbInvalidateLock(SmbClient, InvalidateLock):
    name = "smb-invalidate-lock"
    summary = "SMB client with invalidate_lock across the copy, shared in cifs_page_mkwrite"
    era = "fix tried on 6.1 (docs/findings/smb-copy-mmap.diff), not merged"
    # The copy too; the truncate still holds only the inode lock do_truncate took.
    invalidate_locked: tuple[str, ...] = (*Smb61.invalidate_locked, "copy")


class SmbMkwriteRecheck(SmbInvalidateLock):
    name = "smb-mkwrite-recheck"
    summary = "smb-invalidate-lock, and cifs_page_mkwrite rechecks page->mapping"
    era = "proposed fix (not merged): docs/findings/smb-copy-mmap-recheck.diff, run on 6.1"
    mkwrite_rechecks_mapping = True


class SmbSetattrLocked(SmbMkwriteRecheck):
    name = "smb-setattr-locked"
    summary = "smb-mkwrite-recheck, and cifs_setattr_nounix holds invalidate_lock over a resize"
    era = "proposed fix (not merged): docs/findings/smb-truncate-mmap.diff, run on 6.1.192"
    # The truncate too, from its flush to the page-cache truncate after SET_INFO.
    invalidate_locked: tuple[str, ...] = (*SmbInvalidateLock.invalidate_locked, "truncate")
