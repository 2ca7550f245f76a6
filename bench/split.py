"""Would splitting one stateful search into parts pay? For each split depth: the parts the
planning search makes, the states they explore in all against the distinct states, the
largest part's share of the work, and the wall time the parts would take on N workers
(each part's measured time, longest first onto the least loaded worker).

    python bench/split.py [--pages P] [--writers W] [--depths 1,2,4] [--workers 2,64]
"""

from __future__ import annotations

import argparse
import heapq
import platform
import time


def wall_on(workers: int, times: list[float]) -> float:
    loads = [0.0] * workers
    for t in sorted(times, reverse=True):
        heapq.heapreplace(loads, loads[0] + t)
    return max(loads)


def main() -> None:
    from fsrace.explore.search import Limits, search
    from fsrace.explore.split import plan, search_part
    from fsrace.explore.stateful import StatefulDPOR
    from fsrace.run import builder
    from fsrace.scenarios import Params

    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="punch-write-fault")
    ap.add_argument("--protocol", default="invalidate-lock")
    ap.add_argument("--pages", type=int, default=1)
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--depths", default="1,2,4")
    ap.add_argument("--workers", default="2,64")
    args = ap.parse_args()
    build = builder(args.scenario, args.protocol, Params(pages=args.pages, writers=args.writers))
    workers = [int(w) for w in args.workers.split(",")]
    print(f"# {args.scenario} / {args.protocol} {args.pages}p{args.writers}w, "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")

    t = time.perf_counter()
    whole = search(build, StatefulDPOR(), Limits(), stop_on_failure=False)
    one = time.perf_counter() - t
    print(f"unsplit: {whole.verdict}, {whole.states} states, {one:.1f} s")
    head = (f"{'depth':>5} {'parts':>5} {'distinct':>9} {'explored':>9} {'x':>5} "
            f"{'largest':>8} {'sum s':>7} " + " ".join(f"{f'{w} wkrs s':>9}" for w in workers))
    print(head)
    for depth in (int(d) for d in args.depths.split(",")):
        t = time.perf_counter()
        top, parts, keys = plan(build, depth, Limits())
        planning = time.perf_counter() - t
        times, explored, largest = [], len(keys), 0
        for part in parts:
            t = time.perf_counter()
            pr = search_part(build, part, Limits())
            times.append(time.perf_counter() - t)
            explored += len(pr.keys)
            largest = max(largest, len(pr.keys))
            keys |= pr.keys
        walls = " ".join(f"{planning + wall_on(w, times):>9.1f}" for w in workers)
        print(f"{depth:>5} {len(parts):>5} {len(keys):>9} {explored:>9} "
              f"{explored / whole.states:>5.2f} {largest / whole.states:>8.2f} "
              f"{planning + sum(times):>7.1f} {walls}", flush=True)


if __name__ == "__main__":
    main()
