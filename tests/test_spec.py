"""The abstract file: the meaning of the operations, independent of the model."""

from fsrace.checks.spec import SIGBUS, apply, check_per_page, interleavings, sequential_outcomes
from fsrace.scenarios.ops import Clone, Insert, Load, Punch, Read, Store, Truncate, Write


def test_punch_zeroes_within_eof_only():
    files = {"A": [1, 2, 3, 4, 5, 6]}
    apply(files, Punch("A", 2, 10))
    assert files["A"] == [1, 2, 0, 0, 0, 0]


def test_store_beyond_the_last_page_is_sigbus():
    files = {"A": [1, 2, 3, 4]}
    assert apply(files, Store("A", 4, "x")) == SIGBUS
    assert apply(files, Load("A", 5)) == SIGBUS
    assert apply(files, Store("A", 1, "x")) == "ok" and files["A"][1] == "x"


def test_truncate_and_extending_write_change_the_size():
    files = {"A": [1, 2, 3, 4]}
    apply(files, Truncate("A", 2))
    assert files["A"] == [1, 2]
    apply(files, Write("A", 5, ("w",)))
    assert files["A"] == [1, 2, 0, 0, 0, "w"]
    assert apply(files, Read("A", 4, 8)) == (0, "w")


def test_clone_copies_the_source_range_over_the_destination():
    files = {"A": ["a0", "a0", "a1", "a1"]}
    assert apply(files, Clone("A", 2, 0, 2)) is None
    assert files["A"] == ["a1", "a1", "a1", "a1"]
    assert apply(files, Clone("A", 3, 0, 2)) == "-EINVAL"  # the source runs past EOF
    outs = sequential_outcomes({"A": ["a0", "a1"]}, [[Clone("A", 1, 0, 1)],
                                                     [Store("A", 0, "x")]])
    assert {tuple(o.files["A"]) for o in outs} == {("x", "a1"), ("a1", "a1")}


def test_interleavings_keep_each_tasks_order():
    orders = list(interleavings([2, 1]))
    assert orders == [(0, 0, 1), (0, 1, 0), (1, 0, 0)]


def test_punch_and_store_allow_exactly_two_outcomes():
    outs = sequential_outcomes({"A": ["a"] * 4}, [[Punch("A", 0, 4)], [Store("A", 0, "x")]])
    assert {o.files["A"][0] for o in outs} == {0, "x"}


def test_per_page_check_rejects_a_store_that_survived_next_to_stale_data():
    tasks = [[Punch("A", 0, 4)], [Store("A", 0, "x")]]
    msg = check_per_page({"A": ["a"] * 4}, tasks, {"A": ["x", "a", "a", "a"]},
                         {(0, 0): None, (1, 0): "ok"}, ["T1", "T2"])
    assert msg is not None and "page A:0" in msg


def test_per_page_check_accepts_an_allowed_outcome():
    tasks = [[Punch("A", 0, 4)], [Store("A", 0, "x")]]
    assert check_per_page({"A": ["a"] * 4}, tasks, {"A": ["x", 0, 0, 0]},
                          {(0, 0): None, (1, 0): "ok"}, ["T1", "T2"]) is None


def test_per_page_check_lets_a_multi_page_punch_be_seen_page_by_page():
    # Page 0 sees the store after the punch, page 1 sees the read before it: no single
    # order explains both pages, but each page has its own.
    tasks = [[Punch("A", 0, 8)], [Store("A", 0, "x"), Read("A", 4, 4)]]
    final = {"A": ["x", 0, 0, 0, 0, 0, 0, 0]}
    observed = {(0, 0): None, (1, 0): "ok", (1, 1): ("b",) * 4}
    assert check_per_page({"A": ["a"] * 4 + ["b"] * 4}, tasks, final, observed,
                          ["T1", "T2"]) is None


def test_a_file_data_moves_across_is_checked_whole():
    # An insert at 0 with a store to page 0: the store is on page 0 (after the insert) or
    # on page 1 (before it, carried along). Missing from both pages is a lost store, though
    # each page alone has an order that explains it.
    tasks = [[Insert("A", 0, 4)], [Store("A", 0, "x")]]
    observed = {(0, 0): None, (1, 0): "ok"}
    initial = {"A": ["a"] * 4}
    lost = {"A": [0] * 4 + ["a"] * 4}
    msg = check_per_page(initial, tasks, lost, observed, ["T1", "T2"])
    assert msg is not None and msg.startswith("file A ends as [[0, 0, 0, 0], ['a'")
    for final in ([0] * 4 + ["x", "a", "a", "a"], ["x", 0, 0, 0] + ["a"] * 4):
        assert check_per_page(initial, tasks, {"A": final}, observed, ["T1", "T2"]) is None


def test_a_store_that_returned_where_every_order_faults_or_moves_it_is_flagged():
    """A store to the page a collapse moves: before the collapse it moves to page 0, after
    it the page lies past EOF and the store faults. A store that returned and is found
    nowhere is lost, though page 1 is past EOF in every outcome."""
    from fsrace.scenarios.ops import Collapse

    initial = {"A": ["a0"] * 4 + ["a1"] * 4}
    tasks = [[Collapse("A", 0, 4)], [Store("A", 4, "T2")]]
    names = ["TASK1", "TASK2"]
    lost = check_per_page(initial, tasks, {"A": ["a1"] * 4}, {(0, 0): None, (1, 0): "ok"},
                          names)
    assert lost and "TASK2 saw 'SIGBUS'" in lost
    assert check_per_page(initial, tasks, {"A": ["a1"] * 4}, {(0, 0): None, (1, 0): SIGBUS},
                          names) is None
    assert check_per_page(initial, tasks, {"A": ["T2"] + ["a1"] * 3},
                          {(0, 0): None, (1, 0): "ok"}, names) is None
