"""The SMB client (fs/smb/client, Linux 6.1), with the server's file as the block store
behind it (kernel/server.py), as for the NFS client: a READ fills a whole page, a WRITE
stores a whole page, the server's copy duplicates blocks.

cifs_page_mkwrite waits for writeback and locks the page, and nothing else: it takes no
lock a copy holds and, unlike nfs_vm_page_mkwrite and block_page_mkwrite, does not
recheck page->mapping, so a fault whose page a copy dropped meanwhile maps the dropped
page (finish_fault checks only that the PTE is still empty). The fault then marks the
whole page dirty (fault_dirty_shared_page).

copy_file_range within a file is cifs_file_copychunk_range: under i_rwsem only, flush
the source range, write back the pages at either end of the destination
(cifs_flush_folio), drop the destination's pages (truncate_inode_pages_range), then ask
the server to copy (FSCTL_SRV_COPYCHUNK_WRITE). A store between the drop and the
server's copy faults the old page back in and dirties it; its writeback after the copy
puts the old data over the copied range (docs/findings/smb-copy-mmap.md: 6.1, 6.12 and
7.2.13).

Collapse and insert range (smb3_collapse_range, smb3_insert_range) write back and drop the
page cache from the offset under invalidate_lock, which cifs_page_mkwrite does not take,
and then the server moves the data: a store in between is dropped with its page
(docs/findings/smb-collapse-mmap.md).
"""

from __future__ import annotations

from typing import Protocol as Interface
from typing import cast

from ..explore.step import READ, WRITE, Step
from .buffer import VM_FAULT_LOCKED, VM_FAULT_NOPAGE, VM_FAULT_RETRY
from .ext4 import collapse_blocks, ext4_da_get_block_prep, ext4_da_invalidatepage, insert_blocks
from .filemap import filemap_write_and_wait_range
from .kernel import AddressSpaceOps, FileSystem, Kernel
from .locking import lock_page, mutex_lock, mutex_unlock, unlock_page, wait_on_page_writeback
from .page_writeback import write_cache_pages, write_out
from .server import copy_blocks, server_readpage, server_write
from .structs import PAGE_SIZE, TO_EOF, Current, Inode, Page
from .truncate import truncate_inode_pages_range, truncate_pagecache_range


class CifsMkwrite(Interface):
    """What a protocol running this model says about cifs_page_mkwrite: whether it
    rechecks page->mapping under the page lock (a proposed fix; 6.1-7.2 does not)."""

    mkwrite_rechecks_mapping: bool


def cifs_read_folio(cur: Current, k: Kernel, inode: Inode, page: Page):
    """cifs_readpage_worker: a synchronous SMB2 READ of the page; what the server does not
    return (past its end of file) is zeroed. No i_size check on the client. Called with
    the page locked; unlocks it."""
    yield from server_readpage(cur, k, inode, page,
                               "cifs_readpage_worker: SMB2 READ, Samba reads its file", None)


def cifs_page_mkwrite(cur: Current, k: Kernel, inode: Inode, page: Page):
    """wait_on_page_writeback, lock_page_killable, VM_FAULT_LOCKED. A protocol with
    `mkwrite_rechecks_mapping` (a proposed fix) also returns VM_FAULT_NOPAGE for a page
    truncated meanwhile, as nfs_vm_page_mkwrite does. Called with mmap_sem held for read
    and the page unlocked; takes the protocol's page_mkwrite lock, then the page lock."""
    proto = k.protocol
    if (yield from proto.page_mkwrite_begin(cur, k, inode)) is False:
        return VM_FAULT_RETRY
    yield from wait_on_page_writeback(cur, page)
    yield from lock_page(cur, page)
    st = Step("cifs_page_mkwrite: VM_FAULT_LOCKED; fault_dirty_shared_page",
              ((page.key, WRITE), (inode.dirty_tag_key, WRITE)))
    yield st
    if cast(CifsMkwrite, proto).mkwrite_rechecks_mapping and page.inode is not inode:
        st.note = "page truncated: VM_FAULT_NOPAGE"
        yield from unlock_page(cur, page)
        yield from proto.page_mkwrite_end(cur, k, inode)
        return VM_FAULT_NOPAGE
    page.dirty = True
    st.note = "page dirty (whole page)" + ("" if page.inode is inode else
                                           ", but no longer in the page cache")
    yield from proto.page_mkwrite_end(cur, k, inode)
    return VM_FAULT_LOCKED


def cifs_writepages(cur: Current, k: Kernel, inode: Inode, first: int, last: int):
    """Each dirty page becomes an SMB2 WRITE (cifs_writepages -> smb2_async_writev). Called
    with no page lock held."""
    yield from write_cache_pages(cur, k, inode, first, last, cifs_writepage)


def cifs_writepage(cur: Current, k: Kernel, inode: Inode, page: Page):
    """->writepage. Called with the page locked; write_out puts it under writeback and
    unlocks it before the WRITE goes out."""
    yield from write_out(cur, k, inode, page, samba_write)


def samba_write(cur: Current, k: Kernel, inode: Inode, page: Page):
    """The SMB2 WRITE of one page. Called with the client's page under writeback; the
    server holds none of the client's locks."""
    yield from server_write(cur, k, inode, page,
                            "smb2_async_writev: SMB2 WRITE, Samba writes its file", "SMB2 WRITE")


def cifs_file_copychunk_range(cur: Current, k: Kernel, inode: Inode, src: int, dst: int,
                              length: int):
    """copy_file_range within one file (page-aligned ranges): once the VFS has checked the
    ranges, under the protocol's lock (lock_two_nondirectories: the inode lock), flush the
    source, write back the destination's first and last pages (cifs_flush_folio), drop the
    destination's pages, then the server copies (smb2_copychunk_range). Called with no lock
    held; takes the protocol's locks for removing blocks."""
    proto = k.protocol
    first, last = dst // PAGE_SIZE, (dst + length) // PAGE_SIZE - 1
    yield from proto.remove_blocks_begin(cur, k, inode, "copy")
    yield from filemap_write_and_wait_range(cur, k, inode, src // PAGE_SIZE,
                                            (src + length) // PAGE_SIZE - 1)
    yield from filemap_write_and_wait_range(cur, k, inode, first, first)  # cifs_flush_folio
    yield from filemap_write_and_wait_range(cur, k, inode, last, last)
    yield from truncate_inode_pages_range(cur, k, inode, first, last)
    yield from copy_blocks(cur, k, inode, src // k.blksize, dst // k.blksize,
                           length // k.blksize,
                           "smb2_copychunk_range: FSCTL_SRV_COPYCHUNK_WRITE, Samba copies")
    yield from proto.remove_blocks_end(cur, k, inode, "copy")
    return None

def smb3_collapse_range(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """fallocate(COLLAPSE_RANGE) on SMB (6.1: under inode_lock): under the protocol's locks
    for removing blocks (6.1-7.2.13: invalidate_lock exclusive), write back from the offset
    to EOF and drop those pages, then the server moves the data down
    (smb2_copychunk_range, SMB2_set_eof: the model's extent shift stands for both) and the
    client shrinks i_size (truncate_setsize). cifs_page_mkwrite takes no lock held here:
    a store between the writeback and the drop dirties a page the drop discards. Returns
    None or -EINVAL. Called with no lock held."""
    return (yield from _smb3_shift(cur, k, inode, offset, length, "collapse"))


def smb3_insert_range(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """fallocate(INSERT_RANGE) on SMB: as smb3_collapse_range, the server moving the data
    up (SMB2_set_eof, smb2_copychunk_range, then a zeroed gap) after the client grew
    i_size. Returns None or -EINVAL. Called with no lock held."""
    return (yield from _smb3_shift(cur, k, inode, offset, length, "insert"))


def _smb3_shift(cur: Current, k: Kernel, inode: Inode, offset: int, length: int, op: str):
    proto = k.protocol
    yield from mutex_lock(cur, inode.i_mutex)
    yield from proto.remove_blocks_begin(cur, k, inode, op)
    st = Step(f"smb3_{op}_range: check the range against i_size", ((inode.size_key, READ),))
    yield st
    err = None
    if offset % PAGE_SIZE or length % PAGE_SIZE or length <= 0 or (
            offset + length >= inode.i_size if op == "collapse" else offset >= inode.i_size):
        st.note = err = "-EINVAL"
    else:
        first_page = offset // PAGE_SIZE
        yield from filemap_write_and_wait_range(cur, k, inode, first_page, TO_EOF)
        yield from truncate_pagecache_range(cur, k, inode, first_page, TO_EOF)
        if op == "collapse":
            yield from collapse_blocks(cur, k, inode, offset, length)
        st = Step(f"smb3_{op}_range: truncate_setsize", ((inode.size_key, WRITE),))
        yield st
        inode.i_size += length if op == "insert" else -length
        st.note = f"i_size -> {inode.i_size}"
        if op == "insert":
            yield from insert_blocks(cur, k, inode, offset, length)
    yield from proto.remove_blocks_end(cur, k, inode, op)
    yield from mutex_unlock(cur, inode.i_mutex)
    return err


# invalidatepage and write(2)'s get_block are ext4's: the model has no write_begin or
# invalidatepage of this file system's own.
AOPS = AddressSpaceOps(readpage=cifs_read_folio, page_mkwrite=cifs_page_mkwrite,
                       writepages=cifs_writepages,
                       invalidatepage=ext4_da_invalidatepage,
                       write_get_block=ext4_da_get_block_prep)
FS = FileSystem("cifs", AOPS, copy_range=cifs_file_copychunk_range,
                collapse_range=smb3_collapse_range, insert_range=smb3_insert_range)
