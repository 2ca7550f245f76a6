"""fs/ntfs3/file.c as in Linux 6.12 (Debian 6.12.118): ntfs_fallocate's punch, collapse
and insert.

Each mode runs the same frame: inode_lock, inode_dio_wait, filemap_invalidate_lock,
flush, truncate_pagecache from the range's first page *to the end of the file*, then the
block map under ni_lock (attr_punch_hole, attr_collapse_range, attr_insert_range).
Dropping every later page too is ntfs3's own: ext4 drops the range alone for a punch.

What stands for what in the model:
- ni_lock and run_lock serialise ntfs3's own metadata; no fault takes them. The model's
  extent-map lock, which the block functions below take, stands for both.
- The run list is the model's extent map, and a cluster is a block, so fsrace's block
  functions do the work of attr_*: `ext4_ext_remove_space` frees a punched range,
  `collapse_blocks` and `insert_blocks` shift the later extents.
- inode_dio_wait has nothing to wait for: no direct I/O runs beside these scenarios.
- Punch and insert need a sparse file (else -EOPNOTSUPP); the model's files are taken to
  be sparse. A punch that does not cover whole clusters zeroes its edges through the page
  cache (ntfs_zero_range); the scenarios punch whole pages, and that path is not modelled.
"""

from __future__ import annotations

from fsrace.explore.step import READ, WRITE, Step
from fsrace.kernel.ext4 import collapse_blocks, ext4_ext_remove_space, insert_blocks
from fsrace.kernel.filemap import filemap_write_and_wait_range
from fsrace.kernel.locking import down_write, mutex_lock, mutex_unlock, up_write
from fsrace.kernel.structs import PAGE_SIZE, TO_EOF
from fsrace.kernel.truncate import truncate_pagecache_range

EINVAL = "-EINVAL"


def _lock(cur, inode):
    """inode_lock; inode_dio_wait; filemap_invalidate_lock."""
    yield from mutex_lock(cur, inode.i_mutex)
    yield from down_write(cur, inode.invalidate_lock)


def _unlock(cur, inode):
    """out: filemap_invalidate_unlock; inode_unlock."""
    yield from up_write(cur, inode.invalidate_lock)
    yield from mutex_unlock(cur, inode.i_mutex)


def ntfs_punch_hole(cur, k, inode, offset: int, length: int):
    """ntfs_fallocate(FALLOC_FL_PUNCH_HOLE): flush from the punch to EOF, drop those pages,
    then attr_punch_hole frees the range's clusters."""
    if offset % PAGE_SIZE or length % PAGE_SIZE:
        raise NotImplementedError("ntfs_zero_range (a punch of part of a page) is not modelled")
    yield from _lock(cur, inode)
    first_page = offset // PAGE_SIZE
    yield from filemap_write_and_wait_range(cur, k, inode, first_page, TO_EOF)
    yield from truncate_pagecache_range(cur, k, inode, first_page, TO_EOF)
    st = Step("attr_punch_hole: clamp to the data size", ((inode.size_key, READ),))
    yield st
    end = min(offset + length, -(-inode.i_size // k.blksize) * k.blksize)
    if offset < end:
        yield from ext4_ext_remove_space(cur, k, inode, offset // k.blksize,
                                         end // k.blksize - 1)
    else:
        st.note = "beyond the data: nothing to free"
    yield from _unlock(cur, inode)


def ntfs_collapse_range(cur, k, inode, offset: int, length: int):
    """ntfs_fallocate(FALLOC_FL_COLLAPSE_RANGE): flush the page at the offset and every
    page from the range's end on, drop the pages from the offset to EOF, then
    attr_collapse_range removes the clusters, shifts the rest down and shrinks the sizes.
    Returns None or -EINVAL."""
    yield from _lock(cur, inode)
    st = Step("attr_collapse_range: check the range", ((inode.size_key, READ),))
    yield st
    err = None
    if offset % k.blksize or length % k.blksize or not length or \
            offset + length > inode.i_size:
        st.note = err = EINVAL
    else:
        first_page, end_page = offset // PAGE_SIZE, (offset + length) // PAGE_SIZE
        # filemap_write_and_wait_range(mapping, vbo_down, vbo): the page holding vbo.
        yield from filemap_write_and_wait_range(cur, k, inode, first_page, first_page)
        yield from filemap_write_and_wait_range(cur, k, inode, end_page, TO_EOF)
        yield from truncate_pagecache_range(cur, k, inode, first_page, TO_EOF)
        yield from collapse_blocks(cur, k, inode, offset, length)
        st = Step("attr_collapse_range: i_size_write", ((inode.size_key, WRITE),))
        yield st
        inode.i_size -= length
        st.note = f"i_size -> {inode.i_size}"
    yield from _unlock(cur, inode)
    return err


def ntfs_insert_range(cur, k, inode, offset: int, length: int):
    """ntfs_fallocate(FALLOC_FL_INSERT_RANGE): flush from the offset to EOF, drop those
    pages, then attr_insert_range shifts the clusters up and grows the sizes. Returns None
    or -EINVAL."""
    yield from _lock(cur, inode)
    st = Step("attr_insert_range: check the offset", ((inode.size_key, READ),))
    yield st
    err = None
    if offset % k.blksize or length % k.blksize or not length or offset >= inode.i_size:
        st.note = err = EINVAL
    else:
        first_page = offset // PAGE_SIZE
        yield from filemap_write_and_wait_range(cur, k, inode, first_page, TO_EOF)
        yield from truncate_pagecache_range(cur, k, inode, first_page, TO_EOF)
        # attr_insert_range moves the clusters before it writes i_size (both under
        # ni_lock): until then the moved blocks lie past i_size.
        k.resizing.add(inode.name)
        yield from insert_blocks(cur, k, inode, offset, length)
        st = Step("attr_insert_range: i_size_write", ((inode.size_key, WRITE),))
        yield st
        inode.i_size += length
        st.note = f"i_size -> {inode.i_size}"
        k.resizing.discard(inode.name)
    yield from _unlock(cur, inode)
    return err
