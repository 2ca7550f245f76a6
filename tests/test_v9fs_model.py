"""The model's 9p client (fsrace.kernel.v9fs): its truncate writes back, sends Tsetattr and
only then truncate_setsize, so a store between them goes back to the server past its new
end of file (docs/findings/9p-truncate-mmap.md); the fix keeps faults out across all three
and dirties the page under the lock, and is safe by a complete search; with the page
dirtied after the lock is dropped, the same search still finds the race."""

from fsrace.protocols import PROTOCOLS
from fsrace.run import check

TSETATTR = "v9fs_vfs_setattr_dotl: Tsetattr(size), the server's ftruncate"
TWRITE = "p9_client_write: Twrite, the server's pwrite"


def test_the_6_1_truncate_lets_a_store_reach_the_server_past_its_new_end():
    res = check("truncate-write-fault", "9p-6.1", shrink_budget_s=0)
    assert res.search.verdict == "race"
    assert res.counterexample.failure.name == "nothing-beyond-eof"
    labels = [e.step.label for e in res.counterexample.events]
    # The server truncated before the store's page was written back to it.
    assert labels.index(TSETATTR) < len(labels) - 1 - labels[::-1].index(TWRITE)
    assert "truncate_setsize: i_size_write" in labels[labels.index(TSETATTR):]


def test_the_fix_is_safe_by_a_complete_search_and_needs_the_page_dirtied_under_the_lock(
        monkeypatch):
    for scenario in ("truncate-write-fault", "copy-write-fault"):
        res = check(scenario, "9p-invalidate-lock", shrink_budget_s=0)
        assert res.search.complete and res.search.verdict == "safe", scenario
    monkeypatch.setattr(PROTOCOLS["9p-invalidate-lock"], "mkwrite_dirties", False)
    res = check("truncate-write-fault", "9p-invalidate-lock", shrink_budget_s=0)
    assert res.search.verdict == "race"
    labels = [e.step.label for e in res.counterexample.events]
    assert "fault_dirty_shared_page: folio_mark_dirty (after ->page_mkwrite)" in labels


def test_9p_refuses_what_it_has_no_operation_for():
    from fsrace.run import not_modelled

    for scenario in ("punch-write-fault", "zero-range-write-fault", "collapse-write-fault",
                     "insert-write-fault", "clone-write-fault"):
        assert "refuses" in (not_modelled(scenario, "9p-6.1") or ""), scenario
