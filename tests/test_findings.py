"""The standalone reproducers in docs/findings: they build, and where the host has a file
system that should pass them, they pass there (so a violation they report elsewhere is the
file system's, not theirs). And every model counterexample the docs quote replays."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fsrace.stress.scratch import scratch_fs

FINDINGS = Path(__file__).resolve().parent.parent / "docs" / "findings"
PROGRAMS = sorted(FINDINGS.glob("*.c"))
needs_cc = pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler")


def _build(source: Path, out: Path) -> Path:
    r = subprocess.run(["cc", "-O2", "-Wall", "-Werror", "-pthread", "-o", str(out),
                        str(source)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


@needs_cc
@pytest.mark.parametrize("source", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_a_reproducer_builds_without_warnings(source, tmp_path):
    assert _build(source, tmp_path / source.stem).exists()


@needs_cc
@pytest.mark.realfs
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
@pytest.mark.parametrize("args", [[], ["--procs"], ["--store-sources"]])
def test_the_ocfs2_reflink_reproducer_finds_nothing_on_xfs(args, tmp_path):
    # xfs keeps page faults out of its remap (MMAPLOCK from before the flush): the same
    # clones and stores must never read a zero word there.
    binary = _build(FINDINGS / "ocfs2-reflink-mmap.c", tmp_path / "repro")
    with scratch_fs("xfs") as s:
        r = subprocess.run([str(binary), os.path.join(s.mnt, "file"), "16", "1", *args],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    clones = int(r.stdout.split()[0])
    assert clones > 50 and " 0 with zero words" in r.stdout, r.stdout


@needs_cc
@pytest.mark.realfs
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
@pytest.mark.parametrize("fs", ["ext4", "xfs"])
def test_the_smb_copy_reproducer_finds_nothing_on_local_file_systems(fs, tmp_path):
    # ext4 copies, xfs reflinks; both keep write faults out of the copied range.
    binary = _build(FINDINGS / "smb-copy-mmap.c", tmp_path / "repro")
    with scratch_fs(fs) as s:
        r = subprocess.run([str(binary), os.path.join(s.mnt, "file"), "500"],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "500 rounds, 0 copies refused or short: 500 clean" in r.stdout, r.stdout


def _reproduce_lines():
    root = FINDINGS.parent.parent
    for doc in [root / "README.md", *sorted((root / "docs").rglob("*.md"))]:
        for line in doc.read_text().splitlines():
            m = re.search(r"reproduce: fsrace replay --scenario (\S+) --protocol (\S+) '([^']+)'",
                          line)
            if m:
                yield pytest.param(*m.groups(), id=f"{doc.name}-{m[1]}-{m[2]}")


@pytest.mark.parametrize("scenario,protocol,schedule", list(_reproduce_lines()))
def test_every_reproduce_line_in_the_docs_replays_a_violation(scenario, protocol, schedule):
    from fsrace.explore.engine import VIOLATION
    from fsrace.explore.schedule import Schedule
    from fsrace.run import replay

    rec = replay(scenario, protocol, Schedule.parse(schedule))
    assert rec.outcome == VIOLATION, rec.outcome
