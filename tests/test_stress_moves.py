"""The stress checker on operations that move values between pages (collapse, insert,
copy, clone): synthetic histories of three pages, each flagged or passed as a correct
kernel would have them."""

import pytest

from fsrace.stress.ops import INIT_WORKER, PAGE, SLOT, SLOTS, Op, stamp
from fsrace.stress.run import Executed, StressConfig, StressResult, _check

PAGES = 3


def init(p):
    return stamp(INIT_WORKER, p)


def page_of(value, slot_values=None):
    words = [value] * SLOTS
    for s, v in (slot_values or {}).items():
        words[s] = v
    return b"".join(w.to_bytes(SLOT, "little") for w in words)


def violations(ops, final_pages):
    """Check `ops` (Executed records) against a final read at t=100 of `final_pages`."""
    res = StressResult(StressConfig("tmpfs", None, workers=2, pages=PAGES))
    res.history = ops
    _check(res, [("final read", 100, b"".join(final_pages))], 0)
    return res.violations


def op(kind, inv, resp, worker=0, index=0, result=0, **kw):
    return Executed(worker, index, Op(kind, **kw), inv, resp, result)


COLLAPSE = op("collapse", 10, 20, page=0, npages=1)  # 1 -> 0, 2 -> 1, tail zeroed
INSERT = op("insert", 10, 20, page=0, npages=1)  # hole at 0, 0 -> 1, 1 -> 2


def test_a_collapse_that_shifted_by_its_length_passes():
    assert not violations([COLLAPSE], [page_of(init(1)), page_of(init(2)), page_of(0)])


@pytest.mark.parametrize("final", [
    [page_of(init(0)), page_of(init(1)), page_of(init(2))],  # returned, but nothing moved
    [page_of(init(2)), page_of(0), page_of(0)],  # shifted by two pages, not one
    [page_of(init(1)), page_of(init(2)), page_of(init(2))],  # the tail kept its old data
])
def test_a_collapse_gone_wrong_is_flagged(final):
    v = violations([COLLAPSE], final)
    assert v and "collapse pages 0-0" in v[0] and "<- unexplained" in v[0]


def test_an_insert_moves_up_and_leaves_a_hole():
    assert not violations([INSERT], [page_of(0), page_of(init(0)), page_of(init(1))])
    assert violations([INSERT], [page_of(init(0)), page_of(init(0)), page_of(init(1))])
    assert violations([INSERT], [page_of(0), page_of(init(1)), page_of(init(1))])


def test_a_store_before_the_collapse_moves_with_its_page():
    s = stamp(1, 0)
    store = op("store", 0, 5, worker=1, page=1, slot=0)
    good = [page_of(init(1), {0: s}), page_of(init(2)), page_of(0)]
    assert not violations([store, COLLAPSE], good)
    lost = [page_of(init(1)), page_of(init(2)), page_of(0)]  # the store did not move
    v = violations([store, COLLAPSE], lost)
    assert v and "page 0 slot 0" in v[0]
    stayed = [page_of(init(1)), page_of(init(2), {0: s}), page_of(0)]  # nor stayed put
    assert violations([store, COLLAPSE], stayed)


def test_a_store_racing_the_collapse_lands_before_or_after_it():
    s = stamp(1, 0)
    store = op("store", 12, 15, worker=1, page=1, slot=0)
    moved = [page_of(init(1), {0: s}), page_of(init(2)), page_of(0)]
    after = [page_of(init(1)), page_of(init(2), {0: s}), page_of(0)]
    assert not violations([store, COLLAPSE], moved)
    assert not violations([store, COLLAPSE], after)


def test_a_chain_of_moves_is_followed():
    # Two collapses in a row: page 2's contents end on page 0.
    second = op("collapse", 30, 40, index=1, page=0, npages=1)
    assert not violations([COLLAPSE, second], [page_of(init(2)), page_of(0), page_of(0)])
    assert violations([COLLAPSE, second], [page_of(init(1)), page_of(0), page_of(0)])


def test_copy_and_clone_replace_the_destination_with_the_source():
    for kind, result in (("copy", PAGE), ("clone", 0)):
        copy = op(kind, 10, 20, result=result, page=2, src=0, npages=1)
        assert not violations([copy], [page_of(init(0)), page_of(init(1)), page_of(init(0))])
        assert violations([copy], [page_of(init(0)), page_of(init(1)), page_of(init(2))])
        assert violations([copy], [page_of(init(0)), page_of(init(1)), page_of(init(1))])


def test_a_copy_that_stopped_inside_a_page_may_leave_the_rest():
    copy = op("copy", 10, 20, result=PAGE // 2, page=2, src=0, npages=1)
    half = page_of(init(0), {s: init(2) for s in range(SLOTS // 2, SLOTS)})
    assert not violations([copy], [page_of(init(0)), page_of(init(1)), half])


def test_a_refused_move_changes_nothing():
    refused = op("collapse", 10, 20, result=-22, page=0, npages=1)
    assert not violations([refused], [page_of(init(p)) for p in range(PAGES)])
    assert violations([refused], [page_of(init(1)), page_of(init(2)), page_of(0)])


def test_the_indexed_window_agrees_with_the_reference():
    """run._Register.window (binary searches per worker) against checker.window_values
    (a scan), on random sequential histories of three workers."""
    import random

    from fsrace.stress.checker import INF, Access, window_values
    from fsrace.stress.run import _Register, _Write

    rng = random.Random(3)
    for _ in range(300):
        writes = []
        for w in range(3):
            t = rng.randrange(5)
            for i in range(rng.randrange(5)):
                inv = t + rng.randrange(4)
                t = inv + rng.randrange(1, 6)
                resp = INF if rng.random() < 0.05 else t
                writes.append(_Write(inv, resp, f"W{w} op {i}", w, (rng.randrange(6),)))
                if resp == INF:
                    break
        reg = _Register(99, writes)
        ref = [Access(x.inv, x.resp, True, x.values[0], x.who) for x in writes]
        for _ in range(5):
            a = rng.randrange(30)
            b = a + rng.randrange(8)
            ex = rng.choice(writes) if writes and rng.random() < 0.3 else None
            if ex is not None:  # as in use: a move asks over its own interval
                if ex.resp == INF:
                    continue
                a, b = ex.inv, ex.resp
            want = window_values([x for x in ref if ex is None or x.who != ex.who], 99, a, b)
            assert reg.window(a, b, ex.who if ex else "", []) == want
