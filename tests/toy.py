"""Small programs with known trace counts, used to test the explorer against itself."""

from __future__ import annotations

import functools

from fsrace.explore.step import ACQ, READ, REL, WRITE, Program, Step, Task, touches


def _steps(*steps: Step):
    yield from steps


def _shared(*objs):
    """A program's `state` when its tasks share only these objects (encoded whole; a
    copy, so that the objects may also be constants a frame refers to)."""
    def state(enc):
        enc.share(*objs)
        return tuple(enc.value(type(o)(o)) for o in objs)
    return state


def _lists_in(plans: list) -> tuple:
    """Every list a plan holds, nested ones too: they never change, so a frame that holds
    one is encoded by a token for it."""
    out = [plans]
    for item in plans:
        if type(item) is list:
            out += _lists_in(item)
        elif type(item) is tuple:
            out += [x for sub in item if type(sub) is list for x in _lists_in(sub)]
    return tuple(out)


def _writes(values: dict, name: str, task: int):
    """A step writing `name`: the value names the writer and what it saw, so the final
    state depends on the order of the writes."""
    yield Step(f"write {name}", (touches(name, WRITE),))
    values[name] = (task, values.get(name))


def _reads(values: dict, name: str):
    yield Step(f"read {name}", (touches(name, READ),))
    return values.get(name)


def readers(n: int) -> Program:
    """One writer and n readers of x: 2^n traces."""
    values: dict = {}
    seen: dict = {}

    def reader(i: int):
        seen[i] = yield from _reads(values, "x")

    tasks = [Task("W", _writes(values, "x", 0))]
    tasks += [Task(f"R{i}", reader(i)) for i in range(n)]
    return Program(tasks, state=_shared(values, seen))


def lastwrite(n: int) -> Program:
    """n tasks each writing x once: n! traces."""
    values: dict = {}
    return Program([Task(f"T{i}", _writes(values, "x", i)) for i in range(n)],
                   state=_shared(values))


def two_writers() -> Program:
    """Two tasks each writing a then b: 4 traces."""
    values: dict = {}

    def body(i: int):
        yield from _writes(values, "a", i)
        yield from _writes(values, "b", i)
    return Program([Task("T0", body(0)), Task("T1", body(1))], state=_shared(values))


def locked_counter(n: int) -> Program:
    """n tasks incrementing under one mutex: n! orders of the critical sections."""
    state: dict = {"owner": None, "c": ()}

    def body(i: int):
        yield Step("lock", (touches("m", ACQ),), enabled=lambda: state["owner"] is None)
        state["owner"] = i
        yield Step("read-modify-write c", (touches("c", WRITE),))
        state["c"] += (i,)
        yield Step("unlock", (touches("m", REL),))
        state["owner"] = None

    return Program([Task(f"T{i}", body(i)) for i in range(n)], state=_shared(state))


@functools.lru_cache(maxsize=64)
def _random_plans(seed: int, tasks: int, steps: int, objects: int, locks: int,
                  branches: bool, loops: bool) -> list:
    """The plans random_program draws: the same arguments always give the same plans
    (drawn once; a search builds the program once per execution)."""
    import random

    rng = random.Random(seed)

    def plan_of(length: int, nested: bool) -> list:
        plan: list[tuple] = []
        while len(plan) < length:
            r = rng.random()
            obj = f"x{rng.randrange(objects)}"
            room = length - len(plan)  # a locked section takes three steps
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
            if branches and not nested and rng.random() < 0.2:
                plan.append(("if", obj, plan_of(2, True), plan_of(1, True)))
            if loops and locks and not nested and rng.random() < 0.15:
                plan.append(("spin", f"m{rng.randrange(locks)}", obj))
        return plan

    return [plan_of(steps, False) for _ in range(tasks)]


def random_program(seed: int, tasks: int = 3, steps: int = 4, objects: int = 2,
                   locks: int = 1, kernel_locks: bool = False, branches: bool = False,
                   loops: bool = False) -> Program:
    """A random program of reads, writes, mutex and rwsem sections and waits, for
    testing the explorer against itself (the same seed always gives the same program).

    Reads and writes carry data: a write stores what its task last read and who wrote, so
    different orders leave different states. With `branches`, a task may test a value and
    take one of two plans; with `loops`, it may spin on a trylock until it gets the lock
    (a loop that can return to a state it left). With `kernel_locks`, the sections use the
    model's own fair rwsem (a queued writer holds back readers) and trylocks instead."""
    if kernel_locks:
        return _random_kernel_lock_program(seed, tasks, steps, objects, locks)
    from fsrace.explore.step import ACQ_S, REL_S, TRY, WAIT

    values: dict[str, object] = {}
    owner: dict[str, object] = {}
    readers: dict[str, int] = {}
    plans = _random_plans(seed, tasks, steps, objects, locks, branches, loops)


    def run(i: int, plan):
        reg = None
        for op in plan:
            kind, obj = op[0], op[1]
            if kind == "r":
                yield Step(f"read {obj}", (touches(obj, READ),))
                reg = values.get(obj)
            elif kind == "w":
                yield Step(f"write {obj}", (touches(obj, WRITE),))
                values[obj] = (i, reg)
            elif kind == "lock":
                def lockable(o: str = obj) -> bool:
                    return owner.get(o) is None and not readers.get(o)

                yield Step(f"lock {obj}", (touches(obj, ACQ),), enabled=lockable)
                owner[obj] = i
            elif kind == "unlock":
                yield Step(f"unlock {obj}", (touches(obj, REL),))
                owner[obj] = None
            elif kind == "rlock":
                def unowned(o: str = obj) -> bool:
                    return owner.get(o) is None

                yield Step(f"down_read {obj}", (touches(obj, ACQ_S),), enabled=unowned)
                readers[obj] = readers.get(obj, 0) + 1
            elif kind == "runlock":
                yield Step(f"up_read {obj}", (touches(obj, REL_S),))
                readers[obj] -= 1
            elif kind == "wait":
                def free(o: str = obj) -> bool:
                    return owner.get(o) is None

                yield Step(f"wait {obj}", (touches(obj, WAIT),), enabled=free)
            elif kind == "if":
                yield Step(f"test {obj}", (touches(obj, READ),))
                yield from run(i, op[2] if values.get(obj) is None else op[3])
            else:  # spin: trylock until it succeeds, reading between tries
                while True:
                    st = Step(f"trylock {obj}", (touches(obj, TRY),))
                    yield st
                    if owner.get(obj) is None and not readers.get(obj):
                        owner[obj] = i
                        break
                    st.retry = True
                yield Step(f"write {op[2]}", (touches(op[2], WRITE),))
                values[op[2]] = (i, "spun")
                yield Step(f"unlock {obj}", (touches(obj, REL),))
                owner[obj] = None

    return Program([Task(f"T{i}", run(i, p)) for i, p in enumerate(plans)],
                   state=_shared(values, owner, readers),
                   state_constants=(values, owner, readers, *_lists_in(plans)))


@functools.lru_cache(maxsize=64)
def _random_lock_plans(seed: int, tasks: int, steps: int, objects: int, sems: int) -> list:
    """The plans _random_kernel_lock_program draws, rwsems by index."""
    import random

    rng = random.Random(seed)
    plans = []
    for _ in range(tasks):
        plan: list[tuple[str, object]] = []
        while len(plan) < steps:
            r = rng.random()
            obj = f"x{rng.randrange(objects)}"
            sem = rng.randrange(sems)
            if r < 0.4 or steps - len(plan) < 3:
                plan.append(("w" if rng.random() < 0.5 else "r", obj))
            elif r < 0.65:
                plan += [("down_write", sem), ("w", obj), ("up_write", sem)]
            elif r < 0.9:
                plan += [("down_read", sem), ("r", obj), ("up_read", sem)]
            else:
                plan += [("trylock", sem), ("r", obj), ("unlock_if_held", sem)]
        plans.append(plan)
    return plans


def _random_kernel_lock_program(seed: int, tasks: int, steps: int, objects: int,
                                locks: int) -> Program:
    from fsrace.kernel.locking import down_read, down_read_trylock, down_write, up_read, up_write
    from fsrace.kernel.structs import Current, RWSem

    sems = [RWSem(f"sem{i}") for i in range(max(1, locks))]
    plans = [[(op, sems[arg] if type(arg) is int else arg) for op, arg in plan]
             for plan in _random_lock_plans(seed, tasks, steps, objects, len(sems))]

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

    def state(enc):
        return tuple((s.writer, tuple(sorted(s.readers)), tuple(s.waiting_writers))
                     for s in sems)

    return Program([Task(f"T{i}", body(i, p)) for i, p in enumerate(plans)], state=state,
                   state_constants=_lists_in(plans),
                   state_encoders={RWSem: lambda s, enc: ("sem", s.name),
                                   Current: lambda c, enc: ("current", c.comm)})
