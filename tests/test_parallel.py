"""One stateful search on several workers (explore/parallel.py) covers what one search
covers: the workers lend each other branches and share the states they left."""

from __future__ import annotations

import pytest

import toy
from fsrace.explore.engine import DEADLOCK, DONE
from fsrace.explore.parallel import parallel_search, simulate
from fsrace.explore.search import Limits
from fsrace.run import builder
from fsrace.scenarios import Params
from test_stateful import _keys_along, naive

SHAPES = [
    dict(tasks=3, steps=3, objects=2, locks=1),
    dict(tasks=3, steps=3, objects=2, locks=1, kernel_locks=True),
    dict(tasks=3, steps=3, objects=2, locks=1, branches=True),
    dict(tasks=2, steps=4, objects=2, locks=1, loops=True),
]


def _finals(build, workers, batch):
    finals = set()

    def seen(rec):
        if rec.outcome in (DONE, DEADLOCK):
            finals.add((rec.outcome, _keys_along(build, rec.events)[-1]))

    res, _ = simulate(build, workers, stop_on_failure=False, batch=batch, observe=seen)
    return finals, res


@pytest.mark.slow
@pytest.mark.parametrize("workers,batch", [(2, 1), (3, 2)])
@pytest.mark.parametrize("shape", range(len(SHAPES)))
def test_the_workers_reach_every_final_state_the_naive_search_reaches(shape, workers, batch):
    checked = lent = 0
    for seed in range(20):
        build = lambda: toy.random_program(seed, **SHAPES[shape])  # noqa: B023, E731
        ref = naive(build)
        if ref is None:
            continue
        ref_states, ref_finals, _ = ref
        finals, res = _finals(build, workers, batch)
        assert res.complete, seed
        assert {k for _, k in finals} == {k for _, k in ref_finals}, seed
        assert res.states <= len(ref_states)
        checked += 1
        lent += res.parts - 1
        if checked == 5:
            break
    assert checked == 5
    assert lent > 0  # branches did go from one worker to another


def test_turns_taken_in_process_give_the_same_result_each_time():
    build = builder("punch-write-fault", "invalidate-lock", Params())
    one, clocks_one = simulate(build, 2, batch=3)
    two, clocks_two = simulate(build, 2, batch=3)
    assert one.verdict == two.verdict == "safe"
    assert (one.states, one.traces, one.executions, one.parts, clocks_one) == \
        (two.states, two.traces, two.executions, two.parts, clocks_two)
    assert one.parts > 1


def test_two_worker_processes_prove_the_fix_and_find_the_2012_race():
    safe = parallel_search(builder("punch-write-fault", "invalidate-lock", Params()), 2,
                           batch=3)
    assert safe.verdict == "safe" and safe.complete
    assert safe.states >= 2192 * 0.9  # about the one-process search's 2,192
    race = parallel_search(builder("punch-write-fault", "linux-2012", Params()), 2, batch=3)
    assert race.verdict == "race"
    assert race.counterexample is not None and race.counterexample.failure is not None


def test_a_parallel_search_stops_at_its_time_limit():
    build = builder("punch-write-fault", "invalidate-lock", Params(writers=2))
    res = parallel_search(build, 2, Limits(time_limit=1.0))
    assert res.verdict == "unknown" and not res.complete
    assert res.stopped_by.startswith("--time-limit")
