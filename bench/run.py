"""Benchmark matrix for the explorer: complete searches, scaled scenarios, classic
programs, and time to first race per strategy. Each case runs in its own process so its
peak memory is its own.

    python bench/run.py [--time-limit S] [--only SUBSTRING] [--jobs N] [--json FILE]

`--jobs N` runs the stateful cases as one search on N worker processes; their memory is
then the largest sum of the whole process tree's resident sets, sampled every 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time

CASES = [
    # (label, kind, args)
    ("readers(8)", "toy", {"program": "readers", "n": 8}),
    ("lastwrite(6)", "toy", {"program": "lastwrite", "n": 6}),
    ("locked_counter(5)", "toy", {"program": "locked_counter", "n": 5}),
    ("writeback-store / linux-2012", "scenario",
     {"scenario": "writeback-store", "protocol": "linux-2012"}),
    ("punch-read / linux-2012", "scenario", {"scenario": "punch-read", "protocol": "linux-2012"}),
    ("punch-read / invalidate-lock", "scenario",
     {"scenario": "punch-read", "protocol": "invalidate-lock"}),
    ("write-from-own-mapping / invalidate-lock", "scenario",
     {"scenario": "write-from-own-mapping", "protocol": "invalidate-lock"}),
    ("write-from-own-mapping / linux-2012", "scenario",
     {"scenario": "write-from-own-mapping", "protocol": "linux-2012"}),
    ("punch-write-fault / invalidate-lock 1p1w", "scenario",
     {"scenario": "punch-write-fault", "protocol": "invalidate-lock"}),
    ("punch-write-fault / invalidate-lock 1p2w", "scenario",
     {"scenario": "punch-write-fault", "protocol": "invalidate-lock", "pages": 1, "writers": 2}),
    ("punch-write-fault / invalidate-lock 2p2w", "scenario",
     {"scenario": "punch-write-fault", "protocol": "invalidate-lock", "pages": 2, "writers": 2}),
    ("punch-write-fault / invalidate-lock 3p3w", "scenario",
     {"scenario": "punch-write-fault", "protocol": "invalidate-lock", "pages": 3, "writers": 3}),
    ("punch-write-fault / invalidate-lock 4p4w", "scenario",
     {"scenario": "punch-write-fault", "protocol": "invalidate-lock", "pages": 4, "writers": 4}),
] + [
    (f"punch-write-fault / invalidate-lock {p}p{w}w stateful", "scenario",
     {"scenario": "punch-write-fault", "protocol": "invalidate-lock", "pages": p, "writers": w,
      "strategy": "stateful"})
    for p, w in ((1, 1), (1, 2), (2, 2), (3, 3))
] + [
    (f"punch-write-fault / linux-2012 1p3w first race, {s}", "scenario",
     {"scenario": "punch-write-fault", "protocol": "linux-2012", "writers": 3, "strategy": s,
      "stop": True})
    for s in ("dpor", "stateful", "auto")
]
RACE_STRATEGIES = ["auto", "stateful", "dpor", "random", "pct", "bounded", "portfolio"]


def _tree_rss_kib(root: int) -> int:
    """The resident sets of `root` and every process descended from it, summed (KiB)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue  # gone meanwhile
        parents[int(entry)] = int(fields["PPid"])
        rss[int(entry)] = int(fields.get("VmRSS", "0 kB").split()[0])
    total = 0
    for pid in rss:
        p = pid
        while p not in (root, 0, 1) and p in parents:
            p = parents[p]
        if p == root:
            total += rss[pid]
    return total


class _TreeMemory:
    """Samples the process tree's summed resident set in a thread; `peak` in KiB."""

    def __init__(self, every: float = 0.5) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.peak = max(self.peak, _tree_rss_kib(os.getpid()))

    def __enter__(self) -> _TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_case(kind: str, args: dict, time_limit: float, jobs: int = 1) -> dict:
    """Runs inside the child process."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    import toy  # the explorer's test programs (tests/toy.py)
    from fsrace.explore.dpor import DPOR
    from fsrace.explore.search import Limits, search
    from fsrace.run import builder, make_strategy
    from fsrace.scenarios import Params

    limits = Limits(time_limit=time_limit)
    if kind == "toy":
        fn = getattr(toy, args["program"])
        build = lambda: fn(args["n"])  # noqa: E731
        strat = DPOR()
        stop = False
    else:
        params = Params(pages=args.get("pages", 1), writers=args.get("writers", 1))
        build = builder(args["scenario"], args["protocol"], params)
        strat = make_strategy(args.get("strategy", "dpor"), seed=args.get("seed", 0))
        stop = args.get("stop", False)
    start = time.perf_counter()
    if jobs > 1 and args.get("strategy") == "stateful":
        from fsrace.explore.parallel import parallel_search

        with _TreeMemory() as tree:
            res = parallel_search(build, jobs, limits, stop_on_failure=stop)
        wall = time.perf_counter() - start
        peak_kib = tree.peak
    else:
        jobs = 1
        res = search(build, strat, limits, stop_on_failure=stop)
        wall = time.perf_counter() - start
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "executions": res.executions, "traces": res.traces, "blocked": res.blocked,
        "states": res.states, "cached": res.cached,
        "steps": res.steps, "complete": res.complete, "verdict": res.verdict,
        "wall_s": wall, "found_by": res.found_by, "jobs": jobs, "peak_mib": peak_kib / 1024,
    }


def child(spec: str) -> None:
    kind, args, limit, jobs = json.loads(spec)
    print(json.dumps(run_case(kind, args, limit, jobs)))


def spawn(kind: str, args: dict, time_limit: float, jobs: int = 1) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child",
                          json.dumps([kind, args, time_limit, jobs])],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def end_to_end(strategy: str, shrink: bool) -> float:
    """`fsrace check` from process start to exit, in seconds."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "fsrace"), "check",
           "-s", "punch-write-fault", "-p", "linux-2012", "--strategy", strategy, "--json"]
    if not shrink:
        cmd.append("--no-shrink")
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=60.0, help="per case, seconds")
    ap.add_argument("--only", default="", help="run only cases whose label contains this")
    ap.add_argument("--jobs", type=int, default=1,
                    help="run the stateful cases as one search on this many workers")
    ap.add_argument("--json", default="", help="also write the figures to this file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.child:
        child(opts.child)
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {platform.platform()}")
    print(f"command: python bench/run.py --time-limit {opts.time_limit:g}"
          + (f" --only {opts.only!r}" if opts.only else "")
          + (f" --jobs {opts.jobs}" if opts.jobs > 1 else ""))
    print()
    head = (f"{'case':52} {'execs':>8} {'traces':>8} {'states':>8} {'steps':>9} "
            f"{'steps/s':>8} {'wall s':>7} {'MiB':>6} {'jobs':>4}  complete")
    print(head)
    print("-" * len(head))
    figures = {"cases": [], "first_race": []}
    for label, kind, args in CASES:
        if opts.only and opts.only not in label:
            continue
        r = spawn(kind, args, opts.time_limit, opts.jobs)
        rate = r["steps"] / r["wall_s"] if r["wall_s"] else 0
        done = "yes" if r["complete"] else (r["verdict"] if r["verdict"] != "unknown"
                                            else f"no ({opts.time_limit:g}s limit)")
        states = "-" if r["states"] is None else r["states"]
        print(f"{label:52} {r['executions']:>8} {r['traces']:>8} {states:>8} {r['steps']:>9} "
              f"{rate:>8.0f} {r['wall_s']:>7.2f} {r['peak_mib']:>6.0f} {r['jobs']:>4}  {done}",
              flush=True)
        figures["cases"].append({"case": label, **r})
    if not opts.only or "race" in opts.only:
        print()
        print("time to first race, punch-write-fault / linux-2012")
        print(f"{'strategy':12} {'execs':>6} {'search s':>9} {'check, no shrink':>17} "
              f"{'check, shrunk':>14}")
        for strategy in RACE_STRATEGIES:
            r = spawn("scenario", {"scenario": "punch-write-fault", "protocol": "linux-2012",
                                   "strategy": strategy, "stop": True}, opts.time_limit)
            e2e = min(end_to_end(strategy, False) for _ in range(3))
            e2e_shrunk = min(end_to_end(strategy, True) for _ in range(3))
            print(f"{strategy:12} {r['executions']:>6} {r['wall_s']:>9.3f} {e2e:>16.2f}s "
                  f"{e2e_shrunk:>13.2f}s", flush=True)
            figures["first_race"].append({"strategy": strategy, **r, "end_to_end_s": e2e,
                                          "end_to_end_shrunk_s": e2e_shrunk})
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
