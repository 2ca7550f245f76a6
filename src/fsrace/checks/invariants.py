"""Named invariants of the model, checked after every step.

Each reads the kernel state (and the events logged since the last check) and returns a
message when it does not hold. The objects an invariant reads are written only by steps
that conflict with one another, so every linearization of a trace shows the same verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..kernel.kernel import Kernel, KEvent
from ..kernel.structs import DELALLOC, PAGE_SIZE, UNWRITTEN, WRITTEN


@dataclass(frozen=True)
class Invariant:
    """`watches`: the object families it reads (see `family`); it is evaluated after a step
    that changed one of them or logged an event."""

    name: str
    meaning: str
    check: Callable[[Kernel, Sequence[KEvent]], str | None]
    watches: frozenset[str] = frozenset()


def family(obj: str) -> str:
    """'page:A:0' -> 'page', 'A.extents' -> 'extents', 'owner3' -> 'owner'."""
    if ":" in obj:
        return obj.split(":", 1)[0]
    if "." in obj:
        return obj.split(".", 1)[1]
    return obj.rstrip("0123456789")


def _io_to_owned_blocks(k: Kernel, new: Sequence[KEvent]) -> str | None:
    for ev in new:
        if ev.kind != "bio_write":
            continue
        ino, lblk, pblk = ev.data["inode"], ev.data["lblk"], ev.data["pblk"]
        owners = k.disk.owners(pblk)
        state, mapped = k.inodes[ino].extents.get(lblk, ("hole", None))
        if (ino, lblk) not in owners or state not in (WRITTEN, UNWRITTEN) or mapped != pblk:
            whose = "free" if not owners else "owned by " + ", ".join(
                f"{o[0]} lblk {o[1]}" for o in owners)
            return (f"{ev.task} wrote {ino} lblk {lblk} ({ev.data['source']}) to blk{pblk}, "
                    f"which is {whose}; {ino}'s map has lblk {lblk} as {state}"
                    + (f" -> blk{mapped}" if mapped is not None else ""))
        if len(owners) > 1:
            # A shared block is written only after copy on write gave the writer its own.
            others = ", ".join(f"{o[0]} lblk {o[1]}" for o in owners if o != (ino, lblk))
            return (f"{ev.task} wrote {ino} lblk {lblk} ({ev.data['source']}) in place to "
                    f"blk{pblk}, which {others} shares (refcount {len(owners)}): the write "
                    "changes them too")
    return None


def _no_stray_delalloc(k: Kernel, new: Sequence[KEvent]) -> str | None:
    for ev in new:
        if ev.kind == "warn":
            return f"{ev.task}: {ev.data['msg']}"
    for inode in k.inodes.values():
        for page in inode.pages.values():
            for nr, bh in enumerate(page.buffers or []):
                lblk = k.lblk(page.index, nr)
                if bh.delay and inode.extents.get(lblk, ("hole",))[0] != DELALLOC:
                    return (f"page {page.name} has a delay buffer for lblk {lblk} but the "
                            f"block map says {inode.extents.get(lblk, ('hole',))[0]}")
    return None


def _reservations_balance(k: Kernel, new: Sequence[KEvent]) -> str | None:
    total = 0
    for inode in k.inodes.values():
        delalloc = sum(1 for s, _ in inode.extents.values() if s == DELALLOC)
        if inode.i_reserved_data_blocks != delalloc:
            return (f"{inode.name}: {inode.i_reserved_data_blocks} blocks reserved, "
                    f"{delalloc} delalloc in the block map")
        total += inode.i_reserved_data_blocks
    if k.disk.dirty_clusters != total:
        return f"filesystem counts {k.disk.dirty_clusters} reserved blocks, inodes {total}"
    return None


def _nothing_beyond_eof(k: Kernel, new: Sequence[KEvent]) -> str | None:
    for inode in k.inodes.values():
        if inode.name in k.resizing:
            continue
        eof_page = -(-inode.i_size // PAGE_SIZE)
        # A clean page may linger past EOF (a fault that passed the i_size check adds it,
        # then sees the new size under the page lock and fails): nothing can reach it.
        for index, page in inode.pages.items():
            if index >= eof_page and page.dirty:
                return (f"page {inode.name}:{index} dirty beyond EOF (i_size {inode.i_size}): "
                        "its data would be written back")
        for mm in k.mms.values():
            for ino, index in mm.ptes:
                if ino == inode.name and index >= eof_page:
                    return (f"{mm.name} maps {inode.name}:{index} beyond EOF "
                            f"(i_size {inode.i_size})")
        # Data stored past EOF: growing the file exposes it where zeros belong (on NFS the
        # block map is the server's file, which is then longer than the client's i_size).
        eof_block = -(-inode.i_size // k.blksize)
        for lblk, (state, pblk) in sorted(inode.extents.items()):
            if lblk >= eof_block and state in (WRITTEN, UNWRITTEN):
                return (f"{inode.name} lblk {lblk} -> blk{pblk} is {state} beyond EOF "
                        f"(i_size {inode.i_size}): a grow would expose its data")
    return None


def _dio_sees_no_delalloc(k: Kernel, new: Sequence[KEvent]) -> str | None:
    for ev in new:
        if ev.kind == "dio_map" and ev.data["state"] == DELALLOC:
            return (f"{ev.task}'s direct I/O mapped {ev.data['inode']} lblk {ev.data['lblk']} "
                    "and found a delalloc extent: a page dirtied after the flush "
                    "(XFS BUG()s in __xfs_get_blocks; ext4 reads a hole)")
    return None


INVARIANTS = [
    Invariant("io-to-owned-blocks",
              "writeback and direct I/O write only to blocks the file owns at that offset, "
              "and owns alone",
              _io_to_owned_blocks),
    Invariant("no-stray-delalloc",
              "a delay buffer always has its delalloc entry and reservation",
              _no_stray_delalloc, frozenset({"page", "extents"})),
    Invariant("reservations-balance",
              "reserved blocks equal the delalloc blocks, per inode and in total",
              _reservations_balance, frozenset({"extents", "s_dirtyclusters"})),
    Invariant("nothing-beyond-eof",
              "once a truncate returned, no PTE maps, no dirty page and no block holds data "
              "beyond i_size",
              _nothing_beyond_eof, frozenset({"i_pages", "page", "pte", "i_size", "extents"})),
    Invariant("dio-sees-no-delalloc",
              "direct I/O never finds a delalloc extent inside EOF",
              _dio_sees_no_delalloc),
]

FILE_CONTENTS = ("file-contents",
                 "final contents and values read are those of some one-at-a-time order")


def check_invariants(k: Kernel, new: Sequence[KEvent], changed: set[str] | None = None
                     ) -> tuple[Invariant, str] | None:
    """Evaluate the invariants that the new events or the changed families concern (all of
    them when `changed` is None)."""
    for inv in INVARIANTS:
        if changed is not None and not new and not (inv.watches & changed):
            continue
        msg = inv.check(k, new)
        if msg:
            return inv, msg
    return None
