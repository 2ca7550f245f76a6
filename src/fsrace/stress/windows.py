"""Race windows: how often a run gave its race class a chance.

A window is hit when an access of the class (a store or load through the mapping; for the
read classes a pread or readahead) by another stream starts and returns on a page the
class's own operation affects, while that operation runs (between its invocation and its
return). A run whose own operation was never so overlapped tested nothing of the race,
whatever its reads say."""

from __future__ import annotations

import bisect
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


def count_windows(history: Sequence, scenario: str, pages: int) -> Windows:
    """The windows a run hit (`history`: its executed operations, refused ones included)."""
    own = own_operation(scenario)
    drawn = set(SCENARIOS[scenario][1])
    accesses = drawn & FAULTS or drawn & READS
    by_page: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
    for e in history:
        if e.op.kind in accesses and e.result >= 0 and e.resp != INF:
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
