"""The model's btrfs (fsrace.kernel.btrfs): a read beside a clone's destination caches a map
of the whole extent item it found; found before the clone replaced the item and cached
after the clone dropped the cached maps, it maps the destination to the replaced blocks,
and the clone's read-back reads them (docs/findings/btrfs-clone-stale-page.md). Caching no
more than the block asked for is safe by a complete search, and two strategies agree; so is
caching the whole item unless maps were dropped since it was read, with the clone dropping
its maps again at its end, and each half of that alone races."""

import pytest

from fsrace.kernel.btrfs import add_extent_mapping, drop_extent_map_range
from fsrace.kernel.structs import Inode
from fsrace.protocols.btrfs import BtrfsExtentMapDropCount
from fsrace.run import check

CACHED = "btrfs_get_extent: btrfs_add_extent_mapping"
DROP = "btrfs_drop_extents: btrfs_drop_extent_map_range"
REPLACE = ("btrfs_replace_file_extents: trim the destination's items, "
           "btrfs_insert_replace_extent")
LOOKUP = "btrfs_get_extent: lookup_extent_mapping, on a miss btrfs_lookup_file_extent"


def test_a_read_beside_the_clone_caches_the_replaced_blocks_and_the_read_back_reads_them():
    res = check("clone-beside-read-fault", "btrfs-6.1", shrink_budget_s=0)
    assert res.search.verdict == "race"
    assert res.counterexample.failure.name == "file-contents"
    events = res.counterexample.events
    labels = [e.step.label for e in events]
    beside = [i for i, e in enumerate(events) if e.task == 1]  # TASK2, the load
    found = next(i for i in beside if labels[i] == LOOKUP)
    cached = next(i for i in beside if labels[i] == CACHED)
    # The tree was read before the clone replaced the item, the map cached after the drop.
    assert found < labels.index(REPLACE) and labels.index(DROP) < cached
    # The clone's read-back found the map the reader cached: the item before the clone.
    read_back = [e for e in events[labels.index(REPLACE):]
                 if e.task == 0 and e.step.label == LOOKUP]  # TASK1
    assert read_back and read_back[0].step.note.startswith("cached map [0, 3)")


@pytest.mark.parametrize("strategy", ["stateful", "dpor"])
def test_caching_only_the_block_asked_for_is_safe_and_the_strategies_agree(strategy):
    res = check("clone-beside-read-fault", "btrfs-em-clamped", strategy=strategy,
                shrink_budget_s=0)
    assert res.search.complete and res.search.verdict == "safe"
    race = check("clone-beside-read-fault", "btrfs-6.1", strategy=strategy,
                 shrink_budget_s=0)
    assert race.search.verdict == "race"


class _CountOnly(BtrfsExtentMapDropCount):
    name = "test-btrfs-em-drop-count-only"
    clone_drops_maps_after = False


class _DropAgainOnly(BtrfsExtentMapDropCount):
    name = "test-btrfs-em-drop-again-only"
    extent_map_drops = False


@pytest.mark.parametrize("strategy", ["stateful", "dpor"])
def test_counting_drops_and_dropping_again_is_safe_and_each_half_alone_races(strategy):
    res = check("clone-beside-read-fault", "btrfs-em-drop-count", strategy=strategy,
                shrink_budget_s=0)
    assert res.search.complete and res.search.verdict == "safe"
    for half in (_CountOnly, _DropAgainOnly):
        race = check("clone-beside-read-fault", half, strategy=strategy, shrink_budget_s=0)
        assert race.search.verdict == "race", half.name


def test_the_clone_keeps_faults_that_dirty_pages_out():
    # i_mmap_lock across the clone, shared in btrfs_page_mkwrite: no store slips in.
    for scenario in ("clone-write-fault", "copy-write-fault", "clone-source-write-fault"):
        res = check(scenario, "btrfs-6.1", shrink_budget_s=0)
        assert res.search.complete and res.search.verdict == "safe", scenario


def test_dropping_a_range_of_cached_maps_keeps_the_parts_outside_it():
    inode = Inode("A", 16)
    inode.em_cache = {0: (10, 11, 12, 13)}
    drop_extent_map_range(inode, 1, 2)
    assert inode.em_cache == {0: (10,), 3: (13,)}


def test_a_map_read_is_cached_whole_cut_to_the_gap_or_not_at_all():
    inode = Inode("A", 16)
    assert add_extent_mapping(inode, 0, (10, 11, 12, 13), 1) == 11
    assert inode.em_cache == {0: (10, 11, 12, 13)}
    # lblk 2 is covered already: the cached map answers, the new one is dropped (-EEXIST).
    assert add_extent_mapping(inode, 0, (20, 21, 22, 23), 2) == 12
    inode.em_cache = {0: (10,), 3: (13,)}
    # Only the gap around the block asked for is filled (merge_extent_mapping).
    assert add_extent_mapping(inode, 0, (20, 21, 22, 23), 1) == 21
    assert inode.em_cache == {0: (10,), 1: (21, 22), 3: (13,)}


def _run(gen):
    """Drive a model generator to its end, outside any search; its result."""
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value


def _btrfs_file():
    from fsrace.kernel.kernel import Kernel
    from fsrace.protocols import PROTOCOLS
    from fsrace.scenarios.base import block_contents

    k = Kernel(PROTOCOLS["btrfs-6.1"](), nblocks=8)
    return k, k.create_file("A", block_contents("A", 3, 4))


def test_write2_goes_to_new_blocks_at_writeback_and_reads_back():
    # write(2)'s blocks are left to writeback, which gives the page a new block and item.
    from fsrace.checks.invariants import INVARIANTS
    from fsrace.kernel.structs import Current
    from fsrace.kernel.syscalls import drop_caches, sys_fsync, sys_read, sys_write
    from fsrace.kernel.uaccess import PlainBuffer

    k, a = _btrfs_file()
    cur = Current("TASK1", None)
    old = a.written_block(1)
    assert _run(sys_write(cur, k, a, 4, PlainBuffer(["w"] * 4))) is None
    _run(sys_fsync(cur, k, a))
    assert a.written_block(1) != old and a.items == {0: 1, 1: 1, 2: 1}
    owned = next(inv for inv in INVARIANTS if inv.name == "io-to-owned-blocks")
    assert any(e.kind == "bio_write" for e in k.events)
    assert owned.check(k, k.events) is None
    _run(drop_caches(cur, k))
    assert _run(sys_read(cur, k, a, 0, 12)) == ["a0"] * 4 + ["w"] * 4 + ["a2"] * 4


def test_a_clone_of_a_hole_leaves_no_item_over_the_destination():
    from fsrace.kernel.btrfs import btrfs_clone
    from fsrace.kernel.structs import Current

    k, a = _btrfs_file()
    del a.extents[2]
    k.disk.free(2)
    a.items = {0: 2}
    _run(btrfs_clone(Current("TASK1", None), k, a, 2, 1, 1))
    assert a.items == {0: 1} and 1 not in a.extents


@pytest.mark.parametrize(("protocol", "cached"), [("btrfs-6.1", {0: (0, 1, 2)}),
                                                  ("btrfs-em-drop-count", {1: (1,)})])
def test_a_lookup_that_sees_a_drop_since_it_read_the_item_caches_its_own_block(protocol,
                                                                                cached):
    from fsrace.kernel.btrfs import btrfs_get_extent
    from fsrace.kernel.kernel import Kernel
    from fsrace.kernel.structs import Current
    from fsrace.protocols import PROTOCOLS
    from fsrace.scenarios.base import block_contents

    k = Kernel(PROTOCOLS[protocol](), nblocks=8)
    a = k.create_file("A", block_contents("A", 3, 4))
    counted = protocol == "btrfs-em-drop-count"
    lookup = btrfs_get_extent(Current("TASK1", None), k, a, 1)
    next(lookup)  # before the lookup
    next(lookup)  # the item [0, 3) read, not yet cached
    drop_extent_map_range(a, 0, 0, counted)  # a clone beside it drops its maps
    assert _run(lookup) == 1 and a.em_cache == cached

