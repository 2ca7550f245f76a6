"""mm/memory.c: user loads and stores through a shared file mapping, and the faults they
take (3.4: __do_fault for a missing PTE, do_wp_page for a write-protected one)."""

from __future__ import annotations

from ..explore.step import READ, WRITE, Step
from .buffer import VM_FAULT_LOCKED, VM_FAULT_NOPAGE, VM_FAULT_RETRY, VM_FAULT_SIGBUS
from .filemap import filemap_fault
from .kernel import Kernel
from .locking import down_read, unlock_page, up_read
from .structs import MM, PAGE_SIZE, PTE, Current, Inode, Page

SIGBUS = "SIGBUS"


def user_store(cur: Current, k: Kernel, inode: Inode, offset: int, value):
    """A CPU store to the shared mapping of `inode` at `offset`: faults until the PTE is
    present and writable. Returns None, or SIGBUS. Called with no lock held: the fault
    takes mmap_sem itself."""
    mm = cur.mm
    assert mm is not None
    index, cell = divmod(offset, PAGE_SIZE)
    faulted = False
    while True:
        st = Step("store: MMU walks the PTE", ((mm.pte_key(inode, index), WRITE),
                                               (inode.data_key(index), WRITE)))
        yield st
        pte = mm.ptes.get((inode.name, index))
        if pte is not None and pte.writable:
            pte.page.data[cell] = value
            pte.dirty = True
            st.note = f"stored {value!r} to page {pte.page.name} cell {cell}"
            return None
        st.note = "PTE not present: fault" if pte is None else "PTE read-only: write fault"
        st.retry = faulted  # the last fault did not leave a writable PTE
        faulted = True
        if (yield from handle_mm_fault(cur, k, mm, inode, index, True)) == VM_FAULT_SIGBUS:
            return SIGBUS


def user_load(cur: Current, k: Kernel, inode: Inode, offset: int):
    """A CPU load from the shared mapping; returns the value or SIGBUS. Called with no lock
    held: the fault takes mmap_sem itself."""
    mm = cur.mm
    assert mm is not None
    index, cell = divmod(offset, PAGE_SIZE)
    faulted = False
    while True:
        st = Step("load: MMU walks the PTE", ((mm.pte_key(inode, index), READ),
                                              (inode.data_key(index), READ)))
        yield st
        pte = mm.ptes.get((inode.name, index))
        if pte is not None:
            st.note = f"loaded {pte.page.data[cell]!r}"
            return pte.page.data[cell]
        st.note = "PTE not present: fault"
        st.retry = faulted
        faulted = True
        if (yield from handle_mm_fault(cur, k, mm, inode, index, False)) == VM_FAULT_SIGBUS:
            return SIGBUS


def handle_mm_fault(cur: Current, k: Kernel, mm: MM, inode: Inode, index: int, write: bool):
    """Take mmap_sem for read and resolve the fault once; the caller retries the access.
    Called with no lock held."""
    yield from down_read(cur, mm.mmap_sem)
    st = Step("handle_pte_fault", ((mm.pte_key(inode, index), READ),))
    yield st
    pte = mm.ptes.get((inode.name, index))
    if pte is None:
        ret = yield from __do_fault(cur, k, mm, inode, index, write)
    elif write and not pte.writable:
        ret = yield from do_wp_page(cur, k, mm, inode, index, pte.page)
    else:
        ret = None  # another task resolved it meanwhile
    yield from up_read(cur, mm.mmap_sem)
    return ret


def __do_fault(cur: Current, k: Kernel, mm: MM, inode: Inode, index: int, write: bool):
    """No PTE yet: ->fault (filemap_fault, inside the protocol's fault hooks), then for a
    write ->page_mkwrite, then install the PTE. Called with mmap_sem held for read."""
    proto = k.protocol
    yield from proto.fault_begin(cur, k, inode)
    ret, page = yield from filemap_fault(cur, k, inode, index)
    yield from proto.fault_end(cur, k, inode)
    if ret == VM_FAULT_SIGBUS:
        return ret
    assert page is not None
    if write:
        # Shared writable mapping: let the filesystem prepare the page for writing.
        yield from unlock_page(cur, page)
        tmp = yield from k.fs.aops.page_mkwrite(cur, k, inode, page)
        if tmp in (VM_FAULT_NOPAGE, VM_FAULT_RETRY):
            return tmp
    st = Step("__do_fault: install PTE", ((mm.pte_key(inode, index), WRITE), (page.key, READ)))
    yield st
    if (inode.name, index) in mm.ptes:
        st.note = "PTE changed meanwhile: retry"
    else:
        mm.ptes[(inode.name, index)] = PTE(page, writable=write, dirty=write)
        st.note = f"PTE -> page {page.name}, " + ("writable, dirty" if write else "read-only")
    yield from unlock_page(cur, page)
    return VM_FAULT_LOCKED


def do_wp_page(cur: Current, k: Kernel, mm: MM, inode: Inode, index: int, page: Page):
    """Write to a present, write-protected PTE of a shared mapping: page_mkwrite, then make
    the PTE writable if it still maps the same page. Called with mmap_sem held for read."""
    tmp = yield from k.fs.aops.page_mkwrite(cur, k, inode, page)
    if tmp in (VM_FAULT_NOPAGE, VM_FAULT_RETRY):
        return tmp
    st = Step("do_wp_page: pte_same, make PTE writable",
              ((mm.pte_key(inode, index), WRITE), (page.key, READ)))
    yield st
    pte = mm.ptes.get((inode.name, index))
    if pte is not None and pte.page is page:
        pte.writable = True
        pte.dirty = True
        st.note = "PTE writable, dirty"
    else:
        st.note = "PTE changed meanwhile: retry"
    yield from unlock_page(cur, page)
    return VM_FAULT_LOCKED

