"""The model's XFS reflink remap (fsrace.kernel.xfs.xfs_file_remap_range) under the
protocol that stands for XFS since 5.15, and the same remap with the fault exclusion taken
away: the checker must pass the one and catch the other."""

from fsrace.kernel.locking import mutex_lock, mutex_unlock
from fsrace.protocols import PROTOCOLS
from fsrace.protocols.invalidate_lock import XfsInvalidateLock
from fsrace.run import check


class XfsRemapIoLockOnly(XfsInvalidateLock):
    """A remap that takes the IO lock alone, as the NFS client's clone does: page_mkwrite
    is no longer held off while the destination's pages are dropped and replaced."""

    name = "xfs-remap-iolock-only"

    def remove_blocks_begin(self, cur, k, inode, op):
        if op == "clone":
            return mutex_lock(cur, inode.i_mutex)
        return super().remove_blocks_begin(cur, k, inode, op)

    def remove_blocks_end(self, cur, k, inode, op):
        if op == "clone":
            return mutex_unlock(cur, inode.i_mutex)
        return super().remove_blocks_end(cur, k, inode, op)


def test_the_remap_under_the_invalidate_lock_is_safe_by_a_complete_search():
    for scenario in ("clone-write-fault", "copy-write-fault"):
        res = check(scenario, "xfs-5.15", shrink_budget_s=0)
        assert res.search.complete and res.search.verdict == "safe", scenario


def test_without_the_fault_exclusion_a_store_undoes_the_remap(monkeypatch):
    monkeypatch.setitem(PROTOCOLS, XfsRemapIoLockOnly.name, XfsRemapIoLockOnly)
    res = check("clone-write-fault", XfsRemapIoLockOnly.name, shrink_budget_s=0)
    assert res.search.verdict == "race"
    cx = res.counterexample
    assert cx.failure.name == "file-contents"
    labels = [(cx.task_names[e.task], e.step.label) for e in cx.events]
    # The store's fault reads the destination's old block back into the cache after the
    # remap dropped the page and before the remap replaced the block: the page left in the
    # cache is stale, and the file ends with the old data beside the store.
    order = [labels.index(x) for x in (
        ("TASK1", "truncate_inode_page(A:0)"),
        ("TASK2", "mpage_readpage: submit_bio(READ)"),
        ("TASK1", "xfs_reflink_remap_blocks: the source's extents at the destination"))]
    assert order == sorted(order)
