"""The VM sweep's pieces that need no VM: kernel package names, the cells of the table
and the command's input checks."""

import gzip
import json
import subprocess

import pytest
from click.testing import CliRunner

from fsrace.cli import main
from fsrace.stress.sweep import Cell, markdown, summarize
from fsrace.stress.vm import (
    HUNG,
    UNCHECKED,
    GuestRun,
    Stuck,
    VMError,
    kernel_suite,
    suite_and_base,
    suite_mirror,
)


def test_kernel_packages_come_from_backports_unless_a_suite_is_named():
    assert kernel_suite("linux-image-amd64") == ("linux-image-amd64", "bookworm-backports")
    assert kernel_suite("linux-image-amd64/sid") == ("linux-image-amd64", "sid")
    # The newest 6.1 point releases are in bookworm-security, on its own archive.
    assert suite_mirror("bookworm-security") == "http://deb.debian.org/debian-security"
    assert suite_mirror("sid") == "http://deb.debian.org/debian"
    # experimental holds only what differs from sid: its kernels need sid beside it.
    assert suite_and_base("experimental") == ["experimental", "sid"]
    assert suite_and_base("sid") == ["sid"]
    for bad in ("linux image", "x/y/z", "/sid", "-rf"):
        with pytest.raises(VMError):
            kernel_suite(bad)


def run_of(ops, violations=(), status=None, kernel=None):
    doc = {"executed": sum(r >= 0 for _, r in ops), "violations": list(violations),
           "operations": [{"kind": k, "result": r} for k, r in ops]}
    if kernel is not None:
        doc["kernel"] = kernel
    return GuestRun("report", status if status is not None else int(bool(violations)),
                    gzip.compress(json.dumps(doc).encode()))


def test_a_cell_says_clean_violated_not_applicable_or_failed():
    clean = run_of([("punch", 0), ("store", 0), ("load", 8)])
    assert summarize("punch-write-fault", clean) == ("clean (3 ops)", False)
    bad = run_of([("punch", 0)] * 4, violations=["v"] * 5)
    assert summarize("punch-write-fault", bad, "nfs") == (
        "**5+ slots violated** (4 ops; findings/nfs-deallocate-mmap.md)", True)
    refused = run_of([("collapse", -95), ("collapse", -95), ("load", 8)])
    assert summarize("collapse-read-fault", refused) == (
        "n/a (collapse: Operation not supported)", False)
    partly = run_of([("collapse", -22), ("collapse", 0)])
    assert summarize("collapse-read-fault", partly)[0] == "clean (1 ops)"
    assert summarize("punch-write-fault", GuestRun("Traceback", 2, b""))[0].startswith(
        "run failed")


def test_a_cell_flagged_with_direct_reads_names_no_finding():
    """The findings named were read from runs that read through the client's cache; a run
    whose remover read past it may show the client's direct reads missing mapped stores."""
    doc = {"executed": 3, "violations": ["v"], "config": {"direct_reads": True},
           "operations": [{"kind": "truncate", "result": 0}] * 3}
    run = GuestRun("report", 1, gzip.compress(json.dumps(doc).encode()))
    assert summarize("truncate-write-fault", run, "nfs-xfs") == (
        "unconfirmed: 1 slots violated (3 ops)", True)


def test_a_violation_no_finding_explains_reads_unconfirmed_and_still_fails_the_sweep():
    bad = run_of([("copy_from", 0)] * 3, violations=["v"] * 2)
    assert summarize("copy-from-write-fault", bad, "ext4") == (
        "unconfirmed: 2 slots violated (3 ops)", True)
    assert summarize("copy-from-write-fault", bad, "btrfs") == (
        "**2 slots violated** (3 ops; findings/btrfs-clone-stale-page.md)", True)
    # An export's file system does not change which finding explains the client's race.
    copy = run_of([("copy_from", 0)] * 3, violations=["v"])
    assert summarize("copy-from-write-fault", copy, "nfs-xfs")[0].endswith(
        "; findings/nfs-copy-mmap.md)")
    # Nor does the SMB client's cache mode; but another NFS version is another client.
    smb_copy = run_of([("copy", 0)] * 3, violations=["v"])
    assert summarize("copy-write-fault", smb_copy, "smb-loose")[0].endswith(
        "; findings/smb-copy-mmap.md)")
    nfs_copy = run_of([("copy_from", 0)] * 3, violations=["v"])
    assert summarize("copy-from-write-fault", nfs_copy, "nfs41")[0].startswith("unconfirmed")
    nfs_truncate = run_of([("truncate", 0)] * 3, violations=["v"])
    for version in ("nfs41", "nfs3"):  # each shown by the reproducer on its own mount
        assert summarize("truncate-write-fault", nfs_truncate, version)[0].endswith(
            "; findings/nfs-truncate-mmap.md)")
    # 7.x's client zeroes a range with DEALLOCATE's window; 6.1's has no zero range.
    nfs_zero = run_of([("zero", 0)] * 3, violations=["v"])
    assert summarize("zero-range-write-fault", nfs_zero, "nfs-xfs")[0].endswith(
        "; findings/nfs-deallocate-mmap.md)")
    # A kernel bug fixed upstream, not found by fsrace first, names its lead.
    f2fs_truncate = run_of([("truncate", 0)] * 3, violations=["v"])
    assert summarize("truncate-write-fault", f2fs_truncate, "f2fs-compress") == (
        "**1 slots violated** (3 ops; leads/f2fs-compress-truncate.md)", True)
    assert summarize("truncate-write-fault", f2fs_truncate, "f2fs")[0].startswith(
        "unconfirmed")


def test_every_finding_a_cell_points_to_exists():
    from pathlib import Path

    from fsrace.stress.ops import SCENARIOS
    from fsrace.stress.sweep import EXPLAINED

    docs = Path(__file__).resolve().parent.parent / "docs"
    for (_, scenario), doc in EXPLAINED.items():
        assert scenario in SCENARIOS, scenario
        assert doc.startswith(("findings/", "leads/")) and (docs / doc).is_file(), doc


def test_the_documented_direct_io_collision_reads_as_expected_not_as_a_finding():
    bad = run_of([("dio_write", 0)] * 4, violations=["v"] * 2)
    text, violated = summarize("dio-write-fault", bad)
    assert text.startswith("expected: 2 slots (O_DIRECT beside a shared mapping")
    assert not violated
    clean = run_of([("dio_write", 0)] * 4)
    assert summarize("dio-write-fault", clean) == ("clean (4 ops)", False)


def test_9p_cache_mmap_reading_past_dirty_mapped_pages_on_6_1_reads_as_expected():
    # 6.1's v9fs_mmap_file_read_iter asks the server, past pages a store dirtied.
    copies = [("copy", 0)] * 4
    text, violated = summarize("copy-write-fault", run_of(copies, ["v"], kernel="6.1.0-57-amd64"),
                               "9p")
    assert text.startswith("expected: 1 slots (9p cache=mmap: read(2) goes to the server")
    assert not violated
    # Not on 6.12 (netfs caches reads), nor with cache=loose, nor on another file system.
    for fs, kernel in (("9p", "6.12.118+deb12-amd64"), ("9p-loose", "6.1.0-57-amd64"),
                       ("ext4", "6.1.0-57-amd64")):
        text, violated = summarize("copy-write-fault", run_of(copies, ["v"], kernel=kernel),
                                   fs)
        assert text.startswith("unconfirmed") and violated, (fs, kernel)


def test_the_table_has_a_row_per_kernel_and_file_system():
    cells = [Cell("6.1", "nfs", "a", "clean"), Cell("6.1", "nfs", "b", "**1 slots**", True),
             Cell("7.2", "ext4", "a", "n/a")]
    lines = markdown(cells).splitlines()
    assert lines[0] == "| kernel | file system | `a` | `b` |"
    assert lines[2:] == ["| 6.1 | nfs | clean | **1 slots** |", "| 7.2 | ext4 | n/a |  |"]


def test_the_sweep_refuses_unknown_file_systems_and_classes():
    r = CliRunner().invoke(main, ["stress-sweep", "--fs", "ext4,zfs"])
    assert r.exit_code == 2 and "zfs" in r.output
    r = CliRunner().invoke(main, ["stress-sweep", "-s", "punch-everything"])
    assert r.exit_code == 2 and "punch-everything" in r.output


def test_a_hung_run_is_its_own_cell():
    assert summarize("dio-write-fault", GuestRun("did not end", HUNG, b""))[0].startswith(
        "**hung**")


def test_the_watch_stops_a_guest_whose_run_does_not_end(tmp_path):
    import subprocess
    import sys

    from fsrace.stress.vm import _watch

    serial = tmp_path / "serial.txt"
    path = str(serial)
    script = (f"import time; f = open({path!r}, 'w'); f.write('fsrace-run start 0\\n'); "
              "f.flush(); f.write('fsrace-run end 0\\nfsrace-run start 1\\n'); f.flush(); "
              "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", script])
    # run 0 ended, 1 hung
    assert _watch(proc, serial, timeout_s=30, run_timeout_s=2) == Stuck(1, checking=False)
    assert proc.returncode is not None


def test_the_watch_shows_a_programs_output_as_it_comes_and_keeps_it(tmp_path):
    """vm-run's runs echo their output to the console (guest/program.py): the watch
    passes on each line once it has ended, and a run that never ends keeps what it said."""
    import subprocess
    import sys

    from fsrace.stress.vm import _watch, output_lines

    serial = tmp_path / "serial.txt"
    script = (f"import time; f = open({str(serial)!r}, 'w'); "
              "f.write('fsrace-run start 0\\r\\nfsrace-out 0 generic/457 3s\\r\\n'); "
              "f.flush(); time.sleep(2); f.write('fsrace-out 0 generic/501 5s\\n"
              "fsrace-out 0 gener'); f.flush(); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", script])
    seen = []
    assert _watch(proc, serial, timeout_s=30, run_timeout_s=4,
                  echo=lambda run, line: seen.append((run, line))) == Stuck(0, checking=False)
    assert seen == [(0, "generic/457 3s"), (0, "generic/501 5s")]  # each once, whole
    assert output_lines(serial.read_text())[:2] == seen


def test_the_watch_tells_a_long_check_from_a_hung_kernel(tmp_path):
    """A run that said its operations all ended is checking its history: the hung-kernel
    limit no longer applies to it, only the check's own."""
    import subprocess
    import sys
    import time

    from fsrace.stress.vm import _watch

    serial = tmp_path / "serial.txt"
    script = (f"import time; f = open({str(serial)!r}, 'w'); "
              "f.write('fsrace-run start 0\\nfsrace-run checking 0\\n'); f.flush(); "
              "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", script])
    started = time.monotonic()
    assert _watch(proc, serial, timeout_s=30, run_timeout_s=1,
                  check_timeout_s=4) == Stuck(0, checking=True)
    assert time.monotonic() - started >= 4  # not stopped at the 1 s hung-kernel limit
    assert summarize("collapse-read-fault", GuestRun("", UNCHECKED, b""))[0].startswith(
        "check unfinished")


def test_vm_run_refuses_an_unknown_file_system_or_a_file_it_cannot_run(tmp_path):
    prog = tmp_path / "notes.txt"
    prog.write_text("not a program")
    r = CliRunner().invoke(main, ["vm-run", "--fs", "zfs", str(prog)])
    assert r.exit_code == 2 and "--fs zfs" in r.output
    r = CliRunner().invoke(main, ["vm-run", "--fs", "ext4", str(prog)])
    assert r.exit_code == 2 and "neither a C file nor an executable" in r.output
    bad = tmp_path / "broken.c"
    bad.write_text("int main(void) { return }\n")
    r = CliRunner().invoke(main, ["vm-run", "--fs", "ext4", str(bad)])
    assert r.exit_code == 2 and "building broken.c failed" in r.output


def _counted(kind, hit, violations=(), before=None):
    doc = {"executed": 10, "violations": list(violations), "config": {"min_windows": 1},
           "windows": {"hit": hit, "operations": 5, "operations_hit": 2,
                       "before_violation": before},
           "paths": {"fstype": "nfs4", "hits": {kind: {"nfs42_proc_deallocate": 5}},
                     "absent": {}, "unavailable": None},
           "operations": [{"kind": kind, "result": 0}] * 5 + [{"kind": "store", "result": 0}] * 5}
    return GuestRun("report", int(bool(violations)), gzip.compress(json.dumps(doc).encode()))


def test_a_cell_of_rounds_adds_their_windows_and_calls_and_skips_the_skipped():
    from fsrace.stress.vm import SKIPPED

    rounds = [_counted("punch", 30), _counted("punch", 25), GuestRun("", SKIPPED, b"")]
    assert summarize("punch-write-fault", rounds, "ext4", min_windows=50) == (
        "clean (20 ops in 2 runs, 55 windows; nfs42_proc_deallocate 10)", False)
    assert summarize("punch-write-fault", rounds, "ext4", min_windows=60) == (
        "not exercised (55 windows of 60, 20 ops in 2 runs)", False)
    flagged = [_counted("punch", 30), _counted("punch", 9, ["v"], before=4)]
    assert summarize("punch-write-fault", flagged, "nfs", min_windows=60) == (
        "**1 slots violated** (20 ops, 1 of 2 runs; findings/nfs-deallocate-mmap.md)", True)


def test_a_cell_is_done_at_its_windows_its_cap_or_when_its_operation_is_refused():
    from fsrace.stress.vm import Rounds

    rounds = Rounds([0, 0, 1], min_windows=100, cap_s=10)
    assert not rounds.enough(windows=99, raced_s=9.9, carried_out=3, executed=9)
    assert rounds.enough(windows=100, raced_s=1, carried_out=3, executed=9)
    assert rounds.enough(windows=0, raced_s=10, carried_out=3, executed=9)
    assert rounds.enough(windows=0, raced_s=1, carried_out=0, executed=5)
    # A round in which nothing ran at all refused nothing: the next round tries again
    # (a 7.2.13 SMB boot's first round ran 0 operations in 0.27 s).
    assert not rounds.enough(windows=0, raced_s=0.3, carried_out=0, executed=0)


def test_stress_rates_estimates_each_race_and_the_windows_a_cell_needs(tmp_path):
    def save(name, hit, before=None, kernel="6.1.0-50-amd64"):
        doc = json.loads(gzip.decompress(_counted("punch", hit, ["v"] if before is not None
                                                  else [], before).log))
        doc["config"].update(fs="/mnt/nfs", scenario="punch-write-fault")
        doc["kernel"] = kernel
        (tmp_path / name).write_bytes(gzip.compress(json.dumps(doc).encode()))

    save("a.json.gz", 100, before=20)
    save("b.json.gz", 50)
    save("c.json.gz", 80, before=60)
    save("d.json.gz", 500, kernel="7.2")  # clean on another kernel: no rate, no row
    r = CliRunner().invoke(main, ["stress-rates", str(tmp_path)])
    assert r.exit_code == 0, r.output
    row = "| 6.1.0-50-amd64 | nfs4 | punch-write-fault | 3 | 2 | 130 | 1 in 65 | 298 | 1,124 |"
    assert row in r.output.splitlines()
    assert "7.2 |" not in r.output and "1 (kernel, file system, class) showed no" in r.output
    assert "K that shows every race above with 99% at its lower-bound rate: 1,124" in r.output
    save("e.json.gz", 40, before=0, kernel="7.3")  # shown before any window returned
    r = CliRunner().invoke(main, ["stress-rates", str(tmp_path)])
    assert "| 7.3 | nfs4 | punch-write-fault | 1 | 1 | 0 | 1 in 1 | 1 | - |" in r.output
    (tmp_path / "e.json.gz").unlink()
    (tmp_path / "junk.json.gz").write_bytes(b"not gzip")
    r = CliRunner().invoke(main, ["stress-rates", str(tmp_path)])
    assert r.exit_code == 2 and "junk.json.gz: not a saved stress run" in r.output


def _fake_guest(cfgs, progress=print, kernel=None, rounds=None, **_):
    """run_in_vm without a VM: each class's rounds hit 40 windows until the cell has
    enough, as the guest would decide; kernels are named by what was asked."""
    from fsrace.stress.vm import SKIPPED, GuestResult

    runs, hit, done = [], {}, set()
    for _cfg, group in zip(cfgs, rounds.group, strict=True):
        if group in done:
            runs.append(GuestRun("", SKIPPED, b""))
            continue
        runs.append(_counted("punch", 40))
        hit[group] = hit.get(group, 0) + 40
        if rounds.enough(hit[group], 0, 5, 5):
            done.add(group)
    return GuestResult(kernel or "6.1", "ext4", runs, "dmesg", 30.0)


def test_the_sweep_is_the_same_table_in_one_process_and_in_two(monkeypatch, tmp_path):
    from fsrace.stress import sweep as sweep_mod

    monkeypatch.setattr(sweep_mod, "run_in_vm", _fake_guest)
    args = (["ext4", "xfs"], [None, "k2"], ["punch-write-fault", "punch-read"], 1.0, 4)

    def table(jobs, out):
        cells = list(sweep_mod.sweep(*args, tmp_path / out, progress=print,
                                     min_windows=100, cap=5, jobs=jobs))
        return sweep_mod.markdown(sweep_mod.in_order(cells, *args[1::-1], args[2]))

    one, two = table(1, "one"), table(2, "two")
    assert one == two
    assert one.splitlines()[2].startswith(
        "| 6.1 | ext4 | clean (30 ops in 3 runs, 120 windows; nfs42_proc_deallocate 15) |")
    assert [line.split(" | ")[:2] for line in one.splitlines()[2:]] == [
        ["| 6.1", "ext4"], ["| 6.1", "xfs"], ["| k2", "ext4"], ["| k2", "xfs"]]
    # Three rounds each (the fourth skipped), saved by seed, and each boot's kernel log.
    names = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert "k2-xfs-punch-read-2.json.gz" in names and "k2-xfs-punch-read-3.txt" not in names
    assert "default-ext4.dmesg.txt" in names
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == names


def test_a_sweep_with_a_changed_module_names_it_in_every_row(monkeypatch, tmp_path):
    """The module goes to the guest, and the row's kernel carries its name and hash, so a
    table made with a changed module never reads as the kernel's own."""
    from fsrace.stress import sweep as sweep_mod
    from fsrace.stress.vm import GuestResult

    sent = []

    def guest(cfgs, modules=(), **kw):
        sent.append(modules)
        res = _fake_guest(cfgs, **kw)
        return GuestResult(res.kernel, res.fstype, res.runs, res.dmesg, res.boot_s,
                           "".join(f"module replaced: {m.name} sha256 0123456789abcdef\n"
                                   for m in modules))

    monkeypatch.setattr(sweep_mod, "run_in_vm", guest)
    ko = tmp_path / "btrfs.ko"
    ko.write_bytes(b"\x7fELF")
    out = tmp_path / "out"
    cells = list(sweep_mod.sweep(["btrfs"], [None], ["punch-read"], 1.0, 4, out,
                                 min_windows=40, modules=(str(ko),)))
    assert sent == [(ko,)]
    assert [c.kernel for c in cells] == ["6.1, btrfs.ko sha256 0123456789abcdef"]
    assert (out / "default-btrfs.modules.txt").read_text().startswith("module replaced")
    r = CliRunner().invoke(main, ["stress-sweep", "--fs", "btrfs", "--module",
                                  str(tmp_path / "out" / "default-btrfs.dmesg.txt")])
    assert r.exit_code == 2 and "NAME.ko" in r.output, r.output


def test_a_run_the_guest_died_in_is_flagged_not_dropped():
    from fsrace.stress.vm import DIED

    rounds = [_counted("punch", 40), GuestRun("the guest stopped by itself", DIED, b"")]
    assert summarize("punch-write-fault", rounds, "nfs") == (
        "**guest died** during a run (a panic or reset; see its report)", True)


def test_modules_to_load_in_the_guest_must_be_kernel_modules(tmp_path):
    import subprocess

    from fsrace.stress.vm import GUEST_DIR, _boot_and_run

    notes = tmp_path / "f2fs.txt"
    notes.write_text("not a module")
    prog = tmp_path / "p.sh"
    prog.write_text("#!/bin/sh\n")
    prog.chmod(0o755)
    for cmd in (["vm-run", "--fs", "f2fs", "--module", str(notes), str(prog)],
                ["stress", "--vm", "--fs", "f2fs", "-s", "insert-write-fault", "--module",
                 str(notes)]):
        r = CliRunner().invoke(main, cmd)
        assert r.exit_code == 2 and "NAME.ko" in r.output, r.output
    r = CliRunner().invoke(main, ["stress", "--fs", "ext4", "-s", "insert-write-fault",
                                  "--module", str(notes)])
    assert r.exit_code == 2 and "--module needs --vm" in r.output
    ko = tmp_path / "f2fs.ko"
    ko.write_bytes(b"")
    with pytest.raises(VMError, match="distinct names"):  # before anything boots
        _boot_and_run(lambda io: None, 1, "p", "f2fs", 1, print, None, 1, (ko, ko))
    assert subprocess.run(["sh", "-n", str(GUEST_DIR / "modules.sh")]).returncode == 0
    assert subprocess.run(["sh", "-n", str(GUEST_DIR / "run.sh")]).returncode == 0


def test_the_guest_script_makes_every_file_system_it_offers():
    """A name in VM_FILESYSTEMS that the guest's script has no case for would boot a guest
    to mount nothing: every block file system has its mkfs, every other its own case."""
    import re

    from fsrace.stress.vm import BLOCK_FILESYSTEMS, GUEST_DIR, VM_FILESYSTEMS

    script = (GUEST_DIR / "run.sh").read_text()
    mkfs = script[script.index("mkfs_mount() {"):script.index("FS=@FS@")]
    made = {name for label in re.findall(r"^\s+([\w|-]+)\) mk", mkfs, re.M)
            for name in label.split("|")}
    assert set(BLOCK_FILESYSTEMS) == made
    mounts = script[script.index("FS=@FS@"):]
    cased = {name for label in re.findall(r"^([\w|-]+)\)$", mounts, re.M)
             for name in label.split("|")}
    assert set(VM_FILESYSTEMS) - set(BLOCK_FILESYSTEMS) == cased


def test_a_guest_that_stops_in_early_boot_is_named_by_its_panic_line():
    # Two consoles of guests that panicked in early boot under TCG on a loaded host, cut
    # down: the retry's message names the panic, not the trace after it.
    from fsrace.stress.vm import BOOT_ATTEMPTS, _last_words

    apic = ("[    0.024000] ..MP-BIOS bug: 8254 timer not connected to IO-APIC\n"
            "[    0.032000] Kernel panic - not syncing: IO-APIC + timer doesn't work!  "
            "Boot with apic=debug\n[    0.032000] Call Trace:\n[    0.032000]  </TASK>\n")
    assert _last_words(apic) == ("Kernel panic - not syncing: IO-APIC + timer doesn't "
                                 "work!  Boot with apic=debug")
    softirq = "[    1.421361] RIP: 0010:run_timer_softirq+0xce/0xf0\r\n[    1.421504] " \
              "Kernel panic - not syncing: Fatal exception in interrupt\r\n"
    assert _last_words(softirq) == "Kernel panic - not syncing: Fatal exception in interrupt"
    assert _last_words("SeaBIOS\n\nBooting from ROM...\n") == "Booting from ROM..."
    assert _last_words("") == "no output"
    assert BOOT_ATTEMPTS == 2  # one more boot, not a loop that hides a kernel that never boots


def test_the_guest_loads_a_given_module_its_kernel_lacks_before_the_mount(tmp_path):
    """Debian's 7.x builds no ntfs3: the guest must insmod a given ntfs3.ko before it
    mounts, and leave a module the kernel has (cifs) to modules.sh's replacement."""
    from fsrace.stress.vm import GUEST_DIR

    script = (GUEST_DIR / "run.sh").read_text()
    part = script[script.index("# A given module"):script.index("FS=@FS@")]
    (tmp_path / "modules.txt").write_text("/io/modules/ntfs3.ko\n/io/modules/cifs.ko\n")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "modinfo").write_text('#!/bin/sh\n[ "$2" = cifs ]\n')  # the kernel has cifs
    (bin_ / "insmod").write_text(f'#!/bin/sh\necho "$1" >> {tmp_path}/loaded\n')
    for tool in ("modinfo", "insmod"):
        (bin_ / tool).chmod(0o755)
    part = part.replace("/io/modules.txt", str(tmp_path / "modules.txt"))
    env = {"PATH": f"{bin_}:/usr/bin:/bin"}
    assert subprocess.run(["sh", "-c", part], env=env).returncode == 0
    assert (tmp_path / "loaded").read_text() == "/io/modules/ntfs3.ko\n"


def test_stress_table_reads_a_sweeps_kept_runs_again_by_todays_rules(tmp_path):
    from dataclasses import asdict

    asked = "linux-image-6.1.0-57-amd64/bookworm-security"
    kernel = "6.1.0-57-amd64"
    stem = f"{asked.replace('/', '-')}-9p"
    flagged = run_of([("copy", 0)] * 4, ["v"], kernel=kernel)
    clean = run_of([("load", 0)] * 3, kernel=kernel)
    # copy-write-fault kept two rounds; punch-read one; punch-read-fault's run must not be
    # taken for punch-read's, whose name begins the same.
    (tmp_path / f"{stem}-copy-write-fault-0.json.gz").write_bytes(clean.log)
    (tmp_path / f"{stem}-copy-write-fault-1.json.gz").write_bytes(flagged.log)
    (tmp_path / f"{stem}-punch-read.json.gz").write_bytes(clean.log)
    (tmp_path / f"{stem}-punch-read-fault.json.gz").write_bytes(flagged.log)
    cells = [Cell(kernel, "9p", "copy-write-fault", "unconfirmed: 1 slots violated (7 ops, "
                  "1 of 2 runs)", True, asked=asked),
             Cell(kernel, "9p", "punch-read", "clean (3 ops)", asked=asked),
             Cell(kernel, "9p", "truncate-write-fault", "**hung** (no end)", True, asked=asked)]
    (tmp_path / "cells.json").write_text(json.dumps([asdict(c) for c in cells]))
    result = CliRunner().invoke(main, ["stress-table", str(tmp_path)])
    assert result.exit_code == 0, result.output
    row = result.stdout.splitlines()[2].split(" | ")
    # Written after that sweep ran: 6.1's 9p read(2) past dirty pages is expected there.
    assert row[2].startswith("expected: 1 slots (9p cache=mmap") and "1 of 2 runs" in row[2]
    assert row[3] == "clean (3 ops)"
    assert row[4] == "**hung** (no end) |"  # from the boot, not from a run: kept
    assert "copy-write-fault: unconfirmed: 1 slots violated" in result.stderr
    assert "punch-read:" not in result.stderr  # unchanged cells are not listed
    # A folder that is not a sweep's is refused by name.
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["stress-table", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "not a sweep's folder" in result.output


def test_a_9p_truncate_cell_is_the_findings_but_6_1_cache_mmap_stays_expected():
    cut = run_of([("truncate", 0)] * 4, ["v"], kernel="6.1.0-57-amd64")
    text, violated = summarize("truncate-write-fault", cut, "9p-loose")
    assert text.endswith("; findings/9p-truncate-mmap.md)") and violated
    # cache=mmap's read(2) past dirty pages explains a flag there before any race does.
    assert summarize("truncate-write-fault", cut, "9p")[0].startswith("expected")
