"""Small programs with known trace counts, used to test the explorer against itself."""

from __future__ import annotations

from .step import ACQ, READ, REL, WRITE, Program, Step, Task, touches


def _steps(*steps: Step):
    yield from steps


def readers(n: int) -> Program:
    """One writer and n readers of x: 2^n traces."""
    tasks = [Task("W", _steps(Step("write x", (touches("x", WRITE),))))]
    tasks += [Task(f"R{i}", _steps(Step("read x", (touches("x", READ),)))) for i in range(n)]
    return Program(tasks)


def lastwrite(n: int) -> Program:
    """n tasks each writing x once: n! traces."""
    return Program([Task(f"T{i}", _steps(Step("write x", (touches("x", WRITE),))))
                    for i in range(n)])


def two_writers() -> Program:
    """Two tasks each writing a then b: 4 traces."""
    def body():
        yield Step("write a", (touches("a", WRITE),))
        yield Step("write b", (touches("b", WRITE),))
    return Program([Task("T0", body()), Task("T1", body())])


def locked_counter(n: int) -> Program:
    """n tasks incrementing under one mutex: n! orders of the critical sections."""
    state = {"owner": None}

    def body(i: int):
        yield Step("lock", (touches("m", ACQ),), enabled=lambda: state["owner"] is None)
        state["owner"] = i
        yield Step("read-modify-write c", (touches("c", WRITE),))
        yield Step("unlock", (touches("m", REL),))
        state["owner"] = None

    return Program([Task(f"T{i}", body(i)) for i in range(n)])
