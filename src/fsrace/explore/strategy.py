"""The contract every search strategy meets.

A strategy hands out one chooser per execution, hears how the execution ended, and says
when it has nothing left to try and whether that means it covered everything. A strategy
may also say how many distinct `states` it explored, and as `checked_prefix` how many
first steps of the next execution repeat a prefix an earlier execution ran and checked
(search() then does not check them again).
"""

from __future__ import annotations

from typing import Protocol

from .engine import Chooser, ExecutionRecord


class Strategy(Protocol):
    name: str

    def next_execution(self) -> Chooser | None:
        """A chooser for the next execution, or None when the search is over."""

    def finished(self, record: ExecutionRecord) -> None:
        """Hear how the execution ended."""

    @property
    def complete(self) -> bool:
        """True once the strategy has covered every execution it set out to cover."""

    def bounds(self) -> str:
        """What the search covered, in words (for reports)."""
