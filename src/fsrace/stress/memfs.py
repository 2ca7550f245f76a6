"""A small in-memory FUSE file system (libfuse3 through mfusepy) to prove the stress
checker on a kernel path that really has a bug of this class.

`--deferred-punch` gives it the bug: fallocate(PUNCH_HOLE) replies at once and zeroes the
range a moment later, from another thread -- blocks freed after the operation returned, the
shape of the punch-vs-I/O races. Reads right after the punch can see the old data, and a
write made in between can be wiped. Without the flag the punch zeroes before it replies.
`--zero-needs-size` refuses FALLOC_FL_ZERO_RANGE with FALLOC_FL_KEEP_SIZE (EOPNOTSUPP), as
the NFS v4.2 client of 7.x does.

Run: python -m fsrace.stress.memfs MOUNTPOINT [--deferred-punch] [--zero-needs-size]
"""

from __future__ import annotations

import argparse
import errno
import stat
import threading
import time

import mfusepy as fuse

FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 0x01, 0x02, 0x10


class MemFS(fuse.Operations):
    use_ns = True

    def __init__(self, deferred_punch: bool, delay_s: float = 0.002,
                 zero_needs_size: bool = False) -> None:
        now = time.time_ns()
        self.meta = {"/": {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2,
                           "st_mtime": now, "st_ctime": now, "st_atime": now}}
        self.data: dict[str, bytearray] = {}
        self.mutex = threading.Lock()
        self.deferred_punch = deferred_punch
        self.zero_needs_size = zero_needs_size
        self.delay_s = delay_s

    def _get(self, path: str) -> dict:
        try:
            return self.meta[path]
        except KeyError:
            raise fuse.FuseOSError(errno.ENOENT) from None

    def getattr(self, path, fh=None):
        m = dict(self._get(path))
        if path in self.data:
            m["st_size"] = len(self.data[path])
            m["st_blocks"] = -(-m["st_size"] // 512)
        return m

    def readdir(self, path, fh):
        prefix = path.rstrip("/") + "/"
        names = {p[len(prefix):] for p in self.meta
                 if p.startswith(prefix) and p != prefix and "/" not in p[len(prefix):]}
        return [".", "..", *sorted(names)]

    def _add(self, path: str, mode: int) -> None:
        now = time.time_ns()
        self.meta[path] = {"st_mode": mode, "st_nlink": 2 if stat.S_ISDIR(mode) else 1,
                           "st_mtime": now, "st_ctime": now, "st_atime": now}

    def mkdir(self, path, mode):
        self._add(path, stat.S_IFDIR | mode)
        return 0

    def rmdir(self, path):
        if self.readdir(path, 0)[2:]:
            raise fuse.FuseOSError(errno.ENOTEMPTY)
        self._get(path)
        del self.meta[path]
        return 0

    def create(self, path, mode, fi=None):
        self._add(path, stat.S_IFREG | mode)
        self.data[path] = bytearray()
        return 0

    def open(self, path, flags):
        self._get(path)
        return 0

    def unlink(self, path):
        self._get(path)
        del self.meta[path]
        self.data.pop(path, None)
        return 0

    def read(self, path, size, offset, fh):
        with self.mutex:
            return bytes(self.data[path][offset:offset + size])

    def write(self, path, data, offset, fh):
        with self.mutex:
            buf = self.data[path]
            if offset > len(buf):
                buf.extend(bytes(offset - len(buf)))
            buf[offset:offset + len(data)] = data
        return len(data)

    def truncate(self, path, length, fh=None):
        with self.mutex:
            buf = self.data[path]
            if length < len(buf):
                del buf[length:]
            else:
                buf.extend(bytes(length - len(buf)))
        return 0

    def fallocate(self, path, mode, offset, size, fh):
        if mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
            raise fuse.FuseOSError(errno.EOPNOTSUPP)
        if self.zero_needs_size and mode == FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE:
            raise fuse.FuseOSError(errno.EOPNOTSUPP)
        if mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
            if self.deferred_punch and mode & FALLOC_FL_PUNCH_HOLE:
                threading.Timer(self.delay_s, self._zero, (path, offset, size)).start()
            else:
                self._zero(path, offset, size)
        elif not mode & FALLOC_FL_KEEP_SIZE:
            with self.mutex:
                buf = self.data[path]
                buf.extend(bytes(max(offset + size - len(buf), 0)))
        return 0

    def _zero(self, path: str, offset: int, size: int) -> None:
        with self.mutex:
            buf = self.data.get(path)
            if buf is None:
                return
            end = min(offset + size, len(buf))
            if offset < end:
                buf[offset:end] = bytes(end - offset)

    def chmod(self, path, mode):
        m = self._get(path)
        m["st_mode"] = (m["st_mode"] & ~0o7777) | (mode & 0o7777)
        return 0

    def utimens(self, path, times=None):
        return 0

    def fsync(self, path, datasync, fh):
        return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        return 0

    def statfs(self, path):
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": 1 << 20, "f_bfree": 1 << 20,
                "f_bavail": 1 << 20, "f_files": 1 << 20, "f_ffree": 1 << 20,
                "f_namemax": 255}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mountpoint")
    ap.add_argument("--deferred-punch", action="store_true")
    ap.add_argument("--zero-needs-size", action="store_true")
    args = ap.parse_args()
    fuse.FUSE(MemFS(args.deferred_punch, zero_needs_size=args.zero_needs_size),
              args.mountpoint, foreground=True, fsname="fsrace-memfs", kernel_cache=True)


if __name__ == "__main__":
    main()
