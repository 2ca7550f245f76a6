"""ocfs2's reflink as in Debian's 6.1 (the same in 6.12 and 7.2.13), and the fix tried on
6.1.

ocfs2-6.1: ocfs2_remap_file_range holds i_rwsem throughout (the cluster locks are no-ops
on a local mount) but takes ip_alloc_sem, the one lock ocfs2_page_mkwrite shares with it,
only after generic_remap_file_range_prep has flushed both ranges.

ocfs2-invalidate-lock: docs/findings/ocfs2-reflink-mmap.diff, built and run on 6.1: both
files' invalidate_lock exclusive from ocfs2_reflink_inodes_lock to the unlock, shared in
ocfs2_page_mkwrite (and, in 6.1's generic code, wherever a fault or read adds a page), as
XFS does."""

from .base import LocksOwnInode, Protocol
from .invalidate_lock import InvalidateLock

# The model's ocfs2 has the reflink (and copy_file_range, which the VFS hands to the same
# ->remap_file_range), faults with copy on write, writeback and buffered reads; its punch,
# truncate, other fallocate modes, direct I/O and write(2) are not modelled.
OCFS2_LACKS = frozenset({"punch hole", "truncate", "zero range", "collapse range",
                         "insert range", "direct I/O", "block_page_mkwrite"})


class Ocfs2(Protocol):
    """What every ocfs2 protocol here runs: the model's 6.1 ocfs2 and its reflink."""

    filesystem = "ocfs2"
    unsupported = OCFS2_LACKS


class Ocfs2_61(Ocfs2, LocksOwnInode):
    name = "ocfs2-6.1"
    summary = "ocfs2 6.1: reflink flushes before ip_alloc_sem, the only lock mkwrite shares"
    era = "Linux 6.1-7.2.13 fs/ocfs2/file.c ocfs2_remap_file_range, mmap.c ocfs2_page_mkwrite"


class Ocfs2InvalidateLock(Ocfs2, InvalidateLock):
    name = "ocfs2-invalidate-lock"
    summary = "ocfs2 with invalidate_lock across the reflink, shared in ocfs2_page_mkwrite"
    era = "fix tried on 6.1 (docs/findings/ocfs2-reflink-mmap.diff), not merged"
