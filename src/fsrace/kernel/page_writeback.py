"""mm/page-writeback.c: one pass of write_cache_pages, and the steps every file system's
writepage shares around its own I/O."""

from __future__ import annotations

from ..explore.step import READ, WRITE, Step
from .kernel import Kernel
from .locking import (
    end_page_writeback,
    lock_page,
    set_page_writeback,
    unlock_page,
    wait_on_page_writeback,
)
from .structs import PAGE_SIZE, Current, Inode, Page


def write_cache_pages(cur: Current, k: Kernel, inode: Inode, first: int, last: int,
                      writepage):
    """Every page of [first, last] tagged dirty (PAGECACHE_TAG_DIRTY, which outlives
    PG_dirty until set_page_writeback) is locked, rechecked, waited on if under writeback,
    and handed to `writepage(cur, k, inode, page)` still locked. Called with no page lock
    held: by the flusher, by fsync, or by a remover's flush under its locks."""
    st = Step("write_cache_pages: find dirty pages",
              ((inode.pages_key, READ), (inode.dirty_tag_key, READ)))
    yield st
    # A tuple, as pagevec_lookup_tag fills a private pagevec: no other task changes it.
    todo = tuple(p for i, p in sorted(inode.pages.items())
                 if first <= i <= last and (p.dirty or p.tagged_dirty))
    st.note = f"{len(todo)} dirty"
    for page in todo:
        yield from lock_page(cur, page)
        st = Step("write_cache_pages: recheck page->mapping, PageDirty",
                  ((page.key, READ), (inode.size_key, READ)))
        yield st
        if page.inode is not inode or not page.dirty:
            st.note = "truncated or cleaned meanwhile: skip"
            yield from unlock_page(cur, page)
            continue
        if page.index * PAGE_SIZE >= inode.i_size:
            st.note = "beyond EOF: skip"
            yield from unlock_page(cur, page)
            continue
        yield from wait_on_page_writeback(cur, page)
        yield from writepage(cur, k, inode, page)


def write_out(cur: Current, k: Kernel, inode: Inode, page: Page, submit):
    """The locked page goes clean and under writeback, is unlocked, `submit` writes it,
    and its writeback ends. Called with the page locked; returns with it unlocked."""
    yield from clear_page_dirty_for_io(cur, k, inode, page)
    yield from set_page_writeback(cur, page)
    yield from unlock_page(cur, page)
    yield from submit(cur, k, inode, page)
    yield from end_page_writeback(cur, page)


def clear_page_dirty_for_io(cur: Current, k: Kernel, inode: Inode, page: Page):
    """page_mkclean: write-protect every PTE of the page, so the next store faults again,
    and move their dirty bits to the page before clearing it for I/O. Called with the
    page locked."""
    ptes = tuple((mm.pte_key(inode, page.index), WRITE) for mm in inode.i_mmap)
    yield Step("clear_page_dirty_for_io: page_mkclean",
               ((page.key, WRITE), (inode.dirty_tag_key, WRITE), *ptes))
    for mm in inode.i_mmap:
        pte = mm.ptes.get((inode.name, page.index))
        if pte is not None and pte.page is page:
            pte.writable = False
            pte.dirty = False
    page.tagged_dirty = page.dirty or page.tagged_dirty  # the tag goes at set_page_writeback
    page.dirty = False
    for bh in page.buffers or []:
        bh.dirty = False
