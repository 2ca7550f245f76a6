"""The fallocate modes that move or convert blocks, each against the fault that hurts it:
zero range against a write fault, collapse range against a read fault, insert range against
a write fault. Each drops the page cache and then changes the block map; a fault in
between brings back a page whose data or block mapping the change makes wrong. ext4 closed
them in 4.5 (ea3d7209ca01, 32ebffd3bbb4), XFS in 4.1 (e8e9ad42c1f1)."""

from __future__ import annotations

from ..kernel.kernel import Kernel
from ..kernel.structs import PAGE_SIZE
from ..ops import Collapse, Insert, Load, Read, Store, ZeroRange
from .base import CachedFileScenario, Params, TaskSpec


class _AgainstFaults(CachedFileScenario):
    """TASK1 runs `operation` (then reads the file back, to see what the cache kept); each
    other task, in its own process, stores to (or loads from) one page of the operation's
    range via mmap."""

    store = True
    read_back = True

    def operation(self, params: Params):
        raise NotImplementedError

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
            offset = (w % params.pages) * PAGE_SIZE
            fault = Store("A", offset, name) if self.store else Load("A", offset)
            specs.append(TaskSpec(name, "store via mmap" if self.store else "load via mmap",
                                  [fault], process=mm.name))
        return specs


class ZeroRangeWriteFault(_AgainstFaults):
    name = "zero-range-write-fault"
    summary = ("zero range vs a write fault: a page mapped to a block before it turned "
               "unwritten loses its store")
    exercises = ("file-contents",)
    needs = frozenset({"zero range"})

    def operation(self, params: Params):
        return ZeroRange("A", 0, params.pages * PAGE_SIZE)


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


class InsertWriteFault(_AgainstFaults):
    name = "insert-write-fault"
    summary = ("insert range vs a write fault: a store lands on a block that moved to "
               "another offset")
    exercises = ("io-to-owned-blocks", "file-contents")
    needs = frozenset({"insert range"})
    read_back = False  # the misplaced store shows on disk; the cache adds nothing

    def operation(self, params: Params):
        return Insert("A", 0, PAGE_SIZE)
