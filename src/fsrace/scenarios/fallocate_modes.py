"""The fallocate modes that move or convert blocks, each against the fault that hurts it:
zero range against a write fault, collapse range against a read fault, insert range against
a write fault. Each drops the page cache and then changes the block map; a fault in
between brings back a page whose data or block mapping the change makes wrong. ext4 closed
them in 4.5 (ea3d7209ca01, 32ebffd3bbb4), XFS in 4.1 (e8e9ad42c1f1). A clone replaces the
destination's blocks the same way; fsrace stress found the NFS client's exposed."""

from __future__ import annotations

from ..kernel.kernel import Kernel
from ..kernel.structs import PAGE_SIZE
from ..kernel.syscalls import wb_writeback
from .base import CachedFileScenario, Params, TaskSpec
from .ops import Clone, Collapse, Copy, Insert, Load, Punch, Read, Store, ZeroRange


class _AgainstFaults(CachedFileScenario):
    """TASK1 runs `operation` (then reads the file back, to see what the cache kept); each
    other task, in its own process, stores to (or loads from) one page of the operation's
    range via mmap."""

    store = True
    read_back = True
    flusher = False  # a FLUSHER task writing back meanwhile
    check_own_store = False  # each storing task then preads its cell, and loads it again

    def operation(self, params: Params):
        raise NotImplementedError

    def store_offset(self, params: Params, writer: int) -> int:
        """Where each other task stores or loads: the operation's first pages."""
        return (writer % params.pages) * PAGE_SIZE

    def setup(self, k: Kernel, params: Params) -> list[TaskSpec]:
        a = self.cached_file(k, params)
        op = self.operation(params)
        k.new_mm("P1")
        ops = [op, Read("A", 0, PAGE_SIZE * (self.pages(params) + 1))][:1 + self.read_back]
        specs = [TaskSpec("TASK1", str(op) + (", then read back" if self.read_back else ""),
                          ops, process="P1")]
        for w in range(params.writers):
            name = f"TASK{w + 2}"
            mm = k.new_mm(f"P{w + 2}")
            mm.mmap(a)
            offset = self.store_offset(params, w)
            fault = Store("A", offset, name) if self.store else Load("A", offset)
            what = "store via mmap" if self.store else "load via mmap"
            ops = [fault]
            if self.check_own_store:
                ops += [Read("A", offset, 1), Load("A", offset)]
                what += ", pread it, load it again"
            specs.append(TaskSpec(name, what, ops, process=mm.name))
        if self.flusher:
            specs.append(TaskSpec("FLUSHER", "writeback", thread=wb_writeback))
        return specs


class ZeroRangeWriteFault(_AgainstFaults):
    name = "zero-range-write-fault"
    summary = ("zero range vs a write fault: a page mapped to a block before it turned "
               "unwritten loses its store")
    exercises = ("file-contents",)
    needs = frozenset({"zero range"})

    def operation(self, params: Params):
        return ZeroRange("A", 0, params.pages * PAGE_SIZE)


class ZeroRangeStoreReread(ZeroRangeWriteFault):
    """Each storing task then preads its cell and loads it again: a fault that maps a page
    the operation dropped after the fault found it (a page_mkwrite that does not recheck
    page->mapping) stores where only loads through that mapping see it."""

    name = "zero-range-store-reread"
    summary = ("zero range vs a write fault whose task reads its store back: a store "
               "through a dropped page shows to loads, never to read(2)")
    check_own_store = True


class ZeroRangeWriteback(ZeroRangeWriteFault):
    """The same with the flusher writing back meanwhile: a network client that flushes
    before its zero range goes to the server and drops the pages only after it (NFS
    v4.2's nfs42_proc_zero_range, 7.x) writes a page dirtied in between back over the
    zeroed range."""

    name = "zero-range-writeback"
    summary = ("zero range vs a write fault, with the flusher: a page written back "
               "between the flush and the page drop undoes the zeroing")
    flusher = True


class PunchStoreReread(_AgainstFaults):
    """The seed's punch, each storing task then preading its cell and loading it again, as
    zero-range-store-reread."""

    name = "punch-store-reread"
    summary = ("punch vs a write fault whose task reads its store back: a store through a "
               "dropped page shows to loads, never to read(2)")
    exercises = ("file-contents",)
    needs = frozenset({"punch hole"})
    check_own_store = True

    def operation(self, params: Params):
        return Punch("A", 0, params.pages * PAGE_SIZE)


class CollapseReadFault(_AgainstFaults):
    """The file has one page more than --pages; the first --pages pages are collapsed."""

    name = "collapse-read-fault"
    summary = "collapse range vs a read fault: the cache keeps pre-shift data at an offset"
    exercises = ("file-contents", "nothing-beyond-eof")
    needs = frozenset({"collapse range"})
    store = False

    def pages(self, params: Params) -> int:
        return params.pages + 1

    def operation(self, params: Params):
        return Collapse("A", 0, params.pages * PAGE_SIZE)


class CollapseWriteFault(_AgainstFaults):
    """The file has one page more than --pages; the first --pages pages are collapsed, and
    the other tasks store to the page after them, which the collapse moves to page 0
    (before it) or past the new end of file (after it: SIGBUS)."""

    name = "collapse-write-fault"
    summary = ("collapse range vs a write fault on a page it moves: the store must move "
               "with the page or fault past EOF, never vanish")
    exercises = ("file-contents",)
    needs = frozenset({"collapse range"})
    read_back = False  # a lost store shows in the final contents

    def pages(self, params: Params) -> int:
        return params.pages + 1

    def store_offset(self, params: Params, writer: int) -> int:
        return params.pages * PAGE_SIZE + writer % PAGE_SIZE

    def operation(self, params: Params):
        return Collapse("A", 0, params.pages * PAGE_SIZE)


class InsertWriteFault(_AgainstFaults):
    name = "insert-write-fault"
    summary = ("insert range vs a write fault: a store lands on a block that moved to "
               "another offset")
    exercises = ("io-to-owned-blocks", "file-contents")
    needs = frozenset({"insert range"})
    read_back = False  # the misplaced store shows on disk; the cache adds nothing

    def operation(self, params: Params):
        return Insert("A", 0, PAGE_SIZE)


class CloneWriteFault(_AgainstFaults):
    """The file has twice --pages pages; the second half is cloned onto the first, which the
    other tasks store to."""

    name = "clone-write-fault"
    summary = ("clone range vs a write fault: a store dirties a destination page while "
               "the clone replaces its blocks, and its writeback undoes the clone")
    exercises = ("file-contents",)
    needs = frozenset({"clone range"})
    flusher = True  # the stale page reaches the server only by a writeback in the window
    read_back = False  # the undone clone shows in the final contents

    def pages(self, params: Params) -> int:
        return 2 * params.pages

    def operation(self, params: Params):
        n = params.pages * PAGE_SIZE
        return Clone("A", n, 0, n)


class CopyWriteFault(CloneWriteFault):
    """The same with copy_file_range: the SMB client's copy drops the destination's pages
    before the server copies, and a store in between brings the old page back; the NFS
    client's drops them after, and a store in between dirties the old page, which the
    drop writes back (launders) over the copy."""

    name = "copy-write-fault"
    summary = ("copy_file_range vs a write fault: a store brings the destination's old "
               "page back before the server copies, and its writeback undoes the copy")
    needs = frozenset({"copy range"})
    check_own_store = True  # a store through a PTE to a dropped page shows only to loads

    def operation(self, params: Params):
        n = params.pages * PAGE_SIZE
        return Copy("A", n, 0, n)


class CloneBesideReadFault(_AgainstFaults):
    """The file has three times --pages pages, written at once and none cached (as a clone
    before this one left them); the last third is cloned onto the first and read back,
    and the other tasks load from the middle third, beside the destination. A read that
    maps its page can cache where the file's blocks were for more than its page: btrfs
    caches the map of the whole extent item it found, and a read beside the clone that
    found the item before the clone replaced it, and cached its map after the clone
    dropped the cached maps, leaves the destination mapped to its replaced blocks
    (docs/findings/btrfs-clone-stale-page.md: 6.1 to 7.3-rc7)."""

    name = "clone-beside-read-fault"
    summary = ("clone range vs a read fault beside its destination: the read caches where "
               "the destination's replaced blocks were, and the next read reads them")
    exercises = ("file-contents",)
    needs = frozenset({"clone range"})
    store = False

    def pages(self, params: Params) -> int:
        return 3 * params.pages

    def cached_file(self, k: Kernel, params: Params):
        return self.written_file(k, params)  # nothing cached

    def store_offset(self, params: Params, writer: int) -> int:
        return (params.pages + writer % params.pages) * PAGE_SIZE

    def operation(self, params: Params):
        n = params.pages * PAGE_SIZE
        return Clone("A", 2 * n, 0, n)


class CloneSourceWriteFault(_AgainstFaults):
    """The file has three times --pages pages: the last third already shares the middle
    third's blocks, as an earlier clone left them; the middle is cloned onto the first and
    read back, and the other tasks store to the middle, the clone's source. A store that
    copies its shared block on write in the clone's window gives the source a new block
    that is not yet written, which the clone then shares (ocfs2: found on 6.1 to 7.2.13)."""

    name = "clone-source-write-fault"
    summary = ("clone range vs a write fault on its source: copy on write in the clone's "
               "window, and the destination shares a block nothing has written")
    exercises = ("file-contents", "io-to-owned-blocks")
    needs = frozenset({"clone range", "shared blocks"})

    def pages(self, params: Params) -> int:
        return 3 * params.pages

    def initial_files(self, params: Params) -> dict[str, list]:
        data = super().initial_files(params)["A"]
        n = params.pages * PAGE_SIZE
        return {"A": data[:2 * n] + data[n:2 * n]}

    def written_file(self, k: Kernel, params: Params):
        """The first two thirds written, the last sharing the middle's blocks."""
        n = params.pages * PAGE_SIZE
        a = k.create_file("A", self.initial_files(params)["A"][:2 * n])
        k.share_blocks("A", n // k.blksize, 2 * n // k.blksize, n // k.blksize)
        return a

    def store_offset(self, params: Params, writer: int) -> int:
        return (params.pages + writer % params.pages) * PAGE_SIZE

    def operation(self, params: Params):
        n = params.pages * PAGE_SIZE
        return Clone("A", n, 0, n)
