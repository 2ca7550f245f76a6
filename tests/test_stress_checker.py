"""The stress checker against synthetic histories: each kind of wrong history is flagged,
and histories a correct kernel can produce pass."""

import itertools

from fsrace.stress.checker import (
    INF,
    Access,
    choice_write,
    linearizable,
    linearizable_wgl,
    window_values,
)
from fsrace.stress.ops import SCENARIOS, describe_value, op_stream, stamp, unstamp

INIT = stamp(0xFF, 0)
S1, S2 = stamp(1, 5), stamp(2, 9)


def w(inv, resp, value, who="w"):
    return Access(inv, resp, True, value, who)


def r(inv, resp, value, who="r"):
    return Access(inv, resp, False, value, who)


def test_a_stale_read_after_the_punch_returned_is_flagged():
    # punch [10, 20] returned; a read at [30, 40] still sees the old contents.
    assert not linearizable([w(10, 20, 0, "punch"), r(30, 40, INIT)], INIT)


def test_a_read_overlapping_the_punch_may_see_either():
    assert linearizable([w(10, 20, 0), r(15, 40, INIT)], INIT)
    assert linearizable([w(10, 20, 0), r(15, 40, 0)], INIT)


def test_a_lost_store_is_flagged():
    # The store returned, a read saw it, nothing wrote after: the final read must see it.
    h = [w(0, 5, S1, "store"), r(6, 7, S1), w(2, 3, 0, "punch"), r(100, 100, 0, "final")]
    assert not linearizable(h, INIT)


def test_a_store_racing_a_punch_may_be_wiped():
    h = [w(0, 10, S1, "store"), w(5, 20, 0, "punch"), r(100, 100, 0, "final")]
    assert linearizable(h, INIT)


def test_data_at_the_wrong_offset_is_flagged():
    # S2 was stored to some other slot; this slot can never hold it (collapse/insert gone
    # wrong, or a write to a block that moved).
    assert not linearizable([w(0, 5, S1), r(10, 11, S2)], INIT)


def test_a_torn_value_is_flagged_and_described():
    torn = (S1 & 0xFFFFFFFF) | (S2 & ~0xFFFFFFFF)
    assert not linearizable([w(0, 10, S1), w(0, 10, S2), r(5, 6, torn)], INIT)
    assert "not a stamp" in describe_value(0x1234) and describe_value(0) .startswith("0")


def test_reads_must_agree_on_one_order():
    # Two concurrent writes; readers after both disagree on which came last.
    h = [w(0, 10, S1), w(0, 10, S2), r(20, 21, S1), r(22, 23, S2)]
    assert not linearizable(h, INIT)
    assert linearizable(h[:3], INIT)


def test_an_operation_that_never_returned_may_have_happened_or_not():
    for check in (linearizable, linearizable_wgl):
        assert check([w(0, INF, S1), r(10, 11, S1)], INIT)
        assert check([w(0, INF, S1), r(10, 11, INIT)], INIT)
    # Only the whole-history search knows it cannot un-happen; the segmented check accepts.
    assert not linearizable_wgl([w(0, INF, S1), r(10, 11, S1), r(20, 21, INIT)], INIT)


def test_the_two_searches_agree_on_random_longer_histories():
    import random

    rng = random.Random(5)
    for _ in range(300):
        h, t = [], 0
        for _ in range(rng.randrange(3, 12)):
            t += rng.randrange(0, 6)
            write = rng.random() < 0.4
            h.append(Access(t, t + rng.randrange(1, 9), write,
                            rng.choice([INIT, S1, S2, 0]), ""))
        assert linearizable(h, INIT) == linearizable_wgl(h, INIT), h


def test_both_searches_agree_with_brute_force_on_small_histories():
    """Every history of up to four operations over three intervals: the segmented check and
    the whole-history search against trying every order of the operations."""
    spans = [(0, 10), (5, 15), (20, 30)]
    values = [INIT, S1, 0]
    ops = [(write, span, v) for write in (True, False) for span in spans for v in values]
    for n in (2, 3, 4):
        for combo in itertools.combinations(ops, n):
            h = [Access(s[0], s[1], wr, v, "") for wr, s, v in combo]
            want = _brute(h, INIT)
            assert linearizable(h, INIT) == want and linearizable_wgl(h, INIT) == want, h


def _random_history(rng, n: int, gap: int, length: int, choices: float) -> list:
    """n operations at random times: a share `choices` of writes that store one of two
    values, then plain writes and reads, about half each."""
    h, t = [], 0
    for _ in range(n):
        t += rng.randrange(0, gap)
        span = (t, t + rng.randrange(1, length))
        kind = rng.random()
        if kind < choices:
            h.append(choice_write(*span, rng.sample([INIT, S1, S2, 0], 2), ""))
        else:
            h.append(Access(*span, kind < choices + 0.25, rng.choice([INIT, S1, S2, 0]), ""))
    return h


def test_choice_writes_agree_across_the_three_searches():
    """Histories with writes that store one of two values (a collapse or copy moving
    whatever its source held): segmented check, whole-history search and brute force."""
    import random

    rng = random.Random(11)
    for _ in range(400):
        h = _random_history(rng, rng.randrange(2, 6), gap=6, length=9, choices=0.3)
        want = _brute(h, INIT)
        assert linearizable(h, INIT) == want and linearizable_wgl(h, INIT) == want, h


def test_a_long_move_over_many_short_operations_agrees_with_the_whole_history_search():
    """The shape a slow kernel gives: one collapse spanning a chain of loads and stores that
    overlap one another, so the whole run is one stretch; the frontier the stretch search
    keeps must take the operations in every order the whole-history search does."""
    import random

    rng = random.Random(23)
    for _ in range(300):
        n = rng.randrange(8, 30)
        h = _random_history(rng, n, gap=3, length=5, choices=0.1)
        h.append(choice_write(rng.randrange(0, 4), 3 * n, rng.sample([INIT, S1, S2, 0], 2),
                              "collapse"))
        assert linearizable(h, INIT) == linearizable_wgl(h, INIT), h


def test_a_choice_write_explains_only_its_values():
    move = choice_write(0, 10, [S1, 0], "collapse")
    assert linearizable([move, r(20, 21, S1)], INIT)
    assert linearizable([move, r(20, 21, 0)], INIT)
    assert not linearizable([move, r(20, 21, S2)], INIT)  # wrong offset
    assert not linearizable([move, r(20, 21, S1), r(22, 23, 0)], INIT)  # one value, not both


def test_window_values_are_what_the_source_may_hold_meanwhile():
    writes = [w(0, 5, S1), w(10, 15, S2), w(30, 40, 0)]
    assert window_values(writes, INIT, 20, 25) == {S2}  # S1 overwritten before 20
    assert window_values(writes, INIT, 12, 25) == {S1, S2}  # S2 may land later
    assert window_values(writes, INIT, 20, 35) == {S2, 0}
    assert window_values(writes, INIT, 1, 2) == {INIT, S1}
    assert window_values([w(0, INF, S1)], INIT, 10, 11) == {INIT, S1}  # never returned
    assert window_values(writes, INIT, 20, 25, exclude=writes[1]) == {S1}


def _brute(h, init):
    for order in itertools.permutations(range(len(h))):
        # real time: if a returned before b was invoked, a comes first
        pos = {i: k for k, i in enumerate(order)}
        if any(h[a].resp < h[b].inv and pos[a] > pos[b]
               for a in range(len(h)) for b in range(len(h))):
            continue
        states = {init}
        for i in order:
            if h[i].write:
                states = set(h[i].outcomes)
            elif h[i].value in states:
                states = {h[i].value}
            else:
                break
        else:
            return True
    return False


def test_stamps_name_their_worker_and_operation():
    assert unstamp(stamp(3, 1234)) == (3, 1234) and unstamp(0) is None


def test_operation_streams_are_reproducible_from_the_seed():
    for scenario in [None, *SCENARIOS]:
        a = list(itertools.islice(op_stream(7, 1, scenario, 16), 200))
        b = list(itertools.islice(op_stream(7, 1, scenario, 16), 200))
        c = list(itertools.islice(op_stream(8, 1, scenario, 16), 200))
        assert a == b and a != c
        assert all(0 <= op.page and op.page + op.npages <= 16 for op in a)


def test_a_final_fsync_error_is_noted_and_the_contents_read_after_a_second(tmp_path,
                                                                           monkeypatch):
    # The kernel reports a writeback error once per file (a direct write that could not
    # invalidate a mapped page sets it): the run notes it instead of failing.
    import errno
    import os

    from fsrace.stress import run

    path = tmp_path / "f"
    path.write_bytes(b"x" * run.PAGE)
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(run.os, "fsync", fsync)
    errors: list[str] = []
    assert run._read_all(str(path), 1, errors) == b"x" * run.PAGE
    assert len(calls) == 2 and errors == ["Input/output error (errno 5)"]


def test_without_leaves_operations_out_of_the_streams_and_stays_in_the_saved_config():
    import itertools
    from dataclasses import asdict

    import pytest

    from fsrace.stress.ops import op_stream
    from fsrace.stress.run import StressConfig

    drawn = {op.kind for op in itertools.islice(op_stream(0, 1, None, 16, ("dio_write",)), 3000)}
    assert "dio_write" not in drawn and "dio_read" in drawn
    cfg = StressConfig("ext4", None, without=("dio_write", "punch"))
    assert StressConfig(**asdict(cfg)) == cfg  # what save_log writes and load_config reads
    with pytest.raises(ValueError, match="no operation dio_wirte"):
        StressConfig("ext4", None, without=("dio_wirte",))
    with pytest.raises(ValueError, match="own operation"):
        StressConfig("ext4", "punch-write-fault", without=("punch",))
    with pytest.raises(ValueError, match="nothing to do"):
        StressConfig("ext4", "truncate-write-fault", without=("store", "load", "msync"))


def _lost_store_on_page_0(with_direct_write: bool):
    """A store to page 0 slot 0 that the final read does not show: a violation."""
    from fsrace.stress.ops import INIT_WORKER, PAGE, Op
    from fsrace.stress.run import Executed, StressConfig, StressResult, _check

    res = StressResult(StressConfig("tmpfs", None, workers=2, ops=1, pages=2))
    res.history = [Executed(1, 0, Op("store", page=0, slot=0), 10, 20, 0)]
    # Every slot reads as it started: only the store's slot is unexplained.
    final = b"".join(stamp(INIT_WORKER, p).to_bytes(8, "little") * (PAGE // 8)
                     for p in range(2))
    if with_direct_write:
        res.history.append(Executed(0, 0, Op("dio_write", page=0), 30, 40, PAGE))
    _check(res, [("final read", 100, final)], 0)
    return res


def test_a_violation_on_a_page_with_direct_and_mapped_writes_is_labelled_the_collision():
    from fsrace.stress.run import KNOWN_COLLISION, _direct_beside_mapped

    plain = _lost_store_on_page_0(False)
    both = _lost_store_on_page_0(True)
    assert len(plain.violations) == 1 and plain.violations[0].startswith("page 0 slot 0")
    assert KNOWN_COLLISION not in plain.violations[0]
    assert both.violations and all(KNOWN_COLLISION in v for v in both.violations)
    assert _direct_beside_mapped(both.history, "dio_write") == {0}


def test_a_narrowed_variant_is_checked_as_a_fresh_search_would():
    """Stretches.holds_with, which resumes from the first stretch a change touches and stops
    where the values agree again, against searching the changed history from the start."""
    import dataclasses
    import random

    from fsrace.stress.checker import Stretches

    rng = random.Random(17)
    tried = 0
    for _ in range(600):
        h = _random_history(rng, rng.randrange(2, 12), gap=5, length=8, choices=0.25)
        st = Stretches(h, INIT)
        assert st.holds == linearizable(h, INIT)
        if not st.holds:
            continue
        for _ in range(4):
            changes = []
            for a in rng.sample(h, rng.randrange(1, 3)):
                cut = rng.uniform(a.inv, a.resp)
                b = dataclasses.replace(a, inv=cut) if rng.random() < 0.5 else \
                    dataclasses.replace(a, resp=cut)
                if b.choices and rng.random() < 0.5:
                    b = choice_write(b.inv, b.resp, b.choices[:1], "")
                changes.append((a, b))
            new = {id(a): b for a, b in changes}
            variant = [new.get(id(a), a) for a in h]
            assert st.holds_with(changes) == linearizable(variant, INIT), (h, changes)
            tried += 1
    assert tried > 500


def test_a_violation_is_shown_when_its_first_unexplained_stretch_returns():
    from fsrace.stress.checker import shown_at

    # The stale read [30, 40] overlaps a later store [35, 50]: both are the stretch.
    h = [w(10, 20, 0, "punch"), r(30, 40, INIT), w(35, 50, S1), r(60, 70, S1)]
    assert shown_at(h, INIT) == 50
    assert shown_at([w(10, 20, 0), r(30, 40, 0)], INIT) is None
    # The lost store of _lost_store_on_page_0 shows only at the final read, at 100.
    assert _lost_store_on_page_0(False).first_violation_ns == 100
