"""Trace identity: two executions are the same trace when they order every pair of
conflicting steps the same way (a Mazurkiewicz trace). The fingerprint hashes the trace's
Foata normal form, which all its linearizations share."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .engine import Event
from .step import CHANGES


def foata_levels(events: Sequence[Event]) -> list[int]:
    """Level of each event: one more than the highest level it must follow."""
    task_level: dict[int, int] = {}
    last_change: dict[str, int] = {}
    observe_max: dict[str, int] = {}
    levels = []
    for ev in events:
        level = task_level.get(ev.task, 0)
        for obj, kind in ev.step.accesses:
            level = max(level, last_change.get(obj, 0))
            if kind in CHANGES:
                level = max(level, observe_max.get(obj, 0))
        level += 1
        for obj, kind in ev.step.accesses:
            if kind in CHANGES:
                last_change[obj] = level
                observe_max[obj] = 0
            else:
                observe_max[obj] = max(observe_max.get(obj, 0), level)
        task_level[ev.task] = level
        levels.append(level)
    return levels


def fingerprint(events: Sequence[Event]) -> str:
    levels = foata_levels(events)
    # Within a task, events are totally ordered, so (level, task) identifies an event.
    canon = sorted((lv, ev.task, ev.step.label) for lv, ev in zip(levels, events, strict=False))
    return hashlib.blake2b(repr(canon).encode(), digest_size=12).hexdigest()
