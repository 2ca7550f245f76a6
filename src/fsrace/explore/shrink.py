"""Shrinking a failing schedule, Hypothesis-style: work on the choice sequence, not on the
model. A candidate drops a stretch of choices; it is replayed leniently (a choice that
cannot run, or running out of choices, lets the last task run on, else the lowest-numbered
one), and kept when the same property still fails with fewer preemptions, or as many and
fewer steps."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .engine import DEADLOCK, STARVATION, VIOLATION, ExecutionRecord, ExecutionView, run_execution
from .step import Program


def lenient_chooser(choices: Sequence[int]):
    def choose(ex: ExecutionView, enabled: Sequence[int]) -> int:
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
    if rec.outcome != want.outcome or rec.outcome not in (VIOLATION, DEADLOCK, STARVATION):
        return False
    if rec.outcome in (DEADLOCK, STARVATION):
        return True
    return rec.failure is not None and want.failure is not None and \
        rec.failure.name == want.failure.name


def _runs(choices: Sequence[int]) -> list[tuple[int, int]]:
    """(start, end) of each maximal stretch of one task."""
    out, i = [], 0
    while i < len(choices):
        j = i
        while j < len(choices) and choices[j] == choices[i]:
            j += 1
        out.append((i, j))
        i = j
    return out


def _candidates(choices: tuple[int, ...]):
    """Smaller schedules to try. Only changes at a task switch matter, so: drop a whole
    stretch of one task, swap two neighbouring stretches, or end a stretch earlier (by half,
    then by one step)."""
    runs = _runs(choices)
    for start, end in runs:
        yield choices[:start] + choices[end:]
    for (a, b), (_, c) in zip(runs, runs[1:], strict=False):  # swap neighbouring stretches
        yield choices[:a] + choices[b:c] + choices[a:b] + choices[c:]
    for start, end in runs[:-1]:
        length = end - start
        for cut in sorted({max(1, length // 2), 1}, reverse=True):
            if cut < length:
                yield choices[:end - cut] + choices[end:]


def shrink(build: Callable[[], Program], failing: ExecutionRecord, max_steps: int,
           budget_s: float = 5.0, max_retries: int | None = None,
           max_attempts: int | None = None) -> Shrunk:
    """Shrink within `budget_s` seconds, or within `max_attempts` replays when given (then
    the result does not depend on the machine's speed)."""
    best = failing
    attempts = 0
    deadline = time.monotonic() + budget_s

    def out_of_budget() -> bool:
        if max_attempts is not None:
            return attempts >= max_attempts
        return time.monotonic() >= deadline

    improved = True
    while improved and not out_of_budget():
        improved = False
        for cand in _candidates(best.schedule.choices):
            if out_of_budget():
                break
            attempts += 1
            rec = run_execution(build(), lenient_chooser(cand), max_steps, max_retries)
            if _same_failure(rec, failing) and _key(rec) < _key(best):
                best = rec
                improved = True
                break
    return Shrunk(best, len(failing.events), failing.preemptions, attempts)
