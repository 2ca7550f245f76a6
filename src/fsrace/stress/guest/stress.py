# The guest side of a stress run in the VM: each configuration in /io/configs.json.
import json
import sys
import traceback

sys.path.insert(0, "/io")
from fsrace.stress.report import stress_report
from fsrace.stress.run import StressConfig, run_stress, save_log

console = open("/dev/ttyS0", "w")  # the host watches these lines for a run that hangs
for i, doc in enumerate(json.load(open("/io/configs.json"))):
    cfg = StressConfig(**doc)
    cfg.fs = sys.argv[1]
    console.write(f"fsrace-run start {i}\n")
    console.flush()
    with open(f"/io/report-{i}.txt", "w") as out:
        try:
            res = run_stress(cfg)
            out.write(stress_report(res) + "\n")
            save_log(res, f"/io/run-{i}.json.gz")
            status = 1 if res.violations else 0
        except Exception:
            out.write(traceback.format_exc())
            status = 2
    open(f"/io/status-{i}.txt", "w").write(f"{status}\n")
    console.write(f"fsrace-run end {i}\n")
    console.flush()
