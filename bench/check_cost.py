"""What checking a stress run costs: run a class once on a real file system (root), keep
the history the checker is given, then time the check of that same history under one or
more source trees (e.g. this one and an earlier commit checked out elsewhere), each in a
fresh process, one after another:

    python bench/check_cost.py capture --fs xfs -s collapse-read-fault --duration 3 \\
        --seed 2 --out /tmp/run.pkl
    python bench/check_cost.py time /tmp/run.pkl --tree src --tree /tmp/old/src
    python bench/check_cost.py agree /tmp/run.pkl --old /tmp/old/src

The history is a pickle of fsrace's own objects, so the trees compared must share them.
A tree that has not finished after --limit seconds is stopped and reported as such.
`agree` checks the history under this tree, keeps the stretches of up to 60 operations its
search met, and compares this tree's stretch search with the old tree's on each, as read
and with some reads given other values.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import time

TIMER = """
import pickle, sys, time
from fsrace.stress import run
res, finals, t0 = pickle.load(open(sys.argv[1], "rb"))
started = time.monotonic()
run._check(res, finals, t0)
print(f"{time.monotonic() - started:.1f} {len(res.history)} {res.histories_searched} "
      f"{res.shifts_checked} {len(res.violations)}")
"""


def capture(args: argparse.Namespace) -> None:
    from fsrace.stress import run

    def keep(res, finals, t0) -> None:
        part = f"{args.out}.part"
        with open(part, "wb") as f:
            pickle.dump((res, finals, t0), f)
        os.replace(part, args.out)

    run._check = keep  # the run stops short of its own check
    cfg = run.StressConfig(fs=args.fs, scenario=args.scenario, ops=None,
                           duration=args.duration, seed=args.seed, pages=args.pages)
    run.run_stress(cfg)
    print(f"kept the history of {args.scenario} on {args.fs} (seed {args.seed}, "
          f"{args.duration} s) in {args.out}")


def timing(args: argparse.Namespace) -> None:
    print(f"history: {args.history}")
    print(f"{'tree':<40} {'check s':>8} {'operations':>11} {'searched':>9} "
          f"{'shifts':>7} {'violations':>10}")
    for tree in args.tree:
        env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
        started = time.monotonic()
        try:
            out = subprocess.run([sys.executable, "-c", TIMER, args.history], env=env,
                                 capture_output=True, text=True, timeout=args.limit,
                                 check=True).stdout.split()
        except subprocess.TimeoutExpired:
            print(f"{tree:<40} {'>' + str(args.limit):>8}  (stopped unfinished after "
                  f"{time.monotonic() - started:.0f} s)")
            continue
        secs, ops, searched, shifts, bad = out
        print(f"{tree:<40} {secs:>8} {int(ops):>11,} {int(searched):>9,} {int(shifts):>7,} "
              f"{int(bad):>10}")


def agree(args: argparse.Namespace) -> None:
    import dataclasses
    import importlib.util
    import random

    from fsrace.stress import checker, run

    spec = importlib.util.spec_from_file_location(
        "old_checker", os.path.join(args.old, "fsrace", "stress", "checker.py"))
    assert spec is not None and spec.loader is not None
    old = importlib.util.module_from_spec(spec)
    sys.modules["old_checker"] = old  # its dataclasses look their module up
    spec.loader.exec_module(old)
    with open(args.history, "rb") as f:
        res, finals, t0 = pickle.load(f)
    kept, search = [], checker._stretch

    def keep(seg, starts):
        if 2 <= len(seg) <= 60 and len(kept) < args.stretches:
            kept.append((list(seg), set(starts)))
        return search(seg, starts)

    checker._stretch = keep
    run._check(res, finals, t0)
    checker._stretch = search
    rng = random.Random(1)
    same = empty = 0
    for seg, starts in kept:
        values = sorted({v for a in seg for v in a.outcomes} | starts)
        for k in range(4):  # as read, then three variants
            v = seg if k == 0 else [
                dataclasses.replace(a, value=rng.choice(values))
                if not a.write and rng.random() < 0.2 else a for a in seg]
            new = search(v, starts)
            was = old._stretch([old.Access(a.inv, a.resp, a.write, a.value, a.who, a.choices)
                                for a in v], starts)
            same += was == new
            empty += not new
    print(f"{len(kept)} stretches, {4 * len(kept)} searches, {empty} with no value "
          f"explaining them; the same values under both in {same}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("capture", help="run a class and keep the history to check")
    c.add_argument("--fs", default="xfs")
    c.add_argument("-s", "--scenario", default="collapse-read-fault")
    c.add_argument("--duration", type=float, default=3.0)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--pages", type=int, default=4)
    c.add_argument("--out", required=True)
    t = sub.add_parser("time", help="time the check of a kept history under source trees")
    t.add_argument("history")
    t.add_argument("--tree", action="append", required=True,
                   help="a folder holding the fsrace package (repeatable)")
    t.add_argument("--limit", type=float, default=1800.0, help="seconds per tree at most")
    a = sub.add_parser("agree", help="compare the stretch search with an older tree's")
    a.add_argument("history")
    a.add_argument("--old", required=True, help="a folder holding the older fsrace package")
    a.add_argument("--stretches", type=int, default=4000)
    args = ap.parse_args()
    {"capture": capture, "time": timing, "agree": agree}[args.what](args)


if __name__ == "__main__":
    main()
