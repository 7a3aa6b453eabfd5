"""warm.py - the warm invoke path of a trivial C function against Debian's nginx, same run.

1. Latency: one keep-alive connection, sequential requests: Invoke of the C function vs nginx
   `return 200`; platform-added latency = invoke p50 - nginx p50 (the function's own work is a few
   microseconds; its REPORT Duration is printed too).
2. Throughput: wrk -t2 -c16 -d10s against the Invoke API (POST, Lua script) and against nginx.
3. Authentication's share: the same signed requests (latency and wrk) against a second daemon
   started with --insecure, which skips SigV4 verification, so client work is identical. Requests
   are signed before the clock starts; wrk replays one signed request (valid for 15 minutes, so
   for the whole run: nimbus keeps no replay cache, like AWS).

usage: /usr/bin/python3 bench/warm.py [N] [SECONDS]   (needs bench/deps.sh: wrk, nginx)
"""
import os
import re
import subprocess
import sys
import tempfile

from common import Conn, Nginx, c_sleep_zip, deploy, pct, report, start_daemon, stop_daemon

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
SECS = int(sys.argv[2]) if len(sys.argv) > 2 else 10


def wrk_ms(text):
    """A wrk latency ("406.00us", "1.26ms", "2.00s") in milliseconds."""
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def wrk(url, script=None):
    args = ["wrk", "-t2", "-c16", "-d%ds" % SECS, "--latency"]
    if script:
        args += ["-s", script]
    out = subprocess.run(args + [url], capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+\w+)", out).group(1)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p50, p99, int(non2xx.group(1)) if non2xx else 0


def latency(dm):
    c = Conn(dm.port, dm)
    for _ in range(50):
        c.invoke("warm-c", b'{"ms":0}')
    return [c.invoke("warm-c", b'{"ms":0}')[0] for _ in range(N)]


def main():
    dm = start_daemon()
    ng = Nginx()
    insecure = None
    try:
        deploy(dm, "warm-c", c_sleep_zip(), "provided.al2023", memory=1769)
        inv = latency(dm)
        cn = Conn(ng.port)
        base = [cn.request("GET", "/")[0] for _ in range(N)]
        report("warm latency, 1 connection, n=%d" % N, [
            ("invoke p50 / p99", "%.1f / %.1f us" % (pct(inv, 50) * 1e6, pct(inv, 99) * 1e6)),
            ("nginx static 200 p50 / p99", "%.1f / %.1f us" % (pct(base, 50) * 1e6, pct(base, 99) * 1e6)),
            ("platform-added p50 (invoke - nginx)", "%.1f us" % ((pct(inv, 50) - pct(base, 50)) * 1e6)),
        ])
        path = "/2015-03-31/functions/warm-c/invocations"
        signed = dm.sign("POST", path, b'{"ms":0}', {"Content-Type": "application/json"})
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write('wrk.method = "POST"\nwrk.body = "{\\"ms\\":0}"\n' +
                     "".join('wrk.headers["%s"] = "%s"\n' % kv for kv in signed.items()))
        script.close()
        r_inv = wrk("http://127.0.0.1:%d/2015-03-31/functions/warm-c/invocations" % dm.port,
                    script.name)
        r_ng = wrk("http://127.0.0.1:%d/" % ng.port)
        os.unlink(script.name)
        report("throughput, wrk -t2 -c16 -d%ds" % SECS, [
            ("invoke req/s (p50, p99, non-2xx)", "%.0f (%s, %s, %d)" % r_inv),
            ("nginx req/s (p50, p99)", "%.0f (%s, %s)" % r_ng[:3]),
            ("invoke / nginx", "%.1f%%" % (100.0 * r_inv[0] / r_ng[0])),
            ("platform-added p99 at 16 connections (invoke p99 - nginx p99)",
             "%.2f ms" % ((wrk_ms(r_inv[2]) - wrk_ms(r_ng[2])))),
        ])
        insecure = start_daemon(["--insecure"])
        deploy(insecure, "warm-c", c_sleep_zip(), "provided.al2023", memory=1769)
        # the same signed requests: the client's work is identical, the daemon skips verifying
        ins = latency(insecure)
        again = latency(dm)  # interleaved, so load drift hits both
        signed_p50 = (pct(inv, 50) + pct(again, 50)) / 2
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write('wrk.method = "POST"\nwrk.body = "{\\"ms\\":0}"\n' +
                     "".join('wrk.headers["%s"] = "%s"\n' % kv for kv in signed.items()))
        script.close()
        r_ins = wrk("http://127.0.0.1:%d%s" % (insecure.port, path), script.name)
        os.unlink(script.name)
        report("authentication share, 1 connection, n=%d" % N, [
            ("invoke p50, SigV4 verified", "%.1f us" % (signed_p50 * 1e6)),
            ("invoke p50, --insecure (same signed requests)", "%.1f us" % (pct(ins, 50) * 1e6)),
            ("difference (share of signed p50)", "%.1f us (%.1f%%)" % (
                (signed_p50 - pct(ins, 50)) * 1e6,
                100.0 * (signed_p50 - pct(ins, 50)) / signed_p50)),
            ("wrk invoke req/s signed / --insecure", "%.0f / %.0f (%.1f%%)" % (
                r_inv[0], r_ins[0], 100.0 * r_inv[0] / r_ins[0])),
        ])
    finally:
        ng.stop()
        stop_daemon(dm)
        if insecure:
            stop_daemon(insecure)


if __name__ == "__main__":
    main()
