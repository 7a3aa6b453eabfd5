"""async_accept.py - how many asynchronous (Event) invocations nimbus accepts per second, each
acknowledged (202) only after its group commit was fsync'd, next to baselines from the same run.

1. Accept: wrk -t2 -cC -dSs POSTing Event invocations of a trivial C function (loopback, C
   connections: a bounded number of concurrent clients). Deliveries run at the same time (the
   machine's 2 cores are shared between accepting and delivering). Reports 202/s, latency, and the
   average group-commit batch (journal writes per fsync, from /metrics).
2. Baselines: the same wrk against synchronous Invoke of the same function, and the raw rate of
   sequential write+fsync of 100-byte records in the data dir (what one-fsync-per-event would
   allow).

usage: /usr/bin/python3 bench/async_accept.py [SECONDS] [CONNECTIONS]   (needs wrk)
"""
import os
import re
import subprocess
import sys
import tempfile
import urllib.request

from common import c_sleep_zip, deploy, fsync_rate, report, start_daemon, stop_daemon

SECS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
CONNS = int(sys.argv[2]) if len(sys.argv) > 2 else 64


def wrk(url, headers, conns):
    """Returns (responses/s, p50, p99, {status: count})."""
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write('wrk.method = "POST"\nwrk.body = "{\\"ms\\":0}"\n')
    for k, v in headers.items():
        script.write('wrk.headers["%s"] = "%s"\n' % (k, v))
    script.write(STATUS_LUA)
    script.close()
    out = subprocess.run(["wrk", "-t2", "-c%d" % conns, "-d%ds" % SECS, "--latency", "-s",
                          script.name, url], capture_output=True, text=True).stdout
    os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+\w+)", out).group(1)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)
    statuses = {}
    for code, n in re.findall(r"^status\t(\d+)\t(\d+)$", out, re.M):
        statuses[int(code)] = statuses.get(int(code), 0) + int(n)
    return rps, p50, p99, statuses


# counts responses by status in each wrk thread and prints them at the end
STATUS_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do print("status\t" .. k .. "\t" .. v) end
  end
end
"""


def scrape(dm):
    with urllib.request.urlopen(dm.endpoint + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return {l.split()[0]: float(l.split()[1]) for l in text.splitlines()
            if l and not l.startswith("#")}


def main():
    # a queue bound above what the run can accept: the figure is the accept rate, not the bound
    dm = start_daemon(["--async-queue-max", "10000000"])
    try:
        deploy(dm, "async-c", c_sleep_zip(), "provided.al2023", memory=1769)
        url = "http://127.0.0.1:%d/2015-03-31/functions/async-c/invocations" % dm.port
        hdr = {"Content-Type": "application/json"}
        m0 = scrape(dm)
        r_async = wrk(url, dict(hdr, **{"X-Amz-Invocation-Type": "Event"}), CONNS)
        m1 = scrape(dm)
        commits = m1["nimbus_async_commits_total"] - m0["nimbus_async_commits_total"]
        writes = m1["nimbus_async_commit_writes_total"] - m0["nimbus_async_commit_writes_total"]
        r_sync = wrk(url, hdr, 16)
        fs = fsync_rate(dm.data_dir)
        ok = r_async[3].get(202, 0)
        report("asynchronous accept, wrk -t2 -c%d -d%ds" % (CONNS, SECS), [
            ("Event 202/s (p50, p99)", "%.0f (%s, %s)" % (ok / SECS, r_async[1], r_async[2])),
            ("responses by status", str(r_async[3])),
            ("group commits/s, writes per commit",
             "%.0f, %.1f" % (commits / SECS, writes / commits if commits else 0)),
            ("events delivered during the run", "%.0f" % (
                m1["nimbus_async_delivered_total"] - m0["nimbus_async_delivered_total"])),
        ])
        report("baselines, same run", [
            ("sync Invoke 200/s, -c16 (p50, p99)",
             "%.0f (%s, %s)" % (r_sync[3].get(200, 0) / SECS, r_sync[1], r_sync[2])),
            ("sequential write+fsync/s in the data dir", "%.0f" % fs),
        ])
    finally:
        stop_daemon(dm)


if __name__ == "__main__":
    main()
