"""`fsrace export fstests`: a race class as an fstests test, for the suite filesystem
developers run daily. Each test is a script in fstests' tests/generic/ style and its
expected output; all of them run one C helper (t_mmap_fault_op_race.c, beside this file,
written to the test's src/) that races the class's operation against stores through a
shared mapping (or, for readahead, against readahead(2)) on the test file system and
checks every word afterwards. The repository's fstests/ folder is this module's output
(tests/test_fstests.py keeps it so)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HELPER = Path(__file__).with_name("t_mmap_fault_op_race.c")
HELPER_NAME = HELPER.stem
FIRST_NUMBER = 900  # past fstests' own generic tests; ./new renumbers on submission


@dataclass(frozen=True)
class Pass:
    mode: str       # how the thread stores ("" word 1 of each page, -l, -S) or writes back
    failure: str    # the line the test prints when the helper finds a stale round


@dataclass(frozen=True)
class FstestsTest:
    op: str             # the helper's -o
    groups: str         # fstests groups beyond "auto quick rw mmap data"
    require: str        # fstests' check that the test file system has the operation
    about: str          # the header comment: what is checked, and where it failed
    passes: tuple[Pass, ...]
    flags: str = ""     # the helper's options every pass takes (-m N, -s)
    imports: str = ""
    rounds: int = 300   # of each pass but the control; more where a round rarely hits


_STALE = "{op} under mmap stores left stale data"
# The second pass of the copy, punch and zero range: writeback started as the flusher
# starts it. FUSE's msync waits for the inode lock the operation holds, so only this
# writeback can land inside its window there (its writeback cache keeps the page).
_FLUSHER = Pass("-f", "{op} under mmap stores written back by sync_file_range left stale data")
_LOST = "{op} lost a store made through the mapping"

# Race classes (fsrace's scenario names) that have a test, in the order tests are numbered.
TESTS: dict[str, FstestsTest] = {
    "copy-write-fault": FstestsTest(
        "copy", "copy_range", '_require_xfs_io_command "copy_range"', """\
copy_file_range from a second file onto a page that another thread keeps dirtying
through a shared mapping. After the copy returns, every word the stores did not touch
must read the copied data. On the NFS v4.2 client the copy is offloaded to the server
(COPY) and only then are the destination's pages dropped; a page dirtied in between is
laundered back over the copy (nfs42_copy_dest_done -> invalidate_inode_pages2_range ->
nfs_launder_folio), and the file keeps its old data. The SMB client's server-side copy
drops the pages before the server copies, and a fault in between reads them back. A
second pass has the thread write the page back too (sync_file_range, as the flusher):
FUSE with the writeback cache writes it back after the server's copy.""",
        (Pass("", _STALE), Pass("-m 500 -f", _FLUSHER.failure))),
    "clone-write-fault": FstestsTest(
        "clone", "clone", "_require_test_reflink", """\
FICLONERANGE from a second file onto a page that another thread keeps dirtying
through a shared mapping. After the clone returns, every word the stores did not touch
must read the cloned data. On the NFS v4.2 client (CLONE to the server) a page dirtied
before the client drops the range is laundered back over the clone.""",
        (Pass("", _STALE),), imports=". ./common/reflink\n"),
    "punch-write-fault": FstestsTest(
        "punch", "punch", '_require_xfs_io_command "fpunch"', """\
A hole punched under a page that another thread keeps dirtying through a shared
mapping and writing back (msync) meanwhile. After the punch returns, every word the
stores did not touch must read zero. On the NFS v4.2 client the DEALLOCATE is sent
with no lock against page faults, so a page written back inside its window reaches the
server after the DEALLOCATE and the punched data comes back. A second pass writes back
with sync_file_range, as the flusher does: on FUSE msync waits for the punch, and FUSE
with the writeback cache sends the page after FUSE_FALLOCATE.""",
        (Pass("", _STALE), _FLUSHER), flags="-m 500"),
    "truncate-write-fault": FstestsTest(
        "truncate", "", "", """\
Truncate to zero and back to one page, while another thread keeps storing to that
page through a shared mapping (SIGBUS past EOF is caught) and writing it back (msync).
After the truncate, every word the stores did not touch must read zero. On the NFS
client a writeback inside the SETATTR's window carries the truncated data back to the
server, and on the SMB client one inside the SET_INFO's. A second pass reads back with
O_DIRECT: 6.12's SMB client reads zeros past the size it set without asking the server,
whose file still holds the data.""",
        (Pass("", _STALE), Pass("-D", "{op} under mmap stores left stale data on the storage")),
        flags="-m 500"),
    "insert-write-fault": FstestsTest(
        "insert", "insert", '_require_xfs_io_command "finsert"', """\
FALLOC_FL_INSERT_RANGE at offset 0 of a four-page file, then a truncate back to four
pages, while another thread keeps dirtying every page through a shared mapping. The
inserted page must read zero and each page the data of the page before it. The file
system is synced before each insert (an f2fs checkpoint): f2fs moved blocks whose
pages a fault could dirty inside the insert's window. A second pass stores once to each
word of page 1 while the insert moves it to page 2: each store must be found in exactly
one of the two places.""",
        (Pass("", _STALE), Pass("-l", _LOST)), flags="-s"),
    "collapse-write-fault": FstestsTest(
        "collapse", "collapse", '_require_xfs_io_command "fcollapse"', """\
FALLOC_FL_COLLAPSE_RANGE of page 0 of a five-page file, then an extension back to
five pages, while another thread keeps dirtying pages 0-3 through a shared mapping.
Each page must read the data of the page after it, the last page zero. A second pass
stores once to each word of page 1 while the collapse moves it to page 0: each store
must be found in exactly one of the two places (ntfs3 loses some: its page_mkwrite
takes no lock the collapse holds, and the collapse drops the dirtied page).""",
        (Pass("", _STALE), Pass("-l", _LOST))),
    "clone-source-write-fault": FstestsTest(
        "clone", "clone", "_require_test_reflink", """\
FICLONERANGE from a second file while another thread keeps storing to the source
page through a shared mapping. The destination must read the source's data in every
word the stores did not touch. On ocfs2 a fault between the remap's flush and its
block sharing gives the source a new cluster not yet written, and the destination
shares it and reads zeros. A second pass clones random ranges within one file, each
clone sharing clusters earlier ones shared, while the thread stores to random words
of every page; nothing writes a zero word, so a zero word after an fsync is data lost
(the shape in which ocfs2 loses it).""",
        (Pass("-S", "{op} under mmap stores to its source gave wrong data"),
         Pass("-W", "{op} within the file under mmap stores lost data")),
        imports=". ./common/reflink\n"),
    "zero-range-write-fault": FstestsTest(
        "zero", "zero", '_require_xfs_io_command "fzero"', """\
FALLOC_FL_ZERO_RANGE under a page that another thread keeps dirtying through a
shared mapping and writing back (msync) meanwhile. After the zeroing returns, every
word the stores did not touch must read zero. A second pass writes back with
sync_file_range, as the flusher does (FUSE with the writeback cache).""",
        (Pass("", _STALE), _FLUSHER), flags="-m 500"),
    "punch-readahead": FstestsTest(
        "punch", "punch", '_require_xfs_io_command "fpunch"', """\
A hole punched while another thread keeps asking for readahead of the page
(readahead(2)); no stores. After the punch returns, every word must read zero. On gfs2
the punch drops the page cache and then frees the blocks under the inode glock, which
readahead does not take, and without invalidate_lock: readahead in between reads the
old blocks back, and the page stays cached over the hole.""",
        (Pass("-R", "{op} beside readahead left stale data"),)),
    "clone-beside-read-fault": FstestsTest(
        "clone", "clone", "_require_test_reflink", """\
FICLONERANGE from a second file onto page 0 of a file whose pages 0 and 1 an earlier
clone made one extent, while another thread reads page 1, started with the clone; no
stores. After the clone returns, page 0 must read the clone's data.
On btrfs a read of page 1 that looks the extent up before the clone replaces it, and
caches where the extent's blocks were after the clone dropped its range's cached
mappings, sends the next read of page 0 to the block the clone replaced (6.1 to 7.3).""",
        (Pass("", "{op} beside reads of the next page left stale data"),), flags="-B",
        imports=". ./common/reflink\n", rounds=5000),
}


def _command(run: str, flags: str, rounds: str) -> str:
    return " ".join(w for w in (run, flags, rounds, "$file >> $seqres.full 2>&1 || \\") if w)


def script(scenario: str, number: int) -> str:
    """The test script for race class `scenario` as fstests test generic/`number`."""
    t = TESTS[scenario]
    groups = " ".join(["auto quick rw mmap data", t.groups]).strip()
    requires = ["_require_test", t.require, f'_require_test_program "{HELPER_NAME}"']
    run = f"$here/src/{HELPER_NAME} -o {t.op}"
    lines = [
        "#! /bin/bash",
        "# SPDX-License-Identifier: GPL-2.0",
        "#",
        f"# FS QA Test No. {number}",
        "#",
        *(f"# {line}" for line in t.about.splitlines()),
        f"# (fsrace race class {scenario}.)",
        "#",
        ". ./common/preamble",
        f"_begin_fstest {groups}",
        "",
        *([t.imports.rstrip()] if t.imports else []),
        *(r for r in requires if r),
        "",
        f"file=$TEST_DIR/{HELPER_NAME}.$seq",
        "rm -f $file $file.src",
        "",
        "# Control first: without stores the operation alone must give the data it promises",
        "# (the helper exits 3 when the file system refuses the operation).",
        _command(run, t.flags, "-r 20 -n").removesuffix(" || \\"),
        "case $? in",
        "0) ;;",
        f'3) _notrun "{t.op} refused on $FSTYP" ;;',
        f'*) echo "{t.op} alone gave wrong data, see $seqres.full" ;;',
        "esac",
    ]
    for p in t.passes:
        lines += [_command(run, f"{t.flags} {p.mode}".strip(), f"-r {t.rounds}"),
                  f'\techo "{p.failure.format(op=t.op)}, see $seqres.full"']
    lines += ["rm -f $file $file.src", "", 'echo "Silence is golden"', "_exit 0", ""]
    return "\n".join(lines)


def expected_output(number: int) -> str:
    return f"QA output created by {number}\nSilence is golden\n"


def export(scenarios: list[str], directory: Path, first_number: int = FIRST_NUMBER
           ) -> list[Path]:
    """Write the tests for `scenarios` (numbered from `first_number`) into
    directory/tests/generic and the helper into directory/src; return the paths written.
    Raises KeyError for a class with no test."""
    for s in scenarios:
        if s not in TESTS:
            raise KeyError(s)
    generic, src = directory / "tests" / "generic", directory / "src"
    generic.mkdir(parents=True, exist_ok=True)
    src.mkdir(parents=True, exist_ok=True)
    written = []
    for number, scenario in enumerate(scenarios, first_number):
        test = generic / str(number)
        test.write_text(script(scenario, number))
        test.chmod(0o755)
        out = generic / f"{number}.out"
        out.write_text(expected_output(number))
        written += [test, out]
    helper = src / HELPER.name
    helper.write_text(HELPER.read_text())
    return [*written, helper]
