"""Optimal dynamic partial-order reduction: source sets, sleep sets and wakeup trees
(Abdulla, Aronis, Jonsson, Sagonas, POPL 2014). It runs one execution per Mazurkiewicz
trace and never one that ends blocked by its sleep set.

Dependence is `step.conflicting`: two steps on one object conflict unless both only
observe it. Happens-before is the transitive closure of program order and conflicts.

After each maximal execution E, every race (e, e') is reversed: e and e' conflict, belong
to different tasks, e' happens after e through nothing else, and e' could have run first.
The reversal is v = notdep(e, E).e' (the steps after e that do not happen after it, then
e'), inserted into the wakeup tree of the node before e unless a task asleep there already
covers it.

Blocking objects need care, as in Nidhugg's treatment of mutexes. A release and the next
acquire of a lock are never runnable together, so they are not a race; instead an acquire
races with the acquire that opened the critical section the release closed, and the
reversal lets it take the lock first. Tasks still blocked when an execution deadlocks get
their pending step analysed the same way. Steps of epilogue tasks never race: they cannot
run before the other tasks have finished.

Contract with the model: a step that can block declares its blocking object with an
acquire-type access (ACQ, ACQ_S, WAIT), and only steps accessing that object change
whether it can run.
"""

from __future__ import annotations

from collections.abc import Sequence

from .engine import DEADLOCK, PRUNED, Chooser, ExecutionRecord, ExecutionView
from .hb import HappensBefore, direct_races, is_initial
from .step import Access, conflicting


class _WNode:
    """A node of a wakeup tree: a step of a task, and the sequences that continue it."""

    __slots__ = ("task", "acc", "children")

    def __init__(self, task: int, acc: tuple[Access, ...]) -> None:
        self.task = task
        self.acc = acc
        self.children: list[_WNode] = []


class _Node:
    """The state before one step of the current execution."""

    __slots__ = ("pending", "sleep", "wut", "done", "choice")

    def __init__(self, pending: dict[int, tuple[Access, ...]],
                 sleep: dict[int, tuple[Access, ...]], wut: list[_WNode]) -> None:
        self.pending = pending  # accesses of each enabled task's next step
        self.sleep = sleep  # asleep on arrival: task -> its next step's accesses
        self.wut = wut  # wakeup tree: sequences still to explore from here, in order
        self.done: list[int] = []  # tasks explored from here (asleep for later children)
        self.choice = -1

    def asleep(self) -> dict[int, tuple[Access, ...]]:
        out = dict(self.sleep)
        for t in self.done:
            out[t] = self.pending[t]
        return out


class DPOR:
    name = "dpor"

    def __init__(self) -> None:
        self._stack: list[_Node] = []
        self._started = False
        self._complete = False
        self._diverged = 0  # depth from which the current execution is new
        self.blocked = 0
        self.fallbacks = 0  # wakeup sequences that could not run (see _infeasible)

    # -- the search over executions ------------------------------------------------------
    def next_execution(self) -> Chooser | None:
        if self._started and not self._backtrack():
            self._complete = True
            return None
        self._started = True
        return self._choose

    def _backtrack(self) -> bool:
        while self._stack:
            node = self._stack[-1]
            if node.wut and node.wut[0].task == node.choice:
                node.wut.pop(0)
            node.done.append(node.choice)
            if node.wut and node.wut[0].task not in node.pending:
                self._infeasible(node, list(node.pending))
            if node.wut:
                node.choice = node.wut[0].task
                self._diverged = len(self._stack) - 1
                return True
            self._stack.pop()
        return False

    def _choose(self, ex: ExecutionView, enabled: Sequence[int]) -> int | None:
        depth = len(ex.events)
        if depth < len(self._stack):  # replaying the prefix of a backtrack point
            node = self._stack[depth]
            if node.choice not in enabled:
                raise AssertionError(f"DPOR: task {node.choice} cannot run at step {depth}; "
                                     "the program is not deterministic or a step hides "
                                     "what blocks it")
            return node.choice
        pending = {i: ex.pending[i].accesses for i in enabled}  # type: ignore[union-attr]
        sleep: dict[int, tuple[Access, ...]] = {}
        wut: list[_WNode] = []
        if self._stack:
            parent = self._stack[-1]
            ran = parent.pending[parent.choice]
            sleep = {t: acc for t, acc in parent.asleep().items()
                     if t != parent.choice and not conflicting(acc, ran)}
            if parent.wut and parent.wut[0].task == parent.choice:
                wut = parent.wut[0].children
        node = _Node(pending, sleep, wut)
        self._stack.append(node)
        if wut and wut[0].task not in enabled:
            self._infeasible(node, enabled)
        if node.wut:
            choice = node.wut[0].task
        else:
            awake = [i for i in enabled if i not in sleep]
            if not awake:
                return None
            last = ex.events[-1].task if ex.events else -1
            choice = last if last in awake else awake[0]
            node.wut = [_WNode(choice, pending[choice])]
        node.choice = choice
        return choice

    def _infeasible(self, node: _Node, enabled: Sequence[int]) -> None:
        """A wakeup sequence asks for a task that cannot run here: a reversal across a
        queued rwsem writer that needs another race reversed first. Drop those sequences
        and fall back, as classic DPOR does, to trying every runnable task here."""
        self.fallbacks += 1
        node.wut = [c for c in node.wut if c.task in enabled]
        have = {c.task for c in node.wut}
        asleep = node.asleep()
        node.wut += [_WNode(t, node.pending[t]) for t in enabled
                     if t not in have and t not in asleep]

    def finished(self, record: ExecutionRecord) -> None:
        if record.outcome == PRUNED:
            self.blocked += 1
            self._stack.pop()
            return
        assert len(self._stack) == len(record.events)
        self._reverse_races(record)

    @property
    def complete(self) -> bool:
        return self._complete

    def bounds(self) -> str:
        return "one execution per Mazurkiewicz trace (optimal DPOR, wakeup trees)"

    # -- race reversal -------------------------------------------------------------------
    def _reverse_races(self, record: ExecutionRecord) -> None:
        an = HappensBefore(len(record.task_names), undo=False)
        for ev in record.events:
            an.add(ev.task, ev.step.accesses)
        epilogue = set(record.epilogue_tasks)
        n = len(an)
        for k in range(self._diverged, n):
            if an.tasks[k] not in epilogue:
                self._races_of(an, k, an.tasks[k], an.accs[k], an.preds[k], n)
        if record.outcome == DEADLOCK:
            for t, acc in record.blocked_steps.items():
                self._races_of(an, n, t, acc, an.direct_preds(t, acc), n)

    def _races_of(self, an: HappensBefore, k: int, task: int, acc: tuple[Access, ...],
                  preds: list[int], n: int) -> None:
        """Reverse every race whose later step is (task, acc) at position k."""
        for e in direct_races(an, task, acc, preds):
            self._reverse(an, e, task, acc, min(k, n))

    def _reverse(self, an: HappensBefore, e: int, task: int, acc: tuple[Access, ...],
                 end: int) -> None:
        v = [(an.tasks[i], an.accs[i]) for i in an.notdep(e, end)] + [(task, acc)]
        node = self._stack[e]
        asleep = node.asleep()
        if any(self._weak_initial(t, a, v) for t, a in asleep.items()):
            return
        _insert(node.wut, v)

    @staticmethod
    def _weak_initial(t: int, acc: tuple[Access, ...], v: list) -> bool:
        """Is task t (next step `acc`) a weak initial of the sequence v?"""
        if any(vt == t for vt, _ in v):
            return is_initial(t, v)
        return not any(conflicting(acc, va) for _, va in v)


def _insert(children: list[_WNode], w: list) -> None:
    """Insert sequence w into a wakeup tree, unless a branch already covers it."""
    while True:
        for child in children:
            if any(t == child.task for t, _ in w):
                if not is_initial(child.task, w):
                    continue
                i = next(i for i, (t, _) in enumerate(w) if t == child.task)
                w = w[:i] + w[i + 1:]
            elif any(conflicting(child.acc, a) for _, a in w):
                continue
            if not child.children or not w:
                return  # a leaf (or the whole of w) is a weak prefix of w: covered
            children = child.children
            break
        else:
            node = None
            for t, a in w:
                new = _WNode(t, a)
                (children if node is None else node.children).append(new)
                node = new
            return

