"""--direct-reads: the remover reads with O_DIRECT where it would pread (past a network
client's page cache: what its server holds), at the same points of the same streams, and
the choice is kept with the run."""

import itertools
import os

import pytest

from fsrace.stress.ops import op_stream
from fsrace.stress.report import stress_dict, stress_report
from fsrace.stress.run import StressConfig, run_stress


def _ops(direct, worker, scenario="truncate-write-fault", n=400):
    return list(itertools.islice(
        op_stream(7, worker, scenario, 4, direct_reads=direct), n))


@pytest.mark.parametrize("scenario", ["truncate-write-fault", "punch-read", "copy-write-fault"])
def test_the_removers_preads_become_direct_reads_and_nothing_else_changes(scenario):
    plain, direct = _ops(False, 0, scenario), _ops(True, 0, scenario)
    assert any(o.kind == "pread" for o in plain)
    assert not any(o.kind == "pread" for o in direct)
    for a, b in zip(plain, direct, strict=True):
        assert b == (a if a.kind != "pread" else a.__class__("dio_read", a.page, a.slot,
                                                            a.npages, a.size, a.src))
    # The faulters' preads (the accesses a read class counts) stay preads.
    assert _ops(True, 1, scenario) == _ops(False, 1, scenario)


def test_the_flag_needs_a_race_class():
    # (kept with the run: test_stress_flusher.py)
    with pytest.raises(ValueError, match="--mix draws direct reads already"):
        StressConfig("/tmp", None, ops=10, direct_reads=True)


@pytest.mark.realfs
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_a_run_with_direct_reads_on_ext4_reads_past_the_cache_and_says_so():
    res = run_stress(StressConfig("ext4", "truncate-write-fault", ops=600, pages=4,
                                  direct_reads=True))
    assert res.by_kind["dio_read"] > 0 and not res.by_kind["pread"]
    assert res.violations == [], "\n".join(res.violations)
    assert "the remover's reads with O_DIRECT (--direct-reads)" in stress_report(res)
    assert stress_dict(res, "x.json.gz")["direct_reads"] is True


def test_a_page_read_directly_beside_mapped_stores_carries_the_note():
    """A client whose direct reads miss a completed mapped store (NFS's): the violation
    says so, and only in a run with --direct-reads."""
    from fsrace.stress.ops import INIT_WORKER, SLOT, SLOTS, Op, stamp
    from fsrace.stress.run import DIRECT_READS_NOTE, Executed, StressResult, _check

    first = stamp(INIT_WORKER, 0)

    def page_of(slot0):
        return b"".join((slot0 if s == 0 else first).to_bytes(SLOT, "little")
                        for s in range(SLOTS))

    store = Executed(1, 0, Op("store", 0, 0), 10, 11, 0)
    # A direct read after the store returned reads slot 0's first value; the final
    # read has the store.
    stale = Executed(0, 0, Op("dio_read", 0, 0), 20, 21, 0, page_of(first))
    for direct_reads in (True, False):
        res = StressResult(StressConfig("tmpfs", "truncate-write-fault", ops=10, pages=1,
                                        direct_reads=direct_reads))
        res.history = [store, stale]
        _check(res, [("final read", 100, page_of(stamp(1, 0)))], 0)
        assert len(res.violations) == 1 and "page 0 slot 0" in res.violations[0]
        assert (DIRECT_READS_NOTE in res.violations[0]) == direct_reads
