"""One stateful search on 1 and on N worker processes, alternated so that this noisy host's
drift falls on both alike: states, states explored (shared ones once per worker), branches
lent, executions, wall time, and the speed-up of each pair.

    python bench/parallel.py [--scopes 1x2,2x2] [--jobs 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import platform
import time


def main() -> None:
    from fsrace.explore.parallel import parallel_search
    from fsrace.explore.search import Limits, search
    from fsrace.explore.stateful import StatefulDPOR
    from fsrace.run import builder
    from fsrace.scenarios import Params

    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="punch-write-fault")
    ap.add_argument("--protocol", default="invalidate-lock")
    ap.add_argument("--scopes", default="1x2,2x2")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    print(f"# {args.scenario} / {args.protocol}, {platform.machine()}, "
          f"Python {platform.python_version()}")
    print(f"{'scope':>5} {'jobs':>4} {'verdict':>7} {'states':>7} {'explored':>8} "
          f"{'lent':>4} {'execs':>6} {'wall s':>7} {'speed-up':>8}")
    for scope in args.scopes.split(","):
        pages, writers = (int(x) for x in scope.split("x"))
        build = builder(args.scenario, args.protocol, Params(pages=pages, writers=writers))
        for _ in range(args.rounds):
            t = time.perf_counter()
            one = search(build, StatefulDPOR(), Limits(), stop_on_failure=False)
            one_s = time.perf_counter() - t
            print(f"{scope:>5} {1:>4} {one.verdict:>7} {one.states:>7} {one.states:>8} "
                  f"{0:>4} {one.executions:>6} {one_s:>7.1f}", flush=True)
            t = time.perf_counter()
            many = parallel_search(build, args.jobs, Limits(), stop_on_failure=False)
            many_s = time.perf_counter() - t
            print(f"{scope:>5} {args.jobs:>4} {many.verdict:>7} {many.states:>7} "
                  f"{many.explored:>8} {many.parts - 1:>4} {many.executions:>6} "
                  f"{many_s:>7.1f} {one_s / many_s:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
