"""One stateful search shared by several workers that lend each other branches.

Every worker runs jobs. A job is a StatefulDPOR: the first explores from the initial
state; every other one explores a branch some job lent (`StatefulDPOR.lend`), the schedule
that reaches the lent state replayed first. A worker with nothing to run is given a branch
borrowed from the oldest job that has one to lend, the deepest branch of that job. A job
whose every remaining branch is lent waits, and its worker borrows meanwhile. A borrowed
job that completes sends back its requests of the prefix and its summary
(`loan_result`), and the lender takes them in (`settle`) before it leaves the state it
lent from: exactly as if it had explored the branch itself, right after the branch it was
exploring when it lent it (docs/explorer.md, "One search on several workers").

The workers share every state a job has left, its summary complete: a job reaching a state
another job left treats it as one it left itself. Which job explores which state then
depends on who gets there first, so the states explored, executions and traces vary with
the number of workers and with timing. The verdict does not: every job is the sequential
algorithm run with some states already explored.

The coordinator below knows jobs and workers, not the search: a worker is a
`SearchWorker` whose `work(inbox)` takes messages, runs one batch of executions and
returns what happened. Workers run in this process (`simulate`: turns by a clock, the same
result for the same arguments) or in processes and on Ray (fsrace.distributed.actors).
"""

from __future__ import annotations

import gc
import pickle
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from .engine import ExecutionRecord
from .search import (
    _SEARCH_GC_THRESHOLDS,
    UNKNOWN,
    Limits,
    SearchResult,
    _search_gc,
    conclude,
    search,
)
from .stateful import StatefulDPOR, _Entries, _Interner, packed_numbers
from .step import Program

ROOT = 0  # the job that explores from the initial state


@dataclass
class Reply:
    """What a worker sends back after a call: plain data, so it crosses processes."""

    result: SearchResult | None = None  # the batch it ran, if any
    published: bytes = b""  # states its jobs left, pickled (SearchWorker._publish)
    loans: list = field(default_factory=list)  # (job, loan or None) for each lend asked
    done: list = field(default_factory=list)  # (job, requests, summary) for borrowed jobs
    root_done: bool = False
    idle: bool = False  # nothing it can run until it is given something
    busy_s: float = 0.0  # the time the call took


class SearchWorker:
    """The jobs one worker holds, and the states every worker left."""

    def __init__(self, build: Callable[[], Program], limits: Limits, batch: int,
                 stop_on_failure: bool,
                 observe: Callable[[ExecutionRecord], None] | None = None) -> None:
        self.build = build
        self.observe = observe
        self.limits = Limits(limits.max_steps, limits.max_retries, max_executions=batch)
        self.stop_on_failure = stop_on_failure
        self.jobs: dict[int, StatefulDPOR] = {}
        self.shared: dict[bytes, bytes] = {}  # key -> the state packed (_Entries.pack)
        self.keys: set[bytes] = set()  # states explored by its jobs that completed
        # Summary entries and sets, one copy each for all its jobs and what it receives:
        # unpickled copies would be compared by content, not identity, at every lift.
        self.intern = _Interner()
        self.entries = _Entries()
        self.lifted: dict[tuple, dict[tuple, tuple | None]] = {}
        # States share most summary entries: each goes to the others once, then by its
        # number (sent: this worker's entry number -> number sent; received: worker ->
        # this worker's entry numbers by the numbers that worker sent).
        self._sent: dict[int, int] = {}
        self._received: dict[int, list[int]] = {}

    def work(self, inbox: list[tuple]) -> Reply:
        start = time.perf_counter()
        with _search_gc():  # received states are many small objects too
            out = self._work(inbox)
        out.busy_s = time.perf_counter() - start
        return out

    def _work(self, inbox: list[tuple]) -> Reply:
        out = Reply()
        for msg in inbox:
            self._handle(msg, out)
        runnable = [j for j, s in self.jobs.items() if not s.waiting]
        if runnable:
            jid = max(runnable)  # the newest: finish a loan before going back to a lender
            job = self.jobs[jid]
            out.result = search(self.build, job, self.limits,
                                stop_on_failure=self.stop_on_failure, observe=self.observe)
            assert job.published is not None
            for k, packed in job.published:
                self._share(k, packed)
            if job.published:
                out.published = self._publish(job.published)
                job.published = []
            if job.complete:
                self.keys.update(job._seen)
                del self.jobs[jid]
                if jid == ROOT:
                    out.root_done = True
                else:
                    requests, entries = job.loan_result()
                    out.done.append((jid, requests, entries))
        out.idle = all(s.waiting for s in self.jobs.values())
        return out

    def _handle(self, msg: tuple, out: Reply) -> None:
        kind = msg[0]
        if kind == "job":
            _, jid, prefix, asleep = msg
            job = StatefulDPOR(prefix=prefix, asleep=asleep, borrowed=jid != ROOT)
            job.shared = self.shared
            job.published = []
            job.share_interning(self.intern, self.entries, self.lifted)
            self.jobs[jid] = job
        elif kind == "publish":
            _, sender, blob = msg
            new, states = pickle.loads(blob)
            table = self._received.setdefault(sender, [])
            table.extend(self.entries.number(self.intern.local(e)) for e in new)
            for k, sleep, numbers in states:
                self._share(k, self.entries.pack_numbers(self.intern(sleep),
                                                         map(table.__getitem__, numbers)))
        elif kind == "settle":
            _, jid, depth, task, requests, summary = msg
            self.jobs[jid].settle(depth, task, requests, summary)
        elif kind == "lend":
            jid = msg[1]
            lender = self.jobs.get(jid)  # gone if it completed since it was asked
            out.loans.append((jid, lender.lend() if lender is not None else None))
        else:
            raise ValueError(f"search worker: unknown message {kind!r}")

    def _publish(self, states: list[tuple[bytes, bytes]]) -> bytes:
        """States left, pickled once here (the coordinator passes the bytes on unopened):
        the entries no other worker has had yet, and each state's entries by number."""
        sent, entries, new, out = self._sent, self.entries.entries, [], []
        for k, packed in states:
            numbers = []
            for e in packed_numbers(packed):
                n = sent.get(e)
                if n is None:
                    n = sent[e] = len(sent)
                    new.append(self.intern.portable(entries[e]))
                numbers.append(n)
            out.append((k, self.entries.sleep(packed), numbers))
        return pickle.dumps((new, out), pickle.HIGHEST_PROTOCOL)

    def _share(self, key: bytes, packed: bytes) -> None:
        old = self.shared.get(key)
        if old is None or self.entries.sleep(packed) < self.entries.sleep(old):
            self.shared[key] = packed

    def finish(self) -> set[bytes]:
        """Every state its jobs explored (the unfinished ones' too, after a stop)."""
        for job in self.jobs.values():
            self.keys.update(job._seen)
        return self.keys


class Crew(Protocol):
    """Workers to call: `submit` one call of work(inbox) to worker i, `replies` yields
    (i, Reply) as calls end, `finish` gathers every worker's states and stops them."""

    size: int

    def submit(self, i: int, inbox: list[tuple]) -> None: ...

    def replies(self) -> Iterator[tuple[int, Reply]]: ...

    def finish(self) -> list[set[bytes]]: ...


def coordinate(crew: Crew, limits: Limits | None = None, stop_on_failure: bool = True,
               progress: Callable[[SearchResult], None] | None = None) -> SearchResult:
    """Run one search on the crew's workers: start the root job, hand branches to idle
    workers, carry publications, settlements and loans between them."""
    limits = limits or Limits()
    start = time.monotonic()
    total = SearchResult(strategy="stateful", verdict=UNKNOWN)
    n = crew.size
    owner: dict[int, int] = {ROOT: 0}  # job -> worker
    lender: dict[int, tuple[int, int, int]] = {}  # job -> (lending job, depth, task)
    inbox: list[list[tuple]] = [[] for _ in range(n)]
    busy = [False] * n
    idle = [False] * n
    asking: tuple[int, int] | None = None  # (job asked to lend, worker it is for)
    declined: set[int] = set()  # jobs that had nothing to lend since the last batch
    made = 1
    busy_s = 0.0
    complete = False
    stopped_by = ""
    last_report = start
    inbox[0].append(("job", ROOT, (), frozenset()))

    def call(i: int) -> None:
        busy[i] = True
        crew.submit(i, inbox[i])
        inbox[i] = []

    for i in range(n):
        call(i)
    replies = crew.replies()
    try:
        while True:
            if limits.max_executions is not None and total.executions >= limits.max_executions:
                stopped_by = f"--max-executions {limits.max_executions}"
                break
            if limits.time_limit is not None and time.monotonic() - start > limits.time_limit:
                stopped_by = f"--time-limit {limits.time_limit:g}s"
                break
            i, out = next(replies)
            busy[i] = False
            busy_s += out.busy_s
            idle[i] = out.idle
            if out.result is not None:
                total.absorb(out.result)
                declined.clear()  # a batch ran: branches may be there to lend now
            if out.published:
                for j in range(n):
                    if j != i:
                        inbox[j].append(("publish", i, out.published))
            for jid, loan in out.loans:
                _, wanting = asking  # type: ignore[misc]
                asking = None
                if loan is None:
                    declined.add(jid)
                    continue
                depth, task, prefix, asleep = loan
                owner[made], lender[made] = wanting, (jid, depth, task)
                inbox[wanting].append(("job", made, prefix, asleep))
                idle[wanting] = False
                made += 1
            for jid, requests, summary in out.done:
                back, depth, task = lender.pop(jid)
                del owner[jid]
                inbox[owner[back]].append(("settle", back, depth, task, requests, summary))
                idle[owner[back]] = False
            if out.root_done:
                complete = True
                break
            if total.counterexample is not None and stop_on_failure:
                stopped_by = "first failure"
                break
            if out.result is not None and out.result.stopped_by == "interrupted":
                raise KeyboardInterrupt
            if asking is None:
                wanting = next((j for j in range(n) if idle[j] and not busy[j]), None)
                victim = min((j for j in owner if j not in declined), default=None)
                if wanting is not None and victim is not None:
                    asking = (victim, wanting)
                    inbox[owner[victim]].append(("lend", victim))
            for j in range(n):
                if not busy[j] and (not idle[j] or any(m[0] != "publish" for m in inbox[j])):
                    call(j)
            if not any(busy):
                raise AssertionError("parallel search: every worker waits, nothing to lend")
            now = time.monotonic()
            if progress and now - last_report > 0.5:
                last_report = now
                total.elapsed_s = now - start
                total.traces = len(total.fingerprints)
                progress(total)
    except KeyboardInterrupt:
        stopped_by = "interrupted"
    keys: set[bytes] = set()
    total.explored = 0
    for part in crew.finish():
        keys |= part
        total.explored += len(part)  # a state two workers explored counts twice
    total.elapsed_s = time.monotonic() - start
    total.traces = len(total.fingerprints)
    total.states = len(keys)
    total.parts = made
    total.stopped_by = stopped_by
    total.complete = complete and not total.bounded and not total.starved
    share = busy_s / (n * total.elapsed_s) if total.elapsed_s else 0.0
    total.coverage = (f"{StatefulDPOR().bounds()}; one search on {n} workers, "
                      f"{made - 1} branches lent, workers busy {share:.0%} of the time")
    conclude(total)
    if progress:
        progress(total)
    return total


class InProcess:
    """Workers taking turns in this process: the next call to run is the one of the
    worker whose clock is least, the clock counting the steps each has run (or, with
    `seconds`, the time it took). The same arguments give the same result."""

    def __init__(self, build: Callable[[], Program], size: int, limits: Limits | None = None,
                 batch: int = 10, stop_on_failure: bool = True, seconds: bool = False,
                 observe: Callable[[ExecutionRecord], None] | None = None) -> None:
        limits = limits or Limits()
        self.size = size
        self.workers = [SearchWorker(build, limits, batch, stop_on_failure, observe)
                        for _ in range(size)]
        self.clocks = [0.0] * size
        self.seconds = seconds
        self._calls: dict[int, list[tuple]] = {}

    def submit(self, i: int, inbox: list[tuple]) -> None:
        self._calls[i] = inbox

    def replies(self) -> Iterator[tuple[int, Reply]]:
        while self._calls:
            i = min(self._calls, key=lambda j: (self.clocks[j], j))
            inbox = self._calls.pop(i)
            t = time.perf_counter()
            out = self.workers[i].work(inbox)
            if self.seconds:
                self.clocks[i] += time.perf_counter() - t
            else:
                self.clocks[i] += out.result.steps if out.result else 0
            if out.idle and out.result is None:  # waits until another worker moves
                self.clocks[i] = max(self.clocks[i],
                                     min((self.clocks[j] for j in self._calls), default=0))
            yield i, out

    def finish(self) -> list[set[bytes]]:
        return [w.finish() for w in self.workers]


def simulate(build: Callable[[], Program], workers: int, limits: Limits | None = None,
             stop_on_failure: bool = True, batch: int = 10, seconds: bool = False,
             progress: Callable[[SearchResult], None] | None = None,
             observe: Callable[[ExecutionRecord], None] | None = None
             ) -> tuple[SearchResult, list[float]]:
    """The search on `workers` workers taking turns here, and each worker's clock
    (`observe` hears every execution)."""
    crew = InProcess(build, workers, limits, batch, stop_on_failure, seconds, observe)
    res = coordinate(crew, limits, stop_on_failure, progress)
    return res, crew.clocks


class _Remote:
    """Workers in processes or on Ray (fsrace.distributed.Actors)."""

    def __init__(self, actors) -> None:
        self.actors = actors
        self.size = actors.size

    def submit(self, i: int, inbox: list[tuple]) -> None:
        self.actors.submit(i, "work", inbox)

    def replies(self) -> Iterator[tuple[int, Reply]]:
        return self.actors.replies()

    def finish(self) -> list[set[bytes]]:
        for _ in self.actors.replies():
            pass  # calls still running after a stop
        for i in range(self.size):
            self.actors.submit(i, "finish")
        return [keys for _, keys in self.actors.replies()]


def parallel_search(build: Callable[[], Program], jobs: int, limits: Limits | None = None,
                    stop_on_failure: bool = True,
                    progress: Callable[[SearchResult], None] | None = None,
                    ray: str | None = None, batch: int = 10) -> SearchResult:
    """One stateful search on `jobs` worker processes, or on `jobs` actors of a Ray
    cluster (`ray`: its address, or "local")."""
    from functools import partial

    from ..distributed import Actors

    limits = limits or Limits()
    factory = partial(_worker_process, build, limits, batch, stop_on_failure)
    with Actors(factory, jobs, ray) as actors:
        return coordinate(_Remote(actors), limits, stop_on_failure, progress)


def _worker_process(build: Callable[[], Program], limits: Limits, batch: int,
                    stop_on_failure: bool) -> SearchWorker:
    """A worker that has a process to itself: the search's collector thresholds for
    good, not only while a batch runs (received states are many small objects too)."""
    gc.set_threshold(*_SEARCH_GC_THRESHOLDS)
    return SearchWorker(build, limits, batch, stop_on_failure)
