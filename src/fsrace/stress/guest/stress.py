# The guest side of a stress run in the VM: each configuration in /io/configs.json. With
# /io/rounds.json, configurations of one group are rounds of one sweep cell (seed after
# seed): a group's later rounds are skipped once its rounds have hit `min_windows` race
# windows, raced for `cap_s` seconds, or one round carried out none of the class's own
# operations while others ran (the file system refuses them; more rounds would too).
import functools
import json
import os
import sys
import traceback
from collections import defaultdict

sys.path.insert(0, "/io")
from fsrace.stress.ops import own_operation
from fsrace.stress.report import stress_report
from fsrace.stress.run import StressConfig, run_stress, save_log
from fsrace.stress.vm import Rounds

console = open("/dev/ttyS0", "w")  # the host watches these lines for a run that hangs


def say(line: str) -> None:
    console.write(line + "\n")
    console.flush()


rounds = Rounds(**json.load(open("/io/rounds.json"))) if os.path.exists("/io/rounds.json") \
    else None
windows: dict[int, int] = defaultdict(int)
raced: dict[int, float] = defaultdict(float)
done: set[int] = set()
for i, doc in enumerate(json.load(open("/io/configs.json"))):
    cfg = StressConfig(**doc)
    cfg.fs = sys.argv[1]
    group = rounds.group[i] if rounds else i
    if group in done:
        open(f"/io/status-{i}.txt", "w").write("skipped\n")
        continue
    say(f"fsrace-run start {i}")
    with open(f"/io/report-{i}.txt", "w") as out:
        try:
            # The host hears when the kernel's part is over: a long silence after is the check's.
            res = run_stress(cfg, checking=functools.partial(say, f"fsrace-run checking {i}"),
                             keep_probes=True)
            out.write(stress_report(res) + "\n")
            save_log(res, f"/io/run-{i}.json.gz")
            status = 1 if res.violations else 0
            if rounds:
                windows[group] += res.windows.hit if res.windows else 0
                raced[group] += res.elapsed_s
                own = res.by_kind[own_operation(cfg.scenario)] if cfg.scenario else 1
                if rounds.enough(windows[group], raced[group], own, res.executed):
                    done.add(group)
        except Exception:
            out.write(traceback.format_exc())
            status = 2
            done.add(group)
    open(f"/io/status-{i}.txt", "w").write(f"{status}\n")
    say(f"fsrace-run end {i}")
