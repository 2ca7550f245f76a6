"""PCT, probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte,
ASPLOS 2010). Each execution gives the tasks random distinct priorities and picks d-1
random change points; the highest-priority runnable task always runs, and at the i-th
change point the task about to run drops to priority i, below every initial one. A bug of
depth d is found with probability at least 1/(n k^(d-1)) per execution."""

from __future__ import annotations

import random
from collections.abc import Sequence

from .engine import Chooser, ExecutionRecord, ExecutionView


class PCT:
    name = "pct"

    def __init__(self, seed: int = 0, depth: int = 3, executions: int = 1000) -> None:
        if depth < 1:
            raise ValueError("PCT depth must be at least 1")
        self.seed, self.depth, self.executions = seed, depth, executions
        self._rng = random.Random(seed)
        self._runs = 0
        self._k = 50  # estimated steps per execution; grows to the longest seen

    def next_execution(self) -> Chooser | None:
        if self._runs >= self.executions:
            return None
        self._runs += 1
        points = sorted(self._rng.sample(range(1, self._k + 1), min(self.depth - 1, self._k)))
        change = {p: i for i, p in enumerate(points)}  # step -> new low priority
        prio: dict[int, int] = {}
        rng = self._rng

        def choose(ex: ExecutionView, enabled: Sequence[int]) -> int:
            if not prio:
                order = list(range(len(ex.tasks)))
                rng.shuffle(order)
                for rank, t in enumerate(order):
                    prio[t] = self.depth + rank
            best = max(enabled, key=prio.__getitem__)
            step = len(ex.events)
            if step in change:
                prio[best] = change[step]
                best = max(enabled, key=prio.__getitem__)
            return best

        return choose

    def finished(self, record: ExecutionRecord) -> None:
        self._k = max(self._k, len(record.events))

    @property
    def complete(self) -> bool:
        return False

    def bounds(self) -> str:
        return f"{self._runs} PCT executions, depth {self.depth}, seed {self.seed}"
