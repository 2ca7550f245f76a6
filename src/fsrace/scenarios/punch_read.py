"""A read(2), or a standalone readahead, repopulates the page cache between the punch's
invalidation and its block removal, so the punching task reads old data back after its
punch returned."""

from __future__ import annotations

from ..kernel.kernel import Kernel
from ..kernel.structs import PAGE_SIZE
from .base import CachedFileScenario, Params, TaskSpec
from .ops import Op, Punch, Read, Readahead


class PunchRead(CachedFileScenario):
    needs = frozenset({"punch hole"})
    name = "punch-read"
    summary = "punch_hole vs read(2) refilling the cache: stale data after the punch"
    exercises = ("file-contents",)
    role = "read(2)"

    def reader_op(self, length: int) -> Op:
        return Read("A", 0, length)

    def setup(self, k: Kernel, params: Params) -> list[TaskSpec]:
        self.cached_file(k, params)
        length = params.pages * PAGE_SIZE
        k.new_mm("P1")
        specs = [TaskSpec("TASK1", "punch, then read back",
                          [Punch("A", 0, length), Read("A", 0, length)], process="P1")]
        for w in range(params.writers):
            k.new_mm(f"P{w + 2}")
            specs.append(TaskSpec(f"TASK{w + 2}", self.role, [self.reader_op(length)],
                                  process=f"P{w + 2}"))
        return specs


class PunchReadahead(PunchRead):
    """XFS took its IO lock in read(2) but not in fadvise/madvise WILLNEED until 2019;
    5.15's invalidate_lock covers readahead (page_cache_ra_unbounded)."""

    name = "punch-readahead"
    summary = "punch_hole vs readahead(2)/fadvise WILLNEED refilling the cache: stale data"
    role = "readahead(2)"

    def reader_op(self, length: int) -> Op:
        return Readahead("A", 0, length)
