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


def random_program(seed: int, tasks: int = 3, steps: int = 4, objects: int = 2,
                   locks: int = 1, kernel_locks: bool = False) -> Program:
    """A random program of reads, writes, mutex and rwsem sections and waits, for
    testing the explorer against itself (the same seed always gives the same program).

    With `kernel_locks`, the sections use the model's own fair rwsem (a queued writer holds
    back readers) and trylocks instead of the plain primitives below."""
    if kernel_locks:
        return _random_kernel_lock_program(seed, tasks, steps, objects, locks)
    import random

    from .step import ACQ_S, REL_S, WAIT

    rng = random.Random(seed)
    owner: dict[str, object] = {}
    readers: dict[str, int] = {}
    plans = []
    for _ in range(tasks):
        plan: list[tuple[str, str]] = []
        while len(plan) < steps:
            r = rng.random()
            obj = f"x{rng.randrange(objects)}"
            room = steps - len(plan)  # a locked section takes three steps
            if r < 0.45 or not locks or (r < 0.9 and room < 3):
                plan.append(("w" if rng.random() < 0.5 else "r", obj))
            elif r < 0.75:
                lock = f"m{rng.randrange(locks)}"
                plan += [("lock", lock), ("w", obj), ("unlock", lock)]
            elif r < 0.9:
                lock = f"m{rng.randrange(locks)}"
                plan += [("rlock", lock), ("r", obj), ("runlock", lock)]
            else:
                plan.append(("wait", f"m{rng.randrange(locks)}"))
        plans.append(plan)

    def body(i: int, plan):
        for op, obj in plan:
            if op == "r":
                yield Step(f"read {obj}", (touches(obj, READ),))
            elif op == "w":
                yield Step(f"write {obj}", (touches(obj, WRITE),))
            elif op == "lock":
                yield Step(f"lock {obj}", (touches(obj, ACQ),),
                           enabled=lambda o=obj: owner.get(o) is None and not readers.get(o))
                owner[obj] = i
            elif op == "unlock":
                yield Step(f"unlock {obj}", (touches(obj, REL),))
                owner[obj] = None
            elif op == "rlock":
                yield Step(f"down_read {obj}", (touches(obj, ACQ_S),),
                           enabled=lambda o=obj: owner.get(o) is None)
                readers[obj] = readers.get(obj, 0) + 1
            elif op == "runlock":
                yield Step(f"up_read {obj}", (touches(obj, REL_S),))
                readers[obj] -= 1
            else:
                yield Step(f"wait {obj}", (touches(obj, WAIT),),
                           enabled=lambda o=obj: owner.get(o) is None)

    return Program([Task(f"T{i}", body(i, p)) for i, p in enumerate(plans)])


def _random_kernel_lock_program(seed: int, tasks: int, steps: int, objects: int,
                                locks: int) -> Program:
    import random

    from ..kernel.locking import down_read, down_read_trylock, down_write, up_read, up_write
    from ..kernel.structs import Current, RWSem

    rng = random.Random(seed)
    sems = [RWSem(f"sem{i}") for i in range(max(1, locks))]
    plans = []
    for _ in range(tasks):
        plan: list[tuple[str, object]] = []
        while len(plan) < steps:
            r = rng.random()
            obj = f"x{rng.randrange(objects)}"
            sem = rng.choice(sems)
            if r < 0.4 or steps - len(plan) < 3:
                plan.append(("w" if rng.random() < 0.5 else "r", obj))
            elif r < 0.65:
                plan += [("down_write", sem), ("w", obj), ("up_write", sem)]
            elif r < 0.9:
                plan += [("down_read", sem), ("r", obj), ("up_read", sem)]
            else:
                plan += [("trylock", sem), ("r", obj), ("unlock_if_held", sem)]
        plans.append(plan)

    def body(i: int, plan):
        cur = Current(f"T{i}", None)
        held = False
        for op, arg in plan:
            if op == "r":
                yield Step(f"read {arg}", (touches(arg, READ),))
            elif op == "w":
                yield Step(f"write {arg}", (touches(arg, WRITE),))
            elif op == "down_write":
                yield from down_write(cur, arg)
            elif op == "up_write":
                yield from up_write(cur, arg)
            elif op == "down_read":
                yield from down_read(cur, arg)
            elif op == "up_read":
                yield from up_read(cur, arg)
            elif op == "trylock":
                held = yield from down_read_trylock(cur, arg)
            elif held:
                held = False
                yield from up_read(cur, arg)

    return Program([Task(f"T{i}", body(i, p)) for i, p in enumerate(plans)])
