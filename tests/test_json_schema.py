"""Every command's --json output follows one schema (src/fsrace/report/result.schema.json,
docs/json.md), and the schema is strict enough to reject what does not."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest
from click.testing import CliRunner

from fsrace.cli import main

SCHEMA = json.loads(resources.files("fsrace.report").joinpath("result.schema.json")
                    .read_text())


def _json(*args, code):
    r = CliRunner().invoke(main, list(args))
    assert r.exit_code == code, r.output
    out = json.loads(r.stdout)
    jsonschema.validate(out, SCHEMA)
    return out


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_check_race_safe_and_unknown_follow_the_schema():
    race = _json("check", "-s", "punch-write-fault", "-p", "linux-2012", "--json", code=1)
    assert race["command"] == "check" and race["violation"]["invariant"]
    safe = _json("check", "-s", "punch-read", "-p", "invalidate-lock", "--json", code=0)
    assert safe["verdict"] == "safe" and safe["violation"] is None
    _json("check", "-s", "punch-read", "-p", "invalidate-lock", "--strategy", "random",
          "--executions", "5", "--json", code=4)


def test_replay_follows_the_schema():
    race = _json("check", "-s", "punch-write-fault", "-p", "linux-2012", "--json", code=1)
    out = _json("replay", "-s", "punch-write-fault", "-p", "linux-2012",
                race["violation"]["schedule"], "--json", code=1)
    assert out["command"] == "replay"


def test_matrix_follows_the_schema(monkeypatch):
    import fsrace.matrix

    monkeypatch.setattr(fsrace.matrix, "SCENARIOS", {
        k: v for k, v in fsrace.matrix.SCENARIOS.items() if k == "punch-read"})
    out = _json("matrix", "--json", "--jobs", "1", "--max-executions", "300", code=0)
    assert out["command"] == "matrix" and {c["verdict"] for c in out["cells"]} >= {"race"}


def test_stress_follows_the_schema(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    # --min-windows 0: a run this short may overlap no punch at all (then not exercised)
    out = _json("stress", "--fs", str(work), "--scenario", "punch-read", "--ops", "200",
                "--min-windows", "0", "--json", "--log", str(tmp_path / "run.json.gz"),
                code=0)
    assert out["command"] == "stress" and out["verdict"] == "ok" and out["executed"] == 400
    assert out["windows"]["operations"] == out["operations"]["punch"]


@pytest.mark.parametrize("broken", [
    {"format": 2, "command": "check"},
    {"format": 1, "command": "fly"},
    {"format": 1, "command": "stress", "verdict": "fine"},
])
def test_the_schema_rejects_what_does_not_follow_it(broken):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)
