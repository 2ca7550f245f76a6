"""The seed: a hole punch races a write fault through a shared mapping.

TASK1 punches the file's pages; each writer, in a process of its own, stores through a
shared mapping of one of those pages; the FLUSHER writes back. File B has dirty delayed
data whose allocation can take the blocks the punch frees.
"""

from __future__ import annotations

from ..kernel.kernel import Kernel
from ..kernel.structs import PAGE_SIZE
from ..kernel.syscalls import wb_writeback
from .base import (
    Params,
    Scenario,
    TaskSpec,
    block_contents,
    cache_clean_page,
    create_delalloc_file,
)
from .ops import Punch, Store


class PunchWriteFault(Scenario):
    needs = frozenset({"punch hole"})
    name = "punch-write-fault"
    summary = "punch_hole vs a write fault through mmap, with the flusher (the 2012 thread)"
    exercises = ("io-to-owned-blocks", "no-stray-delalloc", "file-contents")

    def initial_files(self, params: Params) -> dict[str, list]:
        bs = PAGE_SIZE // params.blocks_per_page
        return {"A": block_contents("A", params.pages * params.blocks_per_page, bs),
                "B": ["b"] * PAGE_SIZE}

    def setup(self, k: Kernel, params: Params) -> list[TaskSpec]:
        files = self.initial_files(params)
        a = k.create_file("A", files["A"])
        for index in range(params.pages):
            cache_clean_page(k, a, index)
        create_delalloc_file(k, "B", files["B"])
        specs = [TaskSpec("TASK1", "punch hole", [Punch("A", 0, params.pages * PAGE_SIZE)],
                          process="P1")]
        k.new_mm("P1")
        for w in range(params.writers):
            name = f"TASK{w + 2}"
            mm = k.new_mm(f"P{w + 2}")
            mm.mmap(a)
            page = w % params.pages
            specs.append(TaskSpec(name, "store via mmap",
                                  [Store("A", page * PAGE_SIZE, name)], process=mm.name))
        specs.append(TaskSpec("FLUSHER", "writeback", thread=wb_writeback))
        return specs
