"""Jepsen-style checking of a stress history, slot by slot.

Each 8-byte slot of the file is a register. Its history holds the operations that wrote it
(a store or pwrite of the slot, a direct write of its page: a stamp; a punch, zero range
or truncate over it: 0) and those that read it (a load, a pread or direct read of its page,
the final reads), each with the real-time interval from invocation to return. The history
is correct when some order of those operations, each placed at one instant inside its
interval, gives every read the value it saw: linearizability of a register (Herlihy &
Wing), decided by the Wing-Gong search with Lowe's memoisation, as Porcupine and Knossos do.
An operation that never returned (its worker was killed) may take effect at any time after
it was invoked, or never.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

INF = float("inf")


@dataclass(frozen=True)
class Access:
    inv: float
    resp: float
    write: bool
    value: int
    who: str  # for reports: "W1 op 17 store page 3 slot 5"


def linearizable(history: Sequence[Access], initial: int) -> bool:
    """True if some real-time-respecting order of `history` explains every read."""
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
    stack: list[tuple[int, int]] = []  # (op, state before it)
    state, done = initial, 0
    node = nxt[0]
    while nxt[0] != end:
        if node == end:
            return False
        if not kind[node]:
            i = opof[node]
            a = history[i]
            ok = a.write or a.value == state
            new_state = a.value if a.write else state
            key = (done | (1 << i), new_state)
            if ok and key not in seen:
                seen.add(key)
                stack.append((i, state))
                state, done = new_state, done | (1 << i)
                lift(i)
                node = nxt[0]
                continue
            node = nxt[node]
        else:
            if not stack:
                return False
            i, state = stack.pop()
            done &= ~(1 << i)
            unlift(i)
            node = nxt[call_at[i]]
    return True


def explain(history: Sequence[Access], initial: int, t0: float, describe) -> str:
    """The slot's operations in time order, for a violation report."""
    lines = [f"  initially {describe(initial)}"]
    for a in sorted(history, key=lambda a: (a.inv, a.resp)):
        end = "never returned" if a.resp == INF else f"{(a.resp - t0) / 1e6:9.3f} ms"
        what = f"wrote {describe(a.value)}" if a.write else f"read {describe(a.value)}"
        lines.append(f"  {(a.inv - t0) / 1e6:9.3f} ms .. {end:>12}  {a.who}: {what}")
    return "\n".join(lines)


def canonical(history: Sequence[Access], initial: int) -> tuple:
    """A key under which two slot histories that differ only in their values' names get
    the same verdict (most slots of a page share their page-wide operations)."""
    names: dict[int, int] = {0: 0}

    def name(v: int) -> int:
        return names.setdefault(v, len(names))

    return (name(initial),) + tuple((a.inv, a.resp, a.write, name(a.value)) for a in history)
