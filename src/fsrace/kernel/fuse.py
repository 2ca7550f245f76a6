"""The FUSE client with the writeback cache (fs/fuse/file.c, FUSE_WRITEBACK_CACHE), with
the server's file as the block store behind it (kernel/server.py): fsrace's own server
(stress/fuse_server.py) does to its file what each request asks.

A read fills a whole page from the server's file (FUSE_READ; fuse_read_folio asks the
server even past i_size, and zero-fills a short reply). fuse_page_mkwrite locks the page,
rechecks page->mapping and waits for writeback; the fault code then marks it dirty. The
flusher, fsync and msync send dirty pages as FUSE_WRITE (fuse_writepages).

fallocate(PUNCH_HOLE or ZERO_RANGE) is fuse_file_fallocate: inode_lock (invalidate_lock
only on DAX), fuse_writeback_range (write back and wait from the range's start to the
end of the file, and for the writes already sent), FUSE_FALLOCATE (the server punches or
zeroes its file), and only then truncate_pagecache_range. Nothing keeps a fault out
between the writeback and the truncate, so a store that dirties a page of the range
while the request is out, written back before the truncate (the flusher: FUSE's bdi
limits its dirty pages to a sliver, so background writeback starts early), puts the page's
pre-punch data back on the server after it punched (docs/findings/fuse-writeback-mmap.md).
copy_file_range is __fuse_copy_file_range: the source's range written back under the
source's inode lock, the destination's inode lock, its range written back,
FUSE_COPY_FILE_RANGE, then truncate_inode_pages_range over the destination (the gap the
comment there describes for partial pages). Collapse and insert range are refused
(EOPNOTSUPP); there is no ->remap_file_range.

A truncate is fuse_do_setattr(ATTR_SIZE): fuse_set_nowrite (wait for the FUSE_WRITEs
out, hold new ones back), FUSE_SETATTR (the server truncates its file), i_size_write,
__fuse_release_nowrite (the held-back writes go out, each trimmed to the new i_size by
fuse_send_writepage), and only then truncate_pagecache (fs/fuse/dir.c, 7.3). A page a
store dirtied after the server truncated is written back at most up to the new end of
file. The invalidate_inode_pages2 that follows (its launders go through the same trimmed
writes) is left out.
"""

from __future__ import annotations

from .ext4 import ext4_da_get_block_prep, ext4_da_invalidatepage
from .filemap import filemap_write_and_wait_range
from .kernel import AddressSpaceOps, FileSystem, Kernel
from .locking import (
    down_read,
    mutex_lock,
    mutex_unlock,
    up_read,
)
from .page_writeback import write_cache_pages, write_out
from .server import (
    copy_blocks,
    punch_blocks,
    remote_page_mkwrite,
    remote_setattr_size,
    server_readpage,
    server_write_to_eof,
)
from .structs import PAGE_SIZE, TO_EOF, Current, Inode, Page
from .truncate import truncate_inode_pages_range, truncate_pagecache_range


def fuse_read_folio(cur: Current, k: Kernel, inode: Inode, page: Page):
    """->read_folio: FUSE_READ for the whole page, whatever i_size says. Called with the
    page locked; unlocks it."""
    yield from server_readpage(cur, k, inode, page,
                               "fuse_read_folio: FUSE_READ, the server's pread", None)


def fuse_page_mkwrite(cur: Current, k: Kernel, inode: Inode, page: Page):
    """Lock the page, check it is still in the file, wait for its writeback; the fault
    code marks it dirty (remote_page_mkwrite). Called with mmap_sem held for read and the
    page unlocked."""
    return (yield from remote_page_mkwrite(cur, k, inode, page, "fuse_page_mkwrite"))


def fuse_writepages(cur: Current, k: Kernel, inode: Inode, first: int, last: int):
    """->writepages: each dirty page becomes a FUSE_WRITE. Called with no page lock held."""
    yield from write_cache_pages(cur, k, inode, first, last, fuse_writepage)


def fuse_writepage(cur: Current, k: Kernel, inode: Inode, page: Page):
    """One page of fuse_writepages. Called with the page locked; write_out puts it under
    writeback and unlocks it before the request goes out; the writeback ends with the
    server's reply (fuse_writepage_end)."""
    yield from write_out(cur, k, inode, page, fuse_server_write)


def fuse_server_write(cur: Current, k: Kernel, inode: Inode, page: Page):
    """fuse_flush_writepages -> fuse_send_writepage: unless a truncate holds the writes
    back (FUSE_NOWRITE, until it has set the new i_size), the FUSE_WRITE goes out, the
    page trimmed to i_size as read then (a page wholly past it is not sent), and the
    server pwrites it. Called with the client's page under writeback; the server holds
    none of the client's locks."""
    yield from down_read(cur, inode.fuse_nowrite)
    yield from server_write_to_eof(cur, k, inode, page, "fuse_send_writepage: trim to i_size",
                                   "fuse_send_writepage: FUSE_WRITE, the server's pwrite",
                                   "FUSE_WRITE")
    yield from up_read(cur, inode.fuse_nowrite)


def fuse_setattr_size(cur: Current, k: Kernel, inode: Inode, size: int):
    """ftruncate on FUSE with the writeback cache (fuse_do_setattr with ATTR_SIZE):
    fuse_set_nowrite, FUSE_SETATTR (the server's ftruncate), i_size_write,
    __fuse_release_nowrite (held-back writes go out, trimmed to the new size), then
    truncate_pagecache; nothing is written back first. Called with i_mutex held and the
    protocol's locks for removing blocks (do_truncate)."""
    yield from remote_setattr_size(cur, k, inode, size,
                                   "fuse_do_setattr: FUSE_SETATTR(size), the server's ftruncate",
                                   "fuse_do_setattr: i_size_write", "fuse_do_setattr: done",
                                   hold_writes=inode.fuse_nowrite)


def fuse_file_fallocate(cur: Current, k: Kernel, inode: Inode, offset: int, length: int,
                        op: str):
    """fallocate(PUNCH_HOLE or ZERO_RANGE, KEEP_SIZE) on FUSE (`op` "punch" or "zero"):
    inode_lock, fuse_writeback_range from the range's first page to the end of the file,
    FUSE_FALLOCATE (the server's fallocate: its bytes of the range read as zeros after),
    then truncate_pagecache_range. Page-aligned ranges inside the file. Called with no
    lock held; takes the inode lock and the protocol's locks for removing blocks."""
    if offset % PAGE_SIZE or length % PAGE_SIZE:
        raise ValueError("the model's FUSE fallocate takes whole pages")
    proto = k.protocol
    if op == "zero":  # the punch takes the inode lock in remove_blocks_begin (LocksOwnInode)
        yield from mutex_lock(cur, inode.i_mutex)
    yield from proto.remove_blocks_begin(cur, k, inode, op)
    # fuse_writeback_range: filemap_write_and_wait_range to LLONG_MAX, fuse_sync_writes
    yield from filemap_write_and_wait_range(cur, k, inode, offset // PAGE_SIZE, TO_EOF)
    request = "PUNCH_HOLE" if op == "punch" else "ZERO_RANGE"
    yield from punch_blocks(cur, k, inode, offset, offset + length,
                            f"fuse_file_fallocate: FUSE_FALLOCATE({request}), the server's "
                            "fallocate")
    yield from truncate_pagecache_range(cur, k, inode, offset // PAGE_SIZE,
                                        (offset + length) // PAGE_SIZE - 1)
    yield from proto.remove_blocks_end(cur, k, inode, op)
    if op == "zero":
        yield from mutex_unlock(cur, inode.i_mutex)


def fuse_punch_hole(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """fallocate(PUNCH_HOLE | KEEP_SIZE). Called with no lock held."""
    return (yield from fuse_file_fallocate(cur, k, inode, offset, length, "punch"))


def fuse_zero_range(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """fallocate(ZERO_RANGE | KEEP_SIZE). Called with no lock held."""
    return (yield from fuse_file_fallocate(cur, k, inode, offset, length, "zero"))


def fuse_copy_file_range(cur: Current, k: Kernel, inode: Inode, src: int, dst: int,
                         length: int):
    """copy_file_range within one file (__fuse_copy_file_range): the source range written
    back (under the inode lock, which the model's one file shares with the destination),
    the destination's inode lock, fuse_writeback_range over the destination,
    FUSE_COPY_FILE_RANGE (the server's copy_file_range), then
    truncate_inode_pages_range over the destination's pages. Page-aligned ranges. Called
    with no lock held; takes the protocol's locks for removing blocks."""
    proto = k.protocol
    first, last = dst // PAGE_SIZE, (dst + length) // PAGE_SIZE - 1
    yield from mutex_lock(cur, inode.i_mutex)
    yield from filemap_write_and_wait_range(cur, k, inode, src // PAGE_SIZE,
                                            (src + length) // PAGE_SIZE - 1)
    yield from mutex_unlock(cur, inode.i_mutex)
    yield from proto.remove_blocks_begin(cur, k, inode, "copy")
    yield from filemap_write_and_wait_range(cur, k, inode, first, TO_EOF)
    yield from copy_blocks(cur, k, inode, src // k.blksize, dst // k.blksize,
                           length // k.blksize,
                           "__fuse_copy_file_range: FUSE_COPY_FILE_RANGE, the server's "
                           "copy_file_range")
    yield from truncate_inode_pages_range(cur, k, inode, first, last)
    yield from proto.remove_blocks_end(cur, k, inode, "copy")
    return None


# invalidatepage and write(2)'s get_block are ext4's: the model has no write_begin or
# invalidatepage of this file system's own.
AOPS = AddressSpaceOps(readpage=fuse_read_folio, page_mkwrite=fuse_page_mkwrite,
                       writepages=fuse_writepages,
                       invalidatepage=ext4_da_invalidatepage,
                       write_get_block=ext4_da_get_block_prep)
FS = FileSystem("fuse", AOPS, punch_hole=fuse_punch_hole, zero_range=fuse_zero_range,
                copy_range=fuse_copy_file_range, setattr_size=fuse_setattr_size,
                refused=frozenset({"collapse range", "insert range", "clone range"}))
