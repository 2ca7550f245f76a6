"""`fsrace stress --vm`: the stress run inside a qemu guest (TCG; no KVM needed), so it
can use file systems and kernels the host does not run. Everything comes from Debian's
packages: a root file system built by debootstrap (cached by its recipe's hash, built
into a temporary folder and renamed into place, so a failed build leaves nothing), the
guest kernel it installs (bookworm's linux-image-amd64, 6.1, or another kernel package from
backports or sid), the servers for NFS v4.2 (nfsd) and SMB 3 (Samba) over loopback, and
the mkfs tools for the block file systems, made on a third, scratch disk.

Each run boots the cached disk image with snapshot=on (the guest cannot change it) and a
small second disk that carries the fsrace stress code and the run's settings in, and the
report, the saved run and the guest's kernel log out (read back with debugfs, nothing is
mounted on the host). The guest is killed on every way out.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .scratch import sigterm_raises
from .worker import PREBUILT, build_static, worker_binary

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# Where the security suites are (bookworm-security: the newest 6.1 point releases).
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
PACKAGES = ["linux-image-amd64", "initramfs-tools", "kmod", "iproute2", "util-linux",
            "procps", "busybox", "e2fsprogs", "nfs-kernel-server", "nfs-common", "python3",
            "xfsprogs", "btrfs-progs", "f2fs-tools", "nilfs-tools", "gfs2-utils",
            "ocfs2-tools", "samba", "cifs-utils", "ntfs-3g", "exfatprogs", "dosfstools",
            "jfsutils", "udftools"]
# Block file systems are made on the scratch disk (gfs2 with lock_nolock and ocfs2 in
# local mode: one node, no cluster stack; ntfs3, and ntfs, the driver Debian's 7.2 builds
# instead of it, by ntfs-3g's mkntfs; exfat, vfat, jfs and udf by their own tools'
# defaults; not hfsplus: bookworm has no hfsprogs); nfs and smb are the v4.2 and SMB
# 3.1.1 clients over loopback, exporting ext4 or, with -xfs, xfs (reflink on, the mkfs
# default); nfs3 and nfs41 the same client speaking v3 or v4.1 to the ext4 export
# (neither has the v4.2 operations: DEALLOCATE, CLONE, COPY), smb-loose the SMB client
# with cache=loose instead of its default cache=strict. The SMB server is Samba:
# bookworm's ksmbd-tools oopsed 6.1's ksmbd and could not serve 7.2's. btrfs-compress is
# btrfs mounted with compress-force=zstd, f2fs-compress f2fs made with compression and
# the test folder flagged compressed (lz4): the write-back and read paths of compressed
# extents and clusters.
BLOCK_FILESYSTEMS = ("ext4", "xfs", "btrfs", "f2fs", "nilfs2", "gfs2", "ocfs2", "ntfs3",
                     "ntfs", "exfat", "vfat", "jfs", "udf", "btrfs-compress", "f2fs-compress")
# fuse and fuse-passthrough: fsrace's own FUSE server (fuse_server.py, run by the guest's
# python3) serving an ext4 on the scratch disk, with the writeback cache or passthrough.
# 9p and 9p-loose: the 9P2000.L client over virtio, with cache=mmap or cache=loose,
# served by qemu's own 9p server from a folder in the run's work folder on the host.
NINEP_FILESYSTEMS = ("9p", "9p-loose")
VM_FILESYSTEMS = ("nfs", "nfs-xfs", "nfs3", "nfs41", "smb", "smb-xfs", "smb-loose",
                  *BLOCK_FILESYSTEMS, "tmpfs", "fuse", "fuse-passthrough", *NINEP_FILESYSTEMS)
SCRATCH_DISK_MB = 2048
# What runs in the guest, kept as files beside this one (package data): the init that
# hands over to the run's script (part of the guest disk's recipe), the script that sets
# the file system up (@FS@ names it), and the Python that makes the runs in it: stress
# runs (guest/stress.py) or a program's (guest/program.py).
GUEST_DIR = Path(__file__).with_name("guest")
GUEST_INIT = (GUEST_DIR / "init.sh").read_text()
RUN_SCRIPT = (GUEST_DIR / "run.sh").read_text()
GUEST_PY = (GUEST_DIR / "stress.py").read_text()
PROGRAM_PY = (GUEST_DIR / "program.py").read_text()
MODULES_SH = (GUEST_DIR / "modules.sh").read_text()
FUSE_SERVER = Path(__file__).with_name("fuse_server.py")


class VMError(RuntimeError):
    pass


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "fsrace" / "vm"


def recipe_hash(kernel: str | None = None) -> str:
    recipe = json.dumps([SUITE, MIRROR, PACKAGES, GUEST_INIT, kernel])
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def _version(path: Path) -> tuple:
    """'vmlinuz-6.12.38+deb12-amd64' -> (6, 12, 38, 12): newest sorts last."""
    return tuple(int(n) for n in re.findall(r"\d+", path.name.split("-", 1)[1]))


def kernel_suite(kernel: str) -> tuple[str, str]:
    """'PKG' -> (PKG, bookworm-backports); 'PKG/SUITE' (apt's own syntax) -> (PKG, SUITE)."""
    pkg, _, suite = kernel.partition("/")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", pkg) or (
            suite and not re.fullmatch(r"[a-z0-9-]+", suite)):
        raise VMError(f"--kernel {kernel!r}: give a Debian package name, optionally /SUITE "
                      "(e.g. linux-image-amd64/sid)")
    return pkg, suite or f"{SUITE}-backports"


def suite_mirror(suite: str) -> str:
    """The archive that holds a suite: the security suites have their own."""
    return SECURITY_MIRROR if suite.endswith("-security") else MIRROR


def suite_and_base(suite: str) -> list[str]:
    """The suites apt needs for a package of `suite`: experimental holds only what differs
    from sid, so its kernels' other dependencies come from sid."""
    return [suite, "sid"] if suite in ("experimental", "rc-buggy") else [suite]


def _install_kernel(root: Path, kernel: str) -> None:
    """apt-get install a kernel package from bookworm-backports, or from the suite named
    after a slash, inside the root file system (proc and sys mounted in the chroot for its
    scripts, and unmounted again). The rest of the guest stays bookworm's."""
    pkg, suite = kernel_suite(kernel)
    (root / "etc/apt/sources.list.d/kernel.list").write_text("".join(
        f"deb {suite_mirror(s)} {s} main\n" for s in suite_and_base(suite)))
    mounted: list[Path] = []
    try:
        for fs, where in (("proc", "proc"), ("sysfs", "sys")):
            _run(["mount", "-t", fs, fs, str(root / where)])
            mounted.append(root / where)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        # A mirror may serve a snapshot older than its Release file's Valid-Until.
        _run(["chroot", str(root), "apt-get", "-o", "Acquire::Check-Valid-Until=false",
              "update", "-qq"], env=env)
        try:
            _run(["chroot", str(root), "apt-get", "install", "-y", "-qq",
                  "--no-install-recommends", f"{pkg}/{suite}"], env=env)
        except VMError:
            # Newer kernel packages (sid's) run hooks through linux-run-hooks, which
            # bookworm's run-parts cannot; their files are unpacked all the same, in
            # /usr/lib/modules/VERSION, and are put in /boot below.
            if not _unplaced_kernels(root):
                raise
        for version in _unplaced_kernels(root):
            for name in ("vmlinuz", "config", "System.map"):
                shutil.copy(root / "usr/lib/modules" / version / name,
                            root / "boot" / f"{name}-{version}")
            _run(["chroot", str(root), "mkinitramfs", "-o", f"/boot/initrd.img-{version}",
                  version])
    finally:
        for point in reversed(mounted):
            subprocess.run(["umount", "-l", str(point)], capture_output=True)


def _unplaced_kernels(root: Path) -> list[str]:
    """Kernel versions unpacked in /usr/lib/modules with no image in /boot."""
    return [d.name for d in (root / "usr/lib/modules").glob("*/")
            if (d / "vmlinuz").exists() and not (root / "boot" / f"vmlinuz-{d.name}").exists()]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    except FileNotFoundError as e:
        raise VMError(f"{cmd[0]} is not installed (Debian: debootstrap, qemu-system-x86, "
                      "e2fsprogs)") from e
    except subprocess.CalledProcessError as e:
        tail = (e.stderr or e.stdout or "").strip().splitlines()[-5:]
        raise VMError(f"{' '.join(cmd[:3])} ... failed: " + " | ".join(tail)) from e


def disk_image(progress=print, kernel: str | None = None) -> Path:
    """The cached guest disk for the current recipe (and kernel package), built if
    missing."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    h = recipe_hash(kernel)
    image = cache / f"disk-{h}.img"
    if image.exists():
        return image
    if os.geteuid() != 0:
        raise VMError("building the guest disk (debootstrap) needs root")
    work = Path(tempfile.mkdtemp(prefix="build-", dir=cache))
    try:
        root = work / "rootfs"
        progress(f"building the guest root file system ({SUITE}, debootstrap); cached in {cache}")
        _run(["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), SUITE,
              str(root), MIRROR])
        if kernel:
            progress("installing {} from {} into the guest".format(*kernel_suite(kernel)))
            _install_kernel(root, kernel)
        (root / "fsrace-init").write_text(GUEST_INIT)
        (root / "fsrace-init").chmod(0o755)
        vmlinuz = max(root.glob("boot/vmlinuz-*"), key=_version)  # the newest kernel
        shutil.copy(vmlinuz, work / "vmlinuz")
        shutil.copy(root / "boot" / vmlinuz.name.replace("vmlinuz", "initrd.img"),
                    work / "initrd.img")
        tmp = work / "disk.img"
        _run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(tmp), "3G"])
        for name in ("vmlinuz", "initrd.img"):
            os.replace(work / name, cache / f"{name}-{h}")
        os.replace(tmp, image)  # last: the image's presence means the build finished
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return image


@dataclass
class GuestRun:
    """One run's outcome in the guest: its report (a program's output), exit status (a
    stress job's: 0 clean, 1 violations, 2 the run failed; HUNG: never ended; UNCHECKED:
    its check did not end) and saved run (gzipped JSON; empty for a program)."""
    report: str
    status: int
    log: bytes


@dataclass
class GuestResult:
    kernel: str  # the guest's uname -r
    fstype: str  # what statfs says the run's folder is on
    runs: list[GuestRun]
    dmesg: str
    boot_s: float  # the guest's uptime when its first run started (boot and setup)
    modules: str = ""  # the modules that replaced the kernel's, with their hashes


HUNG = -1  # GuestRun.status of a run the guest never finished (not an exit status)
SKIPPED = -2  # ... of a round the guest skipped, its cell having had enough (Rounds)
DIED = -3  # ... of a run during which the guest stopped by itself (a panic, a reset)
UNCHECKED = -4  # ... of a run whose kernel part ended but whose check ran past its time


@dataclass
class Rounds:
    """Runs grouped into rounds of one cell: `group[i]` is run i's cell. The guest skips
    a cell's later rounds once its rounds hit `min_windows` race windows, raced `cap_s`
    seconds, or one carried out none of the class's own operations while others ran."""
    group: list[int]
    min_windows: int
    cap_s: float

    def enough(self, windows: int, raced_s: float, carried_out: int, executed: int) -> bool:
        """Whether a cell is done after a round: its rounds so far hit `windows` windows
        and raced `raced_s` seconds, and the last carried out `carried_out` of the class's
        own operations among its `executed` (none while others ran: the file system
        refuses them, more rounds would too; a round that executed nothing at all refused
        nothing, and the next round tries again)."""
        refused = executed > 0 and not carried_out
        return windows >= self.min_windows or raced_s >= self.cap_s or refused


@dataclass(frozen=True)
class Stuck:
    """The run the guest was stopped in, and whether it had got as far as its check."""
    run: int
    checking: bool


BOOT_ATTEMPTS = 2  # boots of a guest whose kernel stops before the run script begins


def _last_words(serial_text: str) -> str:
    """What a guest's console says it stopped on: its panic line, else its last line."""
    panic = re.findall(r"Kernel panic[^\r\n]*", serial_text)
    if panic:
        return panic[-1].strip()
    lines = [ln.strip() for ln in serial_text.splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def output_lines(serial_text: str) -> list[tuple[int, str]]:
    """The lines of output a program's runs echoed to the guest's console (program.py):
    (run, line)."""
    return [(int(i), line.rstrip("\r"))
            for i, line in re.findall(r"^fsrace-out (\d+) (.*)$", serial_text, re.M)]


def _watch(proc: subprocess.Popen, serial: Path, timeout_s: float, run_timeout_s: float,
           check_timeout_s: float = 1800, echo=None) -> Stuck | None:
    """Wait for the guest; stop it when it runs past `timeout_s`, when one run has started
    and neither ended nor begun its check for `run_timeout_s` (a hung kernel), or when a
    run's check has gone on for `check_timeout_s` (the kernel's part of it is over).
    `echo(run, line)` is called with each line of output a run echoes, as it comes."""
    began: dict[int, float] = {}
    checking: dict[int, float] = {}
    ended: set[int] = set()
    echoed = 0
    stop_at = time.monotonic() + timeout_s
    while proc.poll() is None:
        time.sleep(1)
        text = serial.read_text(errors="replace")
        if echo is not None:
            # The last line may be half-written: only lines already ended are shown.
            out = output_lines(text[:text.rfind("\n") + 1])
            for run, line in out[echoed:]:
                echo(run, line)
            echoed = max(echoed, len(out))
        for what, i in re.findall(r"fsrace-run (start|checking|end) (\d+)", text):
            if what == "end":
                ended.add(int(i))
            else:
                (began if what == "start" else checking).setdefault(int(i), time.monotonic())
        now = time.monotonic()
        stuck = [Stuck(i, False) for i, t in began.items()
                 if i not in ended and i not in checking and now - t > run_timeout_s]
        stuck += [Stuck(i, True) for i, t in checking.items()
                  if i not in ended and now - t > check_timeout_s]
        if stuck or now > stop_at:
            proc.kill()
            proc.wait()
            return stuck[0] if stuck else None
    return None


def run_in_vm(cfgs, timeout_s: float = 900, progress=print, kernel: str | None = None,
              run_timeout_s: float = 300, rounds: Rounds | None = None,
              modules: tuple[Path, ...] = ()) -> GuestResult:
    """Boot the guest (with the newest kernel installed: bookworm's, or the package
    `kernel` from backports or the suite after its slash), run the stress jobs `cfgs`
    (StressConfigs, all on the same file system, one of VM_FILESYSTEMS) one after the
    other inside it, and return what they reported: every run that finished, one that
    ran past `run_timeout_s` (a hung kernel) as HUNG and one whose check ran past half an
    hour as UNCHECKED, after either of which the guest is stopped,
    and, with `rounds`, the rounds the guest skipped as SKIPPED. `modules` replace the
    kernel's before the runs, as for run_program_in_vm."""
    fs = {c.fs for c in cfgs}
    if len(fs) != 1 or not fs <= set(VM_FILESYSTEMS):
        raise VMError(f"--vm runs one of {', '.join(VM_FILESYSTEMS)}, not {', '.join(fs)}")
    (fs,) = fs

    def payload(io: Path) -> None:
        src = Path(__file__).resolve().parent.parent  # the fsrace package
        shutil.copytree(src, io / "fsrace", ignore=shutil.ignore_patterns(
            "__pycache__", "templates", "explore", "kernel", "protocols", "scenarios",
            "check", "report"))
        shutil.copy(worker_binary(), io / "fsrace" / "stress" / PREBUILT.name)  # static
        (io / "guest.py").write_text(GUEST_PY)
        (io / "configs.json").write_text(json.dumps([asdict(c) for c in cfgs]))
        if rounds is not None:
            (io / "rounds.json").write_text(json.dumps(asdict(rounds)))

    what = ", ".join(dict.fromkeys(c.scenario or "mix" for c in cfgs))
    with sigterm_raises():
        return _boot_and_run(payload, len(cfgs), what, fs, timeout_s, progress, kernel,
                             run_timeout_s, modules)


def run_program_in_vm(program: Path, arg_sets: list[list[str]], fs: str,
                      timeout_s: float = 900, progress=print, kernel: str | None = None,
                      run_timeout_s: float = 300, files: tuple[Path, ...] = (),
                      modules: tuple[Path, ...] = ()) -> GuestResult:
    """Boot the guest as for a stress run on `fs` and run `program` (a C file, built
    statically here, a static executable, or a script) once per argument list, one after the
    other, each on a fresh file in the mounted file system given as its first argument.
    `files` are copied into the guest's /io/files under their names (kernel modules to
    load, data). `modules` (.ko files built against the guest kernel's headers) replace
    the kernel's modules of the same names before the runs, the file system unmounted and
    mounted again around the swap; each report begins with what was replaced. Each
    GuestRun holds the program's output and exit status."""
    if fs not in VM_FILESYSTEMS:
        raise VMError(f"the guest mounts one of {', '.join(VM_FILESYSTEMS)}, not {fs}")
    binary = build_static(program) if program.suffix == ".c" else program
    if not os.access(binary, os.X_OK):
        raise VMError(f"{program} is neither a C file nor an executable")

    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise VMError(f"two files to copy into the guest share a name: {', '.join(names)}")

    def payload(io: Path) -> None:
        shutil.copy(binary, io / "program")
        if files:
            (io / "files").mkdir()
            for f in files:
                shutil.copy(f, io / "files" / f.name)
        (io / "guest.py").write_text(PROGRAM_PY)
        (io / "programs.json").write_text(json.dumps(arg_sets))

    def echo(run: int, line: str) -> None:
        progress(f"run {run + 1}: {line}" if len(arg_sets) > 1 else line)

    with sigterm_raises():
        return _boot_and_run(payload, len(arg_sets), program.name, fs, timeout_s, progress,
                             kernel, run_timeout_s, modules, echo)


def check_modules(modules) -> list[str]:
    """The names of the modules to load in the guest: .ko files, each name once."""
    kos = [Path(m).name for m in modules]
    if len(set(kos)) != len(kos) or not all(k.endswith(".ko") for k in kos):
        raise VMError(f"modules are kernel modules (NAME.ko) of distinct names, not "
                      f"{', '.join(kos)}")
    return kos


def _boot_and_run(payload, n_runs: int, what: str, fs: str, timeout_s: float, progress,
                  kernel: str | None, run_timeout_s: float, modules: tuple[Path, ...] = (),
                  echo=None) -> GuestResult:
    """Boot, set `fs` up (with `modules` in place of the kernel's of those names), and let
    guest.py (which `payload(io)` writes into the guest's /io with what it needs) make
    `n_runs` runs; collect what they left in /io. `echo`: as for _watch."""
    kos = check_modules(modules)
    image = disk_image(progress, kernel)
    h = recipe_hash(kernel)
    vmlinuz, initrd = cache_dir() / f"vmlinuz-{h}", cache_dir() / f"initrd.img-{h}"
    work = Path(tempfile.mkdtemp(prefix="fsrace-vm-"))
    proc = None
    try:
        io = work / "io"
        io.mkdir()
        payload(io)
        if modules:
            (io / "modules").mkdir()
            for m in modules:
                shutil.copy(m, io / "modules" / m.name)
            (io / "modules.sh").write_text(MODULES_SH)
            (io / "modules.txt").write_text("".join(f"/io/modules/{k}\n" for k in kos))
        (io / "init.sh").write_text(RUN_SCRIPT.replace("@FS@", fs))
        shutil.copy(FUSE_SERVER, io / "fuse_server.py")
        io_img = work / "io.img"
        scratch = work / "scratch.img"
        with open(scratch, "wb") as f:
            f.truncate(SCRATCH_DISK_MB << 20)  # sparse; the guest makes its file system

        def fetch(name: str) -> bytes | None:
            dest = work / f"out-{name}"
            dest.unlink(missing_ok=True)
            subprocess.run(["debugfs", "-R", f"dump /{name} {dest}", str(io_img)],
                           capture_output=True)
            return dest.read_bytes() if dest.exists() else None

        def text(name: str) -> str:
            data = fetch(name)
            return "" if data is None else data.decode(errors="replace")

        # The check runs in the guest and holds every slot's history: a 60 s collapse run
        # (the joint check of stores and shifts keeping the slots it needs) outgrew 1.5 GiB.
        cmd = ["qemu-system-x86_64", "-accel", "tcg,thread=multi", "-smp", "2", "-m", "3072",
               "-kernel", str(vmlinuz), "-initrd", str(initrd),
               "-append", "console=ttyS0 root=/dev/vda rw init=/fsrace-init panic=-1 quiet",
               "-drive", f"file={image},if=virtio,format=raw,snapshot=on",
               "-drive", f"file={io_img},if=virtio,format=raw",
               "-drive", f"file={scratch},if=virtio,format=raw",
               "-nographic", "-no-reboot"]
        if fs in NINEP_FILESYSTEMS:
            shared = work / "9p"  # removed with the work folder
            shared.mkdir()
            cmd += ["-fsdev", f"local,id=fsrace9p,path={shared},security_model=none",
                    "-device", "virtio-9p-pci,fsdev=fsrace9p,mount_tag=fsrace9p"]
        for attempt in range(1, BOOT_ATTEMPTS + 1):
            _run(["mkfs.ext4", "-q", "-F", "-d", str(io), str(io_img), "512M"])
            progress(f"booting the guest (qemu, TCG) for {what} on {fs}")
            with open(work / "serial.txt", "w") as serial:
                proc = subprocess.Popen(cmd, stdout=serial, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
                hung = _watch(proc, work / "serial.txt", timeout_s, run_timeout_s,
                              echo=echo)
            stopped_itself = proc.returncode == 0  # qemu -no-reboot: a poweroff, panic or reset
            serial_text = (work / "serial.txt").read_text(errors="replace")
            # Under TCG on a loaded host the kernel now and then panics in early boot (its
            # timer checks); nothing of the run's has happened then, so boot it again.
            if (attempt == BOOT_ATTEMPTS or hung is not None or not stopped_itself
                    or fetch("console.txt") is not None):
                break
            progress("the guest's kernel stopped before its run script began ("
                     f"{_last_words(serial_text)}); booting it again")

        if text("failed.txt"):
            raise VMError(text("failed.txt").strip() + "; the guest's console:\n"
                          + text("console.txt")[-3000:])
        runs = []
        for i in range(n_runs):
            status = text(f"status-{i}.txt").strip()
            if status == "skipped":
                runs.append(GuestRun("", SKIPPED, b""))
            elif status:
                runs.append(GuestRun(text(f"report-{i}.txt"), int(status),
                                     fetch(f"run-{i}.json.gz") or b""))
            elif stopped_itself and re.search(rf"fsrace-run start {i}\b", serial_text):
                runs.append(GuestRun(
                    f"the guest stopped by itself during run {i + 1} (a kernel panic or "
                    "reset; its console's end:)\n" + serial_text[-3000:], DIED, b""))
                break
            elif hung is not None and i == hung.run and hung.checking:
                runs.append(GuestRun(f"run {i + 1}: its operations all ended, but checking "
                                     "its history did not finish in time; the guest was "
                                     "stopped", UNCHECKED, b""))
                break
            elif hung is not None and i == hung.run:
                said = [line for run, line in output_lines(serial_text) if run == i]
                runs.append(GuestRun(f"run {i + 1} did not end within {run_timeout_s:.0f}s: "
                                     "the guest was stopped (its kernel log, saved every 15 "
                                     "s, is kept)" + ("; its output until then:\n"
                                                      + "\n".join(said) if said else ""),
                                     HUNG, b""))
                break
            else:
                if not runs:
                    raise VMError(f"the guest stopped before run {i + 1} of {n_runs} "
                                  "finished; its console:\n"
                                  + (text("console.txt") or serial_text)[-3000:])
                break  # the runs that finished are reported
        return GuestResult(text("kernel.txt").strip(), text("fstype.txt").strip(), runs,
                           text("dmesg.txt"), float(text("uptime.txt") or "nan"),
                           text("modules-out.txt").strip())
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def main_progress(msg: str) -> None:
    print(f"fsrace: {msg}", file=sys.stderr, flush=True)
