"""read(2) whose destination is a shared mapping of the same file: the copy out write-faults
while the reader holds whatever read(2) holds, and a punch queues for the IO lock. Dave
Chinner's "insane" case (17 May 2012, <20120517074308.GQ25351@dastard>), and why a lock
taken both in read(2) and in page_mkwrite deadlocks once writers queue."""

from __future__ import annotations

from ..kernel.kernel import Kernel
from ..kernel.structs import PAGE_SIZE
from .base import CachedFileScenario, Params, TaskSpec
from .ops import Punch, ReadIntoMapping


class ReadIntoOwnMapping(CachedFileScenario):
    needs = frozenset({"punch hole"})
    name = "read-into-own-mapping"
    summary = "read(2) into a mapping of the same file (copy_to_user faults) vs a punch"
    exercises = ("deadlock", "file-contents")
    file_pages = 2

    def setup(self, k: Kernel, params: Params) -> list[TaskSpec]:
        a = self.cached_file(k, params)
        mm = k.new_mm("P1")
        mm.mmap(a)
        k.new_mm("P2")
        return [
            TaskSpec("TASK1", "read page 0 into mmap of page 1",
                     [ReadIntoMapping("A", 0, PAGE_SIZE, "A", PAGE_SIZE)], process="P1"),
            TaskSpec("TASK2", "punch page 0", [Punch("A", 0, PAGE_SIZE)], process="P2"),
        ]
