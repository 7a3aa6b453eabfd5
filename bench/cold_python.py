"""cold_python.py - Python cold starts with and without the zygote, and the plain interpreter.

One daemon (--keep-warm-s 0, 10 ms reaper: every invocation is a cold start), two functions with
the same handler (`import json, urllib.request`): one starts from the Python zygote (the default),
the other opts out with NIMBUS_ZYGOTE=0 and starts `python3 bootstrap.py` in its sandbox. The two
are measured interleaved, 60 ms apart, so machine noise hits both alike. Baseline in the same run:
`python3 -c "import json, urllib.request"` started with posix_spawn outside any sandbox.

usage: /usr/bin/python3 bench/cold_python.py [N]    (default N=100 per variant)
"""
import base64
import re
import sys
import time

from common import Conn, pct, report, start_daemon, stop_daemon, zip_files, ROLE
from cold_start import spawn_baseline

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100
HANDLER = (b"import json, sys, urllib.request\n"
           b"def handler(event, context):\n"
           b"    return {'ok': True, 'zygote': sys.flags.no_user_site}\n")


def cold(c, name):
    dt, status, headers, body = c.invoke(name, b"{}", tail=True)
    if status != 200 or "X-Amz-Function-Error" in headers:
        raise RuntimeError("invoke failed: %s %s" % (status, body[:300]))
    log = base64.b64decode(headers["X-Amz-Log-Result"]).decode()
    m = re.search(r"Init Duration: ([\d.]+) ms", log)
    return dt, (float(m.group(1)) / 1000 if m else None), b'"zygote": 1' in body


def ms(x):
    return "%.2f ms" % (x * 1000)


def main():
    dm = start_daemon(["--keep-warm-s", "0", "--reap-interval-ms", "10"])
    try:
        lam = dm.boto3("lambda")
        z = zip_files({"app.py": (HANDLER, 0o644)})
        for name, env in (("py-zygote", {}), ("py-plain", {"NIMBUS_ZYGOTE": "0"})):
            lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                                Handler="app.handler", Code={"ZipFile": z}, MemorySize=1769,
                                Environment={"Variables": env})
        c = Conn(dm.port)
        deadline = time.time() + 30  # the first Python start brings the zygote up
        while not cold(c, "py-zygote")[2]:
            if time.time() > deadline:
                raise RuntimeError("the zygote did not come up")
            time.sleep(0.2)
        time.sleep(0.5)
        res = {"py-zygote": ([], [], 0), "py-plain": ([], [], 0)}
        for _ in range(N):
            for name in res:
                dt, init, from_zygote = cold(c, name)
                lat, inits, nz = res[name]
                if init is not None:
                    lat.append(dt)
                    inits.append(init)
                res[name] = (lat, inits, nz + (1 if from_zygote else 0))
                time.sleep(0.06)
        base = spawn_baseline(["/usr/bin/python3", "-c", "import json, urllib.request"], N)
        rows = []
        for name, (lat, inits, nz) in res.items():
            rows += [
                ("%s cold p50 / p99 (client, n=%d)" % (name, len(lat)),
                 "%s / %s" % (ms(pct(lat, 50)), ms(pct(lat, 99)))),
                ("%s Init Duration p50 / p99" % name,
                 "%s / %s" % (ms(pct(inits, 50)), ms(pct(inits, 99)))),
                ("%s instances from the zygote" % name, "%d of %d" % (nz, N)),
            ]
        rows += [
            ("baseline: plain spawn python3 -c 'import json, urllib.request' p50",
             ms(pct(base, 50))),
            ("zygote cold p50 / plain cold p50",
             "%.2fx" % (pct(res["py-zygote"][0], 50) / pct(res["py-plain"][0], 50))),
        ]
        report("Python cold start (memory 1769 MB = 1 vCPU)", rows)
    finally:
        stop_daemon(dm)


if __name__ == "__main__":
    main()
