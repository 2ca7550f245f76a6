"""Happens-before of one execution, by vector clocks, built step by step.

Program order and conflicts (`step.conflicting`) order steps. For each step the tracker
keeps its direct predecessors and its vector clock, and for each object the last step that
changed it and the steps that observed it since. `truncate(n)` forgets every step from
n on, so a search that replays a prefix keeps the prefix's analysis.

The race rules both DPOR searches apply to it live here too: which conflicts can be
reversed, and, for locks, the step that opened the critical section a release closed.
"""

from __future__ import annotations

from collections.abc import Iterator

from .step import ACQ, ACQ_S, CHANGES, REL, REL_S, TRY, WAIT, Access, conflicting

ACQUIRES = frozenset({ACQ, ACQ_S, WAIT})
RELEASES = frozenset({REL, REL_S})
OPENS = frozenset({ACQ, ACQ_S, TRY})  # what a release can close

_MISSING = object()


class HappensBefore:
    def __init__(self, ntasks: int, undo: bool = True) -> None:
        self.ntasks = ntasks
        self.keep_undo = undo  # False: a one-off analysis, never truncated
        self.tasks: list[int] = []
        self.accs: list[tuple[Access, ...]] = []
        self.clock: list[list[int]] = []
        self.seq: list[int] = []  # the step's position in its task
        self.preds: list[list[int]] = []  # direct happens-before predecessors
        self.task_last: dict[int, int] = {}
        self.last_change: dict[str, int] = {}
        self.observed: dict[str, list[int]] = {}
        self._undo: list[list[tuple]] = []  # per step: what to restore on truncate

    def __len__(self) -> int:
        return len(self.tasks)

    def conflicts_of(self, obj: str, kind: str) -> list[int]:
        """The steps an access (obj, kind) would follow directly: the last change of obj,
        and if it changes obj, the observations since."""
        out = []
        ch = self.last_change.get(obj)
        if ch is not None:
            out.append(ch)
        if kind in CHANGES:
            out.extend(self.observed.get(obj, ()))
        return out

    def direct_preds(self, task: int, acc: tuple[Access, ...]) -> list[int]:
        """The steps a step of `task` touching `acc` would follow directly, if it ran now."""
        last = self.task_last.get(task)
        preds = [] if last is None else [last]
        for obj, kind in acc:  # conflicts_of, inlined: this runs for every step replayed
            ch = self.last_change.get(obj)
            if ch is not None:
                preds.append(ch)
            if kind in CHANGES:
                preds.extend(self.observed.get(obj, ()))
        return preds

    def clock_of(self, task: int, preds: list[int]) -> list[int]:
        clock = [0] * self.ntasks
        for j in preds:
            cj = self.clock[j]
            for t in range(self.ntasks):
                if cj[t] > clock[t]:
                    clock[t] = cj[t]
        last = self.task_last.get(task)
        clock[task] = (self.seq[last] if last is not None else 0) + 1
        return clock

    def add(self, task: int, acc: tuple[Access, ...]) -> None:
        k = len(self.tasks)
        preds = self.direct_preds(task, acc)
        clock = self.clock_of(task, preds)
        undo = self.keep_undo
        if undo:  # what truncate() puts back, restored in reverse
            self._undo.append([("task", task, self.task_last.get(task, _MISSING))] + [
                ("obj", obj, self.last_change.get(obj, _MISSING),
                 self.observed.get(obj, _MISSING)) for obj, _ in acc])
        self.tasks.append(task)
        self.accs.append(acc)
        self.preds.append(preds)
        self.clock.append(clock)
        self.seq.append(clock[task])
        self.task_last[task] = k
        for obj, kind in acc:
            if kind in CHANGES:
                self.last_change[obj] = k
                self.observed[obj] = []
            elif undo:  # a new list: the undo record keeps the old one
                self.observed[obj] = [*self.observed.get(obj, ()), k]
            else:
                self.observed.setdefault(obj, []).append(k)

    def truncate(self, n: int) -> None:
        """Forget the steps from position n on."""
        while len(self.tasks) > n:
            for entry in reversed(self._undo.pop()):
                if entry[0] == "task":
                    _restore(self.task_last, entry[1], entry[2])
                else:
                    _restore(self.last_change, entry[1], entry[2])
                    _restore(self.observed, entry[1], entry[3])
            self.tasks.pop()
            self.accs.pop()
            self.preds.pop()
            self.clock.pop()
            self.seq.pop()

    def hb(self, i: int, clock: list[int]) -> bool:
        """Does step i happen before (or equal) the step whose clock is `clock`?"""
        return self.seq[i] <= clock[self.tasks[i]]

    def notdep(self, e: int, end: int) -> list[int]:
        """Steps after e (before `end`) that do not happen after e."""
        te, se = self.tasks[e], self.seq[e]
        return [i for i in range(e + 1, end) if self.clock[i][te] < se]


def direct_races(hb: HappensBefore, task: int, acc: tuple[Access, ...], preds: list[int],
                 skip: frozenset[int] | set[int] = frozenset()) -> Iterator[int]:
    """The earlier steps whose race with a step (task, acc), following `preds` directly,
    must be reversed: a conflicting step of another task (not in `skip`) that the step
    follows through nothing else. A release it acquires after is no race; the step races
    with the opening of the section the release closed instead (as in Nidhugg)."""
    for e in set(preds):
        if hb.tasks[e] == task or hb.tasks[e] in skip:
            continue
        if reversible(hb.accs[e], acc):
            if not any(d != e and hb.hb(e, hb.clock[d]) for d in preds):
                yield e
        else:
            for obj in lock_objects(hb.accs[e], acc):
                a = opener(hb, e, obj)
                if a is not None and not any(
                        d not in (e, a) and hb.hb(a, hb.clock[d]) for d in preds):
                    yield a


def kinds_on(acc: tuple[Access, ...], obj: str) -> set[str]:
    return {kd for o, kd in acc if o == obj}


def reversible(a: tuple[Access, ...], b: tuple[Access, ...]) -> bool:
    """Could b have run before a? Not when a releases what b acquires."""
    for obj, kind in a:
        for obj2, kind2 in b:
            if obj == obj2 and (kind in CHANGES or kind2 in CHANGES):
                if not (kind in RELEASES and kind2 in ACQUIRES):
                    return True
    return False


def lock_objects(a: tuple[Access, ...], b: tuple[Access, ...]) -> set[str]:
    """Objects a releases and b acquires."""
    return {obj for obj, kind in a if kind in RELEASES
            for obj2, kind2 in b if obj2 == obj and kind2 in ACQUIRES}


def opener(hb: HappensBefore, release: int, obj: str) -> int | None:
    """The first step of the acquisition that `release` ends: for a writer that queued
    (TRY) before it acquired, the queueing step."""
    t = hb.tasks[release]
    first = None
    for i in range(release - 1, -1, -1):
        if hb.tasks[i] != t:
            continue
        kinds = kinds_on(hb.accs[i], obj)
        if kinds & OPENS:
            first = i
        elif kinds:
            break  # an earlier release: the acquisition started after it
    return first


def is_initial(t: int, v: list) -> bool:
    """Does t's first step in v happen before nothing else in v precedes it?"""
    first = next(i for i, (vt, _) in enumerate(v) if vt == t)
    acc = v[first][1]
    return not any(conflicting(va, acc) for _, va in v[:first])


def _restore(d: dict, key, old) -> None:
    if old is _MISSING:
        d.pop(key, None)
    else:
        d[key] = old
