"""fs/ext4 with delayed allocation, as in Linux 3.4 (the kernel of the 2012 thread).

Protocol hooks (`k.protocol`) sit where later kernels took their locks, so each protocol era
runs this same code with its own locking.
"""

from __future__ import annotations

from ..explore.step import READ, WRITE, Step
from .buffer import (
    VM_FAULT_RETRY,
    block_page_mkwrite,
    block_read_full_page,
    mpage_readpage,
    submit_mapped_buffers,
)
from .delalloc import da_allocate, da_release, da_reserve
from .filemap import filemap_write_and_wait_range, find_get_page
from .kernel import AddressSpaceOps, FileSystem, Kernel
from .locking import (
    down_read,
    down_write,
    lock_page,
    mutex_lock,
    mutex_unlock,
    unlock_page,
    up_read,
    up_write,
)
from .page_writeback import write_cache_pages, write_out
from .structs import (
    DELALLOC,
    PAGE_SIZE,
    TO_EOF,
    UNWRITTEN,
    WRITTEN,
    Buffer,
    Current,
    Disk,
    Inode,
    Page,
)
from .truncate import truncate_pagecache, truncate_pagecache_range


# -- block mapping ------------------------------------------------------------------------
def ext4_get_block(cur: Current, k: Kernel, inode: Inode, lblk: int, bh: Buffer, create: bool):
    """ext4_map_blocks without allocation (reads): map bh to the block, if there is one.
    Called with the page locked; takes i_data_sem shared."""
    yield from down_read(cur, inode.i_data_sem)
    st = Step("ext4_map_blocks", ((inode.map_key, READ),))
    yield st
    state, pblk = inode.extents.get(lblk, ("hole", None))
    if state in (WRITTEN, UNWRITTEN):
        bh.blocknr = pblk
        bh.unwritten = state == UNWRITTEN
    st.note = f"lblk {lblk}: {state}" + (f" -> blk{pblk}" if pblk is not None else "")
    yield from up_read(cur, inode.i_data_sem)


def ext4_da_get_block_prep(cur: Current, k: Kernel, inode: Inode, lblk: int, bh: Buffer,
                           create: bool):
    """ext4_da_map_blocks: map an allocated block; for a hole, reserve space and mark the
    buffer delay and new (delayed allocation). Called with the page locked; takes
    i_data_sem shared."""
    yield from down_read(cur, inode.i_data_sem)

    def footprint():
        if inode.extents.get(lblk, ("hole",))[0] in (WRITTEN, UNWRITTEN, DELALLOC):
            return ((inode.map_key, READ),)
        return ((inode.map_key, WRITE), (Disk.RESV_KEY, WRITE))  # reserves

    st = Step("ext4_da_get_block_prep", footprint=footprint)
    yield st
    state, pblk = inode.extents.get(lblk, ("hole", None))
    if state in (WRITTEN, UNWRITTEN):
        bh.blocknr = pblk
        bh.unwritten = state == UNWRITTEN
        st.note = f"lblk {lblk} -> blk{pblk}"
    else:
        if state != DELALLOC:  # a hole
            da_reserve(k, inode, lblk)
        bh.delay = True
        bh.new = True
        st.note = f"lblk {lblk}: hole, reserved (delay)"
    yield from up_read(cur, inode.i_data_sem)


# -- reading and faulting -------------------------------------------------------------------
def ext4_readpage(cur: Current, k: Kernel, inode: Inode, page: Page):
    """->readpage. Called with the new page locked and not uptodate; the read's completion
    unlocks it."""
    if k.blocks_per_page == 1:
        yield from mpage_readpage(cur, k, inode, page, ext4_get_block)
    else:
        yield from block_read_full_page(cur, k, inode, page, ext4_get_block)


def ext4_page_mkwrite(cur: Current, k: Kernel, inode: Inode, page: Page):
    """The 2012 delalloc write fault: block_page_mkwrite with ext4_da_get_block_prep.
    Called with mmap_sem held for read and the page unlocked; takes the protocol's
    page_mkwrite lock around the page lock."""
    proto = k.protocol
    if (yield from proto.page_mkwrite_begin(cur, k, inode)) is False:
        return VM_FAULT_RETRY
    ret = yield from block_page_mkwrite(cur, k, inode, page, ext4_da_get_block_prep)
    # The protocol's lock is dropped before the fault installs the PTE; the page lock,
    # still held on VM_FAULT_LOCKED, keeps truncation away until then.
    yield from proto.page_mkwrite_end(cur, k, inode)
    return ret


# -- writeback ------------------------------------------------------------------------------
def ext4_da_writepages(cur: Current, k: Kernel, inode: Inode, first: int, last: int):
    """->writepages. Called with no page lock held: write_cache_pages locks each dirty
    page in turn."""
    yield from write_cache_pages(cur, k, inode, first, last, ext4_writepage)


def ext4_writepage(cur: Current, k: Kernel, inode: Inode, page: Page):
    """Called with the dirty page locked: allocate its delayed blocks, then write it."""
    assert page.buffers is not None, "a dirty page always has buffers"
    if any(b.delay for b in page.buffers):
        yield from mpage_da_map_blocks(cur, k, inode, page)
    yield from write_out(cur, k, inode, page, ext4_bio_write_page)


def mpage_da_map_blocks(cur: Current, k: Kernel, inode: Inode, page: Page):
    """ext4_map_blocks(EXT4_GET_BLOCKS_DELALLOC_RESERVE) for the page's delay buffers.
    Called with the page locked; takes i_data_sem for write."""
    yield from down_write(cur, inode.i_data_sem)
    assert page.buffers is not None

    def footprint():
        need = sum(1 for nr, bh in enumerate(page.buffers or []) if bh.delay and
                   inode.extents.get(k.lblk(page.index, nr), ("hole",))[0] in (DELALLOC, "hole"))
        return ((inode.map_key, WRITE), (Disk.RESV_KEY, WRITE), (page.key, WRITE),
                *k.disk.alloc_footprint(need))

    st = Step("ext4_map_blocks: allocate delayed blocks", footprint=footprint)
    yield st
    notes = []
    assert page.buffers is not None
    for nr, bh in enumerate(page.buffers):
        if not bh.delay:
            continue
        lblk = k.lblk(page.index, nr)
        state, pblk = inode.extents.get(lblk, ("hole", None))
        if state == DELALLOC:
            pblk = da_allocate(k, inode, lblk)
            notes.append(f"lblk {lblk} -> blk{pblk}")
        elif state == "hole":
            # No reservation backs this delay buffer; ext4_da_update_reserve_space warns
            # and allocates anyway.
            pblk = k.disk.alloc((inode.name, lblk))
            inode.extents[lblk] = (WRITTEN, pblk)
            k.log("warn", cur.comm, msg=f"{inode.name} lblk {lblk}: delalloc without reservation")
            notes.append(f"lblk {lblk} -> blk{pblk} WITHOUT reservation")
        else:
            notes.append(f"lblk {lblk} already {state} -> blk{pblk}")
        bh.blocknr = pblk
        bh.delay = False
        bh.new = False
    st.note = "; ".join(notes)
    yield from up_write(cur, inode.i_data_sem)


def ext4_bio_write_page(cur: Current, k: Kernel, inode: Inode, page: Page):
    """Write each mapped buffer of the page to its block. Called with the page unlocked
    but under writeback, so its buffers stay mapped where they are."""
    yield from submit_mapped_buffers(cur, k, inode, page, "ext4_bio_write_page: submit_bh(WRITE)")
    yield from ext4_end_io_unwritten(cur, k, inode, page)


def ext4_end_io_unwritten(cur: Current, k: Kernel, inode: Inode, page: Page):
    """ext4_end_io -> ext4_convert_unwritten_extents: once the data is on disk, the unwritten
    extents under the page's unwritten buffers become written. A buffer mapped before its
    extent became unwritten is not marked so, and its data stays invisible. Called at I/O
    completion, the page still under writeback; takes i_data_sem for write."""
    todo = [(nr, bh) for nr, bh in enumerate(page.buffers or [])
            if bh.unwritten and bh.blocknr is not None]
    if not todo:
        return
    yield from down_write(cur, inode.i_data_sem)
    st = Step("ext4_convert_unwritten_extents", ((inode.map_key, WRITE), (page.key, WRITE)))
    yield st
    done = []
    for nr, bh in todo:
        lblk = k.lblk(page.index, nr)
        state, pblk = inode.extents.get(lblk, ("hole", None))
        if state == UNWRITTEN and pblk == bh.blocknr:
            inode.extents[lblk] = (WRITTEN, pblk)
            done.append(f"lblk {lblk}")
        bh.unwritten = False
    st.note = f"written: {', '.join(done)}" if done else "nothing left to convert"
    yield from up_write(cur, inode.i_data_sem)


# -- removing blocks --------------------------------------------------------------------------
def ext4_ext_remove_space(cur: Current, k: Kernel, inode: Inode, first: int,
                          last: int | None):
    """Remove the extents of file blocks [first, last] (last None: to the end) and free
    their blocks. Delayed blocks live in page buffers, not in the extent tree, and are left
    alone (3.4). Called with the remover's locks (i_mutex where the caller takes it; the
    protocol's, exclusive), and with no page lock or, in the 2012 thread's page-by-page
    punch, the lock of the page over the blocks; takes i_data_sem for write."""
    yield from down_write(cur, inode.i_data_sem)
    yield from ext4_ext_remove_space_locked(cur, k, inode, first, last)
    yield from up_write(cur, inode.i_data_sem)


def ext4_ext_remove_space_locked(cur: Current, k: Kernel, inode: Inode, first: int,
                                 last: int | None):
    """The removal itself. Called with i_data_sem held for write."""

    def span() -> range:
        end = max(inode.extents, default=-1) if last is None else last
        return range(first, end + 1)

    def footprint():
        freed = [pblk for lblk in span() for state, pblk in [inode.extents.get(lblk, ("", None))]
                 if state in (WRITTEN, UNWRITTEN)]
        return ((inode.map_key, WRITE), *((k.disk.owner_key(n), WRITE) for n in freed))

    st = Step("ext4_ext_remove_space", footprint=footprint)
    yield st
    freed = []
    for lblk in span():
        state, pblk = inode.extents.get(lblk, ("hole", None))
        if state in (WRITTEN, UNWRITTEN):
            assert pblk is not None
            k.disk.free(pblk)
            del inode.extents[lblk]
            freed.append(f"blk{pblk}")
    st.note = f"freed {', '.join(freed)}" if freed else "nothing allocated"


def ext4_ext_punch_hole(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """ext4_ext_punch_hole as in 3.4: flush the range, drop its pages, then remove its
    blocks. Between the last two, nothing stops a fault from bringing a page back.
    Called with no lock held (3.4's punch took no i_mutex); takes the protocol's locks for
    removing blocks."""
    proto = k.protocol
    yield from proto.remove_blocks_begin(cur, k, inode, "punch")
    st = Step("ext4_ext_punch_hole: clamp to i_size", ((inode.size_key, READ),))
    yield st
    if offset >= inode.i_size:
        st.note = "beyond EOF: nothing to do"
        yield from proto.remove_blocks_end(cur, k, inode, "punch")
        return
    end = min(offset + length, -(-inode.i_size // PAGE_SIZE) * PAGE_SIZE)
    first_page, last_page = offset // PAGE_SIZE, (end - 1) // PAGE_SIZE
    yield from filemap_write_and_wait_range(cur, k, inode, first_page, last_page)
    first_full = -(-offset // PAGE_SIZE)
    last_full = end // PAGE_SIZE - 1
    if first_full <= last_full:
        yield from truncate_pagecache_range(cur, k, inode, first_full, last_full)
    # ext4_discard_partial_page_buffers: zero the punched part of partial pages.
    for index in sorted({first_page, last_page} - set(range(first_full, last_full + 1))):
        yield from zero_partial_page(cur, k, inode, index, offset, end)
    first_block = -(-offset // k.blksize)
    stop_block = end // k.blksize
    if first_block < stop_block:
        yield from ext4_ext_remove_space(cur, k, inode, first_block, stop_block - 1)
    yield from proto.remove_blocks_end(cur, k, inode, "punch")


def zero_partial_page(cur: Current, k: Kernel, inode: Inode, index: int, start: int,
                      end: int):
    """ext4_discard_partial_page_buffers: zero [start, end) within a cached page, and unmap
    the buffers of blocks that lie wholly inside it. Called with the remover's locks and no
    page lock; takes the page's."""
    page = yield from find_get_page(cur, k, inode, index)
    if page is None:
        return
    yield from lock_page(cur, page)
    st = Step("ext4_discard_partial_page_buffers",
              ((page.key, WRITE), (page.data_key, WRITE), (inode.map_key, WRITE),
               (Disk.RESV_KEY, WRITE)))
    yield st
    if page.inode is inode:
        base = index * PAGE_SIZE
        for c in range(max(start, base), min(end, base + PAGE_SIZE)):
            page.data[c - base] = 0
        for nr, bh in enumerate(page.buffers or []):
            lo, hi = base + nr * k.blksize, base + (nr + 1) * k.blksize
            if start <= lo and hi <= end:
                if bh.delay:
                    da_release(k, inode, k.lblk(index, nr))
                page.buffers[nr] = Buffer(uptodate=True)  # type: ignore[index]
    yield from unlock_page(cur, page)


def ext4_da_invalidatepage(k: Kernel, inode: Inode, page: Page) -> None:
    """->invalidatepage: drop the page's buffers, releasing the reservation of delay
    buffers. Called with the page locked, as truncate_inode_page holds it."""
    for nr, bh in enumerate(page.buffers or []):
        if bh.delay:
            da_release(k, inode, k.lblk(page.index, nr))
    page.buffers = None


def ext4_setattr_size(cur: Current, k: Kernel, inode: Inode, size: int):
    """ext4_setattr with ATTR_SIZE: truncate_setsize sets i_size first, then truncates the
    page cache, then ext4_truncate frees the blocks. Growing only sets i_size. Called with
    i_mutex held and the protocol's locks for removing blocks (do_truncate)."""
    st = Step("truncate_setsize: i_size_write", ((inode.size_key, WRITE),))
    yield st
    k.resizing.add(inode.name)
    old, inode.i_size = inode.i_size, size
    st.note = f"i_size {old} -> {size}"
    if size < old:
        yield from truncate_pagecache(cur, k, inode, size, old)
        yield from ext4_truncate(cur, k, inode, size)
    st = Step("ext4_setattr: truncate done", ((inode.size_key, WRITE),))
    yield st
    k.resizing.discard(inode.name)


def ext4_truncate(cur: Current, k: Kernel, inode: Inode, new_size: int):
    """Remove the blocks wholly beyond the new size. Called as ext4_setattr_size is, after
    the page cache beyond the new size was dropped."""
    yield from ext4_ext_remove_space(cur, k, inode, -(-new_size // k.blksize), None)


# -- the other block-moving fallocate modes (3.15 zero and collapse range, 4.2 insert) ------
# Each runs under i_mutex, flushes and drops the affected pages, then changes the block map.
# Until 4.5 (ea3d7209ca01, 32ebffd3bbb4) no lock kept faults and reads from refilling the
# cache in between; the protocol hooks sit where 4.5 put i_mmap_sem.


def _aligned(k: Kernel, offset: int, length: int) -> bool:
    return offset % k.blksize == 0 and length % k.blksize == 0 and length > 0


def ext4_zero_range(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """ext4_zero_range (3.15): flush the range and drop its pages, turn its blocks into
    unwritten extents (ext4_alloc_file_blocks with CONVERT_UNWRITTEN, allocating holes),
    zero the partial pages. Returns None or -EINVAL. Called with no lock held; takes
    i_mutex, then the protocol's locks for removing blocks."""
    proto = k.protocol
    yield from mutex_lock(cur, inode.i_mutex)
    yield from proto.remove_blocks_begin(cur, k, inode, "zero")
    st = Step("ext4_zero_range: clamp to i_size", ((inode.size_key, READ),))
    yield st
    end = min(offset + length, -(-inode.i_size // k.blksize) * k.blksize)
    if offset < end:
        first_page, last_page = offset // PAGE_SIZE, (end - 1) // PAGE_SIZE
        yield from filemap_write_and_wait_range(cur, k, inode, first_page, last_page)
        first_full, last_full = -(-offset // PAGE_SIZE), end // PAGE_SIZE - 1
        if first_full <= last_full:
            yield from truncate_pagecache_range(cur, k, inode, first_full, last_full)
        first_block, stop_block = -(-offset // k.blksize), end // k.blksize
        if first_block < stop_block:
            yield from ext4_alloc_file_blocks_unwritten(cur, k, inode, first_block,
                                                        stop_block - 1)
        for index in sorted({first_page, last_page} - set(range(first_full, last_full + 1))):
            yield from zero_partial_page(cur, k, inode, index, offset, end)
    else:
        st.note = "beyond EOF: nothing to do"
    yield from proto.remove_blocks_end(cur, k, inode, "zero")
    yield from mutex_unlock(cur, inode.i_mutex)


def ext4_alloc_file_blocks_unwritten(cur: Current, k: Kernel, inode: Inode, first: int,
                                     last: int):
    """ext4_map_blocks(CREATE_UNWRIT_EXT | CONVERT_UNWRITTEN) over [first, last]: written
    extents become unwritten (reads return zeros), holes get unwritten blocks. Delayed
    blocks are left to writeback. Called as ext4_zero_range holds its locks, no page lock;
    takes i_data_sem for write."""
    yield from down_write(cur, inode.i_data_sem)

    def footprint():
        holes = sum(1 for lblk in range(first, last + 1) if lblk not in inode.extents)
        return ((inode.map_key, WRITE), *k.disk.alloc_footprint(holes))

    st = Step("ext4_alloc_file_blocks: convert to unwritten", footprint=footprint)
    yield st
    notes = []
    for lblk in range(first, last + 1):
        state, pblk = inode.extents.get(lblk, ("hole", None))
        if state == WRITTEN:
            inode.extents[lblk] = (UNWRITTEN, pblk)
            notes.append(f"lblk {lblk} blk{pblk} unwritten")
        elif state == "hole":
            pblk = k.disk.alloc((inode.name, lblk))
            inode.extents[lblk] = (UNWRITTEN, pblk)
            notes.append(f"lblk {lblk} -> new blk{pblk} unwritten")
    st.note = "; ".join(notes) or "nothing to convert"
    yield from up_write(cur, inode.i_data_sem)


def _shift_extents(k: Kernel, inode: Inode, start: int, delta: int) -> list[str]:
    """Move every extent at or after file block `start` by `delta` blocks; the moved
    blocks change owner offset with them."""
    moved = sorted((lblk for lblk in inode.extents if lblk >= start), reverse=delta > 0)
    notes = []
    for lblk in moved:
        state, pblk = inode.extents.pop(lblk)
        inode.extents[lblk + delta] = (state, pblk)
        if pblk is not None:
            k.disk.blocks[pblk].owner = (inode.name, lblk + delta)
        notes.append(f"lblk {lblk} -> {lblk + delta}")
    return notes


def _shift_footprint(k: Kernel, inode: Inode, start: int) -> tuple:
    pblks = [pblk for lblk, (_, pblk) in inode.extents.items()
             if lblk >= start and pblk is not None]
    return ((inode.map_key, WRITE), *((k.disk.owner_key(n), WRITE) for n in pblks))


def collapse_blocks(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """Remove the blocks of [offset, offset + length) and shift the later extents down
    (ext4_ext_remove_space, ext4_ext_shift_extents), under the extent-map lock. Called
    with the page cache from `offset` on flushed and dropped. Other file systems' collapse
    of their block maps (ntfs3's attr_collapse_range) comes to the same in the model."""
    first, n = offset // k.blksize, length // k.blksize
    yield from down_write(cur, inode.i_data_sem)
    yield from ext4_ext_remove_space_locked(cur, k, inode, first, first + n - 1)
    st = Step("ext4_ext_shift_extents: left",
              footprint=lambda: _shift_footprint(k, inode, first + n))
    yield st
    st.note = "; ".join(_shift_extents(k, inode, first + n, -n)) or "nothing after"
    yield from up_write(cur, inode.i_data_sem)


def insert_blocks(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """Shift the extents from `offset` up by `length`, leaving a hole (ext4_ext_shift_extents
    right), under the extent-map lock. Called as collapse_blocks is."""
    first, n = offset // k.blksize, length // k.blksize
    yield from down_write(cur, inode.i_data_sem)
    st = Step("ext4_ext_shift_extents: right",
              footprint=lambda: _shift_footprint(k, inode, first))
    yield st
    st.note = "; ".join(_shift_extents(k, inode, first, n)) or "nothing after"
    yield from up_write(cur, inode.i_data_sem)


def ext4_collapse_range(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """ext4_collapse_range (3.15): flush from the offset to EOF and drop those pages, remove
    the range's blocks and shift the later extents down (ext4_ext_shift_extents), then
    shrink i_size. Returns None or -EINVAL. Called as ext4_zero_range is."""
    proto = k.protocol
    yield from mutex_lock(cur, inode.i_mutex)
    yield from proto.remove_blocks_begin(cur, k, inode, "collapse")
    st = Step("ext4_collapse_range: check the range against i_size", ((inode.size_key, READ),))
    yield st
    err = None
    if not _aligned(k, offset, length) or offset + length >= inode.i_size:
        st.note = err = "-EINVAL"
    else:
        first_page = offset // PAGE_SIZE
        yield from filemap_write_and_wait_range(cur, k, inode, first_page, TO_EOF)
        yield from truncate_pagecache_range(cur, k, inode, first_page, TO_EOF)
        yield from collapse_blocks(cur, k, inode, offset, length)
        st = Step("ext4_collapse_range: i_size_write", ((inode.size_key, WRITE),))
        yield st
        inode.i_size -= length
        st.note = f"i_size -> {inode.i_size}"
    yield from proto.remove_blocks_end(cur, k, inode, "collapse")
    yield from mutex_unlock(cur, inode.i_mutex)
    return err


def ext4_insert_range(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """ext4_insert_range (4.2): flush from the offset to EOF and drop those pages, grow
    i_size, then shift the extents from the offset up, leaving a hole. Returns None or
    -EINVAL. Called as ext4_zero_range is."""
    proto = k.protocol
    yield from mutex_lock(cur, inode.i_mutex)
    yield from proto.remove_blocks_begin(cur, k, inode, "insert")
    st = Step("ext4_insert_range: check the offset against i_size", ((inode.size_key, READ),))
    yield st
    err = None
    if not _aligned(k, offset, length) or offset >= inode.i_size:
        st.note = err = "-EINVAL"
    else:
        first_page = offset // PAGE_SIZE
        yield from filemap_write_and_wait_range(cur, k, inode, first_page, TO_EOF)
        yield from truncate_pagecache_range(cur, k, inode, first_page, TO_EOF)
        st = Step("ext4_insert_range: i_size_write", ((inode.size_key, WRITE),))
        yield st
        inode.i_size += length
        st.note = f"i_size -> {inode.i_size}"
        yield from insert_blocks(cur, k, inode, offset, length)
    yield from proto.remove_blocks_end(cur, k, inode, "insert")
    yield from mutex_unlock(cur, inode.i_mutex)
    return err


AOPS = AddressSpaceOps(readpage=ext4_readpage, page_mkwrite=ext4_page_mkwrite,
                       invalidatepage=ext4_da_invalidatepage,
                       write_get_block=ext4_da_get_block_prep,
                       writepages=ext4_da_writepages)
FS = FileSystem("ext4", AOPS)  # every file operation of the model's own is ext4's
