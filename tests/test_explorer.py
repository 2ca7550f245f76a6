"""The explorer tested against itself and against programs with known trace counts."""

import math

import pytest

import toy
from fsrace.explore.dpor import DPOR
from fsrace.explore.engine import DEADLOCK, run_execution
from fsrace.explore.exhaustive import Exhaustive
from fsrace.explore.random_walk import RandomWalk
from fsrace.explore.search import Limits, search
from fsrace.explore.step import Program, Task
from fsrace.kernel.locking import mutex_lock, mutex_unlock
from fsrace.kernel.structs import Current, Mutex

KNOWN = [
    ("readers(3)", lambda: toy.readers(3), 2 ** 3),
    ("readers(4)", lambda: toy.readers(4), 2 ** 4),
    ("lastwrite(3)", lambda: toy.lastwrite(3), math.factorial(3)),
    ("lastwrite(4)", lambda: toy.lastwrite(4), math.factorial(4)),
    ("two writers of a then b", toy.two_writers, 4),
    ("locked counter(3)", lambda: toy.locked_counter(3), math.factorial(3)),
]


@pytest.mark.parametrize("name,build,traces", KNOWN, ids=[k[0] for k in KNOWN])
def test_dpor_runs_each_known_trace_exactly_once(name, build, traces):
    res = search(build, DPOR())
    assert res.complete and res.verdict == "safe"
    assert res.traces == traces
    assert res.executions == traces and res.blocked == 0


@pytest.mark.parametrize("name,build,traces", KNOWN, ids=[k[0] for k in KNOWN])
def test_naive_exhaustive_finds_the_same_traces_as_dpor(name, build, traces):
    naive = search(build, Exhaustive(), stop_on_failure=False)
    dpor = search(build, DPOR(), stop_on_failure=False)
    assert naive.fingerprints == dpor.fingerprints
    assert len(naive.fingerprints) == traces


def _agree_on_random_programs(shape, seeds, kernel_locks=False):
    """dscheck-style self-test: random programs of data accesses, mutex and rwsem sections
    and waits; DPOR must find exactly the naive search's traces, each once, never blocked,
    and the same deadlocks."""
    for seed in seeds:
        b = lambda: toy.random_program(seed, *shape, kernel_locks=kernel_locks)  # noqa: B023
        naive = search(b, Exhaustive(), stop_on_failure=False)
        strat = DPOR()
        dpor = search(b, strat, stop_on_failure=False)
        assert dpor.fingerprints == naive.fingerprints, (shape, seed)
        assert (naive.counterexample is None) == (dpor.counterexample is None), (shape, seed)
        if not strat.fallbacks:  # optimal unless a reversal had to fall back
            assert dpor.executions == dpor.traces and dpor.blocked == 0, (shape, seed)


@pytest.mark.parametrize("shape,seeds", [((2, 5, 2, 1), 40), ((3, 3, 1, 2), 30),
                                         ((4, 2, 2, 1), 15)])
def test_dpor_matches_naive_search_on_random_programs(shape, seeds):
    _agree_on_random_programs(shape, range(seeds))


@pytest.mark.parametrize("shape,seeds", [
    ((2, 6, 2, 1), 30), ((3, 3, 1, 1), 15),
    pytest.param((3, 4, 1, 1), 40, marks=pytest.mark.slow),
    pytest.param((3, 4, 2, 2), 25, marks=pytest.mark.slow)])
def test_dpor_matches_naive_search_with_fair_rwsems_and_trylocks(shape, seeds):
    _agree_on_random_programs(shape, range(seeds), kernel_locks=True)


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(3, 4, 2, 2), (2, 7, 3, 2), (3, 4, 2, 1)])
def test_dpor_matches_naive_search_on_larger_random_programs(shape):
    _agree_on_random_programs(shape, range(100, 130))


def test_dpor_and_naive_agree_on_a_model_scenario(build):
    b = build("writeback-store", "linux-2012")
    naive = search(b, Exhaustive(), stop_on_failure=False)
    dpor = search(b, DPOR(), stop_on_failure=False)
    assert naive.complete and dpor.complete
    assert naive.fingerprints == dpor.fingerprints
    assert dpor.executions == dpor.traces and dpor.blocked == 0
    assert naive.executions > dpor.executions  # the reduction is real


def _deadlock_program():
    a, b = Mutex("lock_a"), Mutex("lock_b")

    def body(comm, first, second):
        cur = Current(comm, None)
        yield from mutex_lock(cur, first)
        yield from mutex_lock(cur, second)
        yield from mutex_unlock(cur, second)
        yield from mutex_unlock(cur, first)

    return Program([Task("T0", body("T0", a, b)), Task("T1", body("T1", b, a))])


def test_a_lock_cycle_is_reported_as_deadlock_with_the_locks_involved():
    res = search(_deadlock_program, DPOR())
    assert res.verdict == "deadlock"
    waiting = res.counterexample.waiting
    assert set(waiting) == {"T0", "T1"}
    assert "lock_b held by T1" in waiting["T0"]
    assert "lock_a held by T0" in waiting["T1"]


def test_naive_search_finds_the_same_deadlock():
    assert search(_deadlock_program, Exhaustive()).verdict == "deadlock"


def test_a_search_cut_at_the_step_bound_is_unknown_not_safe():
    res = search(lambda: toy.locked_counter(3), DPOR(), Limits(max_steps=4))
    assert res.bounded > 0
    assert not res.complete
    assert res.verdict == "unknown"


def test_random_search_never_claims_safety():
    res = search(lambda: toy.lastwrite(3), RandomWalk(seed=1, executions=50))
    assert res.executions == 50 and not res.complete and res.verdict == "unknown"


def test_random_search_is_reproducible_from_its_seed(build):
    b = build("punch-write-fault", "linux-2012")
    first = search(b, RandomWalk(seed=7, executions=300))
    again = search(b, RandomWalk(seed=7, executions=300))
    assert first.counterexample is not None
    assert first.counterexample.schedule == again.counterexample.schedule


def test_a_deadlock_record_lists_each_blocked_task():
    from fsrace.explore.engine import replay_chooser
    from fsrace.explore.schedule import Schedule

    rec = run_execution(_deadlock_program(), replay_chooser(Schedule.parse("0,1")), 10)
    assert rec.outcome == DEADLOCK and len(rec.waiting) == 2


def test_pct_finds_the_seed_race_and_is_reproducible(build):
    from fsrace.explore.pct import PCT

    b = build("punch-write-fault", "linux-2012")
    first = search(b, PCT(seed=3, depth=3, executions=200))
    again = search(b, PCT(seed=3, depth=3, executions=200))
    assert first.verdict == "race"
    assert first.counterexample.schedule == again.counterexample.schedule


def test_preemption_bounding_covers_every_interleaving_when_the_bound_suffices():
    from fsrace.explore.bounded import PreemptionBounded

    naive = search(toy.two_writers, Exhaustive(), stop_on_failure=False)
    bounded = search(toy.two_writers, PreemptionBounded(max_bound=5), stop_on_failure=False)
    assert bounded.complete
    assert bounded.fingerprints == naive.fingerprints


def test_preemption_bounding_says_which_bound_it_reached(build):
    from fsrace.explore.bounded import PreemptionBounded

    strat = PreemptionBounded(max_bound=1)
    res = search(build("punch-read", "invalidate-lock"), strat, stop_on_failure=False)
    assert not res.complete and res.verdict == "unknown"
    assert "at most 1 preemptions" in res.coverage


def test_zero_preemptions_run_tasks_one_after_another():
    from fsrace.explore.bounded import PreemptionBounded

    res = search(lambda: toy.lastwrite(3), PreemptionBounded(max_bound=0),
                 stop_on_failure=False)
    assert res.traces == 6  # the three tasks in every order, none interrupted


def test_portfolio_stops_at_the_first_race_and_names_who_found_it(build):
    from fsrace.explore.pct import PCT
    from fsrace.explore.portfolio import Portfolio

    strat = Portfolio([DPOR(), PCT(seed=0, executions=100), RandomWalk(seed=0, executions=100)])
    res = search(build("punch-write-fault", "linux-2012"), strat)
    assert res.verdict == "race" and res.found_by in ("dpor", "pct", "random")


def test_portfolio_is_complete_when_its_dpor_member_is(build):
    from fsrace.explore.portfolio import Portfolio

    strat = Portfolio([DPOR(), RandomWalk(seed=0, executions=5)])
    res = search(build("punch-read", "invalidate-lock"), strat)
    assert res.verdict == "safe" and res.complete


def _spin_until_clear(state):
    """A task that retries until state["busy"] is clear."""
    from fsrace.explore.step import READ, Step, touches

    while True:
        st = Step("try", (touches("flag", READ),))
        yield st
        if not state["busy"]:
            return
        st.retry = True


def _spinner_program():
    """T1 holds a flag for a while; T0 retries until it sees it clear."""
    from fsrace.explore.step import WRITE, Step, touches

    state = {"busy": True}

    def t1():
        for _ in range(30):
            yield Step("work", (touches("other", WRITE),))
        yield Step("clear flag", (touches("flag", WRITE),))
        state["busy"] = False

    return Program([Task("T0", _spin_until_clear(state)), Task("T1", t1())])


def test_a_task_retrying_past_the_bound_is_reported_as_starvation():
    res = search(_spinner_program, RandomWalk(seed=1, executions=50), Limits(max_retries=5))
    assert res.verdict == "starvation"
    assert "T0 started over" in res.counterexample.starved


SPIN_FIRST_SEED = 1  # its first execution starves


def test_retries_while_another_task_is_passed_over_are_not_starvation():
    # T0 spins while T1, which would clear the flag, could run but is never scheduled:
    # the scheduler's doing. The execution is cut at the bound, not reported.
    from fsrace.explore.engine import BOUNDED, STARVATION, run_execution

    def only_t0(ex, enabled):
        return 0 if 0 in enabled else enabled[0]

    rec = run_execution(_spinner_program(), only_t0, 500, max_retries=5)
    assert rec.outcome == BOUNDED
    # Interleaved with T1's work, T0 retrying past the bound is reported.
    rec = run_execution(_spinner_program(), lambda ex, en: len(ex.events) % 2 if
                        len(ex.events) % 2 in en else en[0], 500, max_retries=5)
    assert rec.outcome == STARVATION and "T0 started over 6 times" in rec.starved


def test_a_starving_execution_does_not_end_the_search_before_a_violation():
    """A spin the scheduler never lets end is reported only if nothing worse is found:
    T0 spins until T1 clears the flag, and T1 breaks a check when T2 wrote y first."""
    from fsrace.explore.step import READ, WRITE, Failure, Step, touches

    def build():
        state = {"busy": True, "y": False}
        broken = []

        def t1():
            for _ in range(4):  # T0 may retry while T1 works: every round lets both run
                yield Step("work", (touches("other", WRITE),))
            st = Step("read y, clear flag", (touches("y", READ), touches("flag", WRITE)))
            yield st
            state["busy"] = False
            if state["y"]:
                broken.append(1)

        def t2():
            yield Step("write y", (touches("y", WRITE),))
            state["y"] = True

        return Program([Task("T0", _spin_until_clear(state)), Task("T1", t1()),
                        Task("T2", t2())],
                       check_step=lambda step: Failure("y-first", "", "T2 ran first")
                       if broken else None)

    starved = []
    res = search(build, RandomWalk(seed=SPIN_FIRST_SEED, executions=200), Limits(max_retries=2),
                 observe=lambda rec: starved.append(rec.outcome == "starvation"))
    assert starved[0], "the seed no longer starves first: pick another"
    assert res.verdict == "race", res.counterexample and res.counterexample.outcome
    assert res.counterexample.failure.name == "y-first"
    only_spin = search(_spinner_program, RandomWalk(seed=1, executions=50), Limits(max_retries=5))
    assert only_spin.verdict == "starvation" and only_spin.executions == 50


def test_an_interrupted_search_reports_partial_coverage_not_safety():
    import fsrace.explore.search as search_mod

    calls = []

    def progress(res):  # Ctrl-C arrives while the search reports progress
        calls.append(res.executions)
        raise KeyboardInterrupt

    old = search_mod.time.monotonic
    ticks = iter(range(0, 10_000))
    search_mod.time.monotonic = lambda: next(ticks)  # every execution looks 1 s apart
    try:
        res = search(lambda: toy.lastwrite(5), DPOR(), progress=progress)
    finally:
        search_mod.time.monotonic = old
    assert calls and res.stopped_by == "interrupted"
    assert not res.complete and res.verdict == "unknown"
    assert 0 < res.executions < 120


def test_a_search_collects_garbage_less_often_and_restores_the_thresholds():
    import gc

    from fsrace.explore.search import _SEARCH_GC_THRESHOLDS

    before = gc.get_threshold()
    during = []
    res = search(lambda: toy.lastwrite(3), DPOR(),
                 observe=lambda rec: during.append(gc.get_threshold()))
    assert res.complete and during and set(during) == {_SEARCH_GC_THRESHOLDS}
    assert gc.get_threshold() == before

    def interrupt(rec):
        raise KeyboardInterrupt

    res = search(lambda: toy.lastwrite(3), DPOR(), observe=interrupt)
    assert res.stopped_by == "interrupted" and gc.get_threshold() == before


def test_verdicts_and_outcomes_are_enums_that_print_as_their_values():
    import json

    from fsrace.explore.engine import Outcome
    from fsrace.explore.search import Verdict

    res = search(lambda: toy.lastwrite(3), DPOR())
    assert res.verdict is Verdict.SAFE and f"{res.verdict}" == "safe"
    rec = run_execution(toy.lastwrite(2), lambda ex, enabled: enabled[0], 100)
    assert rec.outcome is Outcome.DONE
    assert json.loads(json.dumps({"verdict": res.verdict, "outcome": rec.outcome})) == \
        {"verdict": "safe", "outcome": "done"}


def test_replay_is_a_strategy_of_one_execution_that_never_says_safe():
    from fsrace.explore.replay import Replay
    from fsrace.explore.schedule import Schedule

    schedule = Schedule((1, 0))
    strat = Replay(schedule)
    res = search(lambda: toy.lastwrite(2), strat)
    assert res.executions == 1 and strat.record is not None
    assert tuple(strat.record.schedule.choices) == (1, 0)
    assert res.verdict == "unknown" and not res.complete
    assert res.coverage == "the one schedule given"
    assert strat.next_execution() is None
