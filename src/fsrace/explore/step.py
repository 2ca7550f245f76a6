"""What a task announces before each step, and the program an execution runs.

A task is a generator. Before every step another task could observe, it yields a `Step`
naming the objects the step touches and how. The explorer may run other tasks in between;
when it resumes the generator, the code up to the next `yield` is the step's effect.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

# Access kinds. Data: READ, WRITE. Blocking objects (locks, wait conditions):
#   ACQ / REL      exclusive acquire and release
#   ACQ_S / REL_S  shared acquire and release (rwsem readers)
#   WAIT           block until no exclusive holder, hold nothing afterwards
#   TRY            a trylock: its outcome depends on every other operation on the lock
READ, WRITE = "r", "w"
ACQ, REL, ACQ_S, REL_S, WAIT, TRY = "acq", "rel", "acq_s", "rel_s", "wait", "try"

# For ordering (happens-before, trace identity) an access either only observes the object
# or changes it; two accesses of one object are ordered unless both only observe it.
OBSERVES = frozenset({READ, ACQ_S, REL_S, WAIT})
CHANGES = frozenset({WRITE, ACQ, REL, TRY})
KINDS = OBSERVES | CHANGES

Access = tuple[str, str]  # (object name, kind)


def touches(obj: str, kind: str) -> Access:
    assert kind in KINDS, kind
    return (obj, kind)


def conflicting(a: tuple[Access, ...], b: tuple[Access, ...]) -> bool:
    """Whether two steps touch one object and at least one of them changes it."""
    for obj, kind in a:
        for obj2, kind2 in b:
            if obj == obj2 and (kind in CHANGES or kind2 in CHANGES):
                return True
    return False


class Step:
    """One atomic step: a label (the kernel function it stands for) and its footprint.

    `retry` marks a step that starts an operation over without progress (a fault retried
    after the page went away); a task that retries too often is reported as starving.
    `enabled` is None for a step that can always run; otherwise the step is blocked while it
    returns False, and `waiting_for` says on what, for deadlock reports. The task may set
    `note` after the step ran to say what happened.

    A step whose footprint depends on the state (which blocks a write goes to) passes
    `footprint`, a function of the current state: until the step runs, `accesses` is what
    it would touch if it ran now; when it runs, the engine freezes it. The function may
    only read state that the footprint itself declares.
    """

    __slots__ = ("label", "_accesses", "enabled", "waiting_for", "note", "footprint", "retry")

    def __init__(
        self,
        label: str,
        accesses: tuple[Access, ...] = (),
        enabled: Callable[[], bool] | None = None,
        waiting_for: Callable[[], str] | None = None,
        footprint: Callable[[], tuple[Access, ...]] | None = None,
        retry: bool = False,
    ) -> None:
        self.label = label
        self._accesses = accesses
        self.enabled = enabled
        self.waiting_for = waiting_for
        self.footprint = footprint
        self.retry = retry  # the task starts its operation over (counted for starvation)
        self.note = ""

    @property
    def accesses(self) -> tuple[Access, ...]:
        if self.footprint is not None:
            return self.footprint()
        return self._accesses

    def freeze(self) -> None:
        """Fix the footprint to what the step touches as it runs."""
        if self.footprint is not None:
            self._accesses = self.footprint()
            self.footprint = None

    def __reduce__(self):
        """A step crosses to another process as what it recorded: label, footprint, note
        and retry (its `enabled` and `footprint` functions belong to the running program)."""
        return (_recorded_step, (self.label, self.accesses, self.note, self.retry))

    def can_run(self) -> bool:
        return self.enabled is None or self.enabled()

    def __repr__(self) -> str:
        return f"Step({self.label!r})"


def _recorded_step(label: str, accesses: tuple[Access, ...], note: str, retry: bool) -> Step:
    step = Step(label, accesses, retry=retry)
    step.note = note
    return step


TaskBody = Generator[Step, None, None]


@dataclass
class Task:
    """A named generator of steps. An epilogue task runs only after all others finished."""

    name: str
    body: TaskBody
    role: str = ""
    epilogue: bool = False


@dataclass(frozen=True)
class Failure:
    """A named property that did not hold, with a message for the user."""

    name: str
    meaning: str
    message: str


@dataclass
class Program:
    """Everything one execution needs: fresh tasks and the checks to run as it goes.

    `check_step` runs after every step and `check_end` once all tasks finished; both return a
    Failure or None. A step that repeats a prefix an earlier execution ran and checked
    (deterministic, so it passes again) is passed to `replayed` instead of `check_step`.
    `describe_state` renders the model state for a report.

    A stateful search also needs the state as a value (fsrace.explore.state): `state`
    encodes the data the tasks share, `state_encoders` and `state_contents` say how the
    program's own types held by tasks are encoded, and `state_constants` lists objects
    that never change (encoded by a token).
    """

    tasks: list[Task]
    check_step: Callable[[Step], Failure | None] = lambda step: None
    check_end: Callable[[], Failure | None] = lambda: None
    describe_state: Callable[[], str] = lambda: ""
    replayed: Callable[[Step], None] = lambda step: None
    extra: dict = field(default_factory=dict)
    state: Callable[[Any], Any] | None = None
    state_encoders: dict = field(default_factory=dict)
    state_contents: dict = field(default_factory=dict)
    state_constants: tuple = ()
    # What a reference token (StateEncoder.refer) stands for in this execution: lets an
    # execution reuse the encodings an earlier one made along the same prefix.
    state_lookup: Callable[[Any], Any] | None = None
    # Types whose encoding stays valid while a task holding them waits: immutable values,
    # and objects encoded by name or reference (their contents live in the shared or heap
    # section). Lets the encoder reuse a waiting frame's encoding.
    state_stable: frozenset = frozenset()
