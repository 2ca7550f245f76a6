"""The patch Dave Chinner ran for months (16 May 2012, <20120516021423.GO25351@dastard>):
page_mkwrite takes the filesystem's IO lock shared (XFS i_iolock). The IO lock is taken as
XFS does: exclusive by punch, truncate and write(2), shared by read(2). The lock
inversion it risks (read(2) holding the IO lock faults into a mapping of the same file and
page_mkwrite takes it again behind a queued writer) is why XFS 4.1 took a new lock instead
(653c60b633a9)."""

from ..kernel.locking import down_read, down_read_trylock, down_write, up_read, up_write
from .base import Protocol


class XfsIolock(Protocol):
    """The XFS IO lock (i_iolock): exclusive over block removal and write(2), shared over
    read(2) and direct I/O reads (xfs_file_aio_read, xfs_file_aio_write)."""

    def remove_blocks_begin(self, cur, k, inode, op):
        yield from down_write(cur, inode.iolock)

    def remove_blocks_end(self, cur, k, inode, op):
        yield from up_write(cur, inode.iolock)

    def write_begin(self, cur, k, inode):
        return down_write(cur, inode.iolock)

    def write_end(self, cur, k, inode):
        return up_write(cur, inode.iolock)

    def read_begin(self, cur, k, inode):
        return down_read(cur, inode.iolock)

    def read_end(self, cur, k, inode):
        return up_read(cur, inode.iolock)

    dio_begin = read_begin
    dio_end = read_end


class IolockMkwrite(XfsIolock):
    name = "iolock-mkwrite"
    summary = "page_mkwrite takes the IO lock shared (Chinner's 2012 XFS patch)"
    era = "out-of-tree XFS patch, 2012"

    def page_mkwrite_begin(self, cur, k, inode):
        return down_read(cur, inode.iolock)

    def page_mkwrite_end(self, cur, k, inode):
        return up_read(cur, inode.iolock)


class MkwriteRetry(IolockMkwrite):
    """Chinner's proposal in the same mail: page_mkwrite try-locks the IO lock and, when it
    cannot have it, fails with EAGAIN so the whole fault is retried, any number of times."""

    name = "mkwrite-retry"
    summary = "page_mkwrite try-locks the IO lock; on failure the whole fault is retried"
    era = "proposal, 2012 thread; VM_FAULT_RETRY from page_mkwrite was never merged"

    def page_mkwrite_begin(self, cur, k, inode):
        return down_read_trylock(cur, inode.iolock)
