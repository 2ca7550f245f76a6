"""fsrace stress against the running kernel: short runs on every file system, the checker
proven on a FUSE file system with a real punch bug, and clean-up on every way out. Needs
root, loop devices and /dev/fuse (make test installs the Debian packages)."""

import contextlib
import ctypes
import errno
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from fsrace.stress.ops import own_operation
from fsrace.stress.run import StressConfig, run_stress
from fsrace.stress.scratch import FILESYSTEMS, ScratchError, scratch_fs
from fsrace.stress.worker import PAST_EOF

pytestmark = pytest.mark.realfs
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")


SCRATCH = os.path.join(tempfile.gettempdir(), "fsrace-")  # where stress makes its scratch


def _fsrace_mounts() -> list[str]:
    with open("/proc/mounts") as f:
        return [line for line in f if SCRATCH in line]


def _fsrace_loops() -> str:
    out = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    return "\n".join(line for line in out.splitlines() if SCRATCH in line)


@needs_root
# Not fuse: its writeback cache gives punched data back (docs/findings/fuse-writeback-mmap.md),
# which a mixed run now and then shows.
@pytest.mark.parametrize("fs", [fs for fs in FILESYSTEMS if fs != "fuse"])
def test_a_short_mixed_run_on_each_file_system_is_clean_and_cleaned_up(fs):
    # Without direct writes: beside a mapped write of the same page they are the collision
    # the kernel documents as incoherent (about 1 run in 15 on ext4 showed it).
    res = run_stress(StressConfig(fs, None, workers=2, ops=400, pages=16,
                                  without=("dio_write",)))
    assert not any(e.op.kind == "dio_write" for e in res.history)
    assert res.executed > 300 and res.slots_checked == 16 * 512
    assert res.violations == [], "\n".join(res.violations)
    assert res.remounted == (fs != "tmpfs")
    if fs in ("ext4", "xfs", "btrfs"):
        assert res.read_direct  # their O_DIRECT reads the disk past the page cache
    assert not _fsrace_mounts() and not _fsrace_loops()


@needs_root
def test_what_the_disk_or_server_holds_past_the_cache_is_checked_too(monkeypatch):
    # As if the final O_DIRECT read found other data than the cache: a client whose cache
    # hides what its server kept (9p's zero_point after a truncate) shows this way.
    from fsrace.stress import run as stress_run

    real = stress_run._read_direct

    def other_data(path, pages):
        data = real(path, pages)
        return None if data is None else b"\xee" * 8 + data[8:]

    monkeypatch.setattr(stress_run, "_read_direct", other_data)
    res = run_stress(StressConfig("ext4", "punch-write-fault", workers=2, ops=100, pages=4))
    assert res.read_direct and res.violations
    assert any("O_DIRECT" in v for v in res.violations), "\n".join(res.violations)


def test_folder_mode_works_in_a_new_subfolder_and_removes_it(tmp_path):
    (tmp_path / "keep.txt").write_text("not fsrace's")
    res = run_stress(StressConfig(str(tmp_path), "punch-read", workers=2, ops=300, pages=8))
    assert res.violations == [] and res.executed == 600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_without_root_a_file_system_name_is_refused_with_the_folder_alternative(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ScratchError, match="needs root.*folder"):
        with scratch_fs("ext4"):
            pass


def test_a_name_that_is_neither_a_file_system_nor_a_folder_is_refused():
    with pytest.raises(ScratchError, match="neither"):
        with scratch_fs("/nonexistent/fsrace-test"):
            pass


@needs_root
def test_sigterm_mid_run_unmounts_detaches_and_deletes(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "fsrace.cli", "stress", "--fs", "ext4", "--mix",
         "--duration", "60", "--log", str(tmp_path / "run.json.gz")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _fsrace_mounts():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.1)
    time.sleep(1.0)  # let the workers start
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "removed" in err
    assert not _fsrace_mounts() and not _fsrace_loops()


def _mfusepy():
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError):
        return False
    return os.path.exists("/dev/fuse")


@contextlib.contextmanager
def _memfs(tmp_path, options: list[str]):
    """fsrace's FUSE file system with these options, mounted for the block's time."""
    mnt = tmp_path / "memfs"
    mnt.mkdir()
    server = subprocess.Popen([sys.executable, "-m", "fsrace.stress.memfs", str(mnt),
                               *options], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not os.path.ismount(mnt):
            assert server.poll() is None and time.monotonic() < deadline, server.stderr.read()
            time.sleep(0.05)
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
        server.wait(timeout=20)


@needs_root
@pytest.mark.skipif(not _mfusepy(), reason="needs mfusepy, libfuse3 and /dev/fuse")
@pytest.mark.parametrize("deferred,scenario", [(True, "punch-read"), (False, "punch-read"),
                                               (True, "punch-write-fault"),
                                               (False, "punch-write-fault")])
def test_the_checker_finds_a_real_punch_bug_and_only_it(tmp_path, deferred, scenario):
    with _memfs(tmp_path, ["--deferred-punch"] if deferred else []) as mnt:
        res = run_stress(StressConfig(str(mnt), scenario, workers=2, ops=1000, pages=16))
        assert res.executed == 2000
        assert bool(res.violations) == deferred, "\n".join(res.violations)


def _fallocate(fd: int, mode: int, offset: int, length: int) -> int:
    """fallocate(2) with a mode (os.posix_fallocate has none): 0 or the errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    return 0 if libc.fallocate(fd, mode, offset, length) == 0 else ctypes.get_errno()


@needs_root
@pytest.mark.skipif(not _mfusepy(), reason="needs mfusepy, libfuse3 and /dev/fuse")
def test_a_zero_range_refused_with_keep_size_runs_without_it(tmp_path):
    # 7.x's NFS v4.2 client takes FALLOC_FL_ZERO_RANGE only without KEEP_SIZE; the worker
    # retries so, and the range inside the file makes the two the same operation.
    from fsrace.stress.memfs import FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE

    with _memfs(tmp_path, ["--zero-needs-size"]) as mnt:
        with open(mnt / "probe", "wb") as f:  # the server refuses what the worker tries first
            f.truncate(4096)
            assert _fallocate(f.fileno(), FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0,
                              4096) == errno.EOPNOTSUPP
            assert _fallocate(f.fileno(), FALLOC_FL_ZERO_RANGE, 0, 4096) == 0
        res = run_stress(StressConfig(str(mnt), "zero-range-write-fault", workers=2, ops=500,
                                      pages=8, seed=1))
        zeros = [e for e in res.history if e.op.kind == "zero"]
        assert zeros and all(e.result == 0 for e in zeros), res.skipped
        assert res.violations == [], "\n".join(res.violations)


def test_a_saved_run_replays_the_same_operations(tmp_path):
    from fsrace.stress.run import load_config, save_log

    work = tmp_path / "work"
    work.mkdir()
    first = run_stress(StressConfig(str(work), "punch-write-fault", workers=2, ops=200,
                                    pages=8, seed=42))
    save_log(first, str(tmp_path / "run.json.gz"))
    again = run_stress(load_config(str(tmp_path / "run.json.gz")))
    ops = [[(e.worker, e.index, e.op) for e in r.history] for r in (first, again)]
    assert ops[0] == ops[1] and len(ops[0]) == 400


@needs_root
def test_threads_share_a_mapping_and_a_fault_past_eof_is_recorded_in_its_thread():
    # Two processes of two threads; truncates make stores and loads fault past EOF: each
    # such access is recorded as a SIGBUS that did nothing, and every stream goes on. A
    # run usually has thousands of such faults, but now and then the truncates and the
    # accesses miss each other (a run of 15 measured had 3, one under make test none),
    # so up to three seeds.
    for seed in range(3):
        res = run_stress(StressConfig("tmpfs", "truncate-write-fault", workers=2,
                                      threads=2, ops=10000, pages=8, seed=seed))
        assert res.violations == [], "\n".join(res.violations)
        assert res.killed == [] and res.unfinished == []
        assert {e.worker for e in res.history} == {0, 1, 2, 3}
        for w in range(4):  # every stream ran to its end
            assert max(e.index for e in res.history if e.worker == w) == 9999
        past_eof = [e for e in res.history if e.result == PAST_EOF]
        assert {e.op.kind for e in past_eof} <= {"store", "load"}
        if past_eof:
            break
    assert past_eof, "no store or load faulted past EOF in three runs"
    assert any(k.endswith("(SIGBUS: past EOF)") for k in res.skipped)


@needs_root
@pytest.mark.parametrize("fs, scenario", [("xfs", "collapse-read-fault"),
                                          ("ext4", "insert-write-fault"),
                                          ("btrfs", "clone-write-fault"),
                                          ("xfs", "dedupe-write-fault"),
                                          ("tmpfs", "copy-write-fault"),
                                          ("ext4", "copy-from-write-fault"),
                                          ("xfs", "clone-to-write-fault")])
def test_the_moving_operations_run_and_check_clean(fs, scenario):
    res = run_stress(StressConfig(fs, scenario, workers=2, ops=500))
    remover = own_operation(scenario)
    moved = [e for e in res.history if e.op.kind == remover and e.result >= 0]
    assert len(moved) > 50, res.skipped
    assert res.violations == [], "\n".join(res.violations)


@needs_root
def test_a_class_whose_own_operation_is_always_refused_is_not_exercised(tmp_path):
    from click.testing import CliRunner

    from fsrace.cli import main

    log = tmp_path / "run.json.gz"
    r = CliRunner().invoke(main, ["stress", "--fs", "tmpfs", "--scenario",
                                  "clone-write-fault", "--ops", "300", "--log", str(log)])
    assert r.exit_code == 5, r.output  # tmpfs has no FICLONERANGE
    assert "NOT EXERCISED: tmpfs refused every clone" in r.output
    executed = r.output.split("operations executed")[1].splitlines()[0]
    assert "clone" not in executed  # the refused clones are not counted as executed
    assert log.exists() and not _fsrace_mounts()


@needs_root
def test_a_run_counts_its_race_windows_and_too_few_is_not_exercised(tmp_path):
    import json

    from click.testing import CliRunner

    from fsrace.cli import main

    def stress(*extra):
        r = CliRunner().invoke(main, ["stress", "--fs", "tmpfs", "-s", "punch-write-fault",
                                      "--ops", "3000", "--json", "--log",
                                      str(tmp_path / "run.json.gz"), *extra])
        return r.exit_code, json.loads(r.stdout)

    code, out = stress()
    assert out["windows"]["operations"] == out["operations"]["punch"] > 0
    # Whether a store or load ran inside a punch is up to the scheduler; the verdict and
    # the exit code follow the count either way.
    hit = out["windows"]["hit"] >= 1
    assert (code, out["verdict"]) == ((0, "ok") if hit else (5, "not-exercised")), out
    code, out = stress("--min-windows", str(10**9))
    assert code == 5 and out["verdict"] == "not-exercised"
