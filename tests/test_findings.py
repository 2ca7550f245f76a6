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
LEADS = FINDINGS.parent / "leads"  # reproducers of what is not yet explained
# Each program once: a finding whose reproducer is another's (a link) is built as that one.
PROGRAMS = sorted({p.resolve() for p in [*FINDINGS.glob("*.c"), *LEADS.glob("*.c")]})
needs_cc = pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler")


def _build(source: Path, out: Path) -> Path:
    r = subprocess.run(["cc", "-O2", "-Wall", "-Werror", "-pthread", "-o", str(out),
                        str(source)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


def _run_on(fs: str, source: Path, args: list[str], tmp_path: Path, timeout: int,
            others_may_enter: bool = False) -> str:
    """Build `source`, run it on a fresh `fs` with FILE there and `args`; its output,
    after asserting that it exited 0 (found nothing). `others_may_enter`: other users may
    pass through the scratch folder (made 0700) to the mount."""
    binary = _build(source, tmp_path / "repro")
    with scratch_fs(fs) as s:
        if others_may_enter:
            os.chmod(s.root, 0o755)
        r = subprocess.run([str(binary), os.path.join(s.mnt, "file"), *args],
                           capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


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
    out = _run_on("xfs", FINDINGS / "ocfs2-reflink-mmap.c", ["16", "1", *args], tmp_path, 60)
    clones = int(out.split()[0])
    assert clones > 50 and " 0 with zero words" in out, out


@needs_cc
@pytest.mark.realfs
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
@pytest.mark.parametrize("beside", ["pread", "storesync"])
def test_the_btrfs_clone_reproducer_finds_nothing_on_xfs(beside, tmp_path):
    # xfs's remap drops the destination's page cache under its locks and reads go
    # through the same locks: every round must read the clone's data.
    out = _run_on("xfs", FINDINGS / "btrfs-clone-stale-page.c", ["500", beside], tmp_path, 120)
    assert f"500 rounds, beside the clone {beside}: page 0 stale in 0, something else in 0" \
        in out, out


@needs_cc
@pytest.mark.realfs
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
@pytest.mark.parametrize("users", [[], ["3", "clone", "1000"]], ids=["one-user", "two-users"])
def test_the_btrfs_stale_extent_reproducer_finds_nothing_on_xfs(users, tmp_path):
    # The same rounds on xfs: each must be a window (one two-page extent before the
    # clone), and none may read page 0 stale; with a UID, that user cannot open the
    # other file.
    out = _run_on("xfs", FINDINGS / "btrfs-clone-stale-extent.c", ["300", *users], tmp_path,
                  120, others_may_enter=bool(users))
    assert "300 rounds: 0 stale, 0 not one extent; 0 stale rounds taken on: no other " \
        "file's data read" in out, out
    if users:
        assert "uid 1000, every privilege dropped; open(" in out \
            and "other\"): Permission denied" in out, out


@needs_cc
@pytest.mark.realfs
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
@pytest.mark.parametrize("fs", ["ext4", "xfs"])
@pytest.mark.parametrize("zero", [[], ["--zero"]], ids=["punch", "zero"])
def test_the_smb_punch_reproducer_loses_no_store_on_local_file_systems(fs, zero, tmp_path):
    # ext4's and xfs's page_mkwrite recheck page->mapping under the page lock and take
    # invalidate_lock: a fault never maps a page the punch dropped.
    out = _run_on(fs, FINDINGS / "smb-punch-mmap.c", ["300", *zero], tmp_path, 120)
    assert ": 0 stores after it returned not read back" in out, out


@needs_cc
@pytest.mark.realfs
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
@pytest.mark.parametrize("fs", ["ext4", "xfs"])
def test_the_smb_copy_reproducer_finds_nothing_on_local_file_systems(fs, tmp_path):
    # ext4 copies, xfs reflinks; both keep write faults out of the copied range.
    out = _run_on(fs, FINDINGS / "smb-copy-mmap.c", ["500"], tmp_path, 60)
    assert "500 rounds, 0 copies refused or short: 500 clean" in out, out


@needs_cc
@pytest.mark.realfs
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
@pytest.mark.parametrize("fs", ["ext4", "xfs"])
@pytest.mark.parametrize("op,result", [("copy", "the copy"), ("punch", "the hole"),
                                       ("truncate", "zeros")])
def test_the_nfs_copy_reproducer_finds_nothing_on_local_file_systems(fs, op, result,
                                                                     tmp_path):
    # Between two files ext4 copies through the page cache and xfs reflinks, and both
    # punch and truncate under invalidate_lock, with write faults kept out of the range;
    # the "server" is the file itself here.
    binary = _build(FINDINGS / "nfs-copy-mmap.c", tmp_path / "repro")
    with scratch_fs(fs) as s:
        r = subprocess.run([str(binary), os.path.join(s.mnt, "file"), "3000", "--op", op,
                            "--msync", "100", "--server", s.mnt],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"the client read {result} in 3000," in r.stdout, r.stdout
    assert f"the server's file held {result} in 3000," in r.stdout, r.stdout
    stores = int(re.search(r"^stores (\d+),", r.stdout, re.M).group(1))
    assert stores > 0, r.stdout  # the storing thread ran beside the copies


@needs_cc
@pytest.mark.realfs
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
@pytest.mark.parametrize("fs", ["ext4", "xfs"])
def test_the_ntfs3_collapse_reproducer_loses_no_store_on_ext4_and_xfs(fs, tmp_path):
    # Both take their fault-exclusion lock in page_mkwrite: a store waits for the collapse.
    binary = _build(FINDINGS / "ntfs3-collapse-mmap.c", tmp_path / "repro")
    with scratch_fs(fs) as s:
        path = os.path.join(s.mnt, "file")
        check = subprocess.run([str(binary), path, "50", "--sequential"],
                               capture_output=True, text=True, timeout=60)
        r = subprocess.run([str(binary), path, "300"], capture_output=True, text=True,
                           timeout=120)
    assert check.returncode == 0 and "25600 moved with the page" in check.stdout, check.stdout
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0 lost, 0 unexplained" in r.stdout, r.stdout
    # The collapse ran in the middle of the stores, not only before or after them all.
    moved, after = (int(re.search(rf"(\d+) {w}", r.stdout)[1])
                    for w in ("moved with the page", "after the collapse"))
    assert moved > 0 and after > 0, r.stdout


@needs_cc
@pytest.mark.realfs
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
@pytest.mark.parametrize("fs", ["ext4", "xfs"])
@pytest.mark.parametrize("how", [[], ["--fadvise"]])
def test_the_gfs2_readahead_reproducer_finds_nothing_on_ext4_and_xfs(fs, how, tmp_path):
    # Both take invalidate_lock around their punch, and readahead takes it shared.
    out = _run_on(fs, FINDINGS / "gfs2-punch-readahead.c", ["16", "300", *how], tmp_path, 120)
    assert ": 0 rounds read pre-punch data (0 pages)" in out, out


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


@pytest.mark.realfs
@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/fuse"),
                    reason="mounting needs root and /dev/fuse")
@pytest.mark.parametrize("fs", ["ext4", "xfs", "fuse-passthrough"])
@pytest.mark.parametrize("op", [[], ["--zero"], ["--copy"]], ids=["punch", "zero", "copy"])
def test_the_fuse_writeback_reproducer_finds_nothing_where_faults_are_ordered(fs, op,
                                                                              tmp_path):
    # ext4 and xfs take invalidate_lock across their punch, zero range and remap; FUSE
    # passthrough maps the backing file (ext4), whose locks order the fault.
    out = _run_on(fs, FINDINGS / "fuse-writeback-mmap.c", ["300", *op], tmp_path, 120)
    assert ": 0 of 300 rounds stale" in out, out


@pytest.mark.realfs
@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/fuse"),
                    reason="mounting needs root and /dev/fuse")
def test_the_fuse_writeback_reproducers_control_is_clean_on_the_writeback_cache(tmp_path):
    # Without stores nothing dirties the page inside the punch: the marker never returns.
    out = _run_on("fuse", FINDINGS / "fuse-writeback-mmap.c", ["300", "--no-faults"],
                  tmp_path, 120)
    assert "punch (no faults): 0 of 300 rounds stale" in out, out


def test_every_finding_has_its_sections_reproducer_and_patch_beside_it():
    """The layout a reader relies on: NAME.md says whether it was known before and where
    it stands on the newest kernels; NAME.c reproduces it and a NAME.diff (or NAME-V.diff
    per kernel) fixes it, a link where the program or patch is another finding's."""
    docs = sorted(FINDINGS.glob("*.md"))
    assert len(docs) >= 10
    for doc in docs:
        text, name = doc.read_text(), doc.stem
        assert "\n## Known before?\n" in text, doc.name
        assert "\n## Status on the newest kernels\n" in text, doc.name
        assert (FINDINGS / f"{name}.c").resolve().is_file(), f"{name}.c"
        assert [*FINDINGS.glob(f"{name}.diff"), *FINDINGS.glob(f"{name}-*.diff")], name
        for link in FINDINGS.glob(f"{name}*"):
            assert link.resolve().exists(), link  # no broken link
