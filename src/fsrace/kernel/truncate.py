"""mm/truncate.c and the unmapping side of mm/memory.c."""

from __future__ import annotations

from functools import partial

from ..explore.step import READ, TRY, WRITE, Step
from .kernel import Kernel
from .locking import lock_page, unlock_page, wait_on_page_writeback
from .structs import PAGE_SIZE, TO_EOF, Disk, Inode, Page


def _pte_keys(inode: Inode, first: int, last: int) -> tuple:
    """The PTE slots of pages [first, last] in every process mapping the file. An
    open-ended range ("to EOF") stops past the last page that can be mapped now, and then
    reads i_size: a fault beyond that needs i_size to grow first, which conflicts."""
    size: tuple = ()
    bound = max([-(-inode.i_size // PAGE_SIZE), *(i + 1 for i in inode.pages)]
                + [i + 1 for mm in inode.i_mmap for ino, i in mm.ptes if ino == inode.name])
    if last >= bound:
        last, size = bound, ((inode.size_key, READ),)
    return size + tuple((mm.pte_key(inode, i), WRITE) for mm in inode.i_mmap
                        for i in range(first, last + 1))


def _zap_ptes(inode: Inode, first: int, last: int, page: Page | None = None) -> int:
    zapped = 0
    for mm in inode.i_mmap:
        for ino, i in list(mm.ptes):
            pte = mm.ptes[(ino, i)]
            if ino == inode.name and first <= i <= last and (page is None or pte.page is page):
                del mm.ptes[(ino, i)]
                zapped += 1
    return zapped


def _release_footprint(inode: Inode, page: Page) -> tuple:
    """Dropping delay buffers releases their reservations."""
    if any(bh.delay for bh in page.buffers or []):
        return ((inode.map_key, WRITE), (Disk.RESV_KEY, WRITE))
    return ()


def unmap_mapping_range(cur, k: Kernel, inode: Inode, first: int, last: int):
    """Zap the PTEs of pages [first, last] in every process that maps the file. Called
    with no page lock held (i_mmap_lock is within the step)."""
    span = f"{first}-{last}" if last < TO_EOF else f"{first}-EOF"
    st = Step(f"unmap_mapping_range({inode.name}:{span})",
              footprint=lambda: _pte_keys(inode, first, last))
    yield st
    st.note = f"{_zap_ptes(inode, first, last)} PTEs zapped"


def truncate_inode_pages_range(cur, k: Kernel, inode: Inode, first: int, last: int):
    """Remove pages [first, last] from the cache, each under its page lock after its
    writeback ended. Pages added behind the lookup are not seen (3.4 does one lookup per
    batch; its two passes, trylock then lock, are folded into one). Called with no page
    lock held, and with the remover's locks (i_mutex; the protocol's, exclusive)."""
    st = Step("truncate_inode_pages_range: pagevec_lookup", ((inode.pages_key, READ),))
    yield st
    pages = [p for i, p in sorted(inode.pages.items()) if first <= i <= last]
    st.note = f"{len(pages)} pages"
    for page in pages:
        yield from lock_page(cur, page)
        yield from wait_on_page_writeback(cur, page)
        yield from truncate_inode_page(cur, k, inode, page)
        yield from unlock_page(cur, page)


def truncate_inode_page(cur, k: Kernel, inode: Inode, page: Page):
    """Called with the page locked: unmap it, drop its buffers, cancel dirty, delete it from
    the page cache (page->mapping = NULL)."""
    st = Step(f"truncate_inode_page({page.name})",
              footprint=lambda: ((page.key, WRITE), (inode.pages_key, WRITE),
                                 (inode.dirty_tag_key, WRITE),
                                 *_pte_keys(inode, page.index, page.index),
                                 *_release_footprint(inode, page)))
    yield st
    if page.inode is not inode:
        st.note = "already truncated"
        return
    _zap_ptes(inode, page.index, page.index, page)
    k.fs.aops.invalidatepage(k, inode, page)
    page.dirty = page.tagged_dirty = False
    page.inode = None
    del inode.pages[page.index]
    st.note = "deleted from page cache"


def invalidate_inode_pages2_range(cur, k: Kernel, inode: Inode, first: int, last: int,
                                  launder):
    """Drop pages [first, last] whatever their state (6.1 mm/truncate.c): at the first
    mapped page, zap the PTEs of the rest of the range; then per page, under its lock once
    its writeback ended: zap its PTEs again, launder it if dirty (`launder` is the file
    system's ->launder_folio, which writes the page back), and remove it unless it is dirty
    (-EBUSY: the page stays). Called with no page lock held."""
    st = Step("invalidate_inode_pages2_range: find_get_entries", ((inode.pages_key, READ),))
    yield st
    pages = [p for i, p in sorted(inode.pages.items()) if first <= i <= last]
    st.note = f"{len(pages)} pages"
    unmapped = False
    for page in pages:
        if not unmapped:
            st = Step(f"invalidate_inode_pages2_range: folio_mapped({page.name})",
                      footprint=partial(_pte_keys, inode, page.index, last))
            yield st
            if any(pte.page is page for mm in inode.i_mmap for pte in mm.ptes.values()):
                unmapped = True
                st.note = (f"unmap_mapping_pages: "
                           f"{_zap_ptes(inode, page.index, last)} PTEs zapped")
        yield from lock_page(cur, page)
        st = Step(f"invalidate_inode_pages2_range: {page.name} still in the file?",
                  ((page.key, READ),))
        yield st
        if page.inode is not inode:
            st.note = "already gone"
            yield from unlock_page(cur, page)
            continue
        yield from wait_on_page_writeback(cur, page)
        st = Step(f"unmap_mapping_folio({page.name})",
                  footprint=partial(_pte_keys, inode, page.index, page.index))
        yield st
        st.note = f"{_zap_ptes(inode, page.index, page.index, page)} PTEs zapped"
        if page.dirty:
            yield from launder(cur, k, inode, page)
        st = Step(f"invalidate_complete_folio2({page.name}): dirty?", ((page.key, READ),))
        yield st
        if page.dirty:
            st.note = "dirty: -EBUSY, the page stays"
        else:
            yield from truncate_inode_page(cur, k, inode, page)
        yield from unlock_page(cur, page)


def truncate_pagecache_range(cur, k: Kernel, inode: Inode, first: int, last: int):
    """Unmap, then truncate the pages (3.4 mm/truncate.c). Called as
    truncate_inode_pages_range is."""
    yield from unmap_mapping_range(cur, k, inode, first, last)
    yield from truncate_inode_pages_range(cur, k, inode, first, last)


def truncate_pagecache(cur, k: Kernel, inode: Inode, new_size: int, old_size: int):
    """After i_size was lowered: unmap, truncate the pages beyond, unmap again (for private
    COW pages made in between). Called with i_mutex held, after i_size was written."""
    first = -(-new_size // PAGE_SIZE)
    last = -(-old_size // PAGE_SIZE) - 1
    if first > last:
        return
    yield from unmap_mapping_range(cur, k, inode, first, last)
    yield from truncate_inode_pages_range(cur, k, inode, first, last)
    yield from unmap_mapping_range(cur, k, inode, first, last)


def invalidate_mapping_pages(cur, k: Kernel, inode: Inode):
    """drop_caches: remove clean, unlocked, unmapped pages, leave the rest. Called with no
    lock held."""
    st = Step(f"invalidate_mapping_pages({inode.name}): pagevec_lookup",
              ((inode.pages_key, READ),))
    yield st
    for page in [p for _, p in sorted(inode.pages.items())]:
        ptes = _pte_keys(inode, page.index, page.index)
        def footprint(page: Page = page, ptes: tuple = ptes) -> tuple:
            return ((page.lock_key, TRY), (page.wb_key, TRY), (page.key, WRITE),
                    (inode.pages_key, WRITE), *((key, READ) for key, _ in ptes),
                    *_release_footprint(inode, page))

        st = Step(f"invalidate_inode_page({page.name})", footprint=footprint)
        yield st
        mapped = any(mm.ptes.get((inode.name, page.index)) for mm in inode.i_mmap)
        if page.locked_by or page.dirty or page.writeback or mapped or page.inode is not inode:
            st.note = "busy: kept"
            continue
        k.fs.aops.invalidatepage(k, inode, page)
        page.inode = None
        del inode.pages[page.index]
        st.note = "dropped"
