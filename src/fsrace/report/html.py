"""Self-contained HTML pages: one per check (the race as lanes you can step through, with
the model's state beside them) and one for the matrix. Everything the page shows is in the
dict `trace_page_data` returns, embedded in the page as JSON, so other tools can draw it."""

from __future__ import annotations

import pathlib

from jinja2 import Environment, PackageLoader, select_autoescape

from ..explore.engine import ExecutionRecord
from ..run import CheckResult, not_modelled
from .json_report import envelope, result_dict
from .matrix_report import why

_env = Environment(loader=PackageLoader("fsrace.report"), autoescape=select_autoescape(),
                   trim_blocks=True, lstrip_blocks=True)

_LOCK_STEPS = ("lock_page", "unlock_page", "mutex_", "down_", "up_", "wait_on_page_writeback")


def _relevant(rec: ExecutionRecord, failed: int | None, conflict: int | None) -> list[bool]:
    """Steps that matter to the violation: those touching an object the failing step or
    the step it conflicts with touches. Without a failing step (a wrong final content),
    every step of the scenario's tasks that is not bare locking."""
    steps = [e.step for e in rec.events]
    if failed is not None:
        objs = {o for i in (failed, conflict) if i is not None for o, _ in steps[i].accesses}
        return [i in (failed, conflict) or any(o in objs for o, _ in s.accesses)
                for i, s in enumerate(steps)]
    return [e.task not in rec.epilogue_tasks and not e.step.label.startswith(_LOCK_STEPS)
            for e in rec.events]


def trace_page_data(res: CheckResult) -> dict:
    """The page's data: the check result (as `--json` prints it), and the execution shown
    (`res.shown`: the counterexample, else the tasks one after another, or the replay)
    with the state after each step and the state lines each step changed."""
    cx = res.counterexample
    rec = res.shown
    if rec is None or not rec.states:
        raise ValueError("trace_page_data: the result carries no execution with states "
                         "(run.check and run.replay_check record one)")
    before, after = rec.states[0].splitlines(), rec.states[1:]
    failed = rec.failed_at if cx is not None else None
    conflict = rec.conflicting_step() if cx is not None else None
    states, changed, prev = [], [], before
    for text in after:
        lines = text.splitlines()
        old = set(prev)
        states.append(lines)
        changed.append([i for i, line in enumerate(lines) if line not in old])
        prev = lines
    relevant = _relevant(rec, failed, conflict)
    return {
        "result": result_dict(res),
        "why": why(res),
        "sample": cx is None,
        "tasks": [{"name": name, "role": role}
                  for name, role in zip(rec.task_names, rec.task_roles, strict=True)],
        "steps": [{"n": n, "task": e.task, "label": e.step.label, "note": e.step.note,
                   "accesses": [list(a) for a in e.step.accesses], "relevant": relevant[n]}
                  for n, e in enumerate(rec.events)],
        "initial_state": before,
        "states": states,
        "changed": changed,
        "failed_at": failed,
        "conflicts_with": conflict,
        "outcome": cx.outcome if cx is not None else rec.outcome,
    }


def json_record(res: CheckResult, command: str = "check") -> dict:
    """What `--json` prints for a check or a replay: the result, and what the HTML page
    draws (the execution shown, with the state after each step)."""
    out = envelope(command, result_dict(res))
    out["timeline"] = {k: v for k, v in trace_page_data(res).items() if k != "result"}
    return out


def trace_page(res: CheckResult, back_link: str | None = None) -> str:
    return _env.get_template("trace.html.j2").render(d=trace_page_data(res), back=back_link)


def write_trace_page(res: CheckResult, path: str | pathlib.Path) -> pathlib.Path:
    path = pathlib.Path(path)
    path.write_text(trace_page(res))
    return path


def cell_file(scenario: str, protocol: str) -> str:
    return f"{scenario}--{protocol}.html"


def write_matrix_pages(m, directory: str | pathlib.Path) -> pathlib.Path:
    """index.html (protocols x scenarios, coloured by verdict) and a trace page per cell."""
    from .matrix_report import cell_word

    out = pathlib.Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for (scen, proto), res in m.cells.items():
        if res is not None:
            (out / cell_file(scen, proto)).write_text(trace_page(res, back_link="index.html"))
    cells = {f"{s}|{p}": {"verdict": cell_word(r), "href": cell_file(s, p) if r else None,
                          "why": why(r) if r else not_modelled(s, p)}
             for (s, p), r in m.cells.items()}
    index = _env.get_template("matrix.html.j2").render(
        scenarios=m.scenarios, protocols=m.protocols, cells=cells, costs=m.costs,
        max_executions=m.max_executions)
    (out / "index.html").write_text(index)
    return out / "index.html"
