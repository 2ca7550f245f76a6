"""Run a stress job: make the scratch file system, write the file, start the workers, wait
(showing progress), read the file back (after fsync and a cache drop, and again after a
remount), then check every slot's history."""

from __future__ import annotations

import gzip
import itertools
import json
import multiprocessing
import os
import signal
import sys
import time
from array import array
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

from .checker import INF, Access, explain, linearizable
from .ops import INIT_WORKER, PAGE, SCENARIOS, SLOT, SLOTS, Op, describe_value, op_stream, stamp
from .scratch import scratch_fs
from .worker import HEADER, RECORD, run_worker

WRITES_SLOT = {"store", "pwrite"}
WRITES_PAGES = {"punch", "zero"}  # over op.npages pages
ONE_PAGE = {"pread", "dio_read", "dio_write"}
READS_PAGE = {"pread", "dio_read"}


@dataclass
class StressConfig:
    fs: str
    scenario: str | None  # None: --mix
    workers: int = 2
    ops: int | None = 2000  # per worker; None with a duration
    duration: float | None = None
    seed: int = 0
    pages: int = 64
    size_mb: int = 256

    def __post_init__(self) -> None:
        if self.scenario is not None and self.scenario not in SCENARIOS:
            raise ValueError(f"no stress scenario {self.scenario!r}; there are "
                             f"{', '.join(SCENARIOS)} (or --mix)")
        if self.workers < 1 or self.pages < 1:
            raise ValueError("--workers and --pages must be at least 1")
        if self.scenario is not None and self.workers < 2:
            raise ValueError("a scenario needs at least 2 workers (a remover and a faulter)")
        if self.ops is None and self.duration is None:
            raise ValueError("give --ops or --duration")


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
    by_kind: Counter = field(default_factory=Counter)
    killed: list[str] = field(default_factory=list)
    restarts: int = 0
    unfinished: list[str] = field(default_factory=list)  # invoked, never returned
    slots_checked: int = 0
    histories_searched: int = 0
    violations: list[str] = field(default_factory=list)
    remounted: bool = False
    check_s: float = 0.0
    kernel_log: list[str] = field(default_factory=list)
    history: list[Executed] = field(default_factory=list)

    @property
    def ops_per_s(self) -> float:
        return self.executed / self.elapsed_s if self.elapsed_s else 0.0


def _max_ops(cfg: StressConfig) -> int:
    return cfg.ops if cfg.ops is not None else 50_000


def _write_initial(path: str, pages: int) -> None:
    with open(path, "wb") as f:
        for p in range(pages):
            f.write(stamp(INIT_WORKER, p).to_bytes(SLOT, "little") * SLOTS)
        f.flush()
        os.fsync(f.fileno())


def _read_all(path: str, pages: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return os.pread(fd, pages * PAGE, 0)
    finally:
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
    alive = sum(p.is_alive() for p in procs)
    sys.stderr.write(f"\r  {done}{of} operations, {done / max(el, 1e-9):,.0f} ops/s, "
                     f"{el:.1f}s, {alive} workers running ".ljust(78))
    sys.stderr.flush()


def run_stress(cfg: StressConfig, progress: bool = False) -> StressResult:
    res = StressResult(cfg)
    with scratch_fs(cfg.fs, cfg.size_mb) as scratch:
        path = os.path.join(scratch.mnt, "fsrace.dat")
        _write_initial(path, cfg.pages)
        max_ops = _max_ops(cfg)
        logs = []
        for w in range(cfg.workers):
            log = os.path.join(scratch.root, f"worker{w}.log")
            with open(log, "wb") as f:
                f.truncate(max_ops * RECORD)  # sparse: only what is written takes space
            logs.append(log)
        streams = [list(itertools.islice(op_stream(cfg.seed, w, cfg.scenario, cfg.pages),
                                         max_ops)) for w in range(cfg.workers)]
        ctx = multiprocessing.get_context("fork")
        barrier = ctx.Barrier(cfg.workers + 1)
        kmsg = _kmsg_open()
        started = time.monotonic()
        deadline = time.monotonic_ns() + int(cfg.duration * 1e9) if cfg.duration else 0
        procs = [ctx.Process(target=run_worker, name=f"W{w}",
                             args=(w, path, cfg.pages, streams[w], deadline, logs[w],
                                   barrier))
                 for w in range(cfg.workers)]
        try:
            for p in procs:
                p.start()
            barrier.wait(timeout=60)
            t0 = time.monotonic_ns()
            while any(p.is_alive() for p in procs):
                for w, p in enumerate(procs):
                    p.join(timeout=0.5 / cfg.workers)
                    if p.exitcode == -signal.SIGBUS:
                        # Killed by a fault past EOF: report it, and let a new process
                        # take the stream up after the operation it died in.
                        stuck = _invoked(logs[w]) - 1
                        res.killed.append(f"W{w} killed by SIGBUS in op {stuck}")
                        procs[w] = ctx.Process(
                            target=run_worker, name=f"W{w}",
                            args=(w, path, cfg.pages, streams[w], deadline, logs[w],
                                  None, stuck + 1))
                        procs[w].start()
                if progress:
                    _progress(logs, None if cfg.ops is None else cfg.ops * cfg.workers,
                              started, procs)
        finally:
            for p in procs:
                if p.is_alive():
                    p.kill()
                    p.join()
            if progress:
                sys.stderr.write("\r" + " " * 78 + "\r")
        res.elapsed_s = (time.monotonic_ns() - t0) / 1e9  # from the start barrier
        for w, p in enumerate(procs):
            if p.exitcode not in (0, None):
                sig = -p.exitcode if p.exitcode < 0 else None
                name = signal.Signals(sig).name if sig else f"exit {p.exitcode}"
                res.killed.append(f"W{w} ended by {name}")
        res.restarts = sum("SIGBUS" in k for k in res.killed)
        res.history = _read_logs(streams, logs)
        final = _read_all(path, cfg.pages)
        t_final = time.monotonic_ns()
        finals = [("final read (fsync, cache dropped)", t_final, final)]
        if scratch.remount():
            res.remounted = True
            finals.append(("final read after remount", time.monotonic_ns(),
                           _read_all(path, cfg.pages)))
        res.kernel_log = _kmsg_since(kmsg)
    res.executed = sum(1 for e in res.history if e.result >= 0 and e.resp != INF)
    for e in res.history:
        res.by_kind[e.op.kind] += 1
        if e.result < 0:
            res.skipped[f"{e.op.kind} ({os.strerror(-e.result)})"] += 1
        if e.resp == INF:
            res.unfinished.append(f"W{e.worker} op {e.index} ({e.op})")
    checking = time.monotonic()
    _check(res, finals, t0)
    res.check_s = time.monotonic() - checking
    return res


def _invoked(log: str) -> int:
    """How many operations a worker's log shows invoked (records are written in order)."""
    with open(log, "rb") as f:
        lo, hi = 0, os.path.getsize(log) // RECORD
        while lo < hi:  # the first record never invoked
            mid = (lo + hi) // 2
            f.seek(mid * RECORD)
            if int.from_bytes(f.read(8), "little"):
                lo = mid + 1
            else:
                hi = mid
    return lo


def _read_logs(streams: list[list[Op]], logs: list[str]) -> list[Executed]:
    out = []
    for w, path in enumerate(logs):
        with open(path, "rb") as f:
            for i, op in enumerate(streams[w]):
                rec = f.read(RECORD)
                inv, resp, result = (int.from_bytes(rec[k * 8:k * 8 + 8], "little", signed=True)
                                     for k in range(HEADER))
                if not inv:
                    break
                data = rec[HEADER * 8:HEADER * 8 + max(result, 0)]
                out.append(Executed(w, i, op, inv, resp if resp else INF, result, data))
    return out


def _words(data: bytes) -> array:
    a = array("Q")
    a.frombytes(data[:len(data) // SLOT * SLOT])
    return a


def _check(res: StressResult, finals, t0: int) -> None:
    """Build each slot's history and search it. Within a page, slots that saw the same
    values in every page-wide read and had no operation of their own share one search."""
    cfg = res.config
    page_ops: dict[int, list[tuple[Executed, str]]] = defaultdict(list)  # all-slot ops
    slot_ops: dict[tuple[int, int], list[Access]] = defaultdict(list)
    for e in res.history:
        op = e.op
        if e.result < 0:
            continue  # refused by the file system: not executed
        who = f"W{e.worker} op {e.index} {op}"
        if op.kind in WRITES_SLOT:
            slot_ops[(op.page, op.slot)].append(
                Access(e.inv, e.resp, True, stamp(e.worker, e.index), who))
        elif op.kind == "load" and e.resp != INF:
            slot_ops[(op.page, op.slot)].append(
                Access(e.inv, e.resp, False, int.from_bytes(e.data[:SLOT], "little"), who))
        elif op.kind in WRITES_PAGES or op.kind in ONE_PAGE:
            for p in range(op.page, op.page + (op.npages if op.kind in WRITES_PAGES else 1)):
                page_ops[p].append((e, who))
        elif op.kind == "truncate":
            for p in range(op.size // PAGE, cfg.pages):
                page_ops[p].append((e, who))
    for p in range(cfg.pages):
        init = stamp(INIT_WORKER, p)
        writes: list[Access] = []
        reads: list[tuple[float, float, str, array]] = []
        for e, who in page_ops[p]:
            if e.op.kind in READS_PAGE:
                if e.resp != INF:
                    reads.append((e.inv, e.resp, who, _words(e.data)))
            else:
                value = stamp(e.worker, e.index) if e.op.kind == "dio_write" else 0
                writes.append(Access(e.inv, e.resp, True, value, who))
        for name, t, data in finals:
            reads.append((t, t, name, _words(data[p * PAGE:(p + 1) * PAGE])))
        searched: dict[tuple, bool] = {}
        for s in range(SLOTS):
            column = tuple(words[s] if s < len(words) else None for *_, words in reads)
            own = slot_ops.get((p, s))
            key = (column, id(own) if own else None)
            ok = searched.get(key)
            res.slots_checked += 1
            if ok is not None:
                continue
            hist = writes + (own or []) + [Access(inv, resp, False, v, who) for
                                           (inv, resp, who, _), v in zip(reads, column,
                                                                         strict=True)
                                           if v is not None]
            ok = searched[key] = linearizable(hist, init)
            res.histories_searched += 1
            if not ok and len(res.violations) < 5:
                res.violations.append(
                    f"page {p} slot {s} (file offset {p * PAGE + s * SLOT}): no order of "
                    "these operations consistent with real time gives the values read\n"
                    + explain(hist, init, t0, describe_value))


def save_log(res: StressResult, path: str) -> None:
    """The run's configuration, every operation with its times and result, and the
    verdict, gzipped JSON: `fsrace stress --replay` reruns the same operations."""
    doc = {
        "config": asdict(res.config),
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
    with gzip.open(path, "wt") as f:
        json.dump(doc, f)


def load_config(path: str) -> StressConfig:
    with gzip.open(path, "rt") as f:
        doc = json.load(f)
    return StressConfig(**doc["config"])
