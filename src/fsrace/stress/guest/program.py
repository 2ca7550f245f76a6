# The guest side of run_program_in_vm: /io/program once per argument list.
import json
import subprocess
import sys

ECHOED = 64 << 10  # bytes of a run's output also sent to the console (a serial line is slow)

console = open("/dev/ttyS0", "w")  # the host watches these lines for a run that hangs
for i, args in enumerate(json.load(open("/io/programs.json"))):
    console.write(f"fsrace-run start {i}\n")
    console.flush()
    echoed = 0
    with open(f"/io/report-{i}.txt", "w") as report:
        p = subprocess.Popen(["/io/program", f"{sys.argv[1]}/file{i}", *args],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             errors="replace")
        for line in p.stdout or ():
            report.write(line)
            # On the console too: the host shows it as it comes and keeps it if the run
            # never ends (this file is lost with a guest that is stopped).
            if echoed < ECHOED:
                echoed += len(line)
                console.write(f"fsrace-out {i} {line.rstrip()}\n")
                console.flush()
        returncode = p.wait()
    open(f"/io/status-{i}.txt", "w").write(f"{returncode}\n")
    console.write(f"fsrace-run end {i}\n")
    console.flush()
