"""A read(2) repopulates the page cache between the punch's invalidation and its block
removal, so the punching task reads old data back after its punch returned."""

from __future__ import annotations

from ..kernel.kernel import Kernel
from ..kernel.structs import PAGE_SIZE
from ..ops import Punch, Read
from .base import Params, Scenario, TaskSpec, block_contents, cache_clean_page


class PunchRead(Scenario):
    name = "punch-read"
    summary = "punch_hole vs read(2) refilling the cache: stale data after the punch"
    exercises = ("file-contents",)

    def initial_files(self, params: Params) -> dict[str, list]:
        bs = PAGE_SIZE // params.blocks_per_page
        return {"A": block_contents("A", params.pages * params.blocks_per_page, bs)}

    def setup(self, k: Kernel, params: Params) -> list[TaskSpec]:
        a = k.create_file("A", self.initial_files(params)["A"])
        for index in range(params.pages):
            cache_clean_page(k, a, index)
        length = params.pages * PAGE_SIZE
        k.new_mm("P1")
        specs = [TaskSpec("TASK1", "punch, then read back",
                          [Punch("A", 0, length), Read("A", 0, length)], process="P1")]
        for w in range(params.writers):
            k.new_mm(f"P{w + 2}")
            specs.append(TaskSpec(f"TASK{w + 2}", "read(2)", [Read("A", 0, length)],
                                  process=f"P{w + 2}"))
        return specs
