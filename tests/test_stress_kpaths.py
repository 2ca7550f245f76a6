"""Kernel-path coverage: the table, reading the kernel's hit counts, and what an
unreached path does to a run's verdict and to a sweep cell. The counting itself needs a
kernel with kprobe events (the guest's): tests/test_stress_vm.py checks it there."""

import glob
import gzip
import json
import os
import tempfile

import pytest

from fsrace.stress.kpaths import PATHS, KernelPaths, Paths, mount_type, parse_profile
from fsrace.stress.ops import KINDS, SCENARIOS, class_kinds
from fsrace.stress.report import stress_report
from fsrace.stress.run import StressConfig, StressResult
from fsrace.stress.sweep import summarize
from fsrace.stress.vm import GuestRun
from fsrace.stress.windows import Windows


def test_the_table_names_only_operation_kinds_and_function_names():
    for fstype, kinds in PATHS.items():
        assert set(kinds) <= set(KINDS), fstype
        for fns in kinds.values():
            assert fns and all(fn.isidentifier() for fn in fns)


def test_every_class_is_about_its_own_operation_and_its_fault():
    assert class_kinds("punch-write-fault") == ["punch", "store"]
    assert class_kinds("collapse-read-fault") == ["collapse", "load"]
    assert class_kinds("punch-readahead") == ["punch"]
    for sc in SCENARIOS:
        assert set(class_kinds(sc)) <= set(KINDS)


def test_the_profile_is_read_with_or_without_the_group_and_only_for_our_events():
    text = ("  fsrace7_ext4_punch_hole                           12               0\n"
            "  fsrace7/fsrace7_ext4_page_mkwrite                  0               1\n"
            "  other_probe                                      99               0\n"
            "garbage\n")
    events = {"fsrace7_ext4_punch_hole": "ext4_punch_hole",
              "fsrace7_ext4_page_mkwrite": "ext4_page_mkwrite"}
    assert parse_profile(text, events) == {"ext4_punch_hole": 12, "ext4_page_mkwrite": 0}


def test_the_mount_holding_a_path_gives_its_type():
    assert mount_type("/proc/self/status") == "proc"
    assert mount_type("/proc") == "proc"
    assert mount_type("/sys/kernel") == "sysfs"


def test_a_kind_is_reached_unreached_or_not_counted():
    p = Paths("ext4", hits={"punch": {"ext4_punch_hole": 0}, "store": {"ext4_page_mkwrite": 5}},
              absent={"zero": ["ext4_alloc_file_blocks"]})
    assert p.reached("punch") is False and p.reached("store") is True
    assert p.reached("zero") is None  # absent from the kernel: not counted, not zero
    assert p.unreached(["punch", "store", "zero"], {"punch": 3, "store": 9, "zero": 1}) == [
        "punch"]
    assert p.unreached(["punch"], {"punch": 0}) == []  # never carried out: refusals say it
    assert "zero -> not counted: ext4_alloc_file_blocks (not in this kernel)" in p.describe()
    p.refused["ext4_alloc_file_blocks"] = "Invalid argument"
    assert "zero -> not counted: ext4_alloc_file_blocks (Invalid argument)" in p.describe()
    assert p.brief(["punch", "store"]) == "ext4_punch_hole 0, ext4_page_mkwrite 5"
    assert Paths.from_dict(json.loads(json.dumps(p.as_dict()))) == p


def _result(paths: Paths | None) -> StressResult:
    res = StressResult(StressConfig("ext4", "punch-write-fault", ops=10))
    res.by_kind.update({"punch": 4, "store": 20})
    res.windows = Windows(hit=3, operations=4, operations_hit=2)
    res.paths = paths
    return res


def test_a_run_whose_operation_never_reached_the_file_system_is_not_exercised():
    reached = Paths("ext4", hits={"punch": {"ext4_punch_hole": 4},
                                  "store": {"ext4_page_mkwrite": 12}})
    assert _result(reached).verdict == "ok"
    assert _result(None).verdict == "ok"  # nothing counted: windows decide
    assert _result(Paths("ext4", unavailable="no kprobes")).verdict == "ok"
    missed = Paths("ext4", hits={"punch": {"ext4_punch_hole": 4},
                                 "store": {"ext4_page_mkwrite": 0}})
    res = _result(missed)
    assert res.verdict == "not-exercised" and res.unreached == ["store"]
    assert "NOT EXERCISED: no store reached ext4_page_mkwrite" in stress_report(res)


def test_a_sweep_cell_shows_the_calls_and_says_when_a_path_was_not_reached():
    def cell(hits):
        doc = {"executed": 3, "violations": [], "config": {"min_windows": 1},
               "windows": {"hit": 2, "operations": 1, "operations_hit": 1},
               "paths": {"fstype": "nfs4", "hits": hits, "absent": {}, "unavailable": None},
               "operations": [{"kind": k, "result": 0} for k in ("copy", "store", "load")]}
        return summarize("copy-write-fault", GuestRun("r", 0, gzip.compress(
            json.dumps(doc).encode())))

    assert cell({"copy": {"nfs42_proc_copy": 1}, "store": {"nfs_vm_page_mkwrite": 7}}) == (
        "clean (3 ops, 2 windows; nfs42_proc_copy 1, nfs_vm_page_mkwrite 7)", False)
    assert cell({"copy": {"nfs42_proc_copy": 0}, "store": {"nfs_vm_page_mkwrite": 7}}) == (
        "not exercised (copy never reached nfs42_proc_copy; 3 ops)", False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting tracefs needs root")
def test_counting_leaves_nothing_behind_whether_or_not_the_kernel_can_count():
    def tracefs_mounts():
        with open("/proc/self/mounts") as f:
            return [line for line in f if line.split()[2] == "tracefs"]

    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "fsrace-tracefs-*")))
    mounts = tracefs_mounts()
    with KernelPaths("ext4", ["punch", "store"]) as kp:
        pass
    res = kp.result
    assert res.unavailable or set(res.hits) == {"punch", "store"}
    assert tracefs_mounts() == mounts
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "fsrace-tracefs-*"))) == before
    with KernelPaths("zfs", ["punch"]) as kp:
        pass
    assert kp.result.unavailable == "fsrace has no table of zfs's functions for punch"


def test_a_run_in_which_nothing_ran_does_not_say_its_operation_was_refused():
    from fsrace.stress.report import stress_report

    res = StressResult(StressConfig("/mnt/smb", "punch-write-fault", ops=10))
    res.windows = Windows(hit=0, operations=0, operations_hit=0)
    assert "NOT EXERCISED: no operation ran at all" in stress_report(res)
    res.executed, res.by_kind["store"] = 5, 5  # the stores ran, every punch was refused
    assert "NOT EXERCISED: /mnt/smb refused every punch" in stress_report(res)


def _fake_tracefs(root, profile: dict[str, int]) -> None:
    """A folder laid out as tracefs is for kept probes: the control files, the kept
    group's instance (its events folder appears when the kernel makes the instance)."""
    os.makedirs(f"{root}/instances/fsracekeep/events/fsracekeep")
    open(f"{root}/kprobe_events", "w").close()
    _write_profile(root, profile)


def _write_profile(root, profile: dict[str, int]) -> None:
    with open(f"{root}/kprobe_profile", "w") as f:
        for event, hits in profile.items():
            f.write(f"  fsracekeep/{event}  {hits}  0\n")


def test_kept_probes_are_placed_once_never_removed_and_count_only_their_run(
        tmp_path, monkeypatch):
    import fsrace.stress.kpaths as kpaths

    monkeypatch.setattr(kpaths, "TRACEFS", (str(tmp_path),))
    monkeypatch.setattr(kpaths, "_symbols", lambda wanted, module: {fn: fn for fn in wanted})
    table = {fn for fns in PATHS["ext4"].values() for fn in fns}
    events = {fn: f"fsracekeep_{fn}" for fn in table}
    _fake_tracefs(tmp_path, {events["ext4_punch_hole"]: 40})
    with KernelPaths("ext4", ["punch"], keep=True) as kp:
        _write_profile(tmp_path, {events["ext4_punch_hole"]: 47})
    assert kp.result.hits == {"punch": {"ext4_punch_hole": 7}}
    placed = open(tmp_path / "kprobe_events").read().splitlines()
    # The whole table at once, so that later classes patch nothing; nothing taken away.
    assert sorted(placed) == sorted(f"p:fsracekeep/{events[fn]} {fn}" for fn in table)
    assert os.path.isdir(tmp_path / "instances" / "fsracekeep")

    for fn in table:  # what the kernel shows once the probes exist
        os.makedirs(tmp_path / "events" / "fsracekeep" / events[fn])
    with KernelPaths("ext4", ["punch", "store"], keep=True) as kp:
        _write_profile(tmp_path, {events["ext4_punch_hole"]: 50,
                                  events["ext4_page_mkwrite"]: 2})
    assert kp.result.hits == {"punch": {"ext4_punch_hole": 3},
                              "store": {"ext4_page_mkwrite": 2}}
    assert open(tmp_path / "kprobe_events").read().splitlines() == placed


def test_a_renamed_modules_functions_are_counted_rather_than_the_kernels_own(tmp_path):
    from fsrace.stress.kpaths import MODULE_OF, _symbols

    kallsyms = tmp_path / "kallsyms"
    kallsyms.write_text(
        "ffffffff81000000 t fuse_file_fallocate\n"
        "ffffffffc0100000 t fuse_file_fallocate\t[fsracefuse]\n"
        "ffffffff81000100 t ext4_alloc_file_blocks.isra.0\n"
        "ffffffff81000200 T ext4_page_mkwrite\n"
        "ffffffff81000300 d fuse_do_setattr\n")  # data, not text
    wanted = {"fuse_file_fallocate", "ext4_alloc_file_blocks", "ext4_page_mkwrite",
              "fuse_do_setattr"}
    module = MODULE_OF["fsracefuse.fsrace".split(".")[0]]
    assert _symbols(wanted, module, str(kallsyms)) == {
        "fuse_file_fallocate": "fsracefuse:fuse_file_fallocate",
        "ext4_alloc_file_blocks": "ext4_alloc_file_blocks.isra.0",
        "ext4_page_mkwrite": "ext4_page_mkwrite"}
    assert _symbols(wanted, None, str(kallsyms))["fuse_file_fallocate"] == \
        "fuse_file_fallocate"
    assert PATHS["fsracefuse.fsrace"] == PATHS["fuse.fsrace"]
