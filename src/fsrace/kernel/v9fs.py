"""The 9p client (fs/9p, 9P2000.L) with a page cache for the file's data (cache=loose;
cache=mmap caches pages for mappings the same way), with the server's file as the block
store behind it (kernel/server.py): qemu's 9p server does to its file what each request
asks.

As in Debian's 6.1 (fs/9p/vfs_file.c, vfs_addr.c, vfs_inode_dotl.c, read in
linux-source-6.1): v9fs_vm_page_mkwrite updates the file times, locks the page, rechecks
its mapping and waits for it to be stable; the fault code then marks it dirty. Writeback
(v9fs_vfs_write_folio_locked) sends a Twrite of the page trimmed to i_size as read then,
and nothing for a page wholly past it. A read fills the page with a Tread (netfs); the
model zero-fills a page past i_size without one, as for NFS (netfs's own clamp not read).

A truncate is v9fs_vfs_setattr_dotl with ATTR_SIZE: write back the whole file
(filemap_write_and_wait; 6.12's filemap_fdatawrite only starts it), Tsetattr (the server
truncates its file), and only then truncate_setsize. v9fs_vm_page_mkwrite takes no lock
the truncate holds, and i_size is the old one until truncate_setsize, so a page a store
dirtied after the flush and written back before truncate_setsize goes out whole and puts
its data back past the server's new end of file: the NFS truncate's window
(remote_setattr_size; docs/findings/9p-truncate-mmap.md).

9p has no fallocate, ->remap_file_range or ->copy_file_range: punch, zero, collapse and
insert range and clones fail with EOPNOTSUPP, and copy_file_range is the VFS's copy
through the page cache (generic_copy_file_range).
"""

from __future__ import annotations

from .ext4 import ext4_da_get_block_prep, ext4_da_invalidatepage
from .kernel import AddressSpaceOps, FileSystem, Kernel
from .page_writeback import write_cache_pages, write_out
from .server import (
    remote_page_mkwrite,
    remote_setattr_size,
    server_readpage,
    server_write_to_eof,
)
from .structs import Current, Inode, Page


def v9fs_read_folio(cur: Current, k: Kernel, inode: Inode, page: Page):
    """->read_folio (netfs_read_folio -> v9fs_issue_read): a Tread for the whole page.
    Called with the page locked; unlocks it."""
    yield from server_readpage(cur, k, inode, page,
                               "v9fs_issue_read: Tread, the server's pread",
                               "netfs: past i_size, zero-filled")


def v9fs_vm_page_mkwrite(cur: Current, k: Kernel, inode: Inode, page: Page):
    """Lock the page, check it is still in the file, wait for it to be stable
    (folio_wait_stable); the fault code marks it dirty (remote_page_mkwrite). Called with
    mmap_sem held for read and the page unlocked."""
    return (yield from remote_page_mkwrite(cur, k, inode, page, "v9fs_vm_page_mkwrite"))


def v9fs_writepages(cur: Current, k: Kernel, inode: Inode, first: int, last: int):
    """write_cache_pages with v9fs_vfs_writepage: each dirty page becomes a Twrite. Called
    with no page lock held."""
    yield from write_cache_pages(cur, k, inode, first, last, v9fs_vfs_writepage)


def v9fs_vfs_writepage(cur: Current, k: Kernel, inode: Inode, page: Page):
    """->writepage. Called with the page locked; write_out puts it under writeback and
    unlocks it before the Twrite goes out."""
    yield from write_out(cur, k, inode, page, v9fs_server_write)


def v9fs_server_write(cur: Current, k: Kernel, inode: Inode, page: Page):
    """v9fs_vfs_write_folio_locked: the page trimmed to i_size as read now (a page wholly
    past it is not sent: "Simultaneous truncation occurred"), p9_client_write, and the
    server pwrites it. Called with the client's page under writeback; the server holds
    none of the client's locks."""
    yield from server_write_to_eof(cur, k, inode, page,
                                   "v9fs_vfs_write_folio_locked: i_size_read, trim",
                                   "p9_client_write: Twrite, the server's pwrite", "Twrite")


def v9fs_setattr_size(cur: Current, k: Kernel, inode: Inode, size: int):
    """ftruncate on 9p (v9fs_vfs_setattr_dotl with ATTR_SIZE, under the VFS's inode
    lock): filemap_write_and_wait, Tsetattr, then truncate_setsize. Called with i_mutex
    held and the protocol's locks for removing blocks (do_truncate)."""
    yield from remote_setattr_size(cur, k, inode, size,
                                   "v9fs_vfs_setattr_dotl: Tsetattr(size), the server's "
                                   "ftruncate",
                                   "truncate_setsize: i_size_write", "v9fs_vfs_setattr_dotl: "
                                   "done")


# invalidatepage and write(2)'s get_block are ext4's: the model has no write_begin or
# invalidatepage of this file system's own.
AOPS = AddressSpaceOps(readpage=v9fs_read_folio, page_mkwrite=v9fs_vm_page_mkwrite,
                       writepages=v9fs_writepages,
                       invalidatepage=ext4_da_invalidatepage,
                       write_get_block=ext4_da_get_block_prep)
FS = FileSystem("9p", AOPS, setattr_size=v9fs_setattr_size,
                refused=frozenset({"punch hole", "zero range", "collapse range",
                                   "insert range", "clone range"}))
