"""fsrace command line."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import click

from . import exits
from .explore.engine import Outcome, ReplayError
from .explore.schedule import Schedule, ScheduleError
from .explore.search import FAILURES, Limits, SearchResult, Verdict
from .protocols import PROTOCOLS
from .report.json_report import envelope
from .report.text import failure_report, full_report
from .report.timeline import timeline
from .run import STRATEGIES, UsageError, check, replay_check
from .scenarios import SCENARIOS, Params


class _Name(click.ParamType):
    """A scenario or protocol: a registered name (with a suggestion when it is misspelled),
    or MODULE:NAME for one from outside the package."""

    def __init__(self, kind: str, table: dict) -> None:
        self.kind, self.table = kind, table  # the table for suggestions
        self.name = kind

    def convert(self, value, param, ctx):
        from .run import named

        try:
            return named(self.kind, value)
        except UsageError as e:
            if ":" in str(value):
                self.fail(str(e), param, ctx)
        import difflib

        names = sorted(self.table)
        close = difflib.get_close_matches(str(value), names, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        self.fail(f"no {self.kind} {value!r}; {hint}there are {', '.join(names)} "
                  "(or MODULE:NAME)", param, ctx)


SCENARIO = click.option("--scenario", "-s", required=True, metavar="NAME",
                        type=_Name("scenario", SCENARIOS),
                        help="race class to explore (fsrace list names them), or "
                        "MODULE:NAME")
FLUSHER = click.option(
    "--flusher", is_flag=True,
    help="the faulters start writeback with sync_file_range(SYNC_FILE_RANGE_WRITE), as the "
    "flusher does, where they would msync (which FUSE, for one, orders after the operation "
    "by the inode lock); kept in the saved run")
DIRECT_READS = click.option(
    "--direct-reads", is_flag=True,
    help="the remover reads with O_DIRECT where it would pread: past a network client's "
    "page cache, what the server holds (9p's client from 6.12 answers its own reads past a "
    "truncate with zeros); only where direct reads write back what a mapping dirtied "
    "first (9p's did on 7.2.13, NFS's on 6.12 did not); kept in the saved run")
MODULE = click.option(
    "--module", "modules", multiple=True, metavar="NAME.ko",
    type=click.Path(exists=True, dir_okay=False),
    help="(in the guest) replace the kernel's module of this name with this build, made "
    "against the guest kernel's headers, before the runs: the file system is unmounted, "
    "the module swapped, and it is mounted again; repeatable, loaded in this order "
    "(nfs.ko before nfsv4.ko). A module the kernel lacks is loaded before the mount "
    "(ntfs3.ko); fsracefuse.ko, a renamed build of fs/fuse "
    "(docs/findings/fuse-rename-module.sh), loads beside the built-in FUSE and serves "
    "--fs fuse")
PROTOCOL = click.option("--protocol", "-p", required=True, metavar="NAME",
                        type=_Name("protocol", PROTOCOLS),
                        help="locking protocol (fsrace list names them), or MODULE:NAME")


def _param_options(f):
    f = click.option("--blocks-per-page", type=click.IntRange(1, 4), default=1,
                     show_default=True, help="file blocks per page (1, 2 or 4)")(f)
    f = click.option("--writers", type=click.IntRange(1, 16), default=1, show_default=True,
                     help="faulting tasks, each in its own process")(f)
    f = click.option("--pages", type=click.IntRange(1, 16), default=1, show_default=True,
                     help="pages the operations cover")(f)
    return f


def _params(pages: int, writers: int, blocks_per_page: int) -> Params:
    try:
        return Params(pages=pages, writers=writers, blocks_per_page=blocks_per_page)
    except ValueError as e:
        raise click.UsageError(str(e)) from e


def _output_path(path: str | None, folder: bool = False) -> str | None:
    """An output file (or folder) made writable before any work: its folder is created,
    or the command stops at once with a usage error."""
    if path is None:
        return None
    target = Path(path)
    where = target if folder else target.parent
    if not folder and target.is_dir():
        raise click.UsageError(f"{path} is a folder, not a file")
    if folder and target.exists() and not target.is_dir():
        raise click.UsageError(f"{path} is a file, not a folder")
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise click.UsageError(f"cannot create the folder {where}: {e.strerror}") from e
    try:  # a file made and removed again: the only test that holds for root and /proc
        import tempfile

        with tempfile.NamedTemporaryFile(dir=where, prefix=".fsrace-probe-"):
            pass
    except OSError as e:
        raise click.UsageError(f"cannot write in {where}: {e.strerror}") from e
    if target.is_file() and not os.access(target, os.W_OK):
        raise click.UsageError(f"cannot write {path}")
    return path


# The options only some strategies read; giving one to another strategy is a mistake.
_READ_BY = {
    "seed": ("random", "pct", "auto", "portfolio"),
    "executions": ("random", "pct", "auto", "portfolio"),
    "depth": ("pct", "auto", "portfolio"),
    "preemptions": ("bounded",),
    "jobs": ("stateful",),
    "ray_address": ("stateful",),
}


def _strategy_reads_what_was_given(strategy: str) -> None:
    from click.core import ParameterSource

    ctx = click.get_current_context()
    for name in _READ_BY:
        if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE \
                and strategy not in _READ_BY[name]:
            name = name.replace("_address", "")
            raise click.UsageError(f"--{name} has no effect under --strategy {strategy}; "
                                   f"it is read by {', '.join(_READ_BY[name])}")


def _columns() -> int | None:
    """The terminal's width, or COLUMNS; None into a pipe (one line per entry there)."""
    import shutil

    if sys.stdout.isatty() or "COLUMNS" in os.environ:
        return shutil.get_terminal_size().columns
    return None


def _search_exit(res: SearchResult) -> int:
    if res.counterexample is not None:
        return exits.FOUND
    if res.stopped_by == "interrupted":
        return _stopped_code()
    return exits.OK if res.verdict == Verdict.SAFE else exits.UNKNOWN


class _ProgressLine:
    """One self-rewriting status line on stderr, only on a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.start = time.monotonic()

    def __call__(self, res: SearchResult) -> None:
        rate = res.executions / max(res.elapsed_s, 1e-9)
        states = f"{res.states} states, " if res.states is not None else ""
        line = (f"  {res.executions} executions ({rate:.0f}/s), {res.traces} traces, "
                f"{states}depth {res.max_depth}, {res.steps} steps, {res.elapsed_s:.1f}s")
        cx = res.counterexample
        found = f"found a {cx.outcome}, schedule {cx.schedule}" if cx else "nothing found"
        _measured("search", f"{line.strip()}; {found}")
        if self.enabled:
            sys.stderr.write(f"\r{line} ")
            sys.stderr.flush()

    def clear(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 78 + "\r")
            sys.stderr.flush()


class CannotRun(click.ClickException):
    """The machine could not do what was asked (not root, a mount, the guest, Ray)."""

    exit_code = exits.CANNOT_RUN


_MEASURED: dict[str, str] = {}  # what a command has measured so far, for an internal error


def _measured(key: str, text: str) -> None:
    _MEASURED[key] = text


class _Commands(click.Group):
    """Every command: bad usage is one line and exit 2; a failure of fsrace itself ends in
    one message and a saved traceback, never a traceback on the terminal."""

    def main(self, args=None, prog_name=None, **extra):
        extra.pop("standalone_mode", None)
        try:
            code = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx else "fsrace"
            click.echo(f"{where}: {e.format_message()} (see {where} --help)", err=True)
            sys.exit(exits.USAGE)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.Abort:  # Ctrl-C outside a search
            click.echo("interrupted", err=True)
            sys.exit(_stopped_code())
        sys.exit(code if isinstance(code, int) else exits.OK)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit,
                KeyboardInterrupt):
            raise
        except BrokenPipeError:  # the reader went away (| head): nothing left to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(exits.OK)
        except Exception as e:  # noqa: BLE001 - the one place that catches everything
            import tempfile
            import traceback

            fd, path = tempfile.mkstemp(prefix="fsrace-error-", suffix=".txt")
            measured = "\n".join(_MEASURED.values())
            with os.fdopen(fd, "w") as f:
                f.write(f"fsrace {' '.join(sys.argv[1:])}\n\n")
                if measured:
                    f.write(f"measured before the error:\n{measured}\n\n")
                traceback.print_exc(file=f)
            if measured:
                click.echo(f"measured before the error:\n{measured}", err=True)
            click.echo(f"fsrace: internal error: {type(e).__name__}: {e}\n"
                       f"This is a bug in fsrace. The traceback is in {path}; please "
                       f"report it with the command line.", err=True)
            ctx.exit(exits.INTERNAL)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=exits.help_text())
@click.version_option(package_name="fsrace")
@click.option("--no-plugins", is_flag=True,
              help="leave out the scenarios and protocols of other installed packages")
def main(no_plugins: bool) -> None:
    """Find and rule out races between page faults and block-removing operations."""
    # SIGTERM stops a search the way Ctrl-C does, so it too prints what was covered;
    # stress installs its own handler, which also removes the scratch file system.
    signal.signal(signal.SIGTERM, _terminate)
    if no_plugins:
        return
    from .run import load_plugins

    for warning in load_plugins():  # scenarios and protocols of installed packages
        click.echo(f"fsrace: {warning}", err=True)


_TERMINATED: list[int] = []  # set once SIGTERM arrived


def _terminate(signum, frame) -> None:
    _TERMINATED.append(signum)
    raise KeyboardInterrupt


def _stopped_code() -> int:
    return exits.TERMINATED if _TERMINATED else exits.INTERRUPTED


@main.command("list")
def list_cmd() -> None:
    """Scenarios, protocols and strategies: one entry each, wrapped to a terminal's width
    (one line each into a pipe, unless COLUMNS is set)."""
    import textwrap

    width = _columns() or 0

    def entry(name: str, text: str) -> None:
        line = f"  {name:24} {text}"
        if width and len(line) > width:
            line = "\n".join(textwrap.wrap(line, width, subsequent_indent=" " * 27,
                                            break_on_hyphens=False))
        click.echo(line)

    click.echo("scenarios:")
    for name, s in sorted(SCENARIOS.items()):
        entry(name, f"{s.summary} [exercises: {', '.join(s.exercises)}]")
    click.echo("protocols:")
    for name, p in sorted(PROTOCOLS.items()):
        entry(name, p.summary)
    click.echo("strategies:")
    for name, text in STRATEGIES.items():
        entry(name, text)


@main.command("check")
@SCENARIO
@PROTOCOL
@click.option("--strategy", type=click.Choice(list(STRATEGIES)), default="auto",
              show_default=True, help="how to search (fsrace list says what each does)")
@click.option("--seed", type=int, default=0, show_default=True, help="seed for random, pct")
@click.option("--executions", type=click.IntRange(1), default=1000, show_default=True,
              help="executions for random, pct and the pct side of auto")
@click.option("--depth", type=click.IntRange(1), default=3, show_default=True,
              help="PCT bug depth (priority change points + 1)")
@click.option("--preemptions", type=click.IntRange(0), default=3, show_default=True,
              help="highest preemption bound for bounded")
@click.option("--max-retries", type=click.IntRange(1), default=12, show_default=True,
              help="times a task may start an operation over before it counts as starving")
@click.option("--max-steps", type=click.IntRange(1), default=400, show_default=True,
              help="step bound per execution")
@click.option("--max-executions", type=click.IntRange(1), default=None,
              help="stop after this many executions [default: no bound]")
@click.option("--time-limit", type=click.FloatRange(0, min_open=True), default=None,
              help="stop after this many seconds [default: no bound]")
@click.option("--jobs", type=click.IntRange(1, 256), default=1, show_default=True,
              help="worker processes sharing one stateful search (they lend each other "
              "branches; states and traces then vary from run to run, the verdict not)")
@click.option("--ray", "ray_address", metavar="ADDRESS", default=None,
              help="run the stateful search's --jobs workers as actors on this Ray cluster "
              "('local': start one here; needs pip install 'fsrace[ray]')")
@click.option("--no-shrink", is_flag=True, help="print the race as found, unshrunk")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, writable=True),
              help="also write a self-contained HTML timeline to this file")
@_param_options
def check_cmd(scenario, protocol, strategy, seed, executions, depth, preemptions, max_retries,
              max_steps, max_executions, time_limit, jobs, ray_address, no_shrink, as_json,
              html_file, pages, writers, blocks_per_page) -> None:
    """Explore a scenario under a protocol. Exit 0: safe (a complete search found
    nothing); 1: a race, deadlock or starvation; 4: unknown (the search stopped at a bound
    or samples schedules)."""
    params = _params(pages, writers, blocks_per_page)
    _strategy_reads_what_was_given(strategy)
    _output_path(html_file)
    progress = _ProgressLine(not as_json)
    from .distributed import DistributedError

    try:
        res = check(scenario, protocol, params, strategy, seed, executions,
                    Limits(max_steps, max_retries, max_executions, time_limit),
                    shrink_budget_s=0 if no_shrink else 5.0, progress=progress,
                    depth=depth, preemptions=preemptions, jobs=jobs, ray=ray_address)
    except UsageError as e:
        raise click.UsageError(str(e)) from e
    except DistributedError as e:
        raise CannotRun(str(e)) from e
    progress.clear()
    if as_json:
        from .report.html import json_record

        click.echo(json.dumps(json_record(res), indent=2))
    else:
        click.echo(full_report(res))
    if html_file:
        from .report.html import write_trace_page

        path = write_trace_page(res, html_file)
        click.echo(f"timeline written to {path}", err=True)
    sys.exit(_search_exit(res.search))


@main.command("replay")
@SCENARIO
@PROTOCOL
@click.argument("schedule")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object, as check does")
@_param_options
def replay_cmd(scenario, protocol, schedule, as_json, pages, writers, blocks_per_page) -> None:
    """Re-run one schedule exactly, printing every step. SCHEDULE is the task of each step,
    run-length encoded ('0:10,1:25': task 0 ten steps, then task 1 twenty-five), as check
    prints it. Exit 0: every check held; 1: a race, deadlock or starvation; 4: the step
    bound cut it."""
    params = _params(pages, writers, blocks_per_page)
    try:
        result, rec = replay_check(scenario, protocol, Schedule.parse(schedule), params)
    except (ScheduleError, ReplayError) as e:
        raise click.UsageError(str(e)) from e
    if as_json:
        from .report.html import json_record

        click.echo(json.dumps(json_record(result, "replay"), indent=2))
    elif rec.outcome in FAILURES:
        click.echo(failure_report(rec))
    else:
        click.echo(timeline(rec))
        click.echo(f"\nexecution {rec.outcome}: every check held")
    if rec.outcome in FAILURES:
        sys.exit(exits.FOUND)
    sys.exit(exits.UNKNOWN if rec.outcome == Outcome.BOUNDED else exits.OK)


@main.command("matrix")
@click.option("--max-executions", type=click.IntRange(1), default=10_000, show_default=True,
              help="bound per cell (executions, so the table is the same on every machine)")
@click.option("--markdown", "as_markdown", is_flag=True, help="print docs/verdicts.md")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--html", "html_dir", type=click.Path(file_okay=False, writable=True),
              help="also write index.html and a timeline page per cell into this folder")
@click.option("--strategy", type=click.Choice(["stateful", "dpor"]), default="stateful",
              show_default=True, help="the complete search each cell gets")
@click.option("--jobs", type=click.IntRange(1, 256), default=os.cpu_count() or 1,
              show_default="all cores", help="processes searching cells side by side")
@click.option("--ray", "ray_address", metavar="ADDRESS", default=None,
              help="search the cells as tasks on this Ray cluster ('local': start one on "
              "this machine; needs pip install 'fsrace[ray]')")
@click.option("--cell-time-limit", type=click.FloatRange(0, min_open=True), default=None,
              help="seconds per cell (the table then depends on the machine)")
@click.option("--time-limit", type=click.FloatRange(0, min_open=True), default=None,
              help="seconds for the whole matrix: cells still searching then stop, and those "
              "not started end unknown at once")
@click.option("--protocol", "-p", "protocols", multiple=True, metavar="NAME",
              type=_Name("protocol", PROTOCOLS),
              help="only this protocol's column (repeatable; NAME or MODULE:NAME)")
@click.option("--scenario", "-s", "scenarios", multiple=True, metavar="NAME",
              type=_Name("scenario", SCENARIOS),
              help="only this scenario's row (repeatable; NAME or MODULE:NAME)")
@_param_options
def matrix_cmd(max_executions, as_markdown, as_json, html_dir, strategy, jobs, ray_address,
               cell_time_limit, time_limit, protocols, scenarios, pages, writers,
               blocks_per_page) -> None:
    """Every scenario under every protocol, each verdict from a search. Exit 0: the table
    is made (whatever its verdicts); 130: interrupted, after the cells searched so far."""
    params = _params(pages, writers, blocks_per_page)
    protocols = list(protocols) or None
    scenarios = list(scenarios) or None
    _output_path(html_dir, folder=True)
    from .matrix import run_matrix
    from .report.matrix_report import markdown, matrix_dict, text_table

    def on_cell(scenario, protocol, res):
        cell = f"  {scenario} / {protocol}: {res.search.verdict}"
        _measured(f"{scenario}/{protocol}", cell)
        line = f"{cell} ({res.search.executions} executions, {res.search.elapsed_s:.1f}s)"
        if sys.stderr.isatty():
            sys.stderr.write("\r" + line[:78].ljust(78))
        else:  # a log: one line per cell, so a long run shows where it is
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    from .distributed import DistributedError

    try:
        m = run_matrix(max_executions, on_cell, params=params, strategy=strategy,
                       jobs=jobs, ray=ray_address, cell_time_limit=cell_time_limit,
                       time_limit=time_limit, protocols=protocols, scenarios=scenarios)
    except DistributedError as e:
        raise CannotRun(str(e)) from e
    if sys.stderr.isatty():
        sys.stderr.write("\r" + " " * 78 + "\r")
    if m.stopped_by == "interrupted":
        searched = [(k, r) for k, r in m.cells.items() if r is not None]
        click.echo(f"interrupted: {len(searched)} cells searched, the rest not:")
        for (scenario, protocol), res in searched:
            click.echo(f"  {scenario} / {protocol}: {res.search.verdict}")
        sys.exit(_stopped_code())
    if as_json:
        click.echo(json.dumps(envelope("matrix", matrix_dict(m)), indent=2))
    elif as_markdown:
        click.echo(markdown(m), nl=False)
    else:
        click.echo(text_table(m, _columns()))
    if m.stopped_by:
        click.echo(f"the matrix stopped at {m.stopped_by}: cells it had not finished by then "
                   "read unknown", err=True)
    if html_dir:
        from .report.html import write_matrix_pages

        click.echo(f"matrix pages written to {write_matrix_pages(m, html_dir)}", err=True)


@main.command("stress")
@click.option("--fs", "fs", help="ext4, xfs, btrfs, tmpfs, fuse or fuse-passthrough "
              "(fsrace's own FUSE server over ext4, with the writeback cache or passthrough) "
              "(made, mounted and removed again; needs root), or an existing folder to work "
              "in a new subfolder of")
@click.option("--scenario", "-s", "scenario", default=None,
              help="race class to run (see fsrace stress --list)")
@click.option("--mix", is_flag=True, help="random mixes of every operation, from the seed")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="worker processes, each with its own mapping")
@click.option("--threads", type=click.IntRange(1, 16), default=1, show_default=True,
              help="threads per worker process, each with its own operations, sharing the "
              "process's mapping (W0, the remover, is the first process's first thread)")
@click.option("--ops", type=click.IntRange(1), default=None,
              help="operations per worker [default: 2000 without --duration]")
@click.option("--duration", type=click.FloatRange(0, min_open=True), default=None,
              help="seconds to run (at most 50000 operations per worker)")
@click.option("--seed", type=int, default=0, show_default=True,
              help="seed of the operation streams (a run is the same for the same seed)")
@click.option("--pages", type=click.IntRange(1, 4096), default=None,
              help="file size in pages [default: 16 for the classes that collapse, insert, "
              "copy or clone; 64 otherwise]")
@click.option("--log", "log_path", type=click.Path(dir_okay=False), default=None,
              help="where to save the run (gzipped JSON) [default: "
              "fsrace-stress-FS-CLASS-SEED-TIME.json.gz, a replay of R beside R; never "
              "over an earlier run]")
@click.option("--replay", "replay_path", type=click.Path(exists=True, dir_okay=False),
              help="rerun the operations of a saved run (same seed, scenario, sizes)")
@click.option("--without", default="", metavar="OP[,OP]",
              help="never draw these operations (e.g. dio_write: the kernel documents direct "
              "writes beside mapped writes of one page as incoherent); kept in the saved run")
@FLUSHER
@DIRECT_READS
@click.option("--min-windows", type=click.IntRange(0), default=1, show_default=True,
              help="race windows (accesses wholly inside one of the class's own "
              "operations) a run needs to be ok rather than not exercised")
@click.option("--json", "as_json", is_flag=True,
              help="print the result as one JSON object (docs/json.md)")
@click.option("--list", "list_only", is_flag=True, help="list the stress scenarios")
@click.option("--vm", is_flag=True, help="run inside a qemu guest (Debian bookworm, 6.1): "
              "--fs nfs, nfs-xfs (NFS v4.2 over loopback exporting ext4 or xfs), nfs3, "
              "nfs41 (v3, v4.1), smb, smb-xfs (SMB 3.1.1, Samba), smb-loose (cache=loose), "
              "ext4, xfs, btrfs, f2fs, btrfs-compress, f2fs-compress (compressed extents, "
              "clusters), nilfs2, gfs2, ocfs2, exfat, vfat, jfs, udf, "
              "tmpfs, fuse, fuse-passthrough (fsrace's FUSE server; passthrough from 6.9), "
              "9p, 9p-loose (9P2000.L over virtio, cache=mmap or loose, qemu's server), "
              "ntfs3 (--kernel linux-image-amd64: 6.1 has none), ntfs (sid's 7.2)")
@click.option("--kernel", default=None, metavar="PKG[/SUITE]",
              help="with --vm: boot this kernel package instead, from bookworm-backports or "
              "SUITE (e.g. linux-image-amd64, linux-image-amd64/sid)")
@MODULE
def stress_cmd(fs, scenario, mix, workers, threads, ops, duration, seed, pages, log_path,
               replay_path, without, flusher, direct_reads, min_windows, as_json, list_only,
               vm, kernel, modules) -> None:
    """Run a race class against the running kernel on a real file system and check every
    value read. Exit 0: every slot's history is linearizable; 1: a violation; 2: bad usage;
    3 (--vm): the guest never finished the run (a hung kernel); 5: not exercised (the class's
    own operation was refused every time, or fewer than --min-windows accesses ran inside
    one); 6: it could not run here (not root, a mount, the guest)."""
    from .stress.ops import SCENARIOS as STRESS
    from .stress.report import stress_dict, stress_report
    from .stress.run import StressConfig, load_config, run_stress, save_log
    from .stress.scratch import ScratchError, Terminated

    if list_only:
        for name, (remover, faulters) in STRESS.items():
            click.echo(f"  {name:24} W0: {', '.join(remover)}; others: {', '.join(faulters)}")
        return
    try:
        if replay_path:
            cfg = load_config(replay_path)
            if fs:
                cfg.fs = fs
        else:
            if not fs:
                raise click.UsageError("--fs is required")
            if mix == (scenario is not None):
                raise click.UsageError("give one of --scenario S or --mix")
            cfg = StressConfig(fs, scenario, workers,
                               ops if ops or duration else 2000, duration, seed, pages,
                               threads=threads,
                               without=tuple(k for k in without.split(",") if k),
                               flusher=flusher, direct_reads=direct_reads,
                               min_windows=min_windows)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    if (kernel or modules) and not vm:
        raise click.UsageError(f"{'--kernel' if kernel else '--module'} needs --vm")
    _module_names(modules)
    _stress_fs_name(cfg.fs, vm)
    log_path = _output_path(log_path or _default_log(cfg, vm, replay_path))
    if replay_path and os.path.abspath(log_path) == os.path.abspath(replay_path):
        raise click.UsageError("--log names the run being replayed; give another file")
    if vm:
        if as_json:
            raise click.UsageError("--json is not available with --vm yet; the guest's "
                                   "saved run (--log) holds the whole result")
        _stress_in_vm(cfg, log_path, kernel, modules)
    try:
        res = run_stress(cfg, progress=sys.stderr.isatty())
    except ScratchError as e:
        raise CannotRun(str(e)) from e
    except KeyboardInterrupt:
        click.echo("interrupted: the scratch file system was removed", err=True)
        sys.exit(exits.INTERRUPTED)
    except Terminated:
        click.echo("terminated: the scratch file system was removed", err=True)
        sys.exit(exits.TERMINATED)
    save_log(res, log_path)
    if as_json:
        click.echo(json.dumps(envelope("stress", stress_dict(res, log_path)), indent=2))
    else:
        click.echo(stress_report(res))
        click.echo(f"run saved to {log_path} (replay: fsrace stress --replay {log_path})")
    sys.exit({"bad": exits.FOUND, "ok": exits.OK}.get(res.verdict, exits.NOT_EXERCISED))


def _default_log(cfg, vm: bool, replay_path: str | None) -> str:
    """Where a run is saved unless --log says: named by file system, class, seed and the
    time, a replay beside the run it replays; never over an existing file."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    if replay_path:
        stem = replay_path.removesuffix(".gz").removesuffix(".json")
        name = f"{stem}.replay-{stamp}"
    else:
        from .stress.scratch import FILESYSTEMS

        fs_name = cfg.fs if vm or cfg.fs in FILESYSTEMS else "dir"
        name = (f"fsrace-stress-{'vm-' if vm else ''}{fs_name}-{cfg.scenario or 'mix'}-"
                f"{cfg.seed}-{stamp}")
    path, n = f"{name}.json.gz", 1
    while os.path.exists(path):  # two runs in one second: evidence is never overwritten
        n += 1
        path = f"{name}-{n}.json.gz"
    return path


def _stress_fs_name(fs: str, vm: bool) -> None:
    from .stress.scratch import FILESYSTEMS
    from .stress.vm import VM_FILESYSTEMS

    names = VM_FILESYSTEMS if vm else FILESYSTEMS
    if fs in names or (not vm and os.path.isdir(fs)):
        return
    import difflib

    close = difflib.get_close_matches(fs, names, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    what = "" if vm else " nor an existing folder"
    raise click.UsageError(f"--fs {fs}: neither a file system fsrace can make{what}; "
                           f"{hint}there are {', '.join(names)}")


@main.command("stress-sweep")
@click.option("--fs", "filesystems", default=",".join(
    ("nfs", "nfs-xfs", "smb", "smb-xfs", "ext4", "xfs", "btrfs", "f2fs", "nilfs2", "gfs2",
     "ocfs2", "tmpfs")), show_default=True, help="comma-separated guest file systems")
@click.option("--kernel", "kernels", multiple=True, metavar="PKG[/SUITE]",
              help="kernel packages to boot, repeatable [default: bookworm's 6.1]")
@click.option("--scenario", "-s", "scenarios", multiple=True,
              help="race classes, repeatable [default: all]")
@click.option("--duration", type=click.FloatRange(0, min_open=True), default=2.0,
              show_default=True, help="seconds per class")
@click.option("--pages", type=click.IntRange(1, 4096), default=4, show_default=True,
              help="file size in pages")
@click.option("--min-windows", type=click.IntRange(0), default=1, show_default=True,
              help="race windows a cell needs to be ok rather than not exercised; its "
              "class runs round after round (seed 0, 1, ...) until its rounds hit them "
              "or raced --cap seconds")
@click.option("--cap", type=click.FloatRange(0, min_open=True), default=None,
              help="seconds of racing per cell at most, in rounds of --duration "
              "[default: one round]")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="guests booted at once (each a qemu with 2 vCPUs and 3 GiB)")
@click.option("--ray", "ray_address", metavar="ADDRESS", default=None,
              help="boot each (kernel, file system) as a task on this Ray cluster ('local': "
              "start one here; needs pip install 'fsrace[ray]')")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="fsrace-sweep",
              show_default=True, help="folder for every report and saved run")
@FLUSHER
@DIRECT_READS
@MODULE
def stress_sweep_cmd(filesystems, kernels, scenarios, duration, pages, min_windows, cap,
                     jobs, ray_address, out_dir, flusher, direct_reads, modules) -> None:
    """Every race class on every file system in a qemu guest, on each kernel: prints the
    table of docs/real-kernels.md (markdown) as it fills."""
    from dataclasses import asdict
    from pathlib import Path

    from .distributed import DistributedError
    from .stress.ops import SCENARIOS as STRESS
    from .stress.scratch import Terminated
    from .stress.sweep import in_order, markdown, sweep
    from .stress.vm import VM_FILESYSTEMS, main_progress

    fss = [f for f in filesystems.split(",") if f]
    bad = [f for f in fss if f not in VM_FILESYSTEMS]
    unknown = [s for s in scenarios if s not in STRESS]
    if bad or unknown:
        raise click.UsageError(f"unknown: {', '.join(bad + unknown)}; file systems: "
                               f"{', '.join(VM_FILESYSTEMS)}; classes: {', '.join(STRESS)}")
    _module_names(modules)
    cells = []
    try:
        for cell in sweep(fss, list(kernels) or [None], list(scenarios) or list(STRESS),
                          duration, pages, Path(out_dir), progress=main_progress,
                          min_windows=min_windows, cap=cap, jobs=jobs, ray=ray_address,
                          flusher=flusher, direct_reads=direct_reads,
                          modules=tuple(str(Path(m).resolve()) for m in modules)):
            cells.append(cell)
            main_progress(f"{cell.kernel} {cell.fs} {cell.scenario}: {cell.text}")
    except (KeyboardInterrupt, Terminated) as e:
        click.echo(f"stopped; the cells so far:\n{markdown(cells)}", err=True)
        sys.exit(exits.INTERRUPTED if isinstance(e, KeyboardInterrupt) else exits.TERMINATED)
    except DistributedError as e:
        raise click.UsageError(str(e)) from None
    cells = in_order(cells, list(kernels) or [None], fss, list(scenarios) or list(STRESS))
    table = markdown(cells)
    (Path(out_dir) / "table.md").write_text(table)
    (Path(out_dir) / "cells.json").write_text(json.dumps([asdict(c) for c in cells], indent=1))
    click.echo(table)
    sys.exit(exits.FOUND if any(c.violated for c in cells) else exits.OK)


@main.command("stress-table")
@click.argument("sweeps", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False))
@click.option("--min-windows", type=click.IntRange(0), default=None,
              help="race windows a cell needs to be ok [default: what its runs asked for]")
def stress_table_cmd(sweeps, min_windows) -> None:
    """The table of stress sweeps (their --out folders), each cell read again from the
    runs the sweep kept, by this fsrace's rules: a cell flagged before its finding or
    expectation was written reads as that now. No guest is booted; the folders are only
    read. Each cell whose text changed is listed on stderr."""
    from .stress.sweep import markdown

    cells = []
    for cell, before in _reread_sweeps(sweeps, min_windows):
        if cell.text != before:
            click.echo(f"{cell.kernel} {cell.fs} {cell.scenario}: {before} -> {cell.text}",
                       err=True)
        cells.append(cell)
    click.echo(markdown(cells), nl=False)


def _reread_sweeps(sweeps, min_windows=None) -> list:
    """Every cell of the sweeps' folders, read again from their kept runs (sweep.reread),
    with its text before; a folder that is not a sweep's is a usage error."""
    from .stress.sweep import reread

    out = []
    for d in sweeps:
        try:
            out += reread(Path(d), min_windows)
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise click.UsageError(f"{d}: not a sweep's folder (no sweep's cells.json, or "
                                   f"runs it cannot read: {e})") from None
    return out


@main.command("stress-beside")
@click.argument("sweeps", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False))
@click.option("--max-executions", type=click.IntRange(1), default=10_000, show_default=True,
              help="bound of each model search (1 page, 1 writer, as docs/verdicts.md)")
@click.option("--jobs", type=click.IntRange(1, 256), default=os.cpu_count() or 1,
              show_default=True, help="model searches side by side")
def stress_beside_cmd(sweeps, max_executions, jobs) -> None:
    """The model beside the kernel: for every cell of stress sweeps (their --out folders),
    the model's verdict under the protocol of that file system and kernel and the sweep's
    result (read again from its kept runs, as stress-table does), `model / kernel`,
    marked ≠ where they disagree."""
    from .stress.beside import beside_markdown, model_verdicts

    cells = [cell for cell, _ in _reread_sweeps(sweeps)]
    click.echo(beside_markdown(cells, model_verdicts(cells, max_executions, jobs)))


@main.command("stress-rates")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.99, show_default=True,
              help="chance a cell with K windows shows each race")
def stress_rates_cmd(runs, confidence) -> None:
    """How often a race window showed each race, from saved stress runs (files, or folders
    of them such as a sweep's --out), and the windows K a cell needs to show it: prints a
    markdown table per kernel, file system and class that showed a violation."""
    import gzip

    from .stress.windows import Rate, Windows, windows_needed

    files = [f for r in map(Path, runs)
             for f in (sorted(r.glob("*.json.gz")) if r.is_dir() else [r])]
    rates: dict[tuple[str, str, str], Rate] = {}
    uncounted = 0
    for f in files:
        try:
            doc = json.loads(gzip.decompress(f.read_bytes()))
            cfg = doc["config"]
        except (OSError, ValueError, KeyError) as e:
            raise click.UsageError(f"{f}: not a saved stress run ({e})") from None
        windows = doc.get("windows")
        if not cfg.get("scenario") or windows is None or (
                doc["violations"] and "before_violation" not in windows):
            uncounted += 1  # --mix, or saved before windows (to a violation) were counted
            continue
        fs = (doc.get("paths") or {}).get("fstype") or cfg["fs"]
        key = (doc.get("kernel", "?"), fs, cfg["scenario"])
        rates.setdefault(key, Rate()).add(Windows(**windows))
    pct = f"{confidence:.0%}"
    click.echo(f"| kernel | file system | class | runs | showed it | windows | rate "
               f"| K ({pct}) | K ({pct}, 90% lower bound) |")
    click.echo("|---|---|---|---|---|---|---|---|---|")
    worst = 0
    for (kernel, fs, scenario), r in sorted(rates.items()):
        if not r.shown:
            continue
        k, k_lo = windows_needed(r.p, confidence), windows_needed(r.lower(), confidence)
        worst = max(worst, k_lo or 0)
        click.echo(f"| {kernel} | {fs} | {scenario} | {r.runs} | {r.shown} | {r.windows:,} "
                   f"| 1 in {1 / r.p:,.0f} | {k:,} | {f'{k_lo:,}' if k_lo else '-'} |")
    clean = sum(1 for r in rates.values() if not r.shown)
    click.echo(f"\n{len(files)} runs read; {clean} (kernel, file system, class) showed no "
               f"violation; {uncounted} runs without windows counted to a violation, left out")
    if worst:
        click.echo(f"K that shows every race above with {pct} at its lower-bound rate: "
                   f"{worst:,}")


@main.command("vm-run")
@click.argument("program", type=click.Path(exists=True, dir_okay=False))
@click.option("--fs", required=True, help="the guest file system, as for stress --vm")
@click.option("--kernel", default=None, metavar="PKG[/SUITE]",
              help="boot this kernel package instead of bookworm's 6.1")
@click.option("--args", "arg_sets", multiple=True, metavar="'ARGS'",
              help="the program's arguments after the file, as one shell-quoted string; "
              "repeat for more runs in the same guest [default: one run, none]")
@click.option("--run-timeout", type=click.FloatRange(1), default=300, show_default=True,
              help="seconds one run may take before the guest is stopped as hung")
@click.option("--file", "files", multiple=True, metavar="PATH",
              type=click.Path(exists=True, dir_okay=False),
              help="copy this file into the guest's /io/files for the program (a kernel "
              "module to load, data); repeatable")
@MODULE
def vm_run_cmd(program, fs, kernel, arg_sets, run_timeout, files, modules) -> None:
    """Run a program of your own in the qemu guest fsrace's stress runs use, on a file of
    the mounted file system: how docs/findings' reproducers and fstests/ ran. PROGRAM is a
    C file (built statically with the system's cc), a static executable, or a script the
    guest can run (bash, python3, the guest's own tools); each run gets a fresh
    FILE as its first argument, and finds the files given with --file in /io/files. Exit
    0: every run exited 0; 1: one did not; 2: bad usage, or the C file does not build; 3:
    a run did not end (a hung kernel); 6: the guest failed."""
    import shlex

    from .stress.scratch import Terminated
    from .stress.vm import HUNG, VMError, main_progress, run_program_in_vm
    from .stress.worker import WorkerBuildError

    _stress_fs_name(fs, vm=True)
    _module_names(modules)
    if not program.endswith(".c") and not os.access(program, os.X_OK):
        raise click.UsageError(f"{program} is neither a C file nor an executable")
    try:
        sets = [shlex.split(a) for a in arg_sets] or [[]]
    except ValueError as e:
        raise click.UsageError(f"--args: {e}") from e
    try:
        out = run_program_in_vm(Path(program), sets, fs, progress=main_progress,
                                kernel=kernel, run_timeout_s=run_timeout,
                                timeout_s=600 + run_timeout * len(sets),
                                files=tuple(Path(f) for f in files),
                                modules=tuple(Path(m) for m in modules))
    except WorkerBuildError as e:
        raise click.UsageError(str(e)) from e
    except VMError as e:
        raise CannotRun(str(e)) from e
    except (KeyboardInterrupt, Terminated) as e:
        _guest_stopped(e)
    click.echo(f"guest kernel {out.kernel}, {fs} ({out.fstype}), booted in "
               f"{out.boot_s:.1f}s")
    if out.modules:
        click.echo(out.modules)
    for args, run in zip(sets, out.runs, strict=False):
        how = "did not end" if run.status == HUNG else f"exit {run.status}"
        click.echo(f"== {Path(program).name} FILE {shlex.join(args)} ({how})")
        click.echo(run.report.rstrip())
    click.echo("== the guest's kernel log, last lines")
    click.echo("\n".join(out.dmesg.rstrip().splitlines()[-10:]))
    if any(r.status == HUNG for r in out.runs):
        sys.exit(exits.HUNG)
    ok = len(out.runs) == len(sets) and not any(r.status for r in out.runs)
    sys.exit(exits.OK if ok else exits.FOUND)


def _guest_stopped(e: BaseException) -> None:
    """Ctrl-C or SIGTERM while a guest ran (vm.py has killed it and removed its files)."""
    click.echo("stopped: the guest was killed and its files removed", err=True)
    sys.exit(exits.INTERRUPTED if isinstance(e, KeyboardInterrupt) else exits.TERMINATED)


def _module_names(modules) -> None:
    from .stress.vm import VMError, check_modules

    try:
        check_modules(modules)
    except VMError as e:
        raise click.UsageError(f"--module: {e}") from None


def _stress_in_vm(cfg, log_path, kernel, modules=()) -> None:
    from .stress.scratch import Terminated
    from .stress.vm import HUNG, UNCHECKED, VMError, main_progress, run_in_vm

    try:
        out = run_in_vm([cfg], progress=main_progress, kernel=kernel,
                        modules=tuple(Path(m) for m in modules))
    except VMError as e:
        raise CannotRun(str(e)) from e
    except (KeyboardInterrupt, Terminated) as e:
        _guest_stopped(e)
    (run,) = out.runs
    click.echo(f"guest kernel {out.kernel}, {cfg.fs} ({out.fstype}), booted in "
               f"{out.boot_s:.1f}s")
    if out.modules:
        click.echo(out.modules)
    click.echo(run.report.rstrip())
    if run.log:
        with open(log_path, "wb") as f:
            f.write(run.log)
        click.echo(f"run saved to {log_path}")
    # A check that did not finish leaves the verdict unknown; the kernel did its part.
    sys.exit({HUNG: exits.HUNG, UNCHECKED: exits.UNKNOWN}.get(run.status, run.status))


@main.group("export")
def export_group() -> None:
    """Race classes written out for other tools."""


@export_group.command("fstests")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--scenario", "-s", "scenarios", multiple=True,
              help="race class, repeatable [default: every class that has a test]")
@click.option("--number", type=click.IntRange(1, 99999), default=None,
              help="the first test's number in tests/generic [default: 900]")
def export_fstests_cmd(directory, scenarios, number) -> None:
    """fstests tests for race classes: for each, DIRECTORY/tests/generic/N and N.out, and
    the C helper they run in DIRECTORY/src. fstests/install.sh builds the helper into an
    fstests checkout and adds the tests to its group list."""
    from pathlib import Path

    from .stress.fstests import FIRST_NUMBER, TESTS, export

    unknown = [s for s in scenarios if s not in TESTS]
    if unknown:
        raise click.UsageError(f"no fstests test for {', '.join(unknown)}; there are tests "
                               f"for {', '.join(TESTS)}")
    chosen = list(scenarios) or list(TESTS)
    first = FIRST_NUMBER if number is None else number
    for path in export(chosen, Path(directory), first):
        click.echo(path)


@main.command("demo")
def demo_cmd() -> None:
    """The seed race found from scratch, and the fix verified."""
    scenario = "punch-write-fault"
    click.echo("fsrace demo: the 2012 race between hole punching and an mmap write fault")
    click.echo(f"scenario {scenario}: {SCENARIOS[scenario].summary}\n")
    results = []
    for protocol in ("linux-2012", "invalidate-lock"):
        progress = _ProgressLine(True)
        res = check(scenario, protocol, progress=progress)
        progress.clear()
        results.append(res)
    click.echo(f"{'protocol':18} {'verdict':8} {'executions':>10} {'states':>7} "
               f"{'complete':>8} {'time':>8}")
    for r in results:
        s = r.search
        click.echo(f"{r.protocol:18} {s.verdict:8} {s.executions:>10} {s.states or '-':>7} "
                   f"{'yes' if s.complete else 'no':>8} {s.elapsed_s:>7.2f}s")
    click.echo("")
    for r in results:
        click.echo(full_report(r))
        click.echo("")


if __name__ == "__main__":
    main()
