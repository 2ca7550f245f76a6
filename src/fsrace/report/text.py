"""Terminal reports of a check result."""

from __future__ import annotations

from ..explore.engine import DEADLOCK, STARVATION, ExecutionRecord
from ..explore.search import Verdict
from ..run import CheckResult
from .timeline import timeline


def coverage_line(res: CheckResult) -> str:
    s = res.search
    ran = " run to the end" if s.states is not None else ""
    parts = [f"{s.executions} executions", f"{s.traces} distinct traces{ran}"]
    if s.states is not None:
        parts.append(f"{s.states} distinct states")
    if s.cached:
        parts.append(f"{s.cached} stopped at a state seen before")
    if s.blocked:
        parts.append(f"{s.blocked} sleep-set blocked")
    parts.append(f"{s.steps} model steps")
    parts.append(f"{s.elapsed_s:.2f}s")
    done = "complete" if s.complete else "incomplete"
    why = f" (stopped: {s.stopped_by})" if s.stopped_by else ""
    bound = f"; {s.bounded} executions cut at the step bound" if s.bounded else ""
    aim = "covered" if s.complete else "searched by"
    return f"{', '.join(parts)}; search {done}{why}{bound}; {aim}: {s.coverage}"


def counted(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def verdict_line(res: CheckResult) -> str:
    v = res.search.verdict
    words = {
        Verdict.SAFE: "SAFE: no interleaving breaks any check",
        Verdict.RACE: "RACE",
        Verdict.DEADLOCK: "DEADLOCK",
        Verdict.STARVATION: "STARVATION: a task kept starting over without finishing",
        Verdict.UNKNOWN: "UNKNOWN: no violation found, but the search did not cover everything",
    }[v]
    return f"{res.scenario} under {res.protocol} ({res.strategy}): {words}"


def failure_report(rec: ExecutionRecord, width: int | None = None) -> str:
    lines = []
    if rec.outcome == STARVATION:
        lines.append(f"starvation: {rec.starved}")
    elif rec.outcome == DEADLOCK:
        lines.append("deadlock: every unfinished task is blocked")
        for task, why in rec.waiting.items():
            lines.append(f"  {task} waits in {why}")
    elif rec.failure is not None:
        lines.append(f"violated: {rec.failure.name} ({rec.failure.meaning})")
        lines += ["  " + ln for ln in rec.failure.message.splitlines()]
    lines.append("")
    lines.append(timeline(rec, width=width, show_end=_failed_in_end(rec)))
    j = rec.conflicting_step()
    if j is not None:
        lines.append(f"step {rec.failed_at} conflicts with step {j} "
                     f"({rec.task_names[rec.events[j].task]}: {rec.events[j].step.label})")
    lines.append("")
    lines.append("state at that moment:")
    lines += ["  " + ln for ln in rec.state.splitlines()]
    return "\n".join(lines)


def _failed_in_end(rec: ExecutionRecord) -> bool:
    return any(e.task in rec.epilogue_tasks for e in rec.events)


def what_would_help(res: CheckResult) -> str:
    """For an `unknown`: the next thing to try, from what stopped the search."""
    s = res.search
    if s.stopped_by == "interrupted":
        return "it was stopped; run it again with a --time-limit to let it go on alone"
    if s.bounded:
        return ("to finish: raise --max-steps (executions ran into the step bound; a loop "
                "the model cannot leave?)")
    if s.starved:
        return "to finish: raise --max-retries, or a protocol that does not retry"
    if res.strategy in ("random", "pct", "portfolio"):
        return ("to prove safety: --strategy stateful (a sampler never covers every "
                "interleaving)")
    if res.strategy in ("dpor", "exhaustive", "bounded"):
        return ("to finish sooner: --strategy stateful (explores each state once); to find a "
                "shallow race fast: --strategy pct")
    more = "--time-limit" if "time-limit" in s.stopped_by else "--max-executions"
    return (f"to finish: raise {more} (the search explored {s.states} states so far); "
            "a smaller scope (--pages, --writers) finishes sooner")


def full_report(res: CheckResult, width: int | None = None) -> str:
    out = [verdict_line(res), "  " + coverage_line(res)]
    if res.search.verdict == Verdict.UNKNOWN:
        out.append("  " + what_would_help(res))
    cx = res.counterexample
    if cx is not None:
        if res.search.found_by and res.search.found_by != res.strategy:
            out.append(f"  found by {res.search.found_by}")
        if res.shrunk is not None:
            sh = res.shrunk
            now = f"{counted(cx.preemptions, 'preemption')}, {len(cx.events)} steps"
            if (sh.original_steps, sh.original_preemptions) == (len(cx.events), cx.preemptions):
                out.append(f"  shrinking: already minimal ({now}; "
                           f"{counted(sh.attempts, 'replay')} tried)")
            else:
                # Fewer preemptions come first, so the steps may grow.
                out.append(f"  shrunk to {now} (found with "
                           f"{counted(sh.original_preemptions, 'preemption')}, "
                           f"{sh.original_steps} steps; {counted(sh.attempts, 'replay')})")
        out.append("")
        out.append(failure_report(cx, width))
        out.append("")
        out.append(f"reproduce: {res.replay_command()}")
    return "\n".join(out)
