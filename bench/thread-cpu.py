#!/usr/bin/env python3
"""bench/thread-cpu.py: how a command's threads shared the work, from /proc/PID/task/*/schedstat.

    bench/thread-cpu.py LABEL 'COMMAND' [THREAD_NAME_PART]

Runs COMMAND (through `exec`, so ./castore's JVM keeps its pid), samples every 20 ms, and prints
for each thread whose name contains THREAD_NAME_PART (default "import"): when it first and last
used CPU, its CPU time, its time waiting for a core (run queue) and the rest of that span
(blocked: I/O, locks, an empty queue). CPU per worker shows how evenly the workers split an
import; it barely moves with other load on the machine, unlike wall time (docs/performance.md,
Import). Drop caches first for a cold run: sync; echo 3 > /proc/sys/vm/drop_caches
"""
import glob
import subprocess
import sys
import time

label, cmd = sys.argv[1], sys.argv[2]
part = sys.argv[3] if len(sys.argv) > 3 else "import"
t0 = time.monotonic()
p = subprocess.Popen(["bash", "-c", "exec " + cmd], stdout=subprocess.DEVNULL)
seen = {}
while p.poll() is None:
    now = time.monotonic()
    for d in glob.glob(f"/proc/{p.pid}/task/*"):
        try:
            comm = open(d + "/comm").read().strip()
            cpu, wait, _ = map(int, open(d + "/schedstat").read().split())
        except (OSError, ValueError):
            continue
        s = seen.setdefault(d, {"comm": comm, "first": now, "last": now, "cpu": cpu, "wait": wait})
        if cpu != s["cpu"]:
            s["last"] = now
        s["cpu"], s["wait"] = cpu, wait
    time.sleep(0.02)
wall = time.monotonic() - t0
print(f"{label}: exit {p.returncode}, wall {wall:.2f} s, CPU of all threads {sum(s['cpu'] for s in seen.values()) / 1e9:.2f} s")
for s in sorted(seen.values(), key=lambda s: (s["comm"], s["first"])):
    if part in s["comm"]:
        cpu, wait = s["cpu"] / 1e9, s["wait"] / 1e9
        blocked = max(0.0, s["last"] - s["first"] - cpu - wait)
        print(f"  {s['comm']:16} {s['first'] - t0:5.2f}-{s['last'] - t0:5.2f} s  cpu {cpu:5.2f}  run-queue {wait:5.2f}  blocked {blocked:5.2f}")
