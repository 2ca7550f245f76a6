"""`fsrace stress-sweep`: every race class on every file system the guest offers, on each
kernel, for a fixed budget each; one boot per (kernel, file system) runs all the classes.
Prints the table of docs/real-kernels.md as it fills, and keeps every report and saved run
in the output folder."""

from __future__ import annotations

import functools
import gzip
import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .. import exits
from ..distributed import map_unordered
from .kpaths import Paths
from .ops import class_kinds, own_operation
from .run import StressConfig
from .vm import DIED, HUNG, SKIPPED, UNCHECKED, GuestRun, Rounds, VMError, run_in_vm
from .worker import refusal


@dataclass
class Cell:
    kernel: str  # the guest's uname -r, or the --kernel asked for if the boot failed
    fs: str
    scenario: str
    text: str  # for the table
    violated: bool = False
    asked: str = ""  # the --kernel the sweep booted it with ("default": bookworm's)


# Classes whose violations the kernel documents as expected, not a locking bug: direct I/O
# beside a shared mapping of the same range is incoherent by design (open(2), NOTES on
# O_DIRECT). Their cells say so rather than reading like a finding.
EXPECTED = {"dio-write-fault": "O_DIRECT beside a shared mapping, open(2) NOTES"}
# And file systems whose read(2) bypasses dirty mapped pages by design on some kernels
# (file system, (major, minor)): there every class that stores through a mapping and
# reads back with pread flags, whatever its operation. 9p's cache=mmap caches pages for
# mappings only; before 9p went through netfs, read(2) asked the server past pages a
# store had dirtied (6.1's v9fs_mmap_file_read_iter: "TODO: Check if there are dirty
# pages"; Documentation/filesystems/9p.rst: "Nothing else is cached, like cache=none").
EXPECTED_ON: dict[tuple[str, tuple[int, ...]], str] = {
    ("9p", (6, 1)): "9p cache=mmap: read(2) goes to the server past dirty mapped pages, "
                    "v9fs_mmap_file_read_iter"}


def kernel_version(release: str) -> tuple[int, ...]:
    """'6.12.95+deb12-amd64' -> (6, 12, 95); '6.1.0-50-amd64' -> (6, 1, 0)."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    return tuple(int(n or 0) for n in m.groups()) if m else ()


def expected(fs: str, kernel: str, scenario: str) -> str | None:
    """Why violations of this class on this file system and kernel are the documented
    behaviour rather than a race, if they are."""
    return EXPECTED.get(scenario) or EXPECTED_ON.get((fs, kernel_version(kernel)[:2]))


# Flagged cells that a finding explains, by file system (an export's own file system
# left out: nfs-xfs is nfs; and the SMB client's cache mode: smb-loose is smb, the
# findings' reproducers showing each of them with cache=loose too) and class: the
# document under docs/ that explains it, a finding or, for a kernel bug fixed upstream
# before fsrace flagged it, a lead. Any other flagged cell reads `unconfirmed` until it is
# chased to a checker error (then the checker is fixed) or to a hole (then it is added
# here).
EXPLAINED = {
    ("nfs", "punch-write-fault"): "findings/nfs-deallocate-mmap.md",
    ("nfs", "punch-read-fault"): "findings/nfs-deallocate-mmap.md",
    # 7.x's nfs42_proc_zero_range: flush, ZERO_RANGE, then the page drop, DEALLOCATE's
    # window (generic/907 and the 7.2 patch in that finding).
    ("nfs", "zero-range-write-fault"): "findings/nfs-deallocate-mmap.md",
    ("nfs", "clone-write-fault"): "findings/nfs-clone-mmap.md",
    ("nfs", "clone-from-write-fault"): "findings/nfs-clone-mmap.md",
    ("nfs", "truncate-write-fault"): "findings/nfs-truncate-mmap.md",
    ("nfs", "copy-from-write-fault"): "findings/nfs-copy-mmap.md",
    # The v4.1 and v3 clients truncate through the same nfs_setattr; the reproducer
    # shows it on both.
    ("nfs41", "truncate-write-fault"): "findings/nfs-truncate-mmap.md",
    ("nfs3", "truncate-write-fault"): "findings/nfs-truncate-mmap.md",
    ("smb", "copy-write-fault"): "findings/smb-copy-mmap.md",
    # cifs_file_copychunk_range serves a copy from another file too; the stores are on the
    # destination, and the signature is the finding's (the old page kept after the copy).
    ("smb", "copy-from-write-fault"): "findings/smb-copy-mmap.md",
    # 6.1's cifs_page_mkwrite maps a page the punch or zero range dropped: stores through
    # it are lost, the page no longer the file's (the copy finding's recheck closes it).
    ("smb", "punch-write-fault"): "findings/smb-copy-mmap.md",
    ("smb", "zero-range-write-fault"): "findings/smb-copy-mmap.md",
    ("smb", "punch-read-fault"): "findings/smb-copy-mmap.md",  # its faulting worker stores too
    # cifs_setattr_nounix's window between SET_INFO and cifs_setsize, NFS's truncate's.
    ("smb", "truncate-write-fault"): "findings/smb-truncate-mmap.md",
    ("smb", "collapse-write-fault"): "findings/smb-collapse-mmap.md",
    ("smb", "insert-write-fault"): "findings/smb-collapse-mmap.md",
    # Its faulting worker stores too: a store lost across a collapse (6.12.118's cell).
    ("smb", "collapse-read-fault"): "findings/smb-collapse-mmap.md",
    ("f2fs", "insert-write-fault"): "findings/f2fs-insert-mmap.md",
    ("f2fs", "collapse-write-fault"): "findings/f2fs-insert-mmap.md",
    # Its faulting worker stores too: a store lost across a collapse is the same race.
    ("f2fs", "collapse-read-fault"): "findings/f2fs-insert-mmap.md",
    ("ocfs2", "clone-write-fault"): "findings/ocfs2-reflink-mmap.md",
    ("ocfs2", "copy-write-fault"): "findings/ocfs2-reflink-mmap.md",
    ("ocfs2", "dedupe-write-fault"): "findings/ocfs2-reflink-mmap.md",
    ("gfs2", "punch-readahead"): "findings/gfs2-punch-readahead.md",
    # A read of the page beside a clone (or reflink copy) caches the map of the item the
    # clone replaced; the next read of the destination reads the old blocks. The change
    # that closes it leaves these cells clean (that finding, 7.2.13).
    ("btrfs", "copy-from-write-fault"): "findings/btrfs-clone-stale-page.md",
    ("btrfs", "clone-from-write-fault"): "findings/btrfs-clone-stale-page.md",
    # Compressed extents too (compress-force=zstd): flagged 2 and 3 of 5 runs with 7.2.13's
    # module, none with the change.
    ("btrfs-compress", "copy-from-write-fault"): "findings/btrfs-clone-stale-page.md",
    ("btrfs-compress", "clone-from-write-fault"): "findings/btrfs-clone-stale-page.md",
    ("ntfs3", "collapse-write-fault"): "findings/ntfs3-collapse-mmap.md",
    ("ntfs", "collapse-write-fault"): "findings/ntfs3-collapse-mmap.md",
    # The writeback cache: writeback, FUSE_FALLOCATE or FUSE_COPY_FILE_RANGE, then the page
    # drop, with no lock fuse_page_mkwrite takes (punch-read-fault: its faulter stores too,
    # and the old words come back with the store's page).
    ("fuse", "punch-write-fault"): "findings/fuse-writeback-mmap.md",
    ("fuse", "punch-read-fault"): "findings/fuse-writeback-mmap.md",
    ("fuse", "zero-range-write-fault"): "findings/fuse-writeback-mmap.md",
    ("fuse", "copy-write-fault"): "findings/fuse-writeback-mmap.md",
    ("fuse", "copy-from-write-fault"): "findings/fuse-writeback-mmap.md",
    # v9fs_vfs_setattr_dotl: flush, Tsetattr, then truncate_setsize, with no lock
    # v9fs_vm_page_mkwrite takes (6.1's cache=mmap reads past dirty pages: expected first).
    ("9p", "truncate-write-fault"): "findings/9p-truncate-mmap.md",
    # Not a race: a compressed cluster's truncated page comes back when the file grows, no
    # store needed; f2fs's fix of August 2025 is not in Debian's 6.1 or 6.12.
    ("f2fs-compress", "truncate-write-fault"): "leads/f2fs-compress-truncate.md",
}


def fs_family(fs: str) -> str:
    """A sweep's file system without its export or cache mode (nfs-xfs -> nfs, 9p-loose
    -> 9p): the client whose code runs, which findings and the model's protocols name."""
    return fs.removesuffix("-xfs").removesuffix("-loose")


def explained_by(fs: str, scenario: str) -> str | None:
    """The finding that explains a flagged cell of this file system and class, if any."""
    return EXPLAINED.get((fs_family(fs), scenario))


def summarize(scenario: str, rounds: GuestRun | list[GuestRun], fs: str = "",
              min_windows: int | None = None) -> tuple[str, bool]:
    """A cell's text from its runs (`rounds`: one run, or the rounds of a cell, seed after
    seed): operations executed, windows hit and the file system's functions reached over
    all of them, and violations or why the class does not apply (its removing operation
    refused every time). A violation no finding explains for this file system (`fs`, the
    sweep's name), or flagged by a run with direct reads, reads `unconfirmed`. A cell
    with fewer than `min_windows` windows (default: what its runs asked for) reads `not
    exercised`."""
    runs = rounds if isinstance(rounds, list) else [rounds]
    if any(r.status == HUNG for r in runs):
        return "**hung** (no end within the run's time; guest stopped)", True
    if any(r.status == UNCHECKED for r in runs):
        return ("check unfinished (the operations all ended; checking the history ran past "
                "its time; guest stopped)"), False
    if any(r.status == DIED for r in runs):
        return "**guest died** during a run (a panic or reset; see its report)", True
    docs = [json.loads(gzip.decompress(r.log)) for r in runs
            if r.status not in (exits.USAGE, exits.CANNOT_RUN, exits.INTERNAL, SKIPPED)
            and r.log]
    if not docs:
        return "run failed (see report)", False
    done: Counter[str] = Counter()
    errors: dict[str, set[str]] = {}
    for doc in docs:
        for op in doc["operations"]:
            if op["result"] < 0:
                errors.setdefault(op["kind"], set()).add(refusal(op["result"]))
            else:
                done[op["kind"]] += 1
    remover = own_operation(scenario)
    if remover in errors and not done[remover]:
        return f"n/a ({remover}: {', '.join(sorted(errors[remover]))})", False
    n = sum(doc["executed"] for doc in docs)
    of = f" in {len(docs)} runs" if len(docs) > 1 else ""
    flagged = [doc for doc in docs if doc["violations"]]
    if flagged:
        k = len(flagged[0]["violations"])
        more = "+" if k >= 5 else ""
        where = f", {len(flagged)} of {len(docs)} runs" if len(docs) > 1 else ""
        why = expected(fs, flagged[0].get("kernel", ""), scenario)
        if why:
            return f"expected: {k}{more} slots ({why}; {n:,} ops{where})", False
        # The findings named were read from runs that read through the file system's
        # cache; a run whose remover read past it (--direct-reads) may show another
        # thing (a client's direct reads that do not write back mapped stores first).
        direct = any(doc.get("config", {}).get("direct_reads") for doc in flagged)
        finding = None if direct else explained_by(fs, scenario)
        if finding is None:
            return f"unconfirmed: {k}{more} slots violated ({n:,} ops{where})", True
        return (f"**{k}{more} slots violated** ({n:,} ops{where}; {finding})"), True
    counted = [doc["windows"] for doc in docs if doc.get("windows") is not None]
    # (absent from runs saved before windows were counted)
    need = (min_windows if min_windows is not None
            else docs[0].get("config", {}).get("min_windows", 1))
    hits = sum(w["hit"] for w in counted)
    if counted and hits < need:
        return f"not exercised ({hits:,} windows of {need:,}, {n:,} ops{of})", False
    hit = f", {hits:,} windows" if counted else ""
    # Absent from runs saved before the kernel's calls were counted.
    all_paths = [Paths.from_dict(doc["paths"]) for doc in docs if doc.get("paths")]
    paths = functools.reduce(Paths.merged, all_paths) if all_paths else None
    if paths is not None and not paths.unavailable:
        kinds = class_kinds(scenario)
        missed = paths.unreached(kinds, done)
        if missed:
            return (f"not exercised ({', '.join(missed)} never reached "
                    f"{', '.join(fn for k in missed for fn in paths.hits[k])}; {n:,} ops{of})"
                    ), False
        if paths.brief(kinds):
            hit += f"; {paths.brief(kinds)}"
    return f"clean ({n:,} ops{of}{hit})", False


def boot_cells(kernel: str | None, fs: str, scenarios: list[str], duration: float,
               pages: int, min_windows: int = 1, cap: float | None = None, progress=print,
               flusher: bool = False, modules: tuple[str, ...] = (),
               direct_reads: bool = False) -> tuple[list[Cell], dict[str, bytes]]:
    """One boot of the guest on `kernel` with `fs`: every class in rounds of `duration`
    seconds, seed 0, 1, ..., until its rounds have hit `min_windows` race windows or raced
    `cap` seconds (default: one round); with `flusher`, the faulters' writebacks are
    sync_file_range's (StressConfig.flusher), and with `direct_reads` the remover reads
    with O_DIRECT (StressConfig.direct_reads); with `modules` (paths to .ko files here),
    those replace the kernel's before the runs, and the row's kernel names each with its
    hash, so a table never passes a changed module off as the kernel's. Returns the cells
    and the files to keep (reports, saved runs, the kernel log) by name, for the caller
    to write wherever the boot ran."""
    n_rounds = max(1, math.ceil((cap or duration) / duration))
    asked = kernel or "default"
    # Under TCG a worker runs a few thousand operations a second at most; drawing fewer
    # beforehand saves the guest's Python most of its time.
    cfgs = [StressConfig(fs, sc, workers=2, ops=None, duration=duration, pages=pages, seed=r,
                         max_ops=int(5000 * duration) + 1000, min_windows=min_windows,
                         flusher=flusher, direct_reads=direct_reads)
            for sc in scenarios for r in range(n_rounds)]
    rounds = Rounds([k for k in range(len(scenarios)) for _ in range(n_rounds)],
                    min_windows, cap or duration)
    name = f"{asked.replace('/', '-')}-{fs}"
    try:
        res = run_in_vm(cfgs, timeout_s=600 + len(cfgs) * (duration * 20 + 60),
                        progress=progress, kernel=kernel, run_timeout_s=180 + duration * 30,
                        rounds=rounds, modules=tuple(Path(m) for m in modules))
    except VMError as e:
        progress(f"{asked} {fs}: {str(e).splitlines()[0]}")
        return ([Cell(asked, fs, sc, f"setup failed ({name}.error.txt)", asked=asked)
                 for sc in scenarios], {f"{name}.error.txt": str(e).encode()})
    files = {f"{name}.dmesg.txt": res.dmesg.encode()}
    row_kernel = res.kernel
    if modules:
        files[f"{name}.modules.txt"] = res.modules.encode()
        row_kernel += "".join(f", {m}" for m in replaced(res.modules))
    cells = []
    for k, sc in enumerate(scenarios):
        mine = res.runs[k * n_rounds:(k + 1) * n_rounds]
        if not mine:  # after a hang the guest was stopped; after a panic it stopped
            cells.append(Cell(row_kernel, fs, sc, "not run (the guest had stopped)",
                              asked=asked))
            continue
        for r, run in enumerate(mine):
            if run.status == SKIPPED:
                continue
            seed = f"-{r}" if n_rounds > 1 else ""
            files[f"{name}-{sc}{seed}.txt"] = run.report.encode()
            if run.log:
                files[f"{name}-{sc}{seed}.json.gz"] = run.log
        text, bad = summarize(sc, mine, fs, min_windows)
        cells.append(Cell(row_kernel, fs, sc, text, bad, asked=asked))
    progress(f"{res.kernel} {fs}: booted in {res.boot_s:.1f}s")
    return cells, files


def replaced(modules_out: str) -> list[str]:
    """'NAME.ko sha256 HASH' for each module modules.sh says it put in place."""
    return [line.removeprefix("module replaced: ") for line in modules_out.splitlines()
            if line.startswith("module replaced: ")]


def sweep(filesystems: list[str], kernels: list[str | None], scenarios: list[str],
          duration: float, pages: int, out_dir: Path, progress=print, min_windows: int = 1,
          cap: float | None = None, jobs: int = 1, ray: str | None = None,
          flusher: bool = False, modules: tuple[str, ...] = (), direct_reads: bool = False):
    """Yield the Cells of every (kernel, file system, class), one boot (boot_cells) per
    (kernel, fs), `jobs` guests at a time here or as tasks on a Ray cluster (`ray`: an
    address, or 'local'), as each boot ends; its files go into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    boots = [(kernel, fs, scenarios, duration, pages, min_windows, cap, progress, flusher,
              modules, direct_reads)
             for kernel in kernels for fs in filesystems]
    for _, (cells, files) in map_unordered(boot_cells, boots, jobs, ray):
        for name, data in files.items():
            (out_dir / name).write_bytes(data)
        yield from cells


# Texts a cell gets from its boot rather than from its runs' reports: re-reading keeps them.
_FROM_THE_BOOT = ("**hung**", "check unfinished", "**guest died**", "not run", "setup failed")


def saved_runs(folder: Path, cell: Cell) -> list[GuestRun]:
    """The runs a sweep kept in `folder` for `cell`, seed after seed (boot_cells' names:
    KERNEL-FS-CLASS.json.gz for one round, KERNEL-FS-CLASS-SEED.json.gz for several)."""
    stem = f"{cell.asked.replace('/', '-')}-{cell.fs}-{cell.scenario}"
    one = re.compile(re.escape(stem) + r"(?:-(\d+))?\.json\.gz")
    found = [(int(m.group(1) or 0), p) for p in folder.glob(f"{stem}*.json.gz")
             if (m := one.fullmatch(p.name))]
    runs = []
    for _, path in sorted(found):
        log = path.read_bytes()
        runs.append(GuestRun("", 1 if json.loads(gzip.decompress(log))["violations"] else 0,
                             log))
    return runs


def reread(folder: Path, min_windows: int | None = None) -> list[tuple[Cell, str]]:
    """A sweep's cells (its `folder`'s cells.json) summarized again from the runs it kept,
    by this fsrace's rules (a finding or an expectation written since, another
    `min_windows`; default: what each run asked for), each with its text before. A cell
    whose text came from its boot (hung, died, not run) or that kept no runs stays."""
    out = []
    for c in json.loads((folder / "cells.json").read_text()):
        was = Cell(**c)
        runs = saved_runs(folder, was)
        if not runs or was.text.startswith(_FROM_THE_BOOT):
            out.append((was, was.text))
            continue
        text, bad = summarize(was.scenario, runs, was.fs, min_windows)
        out.append((Cell(was.kernel, was.fs, was.scenario, text, bad, asked=was.asked),
                    was.text))
    return out


def in_order(cells: list[Cell], kernels: list[str | None], filesystems: list[str],
             scenarios: list[str]) -> list[Cell]:
    """The cells as the sweep was asked for them, whatever order the boots ended in."""
    asked = [k or "default" for k in kernels]
    return sorted(cells, key=lambda c: (asked.index(c.asked), filesystems.index(c.fs),
                                        scenarios.index(c.scenario)))


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
