# The guest side of run_program_in_vm: /io/program once per argument list.
import json
import subprocess
import sys

console = open("/dev/ttyS0", "w")  # the host watches these lines for a run that hangs
for i, args in enumerate(json.load(open("/io/programs.json"))):
    console.write(f"fsrace-run start {i}\n")
    console.flush()
    r = subprocess.run(["/io/program", f"{sys.argv[1]}/file{i}", *args],
                       capture_output=True, text=True)
    open(f"/io/report-{i}.txt", "w").write(r.stdout + r.stderr)
    open(f"/io/status-{i}.txt", "w").write(f"{r.returncode}\n")
    console.write(f"fsrace-run end {i}\n")
    console.flush()
