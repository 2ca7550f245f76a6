"""Several strategies side by side: executions are handed out round robin, so a race is
found as soon as the fastest strategy for it would find it, and the run stays
reproducible. The portfolio is complete when its complete member is."""

from __future__ import annotations

from .engine import Chooser, ExecutionRecord
from .strategy import Strategy


class Portfolio:
    name = "portfolio"

    def __init__(self, members: list[Strategy]) -> None:
        self.members = list(members)
        self._active = list(self.members)
        self._turn = 0
        self.current: Strategy | None = None

    def next_execution(self) -> Chooser | None:
        while self._active:
            member = self._active[self._turn % len(self._active)]
            chooser = member.next_execution()
            if chooser is None:
                self._active.remove(member)
                if member.complete:
                    self._active = []  # one member covered everything: nothing is left
                continue
            self._turn += 1
            self.current = member
            return chooser
        return None

    def finished(self, record: ExecutionRecord) -> None:
        assert self.current is not None
        self.current.finished(record)

    @property
    def complete(self) -> bool:
        return any(m.complete for m in self.members)

    @property
    def states(self) -> int | None:
        """Distinct states of the member that keeps them (a stateful search), if any."""
        for m in self.members:
            n = getattr(m, "states", None)
            if n is not None:
                return n
        return None

    @property
    def checked_prefix(self) -> int:
        """Steps the next execution replays that its member has checked already."""
        return getattr(self.current, "checked_prefix", 0)

    def bounds(self) -> str:
        return "; ".join(f"{m.name}: {m.bounds()}" for m in self.members)

    @property
    def current_name(self) -> str:
        return self.current.name if self.current else self.name
