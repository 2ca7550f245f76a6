"""Verdicts derived from kernel history, each with the mail or commit that establishes it,
and the generated docs/verdicts.md kept in step with the tool."""

import pathlib

import pytest

from fsrace.run import check
from fsrace.scenarios import SCENARIOS

HISTORY = [
    # Jan Kara, 16 May 2012 <20120515224805.GA25577@quack.suse.cz>: the seed race.
    ("punch-write-fault", "linux-2012", "race"),
    # 5.15, 730633f0b7f9 + d4f5258eae7b: invalidate_lock closes it.
    ("punch-write-fault", "invalidate-lock", "safe"),
    # ext4 4.5, ea3d7209ca01: i_mmap_sem shared in faults, exclusive in punch.
    ("punch-write-fault", "ext4-i_mmap_sem", "safe"),
    # ...but not in read(2): e251f9bca99c (2014) describes read(2) refilling the cache; fixed
    # for reads only by invalidate_lock in 5.15.
    ("punch-read", "ext4-i_mmap_sem", "race"),
    ("punch-read", "invalidate-lock", "safe"),
    # Dave Chinner, 19 May 2012 <20120519014024.GZ25351@dastard>: truncate is safe through
    # i_size and the page lock rechecks...
    ("truncate-write-fault", "linux-2012", "safe"),
    # ...so without the recheck it is not.
    ("truncate-write-fault-norecheck", "linux-2012", "race"),
    # The thread's idea 1 as proposed holds the punching process's own mmap_sem: it keeps out
    # its threads, not other processes.
    ("punch-write-fault-thread", "mmap-sem", "safe"),
    ("punch-write-fault", "mmap-sem", "race"),
    # Chinner, 16 May 2012, on going page by page: "Doesn't work for regions with no pages in
    # memory over them."
    ("punch-no-cached-pages", "page-by-page", "race"),
    # XFS 4.1 added the lock to read faults too (de0e8c20ba3a "xfs: use i_mmaplock on read
    # faults"): the IO lock in page_mkwrite alone leaves the read fault open.
    ("punch-read-fault", "iolock-mkwrite", "race"),
    # XFS 653c60b633a9 "xfs: introduce mmap/truncate lock": page_mkwrite cannot take the
    # iolock "because that could result in lock inversions (read - iolock - page fault -
    # page_mkwrite - iolock)" -- with a writer queued on the iolock, a deadlock.
    ("read-into-own-mapping", "iolock-mkwrite", "deadlock"),
    # Chinner, 16 May 2012: "XFS has no protection either" -- faults take no lock in 3.4...
    ("punch-write-fault", "xfs-2012", "race"),
    # ...but xfs_file_aio_read takes the IO lock shared, which the punch holds exclusive.
    ("punch-read", "xfs-2012", "safe"),
    # XFS 4.1, 653c60b633a9 and 075a924d45cc: MMAPLOCK closes the write fault...
    ("punch-write-fault", "xfs-mmaplock", "safe"),
    # ...and de0e8c20ba3a the read fault.
    ("punch-read-fault", "xfs-mmaplock", "safe"),
    # Standalone readahead took no XFS lock until xfs_file_fadvise (2019); the 5.15 pull
    # names "hole punching races with operations such as readahead".
    ("punch-readahead", "xfs-mmaplock", "race"),
    ("punch-readahead", "invalidate-lock", "safe"),
    # Chinner's 19 May 2012 table, row 3, mmap vs direct IO: "non-existent"; 04197b341f23
    # (2017) turned XFS's BUG() on the delalloc mapping into a warning, not a lock.
    ("dio-write-fault", "invalidate-lock", "race"),
    # 32ebffd3bbb4 and ea3d7209ca01 (4.5): collapse/insert/zero range vs faults and
    # buffered I/O were open before, closed by i_mmap_sem (e8e9ad42c1f1 for XFS 4.1).
    ("collapse-read-fault", "linux-2012", "race"),
    ("insert-write-fault", "linux-2012", "race"),
    ("zero-range-write-fault", "linux-2012", "race"),
    ("collapse-read-fault", "ext4-i_mmap_sem", "safe"),
    ("collapse-write-fault", "linux-2012", "race"),
    ("collapse-write-fault", "ext4-i_mmap_sem", "safe"),
    ("insert-write-fault", "xfs-mmaplock", "safe"),
    # ../shared/reference/nfs-deallocate-race.md: nfs42_proc_deallocate sends DEALLOCATE
    # before truncate_pagecache_range and nfs_vm_page_mkwrite takes no lock; seen on Debian
    # 6.1, 6.12 and 7.2.13.
    ("punch-write-fault", "nfs-4.2", "race"),
    # docs/findings/nfs-clone-mmap.md: the same shape in nfs42_remap_file_range (flush,
    # CLONE, then truncate_inode_pages_range), found by fsrace stress on 6.1 over an xfs
    # export; the invalidate_lock fix covers it.
    ("clone-write-fault", "nfs-4.2", "race"),
    ("clone-write-fault", "nfs-invalidate-lock", "safe"),
    # docs/findings/nfs-truncate-mmap.md: nfs_setattr flushes, sends SETATTR, and only
    # then nfs_vmtruncate drops the pages; stale data past EOF on 6.1 and 7.2.13.
    ("truncate-write-fault", "nfs-4.2", "race"),
    ("truncate-write-fault", "nfs-invalidate-lock", "safe"),
    # docs/findings/nfs-deallocate-mmap.md: 7.x's nfs42_proc_zero_range has DEALLOCATE's
    # window (flush, ZERO_RANGE, then the page drop); generic/907 fails on 7.2.13 and
    # 7.3-rc7 and passes with the 7.2 patch. It needs a writeback in the window.
    ("zero-range-writeback", "nfs-4.2", "race"),
    ("zero-range-writeback", "nfs-invalidate-lock", "safe"),
    ("zero-range-write-fault", "nfs-4.2", "safe"),
    # docs/findings/f2fs-insert-mmap.md: f2fs_insert_range flushes before taking
    # invalidate_lock and drops it between the block exchange and the last flush, and its
    # exchange leaves copied pages cached over holes; found by fsrace stress on 6.1 and
    # 7.2.13. One lock section closes it.
    ("insert-write-fault", "f2fs", "race"),
    ("insert-write-fault", "f2fs-insert-locked", "safe"),
    # f2fs_collapse_range has the same two gaps and writes i_size after the lock; a
    # store lost during a collapse was seen once on 6.1 (docs/real-kernels.md).
    ("collapse-write-fault", "f2fs", "race"),
    ("collapse-write-fault", "f2fs-locked", "safe"),
    # docs/findings/smb-copy-mmap.md: cifs_file_copychunk_range drops the destination's
    # pages before the server copies, and cifs_page_mkwrite takes no lock; seen on 6.1,
    # 6.12 and 7.2.13. The invalidate_lock patch tried on 6.1 closed the reproducer's
    # window but fsrace stress still flagged it: cifs_page_mkwrite does not recheck
    # page->mapping, so a fault that waited out the copy maps the dropped page.
    ("copy-write-fault", "smb-6.1", "race"),
    ("copy-write-fault", "smb-invalidate-lock", "race"),
    ("copy-write-fault", "smb-mkwrite-recheck", "safe"),
    # docs/findings/smb-copy-mmap.md, "The same fault under punch and zero range": 6.1's
    # smb3_punch_hole and smb3_zero_range drop the range's pages under invalidate_lock,
    # which cifs_page_mkwrite does not take or recheck; a fault that found the page
    # before the drop maps the dropped page, and stores through it are lost (6.1.176 and
    # 6.1.192; the recheck patch ran clean there).
    ("punch-store-reread", "smb-6.1", "race"),
    ("punch-store-reread", "smb-mkwrite-recheck", "safe"),
    ("zero-range-store-reread", "smb-6.1", "race"),
    ("zero-range-store-reread", "smb-mkwrite-recheck", "safe"),
    # A read fault cannot refill the range: 6.1's filemap_fault takes invalidate_lock
    # shared on a miss, and the punch holds it exclusive.
    ("punch-read-fault", "smb-6.1", "safe"),
    # docs/findings/smb-truncate-mmap.md: cifs_setattr_nounix flushes, sends SET_INFO
    # EndOfFile, and only then cifs_setsize drops the pages, as nfs_setattr does; stale
    # data after a truncate and grow on 6.1; invalidate_lock over the resize closes it.
    ("truncate-write-fault", "smb-6.1", "race"),
    ("truncate-write-fault", "smb-mkwrite-recheck", "race"),
    ("truncate-write-fault", "smb-setattr-locked", "safe"),
    # docs/real-kernels.md, "Operations between two files": nfs42_proc_copy flushes, sends
    # COPY, then drops the destination's pages with invalidate_inode_pages2_range, whose
    # launder writes a page a store dirtied meanwhile back over the copy; seen on 6.1 and
    # 6.12.95. invalidate_lock across the copy, shared in nfs_vm_page_mkwrite, closes it.
    ("copy-write-fault", "nfs-4.2", "race"),
    ("copy-write-fault", "nfs-invalidate-lock", "safe"),
    # docs/findings/ocfs2-reflink-mmap.md: ocfs2_remap_file_range flushes before it takes
    # ip_alloc_sem, the only lock ocfs2_page_mkwrite shares with it; a store to the source
    # in between copies its shared cluster on write, and the remap shares the copy, not
    # yet written. Seen on 6.1, 6.12 and 7.2.13; invalidate_lock across the remap, tried
    # on 6.1, closed it there.
    ("clone-source-write-fault", "ocfs2-6.1", "race"),
    ("clone-source-write-fault", "ocfs2-invalidate-lock", "safe"),
    # docs/findings/fuse-writeback-mmap.md: with the writeback cache, fuse_file_fallocate
    # writes back, sends FUSE_FALLOCATE and only then truncates the page cache, and
    # __fuse_copy_file_range likewise around FUSE_COPY_FILE_RANGE; fuse_page_mkwrite
    # takes no lock, so a page dirtied meanwhile and written back puts its old data back
    # after the server's punch, zero or copy (6.1 to 7.3, and the host's 6.18).
    # invalidate_lock across them, shared in fuse_page_mkwrite, closes it in the model.
    ("punch-write-fault", "fuse-wb", "race"),
    ("punch-write-fault", "fuse-invalidate-lock", "safe"),
    ("zero-range-writeback", "fuse-wb", "race"),
    ("zero-range-writeback", "fuse-invalidate-lock", "safe"),
    ("copy-write-fault", "fuse-wb", "race"),
    ("copy-write-fault", "fuse-invalidate-lock", "safe"),
    # fuse_do_setattr holds the FUSE_WRITEs back across FUSE_SETATTR and trims them to the
    # new size: a page stored to after the server truncated never lands past its end.
    ("truncate-write-fault", "fuse-wb", "safe"),
    # docs/findings/btrfs-clone-stale-page.md: a read beside a clone's destination caches a
    # map of the whole extent item it found, found before the clone replaced the item and
    # cached after the clone dropped the cached maps (6.1.192 to 7.3-rc7); caching no more
    # than the range asked for made the reproducer clean on 7.3-rc7.
    ("clone-beside-read-fault", "btrfs-6.1", "race"),
    ("clone-beside-read-fault", "btrfs-em-clamped", "safe"),
    ("clone-beside-read-fault", "xfs-5.15", "safe"),
]


@pytest.mark.parametrize("scenario,protocol,verdict", HISTORY,
                         ids=[f"{s}-{p}" for s, p, _ in HISTORY])
def test_verdicts_that_kernel_history_establishes(scenario, protocol, verdict):
    res = check(scenario, protocol, shrink_budget_s=0)
    assert res.search.verdict == verdict, res.counterexample and res.counterexample.failure


VERDICTS_MD = pathlib.Path(__file__).parent.parent / "docs" / "verdicts.md"
STALE = ("docs/verdicts.md is stale: regenerate it with "
         "`fsrace --no-plugins matrix --markdown > docs/verdicts.md`")


def _parts(text: str):
    """The committed file cut into the parts `assemble` puts together."""
    lines = text.splitlines()
    rows = [ln for ln in lines if ln.startswith("| `") and ln.count("|") > 5]
    cost_at = lines.index("## Cost of each protocol")
    why_at = lines.index("## Why, cell by cell")
    cost_rows = [ln for ln in lines[cost_at:why_at] if ln.startswith("| `")]
    executions = int(next(ln for ln in lines[cost_at:why_at] if "random walk of" in ln)
                     .split("random walk of ")[1].split()[0])
    max_exec = int(next(ln for ln in lines if "executions; a cell left open" in ln).split()[0])
    sections, cur = [], None
    for ln in lines[why_at + 2:]:
        if ln.startswith("### "):
            cur = []
            sections.append(cur)
        cur.append(ln)
    if sections and sections[-1][-1] != "":
        sections[-1].append("")  # the file's end lost the last section's blank line
    return max_exec, rows, executions, cost_rows, sections


def test_docs_verdicts_md_is_exactly_one_row_and_one_section_per_scenario():
    """With the slow tests below checking each part against a fresh search, this makes the
    committed file equal to what `fsrace --no-plugins matrix --markdown` prints."""
    from fsrace.protocols import PROTOCOLS
    from fsrace.report.matrix_report import assemble
    from fsrace.scenarios import SCENARIOS

    text = VERDICTS_MD.read_text()
    max_exec, rows, executions, cost_rows, sections = _parts(text)
    assert assemble(max_exec, list(PROTOCOLS), rows, executions, cost_rows, sections) == text
    assert [r.split("`")[1] for r in rows] == list(SCENARIOS), STALE
    assert [s[0].split("`")[1] for s in sections] == list(SCENARIOS), STALE
    from fsrace.matrix import COST_SCENARIO
    from fsrace.run import not_modelled

    punching = [p for p in PROTOCOLS if not_modelled(COST_SCENARIO, p) is None]
    assert [r.split("`")[1] for r in cost_rows] == punching, STALE


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_docs_verdicts_md_row_and_reasons_are_what_the_tool_finds(scenario):
    from fsrace.matrix import run_matrix
    from fsrace.report.matrix_report import table_row, why_section

    m = run_matrix(scenarios=[scenario], costs=False)
    max_exec, rows, _, _, sections = _parts(VERDICTS_MD.read_text())
    assert max_exec == m.max_executions
    assert table_row(m, scenario) in rows, STALE
    assert why_section(m, scenario) in sections, STALE


@pytest.mark.slow
def test_docs_verdicts_md_costs_are_what_the_tool_measures():
    from fsrace.matrix import run_matrix
    from fsrace.report.matrix_report import cost_row

    m = run_matrix(scenarios=[])
    _, _, executions, cost_rows, _ = _parts(VERDICTS_MD.read_text())
    assert executions == next(iter(m.costs.values())).executions
    assert [cost_row(p, c) for p, c in m.costs.items()] == cost_rows, STALE


VERDICTS_2X2_MD = VERDICTS_MD.parent / "verdicts-2x2.md"
STALE_2X2 = ("docs/verdicts-2x2.md is stale: regenerate it with `fsrace --no-plugins matrix "
             "--pages 2 --writers 2 --max-executions 2000 --markdown > docs/verdicts-2x2.md`")


def test_docs_verdicts_2x2_md_is_one_row_and_one_section_per_scenario_at_2x2():
    from fsrace.protocols import PROTOCOLS
    from fsrace.report.matrix_report import assemble
    from fsrace.scenarios import Params

    text = VERDICTS_2X2_MD.read_text()
    max_exec, rows, executions, cost_rows, sections = _parts(text)
    assert assemble(max_exec, list(PROTOCOLS), rows, executions, cost_rows, sections,
                    params=Params(pages=2, writers=2)) == text, STALE_2X2
    assert [r.split("`")[1] for r in rows] == list(SCENARIOS), STALE_2X2
    # Where the model lacks an operation it lacks it at every scope.
    one = {r.split("`")[1]: r for r in _parts(VERDICTS_MD.read_text())[1]}
    for row in rows:
        words = [c.strip() for c in row.split("|")[2:-1]]
        ones = [c.strip() for c in one[row.split("`")[1]].split("|")[2:-1]]
        assert [w == "n/a" for w in words] == [w == "n/a" for w in ones]


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["writeback-store", "read-into-own-mapping",
                                      "write-from-own-mapping", "collapse-read-fault"])
def test_docs_verdicts_2x2_md_rows_are_what_the_tool_finds(scenario):
    # The rows quick to search at 2x2 (the whole table takes about 5.5 minutes on two cores),
    # with collapse-read-fault, where f2fs's collapse races only from two pages on.
    from fsrace.matrix import run_matrix
    from fsrace.report.matrix_report import table_row, why_section
    from fsrace.scenarios import Params

    max_exec, rows, _, _, sections = _parts(VERDICTS_2X2_MD.read_text())
    m = run_matrix(max_exec, scenarios=[scenario], costs=False,
                   params=Params(pages=2, writers=2))
    assert table_row(m, scenario) in rows, STALE_2X2
    assert why_section(m, scenario) in sections, STALE_2X2


def test_cells_searched_side_by_side_give_the_same_table():
    from fsrace.matrix import run_matrix
    from fsrace.report.matrix_report import table_row, why_section

    one = run_matrix(scenarios=["punch-read", "writeback-store"], costs=False)
    two = run_matrix(scenarios=["punch-read", "writeback-store"], costs=False, jobs=2)
    assert list(one.cells) == list(two.cells)
    for scen in ("punch-read", "writeback-store"):
        assert table_row(one, scen) == table_row(two, scen)
        assert why_section(one, scen) == why_section(two, scen)


def test_a_matrix_of_protocols_that_do_not_punch_has_an_empty_cost_table():
    from fsrace.matrix import run_matrix
    from fsrace.report.matrix_report import markdown

    m = run_matrix(scenarios=["writeback-store"], protocols=["9p-6.1"])
    assert m.costs == {}  # 9p refuses the punch the costs are measured on
    text = markdown(m)
    assert "| `writeback-store` | safe |" in text
    assert "random walk of 200 executions:" in " ".join(text.split())  # the walk asked
    cost_table = text.split("## Cost of each protocol")[1].split("## Why")[0]
    assert "| `9p-6.1` |" not in cost_table
