"""fsrace export fstests and the repository's fstests/ (its output): fstests tests for the
race classes, and their C helper. Without an fstests checkout (fstests is not packaged)
the scripts are checked for what fstests' check needs of them; the helper builds, refuses
bad usage, passes on ext4 and xfs, and fails on the NFS client the findings are about (in
the qemu guest)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fsrace.stress.fstests import HELPER, TESTS, export
from fsrace.stress.scratch import scratch_fs

FSTESTS = Path(__file__).resolve().parent.parent / "fstests"
SCRIPTS = sorted(p for p in (FSTESTS / "tests" / "generic").iterdir()
                 if p.name.isdigit())
# The groups these tests use, as fstests' doc/group-names.txt defines them.
GROUPS = {"auto", "quick", "rw", "mmap", "data", "clone", "collapse", "copy_range",
          "insert", "punch", "zero"}
OPS = ("copy", "clone", "punch", "zero", "truncate", "insert", "collapse")
needs_cc = pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler")


@pytest.fixture(scope="module")
def helper(tmp_path_factory):
    out = tmp_path_factory.mktemp("fstests") / "t_mmap_fault_op_race"
    r = subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-o",
                        str(out), str(HELPER)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


def test_the_repositorys_fstests_folder_is_what_export_writes(tmp_path):
    written = export(list(TESTS), tmp_path)
    assert {p.relative_to(tmp_path) for p in written} == {
        p.relative_to(FSTESTS) for p in FSTESTS.rglob("*")
        if p.is_file() and p.parent.name in ("generic", "src")}
    for p in written:
        assert p.read_bytes() == (FSTESTS / p.relative_to(tmp_path)).read_bytes(), p


def test_every_test_is_a_race_class_of_the_model_and_each_finding_op_has_one():
    from fsrace.scenarios import SCENARIOS

    assert set(TESTS) <= set(SCENARIOS)
    ops = {re.search(r"-o (\w+)", p.read_text())[1] for p in SCRIPTS}
    assert {"copy", "clone", "punch", "truncate", "insert", "collapse"} <= ops


def test_export_refuses_a_class_without_a_test_and_numbers_from_number(tmp_path):
    cli = [sys.executable, "-m", "fsrace.cli", "export", "fstests"]
    r = subprocess.run([*cli, str(tmp_path), "-s", "punch-read-fault"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "no fstests test for punch-read-fault" in r.stderr
    assert not any(tmp_path.iterdir())  # nothing half-written
    r = subprocess.run([*cli, str(tmp_path), "-s", "punch-write-fault", "-s",
                        "copy-write-fault", "--number", "120"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    punch = (tmp_path / "tests" / "generic" / "120").read_text()
    assert "# FS QA Test No. 120" in punch and "-o punch" in punch
    assert "-o copy" in (tmp_path / "tests" / "generic" / "121").read_text()
    assert (tmp_path / "src" / "t_mmap_fault_op_race.c").read_text() == HELPER.read_text()


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_a_script_is_what_fstests_check_runs(script):
    text = script.read_text()
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert os.access(script, os.X_OK)
    assert text.startswith("#! /bin/bash\n# SPDX-License-Identifier: GPL-2.0\n")
    assert f"# FS QA Test No. {script.name}\n" in text
    begin = re.search(r"^\. \./common/preamble\n_begin_fstest (.+)$", text, re.M)
    assert begin and set(begin[1].split()) <= GROUPS, begin and begin[1]
    assert {"auto", "quick"} <= set(begin[1].split())
    assert '_require_test_program "t_mmap_fault_op_race"' in text
    assert all(m in OPS for m in re.findall(r"t_mmap_fault_op_race -o (\w+)", text))
    assert text.rstrip().endswith("_exit 0")
    out = script.with_name(script.name + ".out").read_text()
    assert out == f"QA output created by {script.name}\nSilence is golden\n"


@needs_cc
@pytest.mark.parametrize("args", [[], ["-o", "nonsense", "f"], ["-o", "copy"],
                                  ["-o", "copy", "-r", "0", "f"], ["-x", "f"],
                                  ["-o", "punch", "-S", "f"], ["-o", "copy", "-l", "f"],
                                  ["-o", "copy", "-n", "-S", "f"], ["-o", "punch", "-n", "-R", "f"],
                                  ["-o", "insert", "-l", "-R", "f"],
                                  ["-o", "punch", "-B", "f"], ["-o", "clone", "-B", "-S", "f"]])
def test_the_helper_refuses_bad_usage(helper, args, tmp_path):
    r = subprocess.run([str(helper), *args], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 2 and "usage:" in r.stderr, r.stderr


@needs_cc
@pytest.mark.realfs
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
@pytest.mark.parametrize("fs", ["ext4", "xfs"])
def test_the_helper_passes_on_ext4_and_xfs(helper, fs):
    # Both keep write faults out of every one of these operations (i_mmap_sem /
    # invalidate_lock, MMAPLOCK); ext4 has no clone, and copies through the page cache.
    ops = [op for op in OPS if not (fs == "ext4" and op == "clone")]
    with scratch_fs(fs) as s:
        for op in ops:
            for extra in ([], ["-n"]):
                r = subprocess.run([str(helper), "-o", op, "-r", "200", "-m", "50", *extra,
                                    os.path.join(s.mnt, "file")],
                                   capture_output=True, text=True, timeout=120)
                assert r.returncode == 0, (op, extra, r.stdout + r.stderr)
                assert f"{op}: 0 of 200 rounds stale" in r.stdout, r.stdout
        # Both hold readahead off their punch with invalidate_lock.
        r = subprocess.run([str(helper), "-o", "punch", "-r", "200", "-R",
                            os.path.join(s.mnt, "file")], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0 and "punch: 0 of 200 rounds stale (readahead" in r.stdout, (
            r.stdout + r.stderr)
        if fs == "xfs":
            # XFS's reads map blocks from its in-core extent tree, which the remap
            # changes under the ILOCK: no copy of a mapping outlives the clone.
            r = subprocess.run([str(helper), "-o", "clone", "-r", "200", "-B",
                                os.path.join(s.mnt, "file")], capture_output=True,
                               text=True, timeout=120)
            assert r.returncode == 0 and "clone: 0 of 200 rounds stale (reads of page 1" in (
                r.stdout), r.stdout + r.stderr


@pytest.mark.vm
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("qemu-system-x86_64")
                    or not shutil.which("debootstrap"),
                    reason="needs root, qemu-system-x86 and debootstrap")
def test_the_helper_finds_the_nfs_copy_race_and_its_control_is_clean():
    # The guest's 6.1 NFS v4.2 client launders a page dirtied during a COPY over the copy
    # (docs/findings/nfs-copy-mmap.md); without stores every round holds the copy.
    r = subprocess.run(
        [sys.executable, "-m", "fsrace.cli", "vm-run", "--fs", "nfs", str(HELPER),
         "--args", "-o copy -r 30", "--args", "-o copy -r 30 -n"],
        capture_output=True, text=True, timeout=900)
    assert r.returncode == 1, r.stdout + r.stderr
    stale = int(re.search(r"copy: (\d+) of 30 rounds stale \(stores", r.stdout)[1])
    assert stale > 0, r.stdout
    assert "copy: 0 of 30 rounds stale (no stores)" in r.stdout, r.stdout


@needs_cc
@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs tmpfs at /dev/shm")
def test_the_helper_says_3_when_the_file_system_refuses_the_operation(helper):
    # tmpfs has no insert range: the test turns that into fstests' "not run", not a failure.
    path = f"/dev/shm/fsrace-fstests-{os.getpid()}"
    try:
        r = subprocess.run([str(helper), "-o", "insert", "-r", "2", "-n", path],
                           capture_output=True, text=True, timeout=60)
    finally:
        if os.path.exists(path):
            os.unlink(path)
    assert r.returncode == 3 and "Operation not supported" in r.stderr, r.stderr


@needs_cc
def test_the_helper_reads_back_with_o_direct_when_asked(helper, tmp_path):
    # 903's second pass: the same truncate rounds, the file read back past the page cache
    # (or through it, said so, where O_DIRECT is refused); a local file system keeps them
    # clean, and the control stays clean either way.
    path = str(tmp_path / "file")
    for extra in ([], ["-n"]):
        r = subprocess.run([str(helper), "-o", "truncate", "-m", "50", "-r", "20", "-D",
                            *extra, path], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert re.search(r"truncate: 0 of 20 rounds stale \(.*\), (written back every 50 "
                         r"stores by msync, )?read back (with O_DIRECT|"
                         r"through the page cache: O_DIRECT refused)$", r.stdout, re.M), r.stdout


def test_the_helper_writes_back_as_the_flusher_does_when_asked(helper, tmp_path):
    path = str(tmp_path / "f")
    r = subprocess.run([str(helper), "-o", "punch", "-m", "50", "-f", "-r", "20", path],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.endswith("written back every 50 stores by sync_file_range\n"), r.stdout
    r = subprocess.run([str(helper), "-o", "punch", "-f", "-r", "20", path],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "usage" in r.stderr  # -f says how -m writes back


def test_the_guest_driver_parses():
    """vm-check.sh runs only inside a guest (the runs fstests/README.md records); here at least
    it must parse, and be runnable as vm-run's program."""
    script = Path(__file__).parent.parent / "fstests" / "vm-check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert os.access(script, os.X_OK)
