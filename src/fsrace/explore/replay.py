"""Replaying a schedule, as one more strategy: one execution that follows the schedule
exactly (engine.replay_chooser), gathered by search() like any other search's, so a
replay prints in check's schema. It covers that one schedule, so it never says `safe`."""

from __future__ import annotations

from .engine import Chooser, ExecutionRecord, replay_chooser
from .schedule import Schedule


class Replay:
    name = "replay"
    complete = False  # one schedule says nothing of the others

    def __init__(self, schedule: Schedule, keep_states: bool = False) -> None:
        self.schedule = schedule
        self.keep_states = keep_states  # the record carries the state after every step
        self.record: ExecutionRecord | None = None  # the execution, once it ran
        self._given = False

    def next_execution(self) -> Chooser | None:
        if self._given:
            return None
        self._given = True
        return replay_chooser(self.schedule)

    def finished(self, record: ExecutionRecord) -> None:
        self.record = record

    def bounds(self) -> str:
        return "the one schedule given"
