"""Variants of the seed scenario, each aimed at one weakness a protocol may have."""

from __future__ import annotations

from ..kernel.kernel import Kernel
from ..kernel.structs import PAGE_SIZE
from ..kernel.syscalls import wb_writeback
from .base import (
    CachedFileScenario,
    Params,
    Scenario,
    TaskSpec,
    block_contents,
    cache_clean_page,
)
from .ops import Load, Punch, Read, Store, Truncate
from .punch_write_fault import PunchWriteFault


class PunchWriteFaultThread(PunchWriteFault):
    """The faulting task is a thread of the punching process (one mm, one mmap_sem)."""

    name = "punch-write-fault-thread"
    summary = "the seed race with the writer a thread of the punching process"

    def setup(self, k: Kernel, params: Params) -> list[TaskSpec]:
        specs = super().setup(k, params)
        p1 = k.mms["P1"]
        for spec in specs:
            if spec.process and spec.process != "P1":
                mm = k.mms.pop(spec.process)
                for inode in k.inodes.values():
                    if mm in inode.i_mmap:
                        inode.i_mmap.remove(mm)
                        p1.mmap(inode)
                spec.process = "P1"
        return specs


class PunchNoCachedPages(PunchWriteFault):
    """Nothing of the range is in memory when the punch starts."""

    name = "punch-no-cached-pages"
    summary = "the seed race with no page of the range cached when the punch starts"

    def setup(self, k: Kernel, params: Params) -> list[TaskSpec]:
        specs = super().setup(k, params)
        k.inodes["A"].pages.clear()
        return specs


class PunchReadFault(CachedFileScenario):
    needs = frozenset({"punch hole"})
    name = "punch-read-fault"
    summary = "punch vs a read fault refilling the cache: stale data after the punch"
    exercises = ("file-contents",)

    def setup(self, k: Kernel, params: Params) -> list[TaskSpec]:
        a = self.cached_file(k, params)
        length = params.pages * PAGE_SIZE
        k.new_mm("P1")
        specs = [TaskSpec("TASK1", "punch, then read back",
                          [Punch("A", 0, length), Read("A", 0, length)], process="P1")]
        for w in range(params.writers):
            mm = k.new_mm(f"P{w + 2}")
            mm.mmap(a)
            specs.append(TaskSpec(f"TASK{w + 2}", "load via mmap",
                                  [Load("A", (w % params.pages) * PAGE_SIZE)],
                                  process=mm.name))
        return specs


class TruncateWriteFault(Scenario):
    """Truncate was safe in 2012: i_size is lowered first and faults recheck it, and
    page->mapping, under the page lock."""

    needs = frozenset({"truncate"})
    name = "truncate-write-fault"
    summary = "truncate vs a write fault: safe through i_size and the page-lock rechecks"
    exercises = ("nothing-beyond-eof", "io-to-owned-blocks", "file-contents")
    recheck = True

    def initial_files(self, params: Params) -> dict[str, list]:
        bs = PAGE_SIZE // params.blocks_per_page
        return {"A": block_contents("A", (params.pages + 1) * params.blocks_per_page, bs),
                "B": ["b"] * PAGE_SIZE}

    def setup(self, k: Kernel, params: Params) -> list[TaskSpec]:
        from .base import create_delalloc_file

        files = self.initial_files(params)
        a = k.create_file("A", files["A"])
        for index in range(params.pages + 1):
            cache_clean_page(k, a, index)
        create_delalloc_file(k, "B", files["B"])
        k.mkwrite_recheck = self.recheck
        k.new_mm("P1")
        specs = [TaskSpec("TASK1", "truncate", [Truncate("A", PAGE_SIZE)], process="P1")]
        for w in range(params.writers):
            mm = k.new_mm(f"P{w + 2}")
            mm.mmap(a)
            page = 1 + w % params.pages
            specs.append(TaskSpec(f"TASK{w + 2}", "store via mmap beyond the new EOF",
                                  [Store("A", page * PAGE_SIZE, f"TASK{w + 2}")],
                                  process=mm.name))
        specs.append(TaskSpec("FLUSHER", "writeback", thread=wb_writeback))
        return specs


class TruncateWriteFaultNoRecheck(TruncateWriteFault):
    """The same with page_mkwrite's recheck of page->mapping and i_size removed: the
    check that makes truncate safe. It must race."""

    name = "truncate-write-fault-norecheck"
    summary = "truncate vs a write fault with page_mkwrite's recheck removed (must race)"
    recheck = False
    needs = frozenset({"truncate", "block_page_mkwrite"})  # the recheck is that function's
