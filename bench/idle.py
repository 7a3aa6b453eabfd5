"""idle.py - what an idle daemon costs: CPU time and wake-ups per second with N warm C instances
(default 100) and no traffic, next to baselines measured in the same run.

Phases, each measured over WINDOW seconds (default 10) after a short settle:
  1. baseline: the daemon with no function (and, at the same time, an idle `sleep` process);
  2. warm: N concurrent invocations of the C sleep function leave N idle instances (each blocked
     in its runtime's `next` long poll); nothing is invoked while measuring.
For each process group it reads CPU time (utime+stime from /proc/PID/stat, all threads) and
context switches (voluntary + nonvoluntary, summed over /proc/PID/task/*/status): a process
blocked for the whole window shows 0 of both; a periodic timer shows as wake-ups per second.
Groups: the daemon, its spawner (the daemon's direct children) and the instances (every other
descendant: sandbox inits and runtimes). Prints per-second figures; never asserts.

usage: /usr/bin/python3 bench/idle.py [N] [WINDOW_S] [c|python|node]
(python and node run a sleeping handler of their own; their instances are heavier: use a small N.)
"""
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from common import c_sleep_zip, deploy, report, start_daemon, stop_daemon, zip_files

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100
WINDOW = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
RUNTIME = sys.argv[3] if len(sys.argv) > 3 else "c"
TCK = os.sysconf("SC_CLK_TCK")

PY_SLEEP = "import time\n\ndef handler(event, context):\n    time.sleep(event.get('ms', 0) / 1000)\n" \
    "    return {'slept': event.get('ms', 0)}\n"
NODE_SLEEP = "exports.handler = async (e) => {\n  await new Promise((r) => setTimeout(r, e.ms || 0));\n" \
    "  return { slept: e.ms || 0 };\n};\n"


def package():
    """(zip, Runtime, Handler) of the sleeping function for RUNTIME."""
    if RUNTIME == "python":
        return zip_files({"app.py": (PY_SLEEP, 0o644)}), "python3.11", "app.handler"
    if RUNTIME == "node":
        return zip_files({"index.js": (NODE_SLEEP, 0o644)}), "nodejs18.x", "index.handler"
    return c_sleep_zip(), "provided.al2023", "handler"


def parents():
    """{pid: ppid} of every process on the host."""
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                out[int(p)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return out


def groups(daemon_pid):
    """{"daemon": [pid], "spawner": [...], "instances": [...]} from the process tree."""
    pp = parents()
    kids = {}
    for pid, ppid in pp.items():
        kids.setdefault(ppid, []).append(pid)
    spawner = kids.get(daemon_pid, [])
    inst, todo = [], list(spawner)
    while todo:
        for k in kids.get(todo.pop(), []):
            inst.append(k)
            todo.append(k)
    return {"daemon": [daemon_pid], "spawner": spawner, "instances": inst}


def sample(pid):
    """(cpu ticks, cpu ns, context switches) of pid summed over its threads; None if it is gone.
    Ticks (utime+stime) have the kernel's 10 ms granularity; schedstat's run time is in ns."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        ns = switches = 0
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    ns += int(f.read().split()[0])
            except (OSError, IndexError, ValueError):
                pass
        return ticks, ns, switches
    except OSError:
        return None


def measure(named):
    """named: {group: [pids]} -> {group: (tick ms/s, cpu ms/s, wake-ups/s, processes)}."""
    before = {g: {p: sample(p) for p in pids} for g, pids in named.items()}
    t0 = time.monotonic()
    time.sleep(WINDOW)
    secs = time.monotonic() - t0
    out = {}
    for g, pids in named.items():
        ticks = ns = sw = n = 0
        for p in pids:
            a, b = before[g][p], sample(p)
            if a and b:
                ticks += b[0] - a[0]
                ns += b[1] - a[1]
                sw += b[2] - a[2]
                n += 1
        out[g] = (ticks * 1000.0 / TCK / secs, ns / 1e6 / secs, sw / secs, n)
    return out


def warm_instances(dm):
    status, _, body = dm.request("GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith("nimbus_warm_instances "):
            return int(float(line.split()[1]))
    return 0


def fire(dm, name, n):
    import boto3
    from botocore.config import Config
    lam = boto3.client("lambda", endpoint_url=dm.endpoint, region_name="us-east-1",
                       aws_access_key_id=dm.key_id, aws_secret_access_key=dm.secret,
                       config=Config(retries={"total_max_attempts": 1, "mode": "standard"},
                                     read_timeout=120, max_pool_connections=n))
    # each call sleeps long enough that all n run at once: n instances
    with ThreadPoolExecutor(n) as ex:
        codes = list(ex.map(lambda _: lam.invoke(FunctionName=name,
                                                 Payload=b'{"ms":3000}')["StatusCode"],
                            range(n)))
    return sum(1 for c in codes if c == 200)


def rows(label, m):
    out = []
    for g, (tick_ms, cpu, wake, n) in m.items():
        out.append(("%s: %s (%d processes)" % (label, g, n),
                    "%.3f ms CPU/s (utime+stime %.0f ms/s), %.2f wake-ups/s" % (cpu, tick_ms,
                                                                                wake)))
    return out


def main():
    dm = start_daemon(["--account-concurrency", str(max(N, 1000))])
    sleeper = subprocess.Popen(["sleep", "3600"])
    try:
        time.sleep(2)  # start-up work (pools filling) done
        base = measure(dict(groups(dm.proc.pid), sleep=[sleeper.pid]))
        zip_bytes, runtime, handler = package()
        deploy(dm, "idle", zip_bytes, runtime, handler=handler, memory=128, timeout=60)
        ok = fire(dm, "idle", N)
        deadline = time.time() + 30
        while warm_instances(dm) < ok and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(2)
        g = groups(dm.proc.pid)
        warm = measure(g)
        report("idle cost: %d warm %s instances (%d invocations answered 200, %d warm), "
               "%.0f s windows" % (N, RUNTIME, ok, warm_instances(dm), WINDOW),
               rows("baseline", base) + rows("warm", warm) +
               [("warm: per instance (instances group)", "%.4f ms CPU/s, %.4f wake-ups/s" % (
                   warm["instances"][1] / max(1, N), warm["instances"][2] / max(1, N)))])
    finally:
        sleeper.kill()
        sleeper.wait()
        stop_daemon(dm)


if __name__ == "__main__":
    main()
