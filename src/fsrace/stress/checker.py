"""Jepsen-style checking of a stress history, slot by slot.

Each 8-byte slot of the file is a register. Its history holds the operations that wrote it
(a store or pwrite of the slot, a direct write of its page: a stamp; a punch, zero range
or truncate over it: 0) and those that read it (a load, a pread or direct read of its page,
the final reads), each with the real-time interval from invocation to return. The history
is correct when some order of those operations, each placed at one instant inside its
interval, gives every read the value it saw: linearizability of a register (Herlihy &
Wing). The history is cut into stretches of overlapping operations, each searched by
Lowe's just-in-time linearisation; the Wing-Gong search over the whole history, with
Lowe's memoisation as Porcupine and Knossos use it, is the reference the tests compare
the cut search against. An operation that never returned (its worker was killed) may take
effect at any time after it was invoked, or never.

A write may also store one of several values: a collapse, insert, copy or clone moves into
a slot whatever its source slot held at some instant while the operation ran, and that is
a set (see `window_values`). Checking each slot with such a set, rather than all slots under
one order, can miss a violation whose proof needs two slots at once, but never flags a
history a correct kernel can produce. The commonest such violation, a store lost across a
collapse or insert, is checked on both slots at once: `Stretches` lets the caller search a
slot's history again with some operations narrowed to impose one order of a store and a
shift on both slots (stress/run.py, `_one_order`).
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

INF = float("inf")


@dataclass(frozen=True)
class Access:
    inv: float
    resp: float
    write: bool
    value: int  # what a read saw, what a write stored (the first of `choices`)
    who: str  # for reports: "W1 op 17 store page 3 slot 5"
    choices: tuple[int, ...] = ()  # a write that stores one of these (none: `value`)

    @property
    def outcomes(self) -> tuple[int, ...]:
        return self.choices or (self.value,)


def choice_write(inv: float, resp: float, values, who: str) -> Access:
    """A write that stores one of `values` (at least one)."""
    vs = tuple(sorted(set(values)))
    return Access(inv, resp, True, vs[0], who, vs)


def window_values(writes: Sequence[Access], initial: int, inv: float, resp: float,
                  exclude: Access | None = None) -> set[int]:
    """The values a register with these writes may hold at some instant in [inv, resp]:
    those of every write that may have taken effect by `resp` and was not certainly
    overwritten before `inv` (by a write that began after it returned and returned itself
    before `inv`), and the initial value if no write certainly took effect before `inv`."""
    done_before = [a for a in writes if a.resp < inv and a is not exclude]
    last_start = max((a.inv for a in done_before), default=None)
    out = set() if done_before else {initial}
    for a in writes:
        if a is exclude or a.inv > resp:
            continue
        if last_start is None or a.resp >= last_start:
            out.update(a.outcomes)
    return out


def linearizable_wgl(history: Sequence[Access], initial: int) -> bool:
    """True if some real-time-respecting order of `history` explains every read: the
    Wing-Gong search over the whole history (the reference the segmented check is tested
    against)."""
    n = len(history)
    if n == 0:
        return True
    # Entries: (time, is_return, op). Calls sort before returns at the same instant.
    events = sorted([(a.inv, 0, i) for i, a in enumerate(history)]
                    + [(a.resp, 1, i) for i, a in enumerate(history)])
    # A doubly linked list over the events, so linearized operations can be lifted out.
    size = len(events)
    call_at, ret_at = [0] * n, [0] * n
    for pos, (_, is_ret, i) in enumerate(events):
        (ret_at if is_ret else call_at)[i] = pos + 1  # node 0 is the head sentinel
    kind = [0] * (size + 1)
    opof = [0] * (size + 1)
    for pos, (_, is_ret, i) in enumerate(events):
        kind[pos + 1], opof[pos + 1] = is_ret, i
    nxt = list(range(1, size + 2))  # node k -> k + 1; size + 1 is the end
    prv = [0] + list(range(size))
    end = size + 1

    def lift(i: int) -> None:
        for node in (call_at[i], ret_at[i]):
            nxt[prv[node]] = nxt[node]
            if nxt[node] != end:
                prv[nxt[node]] = prv[node]

    def unlift(i: int) -> None:
        for node in (ret_at[i], call_at[i]):
            nxt[prv[node]] = node
            if nxt[node] != end:
                prv[nxt[node]] = node

    seen: set[tuple[int, int]] = set()
    stack: list[tuple[int, int, int]] = []  # (op, state before it, which outcome)
    state, done = initial, 0
    node, first_choice = nxt[0], 0
    while nxt[0] != end:
        if node == end:
            return False
        if not kind[node]:
            i = opof[node]
            a = history[i]
            outcomes = a.outcomes if a.write else (state,) if a.value == state else ()
            for c in range(first_choice, len(outcomes)):
                key = (done | (1 << i), outcomes[c])
                if key not in seen:
                    seen.add(key)
                    stack.append((i, state, c))
                    state, done = outcomes[c], done | (1 << i)
                    lift(i)
                    node, first_choice = nxt[0], 0
                    break
            else:
                node, first_choice = nxt[node], 0
        else:
            if not stack:
                return False
            i, state, c = stack.pop()
            done &= ~(1 << i)
            unlift(i)
            node, first_choice = call_at[i], c + 1  # the same operation's next outcome
    return True


def linearizable(history: Sequence[Access], initial: int) -> bool:
    """True if some real-time-respecting order of `history` explains every read."""
    return first_unexplained(history, initial) is None


def first_unexplained(history: Sequence[Access], initial: int) -> tuple[int, int] | None:
    """None if the history is linearizable; else (i, j): the operations in time order
    (by invocation) from i to j form the first stretch no possible value before it can
    explain."""
    ops, maybe = _split(history)
    for i, j, _, states in _scan(ops, maybe, {initial}, 0, 0):
        if not states:
            return i, j
    return None


def shown_at(history: Sequence[Access], initial: int) -> float | None:
    """None if the history is linearizable; else the instant by which the first stretch
    nothing explains had returned: when the run had shown the violation."""
    ops = sorted((a for a in history if a.resp != INF), key=lambda a: a.inv)
    where = first_unexplained(history, initial)
    return None if where is None else max(a.resp for a in ops[where[0]:where[1] + 1])


def _split(history: Sequence[Access]) -> tuple[list[Access], list[tuple[float, int]]]:
    """The operations that returned, by invocation, and (invocation, value) of every value
    a write that never returned may store."""
    ops = sorted((a for a in history if a.resp != INF), key=lambda a: a.inv)
    maybe = sorted((a.inv, v) for a in history if a.resp == INF and a.write
                   for v in a.outcomes)
    return ops, maybe


def _scan(ops: Sequence[Access], maybe: Sequence[tuple[float, int]], states: set[int],
          i: int, m: int):
    """From ops[i] on, with `states` the values possible before it and the first m values
    of `maybe` already landed, yield each stretch of overlapping operations as (i, j, m,
    values possible after it: a set the scan does not change later); an empty set ends
    the scan: nothing explains ops[i..j]."""
    n = len(ops)
    while i < n:
        a = ops[i]
        j, end = i, a.resp
        while j + 1 < n and ops[j + 1].inv <= end:
            j += 1
            end = max(end, ops[j].resp)
        if m < len(maybe) and maybe[m][0] <= end:
            states = set(states)  # a set yielded before is never changed
            while m < len(maybe) and maybe[m][0] <= end:
                states.add(maybe[m][1])  # a write that never returned may land here
                m += 1
        if j == i:  # most stretches are one operation
            if a.write:
                states = set(a.outcomes)
            elif a.value in states:
                states = {a.value}
            else:
                states = set()
        else:
            states = _stretch(ops[i:j + 1], states)
        if states and m:
            states.update(v for _, v in maybe[:m])
        yield i, j, m, states
        if not states:
            return
        i = j + 1


class Stretches:
    """A linearizable register history cut into stretches of overlapping operations, with
    the values possible between them, so that a variant which only narrows some operations
    (or lets a move store fewer values) can be checked from the first stretch it changes
    until its possible values agree with the original's again (`holds_with`). Two
    registers' variants under one order of two operations check that order for both."""

    def __init__(self, history: Sequence[Access], initial: int) -> None:
        self.ops, self.maybe = _split(history)
        self.invs = [a.inv for a in self.ops]
        # Per stretch: its first operation, the values possible before it (equal sets
        # shared: a slot's history has tens of thousands of stretches and few distinct
        # sets), and how many pending values had landed by then.
        self.starts = array("l")
        self.before: list[frozenset[int]] = []
        self.landed = array("l")
        self.holds = True
        shared: dict[frozenset[int], frozenset[int]] = {}
        states, m = frozenset({initial}), 0
        for i, _, m_after, after in _scan(self.ops, self.maybe, set(states), 0, 0):
            self.starts.append(i)
            self.before.append(shared.setdefault(states, states))
            self.landed.append(m)
            if not after:
                self.holds = False
                break
            states, m = frozenset(after), m_after

    def _index(self, a: Access) -> int:
        """Where operation a sits in `ops`."""
        k = bisect.bisect_left(self.invs, a.inv)
        while self.ops[k] is not a:
            k += 1
        return k

    def holds_with(self, changes: Sequence[tuple[Access, Access]]) -> bool:
        """Whether the history stays linearizable with each of its operations `old` of
        `changes` replaced by `new` (a narrower interval, fewer outcomes)."""
        assert self.holds, "holds_with: the history itself is not linearizable"
        changed = {id(old): new for old, new in changes}
        where = [self._index(old) for old, _ in changes]
        last_old = max(where)
        k = bisect.bisect_right(self.starts, min(where)) - 1
        first = self.starts[k]
        states, m = self.before[k], self.landed[k]
        # Only the stretches up to the first that starts after every changed operation, in
        # both places, need sorting again: from there on the variant is the original.
        latest = max(a.inv for a in changed.values())
        k = bisect.bisect_right(self.starts, last_old)
        while k < len(self.starts) and self.ops[self.starts[k]].inv <= latest:
            k += 1
        stop = self.starts[k] if k < len(self.starts) else len(self.ops)
        head = sorted((changed.get(id(a), a) for a in self.ops[first:stop]),
                      key=lambda a: a.inv)
        tail = _Joined(head, self.ops, stop)
        new = {id(a) for a in changed.values()}
        last_new = max(n for n, a in enumerate(head) if id(a) in new)
        for _, j, m_after, after in _scan(tail, self.maybe, set(states), 0, m):
            if not after:
                return False
            nxt = first + j + 1
            # Past every changed operation, in both orders, the rest is the original's.
            if j >= last_new and nxt > last_old:
                k = bisect.bisect_left(self.starts, nxt)
                if (k < len(self.starts) and self.starts[k] == nxt
                        and self.before[k] == after and self.landed[k] == m_after):
                    return True  # from here on the variant is the original history
        return True


def _stretch(seg: Sequence[Access], starts: set[int]) -> set[int]:
    """The register values possible after the overlapping operations `seg`, from any of
    `starts`: every order where an operation goes first only if no other remaining one
    returned before it was invoked.

    Lowe's just-in-time linearisation: walk the calls and returns in time order, keeping
    each possible (value, operations called but not yet placed); at a return, place that
    operation after any of the others still open. A long operation (a collapse under a slow
    kernel) overlaps hundreds of loads and stores; this keeps the work to the few open at
    once."""
    events = sorted([(a.inv, 0, k) for k, a in enumerate(seg)]
                    + [(a.resp, 1, k) for k, a in enumerate(seg)])  # calls first at a tie
    configs: set[tuple[int, frozenset[int]]] = {(state, frozenset()) for state in starts}
    for _, is_return, k in events:
        if not is_return:
            a = seg[k]
            # A read that sees the current value is placed at once: reads change nothing,
            # so no order is lost by taking it as early as it may go.
            configs = {(state, open_ if not a.write and a.value == state else open_ | {k})
                       for state, open_ in configs}
            continue
        placed: set[tuple[int, frozenset[int]]] = set()
        todo = [c for c in configs if k in c[1]]
        placed.update(c for c in configs if k not in c[1])
        seen: set[tuple[int, frozenset[int]]] = set()
        while todo:
            config = todo.pop()
            if config in seen:
                continue
            seen.add(config)
            state, open_ = config
            if k not in open_:
                placed.add(config)
                continue
            for j in open_:
                b = seg[j]
                if b.write:  # open reads all wait for another value
                    for v in b.outcomes:
                        rest = open_ - {j}
                        todo.append((v, frozenset(i for i in rest
                                                  if seg[i].write or seg[i].value != v)))
        configs = placed
    return {state for state, _ in configs}


def _line(a: Access, t0: float, describe, mark: str = "") -> str:
    if a.choices:
        what = "wrote one of " + "; ".join(describe(v) for v in a.choices)
    else:
        what = f"wrote {describe(a.value)}" if a.write else f"read {describe(a.value)}"
    return (f"  {(a.inv - t0) / 1e6:9.3f} ms .. {(a.resp - t0) / 1e6:9.3f} ms  "
            f"{a.who}: {what}{mark}")


def listing(history: Sequence[Access], lo: float, hi: float, t0: float, describe,
            context: int = 4) -> str:
    """The operations that overlap [lo, hi], in time order, with `context` on each side."""
    ops = sorted((a for a in history if a.resp != INF), key=lambda a: a.inv)
    inside = [k for k, a in enumerate(ops) if a.inv <= hi and a.resp >= lo]
    if not inside:
        return "  (nothing else on this slot meanwhile)"
    first, last = max(inside[0] - context, 0), min(inside[-1] + context, len(ops) - 1)
    lines = [f"  ... {first} earlier operations"] if first else []
    lines += [_line(ops[k], t0, describe) for k in range(first, last + 1)]
    if last < len(ops) - 1:
        lines.append(f"  ... {len(ops) - 1 - last} later operations")
    return "\n".join(lines)


class _Joined(Sequence[Access]):
    """head, then rest[start:], without copying rest."""

    def __init__(self, head: list[Access], rest: list[Access], start: int) -> None:
        self.head, self.rest, self.shift = head, rest, start - len(head)

    def __len__(self) -> int:
        return len(self.rest) - self.shift

    def __getitem__(self, k):  # type: ignore[override]
        if isinstance(k, slice):
            return [self[n] for n in range(*k.indices(len(self)))]
        return self.head[k] if k < len(self.head) else self.rest[k + self.shift]


def explain(history: Sequence[Access], initial: int, t0: float, describe,
            context: int = 12) -> str:
    """The operations leading up to the first stretch nothing explains, in time order."""
    ops = sorted((a for a in history if a.resp != INF), key=lambda a: a.inv)
    where = first_unexplained(history, initial)
    lo, hi = (0, len(ops) - 1) if where is None else (max(where[0] - context, 0), where[1])
    lines = [f"  initially {describe(initial)}"] if lo == 0 else [
        f"  ... {lo} earlier operations on this slot"]
    for k in range(lo, hi + 1):
        mark = "  <- unexplained" if where and k >= where[0] else ""
        lines.append(_line(ops[k], t0, describe, mark))
    pending = [a for a in history if a.resp == INF]
    for a in pending:
        lines.append(f"  {(a.inv - t0) / 1e6:9.3f} ms .. never returned  {a.who}")
    return "\n".join(lines)
