"""`fsrace stress --vm`: the stress run inside a qemu guest (TCG; no KVM needed), so it
can use file systems and kernels the host does not run. Everything comes from Debian's
packages: a root file system built by debootstrap (cached by its recipe's hash, built
into a temporary folder and renamed into place, so a failed build leaves nothing), the
guest kernel it installs (bookworm's linux-image-amd64, 6.1), nfs-kernel-server for NFS
v4.2 over loopback.

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
from dataclasses import asdict
from pathlib import Path

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ["linux-image-amd64", "initramfs-tools", "kmod", "iproute2", "util-linux",
            "procps", "busybox", "e2fsprogs", "nfs-kernel-server", "nfs-common", "python3"]
VM_FILESYSTEMS = ("nfs", "ext4")  # nfs: v4.2 over loopback, exporting ext4; ext4: the root
GUEST_INIT = """#!/bin/sh
# fsrace guest init: mount the basics and the run's disk, hand over to its script.
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /io
mount /dev/vdb /io
exec /bin/sh /io/init.sh
"""
RUN_SCRIPT = """#!/bin/sh
exec >/io/console.txt 2>&1
ip link set lo up
mkdir -p /tmp /run /var/lib/nfs/rpc_pipefs
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /dev/shm
mount -t tmpfs tmpfs /dev/shm
if [ "{fs}" = nfs ]; then
    mkdir -p /srv/export /mnt/nfs /proc/fs/nfsd
    mount -t nfsd nfsd /proc/fs/nfsd
    echo 10 > /proc/fs/nfsd/nfsv4gracetime
    echo 10 > /proc/fs/nfsd/nfsv4leasetime
    echo "/srv/export *(rw,fsid=0,no_subtree_check,no_root_squash,insecure,sync)" > /etc/exports
    rpcbind -w
    exportfs -ra
    rpc.mountd
    rpc.nfsd -N 3 8
    mount -t nfs4 -o vers=4.2 localhost:/ /mnt/nfs
    DIR=/mnt/nfs
else
    mkdir -p /srv/work
    DIR=/srv/work
fi
uname -r > /io/kernel.txt
python3 /io/guest.py "$DIR" > /io/report.txt 2>&1
echo $? > /io/status.txt
dmesg > /io/dmesg.txt
sync
umount /mnt/nfs 2>/dev/null
umount /io
poweroff -f
"""
GUEST_PY = """import json, sys
sys.path.insert(0, "/io")
from fsrace.stress.run import StressConfig, run_stress, save_log
from fsrace.stress.report import stress_report
cfg = StressConfig(**json.load(open("/io/config.json")))
cfg.fs = sys.argv[1]
res = run_stress(cfg)
print(stress_report(res))
save_log(res, "/io/run.json.gz")
sys.exit(1 if res.violations else 0)
"""


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


def _install_kernel(root: Path, kernel: str) -> None:
    """apt-get install a kernel package from bookworm-backports inside the root file
    system (proc and sys mounted in the chroot for its scripts, and unmounted again)."""
    (root / "etc/apt/sources.list.d/backports.list").write_text(
        f"deb {MIRROR} {SUITE}-backports main\n")
    mounted = []
    try:
        for fs, where in (("proc", "proc"), ("sysfs", "sys")):
            _run(["mount", "-t", fs, fs, str(root / where)])
            mounted.append(root / where)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        _run(["chroot", str(root), "apt-get", "update", "-qq"], env=env)
        _run(["chroot", str(root), "apt-get", "install", "-y", "-qq", "--no-install-recommends",
              "-t", f"{SUITE}-backports", kernel], env=env)
    finally:
        for where in reversed(mounted):
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


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
            progress(f"installing {kernel} from {SUITE}-backports into the guest")
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


def run_in_vm(cfg, timeout_s: float = 900, progress=print, kernel: str | None = None) -> dict:
    """Boot the guest (with the newest kernel installed: bookworm's, or the package
    `kernel` from backports), run the stress job `cfg` (a StressConfig whose fs is one of
    VM_FILESYSTEMS) inside it, and return what it reported."""
    if cfg.fs not in VM_FILESYSTEMS:
        raise VMError(f"--vm runs {', '.join(VM_FILESYSTEMS)} so far, not {cfg.fs!r}")
    image = disk_image(progress, kernel)
    h = recipe_hash(kernel)
    kernel, initrd = cache_dir() / f"vmlinuz-{h}", cache_dir() / f"initrd.img-{h}"
    src = Path(__file__).resolve().parent.parent  # the fsrace package
    work = Path(tempfile.mkdtemp(prefix="fsrace-vm-"))
    proc = None
    try:
        io = work / "io"
        shutil.copytree(src, io / "fsrace", ignore=shutil.ignore_patterns(
            "__pycache__", "templates", "explore", "kernel", "protocols", "scenarios",
            "check", "report"))
        (io / "init.sh").write_text(RUN_SCRIPT.format(fs=cfg.fs))
        (io / "guest.py").write_text(GUEST_PY)
        (io / "config.json").write_text(json.dumps(asdict(cfg)))
        io_img = work / "io.img"
        _run(["mkfs.ext4", "-q", "-F", "-d", str(io), str(io_img), "512M"])
        cmd = ["qemu-system-x86_64", "-accel", "tcg,thread=multi", "-smp", "2", "-m", "1536",
               "-kernel", str(kernel), "-initrd", str(initrd),
               "-append", "console=ttyS0 root=/dev/vda rw init=/fsrace-init panic=-1 quiet",
               "-drive", f"file={image},if=virtio,format=raw,snapshot=on",
               "-drive", f"file={io_img},if=virtio,format=raw",
               "-nographic", "-no-reboot"]
        progress(f"booting the guest (qemu, TCG) for {cfg.scenario or 'mix'} on {cfg.fs}")
        with open(work / "serial.txt", "w") as serial:
            proc = subprocess.Popen(cmd, stdout=serial, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired as e:
                raise VMError(f"the guest did not finish within {timeout_s:.0f}s") from e
        out = {}
        for name in ("report.txt", "status.txt", "kernel.txt", "dmesg.txt", "console.txt"):
            dest = work / f"out-{name}"
            subprocess.run(["debugfs", "-R", f"dump /{name} {dest}", str(io_img)],
                           capture_output=True)
            out[name] = dest.read_text(errors="replace") if dest.exists() else ""
        run_log = work / "out-run.json.gz"
        subprocess.run(["debugfs", "-R", f"dump /run.json.gz {run_log}", str(io_img)],
                       capture_output=True)
        out["run_log"] = run_log.read_bytes() if run_log.exists() else b""
        if not out["status.txt"].strip():
            raise VMError("the guest stopped before the run finished; its console:\n"
                          + (out["console.txt"] or (work / "serial.txt").read_text())[-3000:])
        return out
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def main_progress(msg: str) -> None:
    print(f"fsrace: {msg}", file=sys.stderr, flush=True)
