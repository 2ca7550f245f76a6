"""The file server behind a network client (nfsd for the NFS client, Samba for the SMB
client): its file is the model's block map and disk.

A READ fills a whole page from the server's file (holes read as zeros), a WRITE stores a
whole page at its offset (the server allocates a block for a hole, so a WRITE past the
server's end of file extends it), a server-side copy gives each destination block
its own copy of the source's data, and a server-side punch frees the range's blocks (the
server's file is an ext4 file: its extents go as ext4's punch removes them). Each client
names the RPC its step stands for.
"""

from __future__ import annotations

from ..explore.step import READ, WRITE, Step
from .buffer import VM_FAULT_LOCKED, VM_FAULT_RETRY, mkwrite_page_truncated
from .delalloc import da_release
from .ext4 import ext4_ext_remove_space
from .filemap import filemap_write_and_wait_range
from .kernel import Kernel
from .locking import down_write, lock_page, unlock_page, up_write, wait_on_page_writeback
from .structs import DELALLOC, PAGE_SIZE, TO_EOF, WRITTEN, Current, Disk, Inode, Page, RWSem
from .truncate import truncate_pagecache


def server_readpage(cur: Current, k: Kernel, inode: Inode, page: Page, rpc: str,
                    past_eof: str | None):
    """The client's read of one page: zero-filled without an RPC (`past_eof` names how)
    when the page lies past the client's i_size, else (or with no `past_eof`: a client
    that asks the server anyway) the server reads its file. Called with the page locked;
    unlocks it."""
    lblks = [k.lblk(page.index, nr) for nr in range(k.blocks_per_page)]

    def beyond_eof() -> bool:
        return past_eof is not None and page.index * PAGE_SIZE >= inode.i_size

    def footprint():
        out = [(inode.size_key, READ)] if past_eof is not None else []
        out += [(page.key, WRITE), (page.data_key, WRITE)]
        if beyond_eof():
            return tuple(out)
        out.append((inode.map_key, READ))
        for lb in lblks:
            state, pblk = inode.extents.get(lb, ("hole", None))
            if state == WRITTEN:
                out.append((k.disk.key(pblk), READ))
        return tuple(out)

    st = Step(rpc, footprint=footprint)
    yield st
    if beyond_eof():
        page.data[:] = [0] * PAGE_SIZE
        page.uptodate = True
        st.note = f"page beyond EOF: {past_eof}, no RPC"
        yield from unlock_page(cur, page)
        return
    for nr, lb in enumerate(lblks):
        pblk = inode.written_block(lb)
        lo = nr * k.blksize
        src = k.disk.blocks[pblk].data if pblk is not None else [0] * k.blksize
        page.data[lo:lo + k.blksize] = list(src)
    page.uptodate = True
    yield from unlock_page(cur, page)


def remote_page_mkwrite(cur: Current, k: Kernel, inode: Inode, page: Page, name: str):
    """->page_mkwrite of a client whose fault code dirties the page (FUSE's and 9p's,
    `name`): lock the page, check it is still in the file, wait for its writeback. The
    fault code marks it dirty (fault_dirty_shared_page) once this has returned it locked,
    after the protocol's page_mkwrite lock is dropped; a protocol with `mkwrite_dirties`
    marks it dirty here, under that lock, as block_page_mkwrite does. Called with
    mmap_sem held for read and the page unlocked; takes the protocol's page_mkwrite lock,
    then the page lock."""
    proto = k.protocol
    dirties = getattr(proto, "mkwrite_dirties", False)
    if (yield from proto.page_mkwrite_begin(cur, k, inode)) is False:
        return VM_FAULT_RETRY
    yield from lock_page(cur, page)
    st = Step(f"{name}: recheck folio->mapping" + ("; folio_mark_dirty" if dirties else ""),
              ((page.key, WRITE), (inode.dirty_tag_key, WRITE)))
    yield st
    if page.inode is not inode:
        return (yield from mkwrite_page_truncated(cur, k, inode, page, st))
    if dirties:
        page.dirty = True
        st.note = "page dirty (whole page)"
    yield from wait_on_page_writeback(cur, page)
    yield from proto.page_mkwrite_end(cur, k, inode)
    if not dirties:
        st = Step("fault_dirty_shared_page: folio_mark_dirty (after ->page_mkwrite)",
                  ((page.key, WRITE), (inode.dirty_tag_key, WRITE)))
        yield st
        page.dirty = True
        st.note = "page dirty (whole page)"
    return VM_FAULT_LOCKED


def server_write(cur: Current, k: Kernel, inode: Inode, page: Page, rpc: str, source: str,
                 limit: int | None = None):
    """A WRITE of the whole page at its offset (with `limit`, only its blocks before that
    file offset), allocating server blocks for holes (a page written through write(2) may
    still carry delay buffers: the server's allocation takes their reservation). `source`
    names the I/O for the checks. Called with the client's page under writeback; the
    server holds none of the client's locks."""
    lblks = [lb for lb in (k.lblk(page.index, nr) for nr in range(k.blocks_per_page))
             if limit is None or lb * k.blksize < limit]

    def footprint():
        new = sum(1 for lb in lblks if inode.extents.get(lb, ("hole",))[0] != WRITTEN)
        out = [(page.key, WRITE), (page.data_key, READ), (inode.map_key, WRITE),
               (Disk.RESV_KEY, WRITE), *k.disk.alloc_footprint(new)]
        for lb in lblks:
            state, pblk = inode.extents.get(lb, ("hole", None))
            if state == WRITTEN:
                out += [(k.disk.key(pblk), WRITE), (k.disk.owner_key(pblk), READ)]
        return tuple(out)

    st = Step(rpc, footprint=footprint)
    yield st
    notes = []
    for nr, lb in enumerate(lblks):
        state, pblk = inode.extents.get(lb, ("hole", None))
        if state != WRITTEN:
            if state == DELALLOC:
                da_release(k, inode, lb)
            pblk = k.disk.alloc((inode.name, lb))
            inode.extents[lb] = (WRITTEN, pblk)
        assert pblk is not None
        lo = nr * k.blksize
        k.disk.blocks[pblk].data = page.data[lo:lo + k.blksize]
        k.log("bio_write", cur.comm, inode=inode.name, lblk=lb, pblk=pblk, source=source)
        notes.append(f"lblk {lb} -> blk{pblk}")
    page.buffers = None
    st.note = "; ".join(notes)


def copy_blocks(cur: Current, k: Kernel, inode: Inode, src: int, dst: int, count: int,
                what: str):
    """A copy of `count` blocks from `src` to `dst`, in one step named `what`: each
    destination block is freed and, where the source block holds data, replaced by a new
    block with a copy of it. Called with the locks of the operation held: a client's for a
    server's COPY or CLONE (the server takes none of them), a file system's for its own
    remap."""
    pairs = [(src + i, dst + i) for i in range(count)]

    def footprint():
        out = [(inode.map_key, WRITE), *k.disk.alloc_footprint(count)]
        for s_lb, d_lb in pairs:
            for lb, mode in ((s_lb, READ), (d_lb, WRITE)):
                state, pblk = inode.extents.get(lb, ("hole", None))
                if state == WRITTEN:
                    out += [(k.disk.key(pblk), mode), (k.disk.owner_key(pblk), WRITE)]
        return tuple(out)

    st = Step(what, footprint=footprint)
    yield st
    notes = []
    for s_lb, d_lb in pairs:
        s_pblk = inode.written_block(s_lb)
        data = list(k.disk.blocks[s_pblk].data) if s_pblk is not None else None
        d_pblk = inode.written_block(d_lb)
        if d_pblk is not None:
            k.disk.free(d_pblk)
            del inode.extents[d_lb]
        da_release(k, inode, d_lb)  # a delay block: drop its reservation
        if data is None:
            notes.append(f"lblk {d_lb}: hole")
            continue
        pblk = k.disk.alloc((inode.name, d_lb))
        k.disk.blocks[pblk].data = data
        inode.extents[d_lb] = (WRITTEN, pblk)
        notes.append(f"lblk {d_lb} -> blk{pblk} (copy of blk{s_pblk})")
    st.note = "; ".join(notes)


def server_write_to_eof(cur: Current, k: Kernel, inode: Inode, page: Page, trim: str,
                        rpc: str, source: str):
    """A client's WRITE of a page trimmed to i_size as read now, in the step named `trim`
    (FUSE's fuse_send_writepage, 9p's v9fs_vfs_write_folio_locked): a page wholly past it
    is not sent, a page across it only up to it (server_write). Called with the client's
    page under writeback."""
    st = Step(trim, ((inode.size_key, READ),))
    yield st
    if page.index * PAGE_SIZE >= inode.i_size:
        st.note = f"page {page.index} past i_size {inode.i_size}: not sent"
        return
    yield from server_write(cur, k, inode, page, rpc, source, inode.i_size)


def punch_blocks(cur: Current, k: Kernel, inode: Inode, offset: int, end: int, rpc: str):
    """The server punches bytes [offset, end) of its file, as the RPC named `rpc` asks: the
    blocks wholly inside are freed, and read as zeros after. Called with the client's
    locks of the operation held (the server takes none of them)."""
    st = Step(rpc, ((inode.map_key, READ),))
    yield st
    first, stop = -(-offset // k.blksize), end // k.blksize
    if first < stop:
        yield from ext4_ext_remove_space(cur, k, inode, first, stop - 1)
    else:
        st.note = "no whole block in the range"


def remote_setattr_size(cur: Current, k: Kernel, inode: Inode, size: int, rpc: str,
                        setsize: str, done: str, hold_writes: RWSem | None = None):
    """A network client's ftruncate, as nfs_setattr and cifs_setattr_nounix both do it:
    write back and wait on the whole file, the RPC named `rpc` (the server truncates or
    extends its file), and only then `setsize`: i_size_write and the drop of the pages
    beyond it. The client's i_size is the old one until then, so a page a store dirtied
    after the flush is still written back whole, and its WRITE puts the page back past
    the server's new end of file (a WRITE past it extends the server's file).
    With `hold_writes` (FUSE's FUSE_NOWRITE, which each of its writes takes shared) there
    is no flush: the writes are held back, by taking it exclusive, from before the RPC to
    after i_size_write, so they go out trimmed to the new size. Called with i_mutex held
    and the protocol's locks for removing blocks (do_truncate)."""
    if hold_writes is None:
        yield from filemap_write_and_wait_range(cur, k, inode, 0, TO_EOF)
    else:
        yield from down_write(cur, hold_writes)
    st = Step(rpc, ((inode.size_key, READ),))
    yield st
    old = inode.i_size
    st.note = f"server size -> {size}"
    if size < old:
        yield from ext4_ext_remove_space(cur, k, inode, -(-size // k.blksize), None)
    st = Step(setsize, ((inode.size_key, WRITE),))
    yield st
    k.resizing.add(inode.name)
    inode.i_size = size
    st.note = f"i_size {old} -> {size}"
    if hold_writes is not None:
        yield from up_write(cur, hold_writes)
    if size < old:
        yield from truncate_pagecache(cur, k, inode, size, old)
    st = Step(done, ((inode.size_key, WRITE),))
    yield st
    k.resizing.discard(inode.name)
