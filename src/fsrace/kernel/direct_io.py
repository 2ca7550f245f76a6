"""Direct I/O reads (fs/direct-io.c, 3.4): the data comes from the blocks, not the cache."""

from __future__ import annotations

from ..explore.step import READ, Step
from .filemap import filemap_write_and_wait_range
from .kernel import Kernel
from .locking import down_read, up_read
from .structs import PAGE_SIZE, WRITTEN, Current, Inode


def generic_file_direct_read(cur: Current, k: Kernel, inode: Inode, pos: int, count: int):
    """generic_file_aio_read with O_DIRECT: flush the range (filemap_write_and_wait_range),
    then ->direct_IO -> __blockdev_direct_IO maps each block with get_block (no create) and
    reads it. A store through a mapping after the flush leaves a delalloc extent that the
    mapping finds: XFS's __xfs_get_blocks BUG()ed on it until 04197b341f23 (2017) made it a
    warning; ext4 reads it as a hole. Returns the cells read. Called with no lock held;
    takes the protocol's direct-I/O lock, then i_data_sem shared to map blocks."""
    proto = k.protocol
    yield from proto.dio_begin(cur, k, inode)
    st = Step("generic_file_aio_read: i_size_read", ((inode.size_key, READ),))
    yield st
    end = min(pos + count, inode.i_size)
    out: list = []
    if pos < end:
        yield from filemap_write_and_wait_range(cur, k, inode, pos // PAGE_SIZE,
                                                (end - 1) // PAGE_SIZE)
        for lblk in range(pos // k.blksize, -(-end // k.blksize)):
            yield from down_read(cur, inode.i_data_sem)
            st = Step("do_direct_IO: get_block", ((inode.map_key, READ),))
            yield st
            state, pblk = inode.extents.get(lblk, ("hole", None))
            k.log("dio_map", cur.comm, inode=inode.name, lblk=lblk, state=state)
            st.note = f"lblk {lblk}: {state}" + (f" -> blk{pblk}" if pblk is not None else "")
            yield from up_read(cur, inode.i_data_sem)
            data = [0] * k.blksize
            if state == WRITTEN:
                assert pblk is not None
                st = Step("dio_bio_submit(READ)", ((k.disk.key(pblk), READ),))
                yield st
                data = list(k.disk.blocks[pblk].data)
                st.note = f"read blk{pblk}"
            base = lblk * k.blksize
            out += data[max(pos - base, 0):min(end - base, k.blksize)]
    yield from proto.dio_end(cur, k, inode)
    return out
