"""Naive exhaustive search: every interleaving, depth first. Exponential; it exists to
cross-check DPOR on small programs."""

from __future__ import annotations

from collections.abc import Sequence

from .engine import Chooser, ExecutionRecord, ExecutionView


class Exhaustive:
    name = "exhaustive"

    def __init__(self) -> None:
        # One entry per depth: the enabled tasks there and the index of the one being tried.
        self._stack: list[tuple[list[int], int]] = []
        self._started = False
        self._complete = False

    def next_execution(self) -> Chooser | None:
        if self._started and not self._backtrack():
            self._complete = True
            return None
        self._started = True
        return self._choose

    def _backtrack(self) -> bool:
        while self._stack:
            enabled, k = self._stack[-1]
            if k + 1 < len(enabled):
                self._stack[-1] = (enabled, k + 1)
                return True
            self._stack.pop()
        return False

    def _choose(self, ex: ExecutionView, enabled: Sequence[int]) -> int:
        depth = len(ex.events)
        if depth < len(self._stack):
            known, k = self._stack[depth]
            assert list(enabled) == known, "program is not deterministic"
            return known[k]
        self._stack.append((list(enabled), 0))
        return enabled[0]

    def finished(self, record: ExecutionRecord) -> None:
        # The stack holds exactly one node per step taken.
        assert len(self._stack) == len(record.events)

    @property
    def complete(self) -> bool:
        return self._complete

    def bounds(self) -> str:
        return "every interleaving"
