"""What a state is: the program's shared data and every task's continuation, as one
canonical value, and its digest.

A stateful search prunes an execution when it reaches a state it has explored, so two
states may share a digest only if everything that can happen from them is the same. The
shared data is the program's to encode (`Program.state`); a task's continuation is the
chain of generator frames it is suspended in (`gi_yieldfrom`), each with its code, its
instruction offset, the names of its bound locals, and every object the frame holds:
locals and the value stack, where a `for` loop keeps its iterator (`gc.get_referents`
walks both, as the garbage collector must).

Values are encoded into tuples of plain data. Objects of the program's own types are
encoded by functions it registers (`Program.state_encoders`); an object whose identity
matters (a page two tasks may hold) is encoded as a reference, and its contents once, in
the heap section, so that aliasing is kept and a task's encoding stays valid while it is
suspended. A value of a type nobody registered is an error, not a guess: a guess could
merge two states that differ.
"""

from __future__ import annotations

import dis
import gc
import hashlib
import marshal
import types
from collections.abc import Callable
from typing import Any

from .step import Step

Encoder = Callable[[Any, "StateEncoder"], Any]

_PLAIN = frozenset({type(None), bool, int, str, float, bytes})
_ITERATORS: tuple[type, ...] = (
    type(iter([])), type(iter(())), type(iter(range(1))), type(iter({}.values())),
    type(iter({}.keys())), type(iter({}.items())), type(iter(set())), enumerate, zip,
    reversed, type(iter(reversed([]))))


_DICT_ITERATORS: tuple[type, ...] = (type(iter({}.values())), type(iter({}.keys())),
                                     type(iter({}.items())))


class UnencodableState(TypeError):
    """A task holds a value the state encoder has no rule for."""


class StateEncoder:
    """Encodes values canonically; collects the referenced heap objects whose contents the
    digest must include."""

    def __init__(self, encoders: dict[type, Encoder], constants: dict[int, str],
                 contents: dict[type, Encoder], stable: frozenset[type] = frozenset()
                 ) -> None:
        self.encoders = encoders
        # Types whose encoding cannot change while a frame holding them is suspended.
        self.stable = stable
        self.unstable = False  # the last frame encoded held something else
        self.constants = constants  # id(obj) -> token, for objects that never change
        self.contents = contents  # how a referenced object's contents are encoded
        self.heap: dict[Any, Any] = {}  # reference token -> object
        # Mutable objects the shared section reaches (ids): a task holding one of them has
        # an encoding another task's step can change, so it is not kept between steps.
        # Noted as groups and turned into ids only when a frame holds a mutable value
        # (about one frame in twelve): building the set every step cost 6% of a search.
        self.shared: set[int] = set()
        self._sharing: list[tuple] = []
        self._folded = 0  # groups of _sharing already in `shared`
        self._in_frames = False  # encoding a continuation, not the shared section
        self.volatile = False
        self._in_closure: set[int] = set()

    def refer(self, token: Any, obj: Any) -> Any:
        """Encode `obj` as `token`; its contents go into the heap section."""
        self.heap[token] = obj
        return token

    def share(self, *objs: Any) -> None:
        """Note mutable objects the shared section reaches. Only values of types that are
        not `stable` can be shared: a stable value's encoding cannot change."""
        self._sharing.append(objs)

    def _mutable(self, v: Any) -> None:
        """A frame holds a value whose encoding can change while it waits: by the frame's
        own doing unless the shared section reaches the value too (then it is volatile)."""
        self.unstable = True
        if not self._in_frames:
            return
        sharing = self._sharing
        if self._folded < len(sharing):
            shared = self.shared
            for objs in sharing[self._folded:]:
                shared.update(map(id, objs))
            self._folded = len(sharing)
        if id(v) in self.shared:
            self.volatile = True

    def value(self, v: Any) -> Any:
        t = type(v)
        if t in _PLAIN:
            return v
        token = self.constants.get(id(v))
        if token is not None:
            return token
        if t is tuple:
            return ("tuple", *[self.value(x) for x in v])
        enc = self.encoders.get(t)
        if enc is not None:
            if t not in self.stable:
                self._mutable(v)
            return enc(v, self)
        builtin = _BUILTIN.get(t)
        if builtin is not None:
            return builtin(self, v)
        raise UnencodableState(
            f"no state encoding for a {t.__module__}.{t.__qualname__} held by a task; "
            "register one in Program.state_encoders or Program.state_constants")

    # -- the interpreter's own types, by type (value() looks them up in _BUILTIN) --------
    def _list(self, v: list) -> tuple:
        self._mutable(v)  # another frame may change it while this one waits
        return ("list", *[self.value(x) for x in v])

    def _dict(self, v: dict) -> tuple:
        self._mutable(v)
        return ("dict", *sorted([(self.value(a), self.value(b)) for a, b in v.items()],
                                key=repr))

    def _set(self, v: set | frozenset) -> tuple:
        if type(v) is set:
            self._mutable(v)
        return ("set", *sorted([self.value(x) for x in v], key=repr))

    def _iterator(self, v: Any) -> tuple:
        # An iterator's position: what __reduce__ would pickle (the sequence, index).
        # Only the frame that holds it advances it; a dict's iterator pickles a fresh
        # list of what is left, which no other frame can change.
        args = v.__reduce__()[1:]
        if type(v) in _DICT_ITERATORS:
            return ("iter", *[self.value(x) for x in args[0][0]])
        return ("iter", self.value(args))

    def _cell(self, v: types.CellType) -> tuple:
        # Stable: the model never rebinds a waiting frame's variable from a closure
        # (no `nonlocal`; tests/test_stateful.py checks), and mutable contents are
        # flagged as they are encoded.
        try:
            return ("cell", self.value(v.cell_contents))
        except ValueError:
            return ("cell",)

    def _function(self, v: types.FunctionType) -> tuple:
        # A closure behaves by what it captured, so its cells are part of its value
        # (once: a nested function may capture itself).
        if not v.__closure__ or id(v) in self._in_closure:
            return ("fn", v.__module__, v.__qualname__)
        self._in_closure.add(id(v))
        try:
            return ("fn", v.__module__, v.__qualname__,
                    *[self.value(c) for c in v.__closure__])
        finally:
            self._in_closure.discard(id(v))

    def _builtin_function(self, v: types.BuiltinFunctionType) -> tuple:
        return ("fn", v.__module__, v.__qualname__)

    def _step(self, v: Step) -> tuple:
        # A step a task keeps after yielding it (to read its note, or yield it again).
        self._mutable(v)
        return ("step", v.label, self.value(v._accesses), v.note, v.retry,
                self.value(v.enabled), self.value(v.footprint))

    def _method(self, v: types.MethodType) -> tuple:
        return ("method", v.__func__.__qualname__, self.value(v.__self__))

    def _generator(self, v: types.GeneratorType) -> tuple:
        return ("gen", v.__qualname__)  # a yield-from target: walked as its own frame

    def _range(self, v: range) -> tuple:
        return ("range", v.start, v.stop, v.step)

    def _type(self, v: type) -> tuple:
        return ("type", v.__module__, v.__qualname__)

    def continuation(self, gen: Any, kept: list | None = None
                     ) -> tuple[tuple, list]:
        """The frames a suspended task is in, outermost first, and what to pass as `kept`
        next time. Sets `volatile` if they hold an object the shared section reaches.

        A frame suspended in `yield from` a generator that is still the same object has
        not run since (only the innermost frame runs between two steps), so its encoding
        from `kept` is reused, unless it held shared data or a value an inner frame could
        change (a list it was passed, a cell a closure rebinds): only values of `stable`
        types, constants and immutable values make a frame's encoding reusable."""
        out = []
        frames: list[tuple | None] = []
        level = 0
        self._in_frames = True
        while gen is not None:
            frame = gen.gi_frame
            if frame is None:
                break
            inner = gen.gi_yieldfrom
            old = kept[level] if kept is not None and level < len(kept) else None
            if old is not None and old[0] is gen and old[1] is inner and inner is not None:
                encoded, heap = old[2], old[3]
                self.heap.update(heap)
            else:
                before, self.heap = self.heap, {}
                volatile, self.volatile = self.volatile, False
                self.unstable = False
                encoded = self._frame(gen, frame)
                heap = self.heap
                reusable = not self.volatile and not self.unstable
                self.heap = before
                self.heap.update(heap)
                self.volatile = volatile or self.volatile
                if not reusable:
                    frames.append(None)
                    out.append(encoded)
                    gen = inner
                    level += 1
                    continue
            frames.append((gen, inner, encoded, heap))
            out.append(encoded)
            gen = inner
            level += 1
        self._in_frames = False
        return tuple(out), frames

    def _frame(self, gen: types.GeneratorType, frame: types.FrameType) -> tuple:
        local_names = frame.f_locals  # also fixes which locals are bound
        code = frame.f_code
        refs = gc.get_referents(gen)
        live = live_after(code, frame.f_lasti)
        if live is not None and (split := _split_frame(refs, code, local_names)) is not None:
            # Only what the frame can still read: a local no path reads again before
            # writing it cannot change what happens next.
            cells, stack = split
            names = tuple(sorted(n for n in local_names if n in live))
            return (code.co_qualname, code.co_firstlineno, frame.f_lasti, names,
                    tuple(self.value(local_names[n]) for n in names),
                    tuple(self.value(c) for c in cells), tuple(self.value(v) for v in stack))
        held = [v for v in refs
                if type(v) is not types.FrameType and v is not local_names
                and type(v) is not types.CodeType]
        return (code.co_qualname, code.co_firstlineno, frame.f_lasti, "all",
                tuple(sorted(local_names)), tuple(self.value(v) for v in held))

    def heap_section(self, skip: dict[Any, Any] | None = None) -> tuple:
        """The contents of every referenced object, in token order (contents may refer
        to further objects, which are encoded too)."""
        done: dict[Any, Any] = {}
        while len(done) < len(self.heap):
            for token, obj in list(self.heap.items()):
                if token not in done:
                    done[token] = self.contents[type(obj)](obj, self)
        return tuple(sorted(done.items(), key=lambda kv: repr(kv[0])))


_BUILTIN: dict[type, Callable[[StateEncoder, Any], Any]] = {
    list: StateEncoder._list, dict: StateEncoder._dict,
    set: StateEncoder._set, frozenset: StateEncoder._set,
    **{t: StateEncoder._iterator for t in _ITERATORS},
    types.CellType: StateEncoder._cell, types.FunctionType: StateEncoder._function,
    types.BuiltinFunctionType: StateEncoder._builtin_function, Step: StateEncoder._step,
    types.MethodType: StateEncoder._method, types.GeneratorType: StateEncoder._generator,
    range: StateEncoder._range, type: StateEncoder._type,
}


def serialize(value: Any) -> bytes:
    """An encoded value as bytes, the same in every process. Marshal format 2: later
    formats write a repeated object as a back-reference, so equal values built from
    differently shared parts would serialize differently. Marshal data delimits itself,
    so serialized parts can be joined without ambiguity."""
    return marshal.dumps(value, 2)


FINISHED = serialize(None)  # the continuation of a task that has ended


def digest_parts(parts: tuple[bytes, ...]) -> bytes:
    """A 16-byte digest of a sequence of serialized values (BLAKE2b-128)."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part)
    return h.digest()


# -- which locals a suspended frame can still read -------------------------------------------
# A generator frame is encoded with only its live locals: two states that differ in a
# variable the code overwrites before reading it (a step already yielded, a page looked up
# before a retry) behave the same. Liveness comes from the bytecode; where the bytecode
# holds an instruction this analysis does not know, every local counts as live.

_NO_FALLTHROUGH = frozenset({"RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE",
                             "JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT",
                             "JUMP", "JUMP_NO_INTERRUPT"})
_JUMPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs)
_liveness: dict[types.CodeType, dict[int, frozenset[str]] | None] = {}
_layouts: dict[types.CodeType, tuple[tuple[str, ...], frozenset[str]]] = {}


def live_after(code: types.CodeType, lasti: int) -> frozenset[str] | None:
    """The locals that some path from instruction `lasti` on reads before writing them;
    None when unknown (every local is then live)."""
    if code not in _liveness:
        _liveness[code] = _analyse(code)
    table = _liveness[code]
    return None if table is None else table.get(lasti)


def _uses_defs(ins: dis.Instruction) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    op = ins.opname
    if op in ("LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR", "DELETE_FAST"):
        return (ins.argval,), ()
    if op == "STORE_FAST":
        return (), (ins.argval,)
    if op == "LOAD_FAST_LOAD_FAST":
        return tuple(ins.argval), ()
    if op == "STORE_FAST_STORE_FAST":
        return (), tuple(ins.argval)
    if op == "STORE_FAST_LOAD_FAST":
        stored, loaded = ins.argval
        return (() if loaded == stored else (loaded,)), (stored,)
    if "FAST" in op:
        return None  # an instruction on locals this analysis does not know
    return (), ()


def _analyse(code: types.CodeType) -> dict[int, frozenset[str]] | None:
    """Live locals after each instruction (backward data flow to a fixed point)."""
    instrs = list(dis.get_instructions(code))
    offsets = [ins.offset for ins in instrs]
    position = {off: n for n, off in enumerate(offsets)}
    succs: list[list[int]] = []
    uses: list[frozenset[str]] = []
    defs: list[frozenset[str]] = []
    for n, ins in enumerate(instrs):
        ud = _uses_defs(ins)
        if ud is None:
            return None
        uses.append(frozenset(ud[0]))
        defs.append(frozenset(ud[1]) - frozenset(ud[0]))
        nexts = []
        if ins.opname not in _NO_FALLTHROUGH and n + 1 < len(instrs):
            nexts.append(n + 1)
        if ins.opcode in _JUMPS:
            if ins.argval not in position:
                return None
            nexts.append(position[ins.argval])
        succs.append(nexts)
    for entry in dis.Bytecode(code).exception_entries:  # type: ignore[attr-defined]
        if entry.target not in position:
            return None
        for n, off in enumerate(offsets):
            if entry.start <= off < entry.end:
                succs[n].append(position[entry.target])
    live_in: list[frozenset[str]] = [frozenset()] * len(instrs)
    live_out: list[frozenset[str]] = [frozenset()] * len(instrs)
    changed = True
    while changed:
        changed = False
        for n in range(len(instrs) - 1, -1, -1):
            after: frozenset[str] = frozenset().union(*(live_in[m] for m in succs[n]))
            new_in = uses[n] | (after - defs[n])
            if after != live_out[n] or new_in != live_in[n]:
                live_out[n], live_in[n] = after, new_in
                changed = True
    return dict(zip(offsets, live_out, strict=True))


def _layout(code: types.CodeType) -> tuple[tuple[str, ...], frozenset[str]]:
    """The names of a frame's local slots in order, and which of them hold cells."""
    layout = _layouts.get(code)
    if layout is None:
        names: list[str] = []
        lookup = getattr(code, "_varname_from_oparg", None)
        while lookup is not None:
            try:
                names.append(lookup(len(names)))
            except (IndexError, ValueError):
                break
        layout = (tuple(names), frozenset(code.co_cellvars) | frozenset(code.co_freevars))
        _layouts[code] = layout
    return layout


def _split_frame(refs: list, code: types.CodeType, local_names: dict
                 ) -> tuple[list, list] | None:
    """A frame's cells and value stack, from what the collector sees in it: the frame's
    header, then its local slots (unbound ones skipped), then the stack. None if the
    objects are not laid out as expected (then the whole frame is encoded)."""
    names, cellfree = _layout(code)
    if not names and (code.co_varnames or cellfree):
        return None
    start = 0
    for n, r in enumerate(refs[:8]):
        if type(r) is types.CodeType or r is local_names:
            start = n + 1
    cells = []
    j = start
    for name in names:
        if name in cellfree:
            if j >= len(refs) or type(refs[j]) is not types.CellType:
                return None
            cells.append(refs[j])
        elif name in local_names:
            if j >= len(refs) or refs[j] is not local_names[name]:
                return None
        else:
            continue
        j += 1
    return cells, refs[j:]
