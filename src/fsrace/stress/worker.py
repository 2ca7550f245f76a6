"""The stress workers: worker.c, built once per source version with the system's C compiler
(statically, so that the same binary also runs in the qemu guest) and cached, and what
the parent needs to start them: their operation files and their log layout."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

from .ops import KINDS, Op

# The log: four int64 words per operation (invoked ns, returned ns, result: bytes read, 0,
# -errno or PAST_EOF; the value a load read); the data file: a page per page-reading
# operation.
WORDS = 4
PAST_EOF = -(1 << 32)  # a store or load that raised SIGBUS (the file was shorter): no effect
READS_PAGE = ("pread", "dio_read")
SOURCE = Path(__file__).with_name("worker.c")
PREBUILT = Path(__file__).with_name("worker.bin")  # shipped into the guest by stress.vm
_OP = struct.Struct("<6I")


class WorkerBuildError(RuntimeError):
    pass


def refusal(result: int) -> str:
    """Why an operation with a negative result did nothing."""
    return "SIGBUS: past EOF" if result == PAST_EOF else os.strerror(-result)


def worker_binary() -> Path:
    """The compiled worker: the prebuilt one next to this file if any (in the guest),
    else the cached build of the current source, compiling it if missing."""
    if PREBUILT.exists():
        return PREBUILT
    return build_static(SOURCE, "worker")


def build_static(source: Path, name: str | None = None) -> Path:
    """`source` (a C file) built statically, so that it also runs in the qemu guest, with
    the system's C compiler; cached by content in ~/.cache/fsrace/bin."""
    text = source.read_bytes()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    cache = Path(base) / "fsrace" / "bin"
    binary = cache / f"{name or source.stem}-{hashlib.sha256(text).hexdigest()[:12]}"
    if binary.exists():
        return binary
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise WorkerBuildError("fsrace builds its C programs with a C compiler, and none "
                               "was found (Debian: apt install gcc libc6-dev; or set CC)")
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=".build-")
    os.close(fd)
    try:
        r = subprocess.run([cc, "-O2", "-Wall", "-static", "-pthread", "-o", tmp, str(source)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise WorkerBuildError(f"building {source.name} failed:\n{r.stderr.strip()}")
        os.replace(tmp, binary)  # atomic: a half-built program is never used
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return binary


def write_ops(path: str, ops: list[Op]) -> None:
    """The operation file worker.c reads: six uint32 per operation."""
    code = {k: i for i, k in enumerate(KINDS)}
    with open(path, "wb") as f:
        f.write(b"".join(_OP.pack(code[o.kind], o.page, o.slot, o.npages, o.size, o.src)
                         for o in ops))
