"""One stateful search split into parts that run anywhere: in this process, in worker
processes, or on a Ray cluster (fsrace.distributed).

A planning search runs the stateful DPOR down to a fixed depth, taking every task that is
not asleep at every state above it (no reduction there, only sleep sets and the state
cache), and hands each distinct state it reaches at that depth to a part: the schedule that
reaches it and the tasks asleep there. A part replays that schedule and runs the stateful
DPOR from the state on, with its own state cache. Races between a part's steps and the
prefix need no reversal: the planning search already took every order of the prefix that
its sleep sets do not prove redundant. So the parts together cover what one search covers
(docs/explorer.md, "Splitting one search over workers").

Nothing here depends on how many workers run the parts: the parts are fixed by the split
depth, and each is searched the same way wherever it runs, so a complete search reports the
same verdict, distinct states (the union of every part's) and traces with one worker or
sixty-four. Parts do not share their caches; a state two parts reach is explored by both,
and `explored` beside `states` says how much that costs (bench/split.py: too much for the
split to pay, at every depth it measured).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from .engine import ExecutionRecord
from .search import Limits, SearchResult, conclude, search
from .stateful import StatefulDPOR
from .step import Program


@dataclass(frozen=True)
class Part:
    prefix: tuple[int, ...]  # the schedule from the initial state to the part's state
    asleep: frozenset[int]  # tasks asleep there


@dataclass
class PartResult:
    """What a part sends back: plain data, so it crosses processes and machines."""

    part: Part
    search: SearchResult
    keys: set[bytes] = field(default_factory=set)  # the distinct states it visited


Observe = Callable[[ExecutionRecord], None]


def plan(build: Callable[[], Program], depth: int, limits: Limits,
         stop_on_failure: bool = True, observe: Observe | None = None
         ) -> tuple[SearchResult, list[Part], set[bytes]]:
    """The planning search: its own result, the parts it hands out, the states it visited."""
    strategy = StatefulDPOR(split_at=depth)
    res = search(build, strategy, limits, stop_on_failure=stop_on_failure, observe=observe)
    parts = [Part(prefix, asleep) for prefix, asleep in strategy.parts.values()]
    return res, parts, set(strategy._seen)


def search_part(build: Callable[[], Program], part: Part, limits: Limits,
                deadline: float | None = None, stop_on_failure: bool = True,
                observe: Observe | None = None) -> PartResult:
    """Search one part. `deadline` (time.time(), so it holds on every machine of a
    cluster whose clocks agree) bounds a part that starts late."""
    if deadline is not None:
        left = max(0.0, deadline - time.time())
        limits = replace(limits, time_limit=left if limits.time_limit is None
                         else min(left, limits.time_limit))
    strategy = StatefulDPOR(prefix=part.prefix, asleep=part.asleep)
    res = search(build, strategy, limits, stop_on_failure=stop_on_failure, observe=observe)
    return PartResult(part, res, set(strategy._seen))


# Runs the parts (each with the limits and the deadline) and yields results as they finish.
RunParts = Callable[[list[Part], Limits, float | None], Iterable[PartResult]]


def in_process(build: Callable[[], Program], stop_on_failure: bool = True,
               observe: Observe | None = None) -> RunParts:
    """Run the parts one after another here (`observe` hears every execution)."""
    def run(parts: list[Part], limits: Limits, deadline: float | None):
        for part in parts:
            yield search_part(build, part, limits, deadline, stop_on_failure, observe)
    return run


def split_search(build: Callable[[], Program], run_parts: RunParts, depth: int,
                 limits: Limits | None = None, stop_on_failure: bool = True,
                 progress: Callable[[SearchResult], None] | None = None,
                 observe: Observe | None = None) -> SearchResult:
    """Plan, run the parts through `run_parts` (which yields results as parts finish), and
    merge. A part that finds a failure ends the search when `stop_on_failure`."""
    limits = limits or Limits()
    start = time.monotonic()
    top, parts, keys = plan(build, depth, limits, stop_on_failure, observe)
    out = _Merged(top, keys, depth)
    if top.counterexample is not None and stop_on_failure:
        return out.result(start, parts=len(parts), done=0, stopped_by=top.stopped_by)
    if top.stopped_by:
        return out.result(start, parts=len(parts), done=0, stopped_by=top.stopped_by)
    deadline = None
    if limits.time_limit is not None:
        deadline = time.time() + max(0.0, limits.time_limit - (time.monotonic() - start))
    each = replace(limits, time_limit=None)
    stopped_by = ""
    done = 0
    results: Iterator[PartResult] = iter(run_parts(parts, each, deadline))
    try:
        for pr in results:
            done += 1
            out.add(pr)
            if progress:
                progress(out.result(start, parts=len(parts), done=done, stopped_by=""))
            if pr.search.stopped_by and pr.search.stopped_by != "first failure":
                stopped_by = pr.search.stopped_by
            if out.res.counterexample is not None and stop_on_failure:
                stopped_by = "first failure"
                break
    except KeyboardInterrupt:
        stopped_by = "interrupted"
    finally:
        close = getattr(results, "close", None)
        if close:
            close()  # stop the parts still running
    if done < len(parts) and not stopped_by:
        stopped_by = "parts left unsearched"
    return out.result(start, parts=len(parts), done=done, stopped_by=stopped_by)


class _Merged:
    """The merged result of the planning search and its parts."""

    def __init__(self, top: SearchResult, keys: set[bytes], depth: int) -> None:
        self.res = top
        self.depth = depth
        self.coverage = top.coverage
        self.keys = keys
        self.explored = len(keys)
        self.complete_parts = True

    def add(self, pr: PartResult) -> None:
        self.res.absorb(pr.search)
        self.keys |= pr.keys
        self.explored += len(pr.keys)  # a state two parts share counts twice
        self.complete_parts &= pr.search.complete

    def result(self, start: float, parts: int, done: int, stopped_by: str) -> SearchResult:
        r = self.res
        r.elapsed_s = time.monotonic() - start
        r.traces = len(r.fingerprints)
        r.states = len(self.keys)
        r.explored = self.explored
        r.parts = parts
        r.stopped_by = stopped_by
        r.complete = (not stopped_by and done == parts and self.complete_parts
                      and not r.bounded and not r.starved)
        r.coverage = (f"{self.coverage}; split at step {self.depth} into {parts} parts, "
                      f"{done} searched")
        conclude(r)
        return r
