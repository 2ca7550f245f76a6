"""The hooks the kernel model calls; a protocol takes its locks in them.

Every hook is a generator (it may yield lock steps) and by default does nothing, which is
the 2012 kernel: nothing kept a fault out of a punch. `op` tells which block-removing
operation runs ("punch", "truncate", "zero", "collapse", "insert").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..kernel.locking import down_write, mutex_lock, mutex_unlock, up_write

if TYPE_CHECKING:
    from ..kernel.kernel import AddressSpaceOps, Kernel
    from ..kernel.structs import Current, Inode


# A file system's own operation: a generator function of (cur, k, inode, ...) whose steps
# the kernel model yields from; what it returns is the syscall's result.
FsOperation = Callable[..., Any]


def _nothing():
    return
    yield  # a generator that yields no step


# The block-removing operations whose file system takes the inode lock itself (the others
# come with it from their syscalls): the punch, a clone (->remap_file_range) and a copy
# (->copy_file_range).
LOCKS_OWN_INODE = ("punch", "clone", "copy")


class Protocol:
    name = ""
    summary = ""
    era = ""  # the kernel versions and commits it stands for
    # Whose address-space operations run: the module fsrace.kernel.<filesystem>, or an
    # AddressSpaceOps of a file system modelled outside the package.
    filesystem: str | AddressSpaceOps = "ext4"
    # Operations that file system's model lacks: only the NFS client's and ocfs2's have a
    # clone (ext4 has no reflink; the model's XFS does not model its own), only the SMB
    # client's and ocfs2's a copy, only ocfs2's blocks shared by a reflink ("shared blocks").
    unsupported: frozenset[str] = frozenset({"clone range", "copy range", "shared blocks"})
    # Operations the real file system refuses (-EOPNOTSUPP), where its model has them.
    refused: frozenset[str] = frozenset()
    # A protocol that frees blocks differently sets punch_hole(cur, k, inode, off, len), or
    # zero_range, collapse_range, insert_range with the same arguments; one with a clone
    # sets clone_range(cur, k, inode, src, dst, len); one whose ->setattr truncates its own
    # way sets setattr_size(cur, k, inode, size); one with a copy_file_range of its own sets
    # copy_range like clone_range.
    punch_hole: FsOperation | None = None
    zero_range: FsOperation | None = None
    collapse_range: FsOperation | None = None
    insert_range: FsOperation | None = None
    clone_range: FsOperation | None = None
    copy_range: FsOperation | None = None
    setattr_size: FsOperation | None = None

    # Block removal: punch, truncate (around flush, page cache invalidation, block freeing).
    def remove_blocks_begin(self, cur: Current, k: Kernel, inode: Inode, op: str):
        return _nothing()

    def remove_blocks_end(self, cur: Current, k: Kernel, inode: Inode, op: str):
        return _nothing()

    # ->page_mkwrite, around block_page_mkwrite. Returning False (from the generator) makes
    # page_mkwrite fail with VM_FAULT_RETRY: the whole fault is retried.
    def page_mkwrite_begin(self, cur: Current, k: Kernel, inode: Inode):
        return _nothing()

    def page_mkwrite_end(self, cur: Current, k: Kernel, inode: Inode):
        return _nothing()

    # ->fault as a whole (ext4 4.5 ext4_filemap_fault, XFS 4.1 xfs_filemap_fault).
    def fault_begin(self, cur: Current, k: Kernel, inode: Inode):
        return _nothing()

    def fault_end(self, cur: Current, k: Kernel, inode: Inode):
        return _nothing()

    # filemap_fault when it must add the page to the cache.
    def fault_miss_begin(self, cur: Current, k: Kernel, inode: Inode):
        return _nothing()

    def fault_miss_end(self, cur: Current, k: Kernel, inode: Inode):
        return _nothing()

    # read(2) when it must add a page to the cache.
    def read_miss_begin(self, cur: Current, k: Kernel, inode: Inode):
        return _nothing()

    def read_miss_end(self, cur: Current, k: Kernel, inode: Inode):
        return _nothing()

    # write(2) as a whole, inside i_mutex (XFS takes its IO lock exclusive).
    def write_begin(self, cur: Current, k: Kernel, inode: Inode):
        return _nothing()

    def write_end(self, cur: Current, k: Kernel, inode: Inode):
        return _nothing()

    # read(2) as a whole (XFS takes its IO lock shared).
    def read_begin(self, cur: Current, k: Kernel, inode: Inode):
        return _nothing()

    def read_end(self, cur: Current, k: Kernel, inode: Inode):
        return _nothing()

    # Readahead: readahead(2), fadvise/madvise WILLNEED (5.15: invalidate_lock shared).
    def readahead_begin(self, cur: Current, k: Kernel, inode: Inode):
        return _nothing()

    def readahead_end(self, cur: Current, k: Kernel, inode: Inode):
        return _nothing()

    # A direct I/O read as a whole (XFS takes its IO lock shared).
    def dio_begin(self, cur: Current, k: Kernel, inode: Inode):
        return _nothing()

    def dio_end(self, cur: Current, k: Kernel, inode: Inode):
        return _nothing()


class LocksOwnInode(Protocol):
    """A network client's: no lock but the inode lock, which its punch, clone and copy
    take themselves (truncate comes with it from the VFS)."""

    def remove_blocks_begin(self, cur, k, inode, op):
        if op in LOCKS_OWN_INODE:
            yield from mutex_lock(cur, inode.i_mutex)

    def remove_blocks_end(self, cur, k, inode, op):
        if op in LOCKS_OWN_INODE:
            yield from mutex_unlock(cur, inode.i_mutex)


class ExclusiveOverRemoval(Protocol):
    """A fault-exclusion rwsem (`lock_of(inode)`) taken exclusive over every block-removing
    operation, inside i_mutex: the punch takes i_mutex here, the other operations come
    with it from their syscalls. The 4.5 and 5.15 protocols differ in where they take it
    shared."""

    @staticmethod
    def lock_of(inode: Inode):
        raise NotImplementedError

    def remove_blocks_begin(self, cur, k, inode, op):
        if op in LOCKS_OWN_INODE:
            yield from mutex_lock(cur, inode.i_mutex)
        yield from down_write(cur, self.lock_of(inode))

    def remove_blocks_end(self, cur, k, inode, op):
        yield from up_write(cur, self.lock_of(inode))
        if op in LOCKS_OWN_INODE:
            yield from mutex_unlock(cur, inode.i_mutex)
