"""The hooks the kernel model calls; a protocol takes its locks in them.

Every hook is a generator (it may yield lock steps) and by default does nothing, which is
the 2012 kernel: nothing kept a fault out of a punch. `op` tells which block-removing
operation runs ("punch", "truncate", "zero", "collapse", "insert").
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING

from ..kernel.kernel import FileSystem
from ..kernel.locking import down_write, mutex_lock, mutex_unlock, up_write

if TYPE_CHECKING:
    from ..kernel.kernel import Kernel
    from ..kernel.structs import Current, Inode


def _nothing():
    return
    yield  # a generator that yields no step


# The block-removing operations whose file system takes the inode lock itself (the others
# come with it from their syscalls): the punch, a clone (->remap_file_range) and a copy
# (->copy_file_range).
LOCKS_OWN_INODE = ("punch", "clone", "copy")


# What a file system value carries, not a protocol: its operations and what it refuses.
FILE_SYSTEM_FIELDS = frozenset(f.name for f in fields(FileSystem)) - {"name", "aops"}


class Protocol:
    name = ""
    summary = ""
    era = ""  # the kernel versions and commits it stands for
    # Whose operations run: the file system of the module fsrace.kernel.<filesystem>, or a
    # FileSystem value (one modelled outside the package). It has the address-space
    # operations, the fallocate modes, setattr, clone and copy of its own, and says what
    # it refuses; the protocol only takes locks around them.
    filesystem: str | FileSystem = "ext4"
    # Operations this protocol's model lacks (so the matrix says `n/a`): only the NFS
    # client's, ocfs2's and XFS's since 5.15 (xfs-5.15; the older XFS protocols stand for
    # kernels before reflink) have a clone (ext4 has no reflink); those, the SMB client's
    # and the protocols of 5.15 and later on ext4 and f2fs (the VFS's copy through the
    # page cache) a copy; only ocfs2's has blocks shared by a reflink ("shared blocks").
    unsupported: frozenset[str] = frozenset({"clone range", "copy range", "shared blocks"})

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        moved = sorted(set(vars(cls)) & FILE_SYSTEM_FIELDS)
        if moved:  # a protocol written for an older fsrace would lose them silently
            raise TypeError(
                f"protocol {cls.__qualname__} sets {', '.join(moved)}: those belong to its "
                "file system; set filesystem = FileSystem(name, aops, "
                f"{moved[0]}=...) (fsrace.kernel.kernel) instead")

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

    # write(2)'s copy into one page, after its source was faulted in: gfs2 holds its glock
    # only there, with page faults disabled, so a source mapped from the file cannot fault
    # under it.
    def write_copy_begin(self, cur: Current, k: Kernel, inode: Inode):
        return _nothing()

    def write_copy_end(self, cur: Current, k: Kernel, inode: Inode):
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
