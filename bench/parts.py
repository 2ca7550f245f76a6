"""Where a one-process stateful search's time goes, by part: keying states, the model's
steps, the races with a cached state's summary, lifting summaries, building programs,
and replaying prefixes (the steps an execution repeats up to its backtrack point). Each
part is timed by a wrapper around its function, so the parts overlap where one calls
another (keying and the summaries are called from the chooser) and the wrappers add a
little to the total. A fixed number of executions makes the work the same in every run.

    python bench/parts.py [--pages 3] [--writers 3] [--executions 8000]
"""

from __future__ import annotations

import argparse
import platform
import time
from collections import Counter


def main() -> None:
    from fsrace.explore import engine, search, stateful
    from fsrace.run import builder
    from fsrace.scenarios import Params

    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="punch-write-fault")
    ap.add_argument("--protocol", default="invalidate-lock")
    ap.add_argument("--pages", type=int, default=3)
    ap.add_argument("--writers", type=int, default=3)
    ap.add_argument("--executions", type=int, default=8000)
    args = ap.parse_args()
    spent: Counter[str] = Counter()

    def timed(owner, name: str, part: str) -> None:
        inner = getattr(owner, name)

        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                spent[part] += time.perf_counter() - t

        setattr(owner, name, wrapper)

    timed(engine.Execution, "state_key", "keying states (state_key)")
    timed(engine.Execution, "run_step", "model steps (run_step)")
    timed(stateful.StatefulDPOR, "_races_with_summary", "races with a summary")
    timed(stateful.StatefulDPOR, "_lift_into", "lifting summaries")
    timed(stateful.StatefulDPOR, "next_execution", "leaving states (next_execution)")
    build0 = builder(args.scenario, args.protocol,
                     Params(pages=args.pages, writers=args.writers))

    def build():
        t = time.perf_counter()
        try:
            return build0()
        finally:
            spent["building programs"] += time.perf_counter() - t

    run_execution = engine.run_execution

    def replay_timed(program, choose, max_steps, max_retries=None, checked=0,
                     keep_states=False):
        start = time.perf_counter()
        new = [0.0]

        def chooser(ex, enabled):
            if not new[0] and len(ex.events) >= checked:
                new[0] = time.perf_counter()  # the prefix is replayed: new steps from here
            return choose(ex, enabled)

        try:
            return run_execution(program, chooser, max_steps, max_retries, checked,
                                 keep_states)
        finally:
            spent["replaying prefixes"] += (new[0] or time.perf_counter()) - start

    search.run_execution = replay_timed  # type: ignore[assignment]
    t = time.perf_counter()
    res = search.search(build, stateful.StatefulDPOR(),
                        search.Limits(max_executions=args.executions))
    total = time.perf_counter() - t
    print(f"# {args.scenario} / {args.protocol} {args.pages}p{args.writers}w, "
          f"{platform.machine()}, Python {platform.python_version()}")
    print(f"{res.executions} executions, {res.states} states, {res.steps} steps, "
          f"{total:.2f} s")
    for part, s in spent.most_common():
        print(f"{part:34s} {s:7.2f} s {100 * s / total:5.1f}%")


if __name__ == "__main__":
    main()
