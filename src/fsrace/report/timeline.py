"""The race as the thread drew it: one column per task, time downwards."""

from __future__ import annotations

import shutil
import textwrap

from ..explore.engine import ExecutionRecord


def _cell(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, subsequent_indent="  ") or [""]


def timeline(rec: ExecutionRecord, width: int | None = None, show_end: bool = True) -> str:
    """Columns TASK1 / TASK2 / ... / FLUSHER / END, one row per step. `>>` marks the step
    that broke a check, `<<` the earlier step of another task it conflicts with."""
    used = sorted({e.task for e in rec.events})
    if not show_end:
        used = [t for t in used if t not in rec.epilogue_tasks]
    total = width or min(shutil.get_terminal_size((140, 40)).columns, 160)
    col = max(24, (total - 5) // max(1, len(used)) - 1)
    lines = []
    head = "     " + " ".join(f"{rec.task_names[t]}".ljust(col) for t in used)
    roles = "     " + " ".join(f"({rec.task_roles[t]})".ljust(col)[:col] for t in used)
    lines += [head.rstrip(), roles.rstrip(), "     " + " ".join("-" * col for _ in used)]
    rival = rec.conflicting_step()
    for n, ev in enumerate(rec.events):
        if ev.task not in used:
            continue
        text = ev.step.label + (f" [{ev.step.note}]" if ev.step.note else "")
        mark = ">>" if n == rec.failed_at else "<<" if n == rival else "  "
        wrapped = _cell(text, col)
        pos = used.index(ev.task)
        for i, piece in enumerate(wrapped):
            prefix = f"{mark}{n:3d}" if i == 0 else "     "
            row = [" " * col] * len(used)
            row[pos] = piece.ljust(col)
            lines.append((prefix + "".join(" " + c for c in row)).rstrip())
    return "\n".join(lines)
