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

from collections.abc import Callable
from dataclasses import dataclass, field

from .distributed import map_unordered
from .explore.random_walk import RandomWalk
from .explore.search import Limits, search
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
    scenarios: list[str] = field(default_factory=lambda: list(SCENARIOS))
    protocols: list[str] = field(default_factory=lambda: list(PROTOCOLS))


def measure_cost(protocol: str, executions: int = 200, seed: int = 0) -> Cost:
    build = builder(COST_SCENARIO, protocol, COST_PARAMS)
    totals = {"waits": 0, "retries": 0, "failures": 0}

    def tally(rec) -> None:
        totals["waits"] += rec.waits
        totals["retries"] += rec.retries
        totals["failures"] += rec.outcome in ("violation", "deadlock", "starvation")

    res = search(build, RandomWalk(seed=seed, executions=executions), Limits(),
                 stop_on_failure=False, observe=tally)
    n = max(res.executions, 1)
    return Cost(res.executions, totals["waits"] / n, totals["retries"] / n, totals["failures"])


RANDOM_EXECUTIONS = 3000
SHRINK = {"shrink_budget_s": 600.0, "shrink_attempts": 150}  # bounded by replays, not time


def check_cell(scenario: str, protocol: str, max_executions: int, params: Params,
               strategy: str) -> CheckResult:
    """One cell: the complete search, and a random walk where it ends unknown."""
    res = check(scenario, protocol, params, strategy,
                limits=Limits(max_executions=max_executions), **SHRINK)
    if res.search.verdict == "unknown":
        sampled = check(scenario, protocol, params, "random", seed=0,
                        executions=RANDOM_EXECUTIONS, **SHRINK)
        if sampled.counterexample is not None:
            res = sampled
    return res


def run_matrix(max_executions: int = 10_000,
               on_cell: Callable[[str, str, CheckResult], None] | None = None,
               cost_executions: int = 200, scenarios: list[str] | None = None,
               costs: bool = True, params: Params | None = None,
               strategy: str = "stateful", jobs: int = 1, ray: str | None = None
               ) -> Matrix:
    """Every scenario (or those named) under every protocol, and each protocol's cost.
    `strategy` is the complete search each cell gets (dpor or stateful), at `params`;
    `jobs` processes, or the Ray cluster at `ray` ("local": one started here), search
    cells side by side (each cell's search is bounded by executions, so the table is the
    same wherever it ran)."""
    m = Matrix(max_executions, params or Params(), strategy,
               scenarios=list(SCENARIOS) if scenarios is None else scenarios)
    todo = []
    for scenario in m.scenarios:
        for protocol in m.protocols:
            if not_modelled(scenario, protocol):
                m.cells[(scenario, protocol)] = None
            else:
                todo.append((scenario, protocol))
    args = (max_executions, m.params, strategy)
    cells = [(scenario, protocol, *args) for scenario, protocol in todo]
    for (scenario, protocol, *_), res in map_unordered(check_cell, cells, jobs, ray):
        m.cells[(scenario, protocol)] = res
        if on_cell:
            on_cell(scenario, protocol, res)
    m.cells = {(sc, p): m.cells[(sc, p)] for sc in m.scenarios for p in m.protocols}
    if costs:
        for protocol in m.protocols:
            if not_modelled(COST_SCENARIO, protocol) is None:  # the SMB client has no punch
                m.costs[protocol] = measure_cost(protocol, cost_executions)
    return m
