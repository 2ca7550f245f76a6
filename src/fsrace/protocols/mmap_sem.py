"""The thread's first idea (Jan Kara, 16 May 2012, <20120515224805.GA25577@quack.suse.cz>):
hold mmap_sem while invalidating the page cache and punching. As literally proposed, the
punching task takes its own process's mmap_sem for write: faults in other processes take
their own mmap_sem and are not held off."""

from ..kernel.locking import down_write, up_write
from .base import Protocol


class MmapSem(Protocol):
    name = "mmap-sem"
    summary = "punch holds the punching process's mmap_sem for write (the thread's idea 1)"
    era = "proposal, 2012 thread; never merged"

    def remove_blocks_begin(self, cur, k, inode, op):
        if op == "punch" and cur.mm is not None:
            yield from down_write(cur, cur.mm.mmap_sem)

    def remove_blocks_end(self, cur, k, inode, op):
        if op == "punch" and cur.mm is not None:
            yield from up_write(cur, cur.mm.mmap_sem)
