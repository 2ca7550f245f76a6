"""mm/filemap.c: the page cache lookups, the read fault, read(2), write(2) and flushing."""

from __future__ import annotations

from ..explore.step import READ, WRITE, Step
from .buffer import (
    VM_FAULT_LOCKED,
    VM_FAULT_SIGBUS,
    __block_write_begin,
    block_commit_write,
    create_empty_buffers,
)
from .kernel import Kernel
from .locking import lock_page, unlock_page, wait_on_page_writeback
from .structs import PAGE_SIZE, Current, Inode


def find_get_page(cur: Current, k: Kernel, inode: Inode, index: int):
    """The cached page at `index`, or None; not locked, so it may be truncated at once.
    Called with no lock of its own needed."""
    st = Step(f"find_get_page({inode.name}:{index})",
              ((inode.pages_key, READ), (inode.page_key(index), READ)))
    yield st
    page = inode.pages.get(index)
    st.note = "hit" if page else "miss"
    return page


def add_to_page_cache_lru(cur: Current, k: Kernel, inode: Inode, index: int):
    """Insert a new locked, not uptodate page; None if another task got there first.
    Called with the protocol's lock for adding pages, if it has one (5.15: invalidate_lock
    shared)."""
    st = Step(f"add_to_page_cache_lru({inode.name}:{index})",
              ((inode.pages_key, WRITE), (inode.page_key(index), WRITE)))
    yield st
    if index in inode.pages:
        st.note = "-EEXIST"
        return None
    page = k.new_page(inode, index)
    page.locked_by = cur.comm
    inode.pages[index] = page
    return page


def page_cache_read(cur: Current, k: Kernel, inode: Inode, index: int):
    """Bring a missing page into the cache (filemap_fault's miss path, read(2)'s too).
    Called with what add_to_page_cache_lru needs; ->readpage unlocks the page."""
    page = yield from add_to_page_cache_lru(cur, k, inode, index)
    if page is not None:
        yield from k.fs.aops.readpage(cur, k, inode, page)


def filemap_fault(cur: Current, k: Kernel, inode: Inode, index: int):
    """Find or read the page and return it locked, rechecking page->mapping and i_size
    under the page lock. Returns (VM_FAULT_LOCKED, page) or (VM_FAULT_SIGBUS, None).

    Called with mmap_sem held for read (and the protocol's ->fault lock, if any).
    On a miss, and on every retry_find after a truncated page, the protocol's fault lock
    (5.15: invalidate_lock shared) is taken and held until the page is locked and known to
    be still in the file, as filemap_fault does since 5.15."""
    proto = k.protocol
    st = Step("filemap_fault: check i_size", ((inode.size_key, READ),))
    yield st
    if index * PAGE_SIZE >= inode.i_size:
        st.note = "beyond EOF: SIGBUS"
        return VM_FAULT_SIGBUS, None
    page = yield from find_get_page(cur, k, inode, index)
    mapping_locked = False
    while True:
        if page is None:  # retry_find
            if not mapping_locked:
                yield from proto.fault_miss_begin(cur, k, inode)
                mapping_locked = True
            yield from page_cache_read(cur, k, inode, index)
            page = yield from find_get_page(cur, k, inode, index)
            continue
        yield from lock_page(cur, page)
        st = Step("filemap_fault: recheck page->mapping, i_size under page lock",
                  ((page.key, READ), (inode.size_key, READ)))
        yield st
        if page.inode is not inode:
            st.note = "page truncated: retry_find"
            st.retry = True
            yield from unlock_page(cur, page)
            page = None
            continue
        beyond = index * PAGE_SIZE >= inode.i_size
        if beyond:
            st.note = "beyond EOF: SIGBUS"
            yield from unlock_page(cur, page)
        if not beyond and not page.uptodate:
            # page_not_uptodate: a read that backed off (ocfs2's AOP_TRUNCATED_PAGE) left
            # the page behind; read it here, then retry_find. (Read errors: not modelled.)
            st.note = "page not uptodate: ->readpage, then retry_find"
            if not mapping_locked:
                yield from proto.fault_miss_begin(cur, k, inode)
                mapping_locked = True
            yield from k.fs.aops.readpage(cur, k, inode, page)
            page = yield from find_get_page(cur, k, inode, index)
            continue
        if mapping_locked:
            yield from proto.fault_miss_end(cur, k, inode)
        if beyond:
            return VM_FAULT_SIGBUS, None
        return VM_FAULT_LOCKED, page


def filemap_write_and_wait_range(cur: Current, k: Kernel, inode: Inode, first: int,
                                 last: int):
    """Write back the dirty pages of [first, last] and wait for their I/O. Called with no
    page lock held (it takes each page's)."""
    yield from k.fs.aops.writepages(cur, k, inode, first, last)
    st = Step("filemap_fdatawait_range: find pages under writeback", ((inode.pages_key, READ),))
    yield st
    pages = [p for i, p in sorted(inode.pages.items()) if first <= i <= last]
    for page in pages:
        yield from wait_on_page_writeback(cur, page)


def do_generic_file_read(cur: Current, k: Kernel, inode: Inode, pos: int, count: int):
    """read(2) through the page cache; returns the cells read (short at EOF). Called with
    the protocol's read lock, if any (XFS: the IO lock shared)."""
    proto = k.protocol
    out: list = []
    index = pos // PAGE_SIZE
    while count > 0:
        page = yield from find_get_page(cur, k, inode, index)
        if page is None:
            yield from proto.read_miss_begin(cur, k, inode)
            yield from page_cache_read(cur, k, inode, index)
            yield from proto.read_miss_end(cur, k, inode)
            continue
        if not page.uptodate:
            yield from lock_page(cur, page)
            st = Step("do_generic_file_read: recheck page->mapping", ((page.key, READ),))
            yield st
            if page.inode is not inode:
                st.note = "page truncated: find it again"
                st.retry = True
                yield from unlock_page(cur, page)
                continue
            yield from unlock_page(cur, page)
            continue
        # i_size is checked once the page is uptodate, then the copy to the user.
        st = Step("do_generic_file_read: check i_size, copy_to_user",
                  ((inode.size_key, READ), (page.data_key, READ)))
        yield st
        end = min(pos + count, inode.i_size, (index + 1) * PAGE_SIZE)
        if pos >= end:
            break
        out += page.data[pos - index * PAGE_SIZE:end - index * PAGE_SIZE]
        count -= end - pos
        pos = end
        index += 1
    return out


def generic_perform_write(cur: Current, k: Kernel, inode: Inode, pos: int, buf):
    """write(2) page by page (ext4_da_write_begin/end), from a user buffer that may itself be
    a mapping of a file: fault it in, lock the page, copy with faults disabled, and if
    nothing was copied, unlock and fault it in again; the protocol's copy locks are held
    from after the fault-in to the page's unlock. Called with i_mutex held. Returns None,
    or -EFAULT."""
    done = 0
    while done < len(buf):
        index, offset = divmod(pos + done, PAGE_SIZE)
        n = min(PAGE_SIZE - offset, len(buf) - done)
        if (yield from buf.fault_in_readable(cur, k, done, n)) is not None:
            return "-EFAULT"
        yield from k.protocol.write_copy_begin(cur, k, inode)
        page = yield from grab_cache_page_write_begin(cur, k, inode, index)
        st = Step("ext4_da_write_begin: recheck page->mapping", ((page.key, WRITE),))
        yield st
        if page.inode is not inode:
            st.note = "page truncated: start over"
            st.retry = True
            yield from unlock_page(cur, page)
            yield from k.protocol.write_copy_end(cur, k, inode)
            continue
        create_empty_buffers(k, page)
        yield from wait_on_page_writeback(cur, page)
        yield from __block_write_begin(cur, k, inode, page, offset, offset + n,
                                       k.fs.aops.write_get_block)
        st = Step("iov_iter_copy_from_user_atomic; block_write_end",
                  ((page.key, WRITE), (page.data_key, WRITE), (inode.size_key, WRITE),
                   (inode.dirty_tag_key, WRITE),
                   *buf.accesses(cur, done, n)))
        yield st
        values = buf.copy_atomic(cur, done, n)
        if values is None:
            st.note = "source not mapped: copied 0, fault it in again"
            st.retry = True
            yield from unlock_page(cur, page)
            yield from k.protocol.write_copy_end(cur, k, inode)
            continue
        page.data[offset:offset + n] = values
        block_commit_write(k, page, offset, offset + n)
        inode.i_size = max(inode.i_size, pos + done + n)
        st.note = f"copied {values}"
        yield from unlock_page(cur, page)
        yield from k.protocol.write_copy_end(cur, k, inode)
        done += n
    return None


def grab_cache_page_write_begin(cur: Current, k: Kernel, inode: Inode, index: int):
    """Find the page and lock it, or add a new locked one. Called with i_mutex held."""
    while True:
        page = yield from find_get_page(cur, k, inode, index)
        if page is None:
            page = yield from add_to_page_cache_lru(cur, k, inode, index)
            if page is None:
                continue
            return page
        yield from lock_page(cur, page)
        return page


def generic_remap_file_range_prep(cur: Current, k: Kernel, inode: Inode, src: int,
                                  dst: int, length: int):
    """A remap within one file up to its own work: the protocol's locks for a clone (the
    file system's remap takes them: ocfs2_reflink_inodes_lock, xfs_reflink_remap_prep,
    btrfs_inode_lock), then generic_remap_file_range_prep checks both ranges against
    i_size (the model's clones stay inside the file) and writes back and waits on the
    source's range, then the destination's. Returns False, the locks dropped again, for
    -EINVAL. Called with no lock held."""
    proto = k.protocol
    yield from proto.remove_blocks_begin(cur, k, inode, "clone")
    st = Step("generic_remap_file_range_prep: check the ranges against i_size",
              ((inode.size_key, READ),))
    yield st
    if max(src, dst) + length > inode.i_size:
        st.note = "-EINVAL"
        yield from proto.remove_blocks_end(cur, k, inode, "clone")
        return False
    for start in (src, dst):
        yield from filemap_write_and_wait_range(cur, k, inode, start // PAGE_SIZE,
                                                (start + length - 1) // PAGE_SIZE)
    return True
