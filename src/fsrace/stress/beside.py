"""The model beside the kernel: for each cell of a stress sweep, the verdict of the model's
search for the same race class under the protocol that stands for that file system on
that kernel, so that each disagreement can be named (a gap in the model, a window too rare
for the sweep's budget, a checker difference)."""

from __future__ import annotations

from collections.abc import Iterable

from ..distributed import map_unordered
from ..matrix import check_cell
from ..scenarios import Params
from .sweep import Cell, explained_by, fs_family, kernel_version


def protocol_for(fs: str, kernel: str) -> str | None:
    """The model's protocol for a sweep's file system on a kernel (its uname -r), or None
    where none is modelled (nilfs2, ntfs3)."""
    family = fs_family(fs)  # an export's file system, a cache mode: the client's protocol
    if family == "smb":
        # Only 6.1's client was read to model it. 7.2's holds invalidate_lock across the
        # copy while its page_mkwrite takes none, which neither SMB protocol is, and the
        # 6.12 client's locking was not read.
        return "smb-6.1" if kernel_version(kernel)[:2] == (6, 1) else None
    if family == "9p":
        # Only 6.1's client was modelled (fsrace.kernel.v9fs). Later ones write back
        # through netfs, whose zero_point has a page past a truncate read as zeros
        # without asking the server, which the model does not have.
        return "9p-6.1" if kernel_version(kernel)[:2] == (6, 1) else None
    return {
        "nfs": "nfs-4.2",
        "ext4": "invalidate-lock",
        "xfs": "xfs-5.15",  # MMAPLOCK is the mapping's invalidate_lock since 5.15
        # 6.1's btrfs (fsrace.kernel.btrfs): its clone and reads through the extent map
        # cache, the same in 7.3's source; its punch, truncate and zero range are not
        # modelled (those classes read n/a).
        "btrfs": "btrfs-6.1",
        "f2fs": "f2fs",
        "ocfs2": "ocfs2-6.1",
        "tmpfs": "shmem-2014",
        "gfs2": "gfs2-6.1",  # read in the 6.1 and 7.2.13 sources: the same locks
        # fsrace's FUSE server asks for the writeback cache; fuse_file_fallocate and the
        # copy are the same in the 6.1 to 7.3 sources (fsrace.kernel.fuse)
        "fuse": "fuse-wb",
    }.get(family)


# The model scenarios a stress class stands for, where it is not the scenario of the same
# name: on NFS a copy within one file goes through the page cache (the client offloads
# only copies between two files, docs/real-kernels.md), so the model's server-side copy
# is the stress copy from another file; a clone within one ocfs2 file stores to its source
# and its destination both; on XFS a clone or reflink copy from another file onto the
# file under test is the model's within one file, the stores on its destination, and on
# ext4, f2fs and gfs2 a copy from another file is the VFS's copy through the page cache, as
# within one. On btrfs a clone or reflink copy from another file has the workers' reads
# of pages beside the destination too, in the extent item an earlier clone left
# (docs/findings/btrfs-clone-stale-page.md).
STANDS_FOR: dict[tuple[str, str], tuple[str, ...]] = {
    ("nfs", "copy-write-fault"): (),
    ("nfs", "copy-from-write-fault"): ("copy-write-fault",),
    ("nfs", "clone-from-write-fault"): ("clone-write-fault",),
    ("smb", "copy-from-write-fault"): ("copy-write-fault",),  # as NFS's: the destination's race
    ("fuse", "copy-from-write-fault"): ("copy-write-fault",),  # FUSE_COPY_FILE_RANGE both ways
    ("9p", "copy-from-write-fault"): ("copy-write-fault",),  # the VFS's copy, as within one
    ("xfs", "copy-from-write-fault"): ("copy-write-fault",),
    ("xfs", "clone-from-write-fault"): ("clone-write-fault",),
    ("ext4", "copy-from-write-fault"): ("copy-write-fault",),
    ("gfs2", "copy-from-write-fault"): ("copy-write-fault",),
    ("f2fs", "copy-from-write-fault"): ("copy-write-fault",),
    ("btrfs", "copy-from-write-fault"): ("copy-write-fault", "clone-beside-read-fault"),
    ("btrfs", "clone-from-write-fault"): ("clone-write-fault", "clone-beside-read-fault"),
    ("ocfs2", "clone-write-fault"): ("clone-write-fault", "clone-source-write-fault"),
    ("ocfs2", "copy-write-fault"): ("clone-write-fault", "clone-source-write-fault"),
}


# The stress classes' storing workers read each store back (a pread, then a load through
# the mapping), which these model scenarios add to the class of the same name: a store
# through a page the operation dropped shows only to the load. The zero range's workers
# write back (msync) too, which the model's zero-range-write-fault leaves out.
ALSO_STANDS_FOR = {"punch-write-fault": ("punch-store-reread",),
                   "zero-range-write-fault": ("zero-range-store-reread",
                                              "zero-range-writeback")}


def model_scenarios(fs: str, scenario: str) -> tuple[str, ...]:
    from ..scenarios import SCENARIOS

    key = (fs_family(fs), scenario)
    if key in STANDS_FOR:
        return STANDS_FOR[key]
    if scenario in ALSO_STANDS_FOR:
        return (scenario, *ALSO_STANDS_FOR[scenario])
    return (scenario,) if scenario in SCENARIOS else ()


def kernel_status(text: str) -> str:
    """A sweep cell's text as one word: ok, bad, unconfirmed, expected, not-exercised,
    not-run, n/a, died, hung, unchecked or failed."""
    for prefix, status in (("clean", "ok"), ("**guest died", "died"), ("**hung", "hung"),
                           ("check unfinished", "unchecked"),
                           ("**", "bad"), ("unconfirmed", "unconfirmed"),
                           ("expected", "expected"), ("not exercised", "not-exercised"),
                           ("not run", "not-run"), ("n/a", "n/a")):
        if text.startswith(prefix):
            return status
    return "failed"


def combine(verdicts: Iterable[str]) -> str:
    """The model's word for a class that stands for several scenarios: race if one races."""
    vs = list(verdicts)
    for word in ("race", "deadlock", "starvation", "unknown", "safe"):
        if word in vs:
            return word
    return "n/a"


def agrees(model: str, kernel: str) -> bool | None:
    """Whether the two say the same (None: nothing to compare)."""
    if model in ("n/a", "-") or kernel in ("n/a", "failed", "not-exercised", "not-run",
                                            "expected", "unchecked"):
        return None
    found = kernel in ("bad", "unconfirmed", "died", "hung")
    return found == (model in ("race", "deadlock", "starvation"))


def model_verdicts(cells: list[Cell], max_executions: int = 10_000, jobs: int = 1,
                   ray: str | None = None) -> dict[tuple[str, str], str]:
    """(protocol, model scenario) -> verdict, one search each at 1 page and 1 writer, as
    docs/verdicts.md (the complete search, and a random walk where it ends unknown)."""
    from ..run import not_modelled

    pairs = sorted({(p, sc) for c in cells if (p := protocol_for(c.fs, c.kernel))
                    for sc in model_scenarios(c.fs, c.scenario)})
    out = {(p, sc): "n/a" for p, sc in pairs if not_modelled(sc, p)}
    todo = [(sc, p, max_executions, Params(), "stateful") for p, sc in pairs
            if (p, sc) not in out]
    for (sc, p, *_), res in map_unordered(check_cell, todo, jobs, ray):
        out[(p, sc)] = str(res.search.verdict)
    return out


def beside_markdown(cells: list[Cell], verdicts: dict[tuple[str, str], str]) -> str:
    """Rows: kernel and file system; columns: classes; each cell `model / kernel`, with
    ≠ where they disagree."""
    scenarios = list(dict.fromkeys(c.scenario for c in cells))
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for c in cells:
        p = protocol_for(c.fs, c.kernel)
        scs = model_scenarios(c.fs, c.scenario)
        model = combine(verdicts[(p, sc)] for sc in scs) if p and scs else "-"
        kernel = kernel_status(c.text)
        if kernel == "unconfirmed" and explained_by(c.fs, c.scenario):
            kernel = "bad"  # flagged before the finding that explains it was written
        mark = " ≠" if agrees(model, kernel) is False else ""
        rows.setdefault((c.kernel, c.fs), {})[c.scenario] = f"{model} / {kernel}{mark}"
    head = ("| kernel | file system | protocol | "
            + " | ".join(f"`{s}`" for s in scenarios) + " |")
    lines = [head, "|" + "---|" * (len(scenarios) + 3)]
    for (kernel, fs), row in rows.items():
        lines.append(f"| {kernel} | {fs} | {protocol_for(fs, kernel) or '-'} | "
                     + " | ".join(row.get(s, "") for s in scenarios) + " |")
    return "\n".join(lines) + "\n"
