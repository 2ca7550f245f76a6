"""Iterative preemption bounding (CHESS, Musuvathi and Qadeer, PLDI 2007): every schedule
with no preemption, then every one with at most 1, then 2, ... A preemption switches away
from a task that could have run on; switching when the running task blocks or ends is free.
Bounds are re-explored from scratch, so a schedule of bound b runs once per bound >= b."""

from __future__ import annotations

from collections.abc import Sequence

from .engine import PRUNED, Chooser, ExecutionRecord, ExecutionView


class PreemptionBounded:
    name = "bounded"

    def __init__(self, max_bound: int = 3) -> None:
        self.max_bound = max_bound
        self.bound = 0
        # Per depth: the tasks to try (the running task first), which one is being tried,
        # preemptions spent before this choice, and whether switching here preempts.
        self._stack: list[list] = []
        self._cut = False  # did this bound leave choices out?
        self._started = False
        self._complete = False
        self.reached = -1  # highest bound fully explored

    def next_execution(self) -> Chooser | None:
        if self._started and not self._backtrack():
            self.reached = self.bound
            if not self._cut:
                self._complete = True
                return None
            if self.bound >= self.max_bound:
                return None
            self.bound += 1
            self._cut = False
        self._started = True
        return self._choose

    def _backtrack(self) -> bool:
        while self._stack:
            node = self._stack[-1]
            if node[1] + 1 < len(node[0]):
                node[1] += 1
                return True
            self._stack.pop()
        return False

    @staticmethod
    def _spent(node: list) -> int:
        options, k, before, preempts = node
        return before + (1 if preempts and k > 0 else 0)

    def _choose(self, ex: ExecutionView, enabled: Sequence[int]) -> int:
        depth = len(ex.events)
        if depth < len(self._stack):
            node = self._stack[depth]
            return node[0][node[1]]
        before = self._spent(self._stack[-1]) if self._stack else 0
        last = ex.events[-1].task if ex.events else -1
        preempts = last in enabled
        if preempts:
            options = [last]
            if before < self.bound:
                options += [t for t in enabled if t != last]
            elif len(enabled) > 1:
                self._cut = True
        else:
            options = list(enabled)
        self._stack.append([options, 0, before, preempts])
        return options[0]

    def finished(self, record: ExecutionRecord) -> None:
        assert len(self._stack) == len(record.events) + (record.outcome == PRUNED)

    @property
    def complete(self) -> bool:
        return self._complete

    def bounds(self) -> str:
        return f"all schedules with at most {self.reached} preemptions"
