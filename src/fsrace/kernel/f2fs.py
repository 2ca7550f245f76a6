"""fs/f2fs/file.c as in Linux 6.1 and 7.2.13: the insert and collapse ranges,
f2fs_insert_range and f2fs_collapse_range.

f2fs's write fault, reads and writeback run the model's ext4 code here (f2fs_vm_page_mkwrite
reserves a block for the page, NEW_ADDR, much as delayed allocation does, and writeback
allocates the real block). What f2fs does its own way is moving blocks:
__exchange_data_block moves a block's address only while the block is not yet checkpointed;
a checkpointed block is *copied through the page cache* (f2fs_get_lock_data_page reads the
source page in, f2fs_get_new_data_page makes a dirty destination page, f2fs_truncate_hole
frees the source block), which leaves the source page cached, uptodate and clean, over a
hole. The model takes every written block as checkpointed: a file written and synced
before the insert, as in the stress run that found this.

f2fs_insert_range holds invalidate_lock in three sections (f2fs_collapse_range in the
same two, mirrored): around f2fs_truncate_blocks
beyond EOF (nothing there in the model), around truncate_pagecache and the exchange, and
around the final flush and truncate_pagecache. The first flush runs before the second
section, and the lock is dropped between the last two: a store in the first gap is
discarded with its page, and a write fault in the second dirties a stale source page that
the final flush writes back at its old offset. i_gc_rwsem and f2fs_lock_op (against GC and
checkpoints, which the model has not) are left out.
"""

from __future__ import annotations

from typing import Protocol as Interface
from typing import cast

from ..explore.step import READ, WRITE, Step
from .buffer import __block_write_begin, block_commit_write, create_empty_buffers
from .delalloc import da_release
from .ext4 import AOPS as EXT4_AOPS
from .ext4 import (
    _aligned,
    ext4_da_get_block_prep,
    ext4_ext_remove_space_locked,
)
from .filemap import (
    filemap_write_and_wait_range,
    find_get_page,
    grab_cache_page_write_begin,
    page_cache_read,
)
from .kernel import FileSystem, Kernel
from .locking import (
    down_write,
    lock_page,
    mutex_lock,
    mutex_unlock,
    unlock_page,
    up_write,
    wait_on_page_writeback,
)
from .structs import PAGE_SIZE, TO_EOF, WRITTEN, Current, Disk, Inode
from .truncate import truncate_pagecache_range


class F2fsGaps(Interface):
    """The gaps in f2fs's invalidate lock that a protocol running this model says it has
    (fsrace.protocols.f2fs: the 6.1-7.2 kernel has all five, the fixes none)."""

    insert_flushes_unlocked: bool
    insert_drops_lock: bool
    collapse_flushes_unlocked: bool
    collapse_drops_lock: bool
    collapse_sizes_unlocked: bool


def _lock_after_flush(cur: Current, k: Kernel, inode: Inode, first: int, unlocked: bool):
    """"write out all dirty pages from offset", then invalidate_lock (or, without the
    gap, the lock first). Called with i_mutex held."""
    if not unlocked:
        yield from down_write(cur, inode.invalidate_lock)
    yield from filemap_write_and_wait_range(cur, k, inode, first, TO_EOF)
    if unlocked:
        yield from down_write(cur, inode.invalidate_lock)


def _write_out_moved_pages(cur: Current, k: Kernel, inode: Inode, first: int, drops: bool):
    """"write out all moved pages, if possible": in a lock section of its own when the
    exchange's section ended first (`drops`), else still in the exchange's. Called with
    i_mutex and invalidate_lock (exclusive) held; returns with both still held."""
    if drops:
        yield from up_write(cur, inode.invalidate_lock)
        yield from down_write(cur, inode.invalidate_lock)
    yield from filemap_write_and_wait_range(cur, k, inode, first, TO_EOF)
    yield from truncate_pagecache_range(cur, k, inode, first, TO_EOF)


def f2fs_insert_range(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """f2fs_fallocate (inode_lock) -> f2fs_insert_range. The protocol says which of the two
    gaps in the invalidate lock it has: `insert_flushes_unlocked` (the first flush before
    the lock) and `insert_drops_lock` (unlocked between the exchange and the final flush);
    f2fs has both, the fix neither. Returns None or -EINVAL. Called with no lock held."""
    proto = cast(F2fsGaps, k.protocol)
    yield from mutex_lock(cur, inode.i_mutex)
    st = Step("f2fs_insert_range: check the offset against i_size", ((inode.size_key, READ),))
    yield st
    err = None
    if not _aligned(k, offset, length) or offset >= inode.i_size:
        st.note = err = "-EINVAL"
    else:
        first, delta = offset // PAGE_SIZE, length // PAGE_SIZE
        old_size = inode.i_size
        k.resizing.add(inode.name)  # moved blocks lie past i_size until the end
        yield from _lock_after_flush(cur, k, inode, first, proto.insert_flushes_unlocked)
        yield from truncate_pagecache_range(cur, k, inode, first, TO_EOF)
        for src in reversed(range(first, -(-old_size // PAGE_SIZE))):
            yield from __exchange_data_block(cur, k, inode, src, src + delta)
        yield from _write_out_moved_pages(cur, k, inode, first, proto.insert_drops_lock)
        yield from up_write(cur, inode.invalidate_lock)
        st = Step("f2fs_insert_range: f2fs_i_size_write", ((inode.size_key, WRITE),))
        yield st
        inode.i_size = old_size + length
        st.note = f"i_size -> {inode.i_size}"
        k.resizing.discard(inode.name)
    yield from mutex_unlock(cur, inode.i_mutex)
    return err


def f2fs_collapse_range(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """f2fs_fallocate (inode_lock) -> f2fs_collapse_range: the insert's shape run the other
    way, with the same two gaps (`collapse_flushes_unlocked`, `collapse_drops_lock`): flush
    from the offset, then f2fs_do_collapse under invalidate_lock (truncate_pagecache, each
    page past the range exchanged onto its new place), the lock dropped, then the moved
    pages written out, the cache truncated and the blocks past the new size freed
    (f2fs_truncate_blocks) under it again. And a third (`collapse_sizes_unlocked`): i_size
    shrinks only after that lock is dropped, so a fault in between still passes the size
    checks and maps a page the new size leaves past EOF. Returns None or -EINVAL. Called
    with no lock held."""
    proto = cast(F2fsGaps, k.protocol)
    yield from mutex_lock(cur, inode.i_mutex)
    st = Step("f2fs_collapse_range: check the range against i_size", ((inode.size_key, READ),))
    yield st
    err = None
    if not _aligned(k, offset, length) or offset + length >= inode.i_size:
        st.note = err = "-EINVAL"
    else:
        first, delta = offset // PAGE_SIZE, length // PAGE_SIZE
        new_size = inode.i_size - length
        yield from _lock_after_flush(cur, k, inode, first, proto.collapse_flushes_unlocked)
        yield from truncate_pagecache_range(cur, k, inode, first, TO_EOF)
        for src in range(first + delta, -(-inode.i_size // PAGE_SIZE)):
            yield from __exchange_data_block(cur, k, inode, src, src - delta)
        yield from _write_out_moved_pages(cur, k, inode, first, proto.collapse_drops_lock)
        yield from down_write(cur, inode.i_data_sem)
        yield from ext4_ext_remove_space_locked(cur, k, inode, -(-new_size // k.blksize),
                                                None)  # f2fs_truncate_blocks
        yield from up_write(cur, inode.i_data_sem)
        if proto.collapse_sizes_unlocked:
            yield from up_write(cur, inode.invalidate_lock)
        st = Step("f2fs_collapse_range: f2fs_i_size_write", ((inode.size_key, WRITE),))
        yield st
        inode.i_size = new_size
        st.note = f"i_size -> {inode.i_size}"
        if not proto.collapse_sizes_unlocked:
            yield from up_write(cur, inode.invalidate_lock)
    yield from mutex_unlock(cur, inode.i_mutex)
    return err


def _blocks(k: Kernel, index: int) -> range:
    return range(k.lblk(index, 0), k.lblk(index + 1, 0))


def __exchange_data_block(cur: Current, k: Kernel, inode: Inode, src: int, dst: int):
    """Move page `src`'s blocks to page `dst` (a hole: the file was cut at EOF and each
    destination was the previous source): __read_out_blkaddrs, then __clone_blkaddrs.
    Called with i_mutex and invalidate_lock (exclusive) held; takes the dnode's lock."""
    yield from down_write(cur, inode.i_data_sem)  # the dnode's lock
    st = Step(f"__read_out_blkaddrs({src})", ((inode.map_key, READ),))
    yield st
    states = [inode.extents.get(lblk, ("hole", None))[0] for lblk in _blocks(k, src)]
    if all(s == "hole" for s in states):
        st.note = "NULL_ADDR: nothing to move"
        yield from up_write(cur, inode.i_data_sem)
        return
    if WRITTEN not in states:  # not checkpointed: do_replace, the address moves
        st = Step(f"__clone_blkaddrs: f2fs_replace_block({src} -> {dst})",
                  footprint=lambda: ((inode.map_key, WRITE), (Disk.RESV_KEY, WRITE), *(
                      (k.disk.owner_key(p), WRITE) for lblk in (*_blocks(k, src),
                                                                *_blocks(k, dst))
                      for _, p in [inode.extents.get(lblk, ("hole", None))] if p is not None)))
        yield st
        for a, b in zip(_blocks(k, src), _blocks(k, dst), strict=True):
            # f2fs_truncate_data_blocks_range: the destination's own block goes first (a
            # collapse's destination has one; an insert's is a hole).
            pblk = inode.written_block(b)
            if pblk is not None:
                k.disk.free(pblk)
                del inode.extents[b]
            da_release(k, inode, b)
            if a in inode.extents:
                inode.extents[b] = inode.extents.pop(a)
                pblk = inode.extents[b][1]
                if pblk is not None:
                    k.disk.blocks[pblk].owner = (inode.name, b)
        st.note = "moved the block addresses"
        yield from up_write(cur, inode.i_data_sem)
        return
    st.note = "checkpointed: copy through the page cache"
    yield from up_write(cur, inode.i_data_sem)
    psrc = yield from f2fs_get_lock_data_page(cur, k, inode, src)
    pdst = yield from f2fs_get_new_data_page(cur, k, inode, dst)
    st = Step(f"__clone_blkaddrs: memcpy_page({src} -> {dst}), set_page_dirty",
              ((psrc.data_key, READ), (pdst.key, WRITE), (pdst.data_key, WRITE),
               (inode.dirty_tag_key, WRITE), (inode.size_key, WRITE)))
    yield st
    pdst.data[:] = psrc.data
    block_commit_write(k, pdst, 0, PAGE_SIZE)
    # f2fs_get_new_data_page(new_i_size=true) grows i_size to cover the page.
    inode.i_size = max(inode.i_size, (dst + 1) * PAGE_SIZE)
    st.note = f"copied {psrc.data}; page {src} stays cached"
    yield from unlock_page(cur, pdst)
    yield from unlock_page(cur, psrc)
    # f2fs_truncate_hole(src, src + 1): the block goes, the cached page stays.
    yield from down_write(cur, inode.i_data_sem)
    yield from ext4_ext_remove_space_locked(cur, k, inode, k.lblk(src, 0),
                                            k.lblk(src + 1, 0) - 1)
    yield from up_write(cur, inode.i_data_sem)


def f2fs_get_lock_data_page(cur: Current, k: Kernel, inode: Inode, index: int):
    """Find the page or read it in, and return it locked and still in the file. Called
    from __clone_blkaddrs with i_mutex and invalidate_lock (exclusive) held, no page lock."""
    while True:
        page = yield from find_get_page(cur, k, inode, index)
        if page is None:
            yield from page_cache_read(cur, k, inode, index)
            continue
        yield from lock_page(cur, page)
        st = Step("f2fs_get_lock_data_page: recheck page->mapping", ((page.key, READ),))
        yield st
        if page.inode is inode:
            return page
        st.note = "page truncated: find it again"
        st.retry = True
        yield from unlock_page(cur, page)


def f2fs_get_new_data_page(cur: Current, k: Kernel, inode: Inode, index: int):
    """A locked page for `index` with a block reserved (NEW_ADDR) under it, its writeback
    waited for; the caller fills it. Called from __clone_blkaddrs with i_mutex and
    invalidate_lock (exclusive) held and the source page locked."""
    page = yield from grab_cache_page_write_begin(cur, k, inode, index)
    create_empty_buffers(k, page)
    yield from wait_on_page_writeback(cur, page)
    yield from __block_write_begin(cur, k, inode, page, 0, PAGE_SIZE, ext4_da_get_block_prep)
    return page


AOPS = EXT4_AOPS  # the fault, read and writeback paths: see the module's docstring
FS = FileSystem("f2fs", AOPS, collapse_range=f2fs_collapse_range,
                insert_range=f2fs_insert_range)
