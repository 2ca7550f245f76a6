"""Assertions for a test suite that checks its own file system's locking with fsrace:

    from fsrace.testing import assert_races, assert_safe

    def test_my_fix():
        assert_safe("punch-write-fault", MyFixedProtocol, pages=2, writers=2)
        assert_races("punch-write-fault", MyProtocolAsShipped)

Both take what fsrace.check takes and return its record; the failure message is the
report `fsrace check` prints, with the schedule that replays a race.
"""

from __future__ import annotations

from . import check
from .explore.search import Verdict


def assert_safe(scenario, protocol, **options) -> dict:
    """The search is complete and no interleaving breaks a check."""
    record = check(scenario, protocol, **options)
    if record["verdict"] != Verdict.SAFE:
        raise AssertionError(_why(record, "safe"))
    return record


def assert_races(scenario, protocol, invariant: str | None = None, **options) -> dict:
    """Some interleaving breaks a check (the one named `invariant`, if given)."""
    record = check(scenario, protocol, **options)
    found = record["violation"]
    if record["verdict"] != Verdict.RACE or (invariant and found["invariant"] != invariant):
        raise AssertionError(_why(record, f"race on {invariant}" if invariant else "race"))
    return record


def _why(record: dict, expected: str) -> str:
    head = (f"{record['scenario']} under {record['protocol']}: expected {expected}, the "
            f"search says {record['verdict']} ({record['executions']} executions, "
            f"{'complete' if record['complete'] else 'incomplete: ' + str(record['stopped_by'])})")
    found = record["violation"]
    if found:
        head += (f"\n{found['invariant']}: {found['message']}\nreplay: {found['replay']}")
    return head
