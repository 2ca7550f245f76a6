"""mm/readahead.c: readahead(2), fadvise(POSIX_FADV_WILLNEED) and madvise(MADV_WILLNEED),
all of which end in force_page_cache_readahead."""

from __future__ import annotations

from ..explore.step import READ, Step
from .filemap import add_to_page_cache_lru, find_get_page
from .kernel import Kernel
from .structs import PAGE_SIZE, Current, Inode


def force_page_cache_readahead(cur: Current, k: Kernel, inode: Inode, first: int, last: int):
    """__do_page_cache_readahead (3.4): for every index of [first, last] within EOF that is
    not cached, add a locked page and read it (read_pages -> ->readpage). The protocol's
    readahead lock (5.15: invalidate_lock shared in page_cache_ra_unbounded) is held
    across. Called with no lock held."""
    proto = k.protocol
    yield from proto.readahead_begin(cur, k, inode)
    st = Step("__do_page_cache_readahead: i_size_read", ((inode.size_key, READ),))
    yield st
    last = min(last, -(-inode.i_size // PAGE_SIZE) - 1)
    st.note = f"pages {first}-{last}" if first <= last else "beyond EOF: nothing"
    for index in range(first, last + 1):
        page = yield from find_get_page(cur, k, inode, index)
        if page is not None:
            continue
        page = yield from add_to_page_cache_lru(cur, k, inode, index)
        if page is not None:
            yield from k.fs.aops.readpage(cur, k, inode, page)
    yield from proto.readahead_end(cur, k, inode)
