"""The model's state as a stateful search sees it: every field that can change what
happens next, encoded canonically (fsrace.explore.state).

Pages are encoded by their slot and generation ("A:0", "g2": the slot's second page), which
are the same in every interleaving of a trace, and their contents once, in the heap
section; buffers and PTEs by value, where they sit. Lists whose order means nothing to the
model (an rwsem's readers) are sorted; the order of queued writers is kept. What only
reports read (the event log, step notes) is left out.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import TYPE_CHECKING

from ..explore.step import Step
from .structs import MM, PTE, Buffer, Current, Inode, Mutex, Page, RWSem, WaitQueue
from .uaccess import MappedBuffer, PlainBuffer

if TYPE_CHECKING:
    from ..explore.state import StateEncoder
    from .kernel import Kernel


def _sem(sem: RWSem) -> tuple:
    return (sem.writer, tuple(sorted(sem.readers)), tuple(sem.waiting_writers))


def _buffer(bh: Buffer, enc: StateEncoder | None = None) -> tuple:
    return (bh.blocknr, bh.delay, bh.new, bh.uptodate, bh.dirty, bh.unwritten)


def page_ref(page: Page, enc: StateEncoder) -> tuple:
    enc.share(page.data)
    if page.buffers is not None:
        enc.share(page.buffers, *page.buffers)
    return enc.refer(("page", page.name, page.origin), page)


def page_contents(page: Page, enc: StateEncoder) -> tuple:
    return (page.inode.name if page.inode is not None else None, page.index,
            page.locked_by, page.uptodate, page.dirty, page.tagged_dirty, page.writeback,
            tuple(page.data),
            None if page.buffers is None else tuple(_buffer(b) for b in page.buffers))


def _pte(pte: PTE, enc: StateEncoder) -> tuple:
    enc.share(pte)
    return ("pte", page_ref(pte.page, enc), pte.writable, pte.dirty)


def _inode(inode: Inode, enc: StateEncoder) -> tuple:
    enc.share(inode.extents, inode.pages, inode.i_mmap, inode.items, inode.em_cache,
              inode.extent_locked)
    return (inode.name, inode.i_size, tuple(sorted(inode.extents.items())),
            tuple(sorted(inode.items.items())), tuple(sorted(inode.em_cache.items())),
            tuple(sorted(inode.extent_locked.items())), inode.em_drops,
            inode.i_reserved_data_blocks,
            tuple((index, page_ref(page, enc)) for index, page in sorted(inode.pages.items())),
            tuple(mm.name for mm in inode.i_mmap), inode.i_mutex.owner,
            *(_sem(sem) for sem in inode.rwsems()), inode.falloc.busy_by)


def encode_kernel(k: Kernel, enc: StateEncoder) -> tuple:
    """Everything in the kernel that a later step can read."""
    inodes = tuple(_inode(inode, enc) for inode in k.inodes.values())
    enc.share(k.disk.blocks, *(b.data for b in k.disk.blocks), k.resizing,
              *(mm.ptes for mm in k.mms.values()))
    disk = (tuple((b.owner, tuple(b.data), tuple(b.sharers)) for b in k.disk.blocks),
            k.disk.dirty_clusters)
    mms = tuple((mm.name, _sem(mm.mmap_sem),
                 tuple((key, _pte(pte, enc)) for key, pte in sorted(mm.ptes.items())))
                for mm in k.mms.values())
    return (inodes, disk, mms, tuple(sorted(k.resizing)),
            tuple(sorted(k.page_generations.items())))


def _current(cur: Current, enc: StateEncoder) -> tuple:
    return ("current", cur.comm, cur.mm.name if cur.mm else None)


def lookup(k: Kernel):
    """What a reference token of this kernel's state stands for (a page, by its name)."""

    def find(token: tuple) -> Page:
        return k.pages_made[token[1:]]

    return find


def _named(obj, enc: StateEncoder) -> tuple:
    """An object whose state the kernel section holds: its name says which."""
    return (type(obj).__name__, obj.name)


def _frozen(obj, enc: StateEncoder) -> tuple:
    return (type(obj).__name__, *(enc.value(getattr(obj, f.name)) for f in fields(obj)))


def _fields(obj, enc: StateEncoder) -> tuple:
    return (type(obj).__name__, *(enc.value(v) for v in vars(obj).values()))


def model_encoders(value_types: tuple[type, ...] = ()) -> dict:
    """How each of the model's own types held by a task is encoded. `value_types` are
    further plain-value classes (frozen dataclasses, or objects of immutable fields)."""
    encoders: dict = {
        Page: page_ref, Buffer: _buffer, PTE: _pte,
        Inode: _named, MM: _named, RWSem: _named, Mutex: _named, WaitQueue: _named,
        Current: _current,
        # A step a task holds: only its label can matter (its note is for reports).
        Step: lambda st, enc: ("step", st.label),
        MappedBuffer: _fields, PlainBuffer: _fields,
    }
    for t in value_types:
        encoders[t] = _frozen if is_dataclass(t) else _fields
    return encoders


CONTENTS = {Page: page_contents}


def stable_types(value_types: tuple[type, ...] = ()) -> frozenset[type]:
    """The types model_encoders encodes by name or reference, or as immutable values: a
    waiting frame holding only these keeps its encoding."""
    frozen = {t for t in value_types
              if is_dataclass(t) and t.__dataclass_params__.frozen}  # type: ignore[attr-defined]
    return frozenset({Page, Current, Inode, MM, RWSem, Mutex, WaitQueue, Step, *frozen})
