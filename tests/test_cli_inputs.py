"""Every command against a table of bad inputs (names, numbers, paths, files) and signals:
the exit code of the table in `fsrace --help`, one line that says what is wrong, and never
a traceback."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsrace.cli import main

RACE = ["-s", "punch-write-fault", "-p", "linux-2012"]


def _files(tmp: Path) -> dict[str, str]:
    (tmp / "junk.json.gz").write_text("not gzip")
    (tmp / "truncated.json.gz").write_bytes(gzip.compress(b'{"config": {"fs": "tmpfs"')[:20])
    with gzip.open(tmp / "other.json.gz", "wt") as f:
        f.write('{"format": 9, "config": {}}')
    (tmp / "folder").mkdir()
    return {"TMP": str(tmp)}


BAD = [
    # (arguments, what the one line says)
    (["nosuchcommand"], "No such command"),
    (["check", "-s", "nope", "-p", "linux-2012"], "no scenario 'nope'"),
    (["check", "-s", "punch-read", "-p", "linux-2O12"], "did you mean linux-2012"),
    (["check", *RACE, "--pages", "0"], "--pages"),
    (["check", *RACE, "--writers", "99"], "--writers"),
    (["check", *RACE, "--blocks-per-page", "3"], "--blocks-per-page"),
    (["check", *RACE, "--time-limit", "-1"], "--time-limit"),
    (["check", *RACE, "--max-steps", "many"], "--max-steps"),
    (["check", *RACE, "--strategy", "fastest"], "--strategy"),
    (["check", *RACE, "--strategy", "dpor", "--executions", "5"], "no effect"),
    (["check", *RACE, "--html", "/proc/x.html"], "cannot write in /proc"),
    (["check", *RACE, "--html", "{TMP}/folder"], "directory"),
    (["check", "-s", "dio-write-fault", "-p", "smb-6.1"], "not modelled"),
    (["replay", *RACE, "zero"], "bad schedule token"),
    (["replay", *RACE, "0:99999999999999999999"], "runs past"),
    (["replay", *RACE, "2:40"], "can run"),
    (["matrix", "--pages", "0"], "--pages"),
    (["matrix", "--jobs", "0"], "--jobs"),
    (["matrix", "--html", "/proc/m"], "cannot create the folder /proc/m"),
    (["stress", "--mix"], "--fs is required"),
    (["stress", "--fs", "ext5", "--mix"], "did you mean ext4"),
    (["stress", "--fs", "tmpfs", "-s", "punch-no-cached-pages"], "no stress scenario"),
    (["stress", "--fs", "tmpfs", "--mix", "-s", "punch-read"], "one of --scenario"),
    (["stress", "--fs", "tmpfs", "--mix", "--without", "fly"], "no operation fly"),
    (["stress", "--fs", "tmpfs", "--mix", "--workers", "0"], "--workers"),
    (["stress", "--fs", "tmpfs", "--mix", "--log", "/proc/x.json.gz"], "cannot write"),
    (["stress", "--fs", "tmpfs", "--mix", "--kernel", "linux-image-amd64"], "needs --vm"),
    (["stress", "--replay", "{TMP}/junk.json.gz"], "not a saved fsrace stress run"),
    (["stress", "--replay", "{TMP}/truncated.json.gz"], "not a saved fsrace stress run"),
    (["stress", "--replay", "{TMP}/other.json.gz"], "log format"),
    (["stress", "--replay", "{TMP}/missing.json.gz"], "does not exist"),
    (["stress-sweep", "--fs", "zfs"], "zfs"),
    (["vm-run", "{TMP}/missing.c", "--fs", "ext4"], "does not exist"),
    (["vm-run", "/etc/hostname", "--fs", "zfs"], "--fs zfs"),
]


@pytest.mark.parametrize("args,says", BAD, ids=[" ".join(a)[:60] for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(args, says, tmp_path):
    where = _files(tmp_path)
    args = [a.format(**where) for a in args]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], r.output


def _fsrace() -> str:
    return str(Path(sys.executable).with_name("fsrace"))


def _stop(args: list[str], sig: int, after: float) -> subprocess.CompletedProcess:
    """Run a command in its own process group and send it `sig` as a terminal would."""
    proc = subprocess.Popen([_fsrace(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(after)
    os.killpg(proc.pid, sig)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        _kill_session(proc.pid)
        raise
    r = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    r.session = proc.pid  # the command led a session of its own
    return r


def _session(sid: int) -> list[int]:
    """Processes still in the session a stopped command led (its workers included, whatever
    process group they moved to)."""
    found = subprocess.run(["pgrep", "-s", str(sid)], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def _kill_session(sid: int) -> None:
    for pid in _session(sid):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_check_prints_what_it_covered(sig, code):
    r = _stop(["check", "-s", "punch-write-fault", "-p", "invalidate-lock", "--writers", "2"],
              sig, after=3)
    assert r.returncode == code, r.stderr
    assert "UNKNOWN" in r.stdout and "stopped: interrupted" in r.stdout
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_matrix_prints_the_cells_searched_and_leaves_no_worker(sig, code):
    r = _stop(["matrix", "--jobs", "2"], sig, after=4)
    assert r.returncode == code, r.stderr
    assert "cells searched, the rest not" in r.stdout and "Traceback" not in r.stderr
    left = _session(r.session)
    _kill_session(r.session)
    assert left == []


def test_a_killed_matrix_leaves_no_worker():
    # Cells at 3x3 take longer than the wait below, so a worker outliving its parent
    # would be seen. Output goes to a file: a pipe would stay open while any worker lives.
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([_fsrace(), "matrix", "--jobs", "2", "--pages", "3",
                                 "--writers", "3"], stdout=out, stderr=out,
                                start_new_session=True)
        time.sleep(4)
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    deadline = time.monotonic() + 2
    while (left := _session(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    _kill_session(proc.pid)
    assert left == []
