"""fs/ocfs2 on a local mount (mkfs.ocfs2 -M local), Linux 6.1: reflink and its copy on write.

A reflink (FICLONERANGE; copy_file_range, which the VFS serves with the same
->remap_file_range) makes the destination share the source's clusters, counted in the
refcount tree (the model's Disk.share). A write to a shared cluster first copies it: in
ocfs2_write_begin_nolock, ocfs2_refcount_cow claims a new cluster and dirties the page
cache over it (ocfs2_duplicate_clusters_by_page), so the new cluster holds nothing until
writeback. Writeback itself (block_write_full_page) writes where the page's buffers point
and never copies.

On a local mount the cluster locks (ocfs2_rw_lock, ocfs2_inode_lock) are no-ops, so the
locks that count are i_rwsem and ip_alloc_sem: page_mkwrite takes only ip_alloc_sem, and
ocfs2_remap_file_range takes it only after generic_remap_file_range_prep has flushed.
A store in between that copies the source's cluster on write leaves the remap sharing the
new, unwritten cluster with the destination (docs/findings/ocfs2-reflink-mmap.md: 6.1,
6.12 and 7.2.13). A model cluster is one block, and a block is at most a page.
"""

from __future__ import annotations

from ..explore.step import READ, WRITE, Step
from .buffer import (
    VM_FAULT_LOCKED,
    VM_FAULT_NOPAGE,
    VM_FAULT_RETRY,
    block_read_full_page,
    create_empty_buffers,
    submit_mapped_buffers,
)
from .ext4 import ext4_da_get_block_prep, ext4_da_invalidatepage
from .filemap import generic_remap_file_range_prep
from .kernel import AddressSpaceOps, FileSystem, Kernel
from .locking import (
    down_read,
    down_read_trylock,
    down_write,
    lock_page,
    unlock_page,
    up_read,
    up_write,
    wait_on_page_writeback,
)
from .page_writeback import write_cache_pages, write_out
from .structs import PAGE_SIZE, WRITTEN, Buffer, Current, Inode, Page
from .truncate import truncate_inode_pages_range


def _blocks_of(k: Kernel, page: Page) -> list[int]:
    return [k.lblk(page.index, nr) for nr in range(k.blocks_per_page)]


def _shared(k: Kernel, inode: Inode, lblk: int) -> bool:
    """The extent is refcounted and another file block still shares it. (ocfs2 keeps the
    OCFS2_EXT_REFCOUNTED flag once the count falls to 1; its copy on write then only clears
    the flag, which changes nothing the model shows.)"""
    pblk = inode.written_block(lblk)
    return pblk is not None and k.disk.refcount(pblk) > 1


# -- reading ----------------------------------------------------------------------------------
def ocfs2_get_block(cur: Current, k: Kernel, inode: Inode, lblk: int, bh: Buffer, create: bool):
    """ocfs2_extent_map_get_blocks: map bh to the cluster's block. Called with ip_alloc_sem
    held and the page locked."""
    st = Step("ocfs2_get_block: ocfs2_extent_map_get_blocks", ((inode.map_key, READ),))
    yield st
    state, pblk = inode.extents.get(lblk, ("hole", None))
    if state == WRITTEN:
        bh.blocknr = pblk
    st.note = f"lblk {lblk}: {state}" + (f" -> blk{pblk}" if pblk is not None else "")


def ocfs2_read_folio(cur: Current, k: Kernel, inode: Inode, page: Page):
    """block_read_full_folio(ocfs2_get_block) under ip_alloc_sem, which a reader only
    trylocks (it holds the page lock, and the remap and copy on write lock pages under the
    semaphore): on failure it unlocks the page, waits for the semaphore and returns
    AOP_TRUNCATED_PAGE, and the caller finds, locks and reads the page again. That retry is
    folded in here. Called with the page locked; unlocks it."""
    while not (yield from down_read_trylock(cur, inode.ip_alloc_sem)):
        yield from unlock_page(cur, page)
        yield from down_read(cur, inode.ip_alloc_sem)
        yield from up_read(cur, inode.ip_alloc_sem)
        yield from lock_page(cur, page)
        st = Step("filemap_read_folio: AOP_TRUNCATED_PAGE, find and recheck the page",
                  ((page.key, READ),))
        yield st
        if page.inode is not inode or page.uptodate:
            st.note = "truncated or read meanwhile: nothing to read"
            yield from unlock_page(cur, page)
            return
    yield from block_read_full_page(cur, k, inode, page, ocfs2_get_block)
    yield from up_read(cur, inode.ip_alloc_sem)


# -- the write fault and copy on write --------------------------------------------------------
def ocfs2_page_mkwrite(cur: Current, k: Kernel, inode: Inode, page: Page):
    """ocfs2_page_mkwrite: ocfs2_inode_lock (a no-op locally), ip_alloc_sem for write, then
    __ocfs2_page_mkwrite: the page must still be in the file, ocfs2_write_begin_nolock
    copies shared clusters on write, locks the page, rechecks its mapping and maps its
    buffers, and ocfs2_write_end_nolock dirties it. Returns VM_FAULT_LOCKED with the page
    locked, or VM_FAULT_NOPAGE. Called with mmap_sem held for read and the page unlocked."""
    proto = k.protocol
    if (yield from proto.page_mkwrite_begin(cur, k, inode)) is False:
        return VM_FAULT_RETRY
    yield from down_write(cur, inode.ip_alloc_sem)
    ret = yield from __ocfs2_page_mkwrite(cur, k, inode, page)
    yield from up_write(cur, inode.ip_alloc_sem)
    yield from proto.page_mkwrite_end(cur, k, inode)
    return ret


def __ocfs2_page_mkwrite(cur: Current, k: Kernel, inode: Inode, page: Page):
    st = Step("__ocfs2_page_mkwrite: page->mapping, PageUptodate, i_size",
              ((page.key, READ), (inode.size_key, READ)))
    yield st
    if page.inode is not inode or not page.uptodate or page.index * PAGE_SIZE >= inode.i_size:
        st.note = "page truncated: VM_FAULT_NOPAGE"
        return VM_FAULT_NOPAGE
    def refcounts():
        mapped = [inode.extents[lb][1] for lb in _blocks_of(k, page)
                  if inode.extents.get(lb, ("hole",))[0] == WRITTEN]
        return ((inode.map_key, READ), *((k.disk.owner_key(p), READ) for p in mapped))

    st = Step("ocfs2_write_begin_nolock: ocfs2_check_range_for_refcount", footprint=refcounts)
    yield st
    shared = [lb for lb in _blocks_of(k, page) if _shared(k, inode, lb)]
    st.note = f"shared: lblk {', '.join(map(str, shared))}" if shared else "nothing shared"
    if shared:
        yield from ocfs2_refcount_cow(cur, k, inode, page, shared)
    # ocfs2_grab_pages_for_write: the fault's page, locked, must still be the mapping's.
    yield from lock_page(cur, page)
    yield from wait_on_page_writeback(cur, page)  # wait_for_stable_page
    holes = [lb for lb in _blocks_of(k, page) if lb not in inode.extents]

    def footprint():
        if not holes:
            return ((page.key, WRITE), (inode.dirty_tag_key, WRITE), (inode.map_key, READ))
        return ((page.key, WRITE), (inode.dirty_tag_key, WRITE), (inode.map_key, WRITE),
                *k.disk.alloc_footprint(len(holes)))

    st = Step("ocfs2_write_begin_nolock: recheck page->mapping, map buffers; "
              "ocfs2_write_end_nolock: page dirty", footprint=footprint)
    yield st
    if page.inode is not inode:
        st.note = "page truncated: VM_FAULT_NOPAGE"
        yield from unlock_page(cur, page)
        return VM_FAULT_NOPAGE
    notes = []
    for lb in holes:  # a sparse file's hole gets its cluster now (zeroed: the page is)
        pblk = k.disk.alloc((inode.name, lb))
        k.disk.blocks[pblk].data = [0] * k.blksize
        inode.extents[lb] = (WRITTEN, pblk)
        notes.append(f"lblk {lb}: hole -> blk{pblk}")
    _map_and_dirty(k, inode, page)
    st.note = "; ".join(notes + ["page dirty"])
    return VM_FAULT_LOCKED


def _map_and_dirty(k: Kernel, inode: Inode, page: Page) -> None:
    """ocfs2_map_and_dirty_page: buffers mapped to the blocks the map has now, dirty."""
    create_empty_buffers(k, page)
    assert page.buffers is not None
    for lb, bh in zip(_blocks_of(k, page), page.buffers, strict=True):
        bh.blocknr = inode.extents[lb][1]
        bh.uptodate = bh.dirty = True
    page.dirty = True


def ocfs2_refcount_cow(cur: Current, k: Kernel, inode: Inode, page: Page, lblks: list[int]):
    """Give each shared block of the page a new block of its own (ocfs2_replace_cow):
    claim it, dirty the cached page over it (ocfs2_duplicate_clusters_by_page; the page is
    uptodate, so nothing is read and the new block stays unwritten until writeback),
    point the extent at it and drop one reference to the old one. Under ip_alloc_sem and
    the page lock, which keep out the remap, readers and writeback, so one step. Called
    with ip_alloc_sem held for write and the page unlocked; takes the page lock."""
    yield from lock_page(cur, page)

    def footprint():
        old = [inode.extents[lb][1] for lb in lblks]
        return ((inode.map_key, WRITE), (page.key, WRITE), (inode.dirty_tag_key, WRITE),
                *k.disk.alloc_footprint(len(lblks)),
                *((k.disk.owner_key(p), WRITE) for p in old))

    st = Step("ocfs2_refcount_cow: new clusters, duplicate by page, replace extents",
              footprint=footprint)
    yield st
    notes = []
    for lb in lblks:
        old = inode.extents[lb][1]
        assert old is not None
        k.disk.unshare(old, (inode.name, lb))
        new = k.disk.alloc((inode.name, lb))
        inode.extents[lb] = (WRITTEN, new)
        notes.append(f"lblk {lb}: blk{old} -> blk{new} (not yet written)")
    _map_and_dirty(k, inode, page)
    st.note = "; ".join(notes) + "; page dirty over the new blocks"
    yield from unlock_page(cur, page)


# -- writeback ------------------------------------------------------------------------------
def ocfs2_writepages(cur: Current, k: Kernel, inode: Inode, first: int, last: int):
    """generic_writepages: write_cache_pages with ->writepage = ocfs2_writepage. Called
    with no page lock held."""
    yield from write_cache_pages(cur, k, inode, first, last, ocfs2_writepage)


def ocfs2_writepage(cur: Current, k: Kernel, inode: Inode, page: Page):
    """block_write_full_page(ocfs2_get_block): a dirty page's buffers are mapped (its write
    fault mapped them), and each is written where it points, shared or not. Called with the
    page locked."""
    assert page.buffers is not None, "a dirty ocfs2 page has mapped buffers"
    yield from write_out(cur, k, inode, page, _submit)


def _submit(cur: Current, k: Kernel, inode: Inode, page: Page):
    yield from submit_mapped_buffers(cur, k, inode, page,
                                     "__block_write_full_page: submit_bh(WRITE)")


# -- reflink --------------------------------------------------------------------------------
def ocfs2_remap_file_range(cur: Current, k: Kernel, inode: Inode, src: int, dst: int,
                           length: int):
    """FICLONERANGE within one file (block-aligned ranges): ocfs2_reflink_inodes_lock (the
    protocol's lock: i_rwsem; the rw and inode cluster locks are no-ops locally), then
    generic_remap_file_range_prep checks the ranges and flushes both, and only then
    ip_alloc_sem for write, the destination's pages dropped and the blocks remapped. Called
    with no lock held; takes the protocol's locks for removing blocks, then ip_alloc_sem
    for write."""
    if not (yield from generic_remap_file_range_prep(cur, k, inode, src, dst, length)):
        return "-EINVAL"
    yield from down_write(cur, inode.ip_alloc_sem)
    yield from truncate_inode_pages_range(cur, k, inode, dst // PAGE_SIZE,
                                          (dst + length - 1) // PAGE_SIZE)
    yield from ocfs2_reflink_remap_blocks(cur, k, inode, src // k.blksize, dst // k.blksize,
                                          length // k.blksize)
    yield from up_write(cur, inode.ip_alloc_sem)
    yield from k.protocol.remove_blocks_end(cur, k, inode, "clone")
    return None


def ocfs2_reflink_remap_blocks(cur: Current, k: Kernel, inode: Inode, src: int, dst: int,
                               count: int):
    """ocfs2_reflink_remap_extent for each source block: punch the destination block
    (ocfs2_remove_inode_range: one reference fewer, freed at none), then map it to the
    source's block, marked refcounted (ocfs2_add_refcounted_extent: one reference more).
    Called with the protocol's locks for removing blocks and ip_alloc_sem held for write,
    the destination's pages dropped."""
    pairs = [(src + i, dst + i) for i in range(count)]

    def footprint():
        out = [(inode.map_key, WRITE)]
        for s_lb, d_lb in pairs:
            for lb in (s_lb, d_lb):
                state, pblk = inode.extents.get(lb, ("hole", None))
                if state == WRITTEN:
                    out.append((k.disk.owner_key(pblk), WRITE))
        return tuple(out)

    st = Step("ocfs2_reflink_remap_blocks: punch the destination, share the source's "
              "clusters", footprint=footprint)
    yield st
    notes = []
    for s_lb, d_lb in pairs:
        d_pblk = inode.written_block(d_lb)
        inode.extents.pop(d_lb, None)
        if d_pblk is not None:
            freed = k.disk.unshare(d_pblk, (inode.name, d_lb))
            notes.append(f"lblk {d_lb}: blk{d_pblk} " + ("freed" if freed else "unshared"))
        s_pblk = inode.written_block(s_lb)
        if s_pblk is None:
            notes.append(f"lblk {d_lb}: hole")
            continue
        k.disk.share(s_pblk, (inode.name, d_lb))
        inode.extents[d_lb] = (WRITTEN, s_pblk)
        notes.append(f"lblk {d_lb} -> blk{s_pblk} (refcount {k.disk.refcount(s_pblk)})")
    st.note = "; ".join(notes)


# invalidatepage and write(2)'s get_block are ext4's: the model has no write_begin or
# invalidatepage of this file system's own.
AOPS = AddressSpaceOps(readpage=ocfs2_read_folio, page_mkwrite=ocfs2_page_mkwrite,
                       writepages=ocfs2_writepages,
                       invalidatepage=ext4_da_invalidatepage,
                       write_get_block=ext4_da_get_block_prep)
FS = FileSystem("ocfs2", AOPS, clone_range=ocfs2_remap_file_range,
                copy_range=ocfs2_remap_file_range)  # vfs_copy_file_range reflinks
