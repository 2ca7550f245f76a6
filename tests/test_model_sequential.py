"""The model agrees with the abstract file when tasks run one at a time, whole."""

import itertools

import pytest

from fsrace.checks.spec import run_in_order
from fsrace.explore.engine import DONE, run_execution
from fsrace.explore.shrink import lenient_chooser
from fsrace.protocols import PROTOCOLS
from fsrace.run import UsageError, check, not_modelled
from fsrace.scenarios import SCENARIOS, Params, build_program

CASES = [
    (s, p, params)
    for s in SCENARIOS
    for p in PROTOCOLS
    if not not_modelled(s, p)
    for params in (Params(), Params(blocks_per_page=2), Params(pages=2, writers=2))
]


def test_a_scenario_needing_what_a_file_system_model_lacks_is_refused_by_name():
    with pytest.raises(UsageError, match="direct I/O"):
        check("dio-write-fault", "nfs-4.2")
    assert not_modelled("punch-write-fault", "nfs-4.2") is None


def _task_order_chooser(order):
    """Run the tasks in `order`, each to completion (the END task last)."""
    def choose(ex, enabled):
        for t in order:
            if t in enabled:
                return t
        return enabled[0]
    return choose


@pytest.mark.parametrize("scenario,protocol,params", CASES,
                         ids=[f"{s}-{p}-{pa.pages}p{pa.writers}w{pa.blocks_per_page}b"
                              for s, p, pa in CASES])
def test_sequential_runs_match_the_abstract_file(scenario, protocol, params):
    scen = SCENARIOS[scenario]
    n = len(build_program(scen, PROTOCOLS[protocol], params).tasks) - 1  # without END
    for order in itertools.permutations(range(n)):
        program = build_program(scen, PROTOCOLS[protocol], params)
        rec = run_execution(program, _task_order_chooser(order), 10_000)
        assert rec.outcome == DONE, (order, rec.failure)
        specs = program.extra["specs"]
        user = [t for t in order if specs[t].thread is None]
        want = run_in_order(scen.initial_files(params), [s.ops for s in specs], user)
        assert program.extra["final"] == want.files, order
        assert program.extra["observed"] == want.observed, order


def test_lenient_replay_of_nothing_runs_tasks_in_order():
    program = build_program(SCENARIOS["punch-write-fault"], PROTOCOLS["linux-2012"], Params())
    rec = run_execution(program, lenient_chooser(()), 10_000)
    assert rec.outcome == DONE and rec.preemptions == 0


@pytest.mark.parametrize("protocol,blocks_per_page", [("linux-2012", 1), ("linux-2012", 2),
                                                      ("nfs-4.2", 1)])
def test_a_page_read_past_eof_is_zero_filled_not_read_from_its_old_blocks(protocol,
                                                                          blocks_per_page):
    """A truncate lowers i_size before it frees the blocks; a page added past the new end
    in between (a fault's retry_find) must read zeros, as do_mpage_readpage,
    block_read_full_page and nfs_readpage clamp to i_size, not the blocks being freed."""
    from fsrace.kernel.kernel import Kernel
    from fsrace.kernel.structs import PAGE_SIZE, Current

    k = Kernel(PROTOCOLS[protocol](), nblocks=8, blocks_per_page=blocks_per_page)
    a = k.create_file("A", ["a0"] * PAGE_SIZE + ["a1"] * PAGE_SIZE)
    a.i_size = PAGE_SIZE  # truncate_setsize ran; the blocks of page 1 are still mapped
    page = k.new_page(a, 1)
    page.data[:] = ["junk"] * PAGE_SIZE
    page.locked_by = "T"
    for _ in k.fs.aops.readpage(Current("T", None), k, a, page):
        pass
    assert page.uptodate and page.locked_by is None
    assert page.data == [0] * PAGE_SIZE
