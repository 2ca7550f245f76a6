"""fs/gfs2 on a local (lock_nolock) mount, as in Debian's 6.1 and unchanged in 7.2.13: its
hole punch, __gfs2_punch_hole.

gfs2 allocates blocks when a page is made writable, where the model's ext4 delays it; its
faults, reads, writeback and truncate (gfs2_setattr_size: i_size, then truncate_pagecache,
then punch_hole) run the model's ext4 code, under the inode glock that fsrace.protocols.gfs2
takes. What is gfs2's own is the punch: it drops the page cache, then frees the blocks,
under the glock, which readahead never takes.
"""

from __future__ import annotations

from .ext4 import AOPS as EXT4_AOPS
from .ext4 import ext4_ext_remove_space, zero_partial_page
from .filemap import filemap_write_and_wait_range
from .kernel import FileSystem, Kernel
from .structs import PAGE_SIZE, Current, Inode
from .truncate import truncate_pagecache_range


def __gfs2_punch_hole(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """gfs2_fallocate(PUNCH_HOLE) -> __gfs2_punch_hole: zero the partial blocks through the
    cache (gfs2_block_zero_range), write back the range, drop its pages
    (truncate_pagecache_range), then free its blocks (punch_hole; the model's extent removal
    stands for gfs2's metadata tree). gfs2_fallocate holds the inode lock and the inode
    glock exclusive across: the protocol's locks for removing blocks. Called with no lock
    held."""
    proto = k.protocol
    yield from proto.remove_blocks_begin(cur, k, inode, "punch")
    end = offset + length
    first_page, last_page = offset // PAGE_SIZE, (end - 1) // PAGE_SIZE
    first_full, last_full = -(-offset // PAGE_SIZE), end // PAGE_SIZE - 1
    for index in sorted({first_page, last_page} - set(range(first_full, last_full + 1))):
        yield from zero_partial_page(cur, k, inode, index, offset, end)
    yield from filemap_write_and_wait_range(cur, k, inode, first_page, last_page)
    if first_full <= last_full:
        yield from truncate_pagecache_range(cur, k, inode, first_full, last_full)
    first_block, stop_block = -(-offset // k.blksize), end // k.blksize
    if first_block < stop_block:
        yield from ext4_ext_remove_space(cur, k, inode, first_block, stop_block - 1)
    yield from proto.remove_blocks_end(cur, k, inode, "punch")


# gfs2_fallocate takes PUNCH_HOLE and KEEP_SIZE only; gfs2 has no ->remap_file_range.
FS = FileSystem("gfs2", EXT4_AOPS, punch_hole=__gfs2_punch_hole,
                refused=frozenset({"zero range", "collapse range", "insert range",
                                   "clone range"}))
