"""fs/btrfs as in Debian's 6.1 (linux-source-6.1, 6.1.192): reads through the extent map
cache, copy-on-write writeback, and the clone (FICLONERANGE; copy_file_range, which the
VFS turns into the same ->remap_file_range within one file system).

The file's blocks are its file extent items in the subvolume tree (the model's block map,
with `inode.items` saying where each item begins). A read does not look them up directly:
btrfs_get_extent first looks in the inode's extent map cache, and on a miss searches the
tree and caches a map of the whole item it found (btrfs_extent_item_to_extent_map), which
can reach past the range the reader holds locked in the extent io tree.

The clone (btrfs_remap_file_range) holds i_rwsem and i_mmap_lock (the protocol's locks),
flushes both ranges, locks both in the extent io tree, and for the destination's range
drops its cached maps (btrfs_drop_extents with drop_cache) and then replaces its items
(btrfs_replace_file_extents); only then it drops the destination's pages
(truncate_inode_pages_range). A read of a page beside the destination, in the same item,
holds neither lock: if it searched the tree before the items changed and caches its map
after the drop, the cache keeps a map of the replaced blocks over the destination, and
the next read of the destination's page reads the blocks the clone replaced
(docs/findings/btrfs-clone-stale-page.md: 6.1.192, 6.12.118, 7.2.13, 7.3-rc7). Releasing a
page drops the maps it covers only for files over 16 MiB in 6.1
(try_release_extent_mapping), so in the model's files the map stays.

Writeback copies on write: each dirty page gets a new block (cow_file_range), its cached
maps are replaced by a map of the new block (create_io_em), and its item is replaced
(btrfs_finish_ordered_io), all in one step before the write (what the ordered extent
holds between them is not modelled: the page is locked or under writeback throughout,
and the clone waits for ordered extents first). A model page is one block.
"""

from __future__ import annotations

from ..explore.step import ACQ, READ, REL, WRITE, Step
from .buffer import (
    VM_FAULT_LOCKED,
    VM_FAULT_RETRY,
    _blocks_in_file,
    _read_block_into,
    mkwrite_page_truncated,
)
from .filemap import generic_remap_file_range_prep
from .kernel import AddressSpaceOps, FileSystem, Kernel
from .locking import lock_page, unlock_page, wait_on_page_writeback
from .page_writeback import write_cache_pages, write_out
from .structs import PAGE_SIZE, WRITTEN, Buffer, Current, Inode, Page
from .truncate import truncate_inode_pages_range

Map = tuple[int | None, ...]  # the blocks of a cached extent map, from its start


# -- the extent io tree's range locks -------------------------------------------------------
def lock_extent(cur: Current, inode: Inode, first: int, last: int):
    """lock_extent over pages [first, last] of the file: waits until no one holds any of
    them. Called with any page lock the caller needs already held (readers hold theirs)."""
    span = range(first, last + 1)
    yield Step(f"lock_extent({inode.name}:{first}-{last})",
               tuple((inode.extent_lock_key(i), ACQ) for i in span),
               enabled=lambda: not any(i in inode.extent_locked for i in span),
               waiting_for=lambda: "extent range held by " + ", ".join(
                   sorted({inode.extent_locked[i] for i in span if i in inode.extent_locked})))
    for i in span:
        inode.extent_locked[i] = cur.comm


def unlock_extent(cur: Current, inode: Inode, first: int, last: int):
    """Called with [first, last] locked by this task."""
    span = range(first, last + 1)
    yield Step(f"unlock_extent({inode.name}:{first}-{last})",
               tuple((inode.extent_lock_key(i), REL) for i in span))
    for i in span:
        assert inode.extent_locked.pop(i) == cur.comm


# -- the extent map cache (fs/btrfs/extent_map.c) ----------------------------------------------
def _counts_drops(k: Kernel) -> bool:
    return getattr(k.protocol, "extent_map_drops", False)


def _covering(inode: Inode, lblk: int) -> int | None:
    """The start of the cached map that covers lblk, if any."""
    for start, blocks in inode.em_cache.items():
        if start <= lblk < start + len(blocks):
            return start
    return None


def drop_extent_map_range(inode: Inode, first: int, last: int, counted: bool = False) -> None:
    """btrfs_drop_extent_map_range: no cached map covers [first, last] afterwards; a map
    that reaches outside keeps its parts outside, split off; `counted`, where the protocol
    counts the drops (`extent_map_drops`). Called with the cache's lock held (inside a
    step that writes it)."""
    inode.em_drops += counted
    for start, blocks in list(inode.em_cache.items()):
        end = start + len(blocks)
        if end <= first or start > last:
            continue
        del inode.em_cache[start]
        if start < first:
            inode.em_cache[start] = blocks[:first - start]
        if end > last + 1:
            inode.em_cache[last + 1] = blocks[last + 1 - start:]


def add_extent_mapping(inode: Inode, start: int, blocks: Map, lblk: int) -> int | None:
    """btrfs_add_extent_mapping for a map read to find lblk: cached whole if it overlaps
    nothing; if a cached map covers lblk already, that one is used (-EEXIST); else the new
    map is cut to the gap around lblk (merge_extent_mapping; a map that overlaps nothing
    is its own gap). Returns lblk's block. Called inside a step that writes the cache."""
    have = _covering(inode, lblk)
    if have is not None:
        return inode.em_cache[have][lblk - have]
    lo = max([start] + [s + len(b) for s, b in inode.em_cache.items() if s + len(b) <= lblk])
    hi = min([start + len(blocks)] + [s for s in inode.em_cache if s > lblk])
    inode.em_cache[lo] = blocks[lo - start:hi - start]
    return blocks[lblk - start]


def _item_at(inode: Inode, lblk: int) -> tuple[int, Map]:
    """The file extent item holding lblk, as a map: its start and blocks (a hole's map is
    the one block)."""
    for start, count in inode.items.items():
        if start <= lblk < start + count:
            return start, tuple(inode.written_block(b) for b in range(start, start + count))
    return lblk, (None,)


def _describe(start: int, blocks: Map) -> str:
    where = ", ".join(f"blk{b}" if b is not None else "hole" for b in blocks)
    return f"[{start}, {start + len(blocks)}) -> {where}"


def btrfs_get_extent(cur: Current, k: Kernel, inode: Inode, lblk: int):
    """The block lblk reads from: a cached map's, or, on a miss, the item's found in the
    tree (btrfs_lookup_file_extent), whose map is then cached (btrfs_add_extent_mapping,
    under the cache's lock, after the tree's locks were released). The protocol may cache
    no more of the item than lblk always (`extent_map_whole_item` false), or when maps
    were dropped from the cache since the item was read (`extent_map_drops`). Called with
    lblk's range locked in the extent io tree."""
    def footprint():
        if _covering(inode, lblk) is not None:
            return ((inode.em_key, READ),)
        return ((inode.em_key, READ), (inode.map_key, READ))

    st = Step("btrfs_get_extent: lookup_extent_mapping, on a miss btrfs_lookup_file_extent",
              footprint=footprint)
    yield st
    have = _covering(inode, lblk)
    if have is not None:
        blocks = inode.em_cache[have]
        st.note = f"cached map {_describe(have, blocks)}"
        return blocks[lblk - have]
    drops_seen = inode.em_drops
    start, blocks = _item_at(inode, lblk)
    if not getattr(k.protocol, "extent_map_whole_item", True):
        start, blocks = lblk, (blocks[lblk - start],)
    st.note = f"miss; item {_describe(start, blocks)}"
    st = Step("btrfs_get_extent: btrfs_add_extent_mapping", ((inode.em_key, WRITE),))
    yield st
    clamped = ""
    if _counts_drops(k) and inode.em_drops != drops_seen and len(blocks) > 1:
        # maps were dropped since the item was read: it may be changed beside lblk
        start, blocks = lblk, (blocks[lblk - start],)
        clamped = " (maps dropped since the lookup: lblk's alone cached)"
    pblk = add_extent_mapping(inode, start, blocks, lblk)
    st.note = f"lblk {lblk} -> " + (f"blk{pblk}" if pblk is not None else "hole") + clamped
    return pblk


# -- reading ---------------------------------------------------------------------------------
def btrfs_read_folio(cur: Current, k: Kernel, inode: Inode, page: Page):
    """btrfs_read_folio (and readahead's page by page): lock the page's range in the extent
    io tree (btrfs_lock_and_flush_ordered_range), btrfs_do_readpage maps each block with
    btrfs_get_extent and submits the read; the range is unlocked when the read ends.
    Called with the page locked; unlocks it."""
    yield from lock_extent(cur, inode, page.index, page.index)
    inside = yield from _blocks_in_file(cur, k, inode, page, "btrfs_do_readpage")
    if inside:
        lblks = [k.lblk(page.index, nr) for nr in range(inside)]
        found = []
        for lb in lblks:
            pblk = yield from btrfs_get_extent(cur, k, inode, lb)
            found.append(pblk)
        reads = tuple((k.disk.key(p), READ) for p in found if p is not None)
        st = Step("btrfs_do_readpage: submit_extent_page(READ)",
                  (*reads, (page.key, WRITE), (page.data_key, WRITE)))
        yield st
        for nr, pblk in enumerate(found):
            _read_block_into(k, page, nr, pblk)
        page.uptodate = True
        st.note = "read " + ", ".join(f"blk{p}" if p is not None else "hole" for p in found)
    yield from unlock_extent(cur, inode, page.index, page.index)
    if inside:
        yield from unlock_page(cur, page)


# -- the write fault -------------------------------------------------------------------------
def btrfs_page_mkwrite(cur: Current, k: Kernel, inode: Inode, page: Page):
    """btrfs_page_mkwrite: i_mmap_lock shared (the protocol's page_mkwrite lock), lock the
    page, recheck its mapping and i_size, lock its range in the extent io tree, mark it
    delalloc and dirty (btrfs_set_extent_delalloc, btrfs_page_set_dirty). The file's
    blocks are not touched: writeback gives the page new ones. Returns VM_FAULT_LOCKED
    with the page locked, or VM_FAULT_NOPAGE. Called with mmap_sem held for read."""
    proto = k.protocol
    if (yield from proto.page_mkwrite_begin(cur, k, inode)) is False:
        return VM_FAULT_RETRY
    yield from lock_page(cur, page)
    st = Step("btrfs_page_mkwrite: page->mapping, i_size", ((page.key, READ),
                                                           (inode.size_key, READ)))
    yield st
    if page.inode is not inode or page.index * PAGE_SIZE >= inode.i_size:
        return (yield from mkwrite_page_truncated(cur, k, inode, page, st))
    yield from wait_on_page_writeback(cur, page)
    yield from lock_extent(cur, inode, page.index, page.index)
    st = Step("btrfs_page_mkwrite: btrfs_set_extent_delalloc, btrfs_page_set_dirty",
              ((page.key, WRITE), (inode.dirty_tag_key, WRITE)))
    yield st
    page.dirty = True
    yield from unlock_extent(cur, inode, page.index, page.index)
    yield from proto.page_mkwrite_end(cur, k, inode)
    return VM_FAULT_LOCKED


def btrfs_write_get_block(cur: Current, k: Kernel, inode: Inode, lblk: int, bh: Buffer,
                          create: bool):
    """write(2)'s block for a buffer: btrfs_buffered_write reserves space and leaves the
    blocks to writeback, so a buffer is only read from where the file has it now (a hole:
    nothing to read; the write fills it). Called with the page locked."""
    st = Step("btrfs_buffered_write: prepare_pages", ((inode.map_key, READ),))
    yield st
    bh.blocknr = inode.written_block(lblk)
    bh.new = bh.blocknr is None
    st.note = f"lblk {lblk}: " + (f"blk{bh.blocknr}" if bh.blocknr is not None else "hole")


def btrfs_invalidate_folio(k: Kernel, inode: Inode, page: Page) -> None:
    """btrfs_invalidate_folio / btrfs_release_folio: the page's private state goes; its
    cached maps stay (6.1's try_release_extent_mapping drops them only past 16 MiB).
    Called with the page locked."""
    page.buffers = None


# -- writeback -------------------------------------------------------------------------------
def btrfs_writepages(cur: Current, k: Kernel, inode: Inode, first: int, last: int):
    """extent_writepages: write_cache_pages with __extent_writepage. Called with no page
    lock held."""
    yield from write_cache_pages(cur, k, inode, first, last, _writepage)


def _writepage(cur: Current, k: Kernel, inode: Inode, page: Page):
    yield from write_out(cur, k, inode, page, _cow_and_submit)


def _cow_and_submit(cur: Current, k: Kernel, inode: Inode, page: Page):
    """cow_file_range gives the page's blocks new ones (btrfs_reserve_extent), create_io_em
    replaces their cached maps with a map of the new blocks, and the ordered extent's end
    replaces the item (insert_reserved_file_extent; the old blocks lose a reference); then
    the bio writes the page to them. Called with the page unlocked and under writeback."""
    lblks = [k.lblk(page.index, nr) for nr in range(k.blocks_per_page)]

    def footprint():
        old = [p for p in map(inode.written_block, lblks) if p is not None]
        return ((inode.map_key, WRITE), (inode.em_key, WRITE),
                *k.disk.alloc_footprint(len(lblks)),
                *((k.disk.owner_key(p), WRITE) for p in old))

    st = Step("cow_file_range, create_io_em; btrfs_finish_ordered_io", footprint=footprint)
    yield st
    notes = []
    # The new extent first, then the old blocks' references go (a freed extent is not
    # reused before the transaction commits).
    old = {lb: inode.written_block(lb) for lb in lblks}
    for lb in lblks:
        new = k.disk.alloc((inode.name, lb))
        inode.extents[lb] = (WRITTEN, new)
        was = old[lb]
        notes.append(f"lblk {lb}: " + (f"blk{was} -> " if was is not None else "") + f"blk{new}")
    _replace_items(inode, lblks[0], len(lblks), {lblks[0]: len(lblks)})
    for lb, was in old.items():
        if was is not None:
            k.disk.unshare(was, (inode.name, lb))
    drop_extent_map_range(inode, lblks[0], lblks[-1], _counts_drops(k))
    inode.em_cache[lblks[0]] = tuple(inode.written_block(lb) for lb in lblks)
    for lb, bh in zip(lblks, page.buffers or [], strict=False):  # write(2)'s, if any
        bh.blocknr = inode.written_block(lb)
    st.note = "; ".join(notes)
    new_blocks = [inode.written_block(lb) for lb in lblks]
    st = Step("extent_write_cache_pages: submit_extent_page(WRITE)",
              ((page.key, READ), (page.data_key, READ),
               *((k.disk.key(p), WRITE) for p in new_blocks if p is not None),
               *((k.disk.owner_key(p), READ) for p in new_blocks if p is not None)))
    yield st
    for nr, (lb, pblk) in enumerate(zip(lblks, new_blocks, strict=True)):
        assert pblk is not None
        lo = nr * k.blksize
        k.disk.blocks[pblk].data = page.data[lo:lo + k.blksize]
        k.log("bio_write", cur.comm, inode=inode.name, lblk=lb, pblk=pblk, source="writeback")
    st.note = ", ".join(f"blk{p}" for p in new_blocks)


def _replace_items(inode: Inode, first: int, count: int, new: dict[int, int]) -> None:
    """The items over [first, first + count) give way to `new` (start -> length); an item
    reaching outside keeps its parts outside (btrfs_drop_extents splits it)."""
    end = first + count
    for start, length in list(inode.items.items()):
        stop = start + length
        if stop <= first or start >= end:
            continue
        del inode.items[start]
        if start < first:
            inode.items[start] = first - start
        if stop > end:
            inode.items[end] = stop - end
    inode.items.update(new)


# -- the clone ---------------------------------------------------------------------------------
def btrfs_remap_file_range(cur: Current, k: Kernel, inode: Inode, src: int, dst: int,
                           length: int):
    """FICLONERANGE within one file, page-aligned: the protocol's locks (i_rwsem and
    i_mmap_lock exclusive), btrfs_remap_file_range_prep flushes the source and waits for
    the destination's ordered extents (generic_remap_file_range_prep's checks and flushes
    folded in), then btrfs_clone_files. Called with no lock held."""
    if not (yield from generic_remap_file_range_prep(cur, k, inode, src, dst, length)):
        return "-EINVAL"
    yield from btrfs_clone_files(cur, k, inode, src // k.blksize, dst // k.blksize,
                                 length // k.blksize)
    yield from k.protocol.remove_blocks_end(cur, k, inode, "clone")
    return None


def btrfs_clone_files(cur: Current, k: Kernel, inode: Inode, src: int, dst: int, count: int):
    """btrfs_double_extent_lock over both ranges (lower first), btrfs_clone, unlock, then
    truncate_inode_pages_range over the destination so later reads see the clone. Called
    with the protocol's locks for removing blocks, both ranges flushed."""
    bpp = k.blocks_per_page
    ranges = sorted([(src // bpp, (src + count - 1) // bpp),
                     (dst // bpp, (dst + count - 1) // bpp)])
    for first, last in ranges:
        yield from lock_extent(cur, inode, first, last)
    yield from btrfs_clone(cur, k, inode, src, dst, count)
    for first, last in reversed(ranges):
        yield from unlock_extent(cur, inode, first, last)
    yield from truncate_inode_pages_range(cur, k, inode, dst // bpp, (dst + count - 1) // bpp)


def btrfs_clone(cur: Current, k: Kernel, inode: Inode, src: int, dst: int, count: int):
    """btrfs_clone: the source's items over [src, src + count) are read from the tree,
    and for each, btrfs_replace_file_extents over its part of the destination: drop the
    cached maps there (btrfs_drop_extents with drop_cache), then trim the destination's
    items and insert one for the source's blocks (btrfs_insert_replace_extent; the blocks
    gain a reference, the destination's old ones lose one); then, where the protocol has
    it (`clone_drops_maps_after`), the destination's maps are dropped again. Called with
    both ranges locked in the extent io tree."""
    st = Step("btrfs_clone: btrfs_search_slot over the source's items",
              ((inode.map_key, READ),))
    yield st
    pieces = []  # (source start, length) of each source item's part of the range
    lb = src
    while lb < src + count:
        start, blocks = _item_at(inode, lb)
        stop = min(start + len(blocks), src + count)
        pieces.append((lb, stop - lb))
        lb = stop
    st.note = ", ".join(f"[{s}, {s + n})" for s, n in pieces)
    for s, n in pieces:
        d = dst + s - src
        st = Step("btrfs_drop_extents: btrfs_drop_extent_map_range", ((inode.em_key, WRITE),))
        yield st
        drop_extent_map_range(inode, d, d + n - 1, _counts_drops(k))

        def footprint(s: int = s, d: int = d, n: int = n):
            touched = [inode.written_block(b) for b in (*range(s, s + n), *range(d, d + n))]
            return ((inode.map_key, WRITE),
                    *((k.disk.owner_key(p), WRITE) for p in touched if p is not None))

        st = Step("btrfs_replace_file_extents: trim the destination's items, "
                  "btrfs_insert_replace_extent", footprint=footprint)
        yield st
        notes = []
        for i in range(n):
            old, new = inode.written_block(d + i), inode.written_block(s + i)
            if old is not None:
                freed = k.disk.unshare(old, (inode.name, d + i))
                notes.append(f"lblk {d + i}: blk{old} " + ("freed" if freed else "unshared"))
            if new is None:
                inode.extents.pop(d + i, None)
                continue
            k.disk.share(new, (inode.name, d + i))
            inode.extents[d + i] = (WRITTEN, new)
            notes.append(f"lblk {d + i} -> blk{new}")
        # a hole's piece replaces the destination's items with none (no_holes)
        _replace_items(inode, d, n, {d: n} if inode.written_block(d) is not None else {})
        st.note = "; ".join(notes)
    if getattr(k.protocol, "clone_drops_maps_after", False):
        # A map read from the old items and cached after the drop above goes now; a
        # read that misses the cache later sees the drop and caches its own block alone.
        st = Step("btrfs_clone: btrfs_drop_extent_map_range over the destination, again",
                  ((inode.em_key, WRITE),))
        yield st
        drop_extent_map_range(inode, dst, dst + count - 1, _counts_drops(k))


AOPS = AddressSpaceOps(readpage=btrfs_read_folio, page_mkwrite=btrfs_page_mkwrite,
                       writepages=btrfs_writepages, invalidatepage=btrfs_invalidate_folio,
                       write_get_block=btrfs_write_get_block)
FS = FileSystem("btrfs", AOPS, clone_range=btrfs_remap_file_range,
                copy_range=btrfs_remap_file_range)  # vfs_copy_file_range reflinks
