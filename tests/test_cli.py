import json

from click.testing import CliRunner

from fsrace.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_check_exits_1_on_a_race_with_the_json_fields():
    r = run("check", "-s", "punch-write-fault", "-p", "linux-2012", "--json")
    assert r.exit_code == 1, r.output
    d = json.loads(r.output)
    for key in ("scenario", "protocol", "strategy", "verdict", "executions", "traces",
                "blocked", "steps", "complete", "elapsed_s", "violation"):
        assert key in d
    assert d["verdict"] == "race"
    assert d["violation"]["invariant"] == "io-to-owned-blocks"
    assert d["violation"]["schedule"]
    t = d["timeline"]
    assert len(t["steps"]) == len(t["states"]) == d["violation"]["execution"]["steps"]
    assert t["failed_at"] == d["violation"]["execution"]["failed_at"]


def test_check_html_writes_the_page(tmp_path):
    page = tmp_path / "race.html"
    r = run("check", "-s", "punch-write-fault", "-p", "linux-2012", "--html", str(page))
    assert r.exit_code == 1 and page.exists()
    assert "io-to-owned-blocks" in page.read_text()


def test_check_exits_0_when_safe():
    r = run("check", "-s", "punch-read", "-p", "invalidate-lock", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["verdict"] == "safe" and d["complete"] is True and d["violation"] is None


def test_unknown_names_exit_2_listing_the_valid_ones():
    r = run("check", "-s", "nope", "-p", "linux-2012")
    assert r.exit_code == 2
    assert "punch-write-fault" in r.output
    r = run("check", "-s", "punch-read", "-p", "nope")
    assert r.exit_code == 2 and "invalidate-lock" in r.output


def test_replay_prints_the_race_and_exits_1():
    d = json.loads(run("check", "-s", "punch-write-fault", "-p", "linux-2012", "--json").output)
    r = run("replay", "-s", "punch-write-fault", "-p", "linux-2012", d["violation"]["schedule"])
    assert r.exit_code == 1
    assert "io-to-owned-blocks" in r.output and "TASK1" in r.output and "FLUSHER" in r.output


def test_replay_of_a_foreign_schedule_is_a_usage_error():
    r = run("replay", "-s", "punch-write-fault", "-p", "linux-2012", "2:40")
    assert r.exit_code == 2 and "can run" in r.output


def test_random_strategy_reports_unknown_when_it_finds_nothing():
    r = run("check", "-s", "punch-read", "-p", "invalidate-lock", "--strategy", "random",
            "--executions", "20", "--json")
    assert r.exit_code == 0
    d = json.loads(r.output)
    assert d["verdict"] == "unknown" and d["complete"] is False and d["executions"] == 20


def test_list_names_every_scenario_and_protocol():
    r = run("list")
    assert r.exit_code == 0
    for name in ("punch-write-fault", "punch-read", "linux-2012", "invalidate-lock", "dpor"):
        assert name in r.output
