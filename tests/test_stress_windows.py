"""Race windows: an access counts when it runs wholly inside the class's own operation, on
a page that operation affects, from another stream."""

from types import SimpleNamespace as Ran

import pytest

from fsrace.stress.checker import INF
from fsrace.stress.ops import PAGE, Op
from fsrace.stress.windows import affected_pages, count_windows


def _ran(kind, inv, resp, worker, result=0, **op):
    return Ran(op=Op(kind, **op), inv=inv, resp=resp, worker=worker, result=result)


def test_only_accesses_wholly_inside_on_an_affected_page_from_another_stream_count():
    history = [
        _ran("punch", 10, 20, 0, page=0, npages=2),
        _ran("store", 12, 15, 1, page=1),  # inside: counts
        _ran("load", 10, 20, 2, page=0),  # the same instants as the punch: counts
        _ran("store", 12, 25, 1, page=1),  # returns after the punch
        _ran("store", 5, 15, 1, page=1),  # started before it
        _ran("store", 12, 15, 1, page=2),  # a page the punch does not touch
        _ran("store", 12, 15, 0, page=1),  # the punch's own stream
        _ran("store", 12, 15, 1, page=1, result=-7),  # refused (SIGBUS)
        _ran("store", 12, INF, 1, page=1),  # never returned
        _ran("msync", 12, 15, 1, page=1),  # not an access of the class
        _ran("punch", 30, 40, 0, page=0, npages=1),  # a punch nothing ran inside
        _ran("punch", 50, 60, 0, page=0, npages=1, result=-95),  # refused: not counted
    ]
    w = count_windows(history, "punch-write-fault", 4)
    assert (w.hit, w.operations, w.operations_hit) == (2, 2, 1)


def test_the_read_classes_count_preads():
    history = [_ran("punch", 10, 20, 0, page=0, npages=1), _ran("pread", 11, 12, 1, page=0)]
    assert count_windows(history, "punch-read", 4).hit == 1
    assert count_windows(history, "punch-write-fault", 4).hit == 0


@pytest.mark.parametrize("op,pages,expected", [
    (Op("punch", page=1, npages=2), 8, [1, 2]),
    (Op("truncate", size=3 * PAGE), 8, [3, 4, 5, 6, 7]),
    (Op("collapse", page=5, npages=1), 8, [5, 6, 7]),
    (Op("clone", page=2, npages=3, src=6), 8, [2, 3, 4]),
    (Op("punch", page=6, npages=4), 8, [6, 7]),
])
def test_affected_pages(op, pages, expected):
    assert list(affected_pages(op, pages)) == expected


def test_windows_until_an_instant_count_only_accesses_returned_by_then():
    history = [_ran("punch", 10, 40, 0, page=0, npages=1), _ran("store", 12, 15, 1, page=0),
               _ran("store", 20, 30, 1, page=0)]
    assert count_windows(history, "punch-write-fault", 4, until=29).hit == 1
    assert count_windows(history, "punch-write-fault", 4, until=30).hit == 2


def test_a_rate_counts_windows_to_the_first_violation_and_all_of_a_clean_run():
    from fsrace.stress.windows import Rate, Windows

    rate = Rate()
    for w in (Windows(hit=100, before_violation=20), Windows(hit=50),
              Windows(hit=80, before_violation=60)):
        rate.add(w)
    assert (rate.runs, rate.shown, rate.windows) == (3, 2, 130)
    assert rate.p == pytest.approx(2 / 130)
    # The exact one-sided 90% Poisson bound for 2 events is 0.5318 expected events.
    assert rate.lower(0.9) == pytest.approx(0.5318 / 130, rel=1e-3)
    assert Rate(runs=2, shown=0, windows=500).lower() == 0.0
    # A run that showed it before any window returned: a rate of 1, not a division by 0.
    assert Rate(runs=1, shown=1, windows=0).p == 1.0


def test_windows_needed_is_the_least_k_that_shows_a_race_with_the_asked_chance():
    from fsrace.stress.windows import windows_needed

    assert windows_needed(0.1) == 44  # 1 - 0.9^44 = 0.9903; 0.9^43 leaves 0.0108
    assert windows_needed(1.0) == 1
    assert windows_needed(0.0) is None
    assert windows_needed(0.5, confidence=0.75) == 2
