"""cold_node.py - Node.js cold-start latency with and without a parked runtime (src/prewarm.c).

Two daemons in the same run: one with --node-park-max 0 (every cold invocation starts node), one
with the default (after the first invocation, one instance is kept parked: started, initialized,
waiting on `next`). Each sample makes the warm instance go away first (an invocation whose handler
calls process.exit), so the timed invocation finds no warm instance: on the first daemon it is a
real cold start (Init Duration in REPORT), on the second it is served by the parked instance (no
Init Duration; nimbus_function_parked_hits_total counts it). Before each timed invocation on the
second daemon the script waits until the refill parked a new instance (the steady state of a
function that is invoked now and then). Prints client-observed p50/p99 next to `node -e 0`
(posix_spawn outside any sandbox) and a warm invocation, measured in the same run.

usage: /usr/bin/python3 bench/cold_node.py [N]    (default N=50 per daemon)
"""
import base64
import re
import sys
import time

from common import Conn, deploy, pct, report, start_daemon, stop_daemon, zip_files
from cold_start import spawn_baseline

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50
HANDLER = b"""exports.handler = async (event) => {
  if (event.exit) process.exit(3);
  return { ok: true };
};
"""
NAME = "cold-node"


def metric(c, key):
    _dt, _s, _h, body = c.request("GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(key + " "):
            return float(line.split()[1])
    return 0.0


def measure(dm, parked, n):
    c = Conn(dm.port, dm)
    gauge = 'nimbus_function_parked_instances{function="%s"}' % NAME
    lat, kinds = [], {"init": 0, "no-init": 0}
    busy = 'nimbus_function_instances{function="%s",state="busy"}' % NAME

    def wait(pred):
        deadline = time.time() + 10
        while not pred() and time.time() < deadline:
            time.sleep(0.005)

    for _ in range(n):
        # the runtime that just answered is back at `next` (else the exit would start another)
        wait(lambda: metric(c, busy) == 0)
        c.invoke(NAME, b'{"exit":true}')  # the warm instance (if any) exits
        time.sleep(0.03)
        if parked:
            wait(lambda: metric(c, gauge) >= 1)
        dt, status, headers, body = c.invoke(NAME, b"{}", tail=True)
        if status != 200 or "X-Amz-Function-Error" in headers:
            raise RuntimeError("invoke failed: %s %s" % (status, body[:200]))
        log = base64.b64decode(headers["X-Amz-Log-Result"]).decode()
        kinds["init" if re.search(r"Init Duration: ", log) else "no-init"] += 1
        lat.append(dt)
    hits = metric(c, 'nimbus_function_parked_hits_total{function="%s",version="$LATEST"}' % NAME)
    return lat, kinds, hits


def measure_warm(dm, n):
    c = Conn(dm.port, dm)
    c.invoke(NAME)
    time.sleep(0.2)
    return [c.invoke(NAME)[0] for _ in range(n)]


def ms(x):
    return "%.2f ms" % (x * 1000)


def main():
    off = start_daemon(["--node-park-max", "0"])
    on = start_daemon()
    try:
        z = zip_files({"index.js": (HANDLER, 0o644)})
        for dm in (off, on):
            deploy(dm, NAME, z, "nodejs20.x", "index.handler", memory=1769)
        base = spawn_baseline(["/usr/bin/node", "-e", "0"], N)
        cold, kc, _ = measure(off, False, N)
        hot, kh, hits = measure(on, True, N)
        warm = measure_warm(on, N)
        report("node cold start with and without a parked runtime (n=%d, memory 1769 MB)" % N, [
            ("no parked runtime: p50 / p99 (client)", "%s / %s" % (ms(pct(cold, 50)), ms(pct(cold, 99)))),
            ("  REPORT with Init Duration", "%d of %d" % (kc["init"], N)),
            ("parked runtime: p50 / p99 (client)", "%s / %s" % (ms(pct(hot, 50)), ms(pct(hot, 99)))),
            ("  REPORT with Init Duration", "%d of %d" % (kh["init"], N)),
            ("  parked hits counted (/metrics)", "%d" % hits),
            ("baseline: node -e 0 p50 / p99", "%s / %s" % (ms(pct(base, 50)), ms(pct(base, 99)))),
            ("baseline: warm invoke p50", ms(pct(warm, 50))),
        ])
    finally:
        stop_daemon(off)
        stop_daemon(on)


if __name__ == "__main__":
    main()
