"""A stress worker: one process with its own shared mapping of the file, running its
operation stream and recording, for each operation, when it was invoked and when it
returned (CLOCK_MONOTONIC, the same clock in every process), its result and what it read.

The record goes to a log file mapped shared, outside the file system under test, before
and after each operation, so a worker killed by a signal (SIGBUS on a store beyond EOF)
loses nothing: its last operation shows as invoked and never returned."""

from __future__ import annotations

import ctypes
import errno
import faulthandler
import mmap
import os
import time

from .ops import PAGE, SLOT, SLOTS, stamp

HEADER = 3  # int64 words: invoked ns, returned ns, result (bytes read, 0, or -errno)
RECORD = HEADER * 8 + PAGE  # header, then what the operation read
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 0x01, 0x02, 0x10

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long)


def fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    if _libc.fallocate(fd, mode, offset, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def run_worker(w: int, path: str, pages: int, ops: list, deadline_ns: int, log_path: str,
               barrier, start: int = 0) -> None:
    """Run operations start, start + 1, ... of worker w's list `ops` (drawn by the parent
    before the start, so drawing costs nothing here; a replacement for a worker killed at
    op start - 1 resumes there, without waiting at the barrier)."""
    faulthandler.disable()  # a SIGBUS past EOF is an expected end, reported by the parent
    size = pages * PAGE
    fd = os.open(path, os.O_RDWR)
    try:
        dfd = os.open(path, os.O_RDWR | os.O_DIRECT)
    except OSError:
        dfd = None  # tmpfs and friends: direct I/O operations are skipped
    while True:
        try:
            m = mmap.mmap(fd, size, mmap.MAP_SHARED)
            break
        except ValueError:  # a truncate is between its two halves: wait for the size
            time.sleep(0.0001)
    words = memoryview(m).cast("Q")
    logf = open(log_path, "r+b")
    log = mmap.mmap(logf.fileno(), len(ops) * RECORD, mmap.MAP_SHARED)
    head = memoryview(log).cast("q")
    buf = mmap.mmap(-1, PAGE)  # page-aligned, for O_DIRECT
    bufwords = memoryview(buf).cast("Q")
    if barrier is not None:
        barrier.wait()
    now = time.monotonic_ns
    for i in range(start, len(ops)):
        op = ops[i]
        if deadline_ns and now() > deadline_ns:
            break
        at = i * RECORD // 8
        payload = i * RECORD + HEADER * 8
        off = op.page * PAGE
        length = op.npages * PAGE
        kind = op.kind
        head[at] = now()
        res = 0
        try:
            if kind == "store":
                words[off // SLOT + op.slot] = stamp(w, i)
            elif kind == "load":
                head[at + HEADER] = words[off // SLOT + op.slot]
                res = SLOT
            elif kind == "pread":
                data = os.pread(fd, PAGE, off)
                log[payload:payload + len(data)] = data
                res = len(data)
            elif kind == "pwrite":
                os.pwrite(fd, stamp(w, i).to_bytes(SLOT, "little"), off + op.slot * SLOT)
            elif kind == "punch":
                fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, length)
            elif kind == "zero":
                fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, length)
            elif kind == "truncate":
                os.ftruncate(fd, op.size)
                os.ftruncate(fd, size)
            elif kind == "fsync":
                os.fsync(fd)
            elif kind == "msync":
                m.flush(off, length)
            elif kind == "willneed":
                os.posix_fadvise(fd, off, length, os.POSIX_FADV_WILLNEED)
            elif kind == "dontneed":
                os.posix_fadvise(fd, off, length, os.POSIX_FADV_DONTNEED)
            elif kind == "dio_read":
                if dfd is None:
                    raise OSError(errno.EINVAL, "O_DIRECT not supported")
                res = os.preadv(dfd, [buf], off)
                log[payload:payload + res] = buf[:res]
            elif kind == "dio_write":
                if dfd is None:
                    raise OSError(errno.EINVAL, "O_DIRECT not supported")
                bufwords[:] = memoryview(stamp(w, i).to_bytes(SLOT, "little") * SLOTS).cast("Q")
                os.pwritev(dfd, [buf], off)
            else:
                raise ValueError(kind)
        except OSError as e:
            res = -e.errno
        head[at + 2] = res
        head[at + 1] = now()
    log.flush()
