"""The stateful search tested against the naive one.

The naive search runs every interleaving. On random programs (data, locks, rwsems, waits,
branches, trylock loops), the stateful search must reach exactly the same final states
(random programs never nest locks, so none deadlocks: a model deadlock is checked on its
own), never a state the naive search does not reach, and its explored graph
must hold a linearization of every trace the naive search runs: following the graph's
edges from the initial state to a final state, every Mazurkiewicz trace appears. Without
the reduction it must visit exactly the naive search's states.
"""

from __future__ import annotations

import sys

import pytest

import toy
from fsrace.explore.dpor import DPOR
from fsrace.explore.engine import (
    BOUNDED,
    DEADLOCK,
    DONE,
    STARVATION,
    Event,
    Execution,
    run_execution,
)
from fsrace.explore.exhaustive import Exhaustive
from fsrace.explore.search import search
from fsrace.explore.stateful import StatefulDPOR
from fsrace.explore.step import READ, WRITE, Program, Step, Task, touches
from fsrace.explore.trace import fingerprint


def _keys_along(build, events) -> list[bytes]:
    """The state before each step of an execution and after its last."""
    ex = Execution(build())
    keys = [ex.state_key()]
    for ev in events:
        ex.run_step(ev.task)
        keys.append(ex.state_key())
    return keys


def _run_keeping_keys(build, chooser, max_steps, max_retries=None):
    """Run one execution and return its record and the state before each step and after
    its last (the state the execution stopped in)."""
    keys: list[bytes] = []
    running = []

    def choose(ex, enabled):
        if not running:
            running.append(ex)
        keys.append(ex.state_key())
        choice = chooser(ex, enabled)
        if choice is None or choice < 0:
            keys.pop()  # no step follows: the final key is taken below
        return choice

    rec = run_execution(build(), choose, max_steps, max_retries)
    ex = running[0] if running else Execution(build())
    keys.append(ex.state_key())
    assert len(keys) == len(rec.events) + 1
    return rec, keys


def naive(build, max_steps=80, max_executions=1500):
    """Every state, final state and trace of the naive search; None if an execution ran
    into the step bound (a loop the naive search cannot finish) or the program has more
    interleavings than a unit test should enumerate."""
    strat = Exhaustive()
    states, finals, traces = set(), set(), set()
    runs = 0
    while (chooser := strat.next_execution()) is not None:
        rec, keys = _run_keeping_keys(build, chooser, max_steps)
        strat.finished(rec)
        runs += 1
        if rec.outcome == BOUNDED or runs > max_executions:
            return None
        states.update(keys)
        finals.add((rec.outcome, keys[-1]))
        traces.add(fingerprint(rec.events))
    return states, finals, traces


def stateful(build, reduce=True, max_steps=200):
    """The stateful search's states, final states and explored graph."""
    strat = StatefulDPOR(reduce=reduce)
    edges: dict[bytes, set] = {}
    finals, states = set(), set()
    root = None
    while (chooser := strat.next_execution()) is not None:
        rec, keys = _run_keeping_keys(build, chooser, max_steps, max_retries=12)
        strat.finished(rec)
        assert rec.outcome != BOUNDED
        if rec.outcome == STARVATION:  # a retry loop repeated until the bound: no new state
            continue
        root = keys[0]
        states.update(keys)
        for k, ev in enumerate(rec.events):
            edges.setdefault(keys[k], set()).add(
                (ev.task, ev.step.label, tuple(ev.step.accesses), keys[k + 1]))
        if rec.outcome in (DONE, DEADLOCK):
            finals.add((rec.outcome, keys[-1]))
    assert strat.complete
    return states, finals, edges, root, strat


def traces_in_graph(edges, root, final_keys, limit=300_000):
    """The trace of every path from the initial state to a final state (no state twice)."""
    out: set[str] = set()
    budget = [limit]

    def walk(key, events, on_path):
        budget[0] -= 1
        assert budget[0] > 0, "graph too large to enumerate"
        if key in final_keys:
            out.add(fingerprint(events))
        for task, label, acc, nxt in edges.get(key, ()):
            if nxt not in on_path:
                walk(nxt, events + [Event(task, Step(label, acc))], on_path | {nxt})

    walk(root, [], {root})
    return out


def _check(build, loops=False):
    ref = naive(build)
    if ref is None:
        return False
    ref_states, ref_finals, ref_traces = ref
    states, finals, edges, root, _ = stateful(build)
    assert finals == ref_finals
    assert states <= ref_states
    if not loops:
        assert traces_in_graph(edges, root, {k for _, k in finals}) == ref_traces
    return True


# (tasks, steps per task, locks, data objects). The first two are checked on every run,
# the larger ones (a minute each) with the slow tests.
SHAPES = [(2, 4, 2, 1), (3, 2, 2, 1),
          pytest.param((3, 3, 1, 2), marks=pytest.mark.slow),
          pytest.param((3, 3, 2, 1), marks=pytest.mark.slow)]


@pytest.mark.parametrize("shape", SHAPES)
def test_stateful_search_covers_every_trace_of_random_programs(shape):
    checked = sum(_check(lambda: toy.random_program(seed, *shape))  # noqa: B023
                  for seed in range(25))
    assert checked >= 8


@pytest.mark.parametrize("shape", SHAPES)
def test_stateful_search_covers_every_trace_of_programs_that_branch_on_data(shape):
    seeds = range(6) if shape in ((2, 4, 2, 1), (3, 2, 2, 1)) else range(25)
    checked = sum(_check(lambda: toy.random_program(seed, *shape, branches=True))  # noqa: B023
                  for seed in seeds)
    assert checked >= 2


@pytest.mark.slow
def test_stateful_search_reaches_every_final_state_of_programs_with_retry_loops():
    checked = looped = 0
    for seed in range(40):
        build = lambda: toy.random_program(seed, 2, 3, 1, 1, loops=True)  # noqa: B023
        ref = naive(build, max_steps=24)
        if ref is None:
            # The naive search cannot finish a loop; the stateful one must, and must reach
            # every final state the bounded naive search reaches.
            bounded = _bounded_finals(build, 24, max_executions=1000)
            if bounded is not None:
                _, finals, *_ = stateful(build)
                assert bounded <= finals
                looped += 1
            continue
        checked += _check(build, loops=True)
    assert checked >= 10 and looped >= 3


def _bounded_finals(build, max_steps, max_executions=3000):
    """The final states of every interleaving within the step bound; None if there are
    more interleavings than a test should enumerate."""
    strat = Exhaustive()
    finals = set()
    runs = 0
    while (chooser := strat.next_execution()) is not None:
        rec = run_execution(build(), chooser, max_steps)
        strat.finished(rec)
        runs += 1
        if runs > max_executions:
            return None
        if rec.outcome in (DONE, DEADLOCK):
            finals.add((rec.outcome, _keys_along(build, rec.events)[-1]))
    return finals


@pytest.mark.slow
def test_stateful_search_matches_naive_with_fair_rwsems_and_trylocks():
    checked = sum(_check(lambda: toy.random_program(seed, 3, 3, 2, 1, kernel_locks=True))  # noqa: B023
                  for seed in range(20))
    assert checked >= 5


@pytest.mark.parametrize("shape,branches", [((3, 2, 2, 1), False), ((2, 4, 2, 1), True)])
def test_without_the_reduction_it_visits_exactly_the_naive_states(shape, branches):
    compared = 0
    for seed in range(10):
        build = lambda: toy.random_program(seed, *shape, branches=branches)  # noqa: B023
        ref = naive(build)
        if ref is None:
            continue
        states, finals, *_ = stateful(build, reduce=False)
        assert states == ref[0] and finals == ref[1]
        compared += 1
    assert compared >= 5


def _same_stores() -> Program:
    """Two tasks storing 1 to x, then 1 to y: four traces (the stores conflict), but every
    order reaches the same states."""
    mem = {"x": 0, "y": 0}

    def body():
        for name in ("x", "y"):
            yield Step(f"store {name}", (touches(name, WRITE),))
            mem[name] = 1

    def state(enc):
        enc.share(mem)
        return enc.value(mem)

    return Program([Task("T0", body()), Task("T1", body())], state=state)


def test_a_state_reached_twice_is_explored_once():
    ref = search(_same_stores, DPOR())
    res = search(_same_stores, StatefulDPOR())
    assert ref.traces == 4
    assert res.complete and res.verdict == "safe"
    assert res.cached > 0 and res.steps < ref.steps  # executions cut short at a seen state
    # x and y each 0 or 1 per task position: fewer states than the 4 traces' 16 steps.
    assert res.states is not None and res.states < 16


def test_a_deadlock_is_found_and_reported_with_its_locks():
    # read(2) into a mapping of the same file under iolock-mkwrite: the reader holds the
    # IO lock shared and faults into page_mkwrite, which queues behind the punch's writer.
    from fsrace.run import check

    res = check("read-into-own-mapping", "iolock-mkwrite", strategy="stateful",
                shrink_budget_s=0)
    assert res.search.verdict == "deadlock"
    waiting = res.counterexample.waiting
    assert set(waiting) == {"TASK1", "TASK2"}
    assert all("A.iolock" in why for why in waiting.values())


@pytest.mark.parametrize("scenario,protocol", [("punch-write-fault", "invalidate-lock"),
                                               ("truncate-write-fault", "linux-2012")])
def test_kept_encodings_give_the_keys_a_fresh_encoding_gives(scenario, protocol):
    # The engine keeps each waiting task's (and frame's) encoding between steps; along
    # random schedules the key must equal one computed from nothing.
    import random

    from fsrace.run import builder
    from fsrace.scenarios import Params

    build = builder(scenario, protocol, Params(pages=2, writers=2))
    rng = random.Random(7)
    compared = 0
    for _ in range(20):
        ex = Execution(build())
        while (enabled := ex.enabled()):
            key = ex.state_key()
            ex._continuations = [None] * len(ex.tasks)
            ex._frames = [None] * len(ex.tasks)
            assert ex.state_key() == key
            compared += 1
            ex.run_step(rng.choice(enabled))
    assert compared > 200


class _Unaided(StatefulDPOR):
    """The stateful search re-encoding and re-checking every replayed step."""

    checked_prefix = 0


@pytest.mark.parametrize("scenario,protocol,pages,writers,strategy", [
    ("punch-write-fault", "invalidate-lock", 1, 1, "stateful"),
    ("punch-write-fault", "linux-2012", 1, 2, "stateful"),
    ("punch-write-fault", "invalidate-lock", 1, 1, "auto"),
    ("truncate-write-fault", "linux-2012", 2, 1, "auto"),
])
def test_inherited_encodings_and_unchecked_replays_change_nothing(scenario, protocol, pages,
                                                                   writers, strategy):
    # An execution replaying a stored prefix takes the encodings kept at its backtrack point
    # and skips the checks its prefix passed before: the search must be the one it is
    # without either, state for state and step for step, with the same witness.
    import dataclasses

    from fsrace.explore.portfolio import Portfolio
    from fsrace.run import builder, make_strategy
    from fsrace.scenarios import Params

    build = builder(scenario, protocol, Params(pages=pages, writers=writers))
    checks = [0]

    def counted():
        prog = build()
        check_step = prog.check_step

        def check(step):
            checks[0] += 1
            return check_step(step)

        return dataclasses.replace(prog, check_step=check)

    aided = make_strategy(strategy)
    res = search(counted, aided)
    assert checks[0] < res.steps  # replayed steps were passed over
    unaided = _Unaided() if strategy == "stateful" else \
        Portfolio([_Unaided(), *make_strategy(strategy).members[1:]])
    ref = search(lambda: dataclasses.replace(build(), state_lookup=None), unaided)
    assert (res.verdict, res.states, res.executions, res.traces, res.steps, res.complete) == \
        (ref.verdict, ref.states, ref.executions, ref.traces, ref.steps, ref.complete)
    if ref.counterexample is not None:
        assert [(e.task, e.step.label) for e in res.counterexample.events] == \
            [(e.task, e.step.label) for e in ref.counterexample.events]


def _continuation(gen) -> tuple:
    from fsrace.explore.state import StateEncoder

    next(gen)
    return StateEncoder({}, {}, {}).continuation(gen)[0]


def _dead_then_live(dead, live):
    scratch = dead  # overwritten below before any read: dead at the yield
    yield "step"
    scratch = live
    yield scratch


def _read_in_handler(a):
    kept = a
    try:
        yield "step"
    except KeyError:
        yield kept  # read only if an exception reaches the handler
    yield "end"


def _read_after_loop(a):
    total = a
    for i in range(2):
        yield i + 1
    yield total


def test_a_local_no_path_reads_again_is_not_part_of_the_state():
    assert _continuation(_dead_then_live(1, 5)) == _continuation(_dead_then_live(2, 5))
    assert _continuation(_dead_then_live(1, 5)) != _continuation(_dead_then_live(1, 6))
    assert _continuation(_read_in_handler(1)) != _continuation(_read_in_handler(2))
    assert _continuation(_read_after_loop(1)) != _continuation(_read_after_loop(2))


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="frame layout checked on 3.11")
def test_every_frame_of_the_model_is_encoded_by_its_live_locals():
    # Where the analysis does not know the bytecode or the frame's layout, a frame is
    # encoded whole: still correct, but states that differ only in dead variables are
    # told apart. On this Python no frame of the model may fall back to that.
    import random

    from fsrace.explore import state
    from fsrace.run import builder
    from fsrace.scenarios import Params

    frames = []
    real = state.StateEncoder._frame

    def spy(self, gen, frame):
        out = real(self, gen, frame)
        frames.append(out)
        return out

    build = builder("punch-write-fault", "invalidate-lock", Params(pages=2, writers=2))
    rng = random.Random(3)
    state.StateEncoder._frame = spy
    try:
        for _ in range(5):
            ex = Execution(build())
            while (enabled := ex.enabled()):
                ex.state_key()
                ex.run_step(rng.choice(enabled))
    finally:
        state.StateEncoder._frame = real
    assert len(frames) > 100
    assert [f[0] for f in frames if f[3] == "all"] == []


def test_the_model_never_rebinds_a_variable_of_another_frame():
    # The state encoder reuses a waiting frame's encoding, and a closure's cells with it;
    # that is sound because no closure in the model rebinds a cell (`nonlocal`).
    from pathlib import Path

    import fsrace

    root = Path(fsrace.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if "nonlocal " in p.read_text()]
    assert offenders == []


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["punch-read", "writeback-store", "write-from-own-mapping",
                                      "punch-read-fault", "read-into-own-mapping"])
def test_stateful_search_agrees_with_dpor_on_the_model(scenario):
    # Two strategies on the model, cell by cell, each search fresh: where DPOR decides a
    # cell, the stateful search decides it the same way (a failure for a failure, safe
    # for safe). docs/verdicts.md is the stateful search's table (tests/test_matrix.py).
    from fsrace.explore.search import Limits
    from fsrace.protocols import PROTOCOLS
    from fsrace.run import check, not_modelled

    failures = {"race", "deadlock", "starvation"}
    compared = 0
    for protocol in PROTOCOLS:
        if not_modelled(scenario, protocol):
            continue
        dpor = check(scenario, protocol, strategy="dpor", shrink_budget_s=0,
                     limits=Limits(max_executions=10_000)).search
        res = check(scenario, protocol, strategy="stateful", shrink_budget_s=0,
                    limits=Limits(max_executions=10_000)).search
        assert res.verdict != "unknown", protocol
        if dpor.verdict == "safe":
            assert res.verdict == "safe" and res.complete, protocol
            compared += 1
        elif dpor.verdict in failures:
            assert res.verdict in failures, protocol
            compared += 1
    assert compared >= 10


def test_a_cycle_that_passes_a_runnable_task_over_is_not_starvation():
    # T0 retries until T1 clears the flag; T1 can always run. The cycle T0 -> T0 leaves
    # T1 out although it could run: no fair scheduler repeats it, so the search closes it
    # and goes on, and every execution in which T1 runs ends.
    flag = {"busy": True}

    def build():
        flag["busy"] = True

        def t0():
            while True:
                st = Step("try", (touches("flag", READ),))
                yield st
                if not flag["busy"]:
                    return
                st.retry = True

        def t1():
            yield Step("clear flag", (touches("flag", WRITE),))
            flag["busy"] = False

        return Program([Task("T0", t0()), Task("T1", t1())],
                       state=lambda enc: (flag["busy"],), state_constants=(flag,))

    res = search(build, StatefulDPOR())
    assert res.complete and res.verdict == "safe"


def test_a_retry_loop_back_to_a_state_is_reported_as_starvation():
    # Under mkwrite-retry a fault can start over forever; the stateful search sees the
    # loop close and repeats it until the retry bound, as the stateless search reports it.
    from fsrace.run import check, replay

    res = check("read-into-own-mapping", "mkwrite-retry", strategy="stateful",
                shrink_budget_s=0)
    assert res.search.verdict == "starvation"
    cx = res.counterexample
    assert replay("read-into-own-mapping", "mkwrite-retry", cx.schedule).outcome == "starvation"


def test_an_unknown_says_what_would_help():
    from fsrace.explore.search import Limits
    from fsrace.report.text import full_report
    from fsrace.run import check

    res = check("punch-write-fault", "invalidate-lock", limits=Limits(max_executions=5))
    assert res.search.verdict == "unknown"
    assert "to finish: raise --max-executions" in full_report(res)
    res = check("punch-write-fault", "invalidate-lock", strategy="dpor",
                limits=Limits(max_executions=5))
    assert "--strategy stateful" in full_report(res)


def test_summary_entries_keep_their_accesses_across_numberings():
    """Y is a mask in one search's numbering of accesses; an entry sent to another search
    (a worker, a loan) must arrive with the same accesses under that search's numbering."""
    from fsrace.explore.stateful import _Interner

    here, there = _Interner(), _Interner()
    there.mask([("C.extents", "r"), ("B.i_pages", "w")])  # a different numbering
    y = here.mask([("A.lock", "acq"), ("A.i_size", "r"), ("B.i_pages", "w")])
    entry = ((1, frozenset({("A.i_size", "r", None)})), (y, frozenset({0, 2})))
    (key, (y2, tasks)) = there.local(here.portable(entry))
    assert key == entry[0] and tasks == entry[1][1]
    assert y2 != y  # the bits differ ...
    assert set(there.accesses(y2)) == set(here.accesses(y))  # ... the accesses do not
    assert set(here.accesses(y)) == {("A.lock", "acq"), ("A.i_size", "r"), ("B.i_pages", "w")}
    # A step writing A.i_size conflicts with the read in Y; one reading B.i_pages with the
    # write; one touching neither object conflicts with nothing.
    assert y2 & there.conflicting({"A.i_size": {WRITE}})
    assert y2 & there.conflicting({"B.i_pages": {READ}})
    assert not y2 & there.conflicting({"C.extents": {WRITE}})
    assert not there.mask([("A.i_size", "r")]) & there.conflicting({"A.i_size": {READ}})
