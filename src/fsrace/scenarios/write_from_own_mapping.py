"""write(2) whose source buffer is a shared mapping of the same file, against a punch of
the source page: the copy faults the source in while the writer holds i_mutex."""

from __future__ import annotations

from ..kernel.kernel import Kernel
from ..kernel.structs import PAGE_SIZE
from .base import Params, Scenario, TaskSpec, block_contents, cache_clean_page
from .ops import Punch, Read, WriteFromMapping


class WriteFromOwnMapping(Scenario):
    needs = frozenset({"punch hole"})
    name = "write-from-own-mapping"
    summary = "write(2) copying from a mapping of the file vs a punch of the source page"
    exercises = ("file-contents", "deadlock")

    def initial_files(self, params: Params) -> dict[str, list]:
        bpp = params.blocks_per_page
        return {"A": block_contents("A", 2 * bpp, PAGE_SIZE // bpp)}

    def setup(self, k: Kernel, params: Params) -> list[TaskSpec]:
        a = k.create_file("A", self.initial_files(params)["A"])
        cache_clean_page(k, a, 0)
        k.new_mm("P1")
        mm = k.new_mm("P2")
        mm.mmap(a)
        return [
            TaskSpec("TASK1", "punch page 0, read it",
                     [Punch("A", 0, PAGE_SIZE), Read("A", 0, PAGE_SIZE)], process="P1"),
            TaskSpec("TASK2", "write page 1 from mmap of page 0",
                     [WriteFromMapping("A", PAGE_SIZE, "A", 0, PAGE_SIZE)], process="P2"),
        ]
