"""The HTML timeline: what the page holds, and (in headless Chromium) that a reader can step
to the violation with the keyboard and see the state it left."""

import os
import pathlib
import re
import shutil

import pytest

from fsrace.report.html import trace_page, trace_page_data, write_matrix_pages
from fsrace.run import check


@pytest.fixture(scope="module")
def seed_race():
    return check("punch-write-fault", "linux-2012", shrink_budget_s=0)


def test_page_data_follow_the_counterexample_step_by_step(seed_race):
    d = trace_page_data(seed_race)
    cx = seed_race.counterexample
    assert len(d["steps"]) == len(cx.events) == len(d["states"]) == len(d["changed"])
    assert d["failed_at"] == cx.failed_at and d["conflicts_with"] == cx.conflicting_step()
    assert [s["label"] for s in d["steps"]] == [e.step.label for e in cx.events]
    assert d["steps"][d["failed_at"]]["relevant"] and d["steps"][d["conflicts_with"]]["relevant"]
    assert not all(s["relevant"] for s in d["steps"])  # something can be folded away
    # The last state is the one the text report prints for the violation.
    assert "\n".join(d["states"][-1]) == cx.state
    # Every step changes something the state shows, or not; the step that frees the block
    # must show a change.
    free = next(i for i, s in enumerate(d["steps"]) if s["label"] == "ext4_ext_remove_space")
    assert d["changed"][free]


def test_the_reports_read_the_recorded_states_and_run_nothing(seed_race, monkeypatch):
    """The states a page draws were recorded as the shown execution ran (run.check keeps
    them; a replay records its own): building the page, or the JSON, runs no program."""
    import fsrace.explore.engine as engine
    import fsrace.run as run
    from fsrace.report.html import json_record

    shown = seed_race.shown
    assert shown is not None and len(shown.states) == len(shown.events) + 1
    assert shown.schedule == seed_race.counterexample.schedule

    def ran(*args, **kwargs):
        raise AssertionError("a report ran the program")

    for module in (engine, run):
        monkeypatch.setattr(module, "run_execution", ran)
    monkeypatch.setattr(run, "builder", ran)
    d = trace_page_data(seed_race)
    assert d["states"] == [s.splitlines() for s in shown.states[1:]]
    assert json_record(seed_race)["timeline"]["states"] == d["states"]
    assert "fsrace-data" in trace_page(seed_race)


def test_a_replay_records_its_states_as_it_runs():
    from fsrace.run import replay_check

    cx = check("punch-write-fault", "linux-2012", shrink_budget_s=0).counterexample
    res, rec = replay_check("punch-write-fault", "linux-2012", cx.schedule)
    assert res.shown is rec and len(rec.states) == len(rec.events) + 1
    assert rec.states[-1] == rec.state  # the state the text report prints at the violation


def test_the_page_is_self_contained(seed_race):
    page = trace_page(seed_race)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page
    assert 'id="fsrace-data"' in page


def test_a_safe_verdict_gets_a_page_with_its_coverage_and_a_sample():
    res = check("punch-read", "invalidate-lock")
    d = trace_page_data(res)
    assert d["sample"] and d["failed_at"] is None and d["steps"]
    page = trace_page(res)
    assert f"{res.search.traces} distinct traces" in page and "search complete" in page


def test_matrix_pages_link_every_cell(tmp_path):
    from fsrace.matrix import Matrix

    m = Matrix(10)
    for s, p in [("punch-write-fault", "linux-2012"), ("punch-read", "invalidate-lock")]:
        m.cells[(s, p)] = check(s, p, shrink_budget_s=0)
    index = write_matrix_pages(m, tmp_path).read_text()
    for s, p in m.cells:
        assert f'href="{s}--{p}.html"' in index and (tmp_path / f"{s}--{p}.html").exists()


def _chromium():
    return shutil.which("chromium") and shutil.which("chromedriver")


@pytest.mark.browser
@pytest.mark.skipif(not _chromium(), reason="needs Debian's chromium and chromium-driver "
                    "(make test installs them as root)")
def test_stepping_to_the_violation_in_headless_chromium(seed_race, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    page = tmp_path / "race.html"
    page.write_text(trace_page(seed_race))
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1500,1000"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        driver.get(page.as_uri())
        d = trace_page_data(seed_race)
        body = driver.find_element(By.TAG_NAME, "body")
        assert driver.find_element(By.ID, "pos").text == "0"
        for _ in range(d["failed_at"]):
            body.send_keys(Keys.ARROW_RIGHT)
        assert driver.find_element(By.ID, "pos").text == str(d["failed_at"])
        row = driver.find_element(By.CSS_SELECTOR, "#lanes tr.cursor")
        assert row.get_attribute("id") == f"step-{d['failed_at']}"
        assert "violation" in row.get_attribute("class").split()
        assert d["steps"][d["failed_at"]]["label"] in row.text
        changed = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#state div.changed")]
        assert changed and set(changed) <= set(d["states"][d["failed_at"]])
        # The link on the violating step leads to the step it conflicts with.
        row.find_element(By.CSS_SELECTOR, "a[data-goto]").click()
        assert driver.find_element(By.ID, "pos").text == str(d["conflicts_with"])
        # Folding hides steps that do not matter, and stepping skips them.
        body.send_keys("f")
        hidden = [r for r in driver.find_elements(By.CSS_SELECTOR, "#lanes tbody tr")
                  if not r.is_displayed()]
        assert len(hidden) == sum(not s["relevant"] for s in d["steps"])
        body.send_keys("v")
        assert driver.find_element(By.ID, "pos").text == str(d["failed_at"])
        shot = pathlib.Path(os.environ.get("FSRACE_SCREENSHOT", tmp_path / "timeline.png"))
        driver.execute_script("window.scrollTo(0, 0)")
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        driver.quit()


@pytest.mark.parametrize("scenario,protocol", [("read-into-own-mapping", "mkwrite-retry"),
                                               ("read-into-own-mapping", "iolock-mkwrite")])
def test_starvation_and_deadlock_pages_show_the_execution_where_the_search_stopped(
        scenario, protocol):
    # read(2) into a mapping of the same file: under mkwrite-retry the fault retries on
    # the IO lock its own task holds (a livelock), under iolock-mkwrite it blocks on it.
    res = check(scenario, protocol, strategy="dpor", shrink_budget_s=0)
    d = trace_page_data(res)
    assert d["outcome"] == res.counterexample.outcome in ("starvation", "deadlock")
    assert len(d["steps"]) == len(res.counterexample.events)
    assert res.counterexample.outcome in trace_page(res)


def test_the_epilogue_is_known_by_its_flag_not_its_name(seed_race):
    # The reports fold away and hide the epilogue task (fsync, drop caches, re-read) by
    # ExecutionRecord.epilogue_tasks; a program may call that task anything.
    import dataclasses

    from fsrace.report.html import _relevant
    from fsrace.report.timeline import timeline

    cx = seed_race.counterexample
    (end,) = cx.epilogue_tasks
    names = list(cx.task_names)
    names[end] = "AFTERWARDS"
    renamed = dataclasses.replace(cx, task_names=names, failed_at=None)
    assert any(e.task == end for e in renamed.events)
    assert "AFTERWARDS" in timeline(renamed)
    assert "AFTERWARDS" not in timeline(renamed, show_end=False)
    flags = _relevant(renamed, None, None)
    assert not any(f for e, f in zip(renamed.events, flags, strict=True) if e.task == end)
