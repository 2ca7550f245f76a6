"""Happens-before of one execution, by vector clocks, built step by step.

Program order and conflicts (`step.conflicting`) order steps. For each step the tracker
keeps its direct predecessors and its vector clock, and for each object the last step that
changed it and the steps that observed it since. `truncate(n)` forgets every step from
n on, so a search that replays a prefix keeps the prefix's analysis.
"""

from __future__ import annotations

from .step import CHANGES, Access

_MISSING = object()


class HappensBefore:
    def __init__(self, ntasks: int) -> None:
        self.ntasks = ntasks
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

    def direct_preds(self, task: int, acc: tuple[Access, ...]) -> list[int]:
        """The steps a step of `task` touching `acc` would follow directly, if it ran now."""
        preds = []
        last = self.task_last.get(task)
        if last is not None:
            preds.append(last)
        for obj, kind in acc:
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
        undo: list[tuple] = [("task", task, self.task_last.get(task, _MISSING))]
        self.tasks.append(task)
        self.accs.append(acc)
        self.preds.append(preds)
        self.clock.append(clock)
        self.seq.append(clock[task])
        self.task_last[task] = k
        for obj, kind in acc:
            undo.append(("obj", obj, self.last_change.get(obj, _MISSING),
                         self.observed.get(obj, _MISSING)))
            if kind in CHANGES:
                self.last_change[obj] = k
                self.observed[obj] = []
            else:
                self.observed[obj] = [*self.observed.get(obj, ()), k]
        self._undo.append(undo)

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


def _restore(d: dict, key, old) -> None:
    if old is _MISSING:
        d.pop(key, None)
    else:
        d[key] = old
