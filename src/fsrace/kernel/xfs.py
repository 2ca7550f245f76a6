"""fs/xfs as in Linux 3.4: the hole punch, xfs_free_file_space.

XFS's write fault (block_page_mkwrite with xfs_get_blocks, which turns a hole into an in-core
delalloc extent with a reservation) and its writeback do what ext4's delalloc paths do in
this model, so those run the code in fsrace.kernel.ext4. What XFS does its own way is the
punch: it flushes and invalidates the page cache from the punch start to EOF, zeroes the
partial blocks on disk, and xfs_bunmapi removes delalloc extents along with written ones.
"""

from __future__ import annotations

from ..explore.step import READ, WRITE, Step
from .delalloc import da_release
from .ext4 import AOPS as EXT4_AOPS
from .filemap import filemap_write_and_wait_range, generic_remap_file_range_prep
from .kernel import FileSystem, Kernel
from .locking import down_read, down_write, up_read, up_write
from .server import copy_blocks
from .structs import DELALLOC, PAGE_SIZE, TO_EOF, UNWRITTEN, WRITTEN, Current, Disk, Inode
from .truncate import truncate_inode_pages_range


def xfs_free_file_space(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """xfs_change_file_space(XFS_IOC_UNRESVSP) -> xfs_free_file_space (3.4). Called with no
    lock held; takes the protocol's locks for removing blocks (XFS's IOLOCK exclusive, and
    from 4.1 the MMAPLOCK exclusive)."""
    proto = k.protocol
    yield from proto.remove_blocks_begin(cur, k, inode, "punch")
    st = Step("xfs_free_file_space: clamp to i_size", ((inode.size_key, READ),))
    yield st
    end = min(offset + length, -(-inode.i_size // k.blksize) * k.blksize)
    if offset >= end:
        st.note = "beyond EOF: nothing to do"
    else:
        # xfs_flushinval_pages(ip, ioffset, -1): everything from the punch start to EOF.
        first_page = offset // PAGE_SIZE
        yield from filemap_write_and_wait_range(cur, k, inode, first_page, TO_EOF)
        yield from truncate_inode_pages_range(cur, k, inode, first_page, TO_EOF)
        first_block, stop_block = -(-offset // k.blksize), end // k.blksize
        for start, stop in ((offset, min(end, first_block * k.blksize)),
                            (max(offset, stop_block * k.blksize), end)):
            if start < stop:
                yield from xfs_zero_remaining_bytes(cur, k, inode, start, stop)
        if first_block < stop_block:
            yield from xfs_bunmapi(cur, k, inode, first_block, stop_block - 1)
    yield from proto.remove_blocks_end(cur, k, inode, "punch")


def xfs_zero_remaining_bytes(cur: Current, k: Kernel, inode: Inode, start: int, stop: int):
    """Zero [start, stop), part of one block, on disk through an uncached buffer. Called
    with the remover's locks and no page lock; takes the ILOCK shared to read the map."""
    lblk = start // k.blksize
    yield from down_read(cur, inode.i_data_sem)  # XFS_ILOCK_SHARED
    st = Step("xfs_zero_remaining_bytes: xfs_bmapi_read", ((inode.map_key, READ),))
    yield st
    state, pblk = inode.extents.get(lblk, ("hole", None))
    yield from up_read(cur, inode.i_data_sem)
    if state != WRITTEN:
        st.note = f"lblk {lblk} {state}: reads as zeros already"
        return
    assert pblk is not None
    st = Step("xfs_zero_remaining_bytes: xfs_bwrite", ((k.disk.key(pblk), WRITE),))
    yield st
    base = lblk * k.blksize
    for c in range(start, stop):
        k.disk.blocks[pblk].data[c - base] = 0
    st.note = f"zeroed blk{pblk} [{start - base}, {stop - base})"


def xfs_bunmapi(cur: Current, k: Kernel, inode: Inode, first: int, last: int):
    """Unmap file blocks [first, last] under XFS_ILOCK_EXCL (the model's extent-map lock):
    free written and unwritten extents, and delete delalloc extents with their reservation
    (xfs_bmap_del_extent), whether or not a dirty page still has delay buffers over them.
    Called with the remover's locks and no page lock."""
    yield from down_write(cur, inode.i_data_sem)

    def footprint():
        freed = [pblk for lblk in range(first, last + 1)
                 for state, pblk in [inode.extents.get(lblk, ("", None))]
                 if state in (WRITTEN, UNWRITTEN)]
        return ((inode.map_key, WRITE), (Disk.RESV_KEY, WRITE),
                *((k.disk.owner_key(n), WRITE) for n in freed))

    st = Step("xfs_bunmapi", footprint=footprint)
    yield st
    notes = []
    for lblk in range(first, last + 1):
        state, pblk = inode.extents.get(lblk, ("hole", None))
        if state in (WRITTEN, UNWRITTEN):
            assert pblk is not None
            k.disk.free(pblk)
            del inode.extents[lblk]
            notes.append(f"freed blk{pblk}")
        elif state == DELALLOC:
            da_release(k, inode, lblk)
            notes.append(f"lblk {lblk}: delalloc extent and reservation dropped")
    st.note = "; ".join(notes) or "nothing allocated"
    yield from up_write(cur, inode.i_data_sem)


def xfs_file_remap_range(cur: Current, k: Kernel, inode: Inode, src: int, dst: int,
                         length: int):
    """FICLONERANGE within one file, and copy_file_range, which the VFS turns into a remap
    on XFS (page-aligned ranges; XFS reflink, 4.9 on): xfs_reflink_remap_prep takes the
    IO lock and the MMAPLOCK exclusive (the protocol's locks for removing blocks; since
    5.15 the MMAPLOCK is the mapping's invalidate_lock), generic_remap_file_range_prep
    checks the ranges and writes back both, xfs_flush_unmap_range writes back and drops
    the destination's pages, and xfs_reflink_remap_blocks maps the source's extents at the
    destination. The model copies the blocks rather than sharing them: its XFS writes back
    in place, with no copy-on-write fork, and what the remap must get right against faults,
    the destination's page cache, is the same either way. Called with no lock held."""
    if not (yield from generic_remap_file_range_prep(cur, k, inode, src, dst, length)):
        return "-EINVAL"
    first, last = dst // PAGE_SIZE, (dst + length - 1) // PAGE_SIZE
    # xfs_flush_unmap_range: the destination again, then its pages dropped
    yield from filemap_write_and_wait_range(cur, k, inode, first, last)
    yield from truncate_inode_pages_range(cur, k, inode, first, last)
    yield from copy_blocks(cur, k, inode, src // k.blksize, dst // k.blksize,
                           length // k.blksize,
                           "xfs_reflink_remap_blocks: the source's extents at the destination")
    yield from k.protocol.remove_blocks_end(cur, k, inode, "clone")
    return None


# XFS's own punch and remap; its page cache paths are the model's (ext4's delalloc).
FS = FileSystem("xfs", EXT4_AOPS, punch_hole=xfs_free_file_space,
                clone_range=xfs_file_remap_range, copy_range=xfs_file_remap_range)
