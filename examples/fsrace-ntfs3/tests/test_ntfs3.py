"""ntfs3's locking checked with fsrace: the shipped protocol loses stores, the fix does
not. Each assertion runs a search; assert_safe holds only for a complete one."""

import pytest
from fsrace_ntfs3.protocols import Ntfs3, Ntfs3MkwriteLock

from fsrace.testing import assert_races, assert_safe

# The operations that drop every page from their offset to EOF, and the scenario whose
# store lands on such a page.
LOSES_STORES = ["collapse-write-fault", "insert-write-fault", "read-into-own-mapping"]


@pytest.mark.parametrize("scenario", LOSES_STORES)
def test_ntfs3_as_shipped_loses_a_store_through_the_mapping(scenario):
    record = assert_races(scenario, Ntfs3, invariant="file-contents")
    trace = record["violation"]["execution"]["trace"]
    # A store through the mapping lands on a page, and the operation then drops that page.
    stored = {(e["task"], e["note"].split(" to page ")[1].split()[0]): e["step"]
              for e in trace if e["note"].startswith("stored ")}
    dropped = [(e["task"], e["label"][len("truncate_inode_page("):-1], e["step"])
               for e in trace if e["label"].startswith("truncate_inode_page(")]
    assert any(task != dropper and page == p and step < at
               for (task, page), step in stored.items() for dropper, p, at in dropped)


@pytest.mark.parametrize("scenario", LOSES_STORES)
@pytest.mark.parametrize("scope", [(1, 1), (2, 2)])
def test_invalidate_lock_in_page_mkwrite_keeps_every_store(scenario, scope):
    pages, writers = scope
    record = assert_safe(scenario, Ntfs3MkwriteLock, pages=pages, writers=writers)
    assert record["complete"] and record["states"] > 0


@pytest.mark.parametrize("scenario", ["punch-write-fault", "punch-read-fault",
                                      "truncate-write-fault", "collapse-read-fault"])
def test_both_keep_faults_out_of_the_cache_while_blocks_move(scenario):
    for protocol in (Ntfs3, Ntfs3MkwriteLock):
        assert_safe(scenario, protocol)
