"""The model's f2fs insert and collapse ranges: each gap in their invalidate_lock is a race
of its own; for the insert with the symptom the real kernels show
(docs/findings/f2fs-insert-mmap.md)."""

import pytest

from fsrace.protocols import PROTOCOLS
from fsrace.protocols.f2fs import F2fs, F2fsLocked
from fsrace.run import check


class FlushUnlockedOnly(F2fs):
    name = "test-f2fs-flush-unlocked"
    insert_drops_lock = False


class DropsLockOnly(F2fs):
    name = "test-f2fs-drops-lock"
    insert_flushes_unlocked = False


@pytest.mark.parametrize("proto,symptom", [
    # A store between the unlocked flush and truncate_pagecache is dropped with its page:
    # page 0 is a hole and page 1 has the old data, the store on neither.
    (FlushUnlockedOnly, "[[0, 0, 0, 0], ['a0', 'a0', 'a0', 'a0']]"),
    # A write fault in the unlocked gap dirties the copied-from page 0, still cached over
    # its freed block: the last flush writes the pre-insert data back at offset 0.
    (DropsLockOnly, "[['TASK2', 'a0', 'a0', 'a0'], ['a0', 'a0', 'a0', 'a0']]"),
])
def test_each_gap_in_f2fs_insert_range_is_a_race(monkeypatch, proto, symptom):
    monkeypatch.setitem(PROTOCOLS, proto.name, proto)
    res = check("insert-write-fault", proto.name, shrink_budget_s=0)
    assert res.search.verdict == "race"
    assert f"file A ends as {symptom}" in res.counterexample.failure.message


def test_the_exchange_copies_a_checkpointed_block_and_leaves_its_page_cached():
    res = check("insert-write-fault", "f2fs", shrink_budget_s=0)
    labels = [ev.step.label for ev in res.counterexample.events]
    copy = labels.index("__clone_blkaddrs: memcpy_page(0 -> 1), set_page_dirty")
    assert labels.index("up_write(A.invalidate_lock)") > copy
    assert "page 0 stays cached" in res.counterexample.events[copy].step.note


def _collapse_gap(attr):
    return type(f"Collapse{attr}", (F2fsLocked,), {"name": f"test-f2fs-{attr}", attr: True})


@pytest.mark.parametrize("attr,invariant", [
    # A store between the unlocked flush and truncate_pagecache is dropped with its page;
    # the exchange copies the block's old data.
    ("collapse_flushes_unlocked", "file-contents"),
    # A write fault in the unlocked gap dirties the stale source page, cached over the
    # hole its block left: the last truncate drops it, store and all.
    ("collapse_drops_lock", "file-contents"),
    # i_size shrinks after the lock is dropped: a fault in between maps the page past the
    # new end of file and dirties it.
    ("collapse_sizes_unlocked", "nothing-beyond-eof"),
])
def test_each_gap_in_f2fs_collapse_range_loses_a_store(monkeypatch, attr, invariant):
    proto = _collapse_gap(attr)
    monkeypatch.setitem(PROTOCOLS, proto.name, proto)
    res = check("collapse-write-fault", proto.name, shrink_budget_s=0)
    assert res.search.verdict == "race"
    assert res.counterexample.failure.name == invariant
    if invariant == "file-contents":  # the store returned and is found nowhere
        assert "file A ends as [['a1', 'a1', 'a1', 'a1'], []]" in res.counterexample.failure.message
        assert "TASK2 store A[4] = 'TASK2' (mmap) saw 'ok'" in res.counterexample.failure.message


def test_one_section_with_its_i_size_closes_the_collapse():
    res = check("collapse-write-fault", "f2fs-locked", shrink_budget_s=0)
    assert res.search.complete and res.search.verdict == "safe"
