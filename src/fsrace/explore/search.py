"""Drives a strategy over fresh executions and gathers one result."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum

from .engine import (
    BOUNDED,
    CACHED,
    DEADLOCK,
    PRUNED,
    STARVATION,
    VIOLATION,
    ExecutionRecord,
    run_execution,
)
from .step import Program
from .strategy import Strategy
from .trace import fingerprint


class Verdict(StrEnum):
    """What a search concludes (a string too: results print and compare as their value)."""

    SAFE = "safe"  # a complete search found nothing
    RACE = "race"  # a check failed
    DEADLOCK = "deadlock"
    STARVATION = "starvation"
    UNKNOWN = "unknown"  # nothing found, but the search did not cover everything


SAFE, RACE, UNKNOWN = Verdict.SAFE, Verdict.RACE, Verdict.UNKNOWN
DEADLOCKED, STARVED = Verdict.DEADLOCK, Verdict.STARVATION
FAILURES = (VIOLATION, DEADLOCK, STARVATION)
# A starving execution may be no more than an unfair schedule: a task spinning (a fault
# retried after VM_FAULT_NOPAGE) while the task that would end the spin is never chosen.
# So it does not stop the search; a violation or a deadlock found later replaces it.
_RANK = {VIOLATION: 0, DEADLOCK: 0, STARVATION: 1}


def better(rec: ExecutionRecord, than: ExecutionRecord | None, by_schedule: bool = False
           ) -> bool:
    """Whether rec is the counterexample to keep over than: a violation or deadlock over a
    starvation, then the shorter; `by_schedule`: then the smaller schedule, so the choice
    among several does not depend on the order they were found in."""
    if than is None:
        return True
    mine = (_RANK[rec.outcome], len(rec.events))
    theirs = (_RANK[than.outcome], len(than.events))
    if by_schedule and mine == theirs:
        return str(rec.schedule) < str(than.schedule)
    return mine < theirs


@dataclass
class Limits:
    max_steps: int = 400  # per execution
    max_retries: int | None = 12  # per task and execution, before it counts as starving
    max_executions: int | None = None
    time_limit: float | None = None  # seconds


@dataclass
class SearchResult:
    strategy: str
    verdict: Verdict
    executions: int = 0
    traces: int = 0
    blocked: int = 0
    cached: int = 0  # executions stopped at a state explored before (stateful search)
    states: int | None = None  # distinct states explored (None: the strategy keeps none)
    steps: int = 0
    complete: bool = False
    bounded: int = 0  # executions cut at the step bound
    starved: int = 0  # executions cut because a task retried more than the retry bound
    max_depth: int = 0  # longest execution, in steps
    elapsed_s: float = 0.0
    stopped_by: str = ""  # why the search ended early, if it did
    coverage: str = ""
    parts: int = 0  # a split search (explore/split.py): parts the planning search made
    explored: int | None = None  # ... states its parts explored, shared ones once per part
    found_by: str = ""  # the strategy (portfolio member) that found the counterexample
    counterexample: ExecutionRecord | None = None
    fingerprints: set[str] = field(default_factory=set)

    def absorb(self, other: SearchResult) -> None:
        """Add the counts of a search that covered another part of the same space; keep
        the better counterexample (by schedule too, so the order results come in does
        not matter)."""
        self.executions += other.executions
        self.steps += other.steps
        self.blocked += other.blocked
        self.cached += other.cached
        self.bounded += other.bounded
        self.starved += other.starved
        self.max_depth = max(self.max_depth, other.max_depth)
        self.fingerprints |= other.fingerprints
        cx = other.counterexample
        if cx is not None and better(cx, self.counterexample, by_schedule=True):
            self.counterexample = cx
            self.found_by = other.found_by


Progress = Callable[[SearchResult], None]

# A search allocates short-lived containers at every step (encodings, accesses, summaries)
# while its state cache only grows. With the interpreter's default thresholds the collector
# ran a young collection every 700 allocations, and its full collections scanned the whole
# cache: 14% of a 1x2 search and 15% of a 3x3 one went to it (docs/benchmarks.md).
_SEARCH_GC_THRESHOLDS = (50_000, 20, 20)


@contextmanager
def _search_gc() -> Iterator[None]:
    """Collect garbage less often while a search runs; the old thresholds after."""
    old = gc.get_threshold()
    gc.set_threshold(*_SEARCH_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*old)


def search(
    build: Callable[[], Program],
    strategy: Strategy,
    limits: Limits | None = None,
    stop_on_failure: bool = True,
    progress: Progress | None = None,
    observe: Callable[[ExecutionRecord], None] | None = None,
) -> SearchResult:
    """Run executions until the strategy is done, a failure is found, or a limit is hit."""
    limits = limits or Limits()
    res = SearchResult(strategy=strategy.name, verdict=UNKNOWN)
    start = time.monotonic()
    last_report = start
    try:
        with _search_gc():
            while True:
                if limits.max_executions is not None and res.executions >= limits.max_executions:
                    res.stopped_by = f"--max-executions {limits.max_executions}"
                    break
                if limits.time_limit is not None and time.monotonic() - start > limits.time_limit:
                    res.stopped_by = f"--time-limit {limits.time_limit:g}s"
                    break
                chooser = strategy.next_execution()
                if chooser is None:
                    break
                rec = run_execution(build(), chooser, limits.max_steps, limits.max_retries,
                                    checked=getattr(strategy, "checked_prefix", 0),
                                    keep_states=getattr(strategy, "keep_states", False))
                strategy.finished(rec)
                if observe:
                    observe(rec)
                res.executions += 1
                res.steps += len(rec.events)
                res.max_depth = max(res.max_depth, len(rec.events))
                if rec.outcome == PRUNED:
                    res.blocked += 1
                    continue
                if rec.outcome == CACHED:
                    res.cached += 1
                    continue
                if rec.outcome == BOUNDED:
                    res.bounded += 1
                else:
                    res.fingerprints.add(fingerprint(rec.events))
                res.starved += rec.outcome == STARVATION
                if rec.outcome in FAILURES:
                    if better(rec, res.counterexample):
                        res.counterexample = rec
                        res.found_by = getattr(strategy, "current_name", strategy.name)
                    if stop_on_failure and rec.outcome != STARVATION:
                        res.stopped_by = "first failure"
                        break
                now = time.monotonic()
                if progress and now - last_report > 0.2:
                    last_report = now
                    res.elapsed_s = now - start
                    res.traces = len(res.fingerprints)
                    res.states = getattr(strategy, "states", None)
                    progress(res)
    except KeyboardInterrupt:
        res.stopped_by = "interrupted"
    res.elapsed_s = time.monotonic() - start
    res.traces = len(res.fingerprints)
    res.states = getattr(strategy, "states", None)
    res.complete = (strategy.complete and not res.bounded and not res.starved
                    and not res.stopped_by)
    res.coverage = strategy.bounds()
    conclude(res)
    if progress:
        try:
            progress(res)  # the final figures, however short the search
        except KeyboardInterrupt:
            pass  # the search is over; its result stands
    return res


def conclude(res: SearchResult) -> None:
    """The verdict from the counterexample kept and whether the search was complete."""
    cx = res.counterexample
    if cx is not None:
        res.verdict = {DEADLOCK: DEADLOCKED, STARVATION: STARVED}.get(cx.outcome, RACE)
    else:
        res.verdict = SAFE if res.complete else UNKNOWN
