"""Sleeping locks and page flags that tasks wait on, as steps the explorer can schedule.

A blocked acquire is a disabled step, not a spin: the explorer runs it only once it can
succeed. The rwsem is fair as Linux's is: down_write first queues (one step, always
possible), and from then on new readers wait behind it and trylocks fail.
"""

from __future__ import annotations

from ..explore.step import ACQ, ACQ_S, REL, REL_S, TRY, WAIT, Step
from ..explore.step import WRITE as WRITE_
from .structs import Current, Mutex, Page, RWSem, WaitQueue


def mutex_lock(cur: Current, m: Mutex):
    yield Step(f"mutex_lock({m.name})", ((m.name, ACQ),), enabled=lambda: m.owner is None,
               waiting_for=lambda: f"{m.name} held by {m.owner}")
    m.owner = cur.comm


def mutex_unlock(cur: Current, m: Mutex):
    yield Step(f"mutex_unlock({m.name})", ((m.name, REL),))
    assert m.owner == cur.comm, f"{cur.comm} unlocks {m.name} held by {m.owner}"
    m.owner = None


def _holders(sem: RWSem) -> str:
    held = f"writer {sem.writer}" if sem.writer else f"readers {', '.join(sem.readers) or '-'}"
    if sem.waiting_writers:
        held += f", writers queued: {', '.join(sem.waiting_writers)}"
    return held


def down_read(cur: Current, sem: RWSem):
    yield Step(f"down_read({sem.name})", ((sem.name, ACQ_S),),
               enabled=lambda: sem.writer is None and not sem.waiting_writers,
               waiting_for=lambda: f"{sem.name} held by {_holders(sem)}")
    sem.readers.append(cur.comm)


def down_read_trylock(cur: Current, sem: RWSem):
    """Returns True with the lock held for read, False at once otherwise."""
    st = Step(f"down_read_trylock({sem.name})", ((sem.name, TRY),))
    yield st
    if sem.writer is None and not sem.waiting_writers:
        sem.readers.append(cur.comm)
        st.note = "acquired"
        return True
    st.note = "failed: " + _holders(sem)
    return False


def down_write_trylock(cur: Current, sem: RWSem):
    st = Step(f"down_write_trylock({sem.name})", ((sem.name, TRY),))
    yield st
    if sem.writer is None and not sem.readers and not sem.waiting_writers:
        sem.writer = cur.comm
        st.note = "acquired"
        return True
    st.note = "failed: " + _holders(sem)
    return False


def up_read(cur: Current, sem: RWSem):
    yield Step(f"up_read({sem.name})", ((sem.name, REL_S),))
    sem.readers.remove(cur.comm)


def down_write(cur: Current, sem: RWSem):
    if not sem.fair:
        yield Step(f"down_write({sem.name})", ((sem.name, ACQ),),
                   enabled=lambda: sem.writer is None and not sem.readers,
                   waiting_for=lambda: f"{sem.name} held by {_holders(sem)}")
        sem.writer = cur.comm
        return
    st = Step(f"down_write({sem.name})", ((sem.name, TRY),))
    yield st
    if sem.writer is None and not sem.readers and not sem.waiting_writers:
        sem.writer = cur.comm  # uncontended: taken at once
        return
    sem.waiting_writers.append(cur.comm)
    st.note = "queued behind " + _holders(sem)
    yield Step(f"down_write({sem.name}): acquire after waiting", ((sem.name, ACQ),),
               enabled=lambda: sem.writer is None and not sem.readers and
               sem.waiting_writers[0] == cur.comm,
               waiting_for=lambda: f"{sem.name} held by {_holders(sem)}")
    sem.waiting_writers.remove(cur.comm)
    sem.writer = cur.comm


def up_write(cur: Current, sem: RWSem):
    yield Step(f"up_write({sem.name})", ((sem.name, REL),))
    assert sem.writer == cur.comm
    sem.writer = None


def lock_page(cur: Current, page: Page):
    yield Step(f"lock_page({page.name})", ((page.lock_key, ACQ),),
               enabled=lambda: page.locked_by is None,
               waiting_for=lambda: f"page {page.name} locked by {page.locked_by}")
    page.locked_by = cur.comm


def unlock_page(cur: Current, page: Page):
    yield Step(f"unlock_page({page.name})", ((page.lock_key, REL),))
    assert page.locked_by == cur.comm, f"{cur.comm} unlocks page held by {page.locked_by}"
    page.locked_by = None


def set_page_writeback(cur: Current, page: Page):
    """Writeback holds PG_writeback like a lock until the I/O ends; called with the page
    locked, so no other writeback can hold it."""
    tag = ((page.inode.dirty_tag_key, WRITE_),) if page.inode is not None else ()
    yield Step(f"set_page_writeback({page.name})",
               ((page.wb_key, ACQ), (page.key, WRITE_), *tag))
    assert not page.writeback
    page.writeback = True
    page.tagged_dirty = page.dirty


def end_page_writeback(cur: Current, page: Page):
    yield Step(f"end_page_writeback({page.name})", ((page.wb_key, REL), (page.key, WRITE_)))
    page.writeback = False


def wait_on_page_writeback(cur: Current, page: Page):
    yield Step(f"wait_on_page_writeback({page.name})", ((page.wb_key, WAIT),),
               enabled=lambda: not page.writeback,
               waiting_for=lambda: f"page {page.name} under writeback")





def waitqueue_publish(cur: Current, wq: WaitQueue):
    """Start the work others must wait for (shmem_fallocate publishing its range)."""
    yield Step(f"publish {wq.name}", ((wq.name, ACQ),), enabled=lambda: wq.busy_by is None,
               waiting_for=lambda: f"{wq.name} busy with {wq.busy_by}")
    wq.busy_by = cur.comm


def wake_up_all(cur: Current, wq: WaitQueue):
    yield Step(f"wake_up_all({wq.name})", ((wq.name, REL),))
    wq.busy_by = None


def wait_event(cur: Current, wq: WaitQueue):
    """Sleep until the published work is done."""
    yield Step(f"wait_event({wq.name})", ((wq.name, WAIT),), enabled=lambda: wq.busy_by is None,
               waiting_for=lambda: f"{wq.name} busy with {wq.busy_by}")
