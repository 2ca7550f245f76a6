"""A scratch filesystem fsrace makes, uses and removes: an image file, loop-mounted (ext4,
xfs, btrfs), a fresh tmpfs, or a new subfolder of a folder the user names.

Everything lives in one folder fsrace creates (`fsrace-XXXX` under the system's temporary
directory, or under the user's folder); clean-up runs on every way out -- an error, Ctrl-C,
SIGTERM -- and undoes only what was done."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field

MKFS = {
    "ext4": ["mkfs.ext4", "-F", "-q"],
    "xfs": ["mkfs.xfs", "-f", "-q"],
    "btrfs": ["mkfs.btrfs", "-f", "-q"],
}
FILESYSTEMS = (*MKFS, "tmpfs")
MIN_MB = {"xfs": 512}  # mkfs.xfs refuses file systems under 300 MB


class ScratchError(RuntimeError):
    pass


def _run(*cmd: str) -> str:
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise ScratchError(f"{cmd[0]} is not installed (Debian: e2fsprogs, xfsprogs, "
                           "btrfs-progs, mount)") from e
    except subprocess.CalledProcessError as e:
        raise ScratchError(f"{' '.join(cmd)} failed: {e.stderr.strip() or e.returncode}") from e
    return out.stdout.strip()


@dataclass
class Scratch:
    """The folder fsrace made (`root`), where the file system under test is mounted or
    the work folder is (`mnt`), and how to undo each step."""

    fs: str
    root: str
    mnt: str
    image: str | None = None
    loop: str | None = None
    mounted: bool = False
    undo: list = field(default_factory=list)

    def remount(self) -> bool:
        """Unmount and mount again (the final check after remount); False for tmpfs and
        folders, whose contents do not survive or need not."""
        if self.loop is None:
            return False
        _run("umount", self.mnt)
        _run("mount", self.loop, self.mnt)
        return True


class Terminated(BaseException):
    """SIGTERM arrived: raised so every clean-up runs on the way out."""


def _raise_terminated(signum, frame):
    raise Terminated(f"signal {signum}")


@contextmanager
def sigterm_raises():
    """Within: SIGTERM raises Terminated, so that every clean-up on the way out runs."""
    old = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextmanager
def scratch_fs(fs: str, size_mb: int = 256, base: str | None = None):
    """Yield a Scratch with a fresh file system (or a fresh folder under `fs` when `fs` is
    a folder). SIGTERM is turned into an exception here so clean-up always runs."""
    is_dir = fs not in FILESYSTEMS
    if is_dir and not os.path.isdir(fs):
        raise ScratchError(f"{fs!r} is neither a file system name ({', '.join(FILESYSTEMS)}) "
                           "nor an existing folder")
    if not is_dir and os.geteuid() != 0:
        raise ScratchError(f"making and mounting {fs} needs root; without root, name a "
                           "folder instead (--fs DIR) and fsrace works in a new subfolder")
    with sigterm_raises():
        yield from _scratch(fs, is_dir, size_mb, base)


def _scratch(fs: str, is_dir: bool, size_mb: int, base: str | None):
    root = tempfile.mkdtemp(prefix="fsrace-", dir=fs if is_dir else base)
    s = Scratch(fs if not is_dir else "dir", root, os.path.join(root, "mnt"))
    try:
        os.mkdir(s.mnt)
        if fs == "tmpfs":
            _run("mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "fsrace", s.mnt)
            s.mounted = True
        elif not is_dir:
            s.image = os.path.join(root, f"{fs}.img")
            with open(s.image, "wb") as f:
                f.truncate(max(size_mb, MIN_MB.get(fs, 0)) << 20)  # sparse
            _run(*MKFS[fs], s.image)
            s.loop = _run("losetup", "--find", "--show", s.image)
            _run("mount", s.loop, s.mnt)
            s.mounted = True
        yield s
    finally:
        cleanup(s)


def cleanup(s: Scratch) -> None:
    """Undo in reverse: unmount (lazily if something still holds it), detach the loop
    device, delete the folder fsrace made. Never raises; says what it could not undo."""
    problems = []
    if s.mounted or (os.path.isdir(s.mnt) and os.path.ismount(s.mnt)):
        try:
            _run("umount", s.mnt)
        except ScratchError:
            try:
                _run("umount", "-l", s.mnt)
            except ScratchError as e:
                problems.append(str(e))
        s.mounted = False
    if s.loop:
        try:
            _run("losetup", "-d", s.loop)
        except ScratchError as e:
            problems.append(str(e))
        s.loop = None
    if os.path.isdir(s.mnt) and os.path.ismount(s.mnt):
        problems.append(f"{s.mnt} is still mounted; left {s.root} in place")
    else:
        shutil.rmtree(s.root, ignore_errors=True)
    if problems:
        import sys

        print("fsrace: clean-up: " + "; ".join(problems), file=sys.stderr)
