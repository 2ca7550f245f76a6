"""Runs one execution of a program, asking a chooser which task runs each step."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from .schedule import Schedule
from .state import FINISHED, StateEncoder, digest_parts, serialize
from .step import Failure, Program, Step, Task, conflicting


class Outcome(StrEnum):
    """How one execution ended (a string too: records print and compare as their value)."""

    DONE = "done"  # every task finished and the end checks passed
    VIOLATION = "violation"  # a check failed
    DEADLOCK = "deadlock"  # unfinished tasks, none can run
    BOUNDED = "bounded"  # stopped at the step bound
    PRUNED = "pruned"  # the chooser declined to go on (sleep-set blocked)
    CACHED = "cached"  # the execution reached a state the search has explored
    STARVATION = "starvation"  # a task retried more often than the retry bound


DONE, VIOLATION, DEADLOCK, BOUNDED = (Outcome.DONE, Outcome.VIOLATION, Outcome.DEADLOCK,
                                      Outcome.BOUNDED)
PRUNED, CACHED, STARVATION = Outcome.PRUNED, Outcome.CACHED, Outcome.STARVATION
SEEN = -1  # what a chooser returns to end an execution at an explored state


@dataclass
class Event:
    """One executed step: which task ran it and what it was."""

    task: int
    step: Step


@dataclass
class ExecutionRecord:
    schedule: Schedule
    events: list[Event]
    outcome: Outcome
    failure: Failure | None = None
    failed_at: int | None = None  # index of the event after which a check failed
    waiting: dict[str, str] = field(default_factory=dict)  # deadlock: task -> what it waits for
    task_names: list[str] = field(default_factory=list)
    task_roles: list[str] = field(default_factory=list)
    state: str = ""  # the model state when the execution stopped
    preemptions: int = 0  # switches away from a task that could have run on
    epilogue_tasks: list[int] = field(default_factory=list)
    blocked_steps: dict[int, tuple] = field(default_factory=dict)  # deadlock: task -> accesses
    starved: str = ""  # starvation: who retried what, how often
    waits: int = 0  # over all steps, how many unfinished tasks could not run at that moment
    retries: int = 0  # steps that started an operation over
    # The model's state (Program.describe_state) before the first step, then after each
    # step; recorded as the execution ran, only when run_execution was asked to keep it.
    states: list[str] = field(default_factory=list)

    def conflicting_step(self) -> int | None:
        """The latest earlier step of another task that the failing step conflicts with."""
        if self.failed_at is None:
            return None
        bad = self.events[self.failed_at]
        for j in range(self.failed_at - 1, -1, -1):
            ev = self.events[j]
            if ev.task != bad.task and conflicting(ev.step.accesses, bad.step.accesses):
                return j
        return None


class Execution:
    """A running program: the pending step of every task and the events so far."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.tasks: list[Task] = program.tasks
        self.pending: list[Step | None] = [self._advance(t) for t in self.tasks]
        self.events: list[Event] = []
        self._constants: dict[int, str] | None = None
        # Each task's encoded continuation (serialized) and the heap objects it refers to
        # (token -> object), kept until the task runs again (or always recomputed when it
        # holds shared data).
        self._continuations: list[tuple | None] = [None] * len(self.tasks)
        self._frames: list[list | None] = [None] * len(self.tasks)  # per frame, likewise

    def state_key(self) -> bytes:
        """The digest of the current state: shared data and every task's continuation."""
        prog = self.program
        if prog.state is None:
            raise TypeError("this program cannot say what its state is (Program.state)")
        if self._constants is None:
            self._constants = {id(c): f"const{n}" for n, c in enumerate(prog.state_constants)}
        enc = StateEncoder(prog.state_encoders, self._constants, prog.state_contents,
                           prog.state_stable)
        shared = prog.state(enc)
        tasks = []
        for i, task in enumerate(self.tasks):
            if self.pending[i] is None:
                tasks.append(FINISHED)
                continue
            kept = self._continuations[i]
            if kept is None:
                before = dict(enc.heap)
                enc.heap.clear()
                enc.volatile = False
                cont, self._frames[i] = enc.continuation(task.body, self._frames[i])
                kept = (serialize(cont), dict(enc.heap))  # serialized once while it waits
                enc.heap.update(before)
                if not enc.volatile:
                    self._continuations[i] = kept
            else:
                enc.heap.update(kept[1])
            tasks.append(kept[0])
        return digest_parts((serialize(shared), *tasks, serialize(enc.heap_section())))

    def kept(self) -> list | None:
        """The continuations kept at this state, for `inherit` by a later execution of
        the same prefix (None when the program cannot look its references up)."""
        if self.program.state_lookup is None:
            return None
        return [None if c is None else (c[0], tuple(c[1])) for c in self._continuations]

    def inherit(self, kept: list) -> None:
        """Take the continuations an earlier execution kept at this same state (this
        execution replayed the prefix that led there, so they still hold)."""
        lookup = self.program.state_lookup
        assert lookup is not None, "kept() gives None to a program without state_lookup"
        for i, c in enumerate(kept):
            if c is not None and self._continuations[i] is None:
                self._continuations[i] = (c[0], {t: lookup(t) for t in c[1]})

    @staticmethod
    def _advance(task: Task) -> Step | None:
        try:
            return task.body.send(None)
        except StopIteration:
            return None

    def finished(self, i: int) -> bool:
        return self.pending[i] is None

    def enabled(self) -> list[int]:
        """Tasks whose next step can run now, in task order."""
        out = []
        waiting_epilogue = []
        main_left = False
        for i, step in enumerate(self.pending):
            if step is None:
                continue
            if self.tasks[i].epilogue:
                waiting_epilogue.append(i)
                continue
            main_left = True
            if step.enabled is None or step.enabled():
                out.append(i)
        if not main_left:
            out = [i for i in waiting_epilogue if self.pending[i].can_run()]  # type: ignore[union-attr]
        return out

    def all_finished(self) -> bool:
        return all(s is None for s in self.pending)

    def run_step(self, i: int) -> Step:
        step = self.pending[i]
        assert step is not None and step.can_run(), f"task {i} cannot run"
        step.freeze()
        self.events.append(Event(i, step))
        self._continuations[i] = None
        self.pending[i] = self._advance(self.tasks[i])
        return step

    def waiting(self) -> dict[str, str]:
        """What each blocked task waits for (an epilogue task only waits its turn)."""
        out = {}
        for i, step in enumerate(self.pending):
            if step is not None and not self.tasks[i].epilogue:
                why = step.waiting_for() if step.waiting_for else "blocked"
                out[self.tasks[i].name] = f"{step.label}: {why}"
        return out

    def schedule(self) -> Schedule:
        return Schedule(tuple(e.task for e in self.events))


class ExecutionView(Protocol):
    """What a chooser sees of the running execution: it reads the events so far, the
    tasks and their pending steps, and the state, and may take over encodings an earlier
    execution of the same prefix kept; only the engine runs steps (run_execution)."""

    @property
    def events(self) -> Sequence[Event]: ...

    @property
    def tasks(self) -> Sequence[Task]: ...

    @property
    def pending(self) -> Sequence[Step | None]: ...

    def state_key(self) -> bytes: ...

    def kept(self) -> list | None: ...

    def inherit(self, kept: list) -> None: ...


Chooser = Callable[[ExecutionView, Sequence[int]], "int | None"]


def run_execution(program: Program, choose: Chooser, max_steps: int,
                  max_retries: int | None = None, checked: int = 0,
                  keep_states: bool = False) -> ExecutionRecord:
    """Run until every task finished, a check failed, a deadlock, a task retried more than
    `max_retries` times, or the step bound. The first `checked` steps repeat a prefix an
    earlier execution ran and checked: their per-step checks are not run again.
    `keep_states`: record the model's state after every step (ExecutionRecord.states), for
    the reports; a search does without."""
    ex = Execution(program)
    states = [program.describe_state()] if keep_states else None
    failure: Failure | None = None
    outcome = DONE
    preemptions = 0
    retries = [0] * len(ex.tasks)
    starved = ""
    waits = 0
    main_tasks = [i for i, t in enumerate(ex.tasks) if not t.epilogue]
    unfinished = sum(1 for t in main_tasks if ex.pending[t] is not None)
    # For a task that has retried: the tasks that could run at some step since its last
    # retry, and those that ran. A retry after which another task could run but did not
    # is the scheduler's doing (an unfair schedule): a livelock repeats under any fair
    # scheduler, so at the bound the last round of retries must have let everyone run.
    could_run: dict[int, set[int]] = {}
    ran: dict[int, set[int]] = {}
    while True:
        en = ex.enabled()
        if not en:
            if ex.all_finished():
                failure = program.check_end()
                outcome = VIOLATION if failure else DONE
            else:
                outcome = DEADLOCK
            break
        if len(ex.events) >= max_steps:
            outcome = BOUNDED
            break
        # While a main task is left, only main tasks are enabled (epilogues wait).
        if unfinished:
            waits += unfinished - len(en)
        i = choose(ex, en)
        if i is None:
            outcome = PRUNED
            break
        if i == SEEN:
            outcome = CACHED
            break
        if ex.events and i != ex.events[-1].task and ex.events[-1].task in en:
            preemptions += 1
        for t, tasks in could_run.items():
            tasks.update(en)
            ran[t].add(i)
        step = ex.run_step(i)
        if ex.pending[i] is None and not ex.tasks[i].epilogue:
            unfinished -= 1
        if step.retry:
            retries[i] += 1
            passed_over = could_run.get(i, set()) - ran.get(i, set())
            could_run[i], ran[i] = set(), set()
            if max_retries is not None and retries[i] > max_retries:
                if passed_over:
                    outcome = BOUNDED  # an unfair schedule: a task waiting its turn
                    break
                outcome = STARVATION
                starved = (f"{ex.tasks[i].name} started over {retries[i]} times "
                           f"({step.label}) without finishing")
                break
        if len(ex.events) <= checked:
            program.replayed(step)
        else:
            failure = program.check_step(step)
        if states is not None:
            states.append(program.describe_state())
        if failure:
            outcome = VIOLATION
            break
    return ExecutionRecord(
        schedule=ex.schedule(),
        events=ex.events,
        outcome=outcome,
        failure=failure,
        failed_at=len(ex.events) - 1 if failure else None,
        waiting=ex.waiting() if outcome == DEADLOCK else {},
        task_names=[t.name for t in ex.tasks],
        task_roles=[t.role for t in ex.tasks],
        state=program.describe_state() if outcome in (VIOLATION, DEADLOCK, STARVATION) else "",
        preemptions=preemptions,
        epilogue_tasks=[i for i, t in enumerate(ex.tasks) if t.epilogue],
        blocked_steps={i: s.accesses for i, s in enumerate(ex.pending) if s is not None}
        if outcome == DEADLOCK else {},
        starved=starved,
        waits=waits,
        retries=sum(retries),
        states=states or [],
    )


class ReplayError(ValueError):
    pass


def replay_chooser(schedule: Schedule) -> Chooser:
    """Follow a schedule exactly; a choice that is not enabled is an error."""

    def choose(ex: ExecutionView, enabled: Sequence[int]) -> int | None:
        k = len(ex.events)
        if k >= len(schedule.choices):
            raise ReplayError(
                f"schedule ends after {k} steps but tasks "
                f"{[ex.tasks[i].name for i in enabled]} can still run"
            )
        want = schedule.choices[k]
        if want not in enabled:
            names = ", ".join(f"{i} ({ex.tasks[i].name})" for i in enabled)
            raise ReplayError(
                f"step {k}: schedule picks task {want} but only {names} can run; "
                "the schedule belongs to another scenario, protocol or parameters"
            )
        return want

    return choose
