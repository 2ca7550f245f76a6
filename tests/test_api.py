"""The public API: fsrace.check with names or objects, and fsrace.testing's assertions, on
a correct protocol, a deliberately broken one, and one defined outside the package."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest

import fsrace
from fsrace.protocols import PROTOCOLS
from fsrace.protocols.base import Protocol
from fsrace.protocols.invalidate_lock import InvalidateLock
from fsrace.scenarios import SCENARIOS
from fsrace.testing import assert_races, assert_safe

SCHEMA = json.loads(resources.files("fsrace.report").joinpath("result.schema.json")
                    .read_text())


class InvalidateLockNotInPunch(InvalidateLock):
    """Broken on purpose: faults take the lock, the punch never does."""

    name = "test-invalidate-lock-not-in-punch"
    remove_blocks_begin = Protocol.remove_blocks_begin
    remove_blocks_end = Protocol.remove_blocks_end


def test_check_by_name_returns_the_json_record():
    record = fsrace.check("punch-write-fault", "linux-2012")
    jsonschema.validate(record, SCHEMA)
    assert record["verdict"] == "race" and record["violation"]["replay"]


def test_check_by_object_is_the_check_by_name():
    by_name = fsrace.check("punch-read", "invalidate-lock", shrink=False)
    by_object = fsrace.check(SCENARIOS["punch-read"], PROTOCOLS["invalidate-lock"],
                             shrink=False)
    assert by_object["verdict"] == by_name["verdict"] == "safe"
    assert by_object["states"] == by_name["states"]


def test_a_protocol_from_outside_the_package_is_caught_when_broken():
    record = assert_races("punch-write-fault", InvalidateLockNotInPunch)
    assert record["protocol"] == InvalidateLockNotInPunch.name
    with pytest.raises(AssertionError, match="expected safe, the search says race"):
        assert_safe("punch-write-fault", InvalidateLockNotInPunch)
    assert_safe("punch-write-fault", InvalidateLock)


def test_assert_races_names_the_invariant_and_unknown_is_not_safe():
    assert_races("punch-write-fault", "linux-2012", invariant="io-to-owned-blocks")
    with pytest.raises(AssertionError, match="expected race on file-contents"):
        assert_races("punch-write-fault", "linux-2012", invariant="file-contents")
    with pytest.raises(AssertionError, match="search says unknown"):
        assert_safe("punch-write-fault", "invalidate-lock", writers=2, max_executions=50)


def test_a_name_another_protocol_has_is_refused():
    from fsrace.run import UsageError

    class Impostor(InvalidateLock):
        name = "linux-2012"

    with pytest.raises(UsageError, match="taken"):
        fsrace.check("punch-read", Impostor)


def test_the_command_line_takes_module_colon_name_and_its_replay_command_works():
    from click.testing import CliRunner

    from fsrace.cli import main

    r = CliRunner().invoke(main, ["check", "-s", "punch-write-fault",
                                  "-p", "plugin_protocols:NotInPunch", "--json"])
    assert r.exit_code == 1, r.output
    record = json.loads(r.stdout)
    assert "--protocol plugin_protocols:NotInPunch" in record["violation"]["replay"]
    r = CliRunner().invoke(main, ["replay", "-s", "punch-write-fault", "-p",
                                  "plugin_protocols:NotInPunch",
                                  record["violation"]["schedule"]])
    assert r.exit_code == 1 and "io-to-owned-blocks" in r.output
    r = CliRunner().invoke(main, ["check", "-s", "punch-read", "-p", "plugin_protocols:Nope"])
    assert r.exit_code == 2 and "cannot load the protocol" in r.output


def test_entry_points_register_protocols_and_a_broken_one_is_a_warning(monkeypatch):
    from importlib import metadata

    from fsrace.run import load_plugins

    offered = {"fsrace.protocols": [
        metadata.EntryPoint("good", "plugin_protocols:NotInPunch", "fsrace.protocols"),
        metadata.EntryPoint("bad", "plugin_protocols:Missing", "fsrace.protocols")]}
    monkeypatch.setattr(metadata, "entry_points", lambda group: offered.get(group, []))
    warnings = load_plugins()
    assert PROTOCOLS["plugin-not-in-punch"].__name__ == "NotInPunch"
    assert len(warnings) == 1 and "bad (plugin_protocols:Missing) not loaded" in warnings[0]
    assert_races("punch-write-fault", "plugin-not-in-punch")


def test_a_scenario_class_given_twice_is_the_scenario_registered_once():
    cls = type(SCENARIOS["punch-read"])
    for _ in range(2):  # each call makes an instance; the second is not "another scenario"
        record = fsrace.check(cls, "invalidate-lock", shrink=False)
        assert record["scenario"] == "punch-read" and record["verdict"] == "safe"


def test_a_file_system_given_by_value_runs_as_the_module_it_copies():
    """A protocol can carry its file system as a value (one modelled outside the package)
    instead of naming a module of fsrace.kernel."""
    from fsrace.kernel import ext4
    from fsrace.kernel.kernel import FileSystem

    class ByValue(InvalidateLock):
        name = "test-invalidate-lock-ext4-by-value"
        filesystem = FileSystem("ext4 by value", ext4.AOPS)
        unsupported = InvalidateLock.unsupported | {"zero range"}

    by_name = fsrace.check("punch-read-fault", InvalidateLock, pages=2, writers=2)
    by_value = fsrace.check("punch-read-fault", ByValue, pages=2, writers=2)
    assert by_value["verdict"] == by_name["verdict"] == "safe"
    assert (by_value["states"], by_value["traces"]) == (by_name["states"], by_name["traces"])
    why = fsrace.run.not_modelled("zero-range-write-fault", ByValue.name)
    assert why == (f"{ByValue.name} (on the model of ext4 by value) models no zero range "
                   "operation")


def test_a_protocol_that_sets_a_file_system_operation_is_refused_with_the_new_place():
    from fsrace.protocols.base import Protocol

    with pytest.raises(TypeError, match="belong to its file system; set filesystem = "
                                        r"FileSystem\(name, aops, punch_hole=\.\.\.\)"):
        type("OldStyle", (Protocol,), {"punch_hole": staticmethod(lambda *a: None)})
