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
