"""The operations a stress worker runs, drawn from a seed, and the stamps stores write.

Every store writes a stamp that names its worker and operation, so every value read can be
traced to the operation that wrote it. The file is checked in 8-byte slots: a store, a
pwrite of one slot and an aligned load are single 8-byte accesses, which the CPU does not
tear."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

PAGE = 4096
SLOT = 8
SLOTS = PAGE // SLOT
# Stores, loads and pwrites use 16 slots per page, 256 bytes apart: enough to interleave
# workers within a page, few enough that the other slots share one history per page.
TOUCHED_SLOTS = 16
# A collapse, insert, copy or clone moves every slot class of every page it shifts, and
# the checker follows each (page, class) through it: the race classes built on them use 4
# slot classes and 16 pages by default, so that checking keeps pace with running.
# Between the file and another file on the same file system, as `cp --reflink` and backup
# tools do: a copy or clone whose source and destination are one inode can take another
# path (an NFS client refuses to offload it and copies through the page cache).
FROM_OTHER = ("copy_from", "clone_from")  # the other file's range into this file
TO_OTHER = ("copy_to", "clone_to")  # this file's range into the other file
BETWEEN_FILES = FROM_OTHER + TO_OTHER
MOVES = ("collapse", "insert", "copy", "clone", *BETWEEN_FILES)
MOVING_TOUCHED_SLOTS, MOVING_PAGES, PAGES = 4, 16, 64
_MAGIC = 0x5A << 56
INIT_WORKER = 0xFF  # the stamps of the initial contents
OTHER_INIT = 0xFE  # ... of the other file's (the source or target of the *_from/_to ops)


def stamp(worker: int, index: int) -> int:
    return _MAGIC | (worker << 40) | (index + 1)


def unstamp(value: int) -> tuple[int, int] | None:
    """(worker, op index) of a stamp, None for anything else (0 is a hole)."""
    if value >> 56 != 0x5A:
        return None
    return (value >> 40) & 0xFFFF, (value & ((1 << 40) - 1)) - 1


def describe_value(value: int) -> str:
    if value == 0:
        return "0 (hole/zeroed)"
    who = unstamp(value)
    if who is None:
        return f"{value:#018x} (not a stamp: torn or foreign data)"
    w, i = who
    if w == INIT_WORKER:
        return f"initial contents of page {i}"
    if w == OTHER_INIT:
        return f"initial contents of the other file's page {i}"
    return f"stamp of W{w} op {i}"


@dataclass(frozen=True)
class Op:
    """One operation. `page`/`npages` is the range; `slot` the 8-byte slot of a store,
    load or pwrite; `size` the new size of a truncate (it shrinks, then restores the size);
    `src` the first page of the range a copy, clone or dedupe reads (never overlapping the
    destination). The *_from kinds read their range from the other file into this one,
    the *_to kinds from this file into the other (FROM_OTHER, TO_OTHER). A collapse is
    followed by a truncate up to the old size, an insert by one down to it, so that the
    file keeps its size for the other workers' mappings."""

    kind: str
    page: int = 0
    slot: int = 0
    npages: int = 1
    size: int = 0
    src: int = 0

    def __str__(self) -> str:
        if self.kind in ("store", "load", "pwrite"):
            return f"{self.kind} page {self.page} slot {self.slot}"
        if self.kind == "truncate":
            return f"truncate to {self.size} and back"
        if self.kind in ("fsync",):
            return self.kind
        if self.kind in ("pread", "dio_read", "dio_write"):
            return f"{self.kind} page {self.page}"
        if self.kind in MOVES_FROM:
            there = "the other file's " if self.kind in FROM_OTHER else ""
            here = "the other file's " if self.kind in TO_OTHER else ""
            return (f"{self.kind} {there}pages {self.src}-{self.src + self.npages - 1} to "
                    f"{here}{self.page}-{self.page + self.npages - 1}")
        return f"{self.kind} pages {self.page}-{self.page + self.npages - 1}"


KINDS = ("store", "load", "pread", "pwrite", "punch", "zero", "truncate", "fsync", "msync",
         "willneed", "dontneed", "dio_read", "dio_write", "collapse", "insert", "copy",
         "clone", "dedupe", "copy_from", "clone_from", "copy_to", "clone_to", "writeback")
# With --flusher the faulters start writeback as the flusher does, with
# sync_file_range(SYNC_FILE_RANGE_WRITE), where they would msync: msync goes through
# ->fsync, which some file systems (FUSE's fuse_fsync) serialize with the operation under
# test by the inode lock, so only a writeback without it can land inside the window.
FLUSHER_FOR = {"msync": "writeback"}
# With --direct-reads the remover reads with O_DIRECT where it would pread: past a network
# client's page cache, what the server holds (a client may answer its own reads from what
# it believes, e.g. 9p's netfs reading a page past a truncate as zeros).
DIRECT_FOR = {"pread": "dio_read"}
MOVES_FROM = ("copy", "clone", "dedupe", *BETWEEN_FILES)  # ops with a range `src`

# Per race class: what worker 0 (the remover) and the others (the faulters) draw from,
# with weights. They mirror the model's scenarios of the same names.
SCENARIOS: dict[str, tuple[dict[str, int], dict[str, int]]] = {
    "punch-write-fault": ({"punch": 5, "pread": 3, "fsync": 1},
                          {"store": 6, "load": 2, "msync": 1, "pread": 1}),
    "punch-read-fault": ({"punch": 5, "pread": 3},
                         {"load": 6, "dontneed": 1, "store": 2}),
    "punch-read": ({"punch": 5, "pread": 3}, {"pread": 6, "dontneed": 1, "pwrite": 2}),
    "punch-readahead": ({"punch": 5, "pread": 3},
                        {"willneed": 4, "dontneed": 1, "pwrite": 2, "pread": 2}),
    "zero-range-write-fault": ({"zero": 5, "pread": 3},
                               {"store": 6, "load": 2, "msync": 1}),
    # The faulters write back too, as in the other write-fault classes: a network client's
    # truncate loses the cut-off page only to a writeback between its flush and its cache
    # drop (docs/findings/nfs-truncate-mmap.md, smb-truncate-mmap.md).
    "truncate-write-fault": ({"truncate": 3, "pread": 2},
                             {"store": 6, "load": 2, "msync": 1}),
    "dio-write-fault": ({"dio_read": 4, "dio_write": 2, "punch": 2},
                        {"store": 6, "load": 2, "msync": 1}),
    "collapse-read-fault": ({"collapse": 5, "pread": 3},
                            {"load": 6, "dontneed": 1, "store": 2}),
    "collapse-write-fault": ({"collapse": 5, "pread": 3},
                             {"store": 6, "load": 2, "msync": 1}),
    "insert-write-fault": ({"insert": 5, "pread": 3}, {"store": 6, "load": 2, "msync": 1}),
    # The operations that replace a range's contents or blocks (the model has the clone).
    "copy-write-fault": ({"copy": 5, "pread": 3}, {"store": 6, "load": 2, "msync": 1}),
    "clone-write-fault": ({"clone": 5, "pread": 3}, {"store": 6, "load": 2, "msync": 1}),
    # Copies make ranges equal, so that some dedupes share blocks rather than differ.
    "dedupe-write-fault": ({"dedupe": 4, "copy": 2, "pread": 2},
                           {"store": 6, "load": 2, "msync": 1}),
    # Between two files: the faults race a copy or clone into the file's range, or out of
    # it (then the range read must be written back before the other file gets it).
    "copy-from-write-fault": ({"copy_from": 5, "pread": 3},
                              {"store": 6, "load": 2, "msync": 1}),
    "clone-from-write-fault": ({"clone_from": 5, "pread": 3},
                               {"store": 6, "load": 2, "msync": 1}),
    "copy-to-write-fault": ({"copy_to": 5, "pread": 3}, {"store": 6, "load": 2, "msync": 1}),
    "clone-to-write-fault": ({"clone_to": 5, "pread": 3},
                             {"store": 6, "load": 2, "msync": 1}),
}
# The mix leaves out collapse and insert: each shifts every page after its range, which
# costs the check a search per page and slot class (they have their own classes); and the
# operations between two files, so that it draws what it drew before they existed and a
# saved mix replays.
MIX = {k: 1 for k in KINDS if k not in ("collapse", "insert", *BETWEEN_FILES, "writeback")} | {
    "store": 6, "load": 3, "pread": 2, "punch": 2}


def own_operation(scenario: str) -> str:
    """The race class's own operation (its remover's first): what the class is about."""
    return next(iter(SCENARIOS[scenario][0]))


def class_kinds(scenario: str) -> list[str]:
    """The operation kinds the race class is about: its own operation and, for a fault
    class, the fault (a store for write faults, a load for read faults)."""
    fault = {"write-fault": "store", "read-fault": "load"}
    return [own_operation(scenario)] + [k for end, k in fault.items()
                                        if scenario.endswith(end)]


def moves_values(scenario: str | None) -> bool:
    return scenario is not None and any(k in MOVES for k in SCENARIOS[scenario][0])


def default_pages(scenario: str | None) -> int:
    return MOVING_PAGES if moves_values(scenario) else PAGES


def op_stream(seed: int, worker: int, scenario: str | None, pages: int,
              without: tuple[str, ...] = (), flusher: bool = False,
              direct_reads: bool = False) -> Iterator[Op]:
    """The worker's operations, forever, none of the kinds `without`; with `flusher` a
    faulter's msync is a writeback instead (FLUSHER_FOR), with `direct_reads` the
    remover's pread a direct read (DIRECT_FOR), each drawn at the same points. The same
    seed gives the same stream."""
    rng = random.Random(f"{seed}:{worker}")
    if scenario is None:
        weights = MIX
    else:
        weights = SCENARIOS[scenario][0 if worker == 0 else 1]
    if flusher and (scenario is None or worker != 0):
        weights = {FLUSHER_FOR.get(k, k): v for k, v in weights.items()}
    if direct_reads and scenario is not None and worker == 0:
        weights = {DIRECT_FOR.get(k, k): v for k, v in weights.items()}
    weights = {k: v for k, v in weights.items() if k not in without}
    if not weights:
        raise ValueError(f"--without {','.join(without)} leaves worker {worker} nothing to do")
    kinds, w = list(weights), list(weights.values())
    touched = MOVING_TOUCHED_SLOTS if moves_values(scenario) else TOUCHED_SLOTS
    while True:
        kind = rng.choices(kinds, w)[0]
        page = rng.randrange(pages)
        npages = min(rng.choice((1, 1, 2)), pages - page)
        slot = rng.randrange(touched) * (SLOTS // touched)
        size = rng.randrange(1, pages) * PAGE if pages > 1 else 0
        src = 0
        if kind == "collapse" and page + npages >= pages:  # may not reach EOF
            page = max(pages - npages - 1, 0)
        elif kind in BETWEEN_FILES:  # two files: any two ranges
            page = rng.randrange(pages - npages + 1)
            src = rng.randrange(pages - npages + 1)
        elif kind in MOVES_FROM and pages >= 2 * npages:
            page, src = rng.sample(range(0, pages - npages + 1, npages), 2)
        yield Op(kind, page, slot, npages, size, src)
