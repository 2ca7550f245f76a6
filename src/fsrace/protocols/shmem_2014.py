"""shmem's answer, f00cdc6df7d7 "shmem: fix faulting into a hole while it's punched" (Hugh
Dickins, 2014): the punch publishes itself in inode->i_private and faults into the file
sleep on its waitqueue until the punch wakes them. The fault checks i_private before it
looks the page up; nothing stops a punch from starting right after that check, which its
own comment accepts ("we just need to make racing faults a rare case"), and which the
2026 "use invalidate_lock" patch names as a TOCTOU."""

from ..explore.step import TRY, Step
from ..kernel.locking import mutex_lock, mutex_unlock, wait_event, waitqueue_publish, wake_up_all
from .base import Protocol


class Shmem2014(Protocol):
    name = "shmem-2014"
    summary = "punch publishes itself; faults into the file wait on its waitqueue (2014)"
    era = "Linux 3.16: f00cdc6df7d7 (shmem)"

    def remove_blocks_begin(self, cur, k, inode, op):
        if op == "punch":
            yield from mutex_lock(cur, inode.i_mutex)
            yield from waitqueue_publish(cur, inode.falloc)

    def remove_blocks_end(self, cur, k, inode, op):
        if op == "punch":
            yield from wake_up_all(cur, inode.falloc)
            yield from mutex_unlock(cur, inode.i_mutex)

    def fault_begin(self, cur, k, inode):
        st = Step("shmem_fault: check inode->i_private", ((inode.falloc.name, TRY),))
        yield st
        if inode.falloc.busy_by is not None:
            st.note = f"hole punch by {inode.falloc.busy_by}: wait"
            yield from wait_event(cur, inode.falloc)
