"""Every scenario under every protocol: the verdict table, each cell backed by a search.

Cells are searched with the stateful search (or DPOR) up to a fixed number of executions
(not a time limit), so the table is the same on every machine. A cell the search leaves
unknown also gets a seeded random walk, which often reaches a race that a depth-first
order has not come to yet.

The cost of each protocol is measured on a mixed workload (two writers on two pages and a
punch, with the flusher) by a seeded random walk: how many task-steps a task spent unable
to run, and how many operations started over.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .distributed import map_unordered
from .explore.random_walk import RandomWalk
from .explore.search import FAILURES, Limits, Verdict, search
from .protocols import PROTOCOLS
from .run import CheckResult, builder, check, not_modelled
from .scenarios import SCENARIOS, Params

COST_SCENARIO = "punch-write-fault"
COST_PARAMS = Params(pages=2, writers=2)


@dataclass
class Cost:
    executions: int
    waits_per_execution: float
    retries_per_execution: float
    failures: int  # executions of the sample that broke a check


@dataclass
class Matrix:
    max_executions: int
    params: Params = field(default_factory=Params)
    strategy: str = "stateful"
    cells: dict[tuple[str, str], CheckResult | None] = field(default_factory=dict)  # None: n/a
    costs: dict[str, Cost] = field(default_factory=dict)
    cost_executions: int = 200  # of each protocol's cost walk (none if no protocol punches)
    scenarios: list[str] = field(default_factory=lambda: list(SCENARIOS))
    protocols: list[str] = field(default_factory=lambda: list(PROTOCOLS))
    stopped_by: str = ""  # "interrupted": cells is what was searched before Ctrl-C


def measure_cost(protocol: str, executions: int = 200, seed: int = 0) -> Cost:
    build = builder(COST_SCENARIO, protocol, COST_PARAMS)
    totals = {"waits": 0, "retries": 0, "failures": 0}

    def tally(rec) -> None:
        totals["waits"] += rec.waits
        totals["retries"] += rec.retries
        totals["failures"] += rec.outcome in FAILURES

    res = search(build, RandomWalk(seed=seed, executions=executions), Limits(),
                 stop_on_failure=False, observe=tally)
    n = max(res.executions, 1)
    return Cost(res.executions, totals["waits"] / n, totals["retries"] / n, totals["failures"])


RANDOM_EXECUTIONS = 3000
SHRINK = {"shrink_budget_s": 600.0, "shrink_attempts": 150}  # bounded by replays, not time


def check_cell(scenario: str, protocol: str, max_executions: int, params: Params,
               strategy: str, time_limit: float | None = None,
               deadline: float | None = None) -> CheckResult:
    """One cell: the complete search, and a random walk where it ends unknown. Each is
    bounded by `time_limit` seconds and by the wall-clock `deadline` (time.time()) of the
    whole matrix, if given."""

    def seconds_left() -> float | None:
        if deadline is None:
            return time_limit
        left = max(deadline - time.time(), 0.001)
        return left if time_limit is None else min(left, time_limit)

    res = check(scenario, protocol, params, strategy,
                limits=Limits(max_executions=max_executions, time_limit=seconds_left()),
                **_shrink(seconds_left()))
    out_of_time = deadline is not None and time.time() >= deadline
    if res.search.verdict == Verdict.UNKNOWN and not out_of_time \
            and res.search.stopped_by != "interrupted":
        sampled = check(scenario, protocol, params, "random", seed=0,
                        executions=RANDOM_EXECUTIONS, limits=Limits(time_limit=seconds_left()),
                        **_shrink(seconds_left()))
        if sampled.counterexample is not None:
            res = sampled
    return res


def _shrink(seconds: float | None) -> dict:
    if seconds is None:
        return SHRINK
    return dict(SHRINK, shrink_budget_s=min(SHRINK["shrink_budget_s"], seconds))


def run_matrix(max_executions: int = 10_000,
               on_cell: Callable[[str, str, CheckResult], None] | None = None,
               cost_executions: int = 200, scenarios: list[str] | None = None,
               costs: bool = True, params: Params | None = None,
               strategy: str = "stateful", jobs: int = 1, ray: str | None = None,
               cell_time_limit: float | None = None, time_limit: float | None = None,
               protocols: list[str] | None = None) -> Matrix:
    """Every scenario (or those named) under every protocol (or those named), and each
    protocol's cost.
    `strategy` is the complete search each cell gets (dpor or stateful), at `params`;
    `jobs` processes, or the Ray cluster at `ray` ("local": one started here), search
    cells side by side (each cell's search is bounded by executions, so the table is the
    same wherever it ran). `cell_time_limit` bounds each cell and `time_limit` the whole
    matrix, in seconds; either makes the table depend on the machine. Ctrl-C ends the
    matrix with the cells searched so far (`stopped_by` says so)."""
    m = Matrix(max_executions, params or Params(), strategy,
               scenarios=list(SCENARIOS) if scenarios is None else scenarios,
               protocols=list(PROTOCOLS) if protocols is None else protocols)
    todo = []
    for scenario in m.scenarios:
        for protocol in m.protocols:
            if not_modelled(scenario, protocol):
                m.cells[(scenario, protocol)] = None
            else:
                todo.append((scenario, protocol))
    deadline = time.time() + time_limit if time_limit is not None else None
    args = (max_executions, m.params, strategy, cell_time_limit, deadline)
    cells = [(scenario, protocol, *args) for scenario, protocol in todo]
    results = map_unordered(check_cell, cells, jobs, ray)
    try:
        for (scenario, protocol, *_), res in results:
            if res.search.stopped_by == "interrupted":  # Ctrl-C reached the cell first
                raise KeyboardInterrupt
            m.cells[(scenario, protocol)] = res
            if on_cell:
                on_cell(scenario, protocol, res)
    except KeyboardInterrupt:
        results.close()
        m.stopped_by = "interrupted"
        return m
    if time_limit is not None:
        assert deadline is not None
        m.stopped_by = f"--time-limit {time_limit:g}s" if time.time() >= deadline else ""
    m.cells = {(sc, p): m.cells[(sc, p)] for sc in m.scenarios for p in m.protocols}
    m.cost_executions = cost_executions
    if costs:
        for protocol in m.protocols:
            if not_modelled(COST_SCENARIO, protocol) is None:  # ocfs2's model has no punch
                m.costs[protocol] = measure_cost(protocol, cost_executions)
    return m
