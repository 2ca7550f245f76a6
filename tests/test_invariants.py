"""Each invariant holds on a sound state and fires on a state broken on purpose."""

import pytest

from fsrace.checks.invariants import INVARIANTS, check_invariants
from fsrace.kernel.kernel import Kernel
from fsrace.kernel.structs import DELALLOC, PTE, Buffer
from fsrace.protocols import PROTOCOLS
from fsrace.scenarios.base import cache_clean_page, create_delalloc_file

BY_NAME = {inv.name: inv for inv in INVARIANTS}


@pytest.fixture
def k():
    k = Kernel(PROTOCOLS["linux-2012"](), nblocks=8)
    a = k.create_file("A", ["a0"] * 4 + ["a1"] * 4)
    cache_clean_page(k, a, 0)
    create_delalloc_file(k, "B", ["b"] * 4)
    mm = k.new_mm("P2")
    mm.mmap(a)
    mm.ptes[("A", 0)] = PTE(a.pages[0], writable=False)
    return k


def test_a_sound_state_passes_every_invariant(k):
    assert check_invariants(k, []) is None


def test_io_to_owned_blocks_fires_on_a_write_to_a_freed_block(k):
    pblk = k.inodes["A"].extents[0][1]
    k.disk.free(pblk)
    del k.inodes["A"].extents[0]
    k.log("bio_write", "FLUSHER", inode="A", lblk=0, pblk=pblk, source="writeback")
    msg = BY_NAME["io-to-owned-blocks"].check(k, k.events)
    assert msg and "which is free" in msg


def test_io_to_owned_blocks_fires_on_a_write_to_another_files_block(k):
    pblk = k.inodes["A"].extents[1][1]
    k.log("bio_write", "FLUSHER", inode="A", lblk=0, pblk=pblk, source="writeback")
    msg = BY_NAME["io-to-owned-blocks"].check(k, k.events)
    assert msg and "owned by A lblk 1" in msg


def test_no_stray_delalloc_fires_on_a_delay_buffer_without_its_entry(k):
    a = k.inodes["A"]
    a.pages[0].buffers = [Buffer(delay=True, dirty=True)]
    msg = BY_NAME["no-stray-delalloc"].check(k, [])
    assert msg and "delay buffer" in msg


def test_no_stray_delalloc_fires_on_writeback_warning(k):
    k.log("warn", "FLUSHER", msg="B lblk 0: delalloc without reservation")
    assert BY_NAME["no-stray-delalloc"].check(k, k.events)


def test_reservations_balance_fires_when_a_reservation_leaks(k):
    k.inodes["B"].extents[0] = ("hole", None)
    del k.inodes["B"].extents[0]
    msg = BY_NAME["reservations-balance"].check(k, [])
    assert msg and "reserved" in msg


def test_reservations_balance_fires_when_the_total_drifts(k):
    k.disk.dirty_clusters += 1
    assert BY_NAME["reservations-balance"].check(k, [])


def _truncate_blocks(k, name, size):
    """i_size lowered and the blocks past it freed, as a finished truncate leaves them."""
    inode = k.inodes[name]
    inode.i_size = size
    for lblk in [lb for lb in inode.extents if lb * k.blksize >= size]:
        k.disk.free(inode.extents.pop(lblk)[1])


def test_nothing_beyond_eof_fires_on_a_dirty_page_past_i_size(k):
    _truncate_blocks(k, "A", 4)
    cache_clean_page(k, k.inodes["A"], 1)
    assert BY_NAME["nothing-beyond-eof"].check(k, []) is None  # clean: unreachable, harmless
    k.inodes["A"].pages[1].dirty = True
    msg = BY_NAME["nothing-beyond-eof"].check(k, [])
    assert msg and "dirty beyond EOF" in msg


def test_nothing_beyond_eof_fires_on_a_pte_past_i_size(k):
    _truncate_blocks(k, "A", 0)
    k.inodes["A"].pages.clear()
    msg = BY_NAME["nothing-beyond-eof"].check(k, [])
    assert msg and "P2 maps A:0" in msg


def test_nothing_beyond_eof_fires_on_a_block_past_i_size(k):
    """What a write past the NFS server's new end leaves: the file's block map (the
    server's file) holds data past the client's i_size."""
    k.inodes["A"].i_size = 4  # blk1, lblk 1, still mapped
    msg = BY_NAME["nothing-beyond-eof"].check(k, [])
    assert msg and "lblk 1 -> blk1 is written beyond EOF" in msg
    _truncate_blocks(k, "A", 4)
    assert BY_NAME["nothing-beyond-eof"].check(k, []) is None


def test_nothing_beyond_eof_waits_for_a_truncate_in_progress(k):
    k.inodes["A"].i_size = 0
    k.resizing.add("A")
    assert BY_NAME["nothing-beyond-eof"].check(k, []) is None


def test_delalloc_file_setup_is_consistent(k):
    assert k.inodes["B"].extents[0] == (DELALLOC, None)
    assert k.disk.dirty_clusters == 1


def _run(gen):
    """Drive a model generator to its end, outside any search."""
    for _ in gen:
        pass


def test_dio_sees_no_delalloc_fires_on_a_direct_read_of_a_delalloc_block(k):
    from fsrace.kernel.direct_io import generic_file_direct_read
    from fsrace.kernel.structs import Current

    b = k.inodes["B"]
    b.pages[0].dirty = False  # as if the store came after the direct read's flush
    _run(generic_file_direct_read(Current("TASK1", None), k, b, 0, 4))
    msg = BY_NAME["dio-sees-no-delalloc"].check(k, k.events)
    assert msg and "delalloc" in msg


@pytest.mark.parametrize("remove,stray", [("xfs_bunmapi", True),
                                          ("ext4_ext_remove_space", False)])
def test_xfs_bunmapi_drops_delalloc_under_a_dirty_page_ext4_leaves_it(k, remove, stray):
    """xfs_bunmapi deletes delalloc extents and their reservation; 3.4 ext4 removes only
    extents on disk. Under a page still dirty with delay buffers, only XFS strays."""
    from fsrace.kernel import ext4, xfs
    from fsrace.kernel.structs import Current

    fn = getattr(xfs, remove, None) or getattr(ext4, remove)
    _run(fn(Current("TASK1", None), k, k.inodes["B"], 0, 0))
    assert bool(BY_NAME["no-stray-delalloc"].check(k, [])) == stray
    assert BY_NAME["reservations-balance"].check(k, []) is None
