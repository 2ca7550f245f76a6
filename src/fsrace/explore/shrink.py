"""Shrinking a failing schedule, Hypothesis-style: work on the choice sequence, not on the
model. A candidate drops a stretch of choices; it is replayed leniently (a choice that
cannot run, or running out of choices, lets the last task run on, else the lowest-numbered
one), and kept when the same property still fails with fewer preemptions, or as many and
fewer steps."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .engine import DEADLOCK, VIOLATION, Execution, ExecutionRecord, run_execution
from .schedule import Schedule
from .step import Program


def lenient_chooser(choices: Sequence[int]):
    def choose(ex: Execution, enabled: Sequence[int]) -> int:
        k = len(ex.events)
        if k < len(choices) and choices[k] in enabled:
            return choices[k]
        last = ex.events[-1].task if ex.events else -1
        return last if last in enabled else enabled[0]

    return choose


@dataclass
class Shrunk:
    record: ExecutionRecord
    original_steps: int
    original_preemptions: int
    attempts: int


def _key(rec: ExecutionRecord) -> tuple[int, int]:
    return rec.preemptions, len(rec.events)


def _same_failure(rec: ExecutionRecord, want: ExecutionRecord) -> bool:
    if rec.outcome != want.outcome or rec.outcome not in (VIOLATION, DEADLOCK):
        return False
    if rec.outcome == DEADLOCK:
        return True
    return rec.failure is not None and want.failure is not None and \
        rec.failure.name == want.failure.name


def shrink(build: Callable[[], Program], failing: ExecutionRecord, max_steps: int,
           budget_s: float = 5.0) -> Shrunk:
    best = failing
    attempts = 0
    deadline = time.monotonic() + budget_s
    improved = True
    while improved and time.monotonic() < deadline:
        improved = False
        choices = best.schedule.choices
        for size in (32, 16, 8, 4, 2, 1):
            i = 0
            while i < len(choices) and time.monotonic() < deadline:
                cand = choices[:i] + choices[i + size:]
                attempts += 1
                rec = run_execution(build(), lenient_chooser(cand), max_steps)
                if _same_failure(rec, failing) and _key(rec) < _key(best):
                    best = rec
                    choices = best.schedule.choices
                    improved = True
                else:
                    i += 1
    return Shrunk(best, len(failing.events), failing.preemptions, attempts)


__all__ = ["shrink", "Shrunk", "lenient_chooser", "Schedule"]
