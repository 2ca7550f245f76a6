"""Seeded random search: each execution picks uniformly among the runnable tasks."""

from __future__ import annotations

import random
from collections.abc import Sequence

from .engine import Chooser, ExecutionRecord, ExecutionView


class RandomWalk:
    name = "random"

    def __init__(self, seed: int = 0, executions: int = 1000) -> None:
        self.seed = seed
        self.executions = executions
        self._rng = random.Random(seed)
        self._runs = 0

    def next_execution(self) -> Chooser | None:
        if self._runs >= self.executions:
            return None
        self._runs += 1
        return self._choose

    def _choose(self, ex: ExecutionView, enabled: Sequence[int]) -> int:
        return enabled[self._rng.randrange(len(enabled))]

    def finished(self, record: ExecutionRecord) -> None:
        pass

    @property
    def complete(self) -> bool:
        return False  # sampling never proves anything

    def bounds(self) -> str:
        return f"{self._runs} random executions, seed {self.seed}"
