"""The model's ocfs2 reflink and copy on write (docs/findings/ocfs2-reflink-mmap.md): the
race the real kernels show, its fix, and the pieces it is built from."""

import pytest

from fsrace.checks.invariants import INVARIANTS
from fsrace.explore.engine import DONE, run_execution
from fsrace.kernel.kernel import Kernel
from fsrace.protocols import PROTOCOLS
from fsrace.run import check
from fsrace.scenarios import SCENARIOS, Params, build_program

IO_TO_OWNED = next(inv for inv in INVARIANTS if inv.name == "io-to-owned-blocks")


def _labels(cx):
    return [(cx.task_names[e.task], e.step.label) for e in cx.events]


def test_a_store_in_the_remaps_window_gives_the_destination_an_unwritten_block():
    """The store copies the source's shared block on write after the remap's flush and
    before its ip_alloc_sem; the remap shares the new block, the read back of the
    destination reads it unwritten, and the source's writeback then writes it in place."""
    cx = check("clone-source-write-fault", "ocfs2-6.1", shrink_budget_s=0).counterexample
    assert cx.failure.name == "io-to-owned-blocks"
    assert "which A lblk 0 shares (refcount 2)" in cx.failure.message
    labels = _labels(cx)
    order = [labels.index(x) for x in (
        ("TASK1", "write_cache_pages: find dirty pages"),
        ("TASK2", "ocfs2_refcount_cow: new clusters, duplicate by page, replace extents"),
        ("TASK1", "down_write(A.ip_alloc_sem)"),
        ("TASK1", "ocfs2_reflink_remap_blocks: punch the destination, share the source's "
                  "clusters"),
        ("TASK1", "block_read_full_page: attach buffers, submit_bh(READ)"))]
    assert order == sorted(order)
    read_back = next(e for e in cx.events if cx.task_names[e.task] == "TASK1"
                     and e.step.label.startswith("block_read_full_page: attach"))
    assert "mapped->blk2" in read_back.step.note  # the block the copy on write claimed


def test_invalidate_lock_across_the_remap_closes_it_with_a_complete_search():
    res = check("clone-source-write-fault", "ocfs2-invalidate-lock", shrink_budget_s=0)
    assert res.search.complete and res.search.verdict == "safe"


def test_a_write_in_place_to_a_shared_block_is_flagged_and_one_to_an_own_block_is_not():
    k = Kernel(PROTOCOLS["ocfs2-6.1"](), nblocks=4)
    k.create_file("A", ["a0"] * 4 + ["a1"] * 4)
    k.share_blocks("A", 1, 2, 1)
    pblk = k.inodes["A"].extents[1][1]
    assert k.inodes["A"].extents[2] == ("written", pblk) and k.disk.refcount(pblk) == 2
    k.log("bio_write", "FLUSHER", inode="A", lblk=1, pblk=pblk, source="writeback")
    msg = IO_TO_OWNED.check(k, k.events)
    assert msg and "in place" in msg and "A lblk 2 shares (refcount 2)" in msg
    assert k.disk.unshare(pblk, ("A", 1)) is False  # lblk 2 keeps it
    k.inodes["A"].extents[1] = ("written", k.disk.alloc(("A", 1)))
    assert IO_TO_OWNED.check(k, k.events[-1:]) is not None  # lblk 1 no longer maps pblk
    k.events.clear()
    k.log("bio_write", "FLUSHER", inode="A", lblk=2, pblk=pblk, source="writeback")
    assert IO_TO_OWNED.check(k, k.events) is None  # lblk 2 owns it alone now
    assert k.disk.unshare(pblk, ("A", 2)) is True and k.disk.refcount(pblk) == 0


def test_a_read_that_finds_ip_alloc_sem_taken_backs_off_and_reads_the_remapped_block():
    """ocfs2_read_folio only trylocks ip_alloc_sem: a fault on the destination between the
    remap's truncate and its up_write unlocks the page, waits, and reads again, seeing the
    source's block. Run with the store held back until the remap holds the semaphore."""
    program = build_program(SCENARIOS["clone-write-fault"], PROTOCOLS["ocfs2-6.1"], Params())

    def choose(ex, enabled):
        done = {(e.task, e.step.label) for e in ex.events}
        window = ((0, "truncate_inode_page(A:0)") in done
                  and (0, "up_write(A.ip_alloc_sem)") not in done)
        return 1 if window and 1 in enabled else enabled[0]

    rec = run_execution(program, choose, 10_000)
    assert rec.outcome == DONE, rec.failure
    labels = [(e.task, e.step.label) for e in rec.events]
    backed_off = labels.index((1, "filemap_read_folio: AOP_TRUNCATED_PAGE, find and recheck "
                                   "the page"))
    assert labels.index((0, "up_write(A.ip_alloc_sem)")) < backed_off
    assert program.extra["final"]["A"][:4] == ["TASK2", "a1", "a1", "a1"]


@pytest.mark.parametrize("protocol", ["ocfs2-6.1", "ocfs2-invalidate-lock"])
def test_ocfs2_refuses_what_its_model_lacks(protocol):
    from fsrace.run import not_modelled

    assert not_modelled("punch-write-fault", protocol) is not None
    assert not_modelled("clone-source-write-fault", protocol) is None
    assert not_modelled("clone-source-write-fault", "nfs-4.2") is not None
