"""fs/buffer.c and fs/mpage.c: reading pages from blocks, buffers, block_page_mkwrite.

`get_block(cur, k, inode, lblk, bh, create)` is the filesystem's block mapper; it maps `bh`
(or marks it delay) and may yield steps of its own.
"""

from __future__ import annotations

from ..explore.step import READ, WRITE, Step
from .kernel import Kernel
from .locking import lock_page, unlock_page, wait_on_page_writeback
from .structs import PAGE_SIZE, Buffer, Current, Inode, Page

VM_FAULT_LOCKED = "locked"
VM_FAULT_NOPAGE = "nopage"  # the page went away: the fault is retried
VM_FAULT_SIGBUS = "sigbus"
VM_FAULT_RETRY = "retry"  # page_mkwrite could not take its lock: drop mmap_sem, fault again


def create_empty_buffers(k: Kernel, page: Page) -> None:
    """Attach unmapped buffers to a page that has none. Called with the page locked."""
    if page.buffers is None:
        page.buffers = [Buffer(uptodate=page.uptodate) for _ in range(k.blocks_per_page)]


def _read_block_into(k: Kernel, page: Page, nr: int, pblk: int | None) -> None:
    lo = nr * k.blksize
    src = k.disk.blocks[pblk].data if pblk is not None else [0] * k.blksize
    page.data[lo:lo + k.blksize] = list(src)


def _reads_of(k: Kernel, bhs: list[Buffer]) -> tuple:
    """The blocks a read of these (looked-up) buffers touches."""
    return tuple((k.disk.key(bh.blocknr), READ) for bh in bhs
                 if bh.blocknr is not None and not bh.unwritten)


def _blocks_in_file(cur: Current, k: Kernel, inode: Inode, page: Page, who: str):
    """The i_size read that starts a page read: blocks at or past it are not mapped but
    zero-filled, so a page added past a truncate's new EOF reads zeros, not the blocks the
    truncate has yet to free. A page wholly past EOF is finished here (zeroed, uptodate,
    unlocked); returns how many of the page's blocks lie inside the file."""
    def inside() -> int:
        last_block_in_file = -(-inode.i_size // k.blksize)
        return max(0, min(k.blocks_per_page, last_block_in_file - k.lblk(page.index, 0)))

    def footprint():
        if inside():
            return ((inode.size_key, READ),)
        return ((inode.size_key, READ), (page.key, WRITE), (page.data_key, WRITE))

    st = Step(f"{who}: i_size_read", footprint=footprint)
    yield st
    n = inside()
    if n == 0:
        page.data[:] = [0] * PAGE_SIZE
        page.uptodate = True
        st.note = "page beyond EOF: zero-filled, no I/O"
        yield from unlock_page(cur, page)
    return n


def mpage_readpage(cur: Current, k: Kernel, inode: Inode, page: Page, get_block):
    """Whole-page read (blocks_per_page == 1): no buffers are attached to the page.
    Called with the page locked; unlocks it."""
    if not (yield from _blocks_in_file(cur, k, inode, page, "do_mpage_readpage")):
        return
    bh = Buffer()
    yield from get_block(cur, k, inode, k.lblk(page.index, 0), bh, False)
    st = Step("mpage_readpage: submit_bio(READ)",
              (*_reads_of(k, [bh]), (page.key, WRITE), (page.data_key, WRITE)))
    yield st
    _read_block_into(k, page, 0, bh.blocknr if not bh.unwritten else None)
    page.uptodate = True
    st.note = f"read blk{bh.blocknr}" if bh.blocknr is not None else "hole: zero-filled"
    yield from unlock_page(cur, page)


def block_read_full_page(cur: Current, k: Kernel, inode: Inode, page: Page, get_block):
    """Sub-page blocks: buffers are attached and mapped to their blocks, and stay so;
    buffers past EOF are zeroed, unmapped. Called with the page locked; unlocks it."""
    inside = yield from _blocks_in_file(cur, k, inode, page, "block_read_full_page")
    if not inside:
        return
    found: list[Buffer] = []
    for nr in range(k.blocks_per_page):
        bh = Buffer()
        if nr < inside:
            yield from get_block(cur, k, inode, k.lblk(page.index, nr), bh, False)
        found.append(bh)
    st = Step("block_read_full_page: attach buffers, submit_bh(READ)",
              (*_reads_of(k, found), (page.key, WRITE), (page.data_key, WRITE)))
    yield st
    for nr, bh in enumerate(found):
        _read_block_into(k, page, nr, bh.blocknr if not bh.unwritten else None)
        bh.uptodate = True
    page.buffers = found
    page.uptodate = True
    st.note = "buffers " + ", ".join(b.describe() for b in found)
    yield from unlock_page(cur, page)


def mkwrite_page_truncated(cur: Current, k: Kernel, inode: Inode, page: Page, st: Step):
    """A ->page_mkwrite found its page truncated under the page lock (`st` the step that
    looked): it unlocks the page, drops the protocol's page_mkwrite lock and returns
    VM_FAULT_NOPAGE, and the fault is retried. Called with the page locked and the
    protocol's page_mkwrite lock held."""
    st.note = "page truncated: VM_FAULT_NOPAGE"
    yield from unlock_page(cur, page)
    yield from k.protocol.page_mkwrite_end(cur, k, inode)
    return VM_FAULT_NOPAGE


def block_page_mkwrite(cur: Current, k: Kernel, inode: Inode, page: Page, get_block):
    """__block_page_mkwrite (3.4): lock the page, check it was not truncated, map or reserve
    its blocks, dirty it. Returns VM_FAULT_LOCKED with the page locked, or VM_FAULT_NOPAGE.
    Called with mmap_sem held for read and the page unlocked (and the protocol's
    page_mkwrite lock, if any)."""
    yield from lock_page(cur, page)
    st = Step("block_page_mkwrite: recheck page->mapping, i_size",
              ((page.key, WRITE), (inode.size_key, READ)))
    yield st
    size = inode.i_size
    if k.mkwrite_recheck and (page.inode is not inode or page.index * PAGE_SIZE > size):
        st.note = "page truncated: VM_FAULT_NOPAGE"
        yield from unlock_page(cur, page)
        return VM_FAULT_NOPAGE
    end = min(PAGE_SIZE, max(size - page.index * PAGE_SIZE, 0))
    create_empty_buffers(k, page)
    yield from __block_write_begin(cur, k, inode, page, 0, end, get_block)
    st = Step("block_commit_write: buffers and page dirty",
              ((page.key, WRITE), (inode.dirty_tag_key, WRITE)))
    yield st
    block_commit_write(k, page, 0, end)
    yield from wait_on_page_writeback(cur, page)
    return VM_FAULT_LOCKED


def __block_write_begin(cur: Current, k: Kernel, inode: Inode, page: Page, start: int,
                        end: int, get_block):
    """Map (or reserve) every buffer of [start, end) that is not mapped yet; read the rest of
    a block a partial write does not cover. Called with the page locked. Attaches buffers
    if the page has none, as __block_write_begin_int does (a network client's writeback
    drops them, and may have while the caller waited for it)."""
    create_empty_buffers(k, page)
    assert page.buffers is not None
    for nr, bh in enumerate(page.buffers):
        lo, hi = nr * k.blksize, (nr + 1) * k.blksize
        if hi <= start or lo >= end:
            continue
        if not bh.mapped:
            yield from get_block(cur, k, inode, k.lblk(page.index, nr), bh, True)
            if bh.new:
                # A new block: zero the parts of it this write will not fill.
                st = Step("__block_write_begin: zero new buffer",
                          ((page.key, WRITE), (page.data_key, WRITE)))
                yield st
                for c in range(lo, hi):
                    if not start <= c < end:
                        page.data[c] = 0
                bh.uptodate = True
                continue
        if not page.uptodate and not bh.uptodate and (start > lo or end < hi):
            st = Step("__block_write_begin: read partial block",
                      (*_reads_of(k, [] if bh.delay else [bh]), (page.key, WRITE),
                       (page.data_key, WRITE)))
            yield st
            _read_block_into(k, page, nr, bh.blocknr if not bh.delay else None)
            bh.uptodate = True


def block_commit_write(k: Kernel, page: Page, start: int, end: int) -> None:
    """Mark the written buffers dirty and uptodate, and the page dirty (no step of its own:
    callers run it inside a step that writes the page). Called with the page locked."""
    assert page.buffers is not None
    for nr, bh in enumerate(page.buffers):
        lo, hi = nr * k.blksize, (nr + 1) * k.blksize
        if hi > start and lo < end:
            bh.uptodate = True
            bh.dirty = True
            bh.new = False
    if all(b.uptodate for b in page.buffers):
        page.uptodate = True
    page.dirty = True


def submit_mapped_buffers(cur: Current, k: Kernel, inode: Inode, page: Page, name: str):
    """The I/O of a page's writeback: each buffer mapped to a block is written to it (a
    delay buffer has none yet), as one step called `name`. Called with the page unlocked
    and under writeback."""

    def footprint():
        out = [(page.key, READ), (page.data_key, READ), (inode.map_key, READ)]
        for bh in page.buffers or []:
            if bh.blocknr is not None and not bh.delay:
                out += [(k.disk.key(bh.blocknr), WRITE), (k.disk.owner_key(bh.blocknr), READ)]
        return tuple(out)

    st = Step(name, footprint=footprint)
    yield st
    assert page.buffers is not None
    wrote = []
    for nr, bh in enumerate(page.buffers):
        if bh.blocknr is None or bh.delay:
            continue
        lo = nr * k.blksize
        k.disk.blocks[bh.blocknr].data = page.data[lo:lo + k.blksize]
        lblk = k.lblk(page.index, nr)
        k.log("bio_write", cur.comm, inode=inode.name, lblk=lblk, pblk=bh.blocknr,
              source="writeback")
        wrote.append(f"lblk {lblk} -> blk{bh.blocknr}")
    st.note = "; ".join(wrote) or "nothing mapped"
