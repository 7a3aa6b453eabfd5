"""cold_start.py - cold-start latency of C, Python and Node functions, request -> response.

Every invocation is a cold start: the daemon runs with --keep-warm-s 0 and a 10 ms reaper, and the
client waits 60 ms between invocations so the previous instance is gone. Prints client-observed
p50/p99 and the Init Duration from each REPORT line, next to baselines measured in the same run:
the same program started with posix_spawn outside any sandbox (C: the function's own bootstrap,
which exits at once without a Runtime API; Python: `python3 -c pass`; Node: `node -e 0`), and a
warm invocation of the same function.

usage: /usr/bin/python3 bench/cold_start.py [N [RUNTIME...]]    (default N=100 per runtime;
       RUNTIME: c, c-musl, python or node, default all four; c-musl is the same C function
       linked statically against musl instead of glibc)
"""
import base64
import os
import re
import sys
import time

from common import (C_SLEEP, C_SLEEP_MUSL, Conn, c_sleep_zip, deploy, pct, report, start_daemon, stop_daemon, zip_files)

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100
ONLY = sys.argv[2:]  # runtimes to measure (c, python, node); all when empty

PY_HANDLER = b"import json, urllib.request\ndef handler(event, context):\n    return {'ok': True}\n"
NODE_HANDLER = b"exports.handler = async (event) => ({ ok: true });\n"


def spawn_baseline(argv, n, env=None):
    times = []
    null = os.open("/dev/null", os.O_WRONLY)
    acts = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
    for _ in range(n):
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, env or {"PATH": "/usr/bin:/bin"}, file_actions=acts)
        os.waitpid(pid, 0)
        times.append(time.perf_counter() - t0)
    os.close(null)
    return times


def measure_cold(dm, name, n):
    c = Conn(dm.port, dm)
    lat, init = [], []
    for _ in range(n):
        dt, status, headers, body = c.invoke(name, b'{"ms":0}', tail=True)
        if status != 200 or "X-Amz-Function-Error" in headers:
            raise RuntimeError("invoke failed: %s %s" % (status, body[:200]))
        log = base64.b64decode(headers["X-Amz-Log-Result"]).decode()
        m = re.search(r"Init Duration: ([\d.]+) ms", log)
        if not m:
            continue  # not a cold start (should not happen with the reaper at 10 ms)
        lat.append(dt)
        init.append(float(m.group(1)) / 1000)
        time.sleep(0.06)
    return lat, init


def measure_warm(dm, name, n):
    c = Conn(dm.port, dm)
    c.invoke(name, b'{"ms":0}')
    time.sleep(0.2)
    out = []
    for _ in range(n):
        dt, status, _h, _b = c.invoke(name, b'{"ms":0}')
        out.append(dt)
    return out


def ms(x):
    return "%.2f ms" % (x * 1000)


def main():
    cold = start_daemon(["--keep-warm-s", "0", "--reap-interval-ms", "10"])
    warm = start_daemon()
    funcs = [
        ("c", c_sleep_zip(), "provided.al2023", "handler", [C_SLEEP]),
        ("c-musl", c_sleep_zip(C_SLEEP_MUSL) if os.path.exists(C_SLEEP_MUSL) else None,
         "provided.al2023", "handler", [C_SLEEP_MUSL]),
        ("python", zip_files({"app.py": (PY_HANDLER, 0o644)}), "python3.11", "app.handler",
         ["/usr/bin/python3", "-c", "import json, urllib.request"]),
        ("node", zip_files({"index.js": (NODE_HANDLER, 0o644)}), "nodejs20.x", "index.handler",
         ["/usr/bin/node", "-e", "0"]),
    ]
    try:
        for label, z, runtime, handler, base_argv in funcs:
            if ONLY and label not in ONLY:
                continue
            if z is None:
                print("%s: skipped (%s was not built: musl-gcc missing)" % (label, base_argv[0]))
                continue
            for dm in (cold, warm):
                deploy(dm, "cold-" + label, z, runtime, handler, memory=1769)
            base = spawn_baseline(base_argv, N)
            lat, init = measure_cold(cold, "cold-" + label, N)
            w = measure_warm(warm, "cold-" + label, N)
            report("%s cold start (n=%d, memory 1769 MB = 1 vCPU)" % (label, len(lat)), [
                ("cold invoke p50 / p99 (client)", "%s / %s" % (ms(pct(lat, 50)), ms(pct(lat, 99)))),
                ("Init Duration p50 / p99 (REPORT)", "%s / %s" % (ms(pct(init, 50)), ms(pct(init, 99)))),
                ("baseline: plain spawn p50 %s" % " ".join(base_argv[:1]), ms(pct(base, 50))),
                ("baseline: warm invoke p50", ms(pct(w, 50))),
                ("cold p50 / plain spawn p50", "%.2fx" % (pct(lat, 50) / pct(base, 50))),
            ])
    finally:
        stop_daemon(cold)
        stop_daemon(warm)


if __name__ == "__main__":
    main()
