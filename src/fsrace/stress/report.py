"""The stress run as text."""

from __future__ import annotations

from .ops import own_operation
from .run import StressResult


def stress_report(res: StressResult) -> str:
    cfg = res.config
    what = cfg.scenario or "mix"
    lines = [
        f"stress {what} on {cfg.fs}: {cfg.workers} workers"
        + (f" x {cfg.threads} threads" if cfg.threads > 1 else "") + f", seed {cfg.seed}, "
        f"file of {cfg.pages} pages"
        + (", writeback by sync_file_range (--flusher)" if cfg.flusher else "")
        + (", the remover's reads with O_DIRECT (--direct-reads)" if cfg.direct_reads
           else ""),
        f"  {res.executed} operations executed in {res.elapsed_s:.2f}s "
        f"({res.ops_per_s:,.0f} ops/s); "
        + ", ".join(f"{k} {n}" for k, n in sorted(res.by_kind.items())),
    ]
    if res.skipped:
        lines.append("  refused by the file system (not counted): "
                     + ", ".join(f"{k} x{n}" for k, n in sorted(res.skipped.items())))
    if res.killed:
        lines.append(f"  {len(res.killed)} worker processes ended early: "
                     + "; ".join(res.killed[:5]) + (" ..." if len(res.killed) > 5 else ""))
    if res.unfinished:
        lines.append(f"  {len(res.unfinished)} operations never returned (checked as maybe "
                     "done): " + "; ".join(res.unfinished[:5])
                     + (" ..." if len(res.unfinished) > 5 else ""))
    if res.windows is not None and cfg.scenario is not None:
        w = res.windows
        op = own_operation(cfg.scenario)
        lines.append(f"  race windows: {w.hit} accesses ran wholly inside a {op} on a page "
                     f"it affects ({w.operations_hit} of the {w.operations} {op} operations "
                     "had one or more)")
    if res.paths is not None:
        lines.append(f"  kernel paths {res.paths.describe()}")
    reads = ("fsync + cache drop + re-read" + (", with O_DIRECT" if res.read_direct else "")
             + (", and again after a remount" if res.remounted else ""))
    lines.append(f"  checked {res.slots_checked} 8-byte slots ({res.histories_searched} "
                 f"distinct histories searched, {res.check_s:.1f}s), final contents by {reads}")
    if res.shifts_checked:
        lines.append(f"  and {res.shifts_checked} stores that overlapped a collapse or insert "
                     "of their page, with both places the store could be in"
                     + (f" ({res.shifts_unchecked} more not checked: the report was full "
                        "and none could have shown a violation sooner)"
                        if res.shifts_unchecked else ""))
    if res.kernel_log:
        lines.append("  kernel log during the run:")
        lines += [f"    {line}" for line in res.kernel_log[:20]]
    eio = {k: n for k, n in res.skipped.items()
           if k.startswith(("fsync", "msync")) and "Input/output" in k}
    if eio:
        lines.append("  the kernel itself reported lost writes: "
                     + ", ".join(f"{k} x{n}" for k, n in eio.items())
                     + " (a writeback error on the file, e.g. a direct write that could not "
                     "invalidate a page a mapping had dirtied)")
    if res.final_fsync_errors:
        lines.append("  the final fsync returned " + ", ".join(res.final_fsync_errors)
                     + "; a second returned 0 and the final contents were read after it")
    if res.violations:
        lines.append(f"VIOLATION: {len(res.violations)}+ slots have no explanation")
        lines += res.violations
    elif not res.exercised and cfg.scenario is not None:
        op = own_operation(cfg.scenario)
        if not any(res.by_kind.values()):
            why = "no operation ran at all"
        elif not res.by_kind.get(op):
            why = f"{cfg.fs} refused every {op}"
        elif res.unreached:
            assert res.paths is not None
            why = "; ".join(f"no {k} reached {' or '.join(res.paths.hits[k])}"
                            for k in res.unreached)
        else:
            why = (f"{res.windows.hit if res.windows else 0} accesses ran inside a {op}, "
                   f"fewer than the {cfg.min_windows} asked for")
        lines.append(f"NOT EXERCISED: {why}, so the race class was not given its chance; "
                     "the values read were all explained")
    else:
        lines.append("OK: every value read and the final contents are explained by an order "
                     "of the operations consistent with real time")
    return "\n".join(lines)


def stress_dict(res: StressResult, log_path: str) -> dict:
    """The run for --json (docs/json.md)."""
    cfg = res.config
    return {
        "fs": cfg.fs, "scenario": cfg.scenario, "seed": cfg.seed, "workers": cfg.workers,
        "threads": cfg.threads, "pages": cfg.pages, "without": list(cfg.without),
        "flusher": cfg.flusher, "direct_reads": cfg.direct_reads,
        "verdict": res.verdict, "windows": res.windows.as_dict() if res.windows else None,
        "paths": res.paths.as_dict() if res.paths else None,
        "min_windows": cfg.min_windows, "executed": res.executed, "operations": dict(res.by_kind),
        "refused": dict(res.skipped), "unfinished": len(res.unfinished),
        "killed": list(res.killed), "violations": list(res.violations),
        "slots_checked": res.slots_checked, "shifts_checked": res.shifts_checked,
        "shifts_unchecked": res.shifts_unchecked,
        "elapsed_s": round(res.elapsed_s, 3),
        "check_s": round(res.check_s, 3), "kernel_log": list(res.kernel_log), "log": log_path,
    }
