"""What a scenario is, and how one becomes a program for the explorer.

A scenario sets up a kernel (files, cached pages, processes) and lists its tasks, each a
sequence of file operations (scenarios/ops.py) run in one process, or a kernel thread such as the
flusher. `build_program` makes a fresh kernel and tasks for every execution, adds the END
task (fsync, drop caches, re-read every file) and wires up the checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# The module, not the function: checks.spec gives this package's ops their meaning and
# imports them, so it may still be loading when this module is.
from ..checks import spec as abstract_file
from ..checks.invariants import FILE_CONTENTS, check_invariants, family
from ..explore.step import CHANGES, Failure, Program, Step, Task
from ..kernel.delalloc import da_reserve
from ..kernel.kernel import Kernel
from ..kernel.memory import user_load, user_store
from ..kernel.state import CONTENTS, encode_kernel, lookup, model_encoders, stable_types
from ..kernel.structs import PAGE_SIZE, WRITTEN, Buffer, Current, Inode
from ..kernel.syscalls import (
    drop_caches,
    sys_copy_file_range,
    sys_fallocate,
    sys_fallocate_punch_hole,
    sys_fsync,
    sys_ftruncate,
    sys_read,
    sys_read_direct,
    sys_readahead,
    sys_write,
)
from ..kernel.uaccess import MappedBuffer, PlainBuffer
from ..protocols.base import Protocol
from .ops import (
    Clone,
    Collapse,
    Copy,
    DirectRead,
    Fsync,
    Insert,
    Load,
    Op,
    Punch,
    Read,
    Readahead,
    ReadIntoMapping,
    Store,
    Truncate,
    Write,
    WriteFromMapping,
    ZeroRange,
)

OP_TYPES = (Clone, Collapse, Copy, DirectRead, Fsync, Insert, Load, Punch, Read, Readahead,
            ReadIntoMapping, Store, Truncate, Write, WriteFromMapping, ZeroRange)


@dataclass(frozen=True)
class Params:
    pages: int = 1  # pages of the file the operations cover
    writers: int = 1  # faulting tasks, each in its own process
    blocks_per_page: int = 1

    def __post_init__(self) -> None:
        if self.pages < 1 or self.writers < 1:
            raise ValueError("--pages and --writers must be at least 1")
        if self.blocks_per_page not in (1, 2, 4):
            raise ValueError("--blocks-per-page must be 1, 2 or 4")


@dataclass
class TaskSpec:
    """A task: its operations (user tasks) or a kernel-thread body (flusher)."""

    name: str
    role: str
    ops: list[Op] = field(default_factory=list)
    process: str | None = None  # the process whose mm it runs in
    thread: Callable | None = None  # kernel thread body: (cur, k) -> generator


class Scenario:
    name = ""
    summary = ""
    exercises: tuple[str, ...] = ()  # invariant families it is built to break
    needs: frozenset[str] = frozenset()  # operations a protocol's file system must have

    def initial_files(self, params: Params) -> dict[str, list]:
        raise NotImplementedError

    def setup(self, k: Kernel, params: Params) -> list[TaskSpec]:
        """Build the initial kernel state (its files must read as `initial_files`) and
        return the tasks."""
        raise NotImplementedError


class CachedFileScenario(Scenario):
    """A scenario around one written file A whose pages are all cached and clean: of
    `--pages` pages, or of `file_pages` when the scenario fixes it."""

    file_pages: int | None = None

    def pages(self, params: Params) -> int:
        return self.file_pages or params.pages

    def initial_files(self, params: Params) -> dict[str, list]:
        bpp = params.blocks_per_page
        return {"A": block_contents("A", self.pages(params) * bpp, PAGE_SIZE // bpp)}

    def written_file(self, k: Kernel, params: Params) -> Inode:
        """File A on disk, every block written with its initial contents."""
        return k.create_file("A", self.initial_files(params)["A"])

    def cached_file(self, k: Kernel, params: Params) -> Inode:
        a = self.written_file(k, params)
        for index in range(self.pages(params)):
            cache_clean_page(k, a, index)
        return a


# -- set-up helpers: initial states built directly, without steps ---------------------------
def cache_clean_page(k: Kernel, inode: Inode, index: int) -> None:
    """The page as a read left it: uptodate, clean; buffers only for sub-page blocks."""
    page = k.new_page(inode, index)
    page.uptodate = True
    if k.blocks_per_page > 1:
        page.buffers = []
        for nr in range(k.blocks_per_page):
            state, pblk = inode.extents.get(k.lblk(index, nr), ("hole", None))
            page.buffers.append(Buffer(blocknr=pblk if state == WRITTEN else None,
                                       uptodate=True))
    for nr in range(k.blocks_per_page):
        pblk = inode.written_block(k.lblk(index, nr))
        lo = nr * k.blksize
        page.data[lo:lo + k.blksize] = (list(k.disk.blocks[pblk].data) if pblk is not None
                                        else [0] * k.blksize)
    inode.pages[index] = page


def create_delalloc_file(k: Kernel, name: str, contents: list) -> Inode:
    """A file written by write(2) and not yet flushed: dirty pages, delay buffers, reserved."""
    inode = Inode(name, len(contents))
    k.inodes[name] = inode
    for index in range(-(-len(contents) // PAGE_SIZE)):
        page = k.new_page(inode, index)
        page.uptodate = page.dirty = True
        chunk = contents[index * PAGE_SIZE:(index + 1) * PAGE_SIZE]
        page.data = chunk + [0] * (PAGE_SIZE - len(chunk))
        page.buffers = [Buffer(delay=True, uptodate=True, dirty=True)
                        for _ in range(k.blocks_per_page)]
        for nr in range(k.blocks_per_page):
            da_reserve(k, inode, k.lblk(index, nr))
        inode.pages[index] = page
    return inode


def block_contents(name: str, nblocks: int, blksize: int) -> list:
    """Contents whose every cell names its file and block, so stale data is recognisable."""
    return [f"{name.lower()}{b}" for b in range(nblocks) for _ in range(blksize)]


# -- running operations in the model --------------------------------------------------------
def run_op(cur: Current, k: Kernel, op: Op):
    inode = k.inodes[op.file]
    if isinstance(op, Store):
        return (yield from user_store(cur, k, inode, op.offset, op.value)) or "ok"
    if isinstance(op, Load):
        return (yield from user_load(cur, k, inode, op.offset))
    if isinstance(op, Punch):
        return (yield from sys_fallocate_punch_hole(cur, k, inode, op.offset, op.length))
    if isinstance(op, ZeroRange | Collapse | Insert):
        mode = {ZeroRange: "zero", Collapse: "collapse", Insert: "insert"}[type(op)]
        return (yield from sys_fallocate(cur, k, inode, mode, op.offset, op.length))
    if isinstance(op, Copy | Clone):
        # The matrix never builds such a program for a protocol that lacks the operation;
        # a copy without the file system's own goes through the page cache.
        copy = isinstance(op, Copy)
        if not copy and k.fs.clone_range is None:
            raise TypeError(f"{k.fs.name} has no clone operation")
        remap = sys_copy_file_range if copy else k.fs.clone_range
        return (yield from remap(cur, k, inode, op.src_offset, op.offset, op.length))
    if isinstance(op, Readahead):
        return (yield from sys_readahead(cur, k, inode, op.offset, op.count))
    if isinstance(op, DirectRead):
        return tuple((yield from sys_read_direct(cur, k, inode, op.offset, op.count)))
    if isinstance(op, Truncate):
        return (yield from sys_ftruncate(cur, k, inode, op.size))
    if isinstance(op, Write):
        return (yield from sys_write(cur, k, inode, op.offset, PlainBuffer(list(op.values))))
    if isinstance(op, WriteFromMapping):
        buf = MappedBuffer(k.inodes[op.source], op.source_offset, op.length)
        return (yield from sys_write(cur, k, inode, op.offset, buf))
    if isinstance(op, Read):
        return tuple((yield from sys_read(cur, k, inode, op.offset, op.count)))
    if isinstance(op, ReadIntoMapping):
        dest = MappedBuffer(k.inodes[op.dest], op.dest_offset, op.count)
        got = yield from sys_read(cur, k, inode, op.offset, op.count, dest)
        return got if isinstance(got, str) else tuple(got)
    if isinstance(op, Fsync):
        return (yield from sys_fsync(cur, k, inode))
    raise TypeError(f"unknown operation {op!r}")


def _user_task(k: Kernel, spec: TaskSpec, t: int, observed: dict, plan: tuple[Op, ...]):
    cur = Current(spec.name, k.mms[spec.process] if spec.process else None)
    for i, op in enumerate(plan):
        k.log("op_begin", spec.name, op=str(op))
        observed[(t, i)] = yield from run_op(cur, k, op)
        k.log("op_end", spec.name, op=str(op), result=observed[(t, i)])


def _end_task(k: Kernel, final: dict):
    """After every task: fsync each file, drop caches, read every file back."""
    cur = Current("END", None)
    for inode in k.inodes.values():
        yield from sys_fsync(cur, k, inode)
    yield from drop_caches(cur, k)
    for name, inode in k.inodes.items():
        st = Step(f"stat({name})", ((inode.size_key, "r"),))
        yield st
        size = inode.i_size
        final[name] = list((yield from sys_read(cur, k, inode, 0, size)))


def build_program(scenario: Scenario, protocol: type[Protocol], params: Params) -> Program:
    k = Kernel(protocol(), nblocks=8 * params.blocks_per_page * max(2, params.pages),
               blocks_per_page=params.blocks_per_page)
    specs = scenario.setup(k, params)
    initial = scenario.initial_files(params)
    observed: dict = {}
    final: dict = {}
    tasks = []
    # Each task's operations as a tuple: nobody changes a task's plan, so the plan and its
    # operations are state constants (a task's encoding names them, never spells them out).
    plans = [tuple(spec.ops) for spec in specs]
    for t, spec in enumerate(specs):
        if spec.thread is not None:
            body = spec.thread(Current(spec.name, None), k)
        else:
            body = _user_task(k, spec, t, observed, plans[t])
        tasks.append(Task(spec.name, body, spec.role))
    tasks.append(Task("END", _end_task(k, final), "fsync, drop caches, re-read", epilogue=True))
    seen = [0]

    def check_step(step: Step) -> Failure | None:
        new = k.events[seen[0]:]
        seen[0] = len(k.events)
        changed = {family(obj) for obj, kind in step.accesses if kind in CHANGES}
        hit = check_invariants(k, new, changed)
        if hit:
            inv, msg = hit
            return Failure(inv.name, inv.meaning, msg)
        return None

    def replayed(step: Step) -> None:
        seen[0] = len(k.events)  # checked when this prefix first ran

    def check_end() -> Failure | None:
        msg = abstract_file.check_per_page(initial, [s.ops for s in specs], final, observed,
                                           [s.name for s in specs])
        return Failure(*FILE_CONTENTS, msg) if msg else None

    def state(enc) -> tuple:
        # Copies: the dicts themselves are constants (a task holds them), their contents
        # are state.
        return (encode_kernel(k, enc), enc.value(dict(observed)), enc.value(dict(final)))

    return Program(tasks, check_step, check_end, lambda: describe_state(k), replayed,
                   extra={"kernel": k, "final": final, "observed": observed, "specs": specs},
                   state=state, state_encoders=model_encoders(OP_TYPES),
                   state_contents=CONTENTS, state_stable=stable_types(OP_TYPES),
                   state_lookup=lookup(k),
                   state_constants=(k, observed, final, k.protocol, *specs, *plans,
                                    *(op for plan in plans for op in plan)))


def describe_state(k: Kernel) -> str:
    lines = []
    for inode in k.inodes.values():
        lines.append(f"inode {inode.name}: i_size {inode.i_size}, map {inode.describe_map()}, "
                     f"reserved {inode.i_reserved_data_blocks}")
        for _, page in sorted(inode.pages.items()):
            lines.append("  " + page.describe())
    for mm in k.mms.values():
        for (ino, index), pte in sorted(mm.ptes.items()):
            rw = "writable" if pte.writable else "read-only"
            gone = pte.page.inode is None or k.inodes[ino].pages.get(index) is not pte.page
            lines.append(f"{mm.name} PTE {ino}:{index} -> page {pte.page.name} "
                         f"({rw}{', dirty' if pte.dirty else ''})"
                         + (f", not in the page cache: data {pte.page.data}" if gone else ""))
    for n, b in enumerate(k.disk.blocks):
        if b.owner is not None or any(b.data):
            owner = " and ".join(f"{o[0]} lblk {o[1]}" for o in k.disk.owners(n)) or "free"
            lines.append(f"blk{n}: {owner}, data {b.data}")
    lines.append(f"reserved blocks (s_dirtyclusters): {k.disk.dirty_clusters}")
    held = []
    for inode in k.inodes.values():
        for lock in (inode.i_mutex,):
            if lock.owner:
                held.append(f"{lock.name} by {lock.owner}")
        for sem in inode.rwsems():
            if sem.writer:
                held.append(f"{sem.name} (write) by {sem.writer}")
            if sem.readers:
                held.append(f"{sem.name} (read) by {', '.join(sem.readers)}")
            if sem.waiting_writers:
                held.append(f"{sem.name} waited for (write) by {', '.join(sem.waiting_writers)}")
    for mm in k.mms.values():
        if mm.mmap_sem.writer or mm.mmap_sem.readers:
            held.append(f"{mm.mmap_sem.name} by {mm.mmap_sem.writer or mm.mmap_sem.readers}")
    lines.append("locks held: " + (", ".join(held) if held else "none"))
    return "\n".join(lines)
