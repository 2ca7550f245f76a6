"""The model's gfs2 (fsrace.kernel.gfs2, fsrace.protocols.gfs2): its glock keeps faults,
mkwrite and reads off a punch, readahead is not held off, and invalidate_lock over the
punch (the fix) closes that; a write from the file's own mapping does not deadlock on the
glock, which gfs2 takes only after faulting the source in."""

import pytest

from fsrace.run import check, not_modelled


def test_readahead_reads_the_punched_blocks_back_between_the_cache_drop_and_the_free():
    res = check("punch-readahead", "gfs2-6.1", shrink_budget_s=0)
    assert res.search.verdict == "race"
    cx = res.counterexample
    assert cx.failure.name == "file-contents"
    labels = [(cx.task_names[e.task], e.step.label) for e in cx.events]
    order = [labels.index(x) for x in (
        ("TASK1", "truncate_inode_page(A:0)"),
        ("TASK2", "mpage_readpage: submit_bio(READ)"),
        ("TASK1", "ext4_ext_remove_space"))]
    assert order == sorted(order)
    # The glock is held by the punch throughout; readahead never asks for it.
    assert not any(t == "TASK2" and "i_gl" in label for t, label in labels)


@pytest.mark.parametrize("scenario", ["punch-readahead", "punch-read-fault",
                                      "punch-write-fault", "truncate-write-fault"])
def test_invalidate_lock_over_the_punch_is_safe_by_a_complete_search(scenario):
    res = check(scenario, "gfs2-invalidate-lock", shrink_budget_s=0)
    assert res.search.complete and res.search.verdict == "safe"


@pytest.mark.parametrize("scenario", ["punch-write-fault", "punch-read-fault", "punch-read",
                                      "write-from-own-mapping", "read-into-own-mapping"])
def test_the_glock_alone_keeps_faults_and_reads_off_the_punch(scenario):
    res = check(scenario, "gfs2-6.1", shrink_budget_s=0)
    assert res.search.complete and res.search.verdict == "safe"


def test_what_gfs2_refuses_is_not_modelled_as_the_file_systems_refusal():
    for scenario in ("zero-range-write-fault", "collapse-write-fault", "insert-write-fault",
                     "clone-write-fault"):
        why = not_modelled(scenario, "gfs2-6.1")
        assert why is not None and why.startswith("gfs2-6.1's file system refuses")
    assert not_modelled("copy-write-fault", "gfs2-6.1") is None
