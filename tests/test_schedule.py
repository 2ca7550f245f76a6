import pytest

from fsrace.explore.schedule import Schedule, ScheduleError


def test_schedule_prints_run_lengths_and_parses_back():
    s = Schedule((0, 0, 0, 1, 2, 2, 0))
    assert str(s) == "0:3,1,2:2,0"
    assert Schedule.parse(str(s)) == s


def test_empty_schedule_round_trips():
    assert Schedule.parse("") == Schedule(())


@pytest.mark.parametrize("bad", ["a", "0:", "0:0", "1;2", "-1"])
def test_bad_schedule_tokens_are_rejected_with_the_expected_form(bad):
    with pytest.raises(ScheduleError, match="schedule token"):
        Schedule.parse(bad)


def test_a_schedule_longer_than_any_execution_is_refused_before_it_is_built():
    import pytest

    from fsrace.explore.schedule import ScheduleError

    with pytest.raises(ScheduleError, match="runs past"):
        Schedule.parse("0:99999999999999999999")
    with pytest.raises(ScheduleError, match="runs past"):
        Schedule.parse(",".join(["0:600000", "1:600000"]))
