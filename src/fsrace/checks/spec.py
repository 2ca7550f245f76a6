"""The abstract file: what the operations mean, one at a time, with no kernel in sight.

The model's results (final contents, values read) must be ones that running the
scenario's operations one at a time gives, in some order that keeps each task's own order.
The check is per page, so an operation spanning pages may be seen page by page; but a file
that an operation moves data across (insert, collapse, clone) is checked whole, since a
store that the move should carry to another page must be found on one page or the other
under one order, not missing from both under two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..kernel.structs import PAGE_SIZE
from ..scenarios.ops import (
    Clone,
    Collapse,
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

SIGBUS = "SIGBUS"
Files = dict[str, list]


def apply(files: Files, op: Op):
    """Run one operation on the abstract files; return what it observes."""
    data = files[op.file]
    if isinstance(op, Store | Load):
        if op.offset // PAGE_SIZE >= -(-len(data) // PAGE_SIZE):
            return SIGBUS
        if isinstance(op, Load):
            return data[op.offset] if op.offset < len(data) else 0
        if op.offset < len(data):
            data[op.offset] = op.value
        return "ok"
    if isinstance(op, Punch | ZeroRange):
        for i in range(op.offset, min(op.offset + op.length, len(data))):
            data[i] = 0
        return None
    if isinstance(op, Collapse):
        if op.offset + op.length >= len(data):
            return "-EINVAL"  # the range must end before EOF
        del data[op.offset:op.offset + op.length]
        return None
    if isinstance(op, Insert):
        if op.offset >= len(data):
            return "-EINVAL"
        data[op.offset:op.offset] = [0] * op.length
        return None
    if isinstance(op, Clone):
        if max(op.src_offset, op.offset) + op.length > len(data):
            return "-EINVAL"  # the model's clones stay inside the file
        data[op.offset:op.offset + op.length] = data[op.src_offset:op.src_offset + op.length]
        return None
    if isinstance(op, Truncate):
        del data[op.size:]
        data.extend([0] * (op.size - len(data)))
        return None
    if isinstance(op, Write | WriteFromMapping):
        if isinstance(op, WriteFromMapping):
            src = files[op.source]
            if (op.source_offset + op.length - 1) // PAGE_SIZE >= -(-len(src) // PAGE_SIZE):
                return "-EFAULT"  # the source mapping ends before the buffer does
            values = [src[i] if i < len(src) else 0
                      for i in range(op.source_offset, op.source_offset + op.length)]
        else:
            values = list(op.values)
        end = op.offset + len(values)
        data.extend([0] * (end - len(data)))
        data[op.offset:end] = values
        return None
    if isinstance(op, Read | DirectRead):
        return tuple(data[op.offset:op.offset + op.count])
    if isinstance(op, ReadIntoMapping):
        got = tuple(data[op.offset:op.offset + op.count])
        dst = files[op.dest]
        if (op.dest_offset + len(got) - 1) // PAGE_SIZE >= -(-len(dst) // PAGE_SIZE):
            return "-EFAULT"
        for i, value in enumerate(got):
            if op.dest_offset + i < len(dst):
                dst[op.dest_offset + i] = value
        return got
    if isinstance(op, Fsync | Readahead):
        return None
    raise TypeError(f"unknown operation {op!r}")


def page_view(op: Op, observed, page: int):
    """The part of an observation that concerns one page."""
    if isinstance(op, Read | DirectRead | ReadIntoMapping) and isinstance(observed, tuple):
        lo, hi = page * PAGE_SIZE, (page + 1) * PAGE_SIZE
        return tuple(v for i, v in enumerate(observed, op.offset) if lo <= i < hi)
    return observed


def interleavings(lengths: Sequence[int]):
    """Every order of the tasks' operations that keeps each task's own order, as task
    index sequences."""
    total = sum(lengths)
    left = list(lengths)
    seq: list[int] = []

    def rec():
        if len(seq) == total:
            yield tuple(seq)
            return
        for t, n in enumerate(left):
            if n:
                left[t] -= 1
                seq.append(t)
                yield from rec()
                seq.pop()
                left[t] += 1

    yield from rec()


@dataclass
class Outcome:
    order: tuple[tuple[int, int], ...]  # (task, op index) in the order run
    files: Files
    observed: dict[tuple[int, int], object]


def sequential_outcomes(initial: Files, tasks: Sequence[Sequence[Op]]) -> list[Outcome]:
    outcomes = []
    for seq in interleavings([len(t) for t in tasks]):
        files = {name: list(data) for name, data in initial.items()}
        pos = [0] * len(tasks)
        order, observed = [], {}
        for t in seq:
            i = pos[t]
            pos[t] += 1
            observed[(t, i)] = apply(files, tasks[t][i])
            order.append((t, i))
        outcomes.append(Outcome(tuple(order), files, observed))
    return outcomes


def run_in_order(initial: Files, tasks: Sequence[Sequence[Op]], order: Sequence[int]) -> Outcome:
    """The outcome of one given order of whole tasks (each runs all its operations)."""
    files = {name: list(data) for name, data in initial.items()}
    observed = {}
    for t in order:
        for i, op in enumerate(tasks[t]):
            observed[(t, i)] = apply(files, op)
    return Outcome((), files, observed)


def _page_state(tasks: Sequence[Sequence[Op]], name: str, page: int, files: Files,
                observed: dict) -> tuple:
    """What one page shows: the file's size, the page's cells, and what each operation
    that touches the page observed of it."""
    lo, hi = page * PAGE_SIZE, (page + 1) * PAGE_SIZE
    seen = tuple(
        ((t, i), page_view(tasks[t][i], val, page))
        for (t, i), val in sorted(observed.items())
        if tasks[t][i].file == name and page in tasks[t][i].pages()
    )
    return len(files[name]), tuple(files[name][lo:hi]), seen


MOVES = (Insert, Collapse, Clone)
OBSERVES = (Store, Load, Read, DirectRead, ReadIntoMapping)


def check_per_page(initial: Files, tasks: Sequence[Sequence[Op]], final: Files,
                   observed: dict[tuple[int, int], object],
                   task_names: Sequence[str]) -> str | None:
    """None if, for every page of every file, the final contents and size and every value
    read from that page match one sequential order (for a file an operation moves data
    across, all its pages match the same order); else a message saying what broke."""
    outcomes = sequential_outcomes(initial, tasks)
    for name in sorted(initial):
        # Every page the file has in some outcome, and every page an access observed: a
        # store that returned where it should have faulted past EOF shows only there.
        observing = [op for ops in tasks for op in ops
                     if op.file == name and isinstance(op, OBSERVES)]
        npages = max([-(-len(o.files[name]) // PAGE_SIZE) for o in outcomes]
                     + [-(-len(final[name]) // PAGE_SIZE)]
                     + [p + 1 for op in observing for p in op.pages()])
        if any(isinstance(op, MOVES) and op.file == name for ops in tasks for op in ops):
            def state(files, obs, name=name, npages=npages):
                return tuple(_page_state(tasks, name, p, files, obs) for p in range(npages))

            got = state(final, observed)
            allowed = {state(o.files, o.observed) for o in outcomes}
            if got not in allowed:
                return _explain_file(name, got, allowed, tasks, task_names)
            continue
        for page in range(npages):
            got = _page_state(tasks, name, page, final, observed)
            allowed = {_page_state(tasks, name, page, o.files, o.observed) for o in outcomes}
            if got not in allowed:
                return _explain(name, page, got, allowed, tasks, task_names)
    return None


def _explain_file(name, got, allowed, tasks, task_names) -> str:
    """The whole file as it ended, page by page, what each operation saw, and every
    allowed state of the whole file."""
    def cells(state):
        return [list(data) for _, data, _ in state]

    def seen_in(state) -> dict:
        """What each operation saw of the whole file: a read's slices, page by page,
        joined again."""
        out: dict = {}
        for _, _, page_seen in state:
            for key, val in page_seen:
                joined = isinstance(val, tuple) and isinstance(out.get(key), tuple)
                out[key] = out[key] + val if joined else val
        return out

    ops = "; ".join(f"{task_names[t]}: " + ", ".join(str(op) for op in ops)
                    for t, ops in enumerate(tasks) if ops)
    lines = [f"file {name} ends as {cells(got)} (i_size {got[0][0]}), page by page"]
    seen = seen_in(got)
    for (t, i), val in sorted(seen.items()):
        lines.append(f"  {task_names[t]} {tasks[t][i]} saw {val!r}")
    lines.append(f"no order of the operations gives that ({ops}); allowed:")
    for a in sorted(allowed, key=repr):
        a_seen = seen_in(a)
        saw = "; ".join(f"{task_names[t]} saw {v!r}" for (t, _), v in sorted(a_seen.items()))
        lines.append(f"  {cells(a)} (i_size {a[0][0]})" + (f"; {saw}" if saw else ""))
    return "\n".join(lines)


def _explain(name, page, got, allowed, tasks, task_names) -> str:
    ops = "; ".join(f"{task_names[t]}: " + ", ".join(str(op) for op in ops)
                    for t, ops in enumerate(tasks) if ops)
    size, data, seen = got
    lines = [f"page {name}:{page} ends as {list(data)} (i_size {size})"]
    for (t, i), val in seen:
        lines.append(f"  {task_names[t]} {tasks[t][i]} saw {val!r}")
    lines.append(f"no order of the operations gives that ({ops}); allowed:")
    for a_size, a_data, a_seen in sorted(allowed, key=repr):
        extra = ", ".join(f"{task_names[t]} saw {v!r}" for (t, _), v in a_seen
                          if isinstance(tasks[t][_], Load | Store | Read | DirectRead
                                                       | ReadIntoMapping | WriteFromMapping))
        lines.append(f"  {list(a_data)} (i_size {a_size})" + (f"; {extra}" if extra else ""))
    return "\n".join(lines)
