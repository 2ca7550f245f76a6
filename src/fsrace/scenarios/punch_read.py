"""A read(2) repopulates the page cache between the punch's invalidation and its block
removal, so the punching task reads old data back after its punch returned."""

from __future__ import annotations

from ..kernel.kernel import Kernel
from ..kernel.structs import PAGE_SIZE
from ..ops import Punch, Read
from .base import CachedFileScenario, Params, TaskSpec


class PunchRead(CachedFileScenario):
    name = "punch-read"
    summary = "punch_hole vs read(2) refilling the cache: stale data after the punch"
    exercises = ("file-contents",)

    def setup(self, k: Kernel, params: Params) -> list[TaskSpec]:
        self.cached_file(k, params)
        length = params.pages * PAGE_SIZE
        k.new_mm("P1")
        specs = [TaskSpec("TASK1", "punch, then read back",
                          [Punch("A", 0, length), Read("A", 0, length)], process="P1")]
        for w in range(params.writers):
            k.new_mm(f"P{w + 2}")
            specs.append(TaskSpec(f"TASK{w + 2}", "read(2)", [Read("A", 0, length)],
                                  process=f"P{w + 2}"))
        return specs
