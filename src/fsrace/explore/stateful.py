"""Stateful DPOR: source sets and sleep sets (Abdulla et al., POPL 2014, Algorithm 1), and
an execution stops at a state the search has explored before.

Stopping there is sound only if the races between the stopped execution's prefix and the
steps that can follow the state are still reversed. Each explored state keeps a summary of
those steps (in the spirit of Yang, Chen, Gopalakrishnan and Kirby, SPIN 2008, who keep
the graph of explored transitions for the same purpose). A summary entry describes one
step that can follow: its task q, the accesses X through which it can touch what came
before the state, the accesses Y of the steps that happen before it after the state, and
the tasks T whose earlier steps it follows in program order. At a cached state, a step of
the prefix races with a summarised step when it is the last to touch one of X (or, for a
lock acquired again, the step that opened the critical section a later release ended) and
it does not happen before the steps touching Y nor before the last step of a task in T:
exactly the direct-race test stateless DPOR applies once the step has run, with the
unknown stretch in between reduced to what it can order. Entries with the same q and X
are merged by intersecting Y and T, which can only report more races.

A summary is built as the search leaves a state: the summaries of its successors are
lifted through the step that led to each (`_lift`). A state still on the stack when an
execution returns to it (a cycle: a fault retried to the same state) cannot give its
summary yet; the states on the cycle are then fully expanded, which is the classic
remedy, and not cached. A cycle in which a task started over (a retried fault) can repeat
forever: if every task that could run somewhere on it takes a step in it (a fair cycle),
it is repeated until the engine's retry bound reports the starvation. Sleep
sets are stored with states: a state counts as explored for an arrival whose sleep set
contains the stored one, else it is explored again with the smaller set (Godefroid,
1996).

docs/explorer.md gives the argument in full; tests/test_stateful.py checks it against the
naive search on random programs with locks, rwsems, waits, branches and retry loops.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from typing import Any

from .engine import DEADLOCK, DONE, SEEN, VIOLATION, ExecutionRecord, ExecutionView
from .hb import (
    ACQUIRES,
    OPENS,
    RELEASES,
    HappensBefore,
    direct_races,
    is_initial,
    kinds_on,
    opener,
)
from .step import CHANGES, REL, Access, conflicting

_MISSING = object()
_MEMO_LIMIT = 300_000  # lifted entries remembered; the same steps lift the same entries
_DECODED_LIMIT = 20_000  # masks of accesses remembered as tuples (_Interner.accesses)

# A summary: (q, X) -> (Y, T). X holds (object, kind, released_by): released_by is None, or
# the task whose release of the object, after the state, stands between the prefix and q's
# step (then q's step races with that task's opening of the critical section). Y is a mask
# of accesses (_Interner.mask), T a frozenset of tasks.
Summary = dict


class _Node:
    """A state on the current execution's path."""

    __slots__ = ("key", "pending", "enabled", "sleep", "backtrack", "done", "choice", "depth",
                 "low", "summary", "fixed", "kept", "lent")

    def __init__(self, key: bytes, pending: dict, enabled: list[int], sleep: dict,
                 depth: int) -> None:
        self.key = key
        self.pending = pending  # task -> accesses of its next step, for enabled tasks
        self.enabled = enabled
        self.sleep = sleep  # asleep on arrival: task -> accesses
        self.backtrack: list[int] = []  # tasks to explore from here, in order
        self.done: list[int] = []
        self.choice = -1
        self.depth = depth
        self.low = depth  # shallowest open state this subtree returned to
        self.summary: Summary | None = None
        self.fixed = False  # a step of a part's given prefix: never explored otherwise
        self.kept: list | None = None  # the tasks' encodings here (Execution.kept)
        self.lent: set[int] = set()  # branches another search is exploring (lend)


class _Open:
    """A state on the stack. Once left, a state is kept as one bytes object instead
    (_Entries.pack: its sleep set and its summary)."""

    __slots__ = ("sleep", "depth", "summary")

    def __init__(self, sleep: frozenset, depth: int, summary: bytes | None = None) -> None:
        self.sleep = sleep
        self.depth = depth  # its position on the stack
        self.summary = summary  # what an earlier visit left (_Entries.pack), if any


class _Interner:
    """Shares equal frozensets between summaries (they repeat across states), and numbers
    accesses so that a summary's Y, tens of accesses out of about a hundred a program
    makes, is one integer with a bit per access instead of a frozenset (at 3x3, tens of
    bytes against about 1.9 kB a set: docs/benchmarks.md)."""

    def __init__(self) -> None:
        self._sets: dict[frozenset, frozenset] = {}
        self._bits: dict[Access, int] = {}  # access -> its bit
        self._accesses: list[Access] = []  # bit -> access
        self._on: dict[str, int] = {}  # object -> the bits of its accesses
        self._changing: dict[str, int] = {}  # object -> the bits of its changes
        self._decoded: dict[int, tuple[Access, ...]] = {}
        self._steps: dict[tuple[Access, ...], tuple[int, int]] = {}

    def __call__(self, s) -> frozenset:
        s = frozenset(s)
        return self._sets.setdefault(s, s)

    def mask(self, accesses: Iterable[Access]) -> int:
        """The bits of these accesses (numbering the ones not seen before)."""
        m = 0
        bits = self._bits
        for a in accesses:
            b = bits.get(a)
            if b is None:
                b = bits[a] = 1 << len(self._accesses)
                self._steps.clear()  # their conflict masks lack the new bit
                self._accesses.append(a)
                obj, kind = a
                self._on[obj] = self._on.get(obj, 0) | b
                if kind in CHANGES:
                    self._changing[obj] = self._changing.get(obj, 0) | b
            m |= b
        return m

    def step_masks(self, accesses: tuple[Access, ...]) -> tuple[int, int]:
        """A step's accesses as a mask, and the mask of every access that conflicts
        with the step (remembered: steps repeat)."""
        out = self._steps.get(accesses)
        if out is None:
            out = self._steps[accesses] = (self.mask(accesses),
                                           self.conflicting(_kinds(accesses)))
        return out

    def accesses(self, mask: int) -> tuple[Access, ...]:
        """The accesses of a mask (remembered: the same masks come back)."""
        out = self._decoded.get(mask)
        if out is None:
            if len(self._decoded) > _DECODED_LIMIT:
                self._decoded.clear()
            acc = self._accesses
            out = self._decoded[mask] = tuple(acc[i] for i in range(mask.bit_length())
                                              if mask >> i & 1)
        return out

    def conflicting(self, kinds: dict[str, set[str]]) -> int:
        """The bits of every access that conflicts with a step making these accesses
        (object -> kinds): step.conflicting's rule, over masks (any access to an object
        the step changes, a change to one it only reads)."""
        m = 0
        for obj, ks in kinds.items():
            m |= self._on.get(obj, 0) if ks & CHANGES else self._changing.get(obj, 0)
        return m

    def portable(self, entry: tuple) -> tuple:
        """A summary entry with its Y as accesses, for another search's numbering."""
        key, (y, tasks) = entry
        return key, (self.accesses(y), tasks)

    def local(self, entry: tuple) -> tuple:
        """A summary entry from portable(), in this numbering and with shared sets."""
        (q, x), (y, tasks) = entry
        return (q, self(x)), (self.mask(y), self(tasks))


class _Entries:
    """Summary entries and sleep sets, each kept once and numbered. A state left is kept
    as the number of its sleep set and the numbers of its summary's entries, 4 bytes
    each in one bytes object, instead of an object holding a tuple of references: less
    than half the memory, and nothing for the cyclic collector to scan (a full
    collection at 3x3 walked every stored state)."""

    __slots__ = ("numbers", "entries", "sleep_numbers", "sleeps")

    def __init__(self) -> None:
        self.numbers: dict[tuple, int] = {}
        self.entries: list[tuple] = []
        self.sleep_numbers: dict[frozenset, int] = {}
        self.sleeps: list[frozenset] = []

    def number(self, entry: tuple) -> int:
        n = self.numbers.get(entry)
        if n is None:
            n = self.numbers[entry] = len(self.entries)
            self.entries.append(entry)
        return n

    def pack(self, sleep: frozenset, entries: Iterable[tuple]) -> bytes:
        return self.pack_numbers(sleep, map(self.number, entries))

    def pack_numbers(self, sleep: frozenset, numbers: Iterable[int]) -> bytes:
        n = self.sleep_numbers.get(sleep)
        if n is None:
            n = self.sleep_numbers[sleep] = len(self.sleeps)
            self.sleeps.append(sleep)
        packed = array("I", (n,))
        packed.extend(numbers)
        return packed.tobytes()

    def sleep(self, packed: bytes) -> frozenset:
        return self.sleeps[memoryview(packed).cast("I")[0]]

    def unpack(self, packed: bytes) -> Summary:
        return dict(map(self.entries.__getitem__, packed_numbers(packed)))


def packed_numbers(packed: bytes) -> memoryview:
    """The entry numbers of a packed state (native 4-byte integers after its sleep set's)."""
    return memoryview(packed)[4:].cast("I")


class StatefulDPOR:
    name = "stateful"

    def __init__(self, reduce: bool = True, split_at: int | None = None,
                 prefix: Sequence[int] = (), asleep: frozenset[int] = frozenset(),
                 borrowed: bool = False) -> None:
        self.reduce = reduce  # False: every task from every state (the full state space)
        # A search split into parts (explore/split.py): the planning search expands every
        # task above depth `split_at` and hands each new state at that depth to a part; a
        # part replays its `prefix` unexplored and searches on from there with the tasks
        # `asleep` that the planning search had put to sleep.
        self.split_at = split_at
        self.parts: dict[bytes, tuple[tuple[int, ...], frozenset[int]]] = {}
        self._prefix = tuple(prefix)
        self._asleep = frozenset(asleep)
        # A branch lent by another search (explore/parallel.py): what its steps ask of the
        # given prefix (reversals, full expansions, cycles) goes back to the lender.
        self.borrowed = borrowed
        self.requests: list[tuple[int, str, Any]] = []  # (depth, kind, payload)
        self.waiting = False  # every branch left here is lent: wait for it (settle)
        self._stack: list[_Node] = []
        self._seen: dict[bytes, _Open | bytes] = {}  # bytes: a state left (_Entries.pack)
        # States other searches explored to the end: key -> packed (_Entries.pack). Consulted
        # where this search has no entry of its own (explore/parallel.py shares them).
        self.shared: dict[bytes, bytes] = {}
        # States left since the last look, for the others; None: no one looks.
        self.published: list[tuple[bytes, bytes]] | None = None
        self._hb: HappensBefore | None = None
        self._epilogue: frozenset[int] = frozenset()
        self._started = False
        self._complete = False
        self._diverged = 0
        if borrowed:  # the lender found the races among the prefix's own steps
            self._diverged = max(0, len(self._prefix) - 1)
        self._intern = _Interner()
        self._entries = _Entries()  # summary entries, shared between states
        # Entries lifted through a step: (task, accesses) -> entry -> lifted entry.
        self._lifted: dict[tuple, dict[tuple, tuple | None]] = {}
        self._lifted_count = 0
        self.cached = 0  # executions stopped at an explored state
        self.cycles = 0  # ... at a state still on the stack
        self.blocked = 0  # executions cut by their sleep set
        self.fallbacks = 0  # reversals that could not start where they were due
        self._pump: tuple[list[int], int] | None = None  # a retry loop being repeated

    def share_interning(self, intern: _Interner, entries: _Entries,
                        lifted: dict[tuple, dict[tuple, tuple | None]]) -> None:
        """Use these shared sets, summary entries and lifted entries (several searches in
        one process: a borrowed search starts with what the others learned)."""
        self._intern = intern
        self._entries = entries
        self._lifted = lifted

    @property
    def states(self) -> int:
        return len(self._seen)

    @property
    def checked_prefix(self) -> int:
        """Steps the next execution replays up to its backtrack point: an earlier execution
        ran and checked them."""
        return max(0, len(self._stack) - 1)

    # -- the search over executions ------------------------------------------------------
    def next_execution(self):
        if self._started and not self._backtrack():
            self._complete = not self.waiting
            return None
        self._started = True
        return self._choose

    def _backtrack(self) -> bool:
        self.waiting = False
        while self._stack:
            node = self._stack[-1]
            if node.fixed:
                return False  # the part's whole subtree is explored
            if node.choice >= 0 and node.choice not in node.done:
                node.done.append(node.choice)
            for t in node.backtrack:
                if t not in node.done and t not in node.sleep:
                    node.choice = t
                    self._diverged = node.depth
                    if self._hb is not None:
                        self._hb.truncate(node.depth)
                    return True
            if node.lent:
                self.waiting = True  # its summary is not whole until the loans return
                return False
            self._leave()
        return False

    # -- lending branches to other searches -------------------------------------------------
    def lend(self) -> tuple[int, int, tuple[int, ...], frozenset[int]] | None:
        """Hand a branch this search has yet to explore to another search: the deepest
        state on the stack with one. (Lending the shallowest, the usual choice, made the
        two searches explore more of the same states: docs/benchmarks.md.)

        Returns (depth, task, prefix, asleep): the other search runs
        StatefulDPOR(prefix, asleep, borrowed=True), and its `loan_result()` comes back
        through `settle(depth, task, ...)`. The branch counts as explored here, ordered
        after the branch being explored now: later branches sleep on it, and it sleeps on
        the earlier ones."""
        for node in reversed(self._stack):
            if node.fixed:
                continue
            for t in node.backtrack:
                if t in node.done or t in node.sleep or t == node.choice:
                    continue
                ran = node.pending[t]
                before = dict(node.sleep)
                for u in (*node.done, node.choice):
                    before[u] = node.pending[u]
                asleep = frozenset(u for u, acc in before.items()
                                   if u != t and not conflicting(acc, ran))
                node.done.append(t)
                node.lent.add(t)
                prefix = tuple(n.choice for n in self._stack[:node.depth]) + (t,)
                return node.depth, t, prefix, asleep
        return None

    def loan_result(self) -> tuple[list, tuple]:
        """What a complete borrowed search sends back: its requests of the prefix, and the
        summary of its branch as seen from the state it was lent at."""
        assert self.borrowed and self._complete
        root = self._stack[len(self._prefix) - 1]
        return self.requests, tuple(map(self._intern.portable, (root.summary or {}).items()))

    def settle(self, depth: int, task: int, requests: list, summary: tuple) -> None:
        """A lent branch came back explored: do what it asks of the states above it and
        take its summary into the state it was lent at."""
        node = self._stack[depth]
        assert task in node.lent, "settle: no such loan"
        for k, kind, payload in requests:
            target = self._stack[k]
            if kind == "initial":
                self._add_initial(target, payload)
            elif kind == "tasks":
                self._add_tasks(target, payload)
            elif kind == "all":
                self._fall_back(target)
            else:  # "cycle": the branch came back to the state at depth k
                self._close_cycle(k, depth + 1)
        entries = dict(map(self._intern.local, summary))
        node.summary = entries if node.summary is None else self._union(node.summary, entries)
        node.lent.discard(task)
        self.waiting = False

    def _leave(self) -> None:
        """Pop the top node: store its state's summary and lift it into its parent."""
        node = self._stack.pop()
        summary = node.summary or {}
        seen = self._seen.get(node.key)
        if isinstance(seen, _Open) and seen.depth == node.depth:
            if node.low < node.depth:
                del self._seen[node.key]  # on a cycle that is still open: not cached
            else:
                if seen.summary is not None:
                    summary = self._union(self._entries.unpack(seen.summary), summary)
                packed = self._seen[node.key] = self._entries.pack(seen.sleep,
                                                                   summary.items())
                if self.published is not None:
                    self.published.append((node.key, packed))
        if self._stack:
            parent = self._stack[-1]
            parent.low = min(parent.low, node.low)
            self._lift_into(parent, summary)

    def _choose(self, ex: ExecutionView, enabled: Sequence[int]) -> int | None:
        depth = len(ex.events)
        if depth < len(self._stack):  # replaying the prefix of a backtrack point
            node = self._stack[depth]
            if node.choice not in enabled:
                raise AssertionError(f"stateful DPOR: task {node.choice} cannot run at step "
                                     f"{depth}; the program is not deterministic")
            if depth == len(self._stack) - 1 and node.kept is not None:
                ex.inherit(node.kept)  # the backtrack point: new states from here on
            return node.choice
        if self._pump is not None:
            tasks, start = self._pump
            return tasks[(depth - start) % len(tasks)]
        hb = self._track(ex)
        pending = {i: ex.pending[i].accesses for i in enabled}  # type: ignore[union-attr]
        if depth < len(self._prefix):
            return self._follow_prefix(ex, pending, enabled, depth)
        sleep: dict[int, tuple[Access, ...]] = {}
        if depth and depth == len(self._prefix):
            sleep = {t: pending[t] for t in self._asleep if t in pending}
        elif self._stack:
            parent = self._stack[-1]
            ran = parent.pending[parent.choice]
            asleep = dict(parent.sleep)
            for t in parent.done:
                asleep[t] = parent.pending[t]
            sleep = {t: acc for t, acc in asleep.items()
                     if t != parent.choice and t in pending and not conflicting(acc, ran)}
        key = ex.state_key()
        seen = self._seen.get(key)
        if seen is None and self.shared:
            other = self.shared.get(key)
            if other is not None and self._entries.sleep(other).issubset(sleep):
                return self._stop_at_explored(hb, ex, other)
        if isinstance(seen, bytes):  # explored before
            explored = self._entries.sleep(seen)
            if explored.issubset(sleep):
                return self._stop_at_explored(hb, ex, seen)
        elif seen is not None:  # back to a state still on the stack
            self.cycles += 1
            self._close_cycle(seen.depth, len(self._stack))
            loop = ex.events[seen.depth:]
            if any(ev.step.retry for ev in loop) and self._fair(seen.depth, loop):
                # A task started over and everything came back to where it was: the
                # loop can repeat forever. Repeat it until the engine's retry bound
                # reports the starvation, so the schedule replays as any other.
                self._pump = ([ev.task for ev in loop], depth)
                return loop[0].task
            return SEEN
        if depth == self.split_at:
            self._hand_over(ex, key, sleep)
            return SEEN
        if isinstance(seen, bytes):  # explored with a smaller sleep set: again, with both's
            self._seen[key] = _Open(self._intern(explored & frozenset(sleep)), depth, seen)
        else:
            self._seen[key] = _Open(self._intern(sleep), depth)
        node = _Node(key, pending, list(enabled), sleep, depth)
        node.kept = ex.kept()
        self._stack.append(node)
        awake = [t for t in enabled if t not in sleep]
        if not awake:
            self.blocked += 1
            return None
        node.choice = self._first_branch(ex, pending, awake)
        full = not self.reduce or (self.split_at is not None and depth < self.split_at)
        node.backtrack = list(awake) if full else [node.choice]
        return node.choice

    def _first_branch(self, ex: ExecutionView, pending: dict, awake: list[int]) -> int:
        """The branch a new state explores first: the awake task whose next step conflicts
        with the fewest other tasks' next steps, then the task that ran last, then the
        lowest. Any order is complete; this one explores fewer states, since a step that
        races with nothing pending needs no reversal (2x2: 44,494 states against 58,866
        when the last task ran on; 3x3: 911,740 against 1,673,056; docs/benchmarks.md)."""
        if len(awake) == 1:
            return awake[0]
        last = ex.events[-1].task if ex.events else -1
        masks = self._intern.step_masks
        others = [(u, masks(pending[u] if u in pending else step.accesses)[0])
                  for u, step in enumerate(ex.pending) if step is not None]

        def cost(t: int) -> tuple[int, bool]:
            conflicts = masks(pending[t])[1]
            return sum(1 for u, m in others if u != t and m & conflicts), t != last

        return min(awake, key=cost)

    def _stop_at_explored(self, hb: HappensBefore, ex: ExecutionView, packed: bytes) -> int:
        """An explored state: reverse the prefix's races with what follows it, and stop."""
        self.cached += 1
        stored = self._entries.unpack(packed)
        self._races_with_summary(hb, ex, stored)
        if self._stack:
            self._lift_into(self._stack[-1], stored)
        return SEEN

    def _follow_prefix(self, ex: ExecutionView, pending: dict, enabled: Sequence[int],
                       depth: int) -> int:
        """A step of a part's prefix: on the stack (races index it), never explored."""
        task = self._prefix[depth]
        if task not in enabled:
            raise AssertionError(f"stateful DPOR: the part's prefix cannot run task {task} at "
                                 f"step {depth}; the program is not deterministic")
        key = ex.state_key()
        if key not in self._seen:
            self._seen[key] = _Open(self._intern(()), depth)
        node = _Node(key, pending, list(enabled), {}, depth)
        node.kept = ex.kept()
        node.fixed = True
        node.choice = task
        node.backtrack = [task]
        self._stack.append(node)
        return task

    def _hand_over(self, ex: ExecutionView, key: bytes, sleep: dict) -> None:
        """A state at the split depth: its subtree becomes a part. A state reached again
        with other tasks asleep keeps only the tasks asleep on every arrival."""
        asleep = frozenset(sleep)
        known = self.parts.get(key)
        if known is None:
            self.parts[key] = (tuple(ev.task for ev in ex.events), asleep)
        else:
            self.parts[key] = (known[0], known[1] & asleep)

    def _close_cycle(self, start: int, end: int) -> None:
        """The states on the stack from `start` to `end` lie on a cycle: explore every
        task from each, and cache none of them until the cycle closes."""
        for node in self._stack[start:end]:
            node.low = min(node.low, start)
            if node.fixed:
                if self.borrowed and node.depth == start:
                    self.requests.append((start, "cycle", None))
                continue
            node.backtrack += [t for t in node.enabled if t not in node.backtrack]

    def _fair(self, start: int, loop) -> bool:
        """Whether a cycle through the stack from `start` could repeat forever under a
        (strongly) fair scheduler: every task that could run at some state of the cycle
        takes a step in it. A fault retried while the task it waits for could run but is
        not scheduled is the scheduler's doing, not a livelock."""
        moved = {ev.task for ev in loop}
        return all(t in moved for node in self._stack[start:] for t in node.enabled)

    def _track(self, ex: ExecutionView) -> HappensBefore:
        """The happens-before of the execution so far (only new steps are added)."""
        if self._hb is None:
            self._hb = HappensBefore(len(ex.tasks))
            self._epilogue = frozenset(i for i, t in enumerate(ex.tasks) if t.epilogue)
        hb = self._hb
        for ev in ex.events[len(hb):]:
            hb.add(ev.task, ev.step.accesses)
        return hb

    def finished(self, record: ExecutionRecord) -> None:
        hb = self._hb
        if hb is None:
            hb = self._hb = HappensBefore(len(record.task_names))
            self._epilogue = frozenset(record.epilogue_tasks)
        for ev in record.events[len(hb):]:
            hb.add(ev.task, ev.step.accesses)
        n = len(record.events)
        if self._pump is not None:
            n = self._pump[1]  # the repetitions of a loop add no race of their own
            self._pump = None
        if record.outcome in (DONE, DEADLOCK, VIOLATION) and len(self._stack) == n and n:
            self._lift_into(self._stack[-1], {})  # the last step led to a final state
        for k in range(self._diverged, n):
            if hb.tasks[k] not in self._epilogue:
                self._races_of(hb, k, hb.tasks[k], hb.accs[k], hb.preds[k], n)
        if record.outcome == DEADLOCK:
            for t, acc in record.blocked_steps.items():
                self._races_of(hb, n, t, acc, hb.direct_preds(t, acc), n)

    @property
    def complete(self) -> bool:
        return self._complete

    def bounds(self) -> str:
        if not self.reduce:
            return "every reachable state (sleep sets only)"
        return ("one execution per explored state and race (stateful DPOR: source sets, "
                "sleep sets, summaries of what follows a state)")

    # -- races within the execution ------------------------------------------------------
    def _races_of(self, hb: HappensBefore, k: int, task: int, acc: tuple[Access, ...],
                  preds: list[int], n: int) -> None:
        """Reverse every race whose later step is (task, acc) at position k."""
        for e in direct_races(hb, task, acc, preds, self._epilogue):
            self._reverse(hb, e, task, acc, min(k, n))

    def _reverse(self, hb: HappensBefore, e: int, task: int, acc: tuple[Access, ...],
                 end: int) -> None:
        if self._stack[e].fixed and not self.borrowed:
            return  # a race with the given prefix: the planning search explored that order
        v = [(hb.tasks[i], hb.accs[i]) for i in hb.notdep(e, end)] + [(task, acc)]
        self._add_initial(self._stack[e], v)

    def _add_initial(self, node: _Node, v: list) -> None:
        """Make sure node explores some initial of v (a source set, Algorithm 1)."""
        if node.fixed:
            self.requests.append((node.depth, "initial", v))
            return
        initials = {t for t, _ in v if is_initial(t, v)}
        if initials & (set(node.backtrack) | set(node.done)):
            return
        first = v[0][0]
        if first in node.enabled:
            node.backtrack.append(first)
        else:
            self._fall_back(node)

    def _fall_back(self, node: _Node) -> None:
        """A reversal that cannot start here (a reader behind a queued writer): explore
        every runnable task from here, as classic DPOR does."""
        if node.fixed:
            self.requests.append((node.depth, "all", None))
            return
        self.fallbacks += 1
        node.backtrack += [t for t in node.enabled if t not in node.backtrack]

    # -- races with what follows a cached state --------------------------------------------
    def _races_with_summary(self, hb: HappensBefore, ex: ExecutionView, summary: Summary) -> None:
        n = len(hb)
        reversed_: set[tuple[int, int]] = set()
        for (q, x), (y, tasks) in summary.items():
            preds: list[tuple[int, tuple]] = []  # (prefix step, steps the test ignores)
            for obj, kind, released_by in x:
                if released_by is None:
                    for c in hb.conflicts_of(obj, kind):
                        if kind in ACQUIRES and kinds_on(hb.accs[c], obj) & RELEASES:
                            a = opener(hb, c, obj)
                            if a is not None:
                                preds.append((a, (c,)))
                        else:
                            preds.append((c, ()))
                else:
                    last = hb.task_last.get(released_by)
                    a = _open_section(hb, last, released_by, obj) if last is not None else None
                    if a is not None:
                        preds.append((a, ()))
            if not preds:
                continue
            before = {c for obj, kind in self._intern.accesses(y)
                      for c in hb.conflicts_of(obj, kind)}
            for t in tasks:
                last = hb.task_last.get(t)
                if last is not None:
                    before.add(last)
            before.update(p for p, _ in preds)
            for e, ignore in preds:
                p = hb.tasks[e]
                if p == q or p in self._epilogue or (e, q) in reversed_:
                    continue
                if any(d != e and d not in ignore and hb.hb(e, hb.clock[d]) for d in before):
                    continue
                reversed_.add((e, q))
                self._reverse_into_summary(hb, ex, e, q, n)

    def _reverse_into_summary(self, hb: HappensBefore, ex: ExecutionView, e: int, q: int,
                              n: int) -> None:
        """Step e of the prefix races with a later step of task q, after the cached state."""
        node = self._stack[e]
        if node.fixed and not self.borrowed:
            return
        later = hb.notdep(e, n)
        if later:
            self._add_initial(node, [(hb.tasks[i], hb.accs[i]) for i in later])
            return
        # Everything after e in the prefix happens after it: the reversed sequence starts
        # after the cached state, with a task that has not moved since e and whose next step
        # is independent of e and of all that followed it, or with q itself.
        p = hb.tasks[e]
        moved = set(hb.tasks[e + 1:n])
        starts = []
        for r in node.enabled:
            if r == p or r in moved:
                continue
            nxt = ex.pending[r]
            if r == q or (nxt is not None and not conflicting(nxt.accesses, hb.accs[e]) and
                          not any(conflicting(nxt.accesses, hb.accs[i])
                                  for i in range(e + 1, n))):
                starts.append(r)
        if not starts:
            self._fall_back(node)
            return
        self._add_tasks(node, starts)

    def _add_tasks(self, node: _Node, tasks: list[int]) -> None:
        if node.fixed:
            self.requests.append((node.depth, "tasks", tasks))
            return
        node.backtrack += [t for t in tasks if t not in node.backtrack]

    # -- summaries --------------------------------------------------------------------------
    def _lift_into(self, parent: _Node, summary: Summary) -> None:
        task = parent.choice
        lifted = self._lift(task, parent.pending[task], summary)
        parent.summary = lifted if parent.summary is None else \
            self._union(parent.summary, lifted)

    def _lift(self, r: int, acc: tuple[Access, ...], summary: Summary) -> Summary:
        """The summary before step (r, acc), given the summary after it."""
        out: Summary = {}
        intern = self._intern
        if r not in self._epilogue:
            _merge(out, (r, intern((o, kd, None) for o, kd in acc)), 0, intern((r,)))
        if self._lifted_count > _MEMO_LIMIT:
            self._lifted.clear()
            self._lifted_count = 0
        # Per step, then per entry: the step's accesses are hashed once per lift, the
        # entries (interned sets, whose hashes Python caches) once each.
        memo = self._lifted.get((r, acc))
        if memo is None:
            memo = self._lifted[(r, acc)] = {}
        for entry in summary.items():
            lifted: Any = memo.get(entry, _MISSING)
            if lifted is _MISSING:
                (q, x), (y, tasks) = entry
                lifted = memo[entry] = self._lift_entry(r, acc, q, x, y, tasks)
                self._lifted_count += 1
            if lifted is not None:
                _merge(out, *lifted)
        return out

    def _lift_entry(self, r: int, acc: tuple[Access, ...], q: int, x: frozenset,
                    y: int, tasks: frozenset) -> tuple | None:
        """One summary entry lifted through step (r, acc): (key, Y, T), or None when the
        step hides every access through which q's step could reach back."""
        intern = self._intern
        kinds = _kinds(acc)
        changed = {o for o, kd in acc if kd in CHANGES}
        joins = r in tasks
        x2: list[tuple[str, str, int | None]] = []
        for o, kd, released_by in x:
            ks = kinds.get(o)
            if released_by is None:
                if ks and (kd in CHANGES or ks & CHANGES):
                    if ks & RELEASES and kd in ACQUIRES:
                        # A release by r stands between: q's step races with r's opening
                        # of the section instead; a shared release hides nothing else.
                        x2.append((o, kd, r))
                        if REL in ks:
                            continue
                    else:
                        joins = True
                        if o in changed:
                            continue
                x2.append((o, kd, None))
            elif ks and released_by == r and ks & OPENS:
                joins = True  # r opened the section after the state: nothing before
            else:
                x2.append((o, kd, released_by))
        if not x2:
            return None
        mask, conflicts = intern.step_masks(acc)
        if joins or y & conflicts:
            return (q, intern(x2)), y | mask, intern(tasks | {r})
        return (q, intern(x2)), y, tasks

    def _union(self, into: Summary, other: Summary) -> Summary:
        for key, (y, tasks) in other.items():
            _merge(into, key, y, tasks)
        return into


def _kinds(accesses: Iterable[Access]) -> dict[str, set[str]]:
    """Object -> the kinds of access a step makes to it."""
    kinds: dict[str, set[str]] = {}
    for obj, kind in accesses:
        kinds.setdefault(obj, set()).add(kind)
    return kinds


def _merge(summary: Summary, key: tuple, y: int, tasks: frozenset) -> None:
    old = summary.get(key)
    if old is None:
        summary[key] = (y, tasks)
    elif not (old[0] & ~y == 0 and old[1] <= tasks):
        summary[key] = (old[0] & y, old[1] & tasks)


def _open_section(hb: HappensBefore, last: int, t: int, obj: str) -> int | None:
    """The first step of t's critical section on obj that is still open after step `last`
    (t's latest step), or None if t holds no section on obj."""
    first = None
    for i in range(last, -1, -1):
        if hb.tasks[i] != t:
            continue
        kinds = kinds_on(hb.accs[i], obj)
        if kinds & OPENS:
            first = i
        elif kinds & RELEASES:
            break
    return first
