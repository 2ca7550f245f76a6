"""fsrace stress --vm: the NFS v4.2 DEALLOCATE vs mmap write-fault race, found on the
guest's kernel (Debian bookworm, 6.1) by fsrace's own command. Needs root, debootstrap and
qemu (make test installs them); the guest disk is built once and cached."""

import os
import re
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
    # The guest's kernel counted the client's own calls: DEALLOCATE sent, mkwrite run.
    assert re.search(r"kernel paths on nfs4 \(kprobes\): .*punch -> nfs42_proc_deallocate "
                     r"[1-9].*store -> nfs_vm_page_mkwrite [1-9]", r.stdout), r.stdout


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("qemu-system-x86_64")
                    or not shutil.which("debootstrap"),
                    reason="needs root, qemu-system-x86 and debootstrap")
def test_sigterm_while_the_guest_runs_kills_it_and_removes_its_files():
    import glob
    import signal
    import tempfile
    import time

    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "fsrace-vm-*")))
    p = subprocess.Popen(
        [sys.executable, "-m", "fsrace.cli", "stress", "--vm", "--fs", "ext4", "--scenario",
         "punch-write-fault", "--duration", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stderr:  # the disk is cached by the test above: this comes quickly
        if "booting the guest" in line:
            break
    time.sleep(5)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and "guest was killed" in err
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "fsrace-vm-*"))) == before
    guests = subprocess.run(["pgrep", "-af", "qemu-system-x86_64"], capture_output=True,
                            text=True).stdout.splitlines()
    assert not [g for g in guests if "fsrace-vm-" in g
                and not any(d in g for d in before)]  # its guest is gone


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("qemu-system-x86_64")
                    or not shutil.which("debootstrap"),
                    reason="needs root, qemu-system-x86 and debootstrap")
def test_vm_run_builds_a_c_program_and_runs_it_once_per_argument_set(tmp_path):
    # Each run gets a fresh file on the guest's mount and its own arguments; the exit
    # status of the command says whether every run exited 0.
    # A file given with --file is in /io/files.
    src = tmp_path / "probe.c"
    src.write_text('#include <stdio.h>\n#include <stdlib.h>\n#include <sys/vfs.h>\n'
                   'int main(int c, char **v) { FILE *f = fopen(v[1], "w");\n'
                   '  struct statfs s; statfs(v[1], &s); char word[32] = "";\n'
                   '  FILE *g = fopen("/io/files/word.txt", "r");\n'
                   '  if (g && fscanf(g, "%31s", word) != 1) word[0] = 0;\n'
                   '  printf("file %s magic %lx arg %s word %s\\n", v[1], (long)s.f_type,'
                   ' v[2], word);\n'
                   '  return f ? atoi(v[2]) : 9; }\n')
    (tmp_path / "word.txt").write_text("carried\n")
    r = subprocess.run(
        [sys.executable, "-m", "fsrace.cli", "vm-run", "--fs", "tmpfs", str(src),
         "--file", str(tmp_path / "word.txt"), "--args", "0", "--args", "3"],
        capture_output=True, text=True, timeout=900)
    assert r.returncode == 1, r.stdout + r.stderr  # the second run exited 3
    assert "guest kernel 6.1" in r.stdout
    assert "== probe.c FILE 0 (exit 0)" in r.stdout and "== probe.c FILE 3 (exit 3)" in r.stdout
    assert "file /srv/work/file0 magic 1021994 arg 0 word carried" in r.stdout  # TMPFS_MAGIC
    assert "file /srv/work/file1 magic 1021994 arg 3 word carried" in r.stdout
    # and as it came, on stderr with the run's number (guest/program.py's echo)
    assert "fsrace: run 2: file /srv/work/file1 magic 1021994 arg 3 word" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("qemu-system-x86_64")
                    or not shutil.which("debootstrap"),
                    reason="needs root, qemu-system-x86 and debootstrap")
def test_fsraces_fuse_server_runs_in_the_guest_and_the_fuse_finding_shows_there():
    # The guest's python3 runs fuse_server.py over an ext4 of the scratch disk, with the
    # writeback cache; 6.1's FUSE puts punched data back (docs/findings/fuse-writeback-mmap.md)
    # in about one round of five, never without the stores.
    source = os.path.join(os.path.dirname(__file__), "..", "docs", "findings",
                          "fuse-writeback-mmap.c")
    r = subprocess.run(
        [sys.executable, "-m", "fsrace.cli", "vm-run", "--fs", "fuse", source,
         "--args", "300", "--args", "300 --no-faults"],
        capture_output=True, text=True, timeout=1500)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "guest kernel 6.1" in r.stdout and ", fuse (" in r.stdout
    stale = re.search(r"^punch: (\d+) of 300 rounds stale", r.stdout, re.M)
    assert stale and int(stale[1]) > 0, r.stdout
    assert "punch (no faults): 0 of 300 rounds stale" in r.stdout
