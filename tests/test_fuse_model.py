"""The model's FUSE client's truncate (fsrace.kernel.fuse, fuse_do_setattr): the writes
held back across FUSE_SETATTR and trimmed to the new size keep a store dirtied after the
server truncated from reaching past its new end; without the trim, the same search finds
it doing so."""

from fsrace.kernel import fuse
from fsrace.kernel.server import server_write
from fsrace.run import check


def test_the_truncate_is_safe_by_a_complete_search_under_each_fuse_protocol():
    for protocol in ("fuse-wb", "fuse-invalidate-lock"):
        res = check("truncate-write-fault", protocol, shrink_budget_s=0)
        assert res.search.complete and res.search.verdict == "safe", protocol


def test_writes_not_trimmed_to_the_new_size_put_the_cut_off_data_back(monkeypatch):
    def untrimmed(cur, k, inode, page):
        yield from fuse.down_read(cur, inode.fuse_nowrite)
        yield from server_write(cur, k, inode, page, "FUSE_WRITE, untrimmed", "FUSE_WRITE")
        yield from fuse.up_read(cur, inode.fuse_nowrite)

    monkeypatch.setattr(fuse, "fuse_server_write", untrimmed)
    res = check("truncate-write-fault", "fuse-wb", shrink_budget_s=0)
    assert res.search.verdict == "race"
    labels = [e.step.label for e in res.counterexample.events]
    assert "fuse_do_setattr: FUSE_SETATTR(size), the server's ftruncate" in labels
    assert labels.index("fuse_do_setattr: FUSE_SETATTR(size), the server's ftruncate") \
        < labels.index("FUSE_WRITE, untrimmed")
