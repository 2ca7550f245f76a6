"""The NFS v4.2 client (fs/nfs), with the server's file as the block store behind it.

The server's file is the model's block map and disk (kernel/server.py): a READ returns
its blocks, a WRITE RPC stores a whole page at its file offset, and DEALLOCATE frees the
range on the server. The client has no delayed allocation and no
buffers: nfs_vm_page_mkwrite only marks the whole page dirty.

The punch is nfs42_proc_deallocate: inode_lock, nfs_sync_inode (flush), the DEALLOCATE
RPC, and only then truncate_pagecache_range; 7.x's zero range (nfs42_proc_zero_range)
takes the same steps with a ZERO_RANGE RPC. A store that write-faults the cached page
while the RPC is in flight, and a writeback of that page (msync, fsync, the flusher)
before the truncate, sends pre-punch data back to the server after it punched
(../shared/reference/nfs-deallocate-race.md: seen on Debian 6.1, 6.12 and 7.2.13).
A truncate (nfs_setattr) has the same gap between its flush and its page-cache truncate
(docs/findings/nfs-truncate-mmap.md), and so has a copy offloaded to the server
(nfs42_proc_copy), whose page-cache drop also launders: a page dirtied in the gap is
written back over the copy as it is dropped.
"""

from __future__ import annotations

from ..explore.step import READ, WRITE, Step
from .buffer import VM_FAULT_LOCKED, VM_FAULT_RETRY, mkwrite_page_truncated
from .ext4 import ext4_da_get_block_prep, ext4_da_invalidatepage
from .filemap import filemap_write_and_wait_range
from .kernel import AddressSpaceOps, FileSystem, Kernel
from .locking import (
    lock_page,
    mutex_lock,
    mutex_unlock,
    wait_on_page_writeback,
)
from .page_writeback import write_cache_pages, write_out
from .server import (
    copy_blocks,
    punch_blocks,
    remote_setattr_size,
    server_readpage,
    server_write,
)
from .structs import PAGE_SIZE, TO_EOF, Current, Inode, Page
from .truncate import (
    invalidate_inode_pages2_range,
    truncate_inode_pages_range,
    truncate_pagecache_range,
)


def nfs_readpage(cur: Current, k: Kernel, inode: Inode, page: Page):
    """READ RPC for the whole page; a page past i_size is zero-filled without one
    (nfs_page_length is 0: nfs_return_empty_page). Called with the page locked; unlocks it."""
    yield from server_readpage(cur, k, inode, page,
                               "nfs_readpage: READ RPC, nfsd_read on the server",
                               "nfs_return_empty_page")


def nfs_vm_page_mkwrite(cur: Current, k: Kernel, inode: Inode, page: Page):
    """Lock the page, check it is still in the file, mark the whole page dirty
    (nfs_updatepage(page, 0, pagelen)). No lock against DEALLOCATE is taken unless the
    protocol takes one. Called with mmap_sem held for read and the page unlocked; takes the
    protocol's page_mkwrite lock, then the page lock."""
    proto = k.protocol
    if (yield from proto.page_mkwrite_begin(cur, k, inode)) is False:
        return VM_FAULT_RETRY
    yield from lock_page(cur, page)
    st = Step("nfs_vm_page_mkwrite: recheck page->mapping; nfs_updatepage(whole page)",
              ((page.key, WRITE), (inode.size_key, READ), (inode.dirty_tag_key, WRITE)))
    yield st
    if page.inode is not inode or page.index * PAGE_SIZE >= inode.i_size:
        return (yield from mkwrite_page_truncated(cur, k, inode, page, st))
    page.dirty = True
    st.note = "page dirty (whole page)"
    yield from wait_on_page_writeback(cur, page)
    yield from proto.page_mkwrite_end(cur, k, inode)
    return VM_FAULT_LOCKED


def nfs_writepages(cur: Current, k: Kernel, inode: Inode, first: int, last: int):
    """write_cache_pages with nfs_writepage: each dirty page becomes a WRITE RPC. Called
    with no page lock held."""
    yield from write_cache_pages(cur, k, inode, first, last, nfs_writepage)


def nfs_writepage(cur: Current, k: Kernel, inode: Inode, page: Page):
    """->writepage. Called with the page locked; write_out puts it under writeback and
    unlocks it before the WRITE goes out."""
    yield from write_out(cur, k, inode, page, nfsd_write)


def nfsd_write(cur: Current, k: Kernel, inode: Inode, page: Page):
    """nfs_initiate_write -> the server's nfsd_write: the whole page at its offset. Called
    with the client's page under writeback; the server holds none of the client's locks."""
    yield from server_write(cur, k, inode, page,
                            "nfs_initiate_write: WRITE RPC, nfsd_write on the server",
                            "WRITE RPC")


def nfs42_proc_fallocate(cur: Current, k: Kernel, inode: Inode, offset: int, end: int,
                         rpc: str):
    """nfs_sync_inode (write back and wait on the whole file), then the RPC named `rpc`,
    after which the server's bytes [offset, end) read as zeros (DEALLOCATE punches them,
    ZERO_RANGE zeroes them). Called with the operation's locks held; the pages are the
    caller's to drop."""
    yield from filemap_write_and_wait_range(cur, k, inode, 0, TO_EOF)
    yield from punch_blocks(cur, k, inode, offset, end, rpc)


def nfs42_proc_deallocate(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """fallocate(PUNCH_HOLE) on NFS v4.2: under the protocol's lock (inode_lock), flush the
    file, send DEALLOCATE (the server punches its file), then drop the cached pages. Called
    with no lock held; takes the protocol's locks for removing blocks."""
    proto = k.protocol
    yield from proto.remove_blocks_begin(cur, k, inode, "punch")
    st = Step("nfs42_proc_deallocate: clamp to i_size", ((inode.size_key, READ),))
    yield st
    end = min(offset + length, -(-inode.i_size // PAGE_SIZE) * PAGE_SIZE)
    if offset < end:
        yield from nfs42_proc_fallocate(cur, k, inode, offset, end,
                                        "nfs42_proc_deallocate: DEALLOCATE RPC sent")
        first_full, last_full = -(-offset // PAGE_SIZE), end // PAGE_SIZE - 1
        if first_full <= last_full:
            yield from truncate_pagecache_range(cur, k, inode, first_full, last_full)
    else:
        st.note = "beyond EOF: nothing to do"
    yield from proto.remove_blocks_end(cur, k, inode, "punch")


def nfs42_proc_zero_range(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """fallocate(ZERO_RANGE) on NFS v4.2 (nfs42_proc_zero_range, 7.x; 6.12.118 and 6.1
    have none): nfs_start_io_write (the inode lock), the protocol's locks, flush the file
    (nfs42_proc_fallocate -> nfs_sync_inode), ZERO_RANGE (the server zeroes its range:
    its blocks read as zeros after), then truncate_pagecache_range; nfs_truncate_last_folio
    has nothing to zero at the model's page-aligned sizes. The client takes the call only
    without KEEP_SIZE (nfs42_fallocate); the model's ranges lie inside the file, where the
    flag changes nothing. Called with no lock held."""
    if offset % PAGE_SIZE or length % PAGE_SIZE:
        raise ValueError("the model's NFS zero range takes whole pages")
    proto = k.protocol
    yield from mutex_lock(cur, inode.i_mutex)
    yield from proto.remove_blocks_begin(cur, k, inode, "zero")
    st = Step("nfs42_proc_zero_range: i_size_read", ((inode.size_key, READ),))
    yield st
    if offset + length > inode.i_size:
        raise ValueError("the model's NFS zero range lies inside the file")
    yield from nfs42_proc_fallocate(cur, k, inode, offset, offset + length,
                                    "nfs42_proc_zero_range: ZERO_RANGE RPC sent")
    if length:
        yield from truncate_pagecache_range(cur, k, inode, offset // PAGE_SIZE,
                                            (offset + length) // PAGE_SIZE - 1)
    yield from proto.remove_blocks_end(cur, k, inode, "zero")
    yield from mutex_unlock(cur, inode.i_mutex)
    return None


def nfs_setattr_size(cur: Current, k: Kernel, inode: Inode, size: int):
    """ftruncate on NFS (nfs_setattr with ATTR_SIZE, under the VFS's inode lock):
    nfs_sync_inode, the SETATTR RPC, then nfs_setattr_update_inode -> nfs_vmtruncate.
    nfs_vm_page_mkwrite takes no lock the truncate holds: a store after the flush dirties
    a page the server has already cut off, and its WRITE puts it back
    (remote_setattr_size; docs/findings/nfs-truncate-mmap.md). Called with i_mutex held
    and the protocol's locks for removing blocks (do_truncate)."""
    yield from remote_setattr_size(cur, k, inode, size,
                                   "nfs4_proc_setattr: SETATTR RPC, nfsd_setattr on the server",
                                   "nfs_vmtruncate: i_size_write", "nfs_setattr: done")


def nfs42_remap_file_range(cur: Current, k: Kernel, inode: Inode, src: int, dst: int,
                           length: int):
    """ioctl(FICLONERANGE) within one file on NFS v4.2 (nfs42_remap_file_range): under the
    protocol's lock (the inode lock), flush the file (nfs_sync_inode), send CLONE (the
    server gives the destination its own copy of the source's data); on success
    _nfs42_proc_clone drops the destination's pages as a copy does (nfs42_copy_dest_done:
    invalidate_inode_pages2_range, laundering dirty ones), and nfs42_remap_file_range
    then truncates the range (truncate_inode_pages_range). Page-aligned ranges. Called
    with no lock held; takes the protocol's locks for removing blocks."""
    proto = k.protocol
    first, last = dst // PAGE_SIZE, (dst + length) // PAGE_SIZE - 1
    yield from proto.remove_blocks_begin(cur, k, inode, "clone")
    yield from filemap_write_and_wait_range(cur, k, inode, 0, TO_EOF)  # nfs_sync_inode
    yield from nfsd_clone(cur, k, inode, src // k.blksize, dst // k.blksize,
                          length // k.blksize)
    yield from invalidate_inode_pages2_range(cur, k, inode, first, last, nfs_launder_folio)
    yield from truncate_inode_pages_range(cur, k, inode, first, last)
    yield from proto.remove_blocks_end(cur, k, inode, "clone")


def nfsd_clone(cur: Current, k: Kernel, inode: Inode, src: int, dst: int, count: int):
    """The CLONE RPC on the server (vfs_clone_file_range on its file, which copies here).
    Called with the client's locks for the clone held; the server takes none of them."""
    yield from copy_blocks(cur, k, inode, src, dst, count,
                           "nfs42_proc_clone: CLONE RPC, the server copies the blocks")


def nfs42_proc_copy(cur: Current, k: Kernel, inode: Inode, src: int, dst: int, length: int):
    """copy_file_range offloaded to the server (nfs42_proc_copy -> _nfs42_proc_copy), as
    between two files: under the protocol's lock (the destination's inode lock), write
    back the source range (nfs_filemap_write_and_wait_range) and the destination
    (nfs_sync_inode), send COPY (the server copies), then nfs42_copy_dest_done drops the
    destination's pages with invalidate_inode_pages2_range, which launders a dirty page:
    nfs_launder_folio writes it back, so a page a store dirtied while the COPY was in
    flight goes to the server after the copy, over it. The model copies within one file;
    the real client offloads only between two inodes (__nfs4_copy_file_range refuses one
    inode and the VFS copies through the page cache), but the race is the destination's
    alone: the source takes no part after its flush. Page-aligned ranges. Called with no
    lock held; takes the protocol's locks for removing blocks."""
    proto = k.protocol
    first, last = dst // PAGE_SIZE, (dst + length) // PAGE_SIZE - 1
    yield from proto.remove_blocks_begin(cur, k, inode, "copy")
    yield from filemap_write_and_wait_range(cur, k, inode, src // PAGE_SIZE,
                                            (src + length) // PAGE_SIZE - 1)
    yield from filemap_write_and_wait_range(cur, k, inode, 0, TO_EOF)  # nfs_sync_inode
    yield from copy_blocks(cur, k, inode, src // k.blksize, dst // k.blksize,
                           length // k.blksize,
                           "_nfs42_proc_copy: COPY RPC, nfsd4_copy on the server")
    # nfs42_copy_dest_done (WARN_ON_ONCE if a page stays)
    yield from invalidate_inode_pages2_range(cur, k, inode, first, last, nfs_launder_folio)
    yield from proto.remove_blocks_end(cur, k, inode, "copy")
    return None


def nfs_launder_folio(cur: Current, k: Kernel, inode: Inode, page: Page):
    """->launder_folio (nfs_wb_page): the page is dirty and locked; clear its dirty bit
    (clear_page_dirty_for_io) and WRITE it to the server, waiting for the reply. Called with
    the page locked, its writeback ended and its PTEs zapped."""
    st = Step(f"nfs_launder_folio({page.name}): clear_page_dirty_for_io",
              ((page.key, WRITE), (inode.dirty_tag_key, WRITE)))
    yield st
    page.dirty = page.tagged_dirty = False
    yield from server_write(cur, k, inode, page,
                            "nfs_wb_page: nfs_writepage_locked, WRITE RPC (launder)",
                            "WRITE RPC")


# invalidatepage and write(2)'s get_block are ext4's: the model has no write_begin or
# invalidatepage of this file system's own.
AOPS = AddressSpaceOps(readpage=nfs_readpage, page_mkwrite=nfs_vm_page_mkwrite,
                       writepages=nfs_writepages,
                       invalidatepage=ext4_da_invalidatepage,
                       write_get_block=ext4_da_get_block_prep)
FS = FileSystem("nfs", AOPS, punch_hole=nfs42_proc_deallocate,
                zero_range=nfs42_proc_zero_range, setattr_size=nfs_setattr_size,
                clone_range=nfs42_remap_file_range, copy_range=nfs42_proc_copy)
