"""The model beside the kernel: which protocol stands for a file system on a kernel, which
model scenario for a stress class, and the table that puts their verdicts side by side."""

import json
from dataclasses import asdict

from click.testing import CliRunner

from fsrace.cli import main
from fsrace.stress.beside import (
    agrees,
    kernel_status,
    kernel_version,
    model_scenarios,
    protocol_for,
)
from fsrace.stress.sweep import Cell


def test_each_file_system_and_kernel_has_its_protocol():
    assert kernel_version("6.12.95+deb12-amd64") == (6, 12, 95)
    assert kernel_version("6.1.0-50-amd64") == (6, 1, 0)
    assert protocol_for("nfs-xfs", "6.1.0-50-amd64") == "nfs-4.2"
    # Only 6.1's SMB client is modelled; 6.12's was not read, 7.2's is neither protocol.
    assert protocol_for("smb-xfs", "6.1.0-57-amd64") == "smb-6.1"
    assert protocol_for("smb", "6.12.118+deb12-amd64") is None
    assert protocol_for("smb", "7.2.13+deb14-amd64") is None
    assert protocol_for("gfs2", "6.1.0-50-amd64") == "gfs2-6.1"
    assert protocol_for("nilfs2", "6.1.0-50-amd64") is None
    assert protocol_for("fuse", "7.2.13+deb14-amd64") == "fuse-wb"  # the writeback cache
    assert protocol_for("fuse-passthrough", "7.2.13+deb14-amd64") is None


def test_a_class_stands_for_the_model_scenarios_that_make_the_same_race():
    # The storing worker reads its store back: the scenario that does so stands beside.
    assert model_scenarios("ext4", "punch-write-fault") == ("punch-write-fault",
                                                             "punch-store-reread")
    # The zero range's workers write back too: the scenario with the flusher stands beside.
    assert model_scenarios("smb", "zero-range-write-fault") == ("zero-range-write-fault",
                                                                "zero-range-store-reread",
                                                                "zero-range-writeback")
    assert model_scenarios("nfs-xfs", "copy-from-write-fault") == ("copy-write-fault",)
    assert model_scenarios("nfs", "copy-write-fault") == ()  # a page-cache copy
    assert "clone-source-write-fault" in model_scenarios("ocfs2", "clone-write-fault")
    assert model_scenarios("xfs", "dedupe-write-fault") == ()
    assert protocol_for("xfs", "6.1.0-50-amd64") == "xfs-5.15"  # its own punch and remap
    assert model_scenarios("xfs", "clone-from-write-fault") == ("clone-write-fault",)
    assert model_scenarios("ext4", "copy-from-write-fault") == ("copy-write-fault",)
    # btrfs's copy is its remap, which its model has; from another file, the workers'
    # reads beside the destination race with the map a read caches.
    assert protocol_for("btrfs", "7.2.13+deb14-amd64") == "btrfs-6.1"
    assert model_scenarios("btrfs", "copy-write-fault") == ("copy-write-fault",)
    assert "clone-beside-read-fault" in model_scenarios("btrfs", "clone-from-write-fault")


def test_cells_are_compared_only_where_both_say_something():
    assert kernel_status("clean (3 ops, 20 windows)") == "ok"
    assert kernel_status("**5+ slots violated** (4 ops)") == "bad"
    assert kernel_status("not exercised (3 windows of 100, 4 ops)") == "not-exercised"
    assert kernel_status("**guest died** during a run") == "died"
    assert kernel_status("not run (the guest had stopped)") == "not-run"
    assert kernel_status("check unfinished (the operations all ended; ...)") == "unchecked"
    assert agrees("race", "unchecked") is None
    assert agrees("race", "bad") and agrees("safe", "ok")
    assert agrees("safe", "unconfirmed") is False and agrees("race", "ok") is False
    assert agrees("race", "not-exercised") is None and agrees("-", "bad") is None


def test_the_table_puts_the_model_beside_the_kernel(tmp_path):
    cells = [Cell("6.1.0-50-amd64", "nfs", "punch-write-fault", "**5+ slots violated** (9 ops)",
                  True),
             Cell("6.1.0-50-amd64", "ext4", "punch-write-fault", "**1 slots violated** (9 ops)",
                  True),
             Cell("6.1.0-50-amd64", "nilfs2", "punch-write-fault", "clean (9 ops, 40 windows)"),
             # flagged before its finding was written: the finding's now
             Cell("7.2.13+deb14-amd64", "fuse", "punch-write-fault",
                  "unconfirmed: 5+ slots (9 ops)", True),
             Cell("7.2.13+deb14-amd64", "fuse", "truncate-write-fault",
                  "unconfirmed: 5+ slots (9 ops)", True)]
    (tmp_path / "cells.json").write_text(json.dumps([asdict(c) for c in cells]))
    r = CliRunner().invoke(main, ["stress-beside", "--jobs", "1", str(tmp_path)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[2] == "| 6.1.0-50-amd64 | nfs | nfs-4.2 | race / bad |  |"
    # The model's invalidate_lock is safe: a kernel violation there would be a model gap.
    assert lines[3] == "| 6.1.0-50-amd64 | ext4 | invalidate-lock | safe / bad ≠ |  |"
    assert lines[4] == "| 6.1.0-50-amd64 | nilfs2 | - | - / ok |  |"
    assert lines[5] == "| 7.2.13+deb14-amd64 | fuse | fuse-wb | race / bad | safe / unconfirmed ≠ |"
    r = CliRunner().invoke(main, ["stress-beside", str(tmp_path / "..")])
    assert r.exit_code == 2 and "no sweep's cells.json" in r.output
