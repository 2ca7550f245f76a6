"""Dynamic partial-order reduction with sleep sets (Flanagan and Godefroid, POPL 2005).

Each execution is analysed as it runs: when a step conflicts with an earlier step of
another task that does not happen before it, the search must also try the other order, so
a backtrack point is added where the earlier step ran. Sleep sets keep the search from
re-running an order it already covered; an execution whose every runnable task is asleep
is cut short and counted as blocked.

Dependence follows the access kinds of `step.py`: data reads commute, shared acquires
commute, an exclusive acquire conflicts with every acquire of the lock. Releases and
acquires of one lock are never runnable together, so they are never reversed, but a release
orders the next acquire (happens-before).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

from .engine import Chooser, Execution, ExecutionRecord
from .step import ACQ, ACQ_S, CHANGES, READ, TRY, WAIT, WRITE, Access, conflicting

_EXCLUSIVE = frozenset({WRITE, ACQ, TRY})
_SHARED = frozenset({READ, ACQ_S, WAIT})


class _Node:
    """The state before one step of the current execution."""

    __slots__ = ("enabled", "pending", "backtrack", "done", "sleep", "choice")

    def __init__(self, enabled: list[int], pending: dict[int, tuple[Access, ...]],
                 sleep: dict[int, tuple[Access, ...]]) -> None:
        self.enabled = enabled
        self.pending = pending  # accesses of each enabled task's next step
        self.backtrack: set[int] = set()
        self.done: set[int] = set()
        self.sleep = sleep
        self.choice = -1


class _Object:
    __slots__ = ("last_change", "observed", "last_x", "shared")

    def __init__(self) -> None:
        self.last_change = -1  # last step that changed it (for happens-before)
        self.observed: list[int] = []  # steps that observed it since
        self.last_x = -1  # last exclusive access (for races)
        self.shared: list[int] = []  # shared accesses since


class DPOR:
    name = "dpor"

    def __init__(self) -> None:
        self._stack: list[_Node] = []
        self._started = False
        self._complete = False
        self.blocked = 0

    # -- the search over executions --------------------------------------------------
    def next_execution(self) -> Chooser | None:
        if self._started and not self._next_backtrack():
            self._complete = True
            return None
        self._started = True
        self._reset_analysis()
        return self._choose

    def _next_backtrack(self) -> bool:
        while self._stack:
            node = self._stack[-1]
            todo = node.backtrack - node.done - node.sleep.keys()
            if todo:
                node.choice = min(todo)
                node.done.add(node.choice)
                return True
            self._stack.pop()
        return False

    def finished(self, record: ExecutionRecord) -> None:
        if record.outcome == "pruned":
            self.blocked += 1
            self._stack.pop()  # the node where every task slept
        else:
            self._analyse_new(record.events)
        assert len(self._stack) == len(record.events)

    @property
    def complete(self) -> bool:
        return self._complete

    def bounds(self) -> str:
        return "one execution per Mazurkiewicz trace (DPOR, sleep sets)"

    # -- one execution -----------------------------------------------------------------
    def _reset_analysis(self) -> None:
        self._clocks: list[list[int]] = []
        self._task_clock: dict[int, list[int]] = {}
        self._objects: dict[str, _Object] = {}
        self._ntasks = 0

    def _choose(self, ex: Execution, enabled: Sequence[int]) -> int | None:
        self._ntasks = len(ex.tasks)
        self._analyse_new(ex.events)
        depth = len(ex.events)
        if depth < len(self._stack):  # replaying the prefix of a backtrack point
            node = self._stack[depth]
            assert node.choice in enabled, "program is not deterministic"
            return node.choice
        pending = {i: ex.pending[i].accesses for i in enabled}  # type: ignore[union-attr]
        node = _Node(list(enabled), pending, self._child_sleep())
        awake = [i for i in enabled if i not in node.sleep]
        self._stack.append(node)
        if not awake:
            return None
        last = ex.events[-1].task if ex.events else -1
        choice = last if last in awake else awake[0]  # run on without a preemption if we can
        node.choice = choice
        node.backtrack.add(choice)
        node.done.add(choice)
        return choice

    def _child_sleep(self) -> dict[int, tuple[Access, ...]]:
        if not self._stack:
            return {}
        parent = self._stack[-1]
        ran = parent.pending[parent.choice]
        asleep = chain(parent.sleep.items(),
                       ((d, parent.pending[d]) for d in parent.done if d != parent.choice))
        return {t: acc for t, acc in asleep if t != parent.choice and not conflicting(acc, ran)}

    def _analyse_new(self, events: Sequence) -> None:
        for k in range(len(self._clocks), len(events)):
            self._analyse(k, events)

    def _analyse(self, k: int, events: Sequence) -> None:
        ev = events[k]
        p = ev.task
        pre = self._task_clock.get(p) or [0] * self._ntasks
        clock = list(pre)
        for obj, kind in ev.step.accesses:
            st = self._objects.get(obj)
            if st is None:
                st = self._objects[obj] = _Object()
            if kind in _EXCLUSIVE:
                rivals = [st.last_x, *st.shared]
            elif kind in _SHARED:
                rivals = [st.last_x]
            else:
                rivals = []
            if kind == TRY:
                rivals += [st.last_change, *st.observed]
            for j in rivals:
                if j >= 0 and events[j].task != p and not self._hb(j, events, pre):
                    self._race(j, k, p, events, pre)
            ordered = [st.last_change, *st.observed] if kind in CHANGES else [st.last_change]
            for j in ordered:
                if j >= 0:
                    cj = self._clocks[j]
                    for t in range(self._ntasks):
                        if cj[t] > clock[t]:
                            clock[t] = cj[t]
            if kind in CHANGES:
                st.last_change, st.observed = k, []
            else:
                st.observed.append(k)
            if kind in _EXCLUSIVE:
                st.last_x, st.shared = k, []
            elif kind in _SHARED:
                st.shared.append(k)
        clock[p] = pre[p] + 1
        self._clocks.append(clock)
        self._task_clock[p] = clock

    def _hb(self, j: int, events: Sequence, clock: list[int]) -> bool:
        """Does step j happen before a step whose clock (before its own joins) is `clock`?"""
        tj = events[j].task
        return self._clocks[j][tj] <= clock[tj]

    def _race(self, j: int, k: int, p: int, events: Sequence, pre: list[int]) -> None:
        """Steps j and k may run the other way round: make node j try it."""
        node = self._stack[j]
        if p in node.enabled:
            node.backtrack.add(p)
            return
        for i in range(j + 1, k):  # a task whose later step leads up to step k
            q = events[i].task
            if q in node.enabled and self._hb(i, events, pre):
                node.backtrack.add(q)
                return
        node.backtrack.update(node.enabled)
