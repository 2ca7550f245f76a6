"""A schedule is the sequence of task indices an execution ran, one per step.

It prints as run-length tokens, `0:5,1:3,0,2:4` (task 0 five steps, task 1 three, ...), and
parses back exactly, so a printed schedule replays the same execution on any machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"^(\d+)(?::(\d+))?$")
MAX_STEPS = 1_000_000  # far beyond any execution of the model (the step bound is 400)


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True)
class Schedule:
    choices: tuple[int, ...]

    def __str__(self) -> str:
        tokens: list[str] = []
        i = 0
        while i < len(self.choices):
            j = i
            while j < len(self.choices) and self.choices[j] == self.choices[i]:
                j += 1
            run = j - i
            tokens.append(f"{self.choices[i]}:{run}" if run > 1 else str(self.choices[i]))
            i = j
        return ",".join(tokens)

    def __len__(self) -> int:
        return len(self.choices)

    @property
    def preemptions(self) -> int:
        """Task switches in the schedule (an upper bound on preemptions)."""
        return sum(1 for a, b in zip(self.choices, self.choices[1:], strict=False) if a != b)

    @classmethod
    def parse(cls, text: str) -> Schedule:
        text = text.strip()
        if not text:
            return cls(())
        choices: list[int] = []
        for token in text.split(","):
            m = _TOKEN.match(token.strip())
            if not m:
                raise ScheduleError(
                    f"bad schedule token {token!r}: expected TASK or TASK:COUNT, "
                    "as in '0:5,1:3,0,2:4'"
                )
            task, count = int(m.group(1)), int(m.group(2) or 1)
            if count < 1:
                raise ScheduleError(f"bad count in schedule token {token!r}: must be >= 1")
            if len(choices) + count > MAX_STEPS:
                raise ScheduleError(f"the schedule runs past {MAX_STEPS:,} steps; no "
                                    "execution is that long")
            choices.extend([task] * count)
        return cls(tuple(choices))
