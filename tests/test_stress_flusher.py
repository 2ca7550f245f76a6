"""--flusher: the faulters start writeback with sync_file_range where they would msync,
at the same points of the same streams, and the choice is kept with the run (as
--direct-reads' is)."""

import itertools

import pytest

from fsrace.stress.ops import MIX, op_stream
from fsrace.stress.run import StressConfig


def _ops(flusher, worker, scenario="punch-write-fault", n=400):
    return list(itertools.islice(op_stream(7, worker, scenario, 16, flusher=flusher), n))


@pytest.mark.parametrize("scenario", ["punch-write-fault", "copy-write-fault", None])
def test_a_faulters_msyncs_become_writebacks_and_nothing_else_changes(scenario):
    plain, flushed = _ops(False, 1, scenario), _ops(True, 1, scenario)
    assert len(plain) == len(flushed)
    if scenario is not None:
        assert any(o.kind == "msync" for o in plain)
        assert not any(o.kind == "msync" for o in flushed)
    for a, b in zip(plain, flushed, strict=True):
        assert b == (a if a.kind != "msync" else a.__class__("writeback", a.page, a.slot,
                                                             a.npages, a.size, a.src))


def test_the_remover_and_the_mix_without_the_flag_draw_what_they_drew():
    assert _ops(True, 0) == _ops(False, 0)  # the remover's fsync stays an fsync
    assert "writeback" not in MIX  # a saved mix replays


@pytest.mark.parametrize("flag", ["flusher", "direct_reads"])
def test_the_flag_is_in_the_config_a_saved_run_keeps(flag):
    from dataclasses import asdict

    cfg = StressConfig("/tmp", "punch-write-fault", ops=10, **{flag: True})
    assert getattr(StressConfig(**asdict(cfg)), flag)
    doc = asdict(cfg)
    del doc[flag]  # a run saved before the flag existed
    assert not getattr(StressConfig(**doc), flag)
