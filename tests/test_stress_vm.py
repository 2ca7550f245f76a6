"""fsrace stress --vm: the NFS v4.2 DEALLOCATE vs mmap write-fault race, found on the
guest's kernel (Debian bookworm, 6.1) by fsrace's own command. Needs root, debootstrap and
qemu (make test installs them); the guest disk is built once and cached."""

import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.vm


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("qemu-system-x86_64")
                    or not shutil.which("debootstrap"),
                    reason="needs root, qemu-system-x86 and debootstrap")
def test_nfs_punch_write_fault_race_is_found_in_a_vm(tmp_path):
    log = tmp_path / "run.json.gz"
    r = subprocess.run(
        [sys.executable, "-m", "fsrace.cli", "stress", "--vm", "--fs", "nfs", "--scenario",
         "punch-write-fault", "--duration", "20", "--pages", "4", "--log", str(log)],
        capture_output=True, text=True, timeout=1500)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "guest kernel 6.1" in r.stdout and "on /mnt/nfs" in r.stdout
    assert "VIOLATION" in r.stdout and "punch" in r.stdout and "<- unexplained" in r.stdout
    assert log.stat().st_size > 0
