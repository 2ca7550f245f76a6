"""Benchmarks and findings of `fsrace stress` on this machine's kernel (needs root).

    python bench/stress.py [--seconds S] [--only throughput|latency|fio|classes]
                           [--without KIND,...]

throughput: verified operations per second of a --mix run, per file system and worker
count, beside a single-process C tester (the worker, `worker --bare`: the same code
without the record) running the same operations on the same file system, unchecked, and
beside two such processes sharing the file as fsrace's two workers do.
latency: where a --mix run's time goes, per operation kind, with 1 and 2 workers on each
file system (from the run's own history: each operation's invocation and completion),
to tell an operation that two workers on one file serialize from fsrace's own cost.
fio: a verified mapped-I/O job (ioengine=mmap, verify=crc32c) beside a punching job
(ioengine=falloc, rw=randtrim) on the same file system, for scale. classes: every race
class on every file system for a fixed time, with what the check found. Prints Markdown.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from fsrace.stress import ops  # noqa: E402
from fsrace.stress.ops import SCENARIOS, op_stream, own_operation  # noqa: E402
from fsrace.stress.run import INF, StressConfig, _write_initial, run_stress  # noqa: E402
from fsrace.stress.scratch import FILESYSTEMS, scratch_fs  # noqa: E402
from fsrace.stress.worker import PAST_EOF, refusal, worker_binary, write_ops  # noqa: E402

FIO_JOB = """
[global]
directory={dir}
size=256k
bs=4k
time_based
runtime={seconds}

[mmap-verify]
ioengine=mmap
rw=randrw
verify=crc32c
verify_backlog=64
filename=fio-mmap.dat

[punch]
ioengine=falloc
rw=randtrim
filename=fio-punch.dat
"""


def c_tester(fs: str, seconds: float, pages: int, binary: str,
             processes: int = 1) -> tuple[float, float]:
    """(operations/s the C tester executed, share refused) on a fresh file system: the
    --mix streams of two workers, interleaved and run by one process, or (processes=2)
    each run by its own process on the same file, as fsrace's two workers run them."""
    # As many operations as fsrace draws for each of its streams, so that on a fast file
    # system both run out of operations, not time, and time runs of the same length.
    cap = StressConfig.max_ops
    streams = [op_stream(0, w, None, pages) for w in range(2)]
    if processes == 1:
        jobs = [[op for pair in itertools.islice(zip(*streams, strict=True), cap)
                 for op in pair]]
    else:
        jobs = [list(itertools.islice(stream, cap)) for stream in streams]
    with scratch_fs(fs) as s:
        path = os.path.join(s.mnt, "fsrace.dat")
        _write_initial(path, pages)
        procs = []
        for i, ops in enumerate(jobs):
            opsfile = os.path.join(s.root, f"ops-{i}.bin")
            write_ops(opsfile, ops)
            procs.append(subprocess.Popen(
                [binary, "--bare", path, str(pages), opsfile, str(seconds)],
                stdout=subprocess.PIPE, text=True))
        outs = [proc.communicate()[0].split() for proc in procs]
        if any(proc.returncode for proc in procs):
            raise RuntimeError(f"the C tester failed on {fs}")
    executed = sum(int(o[0]) for o in outs)
    refused = sum(int(o[1]) for o in outs)
    elapsed = max(float(o[2]) for o in outs)
    return executed / elapsed, refused / max(executed + refused, 1)


def throughput(seconds: float) -> None:
    binary = str(worker_binary())
    print("| file system | workers | verified ops/s | refused | past EOF (SIGBUS) | check s "
          "| C tester ops/s (1 process, unverified) | refused | fsrace / C "
          "| C tester, 2 processes | fsrace / C (2 processes) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for fs in FILESYSTEMS:
        c_rate, c_refused = c_tester(fs, seconds, 64, binary)
        c2_rate, _ = c_tester(fs, seconds, 64, binary, processes=2)
        for workers in (1, 2, 4):
            r = run_stress(StressConfig(fs, None, workers, None, seconds, 0, 64))
            refused = sum(r.skipped.values())
            total = r.executed + refused
            sigbus = sum(e.result == PAST_EOF for e in r.history)
            two = (f"{c2_rate:,.0f} | {r.ops_per_s / c2_rate:.2f}" if workers == 2
                   else "  | ")
            print(f"| {fs} | {workers} | {r.ops_per_s:,.0f} | "
                  f"{100 * refused / max(total, 1):.0f}% | {sigbus} | {r.check_s:.1f} | "
                  f"{c_rate:,.0f} | {100 * c_refused:.0f}% | {r.ops_per_s / c_rate:.2f} | "
                  f"{two} |", flush=True)


def latency(seconds: float) -> None:
    from collections import defaultdict

    print("| file system | operation | share of ops | mean us, 1 worker | share of time "
          "| mean us, 2 workers | share of time | 2 workers / 1 |")
    print("|---|---|---|---|---|---|---|---|")
    for fs in FILESYSTEMS:
        per = []
        for workers in (1, 2):
            r = run_stress(StressConfig(fs, None, workers, None, seconds, 0, 64))
            took = defaultdict(list)
            for e in r.history:
                if e.result >= 0 and e.resp != INF:
                    took[e.op.kind].append((e.resp - e.inv) / 1e3)
            per.append(took)
        n1 = sum(len(v) for v in per[0].values())
        busy = [sum(sum(v) for v in took.values()) for took in per]
        for kind in sorted(per[0], key=lambda k: -sum(per[0][k])):
            one, two = per[0][kind], per[1].get(kind, [])
            m1 = sum(one) / len(one)
            m2 = sum(two) / len(two) if two else float("nan")
            print(f"| {fs} | {kind} | {100 * len(one) / n1:.0f}% | {m1:,.0f} | "
                  f"{100 * sum(one) / busy[0]:.0f}% | {m2:,.0f} | "
                  f"{100 * sum(two) / busy[1]:.0f}% | {m2 / m1:.1f} |", flush=True)


def fio(seconds: float) -> None:
    print("| file system | fio mmap+verify ops/s | fio punch ops/s | fio total |")
    print("|---|---|---|---|")
    for fs in FILESYSTEMS:
        with scratch_fs(fs) as s:
            job = os.path.join(s.root, "job.fio")
            with open(job, "w") as f:
                f.write(FIO_JOB.format(dir=s.mnt, seconds=int(seconds)))
            out = subprocess.run(["fio", "--output-format=json", job], capture_output=True,
                                 text=True, check=True).stdout
        jobs = {j["jobname"]: j for j in json.loads(out)["jobs"]}
        m = jobs["mmap-verify"]
        mmap_iops = m["read"]["iops"] + m["write"]["iops"]
        trim = jobs["punch"]["trim"]["iops"]
        print(f"| {fs} | {mmap_iops:,.0f} | {trim:,.0f} | {mmap_iops + trim:,.0f} |",
              flush=True)


def classes(seconds: float) -> None:
    print("| race class | " + " | ".join(FILESYSTEMS) + " |")
    print("|---|" + "---|" * len(FILESYSTEMS))
    for scenario in SCENARIOS:
        cells = []
        for fs in FILESYSTEMS:
            r = run_stress(StressConfig(fs, scenario, 2, None, seconds, 0))
            remover = own_operation(scenario)
            if not any(e.op.kind == remover and e.result >= 0 for e in r.history):
                why = {refusal(e.result) for e in r.history if e.op.kind == remover}
                cells.append(f"n/a ({remover}: {', '.join(sorted(why))})")
                continue
            verdict = f"**{len(r.violations)}+ violations**" if r.violations else "ok"
            refused = sum(r.skipped.values())
            extra = f", {refused} refused" if refused else ""
            cells.append(f"{verdict}: {r.executed:,} ops{extra}")
        print(f"| `{scenario}` | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--only", choices=("throughput", "latency", "fio", "classes"))
    ap.add_argument("--without", default="", metavar="KINDS",
                    help="drop these operation kinds (comma-separated) from the --mix, for "
                         "fsrace and the C tester alike: an experiment, not fsrace's mix")
    args = ap.parse_args()
    without = {k for k in args.without.split(",") if k}
    if without - set(ops.MIX):
        sys.exit(f"--without: not in the mix: {', '.join(sorted(without - set(ops.MIX)))}")
    ops.MIX = {k: w for k, w in ops.MIX.items() if k not in without}
    if os.geteuid() != 0:
        sys.exit("bench/stress.py makes and mounts file systems: run it as root")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
          f"Python {platform.python_version()}; {args.seconds:g} s per run"
          + (f"; the mix without {', '.join(sorted(without))}" if without else "") + "\n")
    for name, fn in (("throughput", throughput), ("latency", latency), ("fio", fio),
                     ("classes", classes)):
        if args.only in (None, name):
            print(f"### {name}\n")
            fn(args.seconds)
            print()


if __name__ == "__main__":
    main()
