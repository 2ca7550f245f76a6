"""One check from names to result: scenario + protocol -> explorer -> shrunk counterexample.

The CLI and the reports go through here; nothing here knows how results are shown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .explore.bounded import PreemptionBounded
from .explore.dpor import DPOR
from .explore.engine import (
    Chooser,
    ExecutionRecord,
    ExecutionView,
    replay_chooser,
    run_execution,
)
from .explore.exhaustive import Exhaustive
from .explore.parallel import parallel_search
from .explore.pct import PCT
from .explore.portfolio import Portfolio
from .explore.random_walk import RandomWalk
from .explore.replay import Replay
from .explore.schedule import Schedule
from .explore.search import Limits, Progress, SearchResult, search
from .explore.shrink import Shrunk, lenient_chooser, shrink
from .explore.stateful import StatefulDPOR
from .explore.step import Program
from .kernel.kernel import filesystem_of
from .protocols import PROTOCOLS
from .scenarios import SCENARIOS, Params, build_program

STRATEGIES = {
    "auto": "stateful, with pct beside it for its first --executions executions (round "
            "robin): a shallow race turns up at once, and a complete search proves safety",
    "dpor": "optimal DPOR (source sets, sleep sets, wakeup trees): one execution per "
            "trace (complete)",
    "stateful": "stateful DPOR: as dpor, but an execution stops at a state explored before "
                "(complete; reports distinct states)",
    "exhaustive": "every interleaving, naive depth-first (complete, exponential; for "
                  "cross-checking)",
    "random": "seeded uniform random walk (sampling; never proves safety)",
    "pct": "probabilistic concurrency testing, priority change points (--depth, --seed)",
    "bounded": "iterative preemption bounding: all schedules with 0, 1, 2 ... preemptions "
               "(--preemptions)",
    "portfolio": "dpor, pct and random side by side, round robin; stops at the first race",
}


class UsageError(ValueError):
    """Bad names or parameters; the message says what is valid."""


def _lookup(kind: str, name: str, table: dict):
    if name not in table:
        raise UsageError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(table))}")
    return table[name]


_TABLES: dict[str, dict[str, Any]] = {"scenario": SCENARIOS, "protocol": PROTOCOLS}
_BUNDLED = {kind: frozenset(table) for kind, table in _TABLES.items()}


def named(kind: str, thing) -> str:
    """The registry name of a scenario or protocol given by name, as MODULE:NAME, or as an
    object (a Scenario class or instance, a Protocol class or instance). One from outside
    the package is registered under its `name`, so replays, reports and `fsrace list` in
    this process know it; a name another kind of object already has is refused."""
    table = _TABLES[kind]
    if isinstance(thing, str):
        if ":" not in thing:
            _lookup(kind, thing, table)
            return thing
        thing = load_object(kind, thing)
    # Scenarios are registered as instances, protocols as classes.
    if kind == "scenario" and isinstance(thing, type):
        thing = thing()
    if kind == "protocol" and not isinstance(thing, type):
        thing = type(thing)
    name = getattr(thing, "name", "")
    if not name:
        raise UsageError(f"a {kind} object needs a name (its `name` attribute)")
    known = table.setdefault(name, thing)
    same = known is thing or (kind == "scenario" and type(known) is type(thing))
    if not same:
        raise UsageError(f"{kind} name {name!r} is taken by another {kind}")
    return name


def command_name(kind: str, name: str) -> str:
    """How a command line names a registered scenario or protocol: its name if fsrace ships
    it, else MODULE:NAME (what another process can load), if it has one."""
    if name in _BUNDLED[kind]:
        return name
    obj = _TABLES[kind].get(name)
    cls = obj if isinstance(obj, type) else type(obj)
    if obj is None or "<locals>" in cls.__qualname__:
        return name
    return f"{cls.__module__}:{cls.__qualname__}"


def load_object(kind: str, spec: str):
    """`MODULE:NAME` imported: a scenario (class or instance) or a protocol class."""
    import importlib

    module, _, attr = spec.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise UsageError(f"cannot load the {kind} {spec}: {e}") from e
    return obj


PLUGIN_GROUPS = {"scenario": "fsrace.scenarios", "protocol": "fsrace.protocols"}


def load_plugins() -> list[str]:
    """Register the scenarios and protocols installed packages offer through the entry-point
    groups fsrace.scenarios and fsrace.protocols; one that fails to load is skipped with
    a warning naming it. Returns the warnings."""
    from importlib.metadata import entry_points

    warnings = []
    for kind, group in PLUGIN_GROUPS.items():
        for ep in entry_points(group=group):
            try:
                named(kind, ep.load())
            except Exception as e:  # noqa: BLE001 - another package's bug is not fsrace's
                warnings.append(f"{group} entry point {ep.name} ({ep.value}) not loaded: {e}")
    return warnings


def not_modelled(scenario: str, protocol: str) -> str | None:
    """Why a scenario cannot run under a protocol (an operation its file system refuses, or
    one the protocol's model leaves out), or None."""
    scen = _lookup("scenario", scenario, SCENARIOS)
    proto = _lookup("protocol", protocol, PROTOCOLS)
    fs = filesystem_of(proto.filesystem)
    refused = sorted(scen.needs & fs.refused)
    if refused:
        return f"{protocol}'s file system refuses {', '.join(refused)} (-EOPNOTSUPP)"
    missing = sorted(scen.needs & proto.unsupported)
    if missing:
        spec = proto.filesystem
        runs = f"fsrace.kernel.{spec}" if isinstance(spec, str) else f"the model of {fs.name}"
        # the protocol, not always its file system, lacks it: xfs-2012 runs the XFS
        # model, which has a remap, but stands for kernels before reflink
        return f"{protocol} (on {runs}) models no {', '.join(missing)} operation"
    return None


def builder(scenario: str, protocol: str, params: Params) -> Callable[[], Program]:
    scen = _lookup("scenario", scenario, SCENARIOS)
    proto = _lookup("protocol", protocol, PROTOCOLS)
    why = not_modelled(scenario, protocol)
    if why:
        raise UsageError(f"{scenario} under {protocol} is not modelled: {why}")
    return lambda: build_program(scen, proto, params)


def make_strategy(name: str, seed: int = 0, executions: int = 1000, depth: int = 3,
                  preemptions: int = 3):
    _lookup("strategy", name, STRATEGIES)
    if name == "dpor":
        return DPOR()
    if name == "auto":
        return Portfolio([StatefulDPOR(), PCT(seed=seed, depth=depth, executions=executions)])
    if name == "stateful":
        return StatefulDPOR()
    if name == "exhaustive":
        return Exhaustive()
    if name == "pct":
        return PCT(seed=seed, depth=depth, executions=executions)
    if name == "bounded":
        return PreemptionBounded(max_bound=preemptions)
    if name == "portfolio":
        return Portfolio([DPOR(), PCT(seed=seed, depth=depth, executions=executions),
                          RandomWalk(seed=seed, executions=executions)])
    return RandomWalk(seed=seed, executions=executions)


@dataclass
class CheckResult:
    scenario: str
    protocol: str
    params: Params
    strategy: str
    seed: int
    search: SearchResult
    shrunk: Shrunk | None = None
    # The execution the reports draw, with the model's state after every step: the
    # counterexample, else the tasks one after another (for a replay, the replay itself).
    shown: ExecutionRecord | None = None

    @property
    def counterexample(self) -> ExecutionRecord | None:
        if self.shrunk is not None:
            return self.shrunk.record
        return self.search.counterexample

    def replay_command(self) -> str:
        cx = self.counterexample
        if cx is None:
            return ""
        return (f"fsrace replay --scenario {command_name('scenario', self.scenario)} "
                f"--protocol {command_name('protocol', self.protocol)}"
                f"{param_flags(self.params)} '{cx.schedule}'")


def param_flags(params: Params) -> str:
    default = Params()
    flags = ""
    if params.pages != default.pages:
        flags += f" --pages {params.pages}"
    if params.writers != default.writers:
        flags += f" --writers {params.writers}"
    if params.blocks_per_page != default.blocks_per_page:
        flags += f" --blocks-per-page {params.blocks_per_page}"
    return flags


def check(scenario, protocol, params: Params | None = None, strategy: str = "auto",
          seed: int = 0, executions: int = 1000, limits: Limits | None = None,
          stop_on_failure: bool = True, shrink_budget_s: float = 5.0,
          progress: Progress | None = None, depth: int = 3,
          preemptions: int = 3, shrink_attempts: int | None = None, jobs: int = 1,
          ray: str | None = None) -> CheckResult:
    """Search one scenario under one protocol. `jobs` > 1 or `ray`: the stateful search
    on that many workers (explore/parallel.py)."""
    scenario = named("scenario", scenario)
    protocol = named("protocol", protocol)
    params = params or Params()
    limits = limits or Limits()
    build = builder(scenario, protocol, params)
    if (jobs > 1 or ray is not None) and strategy != "stateful":
        raise UsageError(f"--jobs and --ray share one stateful search; --strategy {strategy} "
                         "runs in one process")
    if jobs > 1 or ray is not None:
        res = parallel_search(build, jobs, limits, stop_on_failure, progress, ray)
    else:
        strat = make_strategy(strategy, seed, executions, depth, preemptions)
        res = search(build, strat, limits, stop_on_failure=stop_on_failure,
                     progress=progress)
    out = CheckResult(scenario, protocol, params, strategy, seed, res)
    if res.counterexample is not None and shrink_budget_s > 0:
        out.shrunk = shrink(build, res.counterexample, limits.max_steps, shrink_budget_s,
                            limits.max_retries, shrink_attempts)
    out.shown = _shown(build, out.counterexample)
    return out


def _shown(build: Callable[[], Program], cx: ExecutionRecord | None) -> ExecutionRecord:
    """The counterexample's schedule (None: the tasks one after another, as far as they go)
    run with the model's state kept after every step. A search keeps no states (they would
    cost it a description per step), so the one execution the reports draw runs once
    more, here; it stops where the counterexample stopped."""
    if cx is None:
        choose: Chooser = lenient_chooser(())
    else:
        follow = replay_chooser(cx.schedule)
        end = len(cx.schedule.choices)

        def choose(ex: ExecutionView, enabled: Sequence[int]) -> int | None:
            return follow(ex, enabled) if len(ex.events) < end else None

    return run_execution(build(), choose, 100_000, None, keep_states=True)


def replay(scenario: str, protocol: str, schedule: Schedule, params: Params | None = None,
           max_steps: int = 100_000, max_retries: int | None = Limits.max_retries
           ) -> ExecutionRecord:
    """The one execution the schedule names (ReplayError if it cannot be followed)."""
    return replay_check(scenario, protocol, schedule, params, max_steps, max_retries)[1]


def replay_check(scenario: str, protocol: str, schedule: Schedule,
                 params: Params | None = None, max_steps: int = 100_000,
                 max_retries: int | None = Limits.max_retries
                 ) -> tuple[CheckResult, ExecutionRecord]:
    """A replay as a search by the Replay strategy: the result in check's form (never
    `safe`), and the execution."""
    scenario = named("scenario", scenario)
    protocol = named("protocol", protocol)
    params = params or Params()
    strat = Replay(schedule, keep_states=True)
    res = search(builder(scenario, protocol, params), strat,
                 Limits(max_steps=max_steps, max_retries=max_retries))
    if strat.record is None:  # search() stops before its one execution only on Ctrl-C
        raise KeyboardInterrupt
    return (CheckResult(scenario, protocol, params, "replay", 0, res, shown=strat.record),
            strat.record)
