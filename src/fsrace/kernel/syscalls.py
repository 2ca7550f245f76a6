"""The system calls and kernel threads the scenarios run, each as the VFS enters the
filesystem. Every syscall logs its start and result for the checks."""

from __future__ import annotations

from ..explore.step import READ, Step
from .direct_io import generic_file_direct_read
from .ext4 import (
    ext4_collapse_range,
    ext4_ext_punch_hole,
    ext4_insert_range,
    ext4_setattr_size,
    ext4_zero_range,
)
from .filemap import do_generic_file_read, filemap_write_and_wait_range, generic_perform_write
from .kernel import Kernel
from .locking import mutex_lock, mutex_unlock
from .readahead import force_page_cache_readahead
from .structs import PAGE_SIZE, TO_EOF, Current, Inode
from .truncate import invalidate_mapping_pages
from .uaccess import PlainBuffer


def sys_fallocate_punch_hole(cur: Current, k: Kernel, inode: Inode, offset: int, length: int):
    """fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) -> ext4_punch_hole, unless the
    file system punches its own way. Called with no lock held."""
    punch = k.fs.punch_hole or ext4_ext_punch_hole
    yield from punch(cur, k, inode, offset, length)


def sys_copy_file_range(cur: Current, k: Kernel, inode: Inode, src: int, dst: int,
                        length: int):
    """copy_file_range within one file (vfs_copy_file_range): the VFS checks the ranges
    (generic_copy_file_checks) before the file system's ->copy_file_range runs, or its
    remap, or, where it has neither, the VFS's copy through the page cache. Called with no
    lock held."""
    st = Step("vfs_copy_file_range: generic_copy_file_checks against i_size",
              ((inode.size_key, READ),))
    yield st
    if max(src, dst) + length > inode.i_size:
        st.note = "-EINVAL"  # the model's copies stay inside the file
        return "-EINVAL"
    copy = k.fs.copy_range or generic_copy_file_range
    return (yield from copy(cur, k, inode, src, dst, length))


def generic_copy_file_range(cur: Current, k: Kernel, inode: Inode, src: int, dst: int,
                            length: int):
    """The VFS's copy for a file system with neither ->copy_file_range nor a remap (ext4,
    f2fs): do_splice_direct reads the source through the page cache as read(2) does and
    writes it to the destination as write(2) does, under the inode lock (one pipe holds
    sixteen pages, so the model's ranges go in one read and one write). Nothing is taken
    away from the file. Called with no lock held."""
    data = yield from sys_read(cur, k, inode, src, length)
    return (yield from sys_write(cur, k, inode, dst, PlainBuffer(list(data))))


_FALLOCATE = {"zero": ext4_zero_range, "collapse": ext4_collapse_range,
              "insert": ext4_insert_range}


def sys_fallocate(cur: Current, k: Kernel, inode: Inode, mode: str, offset: int, length: int):
    """fallocate(FALLOC_FL_ZERO_RANGE / COLLAPSE_RANGE / INSERT_RANGE) -> ext4_fallocate,
    unless the file system has its own (insert_range and the like). Called with no lock
    held."""
    fs = k.fs
    own = {"zero": fs.zero_range, "collapse": fs.collapse_range, "insert": fs.insert_range}[mode]
    return (yield from (own or _FALLOCATE[mode])(cur, k, inode, offset, length))


def sys_ftruncate(cur: Current, k: Kernel, inode: Inode, size: int):
    """do_truncate (i_mutex) -> ->setattr(ATTR_SIZE): ext4_setattr, unless the protocol's
    file system has its own (the NFS client's nfs_setattr). Called with no lock held."""
    yield from mutex_lock(cur, inode.i_mutex)
    yield from k.protocol.remove_blocks_begin(cur, k, inode, "truncate")
    setattr_size = k.fs.setattr_size or ext4_setattr_size
    yield from setattr_size(cur, k, inode, size)
    yield from k.protocol.remove_blocks_end(cur, k, inode, "truncate")
    yield from mutex_unlock(cur, inode.i_mutex)


def sys_read(cur: Current, k: Kernel, inode: Inode, pos: int, count: int, dest=None):
    """read(2); with `dest` (a MappedBuffer) the data is copied out to that mapping, still
    inside the read, as file_read_actor does. Returns the cells read, or -EFAULT. Called
    with no lock held."""
    yield from k.protocol.read_begin(cur, k, inode)
    out = yield from do_generic_file_read(cur, k, inode, pos, count)
    if dest is not None:
        err = yield from dest.copy_to_user(cur, k, 0, out)
        out = err or out
    yield from k.protocol.read_end(cur, k, inode)
    return out


def sys_readahead(cur: Current, k: Kernel, inode: Inode, pos: int, count: int):
    """readahead(2); fadvise(WILLNEED) and madvise(WILLNEED) come to the same place. Called
    with no lock held."""
    if count > 0:
        yield from force_page_cache_readahead(cur, k, inode, pos // PAGE_SIZE,
                                              (pos + count - 1) // PAGE_SIZE)


def sys_read_direct(cur: Current, k: Kernel, inode: Inode, pos: int, count: int):
    """pread(2) on an O_DIRECT descriptor. Called with no lock held."""
    return (yield from generic_file_direct_read(cur, k, inode, pos, count))


def sys_write(cur: Current, k: Kernel, inode: Inode, pos: int, buf):
    """write(2) from a user buffer (fsrace.kernel.uaccess): i_mutex across the copy. Called
    with no lock held."""
    yield from mutex_lock(cur, inode.i_mutex)
    yield from k.protocol.write_begin(cur, k, inode)
    err = yield from generic_perform_write(cur, k, inode, pos, buf)
    yield from k.protocol.write_end(cur, k, inode)
    yield from mutex_unlock(cur, inode.i_mutex)
    return err


def sys_fsync(cur: Current, k: Kernel, inode: Inode):
    """ext4_sync_file: flush and wait (the journal commit is not modelled). Called with no
    lock held."""
    yield from filemap_write_and_wait_range(cur, k, inode, 0, TO_EOF)


def drop_caches(cur: Current, k: Kernel):
    """echo 1 > /proc/sys/vm/drop_caches. Called with no lock held."""
    for inode in k.inodes.values():
        yield from invalidate_mapping_pages(cur, k, inode)


def wb_writeback(cur: Current, k: Kernel):
    """The flusher: one pass of writeback over every dirty inode. Called with no lock held."""
    for inode in k.inodes.values():
        yield from k.fs.aops.writepages(cur, k, inode, 0, TO_EOF)


def pages_of(inode: Inode) -> int:
    """The number of pages i_size covers. Called with no lock held (a racy read of
    i_size, as i_size_read is)."""
    return -(-inode.i_size // PAGE_SIZE)
