"""`fsrace stress-sweep`: every race class on every file system the guest offers, on each
kernel, for a fixed budget each; one boot per (kernel, file system) runs all the classes.
Prints the table of docs/real-kernels.md as it fills, and keeps every report and saved run
in the output folder."""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .. import exits
from .kpaths import Paths
from .ops import class_kinds, own_operation
from .run import StressConfig
from .vm import HUNG, GuestRun, VMError, run_in_vm
from .worker import refusal


@dataclass
class Cell:
    kernel: str  # the guest's uname -r, or the --kernel asked for if the boot failed
    fs: str
    scenario: str
    text: str  # for the table
    violated: bool = False


# Classes whose violations the kernel documents as expected, not a locking bug: direct I/O
# beside a shared mapping of the same range is incoherent by design (open(2), NOTES on
# O_DIRECT). Their cells say so rather than reading like a finding.
EXPECTED = {"dio-write-fault": "O_DIRECT beside a shared mapping, open(2) NOTES"}

# Flagged cells that a finding explains, by file system (an export's own file system
# left out: nfs-xfs is nfs) and class: the finding's document in docs/findings/. Any
# other flagged cell reads `unconfirmed` until it is chased to a checker error (then the
# checker is fixed) or to a finding (then it is added here).
EXPLAINED = {
    ("nfs", "punch-write-fault"): "nfs-deallocate-mmap.md",
    ("nfs", "punch-read-fault"): "nfs-deallocate-mmap.md",
    ("nfs", "clone-write-fault"): "nfs-clone-mmap.md",
    ("nfs", "truncate-write-fault"): "nfs-truncate-mmap.md",
    ("nfs", "copy-from-write-fault"): "nfs-copy-mmap.md",
    ("smb", "copy-write-fault"): "smb-copy-mmap.md",
    ("f2fs", "insert-write-fault"): "f2fs-insert-mmap.md",
    ("f2fs", "collapse-write-fault"): "f2fs-insert-mmap.md",
    ("ocfs2", "clone-write-fault"): "ocfs2-reflink-mmap.md",
    ("ocfs2", "copy-write-fault"): "ocfs2-reflink-mmap.md",
    ("ocfs2", "dedupe-write-fault"): "ocfs2-reflink-mmap.md",
    ("ntfs3", "collapse-write-fault"): "ntfs3-collapse-mmap.md",
    ("ntfs", "collapse-write-fault"): "ntfs3-collapse-mmap.md",
}


def explained_by(fs: str, scenario: str) -> str | None:
    """The finding that explains a flagged cell of this file system and class, if any."""
    return EXPLAINED.get((fs.removesuffix("-xfs"), scenario))


def summarize(scenario: str, run: GuestRun, fs: str = "") -> tuple[str, bool]:
    """A cell's text: operations executed, and violations or why the class does not apply
    (its removing operation refused every time). A violation no finding explains for this
    file system (`fs`, the sweep's name) reads `unconfirmed`."""
    if run.status == HUNG:
        return "**hung** (no end within the run's time; guest stopped)", True
    if run.status in (exits.USAGE, exits.CANNOT_RUN, exits.INTERNAL) or not run.log:
        return "run failed (see report)", False
    doc = json.loads(gzip.decompress(run.log))
    done: Counter[str] = Counter()
    errors: dict[str, set[str]] = {}
    for op in doc["operations"]:
        if op["result"] < 0:
            errors.setdefault(op["kind"], set()).add(refusal(op["result"]))
        else:
            done[op["kind"]] += 1
    remover = own_operation(scenario)
    if remover in errors and not done[remover]:
        return f"n/a ({remover}: {', '.join(sorted(errors[remover]))})", False
    n = doc["executed"]
    if doc["violations"]:
        more = "+" if len(doc["violations"]) >= 5 else ""
        if scenario in EXPECTED:
            return (f"expected: {len(doc['violations'])}{more} slots ({EXPECTED[scenario]}; "
                    f"{n:,} ops)"), False
        finding = explained_by(fs, scenario)
        if finding is None:
            return (f"unconfirmed: {len(doc['violations'])}{more} slots violated "
                    f"({n:,} ops)"), True
        return (f"**{len(doc['violations'])}{more} slots violated** ({n:,} ops; "
                f"findings/{finding})"), True
    windows = doc.get("windows")  # absent from runs saved before windows were counted
    if windows is not None and windows["hit"] < doc["config"].get("min_windows", 1):
        return f"not exercised ({windows['hit']} windows, {n:,} ops)", False
    hit = f", {windows['hit']:,} windows" if windows is not None else ""
    # Absent from runs saved before the kernel's calls were counted.
    paths = Paths.from_dict(doc["paths"]) if doc.get("paths") else None
    if paths is not None and not paths.unavailable:
        kinds = class_kinds(scenario)
        missed = paths.unreached(kinds, done)
        if missed:
            return (f"not exercised ({', '.join(missed)} never reached "
                    f"{', '.join(fn for k in missed for fn in paths.hits[k])}; {n:,} ops)"), False
        if paths.brief(kinds):
            hit += f"; {paths.brief(kinds)}"
    return f"clean ({n:,} ops{hit})", False


def sweep(filesystems: list[str], kernels: list[str | None], scenarios: list[str],
          duration: float, pages: int, out_dir: Path, progress=print):
    """Yield a Cell per (kernel, file system, class), booting once per (kernel, fs)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for kernel in kernels:
        for fs in filesystems:
            # Under TCG a worker runs a few thousand operations a second at most; drawing
            # fewer beforehand saves the guest's Python most of its time.
            cfgs = [StressConfig(fs, sc, workers=2, ops=None, duration=duration, pages=pages,
                                 max_ops=int(5000 * duration) + 1000) for sc in scenarios]
            name = f"{(kernel or 'default').replace('/', '-')}-{fs}"
            try:
                res = run_in_vm(cfgs, timeout_s=600 + len(cfgs) * (duration * 20 + 60),
                                progress=progress, kernel=kernel,
                                run_timeout_s=180 + duration * 30)
            except VMError as e:
                (out_dir / f"{name}.error.txt").write_text(str(e))
                progress(f"{kernel or 'default'} {fs}: {str(e).splitlines()[0]}")
                for sc in scenarios:
                    yield Cell(kernel or "default", fs, sc,
                               f"setup failed ({name}.error.txt)")
                continue
            (out_dir / f"{name}.dmesg.txt").write_text(res.dmesg)
            for k, sc in enumerate(scenarios):
                if k >= len(res.runs):  # after a hang the guest was stopped
                    yield Cell(res.kernel, fs, sc, "not run (guest stopped after a hang)")
                    continue
                run = res.runs[k]
                (out_dir / f"{name}-{sc}.txt").write_text(run.report)
                if run.log:
                    (out_dir / f"{name}-{sc}.json.gz").write_bytes(run.log)
                text, bad = summarize(sc, run, fs)
                yield Cell(res.kernel, fs, sc, text, bad)
            progress(f"{res.kernel} {fs}: booted in {res.boot_s:.1f}s")


def markdown(cells: list[Cell]) -> str:
    """Rows: kernel and file system; columns: race classes."""
    scenarios = list(dict.fromkeys(c.scenario for c in cells))
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for c in cells:
        rows.setdefault((c.kernel, c.fs), {})[c.scenario] = c.text
    head = "| kernel | file system | " + " | ".join(f"`{s}`" for s in scenarios) + " |"
    lines = [head, "|" + "---|" * (len(scenarios) + 2)]
    for (kernel, fs), row in rows.items():
        lines.append(f"| {kernel} | {fs} | "
                     + " | ".join(row.get(s, "") for s in scenarios) + " |")
    return "\n".join(lines) + os.linesep
