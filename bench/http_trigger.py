"""http_trigger.py - HTTP trigger (function URL, payload format 2.0) vs the Invoke API for the
same trivial C function (bench/functions/c_sleep, {"slept":0}), in the same run.

1. Latency: one keep-alive connection, sequential requests, n each, interleaved in two halves so
   load drift hits both: POST /2015-03-31/functions/F/invocations (SigV4-signed before the clock
   starts) vs GET on the function URL (AuthType NONE, Host <url-id>.lambda-url.<region>.localhost).
2. Throughput: wrk -t2 -c16 -dSECONDS against both (the Invoke request replayed signed).
The ratios (URL / Invoke) are the figure of merit: the URL path adds event building (JSON with
headers, requestContext) and response mapping to the same invocation.

usage: /usr/bin/python3 bench/http_trigger.py [N] [SECONDS]   (needs wrk: bench/deps.sh)
"""
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse

from common import Conn, c_sleep_zip, deploy, pct, report, start_daemon, stop_daemon

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
SECS = int(sys.argv[2]) if len(sys.argv) > 2 else 5


def wrk(url, script=None, host=None):
    args = ["wrk", "-t2", "-c16", "-d%ds" % SECS, "--latency"]
    if script:
        args += ["-s", script]
    if host:
        args += ["-H", "Host: " + host]
    out = subprocess.run(args + [url], capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+\w+)", out).group(1)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p50, p99, int(non2xx.group(1)) if non2xx else 0


def main():
    dm = start_daemon()
    try:
        deploy(dm, "http-c", c_sleep_zip(), "provided.al2023", memory=1769)
        url = dm.boto3().create_function_url_config(FunctionName="http-c",
                                                    AuthType="NONE")["FunctionUrl"]
        host = urllib.parse.urlsplit(url).netloc
        inv_c, url_c = Conn(dm.port, dm), Conn(dm.public_port)
        inv, viaurl = [], []
        for _ in range(50):
            inv_c.invoke("http-c")
            url_c.request("GET", "/", headers={"Host": host})
        for _half in range(2):
            inv += [inv_c.invoke("http-c")[0] for _ in range(N // 2)]
            for _ in range(N // 2):
                t, st, _, _ = url_c.request("GET", "/", headers={"Host": host})
                assert st == 200, st
                viaurl.append(t)
        report("latency, 1 connection, n=%d each" % N, [
            ("Invoke API p50 / p99", "%.1f / %.1f us" % (pct(inv, 50) * 1e6, pct(inv, 99) * 1e6)),
            ("function URL p50 / p99", "%.1f / %.1f us" % (pct(viaurl, 50) * 1e6,
                                                           pct(viaurl, 99) * 1e6)),
            ("URL / Invoke p50", "%.2f" % (pct(viaurl, 50) / pct(inv, 50))),
        ])
        path = "/2015-03-31/functions/http-c/invocations"
        signed = dm.sign("POST", path, b"{}", {"Content-Type": "application/json"})
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write('wrk.method = "POST"\nwrk.body = "{}"\n' +
                     "".join('wrk.headers["%s"] = "%s"\n' % kv for kv in signed.items()))
        script.close()
        r_inv = wrk("http://127.0.0.1:%d%s" % (dm.port, path), script.name)
        os.unlink(script.name)
        r_url = wrk("http://127.0.0.1:%d/" % dm.public_port, host=host)
        report("throughput, wrk -t2 -c16 -d%ds" % SECS, [
            ("Invoke API req/s (p50, p99, non-2xx)", "%.0f (%s, %s, %d)" % r_inv),
            ("function URL req/s (p50, p99, non-2xx)", "%.0f (%s, %s, %d)" % r_url),
            ("URL / Invoke req/s", "%.2f" % (r_url[0] / r_inv[0])),
        ])
    finally:
        stop_daemon(dm)


if __name__ == "__main__":
    main()
