"""What a fix costs the faults: how long stores and loads through the mapping took in saved
stress runs, split into those that overlapped one of the class's own operations (a store
that write-faults then may wait for the operation under a fix) and the rest. Run it on a
run made with the stock kernel and one with the patched module, same class and seed:

    python bench/fault_latency.py STOCK.json.gz PATCHED.json.gz

Times are the workers' own (invocation to return, monotonic clock), so under TCG they are
slow in absolute terms; compare the two runs' figures with each other.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import json
import statistics


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def latencies(doc: dict, kind: str) -> tuple[list[float], list[float]]:
    """(overlapping, apart): the kind's durations in µs, by whether they overlapped an
    operation of the run's class."""
    from fsrace.stress.ops import own_operation

    own = own_operation(doc["config"]["scenario"])
    # The class's own operations are one stream's, so they do not overlap one another: the
    # last one to start before an access returns is the only one that can overlap it.
    spans = sorted((o["invoked_ns"], o["returned_ns"]) for o in doc["operations"]
                   if o["kind"] == own and o["result"] >= 0 and o["returned_ns"])
    starts = [a for a, _ in spans]
    inside, apart = [], []
    for o in doc["operations"]:
        if o["kind"] != kind or o["result"] < 0 or not o["returned_ns"]:
            continue
        inv, resp = o["invoked_ns"], o["returned_ns"]
        k = bisect.bisect_right(starts, resp) - 1
        during = k >= 0 and spans[k][1] >= inv
        (inside if during else apart).append((resp - inv) / 1e3)
    return inside, apart


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="saved stress runs (.json.gz)")
    args = ap.parse_args()
    print("| run | kernel | class | kind | during the operation: n, median, p99, max (µs) "
          "| otherwise: n, median, p99, max (µs) |")
    print("|---|---|---|---|---|---|")
    for path in args.runs:
        doc = json.loads(gzip.decompress(open(path, "rb").read()))
        for kind in ("store", "load"):
            cells = []
            for xs in latencies(doc, kind):
                cells.append(f"{len(xs):,}, {statistics.median(xs):,.0f}, "
                             f"{percentile(xs, 0.99):,.0f}, {max(xs):,.0f}" if xs else "0")
            print(f"| {path} | {doc.get('kernel', '?')} | {doc['config']['scenario']} | {kind} "
                  f"| {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
