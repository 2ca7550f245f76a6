"""Kernel paths: which of the file system's own functions a run reached.

An operation can succeed without the code under test: a copy the client does through the
page cache when the server's copy is refused, a clone the VFS falls back from, a write
fault that never calls the file system's `page_mkwrite` because the page was mapped
writable at the read fault. So while the workers run, every function that implements the
class's operations on the mounted file system gets a kprobe (tracefs `kprobe_events`),
and its hit count (`kprobe_profile`) says whether the path ran.

The probes are enabled in a tracing instance of their own with tracing off: the kernel
counts each hit before it would record it, so nothing goes into any trace buffer, and the
global tracer is untouched. Everything made (probes, instance, a tracefs mount on a
folder fsrace makes for it) is removed on the way out, whatever the way out; except in a
guest, whose runs keep one set of probes for the whole boot (`keep`).

The functions are the ones a symbol table of the kernels fsrace runs shows as separate
(Debian 6.1 and 6.12): a static function the compiler folded into its caller cannot be
probed, so a few entries name the nearest function that can (`ext4_ext_shift_extents`
for ext4's collapse and insert, folded into `ext4_fallocate`). A name missing from the
running kernel is reported as such, never counted as zero hits.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field

# Per file system (its type in /proc/self/mounts) and operation kind (stress/ops.py): the
# functions that implement the operation there, any of which counts as reaching it.
PATHS: dict[str, dict[str, tuple[str, ...]]] = {
    "ext4": {
        "punch": ("ext4_punch_hole",),
        "zero": ("ext4_alloc_file_blocks",),  # ext4_zero_range is folded into fallocate
        "collapse": ("ext4_ext_shift_extents",),
        "insert": ("ext4_ext_shift_extents",),
        "truncate": ("ext4_setattr",),
        "copy": ("do_splice_direct",),  # no copy of its own: the VFS splices
        "store": ("ext4_page_mkwrite",),
    },
    "xfs": {
        "punch": ("xfs_free_file_space",),
        "zero": ("xfs_free_file_space",),  # zeroing frees the range, then allocates it
        "collapse": ("xfs_collapse_file_space",),
        "insert": ("xfs_insert_file_space",),
        "truncate": ("xfs_setattr_size",),
        "clone": ("xfs_reflink_remap_blocks",),
        "copy": ("xfs_reflink_remap_blocks",),  # the VFS tries a clone first
        "dedupe": ("xfs_reflink_remap_blocks",),
        "store": ("xfs_filemap_page_mkwrite", "xfs_write_fault"),
        "load": ("xfs_filemap_fault",),
    },
    "btrfs": {
        "punch": ("btrfs_replace_file_extents",),  # btrfs_punch_hole is folded in
        "zero": ("btrfs_fallocate",),
        "truncate": ("btrfs_setattr",),
        "clone": ("btrfs_clone",),
        "copy": ("btrfs_remap_file_range",),  # the VFS tries a clone first
        "dedupe": ("btrfs_extent_same_range",),
        "store": ("btrfs_page_mkwrite",),
    },
    "f2fs": {
        "punch": ("f2fs_truncate_hole",),
        "zero": ("f2fs_fallocate",),
        "collapse": ("__exchange_data_block",),
        "insert": ("__exchange_data_block",),
        "truncate": ("f2fs_setattr",),
        "copy": ("do_splice_direct",),
        "store": ("f2fs_vm_page_mkwrite",),
        "load": ("f2fs_filemap_fault",),
    },
    "ntfs3": {
        "punch": ("attr_punch_hole",),
        "zero": ("ntfs_fallocate",),
        "collapse": ("attr_collapse_range",),
        "insert": ("attr_insert_range",),
        "truncate": ("ntfs_setattr",),
        "copy": ("do_splice_direct",),
    },
    "nfs4": {
        "punch": ("nfs42_proc_deallocate",),
        "zero": ("nfs42_proc_zero_range",),
        "truncate": ("nfs4_proc_setattr",),
        "clone": ("nfs42_proc_clone",),
        "copy": ("nfs42_proc_copy",),  # the server's copy, not the page-cache fallback
        "store": ("nfs_vm_page_mkwrite",),
    },
    "cifs": {
        "punch": ("smb3_fallocate",),  # smb3_punch_hole is folded in
        "zero": ("smb3_zero_range",),
        "collapse": ("smb3_fallocate",),
        "insert": ("smb3_fallocate",),
        "truncate": ("cifs_setattr",),
        "clone": ("smb2_duplicate_extents",),
        "copy": ("smb2_copychunk_range",),  # the server's copy
        "store": ("cifs_page_mkwrite", "netfs_page_mkwrite"),
    },
    "ocfs2": {
        "punch": ("ocfs2_remove_inode_range",),
        "zero": ("ocfs2_remove_inode_range",),
        "truncate": ("ocfs2_setattr",),
        "clone": ("ocfs2_reflink_remap_blocks",),
        "copy": ("ocfs2_reflink_remap_blocks",),
        "store": ("ocfs2_page_mkwrite",),
    },
    "tmpfs": {
        "punch": ("shmem_fallocate",),
        "truncate": ("shmem_setattr",),
        "copy": ("do_splice_direct",),  # no copy of its own: the VFS splices
        # No page_mkwrite: a store to a page mapped read-only is made writable by the
        # generic fault code; a store or load on a page not mapped faults into shmem_fault.
        "store": ("shmem_fault",),
        "load": ("shmem_fault",),
    },
    "gfs2": {
        "punch": ("gfs2_fallocate",),  # __gfs2_punch_hole may be folded in
        "truncate": ("gfs2_setattr",),
        "copy": ("do_splice_direct",),
        "store": ("gfs2_page_mkwrite",),
        "load": ("gfs2_fault",),
    },
    "nilfs2": {
        "truncate": ("nilfs_setattr",),
        "copy": ("do_splice_direct",),
        "store": ("nilfs_page_mkwrite",),
    },
    # NFS v3 (v4.1 mounts as nfs4): no operation of the server's but SETATTR's.
    "nfs": {
        "truncate": ("nfs3_proc_setattr",),
        "copy": ("do_splice_direct",),
        "store": ("nfs_vm_page_mkwrite",),
    },
    # Without reflink or hole punching: truncate, the VFS's copy and, where the kernel has
    # one, the file system's own page_mkwrite.
    "exfat": {
        "truncate": ("exfat_setattr",),
        "copy": ("do_splice_direct",),
        "store": ("exfat_page_mkwrite",),
    },
    "vfat": {
        "truncate": ("fat_setattr",),
        "copy": ("do_splice_direct",),
    },
    "jfs": {
        "truncate": ("jfs_setattr",),
        "copy": ("do_splice_direct",),
    },
    "udf": {
        "truncate": ("udf_setattr",),
        "copy": ("do_splice_direct",),
        "store": ("udf_page_mkwrite",),
    },
}
# fsrace's own FUSE server (fuse_server.py): the kernel's side of each request. With
# passthrough a mapping is the backing file's (ext4 here), so a store faults into ext4.
PATHS["fuse.fsrace"] = {
    "punch": ("fuse_file_fallocate",),
    "zero": ("fuse_file_fallocate",),
    "truncate": ("fuse_do_setattr",),
    "copy": ("fuse_copy_file_range",),
    "store": ("fuse_page_mkwrite",),
}
PATHS["fuse.fsrace-passthrough"] = {**PATHS["fuse.fsrace"], "store": ("ext4_page_mkwrite",)}
# A renamed build of fs/fuse (docs/findings/fuse-rename-module.sh), beside the kernel's.
PATHS["fsracefuse.fsrace"] = PATHS["fuse.fsrace"]
PATHS["fsracefuse.fsrace-passthrough"] = PATHS["fuse.fsrace-passthrough"]
# File system types whose functions are those of a module that shares their names with
# the kernel's own: that module's are counted (`fsracefuse:fuse_file_fallocate`).
MODULE_OF = {"fsracefuse": "fsracefuse"}
# The 9P2000.L client: no fallocate, copy or remap of its own; 7.x's mmap goes through
# netfs.
PATHS["9p"] = {
    "truncate": ("v9fs_vfs_setattr_dotl",),
    "copy": ("do_splice_direct",),
    "store": ("v9fs_vm_page_mkwrite", "netfs_page_mkwrite"),
}
PATHS["smb3"] = PATHS["cifs"]
# Between two files a copy or clone takes the functions it takes within one.
SAME_PATH = {"copy_from": "copy", "copy_to": "copy", "clone_from": "clone", "clone_to": "clone"}

# Tracefs, where the kernel usually has it mounted.
TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


@dataclass
class Paths:
    """Hits per operation kind and function while the workers ran. `absent`: per kind,
    the functions of the table that were not counted: the running kernel has no symbol
    for them, or refused a probe (`refused`: function -> the kernel's error);
    `unavailable`: why nothing could be counted (then `hits` is empty)."""

    fstype: str
    hits: dict[str, dict[str, int]] = field(default_factory=dict)
    absent: dict[str, list[str]] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    unavailable: str | None = None

    def reached(self, kind: str) -> bool | None:
        """Whether some function implementing `kind` ran; None when none was counted."""
        counted = self.hits.get(kind)
        if not counted:
            return None
        return any(n > 0 for n in counted.values())

    def unreached(self, kinds: list[str], done: Mapping[str, int]) -> list[str]:
        """Of `kinds`, those carried out (`done`: count per kind) whose functions were
        counted and never ran."""
        return [k for k in kinds if done.get(k) and self.reached(k) is False]

    def as_dict(self) -> dict:
        return {"fstype": self.fstype, "hits": self.hits, "absent": self.absent,
                "refused": self.refused, "unavailable": self.unavailable}

    @classmethod
    def from_dict(cls, doc: dict) -> Paths:
        return cls(doc["fstype"], doc["hits"], doc["absent"], doc.get("refused", {}),
                   doc["unavailable"])

    def merged(self, other: Paths) -> Paths:
        """The counts of two runs on the same file system added up."""
        hits = {k: dict(fns) for k, fns in self.hits.items()}
        for k, fns in other.hits.items():
            for fn, n in fns.items():
                hits.setdefault(k, {})[fn] = hits.get(k, {}).get(fn, 0) + n
        absent = {k: sorted(set(self.absent.get(k, [])) | set(other.absent.get(k, [])))
                  for k in self.absent.keys() | other.absent.keys()}
        return Paths(self.fstype, hits, absent, {**self.refused, **other.refused},
                     self.unavailable if self.unavailable is not None else other.unavailable)

    def brief(self, kinds: list[str]) -> str:
        """The calls of the functions of `kinds`, for a table cell."""
        return ", ".join(f"{fn} {n:,}" for k in kinds for fn, n in self.hits.get(k, {}).items())

    def describe(self) -> str:
        if self.unavailable:
            return f"not counted on {self.fstype}: {self.unavailable}"
        parts = [f"{kind} -> {self.brief([kind])}" for kind in self.hits]
        for kind, fns in self.absent.items():
            if kind not in self.hits:
                why = [f"{fn} ({self.refused[fn]})" if fn in self.refused else
                       f"{fn} (not in this kernel)" for fn in fns]
                parts.append(f"{kind} -> not counted: {', '.join(why)}")
        return f"on {self.fstype} (kprobes): " + "; ".join(parts)


def mount_type(path: str) -> str:
    """The file system type of the mount holding `path` (/proc/self/mounts)."""
    path = os.path.realpath(path)
    best, fstype = "", "unknown"
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) < 3:
                continue
            mnt = fields[1].replace("\\040", " ")
            inside = path == mnt or path.startswith(mnt.rstrip("/") + "/")
            if inside and len(mnt) >= len(best):
                best, fstype = mnt, fields[2]
    return fstype


def _symbols(wanted: set[str], module: str | None = None,
             kallsyms: str = "/proc/kallsyms") -> dict[str, str]:
    """For each wanted function, the text symbol the kernel has for it: the name itself
    or the name with a compiler suffix (`ext4_alloc_file_blocks.isra.0`); `module`'s own
    before any other, as `module:symbol`."""
    found: dict[str, tuple[tuple[bool, bool], str]] = {}  # base -> (rank, symbol)
    with open(kallsyms) as f:
        for line in f:
            fields = line.split()
            if len(fields) < 3 or fields[1] not in ("t", "T"):
                continue
            sym = fields[2]
            base = sym.split(".", 1)[0]
            if base not in wanted:
                continue
            mine = module is not None and fields[3:4] == [f"[{module}]"]
            rank = (mine, sym == base)
            if base not in found or rank > found[base][0]:
                found[base] = (rank, f"{module}:{sym}" if mine else sym)
    return {base: sym for base, (_, sym) in found.items()}


def _append(path: str, line: str) -> None:
    """Add a line to a tracefs control file. Not open(path, "a"): Python seeks to the
    end of a file it opens for appending, which tracefs refuses."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def parse_profile(text: str, events: dict[str, str]) -> dict[str, int]:
    """Hits per function from `kprobe_profile` (lines: event name, hits, misses; the name
    with or without its group), for the events named in `events` (event -> function)."""
    hits: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        event = fields[0].rsplit("/", 1)[-1]
        if event in events and fields[1].isdigit():
            hits[events[event]] = int(fields[1])
    return hits


class KernelPaths:
    """Counts the calls of a file system's functions for some operation kinds, from
    entering to leaving the `with` block; `result` holds them after.

    With `keep`, the probes of the file system's whole table are placed by the first
    run and left in place, enabled, for the later runs, which count the hits since they
    began: a guest of a sweep patches the kernel's text once per boot, not twice per run
    while the file system's threads (writeback, a FUSE server, nfsd) may still be in a
    probed function. Under TCG, guests died in `__disable_kprobe` at a run's end."""

    KEPT_GROUP = "fsracekeep"

    def __init__(self, fstype: str, kinds: list[str], keep: bool = False) -> None:
        self.result = Paths(fstype)
        self._table = {k: PATHS.get(fstype, {}).get(SAME_PATH.get(k, k), ()) for k in kinds}
        self._keep = keep
        self._tracefs: str | None = None
        self._mounted: str | None = None
        self._group = self.KEPT_GROUP if keep else f"fsrace{os.getpid()}"
        self._instance: str | None = None
        self._events: dict[str, str] = {}  # event name -> function
        self._baseline: dict[str, int] = {}  # kept probes: hits before this run
        self._undo: list[tuple[str, str]] = []  # probes to remove: (file, line)

    def __enter__(self) -> KernelPaths:
        res = self.result
        if not any(self._table.values()):
            res.unavailable = f"fsrace has no table of {res.fstype}'s functions for " \
                              + ", ".join(self._table)
            return self
        try:
            self._start()
        except OSError as e:
            self._stop()
            res.hits.clear()
            res.unavailable = f"the kernel's probes could not be set up: {e}"
        return self

    def __exit__(self, *exc) -> None:
        if self._instance is not None:
            try:
                with open(f"{self._tracefs}/kprobe_profile") as f:
                    hits = parse_profile(f.read(), self._events)
                for kind, fns in self._table.items():
                    counted = {fn: hits[fn] - self._baseline.get(fn, 0)
                               for fn in fns if fn in hits}
                    if counted:
                        self.result.hits[kind] = counted
            except OSError as e:
                self.result.unavailable = f"kprobe_profile could not be read: {e}"
        self._stop()

    def _find_tracefs(self) -> str | None:
        with open("/proc/self/mounts") as f:
            mounted = [fields[1] for fields in map(str.split, f)
                       if len(fields) > 2 and fields[2] == "tracefs"]
        for d in (*TRACEFS, *mounted):
            if os.path.exists(f"{d}/kprobe_events"):
                return d
        if os.path.exists(TRACEFS[0]) and not os.listdir(TRACEFS[0]):
            where = tempfile.mkdtemp(prefix="fsrace-tracefs-")
            r = subprocess.run(["mount", "-t", "tracefs", "nodev", where],
                               capture_output=True, text=True)
            if r.returncode != 0:
                os.rmdir(where)
                return None
            self._mounted = where
            if os.path.exists(f"{where}/kprobe_events"):
                return where
        return None

    def _start(self) -> None:
        res = self.result
        tracefs = self._find_tracefs()
        if tracefs is None:
            res.unavailable = ("the running kernel has no kprobe events "
                               "(CONFIG_KPROBE_EVENTS) or no tracefs to reach them")
            return
        self._tracefs = tracefs
        if self._keep:
            self._mounted = None  # a later run finds it in /proc/self/mounts
            table = PATHS.get(res.fstype, {}).values()
        else:
            table = self._table.values()
        wanted = {fn for fns in table for fn in fns}
        symbols = _symbols(wanted, MODULE_OF.get(res.fstype.split(".", 1)[0]))
        for fn in sorted(wanted):
            sym = symbols.get(fn)
            if sym is None:
                continue
            event = re.sub(r"\W", "_", f"{self._group}_{sym}")[:63]
            if self._keep and os.path.isdir(f"{tracefs}/events/{self._group}/{event}"):
                self._events[event] = fn  # placed by an earlier run
                continue
            try:
                _append(f"{tracefs}/kprobe_events", f"p:{self._group}/{event} {sym}\n")
            except OSError as e:  # a function the kernel will not probe (notrace, ...)
                res.refused[fn] = os.strerror(e.errno) if e.errno else str(e)
                continue
            if not self._keep:
                self._undo.append((f"{tracefs}/kprobe_events", f"-:{self._group}/{event}\n"))
            self._events[event] = fn
        probed = set(self._events.values())
        for kind, fns in self._table.items():
            missing = [fn for fn in fns if fn not in probed]
            if missing:
                res.absent[kind] = missing
        if not probed:
            return
        instance = f"{tracefs}/instances/{self._group}"
        if not (self._keep and os.path.isdir(instance)):
            os.mkdir(instance)
        self._instance = instance
        with open(f"{instance}/tracing_on", "w") as f:
            f.write("0\n")  # count, record nothing
        with open(f"{instance}/events/{self._group}/enable", "w") as f:
            f.write("1\n")  # enabling an enabled probe patches nothing
        if self._keep:
            with open(f"{tracefs}/kprobe_profile") as f:
                self._baseline = parse_profile(f.read(), self._events)

    def _stop(self) -> None:
        """Undo every step that was done, in reverse, carrying on past failures; kept
        probes stay."""
        if self._keep:
            self._instance = None
            return
        if self._instance is not None:
            try:
                with open(f"{self._instance}/events/{self._group}/enable", "w") as f:
                    f.write("0\n")
            except OSError:
                pass
            try:
                os.rmdir(self._instance)
            except OSError:
                pass
            self._instance = None
        for path, line in reversed(self._undo):
            try:
                _append(path, line)
            except OSError:
                pass
        self._undo.clear()
        if self._mounted is not None:
            subprocess.run(["umount", self._mounted], capture_output=True)
            try:
                os.rmdir(self._mounted)
            except OSError:
                pass
            self._mounted = None
