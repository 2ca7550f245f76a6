"""The check result as one JSON object, for scripts and other tools."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..explore.engine import ExecutionRecord
from ..run import CheckResult

FORMAT = 1  # the version of result.schema.json that --json output follows


def envelope(command: str, body: dict) -> dict:
    """What a command prints with --json: the schema's version, the command, its result."""
    return {"format": FORMAT, "command": command, **body}


def record_dict(rec: ExecutionRecord) -> dict:
    return {
        "outcome": rec.outcome,
        "schedule": str(rec.schedule),
        "steps": len(rec.events),
        "preemptions": rec.preemptions,
        "failed_at": rec.failed_at,
        "conflicts_with": rec.conflicting_step(),
        "waiting": rec.waiting,
        "starved": rec.starved or None,
        "trace": [
            {"step": n, "task": rec.task_names[e.task], "label": e.step.label,
             "note": e.step.note, "accesses": [list(a) for a in e.step.accesses]}
            for n, e in enumerate(rec.events)
        ],
        "state": rec.state,
    }


def result_dict(res: CheckResult) -> dict:
    s = res.search
    cx = res.counterexample
    violation: dict[str, Any] | None = None
    if cx is not None:
        violation = {
            "invariant": cx.failure.name if cx.failure else cx.outcome,
            "message": cx.failure.message if cx.failure else cx.starved or
            "; ".join(f"{t} waits in {w}" for t, w in cx.waiting.items()),
            "found_by": s.found_by,
            "schedule": str(cx.schedule),
            "replay": res.replay_command(),
            "execution": record_dict(cx),
        }
        if res.shrunk is not None:
            violation["shrunk_from_steps"] = res.shrunk.original_steps
    return {
        "scenario": res.scenario,
        "protocol": res.protocol,
        "params": asdict(res.params),
        "strategy": res.strategy,
        "seed": res.seed,
        "verdict": s.verdict,
        "executions": s.executions,
        "traces": s.traces,
        "states": s.states,
        "cached": s.cached,
        "blocked": s.blocked,
        "steps": s.steps,
        "complete": s.complete,
        "bounded_executions": s.bounded,
        "stopped_by": s.stopped_by or None,
        "coverage": s.coverage,
        "elapsed_s": round(s.elapsed_s, 3),
        "violation": violation,
    }
