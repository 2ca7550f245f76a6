"""The kernel instance of one execution: disk, inodes, processes, protocol, event log."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any

from .structs import MM, PAGE_SIZE, WRITTEN, Disk, Inode, Page

if TYPE_CHECKING:
    from ..protocols.base import Protocol


@dataclass(frozen=True)
class AddressSpaceOps:
    """A file system's address_space_operations, as far as the model needs them: how a
    page is read, made writable by a fault, and written back. Each is a generator
    function."""

    readpage: Any  # (cur, k, inode, page), page locked; unlocks it
    page_mkwrite: Any  # (cur, k, inode, page) -> VM_FAULT_*
    writepages: Any  # (cur, k, inode, first, last)
    # (k, inode, page): the page leaves the cache; drop what the file system keeps with it
    # (buffers, and the reservations of delay buffers).
    invalidatepage: Any
    # write_begin's get_block for a buffer write(2) fills: (cur, k, inode, lblk, bh, create).
    write_get_block: Any


@dataclass(frozen=True)
class FileSystem:
    """A file system as the generic code reaches it: its address-space operations, the
    file operations it has of its own (None: the model's ext4 path runs, under the
    protocol's locks), and the operations it refuses. Each operation is a generator
    function of (cur, k, inode, ...) whose result is the syscall's."""

    name: str
    aops: AddressSpaceOps
    punch_hole: Any = None  # fallocate(PUNCH_HOLE): (offset, length)
    zero_range: Any = None  # fallocate(ZERO_RANGE), likewise; collapse and insert too
    collapse_range: Any = None
    insert_range: Any = None
    setattr_size: Any = None  # ->setattr(ATTR_SIZE): (size)
    clone_range: Any = None  # ->remap_file_range: (src, dst, length)
    copy_range: Any = None  # ->copy_file_range: (src, dst, length)
    refused: frozenset[str] = frozenset()  # operations it fails with -EOPNOTSUPP


def filesystem_of(spec: str | FileSystem) -> FileSystem:
    """A protocol's `filesystem`: the value itself, or the FS of the module
    fsrace.kernel.<spec>."""
    if isinstance(spec, FileSystem):
        return spec
    return import_module(f"{__package__}.{spec}").FS


@dataclass
class KEvent:
    """Something the checks want to see: an I/O, a syscall boundary, a value read."""

    kind: str
    task: str
    data: dict[str, Any] = field(default_factory=dict)


class Kernel:
    def __init__(self, protocol: Protocol, nblocks: int = 8, blocks_per_page: int = 1) -> None:
        if PAGE_SIZE % blocks_per_page:
            raise ValueError(f"blocks per page must divide {PAGE_SIZE}")
        self.protocol = protocol
        self.blocks_per_page = blocks_per_page
        self.blksize = PAGE_SIZE // blocks_per_page
        self.disk = Disk(nblocks, self.blksize)
        self.inodes: dict[str, Inode] = {}
        self.mms: dict[str, MM] = {}
        self.events: list[KEvent] = []
        self.resizing: set[str] = set()  # inodes a truncate or an insert is resizing now
        self.mkwrite_recheck = True  # False removes block_page_mkwrite's recheck (a test)
        # Pages made so far per slot (inode, index): the next page's generation.
        self.page_generations: dict[tuple[str, int], int] = {}
        self.pages_made: dict[tuple[str, str], Page] = {}  # (slot name, origin) -> page
        self._fs: FileSystem | None = None

    @property
    def fs(self) -> FileSystem:
        """The protocol's file system (filesystem_of)."""
        if self._fs is None:
            self._fs = filesystem_of(self.protocol.filesystem)
        return self._fs

    def log(self, kind: str, task: str, **data: Any) -> None:
        self.events.append(KEvent(kind, task, data))

    def new_page(self, inode: Inode, index: int) -> Page:
        """A new page for the slot (inode, index), named by how many the slot has had."""
        slot = (inode.name, index)
        generation = self.page_generations.get(slot, 0) + 1
        self.page_generations[slot] = generation
        page = Page(inode, index, f"g{generation}")
        self.pages_made[(page.name, page.origin)] = page
        return page

    def lblk(self, page_index: int, nr: int) -> int:
        """File block of buffer `nr` of the page at `page_index`."""
        return page_index * self.blocks_per_page + nr

    # -- building an initial state (no steps: this is the scenario's set-up) ---------------
    def create_file(self, name: str, contents: list) -> Inode:
        """A file whose every block is allocated and written with `contents`."""
        inode = Inode(name, len(contents))
        self.inodes[name] = inode
        nblocks = -(-len(contents) // self.blksize)
        for lblk in range(nblocks):
            pblk = self.disk.alloc((name, lblk))
            chunk = contents[lblk * self.blksize:(lblk + 1) * self.blksize]
            self.disk.blocks[pblk].data = chunk + [0] * (self.blksize - len(chunk))
            inode.extents[lblk] = (WRITTEN, pblk)
        if nblocks:
            inode.items[0] = nblocks  # one write, written back at once: one extent
        return inode

    def new_mm(self, name: str) -> MM:
        mm = MM(name)
        self.mms[name] = mm
        return mm

    def share_blocks(self, name: str, src: int, dst: int, count: int) -> None:
        """File blocks [dst, dst + count) map the blocks of [src, src + count), as an earlier
        reflink left them; the file grows to cover them. The destination must be holes."""
        inode = self.inodes[name]
        for i in range(count):
            state, pblk = inode.extents[src + i]
            assert state == WRITTEN and pblk is not None and dst + i not in inode.extents
            self.disk.share(pblk, (name, dst + i))
            inode.extents[dst + i] = (WRITTEN, pblk)
        inode.items[dst] = count
        inode.i_size = max(inode.i_size, (dst + count) * self.blksize)
