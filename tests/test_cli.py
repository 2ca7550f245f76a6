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
    assert r.exit_code == 4  # unknown has its own exit code
    d = json.loads(r.output)
    assert d["verdict"] == "unknown" and d["complete"] is False and d["executions"] == 20


def test_list_names_every_scenario_and_protocol():
    r = run("list")
    assert r.exit_code == 0
    for name in ("punch-write-fault", "punch-read", "linux-2012", "invalidate-lock", "dpor"):
        assert name in r.output


def test_check_creates_the_folder_of_its_html_page_before_searching(tmp_path):
    page = tmp_path / "new" / "deeper" / "race.html"
    r = run("check", "-s", "punch-write-fault", "-p", "linux-2012", "--html", str(page))
    assert r.exit_code == 1 and page.exists()


def test_an_html_path_that_is_a_folder_is_refused_before_any_search(tmp_path):
    r = run("check", "-s", "punch-write-fault", "-p", "linux-2012", "--html", str(tmp_path))
    assert r.exit_code == 2 and "is a directory" in r.output
    assert "executions" not in r.output


def test_the_help_prints_one_exit_code_table():
    r = run("--help")
    assert r.exit_code == 0
    from fsrace import exits

    for code, text in exits.TABLE:
        assert f"{code:>3}  {text}" in r.output


def _saved_traceback(output: str) -> str:
    """The file an internal error names, read and removed."""
    import os

    path = output.split("The traceback is in ")[1].split(";")[0]
    try:
        with open(path) as f:
            return f.read()
    finally:
        os.unlink(path)


def test_an_internal_error_is_one_message_and_a_saved_traceback(monkeypatch):
    import fsrace.cli

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(fsrace.cli, "check", broken)
    r = run("check", "-s", "punch-read", "-p", "invalidate-lock")
    assert r.exit_code == 70
    assert "internal error: ZeroDivisionError: a bug" in r.output
    assert "Traceback" not in r.output
    saved = _saved_traceback(r.output)
    assert "Traceback" in saved and "ZeroDivisionError" in saved


def test_stress_refuses_bad_names_and_bad_replay_files_with_exit_2(tmp_path):
    r = run("stress", "--fs", "ext5", "--scenario", "punch-read", "--duration", "1")
    assert r.exit_code == 2 and "did you mean ext4" in r.output
    r = run("stress", "--fs", "tmpfs", "--scenario", "punch-no-cached-pages", "--duration", "1")
    assert r.exit_code == 2 and "no stress scenario" in r.output
    r = run("stress", "--fs", "tmpfs", "--scenario", "punch-wirte-fault", "--duration", "1")
    assert r.exit_code == 2 and "did you mean punch-write-fault" in r.output
    junk = tmp_path / "junk.json.gz"
    junk.write_text("not gzip")
    r = run("stress", "--replay", str(junk))
    assert r.exit_code == 2 and "not a saved fsrace stress run" in r.output


def test_a_matrix_with_a_time_limit_ends_and_says_so(monkeypatch):
    import fsrace.matrix

    monkeypatch.setattr(fsrace.matrix, "SCENARIOS", {k: v for k, v in
                        fsrace.matrix.SCENARIOS.items() if k == "punch-no-cached-pages"})
    r = run("matrix", "--jobs", "1", "--time-limit", "0.5")
    assert r.exit_code == 0
    assert "punch-no-cached-pages" in r.output and "unknown" in r.output
    assert "stopped at --time-limit 0.5s" in r.output


def test_a_matrix_stopped_by_ctrl_c_prints_the_cells_searched_and_exits_130(monkeypatch):
    import fsrace.matrix

    real = fsrace.matrix.check_cell
    calls = []

    def interrupted_second(*args):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(fsrace.matrix, "check_cell", interrupted_second)
    r = run("matrix", "--jobs", "1")
    assert r.exit_code == 130
    assert "interrupted: 1 cells searched" in r.output
    assert "punch-write-fault / linux-2012: race" in r.output


def test_the_readme_lists_every_exit_code_of_the_table():
    from pathlib import Path

    from fsrace import exits

    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text().split("Every command exits with a code from one table")[1]
    rows = [line for line in text.split("\n\n")[1].splitlines() if line.startswith("| ")]
    listed = {int(c) for line in rows for c in line.split("|")[1].split("/")
              if c.strip().isdigit()}
    assert {code for code, _ in exits.TABLE} <= listed


def test_replay_json_has_check_json_s_schema():
    from fsrace.explore.engine import run_execution
    from fsrace.explore.shrink import lenient_chooser
    from fsrace.run import builder
    from fsrace.scenarios import Params

    checked = json.loads(run("check", "-s", "punch-write-fault", "-p", "linux-2012",
                             "--json").output)
    r = run("replay", "-s", "punch-write-fault", "-p", "linux-2012",
            checked["violation"]["schedule"], "--json")
    assert r.exit_code == 1
    replayed = json.loads(r.output)
    assert set(replayed) == set(checked)
    assert replayed["verdict"] == "race" and replayed["executions"] == 1
    assert replayed["violation"]["invariant"] == checked["violation"]["invariant"]
    assert set(replayed["timeline"]) == set(checked["timeline"])

    build = builder("punch-write-fault", "invalidate-lock", Params())
    passing = run_execution(build(), lenient_chooser(()), 400).schedule
    r = run("replay", "-s", "punch-write-fault", "-p", "invalidate-lock", str(passing),
            "--json")
    assert r.exit_code == 0
    d = json.loads(r.output)
    assert d["verdict"] == "unknown" and d["violation"] is None and not d["complete"]
    assert len(d["timeline"]["steps"]) == d["steps"] > 0


def test_every_option_has_help_and_every_help_fits_80_columns():
    import click

    from fsrace.cli import main

    for name, cmd in main.commands.items():
        for p in cmd.params:
            if isinstance(p, click.Option) and p.name != "help":
                assert p.help, f"{name} {p.opts[0]} has no help text"
        r = CliRunner(env={"COLUMNS": "80"}).invoke(main, [name, "--help"])
        assert r.exit_code == 0
        for line in r.output.splitlines():
            assert len(line) <= 80, f"fsrace {name} --help: {line}"


def test_list_fits_the_terminal_width_it_is_given():
    r = CliRunner(env={"COLUMNS": "80"}).invoke(main, ["list"])
    assert r.exit_code == 0
    assert max(len(line) for line in r.output.splitlines()) <= 80
    assert "punch-write-fault" in r.output and "invalidate-lock" in r.output


def test_an_option_the_strategy_does_not_read_is_a_usage_error():
    r = run("check", "-s", "punch-read", "-p", "linux-2012", "--strategy", "dpor",
            "--seed", "3")
    assert r.exit_code == 2 and "--seed has no effect under --strategy dpor" in r.output
    r = run("check", "-s", "punch-read", "-p", "linux-2012", "--strategy", "pct",
            "--preemptions", "2")
    assert r.exit_code == 2 and "read by bounded" in r.output


def test_an_output_file_where_nothing_can_be_written_is_refused_before_any_work():
    r = run("check", "-s", "punch-write-fault", "-p", "linux-2012", "--html", "/proc/x.html")
    assert r.exit_code == 2 and "cannot write in /proc" in r.output
    r = run("stress", "--fs", "tmpfs", "--mix", "--ops", "5", "--log", "/proc/x.json.gz")
    assert r.exit_code == 2 and "cannot write in /proc" in r.output


def test_the_matrix_table_is_cut_into_blocks_that_fit_the_width():
    from fsrace.matrix import Matrix
    from fsrace.protocols import PROTOCOLS
    from fsrace.report.matrix_report import text_table
    from fsrace.scenarios import SCENARIOS

    m = Matrix(10, cells={(s, p): None for s in SCENARIOS for p in PROTOCOLS})
    narrow, wide = text_table(m, 80), text_table(m)
    assert max(len(line) for line in narrow.splitlines()) <= 80
    for p in PROTOCOLS:
        assert p[:12] in narrow
    headers = [line for line in narrow.splitlines() if line.startswith(" " * 20)]
    assert len(headers) == -(-len(PROTOCOLS) // 3) and len(wide.splitlines()[0]) > 80


def test_a_usage_error_is_one_line_with_a_suggestion():
    r = run("check", "-s", "punch-wirte-fault", "-p", "linux-2012")
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and " check: " in r.output.split("Invalid")[0]
    assert "did you mean punch-write-fault?" in r.output
    r = run("nosuchcommand")
    assert r.exit_code == 2 and r.output.count("\n") == 1


def test_an_internal_error_after_a_search_keeps_what_it_measured(monkeypatch):
    import fsrace.run

    def broken_shrink(*args, **kwargs):
        raise RuntimeError("shrinking broke")

    monkeypatch.setattr(fsrace.run, "shrink", broken_shrink)
    r = run("check", "-s", "punch-write-fault", "-p", "linux-2012")
    assert r.exit_code == 70
    assert "measured before the error" in r.output and "executions" in r.output
    assert "measured before the error" in _saved_traceback(r.output)


def test_a_matrix_of_the_columns_and_rows_named():
    r = run("matrix", "--jobs", "1", "-p", "invalidate-lock", "-p", "linux-2012",
            "-s", "punch-read", "-s", "clone-write-fault", "--json")
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)  # stderr has a line per cell
    assert [(c["scenario"], c["protocol"], c["verdict"]) for c in m["cells"]] == [
        ("punch-read", "invalidate-lock", "safe"), ("punch-read", "linux-2012", "race"),
        ("clone-write-fault", "invalidate-lock", "n/a"),
        ("clone-write-fault", "linux-2012", "n/a")]
    assert sorted(m["costs"]) == ["invalidate-lock", "linux-2012"]
    r = run("matrix", "-p", "no-such-protocol")
    assert r.exit_code == 2 and "no-such-protocol" in r.output
