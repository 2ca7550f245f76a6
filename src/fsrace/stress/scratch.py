"""A scratch filesystem fsrace makes, uses and removes: an image file, loop-mounted (ext4,
xfs, btrfs), a fresh tmpfs, fsrace's own FUSE server (fuse_server.py) serving a
loop-mounted ext4 (fuse: writeback cache; fuse-passthrough), or a new subfolder of a
folder the user names.

Everything lives in one folder fsrace creates (`fsrace-XXXX` under the system's temporary
directory, or under the user's folder); clean-up runs on every way out -- an error, Ctrl-C,
SIGTERM -- and undoes only what was done."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

MKFS = {
    "ext4": ["mkfs.ext4", "-F", "-q"],
    "xfs": ["mkfs.xfs", "-f", "-q"],
    "btrfs": ["mkfs.btrfs", "-f", "-q"],
}
FUSE = {"fuse": (), "fuse-passthrough": ("--passthrough",)}  # the server's options
FILESYSTEMS = (*MKFS, "tmpfs", *FUSE)
FUSE_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuse_server.py")
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
    backing: str | None = None  # FUSE: where the served ext4 is mounted
    server: subprocess.Popen | None = None  # FUSE: the server's process

    def remount(self) -> bool:
        """Unmount and mount again (the final check after remount); False for tmpfs and
        folders, whose contents do not survive or need not. A FUSE server is stopped and
        started again."""
        if self.loop is None:
            return False
        _run("umount", self.mnt)
        if self.server is not None:
            _stop_server(self)
            _start_server(self)
        else:
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
            disk = "ext4" if fs in FUSE else fs
            s.image = os.path.join(root, f"{disk}.img")
            with open(s.image, "wb") as f:
                f.truncate(max(size_mb, MIN_MB.get(disk, 0)) << 20)  # sparse
            _run(*MKFS[disk], s.image)
            s.loop = _run("losetup", "--find", "--show", s.image)
            if fs in FUSE:
                s.backing = os.path.join(root, "backing")
                os.mkdir(s.backing)
                _run("mount", s.loop, s.backing)
                _start_server(s)
            else:
                _run("mount", s.loop, s.mnt)
            s.mounted = True
        yield s
    finally:
        cleanup(s)


def _start_server(s: Scratch, wait_s: float = 10) -> None:
    """Start the FUSE server on `s.backing`, mounting `s.mnt`; wait until it is mounted."""
    assert s.backing is not None
    log = open(os.path.join(s.root, "fuse-server.log"), "ab")
    ready = os.path.join(s.root, "fuse-ready")
    if os.path.exists(ready):
        os.unlink(ready)
    s.server = subprocess.Popen([sys.executable, FUSE_SERVER, s.backing, s.mnt,
                                 *FUSE[s.fs], "--ready", ready], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.monotonic() + wait_s
    while not os.path.exists(ready):
        if s.server.poll() is not None or time.monotonic() > deadline:
            with open(os.path.join(s.root, "fuse-server.log"), errors="replace") as f:
                said = f.read().strip().splitlines()[-3:]
            raise ScratchError(f"the FUSE server did not mount {s.mnt}: "
                               + (" | ".join(said) or "it said nothing"))
        time.sleep(0.05)


def _stop_server(s: Scratch, wait_s: float = 10) -> None:
    """Wait for the server to end (it does once its file system is unmounted); kill it
    if it does not."""
    if s.server is None:
        return
    try:
        s.server.wait(wait_s)
    except subprocess.TimeoutExpired:
        s.server.kill()
        s.server.wait()
    s.server = None


def _unmount(path: str, problems: list[str]) -> None:
    """umount, lazily if something still holds it; what fails goes into `problems`."""
    try:
        _run("umount", path)
    except ScratchError:
        try:
            _run("umount", "-l", path)
        except ScratchError as e:
            problems.append(str(e))


def cleanup(s: Scratch) -> None:
    """Undo in reverse: unmount (lazily if something still holds it), stop a FUSE server
    and unmount what it served, detach the loop device, delete the folder fsrace made.
    Never raises; says what it could not undo."""
    problems: list[str] = []
    if s.mounted or (os.path.isdir(s.mnt) and os.path.ismount(s.mnt)):
        _unmount(s.mnt, problems)
        s.mounted = False
    _stop_server(s)
    if s.backing and os.path.ismount(s.backing):
        _unmount(s.backing, problems)
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
