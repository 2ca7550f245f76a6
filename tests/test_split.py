"""A stateful search split into parts (explore/split.py) covers what one search covers, and
reports the same counts whatever runs its parts."""

from __future__ import annotations

import pytest

import toy
from fsrace.distributed import map_unordered
from fsrace.explore.engine import DEADLOCK, DONE
from fsrace.explore.search import Limits
from fsrace.explore.split import in_process, search_part, split_search
from fsrace.run import builder
from fsrace.scenarios import Params
from test_stateful import _keys_along, naive


def _finals(build, depth):
    """The final states a split search reaches, and its result."""
    finals = set()

    def seen(rec):
        if rec.outcome in (DONE, DEADLOCK):
            finals.add((rec.outcome, _keys_along(build, rec.events)[-1]))

    res = split_search(build, in_process(build, False, seen), depth, stop_on_failure=False,
                       observe=seen)
    return finals, res


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("shape", [(2, 4, 2, 1), (3, 2, 2, 1)])
def test_the_parts_reach_every_final_state_the_naive_search_reaches(shape, depth):
    checked = 0
    for seed in range(12):
        build = lambda: toy.random_program(seed, *shape)  # noqa: B023, E731
        ref = naive(build)
        if ref is None:
            continue
        ref_states, ref_finals, _ = ref
        finals, res = _finals(build, depth)
        assert res.complete
        assert {k for _, k in finals} == {k for _, k in ref_finals}
        assert res.states <= len(ref_states)
        checked += 1
    assert checked >= 4


def _model_part(part, limits, deadline):
    build = builder("punch-write-fault", "invalidate-lock", Params())
    return search_part(build, part, limits, deadline)


def _on_workers(jobs):
    def run(parts, limits, deadline):
        for _, result in map_unordered(_model_part, [(p, limits, deadline) for p in parts],
                                       jobs=jobs):
            yield result
    return run


def test_the_same_counts_on_one_worker_and_on_two():
    build = builder("punch-write-fault", "invalidate-lock", Params())
    one = split_search(build, _on_workers(1), depth=3)
    two = split_search(build, _on_workers(2), depth=3)
    assert one.verdict == two.verdict == "safe"
    assert one.complete and two.complete
    assert one.parts == two.parts > 4
    assert (one.states, one.traces, one.executions, one.explored) == \
        (two.states, two.traces, two.executions, two.explored)


def test_a_split_search_finds_the_2012_race():
    build = builder("punch-write-fault", "linux-2012", Params())
    res = split_search(build, in_process(build), depth=3)
    assert res.verdict == "race"
    assert res.counterexample is not None and res.counterexample.failure is not None


def test_a_split_search_stops_at_its_time_limit():
    build = builder("punch-write-fault", "invalidate-lock", Params(writers=2))
    res = split_search(build, in_process(build), depth=2, limits=Limits(time_limit=1.0))
    assert res.verdict == "unknown" and not res.complete
    assert res.elapsed_s < 10
