"""The thread's third idea (Jan Kara, 16 May 2012): go page by page and free the blocks
under each page's lock. Dave Chinner's answer: "Doesn't work for regions with no pages in
memory over them" -- where no page is cached there is no page lock to hold."""

from ..explore.step import Step
from ..kernel.ext4 import AOPS as EXT4_AOPS
from ..kernel.ext4 import ext4_ext_remove_space
from ..kernel.filemap import find_get_page
from ..kernel.kernel import FileSystem
from ..kernel.locking import lock_page, unlock_page, wait_on_page_writeback
from ..kernel.structs import PAGE_SIZE
from ..kernel.truncate import truncate_inode_page, unmap_mapping_range
from .base import Protocol


def punch_page_by_page(cur, k, inode, offset, length):
    """The punch of the proposal, in place of ext4_ext_punch_hole. Called with no lock
    held (the protocol takes none around it)."""
    st = Step("punch_hole: clamp to i_size", ((inode.size_key, "r"),))
    yield st
    end = min(offset + length, inode.i_size)
    if offset >= end:
        return
    per_page = PAGE_SIZE // k.blksize
    for index in range(offset // PAGE_SIZE, -(-end // PAGE_SIZE)):
        first = max(index * per_page, -(-offset // k.blksize))
        last = min((index + 1) * per_page, end // k.blksize) - 1
        if first > last:
            continue
        yield from unmap_mapping_range(cur, k, inode, index, index)
        page = yield from find_get_page(cur, k, inode, index)
        if page is None:
            # Nothing cached here, so no page lock to hold while freeing.
            yield from ext4_ext_remove_space(cur, k, inode, first, last)
            continue
        # Free the blocks while the locked page still holds its index, so no fault can
        # bring a new page in over them; only then drop the page.
        yield from lock_page(cur, page)
        yield from wait_on_page_writeback(cur, page)
        yield from ext4_ext_remove_space(cur, k, inode, first, last)
        yield from truncate_inode_page(cur, k, inode, page)
        yield from unlock_page(cur, page)


# ext4 with that punch: everything else is the model's ext4.
PAGE_BY_PAGE = FileSystem("ext4 (page-by-page punch)", EXT4_AOPS,
                          punch_hole=punch_page_by_page)


class PageByPage(Protocol):
    name = "page-by-page"
    summary = "free each page's blocks under that page's lock (the thread's idea 3)"
    era = "proposal, 2012 thread; never merged"
    filesystem = PAGE_BY_PAGE
