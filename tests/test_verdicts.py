"""The seed race is found under the 2012 protocol and ruled out under the 5.15 one."""

import pytest

from fsrace.explore.dpor import DPOR
from fsrace.explore.engine import VIOLATION
from fsrace.explore.schedule import Schedule
from fsrace.explore.search import search
from fsrace.run import check, replay


def test_linux_2012_punch_write_fault_writes_to_a_freed_block():
    res = check("punch-write-fault", "linux-2012")
    assert res.search.verdict == "race"
    cx = res.counterexample
    assert cx.failure.name == "io-to-owned-blocks"
    names = [cx.task_names[e.task] for e in cx.events]
    assert {"TASK1", "TASK2", "FLUSHER"} <= set(names)
    labels = [e.step.label for e in cx.events]
    # Jan Kara's diagram: invalidate, then the fault, then block removal, then writeback.
    order = [labels.index(x) for x in ("truncate_inode_page(A:0)", "__do_fault: install PTE",
                                       "ext4_ext_remove_space")]
    assert order == sorted(order)
    assert cx.events[cx.failed_at].step.label.startswith("ext4_bio_write_page")


def _labels(cx):
    return [(cx.task_names[e.task], e.step.label) for e in cx.events]


@pytest.mark.parametrize("protocol, steps", [
    ("nfs-4.2", ("nfs4_proc_setattr: SETATTR RPC, nfsd_setattr on the server",
                 "nfs_vm_page_mkwrite: recheck page->mapping; nfs_updatepage(whole page)",
                 "nfs_initiate_write: WRITE RPC, nfsd_write on the server",
                 "nfs_vmtruncate: i_size_write")),
    ("smb-6.1", ("smb2_set_file_size: SET_INFO EndOfFile, Samba truncates its file",
                 "cifs_page_mkwrite: VM_FAULT_LOCKED; fault_dirty_shared_page",
                 "smb2_async_writev: SMB2 WRITE, Samba writes its file",
                 "cifs_setsize: i_size_write")),
])
def test_network_truncate_leaves_the_cut_off_page_on_the_server(protocol, steps):
    """docs/findings/nfs-truncate-mmap.md, and the same steps in 6.1.192's
    cifs_setattr_nounix: the server truncates, a store dirties the page the client still
    holds, its WRITE lands past the server's new end, and only then does the client set
    i_size and drop the page."""
    cx = check("truncate-write-fault", protocol, shrink_budget_s=0).counterexample
    assert cx.failure.name == "nothing-beyond-eof"
    labels = _labels(cx)
    tasks = ("TASK1", "TASK2", "FLUSHER", "TASK1")
    order = [labels.index(x) for x in zip(tasks, steps, strict=True)]
    assert order == sorted(order)


def test_smb_lock_only_fix_maps_the_page_the_copy_dropped():
    """docs/findings/smb-copy-mmap.md: with the invalidate lock alone, a fault that found
    the page cached waits in cifs_page_mkwrite while the copy drops the page, then maps
    the dropped page; with the page->mapping recheck the same search is complete and
    finds nothing."""
    _assert_the_fault_maps_the_dropped_page("copy-write-fault", "smb-invalidate-lock")
    fixed = check("copy-write-fault", "smb-mkwrite-recheck", shrink_budget_s=0).search
    assert fixed.complete and fixed.verdict == "safe"


def _assert_the_fault_maps_the_dropped_page(scenario, protocol):
    """The fault found the page, the operation dropped it, and cifs_page_mkwrite then
    locked it and the fault mapped it."""
    cx = check(scenario, protocol, shrink_budget_s=0).counterexample
    assert cx.failure.name == "file-contents"
    labels = _labels(cx)
    order = [labels.index(x) for x in (
        ("TASK2", "find_get_page(A:0)"), ("TASK1", "truncate_inode_page(A:0)"),
        ("TASK2", "cifs_page_mkwrite: VM_FAULT_LOCKED; fault_dirty_shared_page"),
        ("TASK2", "__do_fault: install PTE"))]
    assert order == sorted(order)
    assert "not in the page cache" in cx.state


@pytest.mark.parametrize("scenario", ["punch-store-reread", "zero-range-store-reread"])
def test_smb_punch_leaves_a_fault_the_page_it_dropped(scenario):
    """docs/findings/smb-copy-mmap.md, "The same fault under punch and zero range": the
    fault finds the page cached and unlocks it before cifs_page_mkwrite; the operation
    drops it; cifs_page_mkwrite locks it and the fault maps it, so the task's pread does
    not see its store and its next load does. The lock alone (taken shared in
    cifs_page_mkwrite) does not close it; the page->mapping recheck does."""
    for protocol in ("smb-6.1", "smb-invalidate-lock"):
        _assert_the_fault_maps_the_dropped_page(scenario, protocol)
    fixed = check(scenario, "smb-mkwrite-recheck", shrink_budget_s=0).search
    assert fixed.complete and fixed.verdict == "safe"


@pytest.mark.parametrize("scenario", ["collapse-write-fault", "insert-write-fault"])
def test_smb_shift_drops_the_page_a_store_dirtied_after_its_flush(scenario):
    """docs/findings/smb-collapse-mmap.md: the collapse or insert holds invalidate_lock,
    which cifs_page_mkwrite does not take; a store dirties the page between the shift's
    writeback and its page-cache drop, and the drop discards it. Taking the lock in
    page_mkwrite alone is not enough (the fault then maps the dropped page); with the
    page->mapping recheck as well (what netfs_page_mkwrite has on 6.12) the search is
    complete and finds nothing."""
    cx = check(scenario, "smb-6.1", shrink_budget_s=0).counterexample
    assert cx.failure.name == "file-contents"
    labels = _labels(cx)
    dirtied = labels.index(("TASK2", "cifs_page_mkwrite: VM_FAULT_LOCKED; "
                                     "fault_dirty_shared_page"))
    assert labels.index(("TASK1", "down_write(A.invalidate_lock)")) < dirtied
    assert check(scenario, "smb-invalidate-lock", shrink_budget_s=0).search.verdict == "race"
    fixed = check(scenario, "smb-mkwrite-recheck", shrink_budget_s=0).search
    assert fixed.complete and fixed.verdict == "safe"


def test_nfs_copy_launders_a_page_dirtied_during_the_copy_over_it():
    """docs/real-kernels.md, "Operations between two files": the client flushes, the
    server copies, a store dirties the destination page still cached with the old data,
    and the page-cache drop after the copy writes it back (nfs_launder_folio) over the
    copy; with invalidate_lock across the copy the search is complete and finds nothing."""
    cx = check("copy-write-fault", "nfs-4.2", shrink_budget_s=0).counterexample
    assert cx.failure.name == "file-contents"
    labels = _labels(cx)
    order = [labels.index(x) for x in (
        ("TASK1", "_nfs42_proc_copy: COPY RPC, nfsd4_copy on the server"),
        ("TASK2", "nfs_vm_page_mkwrite: recheck page->mapping; nfs_updatepage(whole page)"),
        ("TASK1", "nfs_wb_page: nfs_writepage_locked, WRITE RPC (launder)"),
        ("TASK1", "truncate_inode_page(A:0)"))]
    assert order == sorted(order)
    fixed = check("copy-write-fault", "nfs-invalidate-lock", shrink_budget_s=0).search
    assert fixed.complete and fixed.verdict == "safe"


def test_a_printed_schedule_replays_the_same_violation():
    res = check("punch-write-fault", "linux-2012")
    cx = res.counterexample
    again = replay("punch-write-fault", "linux-2012", Schedule.parse(str(cx.schedule)))
    assert again.outcome == VIOLATION
    assert again.failure == cx.failure
    assert [e.step.label for e in again.events] == [e.step.label for e in cx.events]


def test_linux_2012_punch_read_returns_stale_data_after_the_punch():
    res = check("punch-read", "linux-2012")
    assert res.search.verdict == "race"
    assert res.counterexample.failure.name == "file-contents"


@pytest.mark.parametrize("scenario", ["punch-read", "writeback-store"])
def test_invalidate_lock_small_scenarios_are_safe_with_a_complete_search(scenario):
    res = check(scenario, "invalidate-lock")
    assert res.search.complete and res.search.verdict == "safe"
    assert res.search.traces > 1


@pytest.mark.slow
def test_invalidate_lock_punch_write_fault_is_safe_with_a_complete_search():
    res = check("punch-write-fault", "invalidate-lock", strategy="dpor")
    assert res.search.complete
    assert res.search.verdict == "safe"
    assert res.search.traces > 1000
    assert res.search.executions == res.search.traces and res.search.blocked == 0
    res = check("punch-write-fault", "invalidate-lock", strategy="stateful")
    assert res.search.complete and res.search.verdict == "safe"
    assert res.search.states > 2000 and res.search.cached > 0


FULL = [(s, p) for s in ("punch-read", "writeback-store", "write-from-own-mapping")
        for p in ("linux-2012", "invalidate-lock")]


@pytest.mark.parametrize("scenario,protocol", [
    pytest.param(s, p, marks=[pytest.mark.slow] if (s, p) == FULL[4] else [])
    for s, p in FULL])
def test_full_searches_run_each_trace_exactly_once(build, scenario, protocol):
    res = search(build(scenario, protocol), DPOR(), stop_on_failure=False)
    assert res.complete
    assert res.executions == res.traces and res.blocked == 0
