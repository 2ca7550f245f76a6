"""Run a stress job: make the scratch file system, write the file, start the workers, wait
(showing progress), read the file back (after fsync and a cache drop, and again after a
remount), then check every slot's history."""

from __future__ import annotations

import bisect
import difflib
import errno
import gzip
import itertools
import json
import mmap
import os
import signal
import subprocess
import sys
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from typing import IO

from .checker import (
    INF,
    Access,
    Stretches,
    choice_write,
    explain,
    linearizable,
    listing,
    shown_at,
)
from .kpaths import KernelPaths, Paths, mount_type
from .ops import (
    BETWEEN_FILES,
    FROM_OTHER,
    INIT_WORKER,
    KINDS,
    OTHER_INIT,
    PAGE,
    SCENARIOS,
    SLOT,
    SLOTS,
    TO_OTHER,
    Op,
    class_kinds,
    default_pages,
    describe_value,
    op_stream,
    own_operation,
    stamp,
)
from .scratch import scratch_fs
from .windows import Windows, count_windows
from .worker import READS_PAGE, WORDS, WorkerBuildError, refusal, worker_binary, write_ops

WRITES_SLOT = {"store", "pwrite"}
WRITES_PAGES = {"punch", "zero"}  # over op.npages pages


REPORTED = 5  # violations a report spells out; past them, "5+" and when one first showed
LOG_FORMAT = 1  # the saved run's layout; a log without the field is format 1


@dataclass
class StressConfig:
    fs: str
    scenario: str | None  # None: --mix
    workers: int = 2
    ops: int | None = 2000  # per worker; None with a duration
    duration: float | None = None
    seed: int = 0
    pages: int | None = None  # None: the scenario's default (ops.default_pages)
    size_mb: int = 256
    max_ops: int = 50_000  # per stream, with a duration: the operations drawn beforehand
    threads: int = 1  # per worker process, each with its own stream, sharing the mapping
    # Operation kinds never drawn (e.g. direct writes, whose collision with mapped writes
    # the kernel documents as incoherent); kept in the saved run so a replay matches.
    without: tuple[str, ...] = ()
    # The faulters start writeback with sync_file_range where they would msync
    # (ops.FLUSHER_FOR); kept in the saved run, so a replay matches.
    flusher: bool = False
    # The remover reads with O_DIRECT where it would pread (ops.DIRECT_FOR); kept in the
    # saved run, so a replay matches.
    direct_reads: bool = False
    # A scenario run is `ok` only if this many accesses ran inside its own operations.
    min_windows: int = 1

    @property
    def npages(self) -> int:
        """The pages, once __post_init__ has put in the scenario's default."""
        assert self.pages is not None
        return self.pages

    @property
    def streams(self) -> int:
        """Operation streams: W0 (the remover in a scenario) is the first process's first
        thread, and so on."""
        return self.workers * self.threads

    def __post_init__(self) -> None:
        self.without = tuple(self.without)
        unknown = sorted(set(self.without) - set(KINDS))
        if unknown:
            raise ValueError(f"--without: no operation {', '.join(unknown)}; there are "
                             f"{', '.join(KINDS)}")
        if self.scenario is not None and self.scenario not in SCENARIOS:
            close = difflib.get_close_matches(self.scenario, SCENARIOS, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ValueError(f"no stress scenario {self.scenario!r}; {hint}there are "
                             f"{', '.join(SCENARIOS)} (or --mix)")
        if self.pages is None:
            self.pages = default_pages(self.scenario)
        if self.workers < 1 or self.threads < 1 or self.pages < 1:
            raise ValueError("--workers, --threads and --pages must be at least 1")
        if self.scenario is not None and self.streams < 2:
            raise ValueError("a scenario needs at least 2 workers or threads (a remover and "
                             "a faulter)")
        if self.ops is None and self.duration is None:
            raise ValueError("give --ops or --duration")
        if self.scenario is not None and own_operation(self.scenario) in self.without:
            raise ValueError(f"--without {own_operation(self.scenario)}: that is "
                             f"{self.scenario}'s own operation")
        if self.direct_reads and self.scenario is None:
            raise ValueError("--direct-reads changes a race class's remover; --mix draws "
                             "direct reads already")
        for w in range(min(self.streams, 2)):  # the remover's and a faulter's kinds
            next(op_stream(self.seed, w, self.scenario, self.pages, self.without,
                           self.flusher, self.direct_reads))


@dataclass
class Executed:
    worker: int
    index: int
    op: Op
    inv: int
    resp: float  # INF: never returned
    result: int
    data: bytes = b""


@dataclass
class StressResult:
    config: StressConfig
    elapsed_s: float = 0.0
    executed: int = 0
    skipped: Counter = field(default_factory=Counter)
    by_kind: Counter = field(default_factory=Counter)  # carried out, not refused
    killed: list[str] = field(default_factory=list)  # worker processes ended by a signal
    unfinished: list[str] = field(default_factory=list)  # invoked, never returned
    slots_checked: int = 0
    histories_searched: int = 0
    shifts_checked: int = 0  # stores overlapping a collapse or insert of their slot
    shifts_unchecked: int = 0  # such stores left once nothing they showed could be reported
    violations: list[str] = field(default_factory=list)
    # When the run first showed a violation (the earliest end of a stretch of a slot's
    # history that nothing explains; an upper bound, since a check may stop early).
    first_violation_ns: float | None = None
    remounted: bool = False
    read_direct: bool = False  # the final contents were read with O_DIRECT too
    check_s: float = 0.0
    kernel_log: list[str] = field(default_factory=list)
    final_fsync_errors: list[str] = field(default_factory=list)  # then fsync succeeded
    history: list[Executed] = field(default_factory=list)
    windows: Windows | None = None  # a scenario's race windows hit (None for --mix)
    paths: Paths | None = None  # the file system's own functions the workers reached

    def shown(self, at: float | None) -> None:
        """A violation was complete at `at` (ns, the workers' clock)."""
        if at is not None and (self.first_violation_ns is None or at < self.first_violation_ns):
            self.first_violation_ns = at

    @property
    def ops_per_s(self) -> float:
        return self.executed / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def verdict(self) -> str:
        """ok, bad (a violation) or not-exercised."""
        if self.violations:
            return "bad"
        return "ok" if self.exercised else "not-exercised"

    @property
    def exercised(self) -> bool:
        """Whether the race class was given its chance: its own operation ran, at least
        `min_windows` accesses ran wholly inside one (stress/windows.py), and where the
        kernel's calls were counted, the file system's own code for the class ran. A file
        system that refuses every clone tested nothing of clone-write-fault, whatever the
        reads say; nor did a copy done through the page cache test the server's copy."""
        if self.config.scenario is None:
            return True
        if self.windows is None or self.windows.hit < self.config.min_windows:
            return False
        return not self.unreached

    @property
    def unreached(self) -> list[str]:
        """The class's operation kinds whose file-system functions were counted and never
        ran (empty where nothing was counted)."""
        if self.paths is None or self.config.scenario is None:
            return []
        return self.paths.unreached(class_kinds(self.config.scenario), self.by_kind)


def _max_ops(cfg: StressConfig) -> int:
    return cfg.ops if cfg.ops is not None else cfg.max_ops


def _initial(p: int, pages: int) -> int:
    """What page p held at the start. The checker numbers the other file's pages after
    the file's: page `pages + q` is the other file's page q."""
    return stamp(INIT_WORKER, p) if p < pages else stamp(OTHER_INIT, p - pages)


def _write_initial(path: str, pages: int, first: int = 0) -> None:
    """The file's initial contents; `first`: `pages` for the other file's."""
    with open(path, "wb") as f:
        for p in range(first, first + pages):
            f.write(_initial(p, pages).to_bytes(SLOT, "little") * SLOTS)
        f.flush()
        os.fsync(f.fileno())


def _read_all(path: str, pages: int, errors: list[str]) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            os.fsync(fd)
        except OSError as e:
            # A writeback error is reported once per file (errseq): it is noted, and a
            # second fsync says whether everything is on disk now.
            errors.append(f"{e.strerror} (errno {e.errno})")
            os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return os.pread(fd, pages * PAGE, 0)
    finally:
        os.close(fd)


def _read_direct(path: str, pages: int) -> bytes | None:
    """The file read with O_DIRECT, past the page cache; None where the file system
    refuses O_DIRECT. Called after _read_all has written everything back."""
    fd = None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        with mmap.mmap(-1, pages * PAGE) as buf:  # page-aligned, as O_DIRECT wants
            return bytes(buf[:os.preadv(fd, [buf], 0)])
    except OSError as e:
        if e.errno == errno.EINVAL:  # at the open or at the read
            return None
        raise
    finally:
        if fd is not None:
            os.close(fd)


def _kmsg_open() -> int | None:
    """/dev/kmsg positioned at its end, to read what the kernel logs during the run."""
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    os.lseek(fd, 0, os.SEEK_END)
    return fd


def _kmsg_since(fd: int | None) -> list[str]:
    """The messages logged since _kmsg_open, without their priority prefix."""
    if fd is None:
        return []
    out = []
    try:
        while True:
            try:
                out.append(os.read(fd, 8192).decode(errors="replace").split(";", 1)[-1].strip())
            except BlockingIOError:
                break
            except OSError:
                continue  # EPIPE: the ring buffer overran; keep reading
    finally:
        os.close(fd)
    return out


def _progress(logs: list[str], total: int | None, started: float, procs) -> None:
    done = sum(_invoked(path) for path in logs)
    el = time.monotonic() - started
    of = f"/{total}" if total else ""
    alive = sum(p.poll() is None for p in procs)
    sys.stderr.write(f"\r  {done}{of} operations, {done / max(el, 1e-9):,.0f} ops/s, "
                     f"{el:.1f}s, {alive} workers running ".ljust(78))
    sys.stderr.flush()


def run_stress(cfg: StressConfig, progress: bool = False,
               checking: Callable[[], None] | None = None,
               keep_probes: bool = False) -> StressResult:
    """Draw the streams, run the workers on a fresh file system, read the file back, and
    check every slot's history against what was read. `checking` is called when the
    kernel's part is over and the check begins (a guest tells its host so: a long check is
    not a hung kernel). `keep_probes`: leave the kernel-path probes for the next run
    (KernelPaths' `keep`)."""
    res = StressResult(cfg)
    with scratch_fs(cfg.fs, cfg.size_mb) as scratch, ExitStack() as cleanup:
        path = os.path.join(scratch.mnt, "fsrace.dat")
        other = os.path.join(scratch.mnt, "fsrace-other.dat")  # for the ops between files
        _write_initial(path, cfg.npages)
        _write_initial(other, cfg.npages, cfg.npages)
        rec = _Records(cfg, scratch.root, cleanup)
        kmsg = _kmsg_open()
        kinds = sorted({k for s in rec.streams for k in {o.kind for o in s}})
        with KernelPaths(mount_type(scratch.mnt), kinds, keep=keep_probes) as paths:
            t0 = _run_workers(cfg, path, other, rec, res, progress)
        res.paths = paths.result
        res.history = _read_logs(rec.streams, rec.logs, rec.datas)
        # The run ends when its last operation returns, not when the parent, polling,
        # notices the workers are gone.
        last = max((e.resp for e in res.history if e.resp != INF), default=None)
        if last is not None:
            res.elapsed_s = (last - t0) / 1e9
        finals = _final_reads(res, path, other, scratch)
        res.kernel_log = _kmsg_since(kmsg)
    _tally(res)
    if cfg.scenario is not None:
        res.windows = count_windows(res.history, cfg.scenario, cfg.npages)
    if checking is not None:
        checking()
    started = time.monotonic()
    _check(res, finals, t0)
    res.check_s = time.monotonic() - started
    if cfg.scenario is not None and res.windows is not None \
            and res.first_violation_ns is not None:
        res.windows.before_violation = count_windows(
            res.history, cfg.scenario, cfg.npages, until=res.first_violation_ns).hit
    return res


class _Records:
    """Each stream's operations (drawn up front, written where its worker reads them) and
    the files the workers record into: per stream a log of invocation and response times
    and results, and the data its reads returned."""

    def __init__(self, cfg: StressConfig, root: str, cleanup: ExitStack) -> None:
        max_ops = _max_ops(cfg)
        n = cfg.streams
        self.streams = [list(itertools.islice(op_stream(cfg.seed, w, cfg.scenario,
                                                        cfg.npages, cfg.without,
                                                        cfg.flusher, cfg.direct_reads),
                                              max_ops))
                        for w in range(n)]
        self.fds: list[int] = []
        self._cleanup = cleanup
        self.logs = [self._file(f"fsrace-log{w}", len(self.streams[w]) * WORDS * 8)
                     for w in range(n)]
        self.datas = [self._file(f"fsrace-data{w}",
                                 max(sum(o.kind in READS_PAGE for o in self.streams[w]), 1)
                                 * PAGE) for w in range(n)]
        self.opsfiles = [os.path.join(root, f"stream{w}.ops") for w in range(n)]
        for w in range(n):
            write_ops(self.opsfiles[w], self.streams[w])

    def _file(self, name: str, size: int) -> str:
        """A file in memory (memfd: no disk block to reserve when a worker first writes a
        page of it), sparse, passed to the workers by descriptor."""
        fd = os.memfd_create(name)
        self._cleanup.callback(os.close, fd)
        os.ftruncate(fd, size)
        self.fds.append(fd)
        return f"/proc/self/fd/{fd}"


def _run_workers(cfg: StressConfig, path: str, other: str, rec: _Records,
                 res: StressResult, progress: bool) -> int:
    """Start the worker processes, release them together once each is ready, wait for
    them (killing any left on the way out), and note how each ended. Returns the start
    time (monotonic ns)."""
    binary = str(worker_binary())
    started = time.monotonic()
    deadline = time.monotonic_ns() + int(cfg.duration * 1e9) if cfg.duration else 0
    members = [range(p * cfg.threads, (p + 1) * cfg.threads) for p in range(cfg.workers)]

    def start(p: int) -> subprocess.Popen:
        args = [binary, path, other, str(cfg.pages), str(deadline)]
        for w in members[p]:
            args += [str(w), rec.opsfiles[w], rec.logs[w], rec.datas[w]]
        return subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, pass_fds=rec.fds)

    def name(p: int) -> str:
        return f"W{p}" if cfg.threads == 1 else f"process {p} (W{members[p][0]}-" \
            f"W{members[p][-1]})"

    procs = []
    try:
        procs = [start(p) for p in range(cfg.workers)]
        for p, proc in enumerate(procs):  # each says it is ready; then all start at once
            if _pipe(proc.stdout).read(1) != b"r":
                raise WorkerBuildError(f"worker {name(p)} failed to start: "
                                       + _pipe(proc.stderr).read().decode(errors="replace"))
        t0 = time.monotonic_ns()
        for proc in procs:
            _pipe(proc.stdin).write(b"g")
            _pipe(proc.stdin).close()
        for proc in procs:
            while True:
                try:
                    proc.wait(0.5)
                    break
                except subprocess.TimeoutExpired:
                    if progress:
                        _progress(rec.logs, None if cfg.ops is None else cfg.ops * cfg.streams,
                                  started, procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if progress:
            sys.stderr.write("\r" + " " * 78 + "\r")
    res.elapsed_s = (time.monotonic_ns() - t0) / 1e9  # from the start
    for p, proc in enumerate(procs):
        if proc.returncode != 0:
            sig = -proc.returncode if proc.returncode < 0 else None
            how = signal.Signals(sig).name if sig else f"exit {proc.returncode}"
            err = _pipe(proc.stderr).read().decode(errors="replace").strip()
            res.killed.append(f"{name(p)} ended by {how}" + (f": {err}" if err else ""))
        _close(proc)
    return t0


def _final_reads(res: StressResult, path: str, other: str, scratch
                 ) -> list[tuple[str, int, bytes, bytes]]:
    """The file's contents after fsync and a dropped cache, then read with O_DIRECT where
    the file system allows it (what its disk or server holds), and again after a remount
    where the file system allows one: (what, when, contents, the other file's)."""
    n, errors = res.config.npages, res.final_fsync_errors

    def both() -> tuple[bytes, bytes]:
        return _read_all(path, n, errors), _read_all(other, n, errors)

    finals = [("final read (fsync, cache dropped)", time.monotonic_ns(), *both())]
    # A network client may keep answering from what it believes (9p's netfs reads a page
    # past a truncate as zeros, whatever the server holds): read past its cache too.
    mine, others = _read_direct(path, n), _read_direct(other, n)
    if mine is not None and others is not None:
        res.read_direct = True
        finals.append(("final read with O_DIRECT", time.monotonic_ns(), mine, others))
    if scratch.remount():
        res.remounted = True
        finals.append(("final read after remount", time.monotonic_ns(), *both()))
    return finals


def _tally(res: StressResult) -> None:
    """Operations carried out, refused (by kind and error) and never returned."""
    res.executed = sum(1 for e in res.history if e.result >= 0 and e.resp != INF)
    for e in res.history:
        if e.result < 0:
            res.skipped[f"{e.op.kind} ({refusal(e.result)})"] += 1
        else:
            res.by_kind[e.op.kind] += 1  # operations the file system carried out
        if e.resp == INF:
            res.unfinished.append(f"W{e.worker} op {e.index} ({e.op})")


def _close(proc: subprocess.Popen) -> None:
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        _pipe(pipe).close()


def _pipe(pipe: IO[bytes] | None) -> IO[bytes]:
    """A pipe of a worker, which is always started with all three."""
    assert pipe is not None, "a worker is started with stdin, stdout and stderr piped"
    return pipe


def _invoked(log: str) -> int:
    """How many operations a worker's log shows invoked (records are written in order)."""
    with open(log, "rb") as f:
        lo, hi = 0, os.path.getsize(log) // (WORDS * 8)
        while lo < hi:  # the first record never invoked
            mid = (lo + hi) // 2
            f.seek(mid * WORDS * 8)
            if int.from_bytes(f.read(8), "little"):
                lo = mid + 1
            else:
                hi = mid
    return lo


def _read_logs(streams: list[list[Op]], logs: list[str], datas: list[str]) -> list[Executed]:
    out = []
    for w, (log, data_path) in enumerate(zip(logs, datas, strict=True)):
        words = array("q")
        with open(log, "rb") as f:
            words.frombytes(f.read())
        with open(data_path, "rb") as f:
            pages = f.read()
        page = 0
        for i, op in enumerate(streams[w]):
            inv, resp, result, loaded = words[i * WORDS:(i + 1) * WORDS]
            if not inv:
                break
            if op.kind in READS_PAGE:
                data = pages[page * PAGE:page * PAGE + max(result, 0)]
                page += 1
            else:
                data = loaded.to_bytes(SLOT, "little", signed=True) if op.kind == "load" else b""
            out.append(Executed(w, i, op, inv, resp if resp else INF, result, data))
    return out


def _words(data: bytes) -> array:
    a = array("Q")
    a.frombytes(data[:len(data) // SLOT * SLOT])
    return a


OTHER = -1  # the class of the slots no store, load or pwrite touches


@dataclass
class _Write:
    """A write in a register's history, by worker `worker`: fixed values, or those of
    move `move`."""
    inv: float
    resp: float
    who: str
    worker: int
    values: tuple[int, ...] = ()
    move: int = -1


@dataclass
class _Move:
    """Op `who` stores into register (page, cls) what (src, cls) held meanwhile (and, if
    `keep`, perhaps leaves what the register held: a copy that stopped inside the page)."""
    inv: float
    resp: float
    who: str
    page: int
    cls: int
    src: int
    keep: bool = False
    kind: str = ""  # the operation's kind
    worker: int = 0


class _Register:
    """One register's writes indexed by time, to ask what it may hold in a window
    (checker.window_values, by binary search). A worker runs one operation at a time, so
    its writes' invocations and returns both increase: a window is a slice of each
    worker's list."""

    def __init__(self, initial: int, writes: list[_Write]):
        self.initial = initial
        self.pending = [w for w in writes if w.resp == INF]
        per: dict[int, list[_Write]] = defaultdict(list)
        for w in writes:
            if w.resp != INF:
                per[w.worker].append(w)
        self.workers = [(ws, [w.inv for w in ws], [w.resp for w in ws])
                        for ws in (sorted(ws, key=lambda w: w.inv) for ws in per.values())]

    def window(self, inv: float, resp: float, exclude: str, moved: list[set],
               narrowed: tuple[_Write, float, float] | None = None) -> set[int]:
        """`narrowed`: (a write of this register, its interval taken as this instead)."""
        last_start = -INF  # the latest start of a write that returned before inv
        for _, invs, resps in self.workers:
            k = bisect.bisect_left(resps, inv)
            if k and invs[k - 1] > last_start:
                last_start = invs[k - 1]
        nw = None
        if narrowed is not None:
            nw, _, narrowed_resp = narrowed
            if narrowed_resp < inv <= nw.resp:  # it certainly took effect before inv now
                last_start = max(last_start, nw.inv)
        out = set() if last_start > -INF else {self.initial}
        for ws, invs, resps in self.workers:
            for w in ws[bisect.bisect_left(resps, last_start):bisect.bisect_right(invs, resp)]:
                if w.who != exclude and w is not nw:
                    out.update(w.values if w.move < 0 else moved[w.move])
        if narrowed is not None and narrowed[1] <= resp and narrowed[2] >= last_start:
            out.update(narrowed[0].values)
        for w in self.pending:
            if w.inv <= resp and w.who != exclude:
                out.update(w.values if w.move < 0 else moved[w.move])
        return out


def _effects(e: Executed, pages: int):
    """What operation e did to each page: ("read", p), ("write", p, value) or
    ("move", p, src, keep)."""
    op, k = e.op, e.op.npages
    if op.kind in READS_PAGE:
        yield "read", op.page
    elif op.kind == "dio_write":
        yield "write", op.page, stamp(e.worker, e.index)
    elif op.kind in WRITES_PAGES:
        for p in range(op.page, op.page + k):
            yield "write", p, 0
    elif op.kind == "truncate":
        for p in range(op.size // PAGE, pages):
            yield "write", p, 0
    elif op.kind == "collapse":  # pages after the range move down; the restored tail is 0
        for p in range(op.page, pages):
            yield ("move", p, p + k, False) if p + k < pages else ("write", p, 0)
    elif op.kind == "insert":  # pages from the range on move up; the range is a hole
        for p in range(op.page, pages):
            yield ("move", p, p - k, False) if p >= op.page + k else ("write", p, 0)
    elif op.kind in ("copy", "clone", *BETWEEN_FILES):
        # A copy may stop short. The other file's pages come after the file's.
        copied = e.result if op.kind.startswith("copy") else k * PAGE
        to = pages if op.kind in TO_OTHER else 0
        frm = pages if op.kind in FROM_OTHER else 0
        for i in range(min(-(-copied // PAGE), k)):
            yield "move", to + op.page + i, frm + op.src + i, copied < (i + 1) * PAGE
    # a dedupe shares blocks only where both ranges hold the same bytes: values unchanged


def _check(res: StressResult, finals, t0: int) -> None:
    """Build each slot's history and search it. A page's slots fall in classes: each slot
    that stores, loads and pwrites use, and the rest, which share one history; within a
    class, slots that saw the same values in every page-wide read share one search."""
    h = _Histories(res)
    moved = _moved_values(h)
    notes = {p: KNOWN_COLLISION for p in _direct_beside_mapped(res.history, "dio_write")}
    if res.config.direct_reads:
        for p in _direct_beside_mapped(res.history, "dio_read"):
            notes[p] = notes.get(p, "") + DIRECT_READS_NOTE
    pairs = _stores_beside_shifts(h)
    joint = _Joint(h, pairs) if pairs else None
    n = res.config.npages
    # The other file's pages too where an operation between the files ran.
    between = any(e.op.kind in BETWEEN_FILES and e.result >= 0 for e in res.history)
    for p in range(2 * n if between else n):
        _check_page(res, h, moved, p, finals, t0, notes.get(p, ""), joint)
    if joint is not None:
        _check_stores_across_shifts(res, h, moved, joint, t0)


class _Histories:
    """What the executed operations did to each page, sorted for the slot histories:
    page-wide reads, page-wide writes (the same in every class), each class's own stores
    and pwrites, loads, and the moves (data carried from one page to another) into each
    class."""

    def __init__(self, res: StressResult) -> None:
        self.page_reads: dict[int, list[tuple[float, float, str, array]]] = defaultdict(list)
        self.fixed: dict[int, list[_Write]] = defaultdict(list)
        self.own: dict[tuple[int, int], list[_Write]] = defaultdict(list)
        self.moved_in: dict[tuple[int, int], list[_Write]] = defaultdict(list)
        self.loads: dict[tuple[int, int], list[Access]] = defaultdict(list)
        self.moves: list[_Move] = []
        self.pages = res.config.npages
        self.touched = sorted({e.op.slot for e in res.history
                               if e.op.kind in WRITES_SLOT | {"load"}})
        classes = (OTHER, *self.touched)
        for e in res.history:
            op = e.op
            if e.result < 0:
                continue  # refused by the file system: not executed
            who = f"W{e.worker} op {e.index} {op}"
            if op.kind in WRITES_SLOT:
                self.own[(op.page, op.slot)].append(
                    _Write(e.inv, e.resp, who, e.worker, (stamp(e.worker, e.index),)))
                continue
            if op.kind == "load":
                if e.resp != INF:
                    self.loads[(op.page, op.slot)].append(
                        Access(e.inv, e.resp, False, int.from_bytes(e.data[:SLOT], "little"),
                               who))
                continue
            for what, p, *rest in _effects(e, res.config.npages):
                if what == "read":
                    if e.resp != INF:
                        self.page_reads[p].append((e.inv, e.resp, who, _words(e.data)))
                elif what == "write":
                    self.fixed[p].append(_Write(e.inv, e.resp, who, e.worker, (rest[0],)))
                else:
                    for c in classes:
                        self.moved_in[(p, c)].append(
                            _Write(e.inv, e.resp, who, e.worker, move=len(self.moves)))
                        src, keep = rest
                        self.moves.append(_Move(e.inv, e.resp, who, p, c, src, keep,
                                                op.kind, e.worker))
        self._registers: dict[tuple[int, int], _Register] = {}

    def writes(self, p: int, c: int) -> list[_Write]:
        """Every write of slot class c of page p."""
        return self.fixed[p] + self.own[(p, c)] + self.moved_in[(p, c)]

    def register(self, p: int, c: int) -> _Register:
        """The writes of (p, c) indexed by time (built for the registers moves read)."""
        reg = self._registers.get((p, c))
        if reg is None:
            reg = self._registers[(p, c)] = _Register(_initial(p, self.pages),
                                                      self.writes(p, c))
        return reg


def _moved_values(h: _Histories) -> list[set[int]]:
    """What each move stored: the least fixed point, growing from nothing (a move's source
    may itself have been written by moves). Moves come in time order, so the first pass
    finds nearly everything; later ones revisit the moves whose source changed."""
    register = h.register
    moves = h.moves
    moved: list[set[int]] = [set() for _ in moves]
    todo = list(range(len(moves)))
    while todo:
        grew = set()
        for i in todo:
            m = moves[i]
            vals = register(m.src, m.cls).window(m.inv, m.resp, m.who, moved)
            if m.keep:
                vals |= register(m.page, m.cls).window(m.inv, m.resp, m.who, moved)
            if not vals <= moved[i]:
                moved[i] |= vals
                grew.add((m.page, m.cls))
        todo = [i for i, m in enumerate(moves)
                if (m.src, m.cls) in grew or m.keep and (m.page, m.cls) in grew]
    return moved


def _check_page(res: StressResult, h: _Histories, moved: list[set[int]], p: int, finals,
                t0: int, note: str, joint: _Joint | None) -> None:
    """Search the history of each slot of page p against every value read from it; keep
    the searched histories the joint check needs. `note` ends each violation's text (a
    known collision the page saw)."""

    def accesses(ws: list[_Write]) -> list[Access]:
        return [choice_write(w.inv, w.resp, moved[w.move], w.who) if w.move >= 0 else
                Access(w.inv, w.resp, True, w.values[0], w.who) for w in ws]

    init = _initial(p, h.pages)
    q = p % h.pages  # the page within its file (finals: the file's contents, the other's)
    reads = h.page_reads[p] + [(t, t, name, _words(files[p >= h.pages][q * PAGE:(q + 1) * PAGE]))
                               for name, t, *files in finals]
    page_wide = accesses(h.fixed[p])
    hists = {OTHER: page_wide + accesses(h.moved_in[(p, OTHER)])}
    others_moved = [moved[w.move] for w in h.moved_in[(p, OTHER)]]
    for c in h.touched:  # a class of its own where it has its own operations or values
        if (h.own[(p, c)] or h.loads[(p, c)]
                or [moved[w.move] for w in h.moved_in[(p, c)]] != others_moved):
            hists[c] = (page_wide + accesses(h.own[(p, c)] + h.moved_in[(p, c)])
                        + h.loads[(p, c)])
    searched: dict[tuple, bool] = {}
    for s in range(SLOTS):
        column = tuple(words[s] if s < len(words) else None for *_, words in reads)
        base = hists.get(s, hists[OTHER])
        key = (column, id(base))
        ok = searched.get(key)
        res.slots_checked += 1
        keep = joint if joint is not None and (p, s) in joint.needed else None
        if ok is not None and keep is None:
            continue
        hist = base + [Access(inv, resp, False, v, who) for (inv, resp, who, _), v
                       in zip(reads, column, strict=True) if v is not None]
        if keep is not None:
            stretches = Stretches(hist, init)
            keep.keep(p, s, hist, stretches)
            if ok is not None:
                continue
            ok = searched[key] = stretches.holds
        else:
            ok = searched[key] = linearizable(hist, init)
        res.histories_searched += 1
        if not ok:
            res.shown(shown_at(hist, init))
        if not ok and len(res.violations) < REPORTED:
            where = (f"page {p} slot {s} (file offset {p * PAGE + s * SLOT})" if p < h.pages
                     else f"the other file's page {p - h.pages} slot {s} (offset "
                     f"{(p - h.pages) * PAGE + s * SLOT})")
            res.violations.append(
                f"{where}: no order of "
                "these operations consistent with real time gives the values read\n"
                + explain(hist, init, t0, describe_value)
                + note)


# Collapse and insert shift a page's data to another page and other data onto it, at one
# instant under the file system's locks. A store that overlaps one lands before the shift
# (its value moves) or after it (it stays, over what moved in). The slots are searched one
# at a time, so the source's search may place the store before the shift while the
# destination's places it after: a store lost in both places passes. For every store that
# overlaps a shift of its slot, one order must explain both slots.
SHIFTS = frozenset({"collapse", "insert"})


def _stores_beside_shifts(h: _Histories) -> list[tuple[_Write, int]]:
    """Each store that overlaps a shift reading its slot, with that shift (by index)."""
    # The shifts reading each register, per worker in time order (a worker runs one
    # operation at a time, so both ends of its operations increase).
    reading: dict[tuple[int, int], dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, m in enumerate(h.moves):
        if m.kind in SHIFTS and m.resp != INF:
            reading[(m.src, m.cls)][m.worker].append(i)
    pairs = []
    for (p, c), per_worker in reading.items():
        stores = [w for w in h.own[(p, c)] if w.resp != INF]
        for moves in per_worker.values():
            resps = [h.moves[i].resp for i in moves]
            invs = [h.moves[i].inv for i in moves]
            for w in stores:
                pairs += [(w, i) for i in moves[bisect.bisect_left(resps, w.inv):
                                                 bisect.bisect_right(invs, w.resp)]]
    return pairs


class _Slot:
    """One slot of one page as searched: its history cut into stretches
    (checker.Stretches), and the writes of the operations the joint check asks about."""

    def __init__(self, history: list[Access], stretches: Stretches, ops: set[str]) -> None:
        self.history = history
        self.stretches = stretches
        self.by_op: dict[str, list[Access]] = defaultdict(list)
        for a in history:
            if a.write and a.who in ops:
                self.by_op[a.who].append(a)
        self.resps = sorted(a.resp for a in stretches.ops)  # nearly sorted already

    def times_in(self, lo: float, hi: float) -> list[float]:
        """The instants in [lo, hi] at which an operation of this slot began or returned."""
        invs = self.stretches.invs
        return (invs[bisect.bisect_left(invs, lo):bisect.bisect_right(invs, hi)]
                + self.resps[bisect.bisect_left(self.resps, lo):
                             bisect.bisect_right(self.resps, hi)])


class _Joint:
    """The stores beside shifts, and the slots and operations their checks need, kept as
    the slots are searched."""

    def __init__(self, h: _Histories, pairs: list[tuple[_Write, int]]) -> None:
        self.pairs = pairs
        self.needed = {(h.moves[i].src, h.moves[i].cls) for _, i in pairs} | {
            (h.moves[i].page, h.moves[i].cls) for _, i in pairs}
        self.ops = {w.who for w, _ in pairs} | {h.moves[i].who for _, i in pairs}
        self.slots: dict[tuple[int, int], _Slot] = {}

    def keep(self, p: int, c: int, history: list[Access], stretches: Stretches) -> None:
        self.slots[(p, c)] = _Slot(history, stretches, self.ops)


def _check_stores_across_shifts(res: StressResult, h: _Histories, moved: list[set[int]],
                                joint: _Joint, t0: int) -> None:
    # In the order their violations would be complete (both operations returned): once
    # the report is full and showed a violation no later than the next pair could, the
    # rest can change neither the report nor when the run first showed one. A kernel that
    # loses stores across shifts gives hundreds of such pairs, each failing every cut of
    # both orders: checking them all cost a guest minutes for nothing it printed.
    def slots(i: int) -> tuple[_Slot, _Slot]:
        m = h.moves[i]
        return joint.slots[(m.src, m.cls)], joint.slots[(m.page, m.cls)]

    # (A pair whose slot failed on its own was reported slot by slot.)
    pairs = sorted(((w, i) for w, i in joint.pairs
                    if all(s.stretches.holds for s in slots(i))),
                   key=lambda pair: max(pair[0].resp, h.moves[pair[1]].resp))
    for n, (w, i) in enumerate(pairs):
        m = h.moves[i]
        src, dst = slots(i)
        hi = max(w.resp, m.resp)
        if (len(res.violations) >= REPORTED and res.first_violation_ns is not None
                and res.first_violation_ns <= hi):
            res.shifts_unchecked = len(pairs) - n
            return
        res.shifts_checked += 1
        if _one_order(h, moved, w, i, src, dst):
            continue
        p, c = m.src, m.cls
        lo = min(w.inv, m.inv)
        res.shown(hi)
        if len(res.violations) >= REPORTED:
            continue
        res.violations.append(
            f"page {p} slot {c} (file offset {p * PAGE + c * SLOT}): a store lost "
            f"across a shift: {w.who} overlapped {m.who}, and neither order "
            f"explains both this slot and page {m.page} slot {c}, where the "
            f"{m.kind} moves it\n  page {p} slot {c}:\n"
            + listing(src.history, lo, hi, t0, describe_value)
            + f"\n  page {m.page} slot {c}:\n"
            + listing(dst.history, lo, hi, t0, describe_value))


def _one_order(h: _Histories, moved: list[set[int]], store: _Write, i: int, src: _Slot,
               dst: _Slot) -> bool:
    """Whether the store before shift i, or after it, explains both the store's slot
    (`src`) and the slot the shift moves it to (`dst`). The order is imposed by a cut
    between their instants: the store ends by x, the shift starts after it (or the other
    way round). Only the positions of x among the histories' own times matter, so one cut
    per gap between them is tried. The two orders' cuts are tried in turn: a store that
    landed after the shift fails every cut of the other order, and a slow shift has
    hundreds of them."""
    m = h.moves[i]
    s = src.by_op[store.who][0]
    own = src.by_op[m.who]
    into = dst.by_op[m.who][0]  # a shift writes a slot once
    reg = h.register(m.src, m.cls)

    def cuts(before: bool):
        lo, hi = (s.inv, m.resp) if before else (m.inv, s.resp)
        times = sorted({lo, hi, *src.times_in(lo, hi), *dst.times_in(lo, hi)})
        for a, b in itertools.pairwise(times):
            # the first ends by x, the second starts at y
            yield before, a + (b - a) / 3, a + 2 * (b - a) / 3

    for cut in itertools.chain.from_iterable(itertools.zip_longest(cuts(True), cuts(False))):
        if cut is None:
            continue
        before, x, y = cut
        if before:
            s2 = replace(s, resp=min(s.resp, x))
            changed = [(s, s2), *((o, replace(o, inv=max(o.inv, y))) for o in own)]
            span = (max(m.inv, y), m.resp)
        else:
            s2 = replace(s, inv=max(s.inv, y))
            changed = [(s, s2), *((o, replace(o, resp=min(o.resp, x))) for o in own)]
            span = (m.inv, min(m.resp, x))
        values = reg.window(*span, m.who, moved, (store, s2.inv, s2.resp))
        if not src.stretches.holds_with(changed):
            continue
        if dst.stretches.holds_with([(into, choice_write(*span, values, into.who))]):
            return True
    return False


KNOWN_COLLISION = (
    "\n  (the known collision, perhaps: this page had direct writes and mapped stores in one "
    "run, which the kernel documents as incoherent (a page dirtied through a mapping can "
    "survive, or undo, a direct write); rerun with --without dio_write to look past it)")
DIRECT_READS_NOTE = (
    "\n  (with --direct-reads, perhaps: the remover read this page with O_DIRECT beside stores "
    "through a mapping, and a client whose direct reads do not write back the pages a mapping "
    "dirtied (NFS's, on 6.12.118) misses a completed store that way: that incoherence, not a "
    "race of the class's operation)")


def _direct_beside_mapped(history: list[Executed], kind: str) -> set[int]:
    """Pages that saw both a direct I/O of `kind` and a store through the mapping."""
    direct = {e.op.page for e in history if e.op.kind == kind and e.result >= 0}
    mapped = {e.op.page for e in history if e.op.kind == "store" and e.result >= 0}
    return direct & mapped


def save_log(res: StressResult, path: str) -> None:
    """The run's configuration, every operation with its times and result, and the
    verdict, gzipped JSON: `fsrace stress --replay` reruns the same operations."""
    doc = {
        "format": LOG_FORMAT,
        "kernel": os.uname().release,  # where it ran (a guest's own in --vm)
        "config": asdict(res.config),
        "windows": res.windows.as_dict() if res.windows else None,
        "paths": res.paths.as_dict() if res.paths else None,
        "elapsed_s": res.elapsed_s,
        "executed": res.executed,
        "killed": res.killed,
        "violations": res.violations,
        "kernel_log": res.kernel_log,
        "operations": [
            {"worker": e.worker, "index": e.index, "op": str(e.op), "kind": e.op.kind,
             "page": e.op.page, "invoked_ns": e.inv,
             "returned_ns": None if e.resp == INF else e.resp, "result": e.result}
            for e in res.history
        ],
    }
    part = f"{path}.part"  # never a half-written log under the real name
    with gzip.open(part, "wt") as f:
        json.dump(doc, f)
    os.replace(part, path)


def load_config(path: str) -> StressConfig:
    """The configuration of a saved run; ValueError if the file is not one this fsrace
    can replay."""
    try:
        with gzip.open(path, "rt") as f:
            doc = json.load(f)
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a saved fsrace stress run (gzipped JSON): {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        raise ValueError(f"{path} is not a saved fsrace stress run: it has no configuration")
    if doc.get("format", 1) != LOG_FORMAT:
        raise ValueError(f"{path} was saved in log format {doc.get('format')!r}; this fsrace "
                         f"reads format {LOG_FORMAT}")
    try:
        return StressConfig(**doc["config"])
    except TypeError as e:
        raise ValueError(f"{path}: its configuration does not fit this fsrace: {e}") from e
