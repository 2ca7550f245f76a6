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
(docs/findings/smb-collapse-mmap.md). The model runs ext4's collapse and insert for them
(the same steps; see FS below).

Punch and zero range (smb3_punch_hole, smb3_zero_range) take invalidate_lock too, drop the
range's pages and then ask the server to zero it. A write fault unlocks the page
filemap_fault found before ->page_mkwrite (do_shared_fault); a punch that drops the page
in that gap leaves cifs_page_mkwrite a page that is no longer the file's, and the fault
maps it: stores through it are lost (docs/findings/smb-copy-mmap.md, "The same fault
under punch and zero range").

A truncate (cifs_setattr_nounix with ATTR_SIZE) has NFS's shape: write back the whole file,
SET_INFO EndOfFile on the server, and only then cifs_setsize (i_size_write,
truncate_pagecache). A page a store dirties after the flush is still inside the client's
old i_size, so its writeback in that gap goes out as a WRITE past the server's new end
of file (kernel/server.py: remote_setattr_size).
"""

from __future__ import annotations

from typing import Protocol as Interface
from typing import cast

from ..explore.step import READ, WRITE, Step
from .buffer import VM_FAULT_LOCKED, VM_FAULT_RETRY, mkwrite_page_truncated
from .ext4 import ext4_da_get_block_prep, ext4_da_invalidatepage
from .filemap import filemap_write_and_wait_range
from .kernel import AddressSpaceOps, FileSystem, Kernel
from .locking import lock_page, mutex_lock, mutex_unlock, wait_on_page_writeback
from .page_writeback import write_cache_pages, write_out
from .server import (
    copy_blocks,
    punch_blocks,
    remote_setattr_size,
    server_readpage,
    server_write,
)
from .structs import PAGE_SIZE, Current, Inode, Page
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
        return (yield from mkwrite_page_truncated(cur, k, inode, page, st))
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

def smb3_punch_hole(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """fallocate(PUNCH_HOLE | KEEP_SIZE) as 6.1.192 has it: under the protocol's locks
    (the inode lock; smb-6.1 adds invalidate_lock, after smb2_set_sparse), write back the
    range, drop its pages (truncate_pagecache_range), then FSCTL_SET_ZERO_DATA: Samba
    punches its file. No i_size clamp. Called with no lock held."""
    proto = k.protocol
    yield from proto.remove_blocks_begin(cur, k, inode, "punch")
    first, last = offset // PAGE_SIZE, (offset + length - 1) // PAGE_SIZE
    yield from filemap_write_and_wait_range(cur, k, inode, first, last)
    yield from _drop_whole_pages(cur, k, inode, offset, offset + length)
    yield from punch_blocks(cur, k, inode, offset, offset + length,
                            "smb3_punch_hole: FSCTL_SET_ZERO_DATA, Samba punches its file")
    yield from proto.remove_blocks_end(cur, k, inode, "punch")
    return None


def smb3_zero_range(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """fallocate(ZERO_RANGE | KEEP_SIZE) as 6.1.192 has it: inode_lock, the protocol's
    locks (smb-6.1: invalidate_lock), a writeback of the range only where it reaches the
    server's end of file, the drop of its pages from min(offset, i_size), then
    smb3_zero_data's FSCTL_SET_ZERO_DATA (Samba punches the range; on a file that is not
    sparse it allocates it again, which reads the same). The model's client and server
    agree on the size, so remote_i_size is i_size. Called with no lock held."""
    proto = k.protocol
    yield from mutex_lock(cur, inode.i_mutex)
    yield from proto.remove_blocks_begin(cur, k, inode, "zero")
    st = Step("smb3_zero_range: i_size_read, remote_i_size", ((inode.size_key, READ),))
    yield st
    i_size = inode.i_size
    if offset + length >= i_size > offset:
        st.note = "the range reaches EOF: write it back first"
        yield from filemap_write_and_wait_range(cur, k, inode, offset // PAGE_SIZE,
                                                (i_size - 1) // PAGE_SIZE)
    yield from _drop_whole_pages(cur, k, inode, min(offset, i_size), offset + length)
    yield from punch_blocks(cur, k, inode, offset, offset + length,
                            "smb3_zero_data: FSCTL_SET_ZERO_DATA, Samba zeroes its file")
    yield from proto.remove_blocks_end(cur, k, inode, "zero")
    yield from mutex_unlock(cur, inode.i_mutex)
    return None


def cifs_setattr_size(cur: Current, k: Kernel, inode: Inode, size: int):
    """ftruncate on SMB as 6.1.192 has it: cifs_setattr_nounix flushes the whole mapping
    (filemap_write_and_wait), cifs_set_file_size sends SET_INFO EndOfFile
    (smb2_set_file_size) and then cifs_setsize sets i_size and truncate_pagecache drops the
    pages beyond it; cifs_truncate_page has nothing to zero at the model's page-aligned
    sizes. No invalidate_lock (do_truncate takes only the inode lock). Called with i_mutex
    held and the protocol's locks for removing blocks (do_truncate)."""
    yield from remote_setattr_size(
        cur, k, inode, size, "smb2_set_file_size: SET_INFO EndOfFile, Samba truncates its file",
        "cifs_setsize: i_size_write", "cifs_setattr_nounix: done")


def _drop_whole_pages(cur: Current, k: Kernel, inode: Inode, start: int, end: int):
    """truncate_pagecache_range(start, end - 1) for the model's page-aligned ranges."""
    if start % PAGE_SIZE or end % PAGE_SIZE:
        raise ValueError("the model's SMB punch and zero range take whole pages")
    if start < end:
        yield from truncate_pagecache_range(cur, k, inode, start // PAGE_SIZE,
                                            end // PAGE_SIZE - 1)


# invalidatepage and write(2)'s get_block are ext4's: the model has no write_begin or
# invalidatepage of this file system's own.
AOPS = AddressSpaceOps(readpage=cifs_read_folio, page_mkwrite=cifs_page_mkwrite,
                       writepages=cifs_writepages,
                       invalidatepage=ext4_da_invalidatepage,
                       write_get_block=ext4_da_get_block_prep)
# Collapse and insert run the model's ext4 code (fsrace.kernel.ext4): smb3_collapse_range
# and smb3_insert_range take the same steps, the server's copychunk and SET_EOF standing
# where ext4 shifts its extents, under smb-6.1's invalidate_lock.
FS = FileSystem("cifs", AOPS, punch_hole=smb3_punch_hole, zero_range=smb3_zero_range,
                copy_range=cifs_file_copychunk_range, setattr_size=cifs_setattr_size)
