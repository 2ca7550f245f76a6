"""Race windows: how often a run gave its race class a chance.

A window is hit when an access of the class (a store or load through the mapping; for the
read classes a pread or readahead) by another stream starts and returns on a page the
class's own operation affects, while that operation runs (between its invocation and its
return). A run whose own operation was never so overlapped tested nothing of the race,
whatever its reads say."""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from .checker import INF
from .ops import PAGE, SCENARIOS, TO_OTHER, own_operation

FAULTS = {"store", "load"}  # through the mapping
READS = {"pread", "willneed"}  # the read classes' accesses (punch-read, punch-readahead)


@dataclass
class Windows:
    hit: int = 0  # accesses that ran wholly inside an operation of the class
    operations: int = 0  # the class's own operations carried out
    operations_hit: int = 0  # ... with at least one access inside
    # Of `hit`, those that had returned when the run first showed a violation (None: no
    # violation): the windows it took to show the race, for its rate (fsrace stress-rates).
    before_violation: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def affected_pages(op, pages: int) -> Iterable[int]:
    """The pages an operation removes, moves, zeroes or reads."""
    if op.kind == "truncate":
        return range(op.size // PAGE, pages)
    if op.kind in ("collapse", "insert"):
        return range(op.page, pages)
    if op.kind in TO_OTHER:  # the range it reads, here; it writes the other file
        return range(op.src, min(op.src + op.npages, pages))
    return range(op.page, min(op.page + op.npages, pages))


def count_windows(history: Sequence, scenario: str, pages: int, until: float = INF) -> Windows:
    """The windows a run hit (`history`: its executed operations, refused ones included),
    counting only accesses that had returned by `until`."""
    own = own_operation(scenario)
    drawn = set(SCENARIOS[scenario][1])
    accesses = drawn & FAULTS or drawn & READS
    by_page: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
    for e in history:
        if e.op.kind in accesses and e.result >= 0 and e.resp != INF and e.resp <= until:
            by_page[e.op.page].append((e.inv, e.resp, e.worker))
    for spans in by_page.values():
        spans.sort()
    out = Windows()
    for e in history:
        if e.op.kind != own or e.result < 0 or e.resp == INF:
            continue
        out.operations += 1
        inside = 0
        for p in affected_pages(e.op, pages):
            spans = by_page.get(p, [])
            i = bisect.bisect_left(spans, (e.inv, -INF, -1))
            while i < len(spans) and spans[i][0] <= e.resp:
                inv, resp, worker = spans[i]
                if resp <= e.resp and worker != e.worker:
                    inside += 1
                i += 1
        out.hit += inside
        out.operations_hit += inside > 0
    return out


@dataclass
class Rate:
    """How often a hit window showed a race, from runs of one class on one kernel and file
    system. Each window is taken as an independent chance that shows the race with
    probability p, so a run's windows up to its first violation are a draw of the
    geometric law, and a clean run's windows a draw cut short: p's estimate is the runs
    that showed it over the windows observed to the first violation (all of a clean
    run's). `lower` is p's one-sided lower bound at `confidence` (the exact Poisson bound
    on the count shown), for a K that holds even if the runs were lucky."""

    runs: int = 0
    shown: int = 0  # runs with a violation
    windows: int = 0  # observed: to the first violation, or all of a clean run's

    def add(self, windows: Windows) -> None:
        self.runs += 1
        if windows.before_violation is not None:
            self.shown += 1
            self.windows += windows.before_violation
        else:
            self.windows += windows.hit

    @property
    def p(self) -> float:
        if not self.shown:
            return 0.0
        # Shown before any window had returned: every chance showed it.
        return min(1.0, self.shown / self.windows) if self.windows else 1.0

    def lower(self, confidence: float = 0.9) -> float:
        """The largest p below which `shown` or more would be this unlikely (1 - confidence)."""
        if not self.shown or not self.windows:
            return 0.0
        lo, hi = 0.0, float(self.shown)  # in expected showings over the windows
        for _ in range(100):
            mid = (lo + hi) / 2
            if _poisson_at_least(self.shown, mid) < 1 - confidence:
                lo = mid
            else:
                hi = mid
        return lo / self.windows


def _poisson_at_least(k: int, mean: float) -> float:
    """P(X >= k) for X Poisson with this mean."""
    term, below = math.exp(-mean), 0.0
    for i in range(k):
        below += term
        term *= mean / (i + 1)
    return max(0.0, 1.0 - below)


def windows_needed(p: float, confidence: float = 0.99) -> int | None:
    """Windows that show a race of per-window rate p with this probability: the least K
    with 1 - (1 - p)^K >= confidence (None: p is 0, no K does)."""
    if p <= 0:
        return None
    if p >= 1:
        return 1
    return math.ceil(math.log(1 - confidence) / math.log1p(-p))
