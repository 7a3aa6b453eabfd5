"""provisioned.py - what provisioned concurrency buys, and what an alias costs.

A Python function with version 1, alias `live` (-> 1, with provisioned concurrency 1) and alias
`canary` (-> 1, 10% to version 2). The daemon runs with --keep-warm-s 0 and a 10 ms reaper, and the
client waits 60 ms between calls, so an on-demand invocation is always a cold start, while the
provisioned instance is never reaped. Prints client-observed p50/p99 of:
  - version 2 on demand (cold every time; the baseline)
  - alias `live` on its provisioned instance (warm every time, nothing paid at the call)
and, without pauses (warm, keep-alive), unqualified vs `:live` vs `:canary` invocations, to show
the cost of resolving an alias and picking by weight.

usage: /usr/bin/python3 bench/provisioned.py [N]    (default N=50)
"""
import sys
import time

from common import Conn, deploy, pct, start_daemon, stop_daemon, zip_files

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50
PY = b"import json, urllib.request\ndef handler(event, context):\n    return {'ok': True}\n"


def timed(c, path_name, n, pause):
    out = []
    for _ in range(n):
        dt, status, headers, body = c.invoke(path_name)
        if status != 200 or "X-Amz-Function-Error" in headers:
            raise RuntimeError("invoke failed: %s %s" % (status, body[:200]))
        out.append(dt)
        if pause:
            time.sleep(pause)
    return out


def line(label, v):
    print("%-44s p50 %7.2f ms   p99 %7.2f ms" % (label, pct(v, 50) * 1e3, pct(v, 99) * 1e3))


def main():
    dm = start_daemon(["--keep-warm-s", "0", "--reap-interval-ms", "10"])
    try:
        lam = dm.boto3("lambda")
        deploy(dm, "pc", zip_files({"app.py": (PY, 0o644)}), "python3.11", "app.handler",
               memory=1769)
        lam.publish_version(FunctionName="pc")
        lam.update_function_configuration(FunctionName="pc", Environment={"Variables": {"VER": "2"}})
        lam.publish_version(FunctionName="pc")
        lam.create_alias(FunctionName="pc", Name="live", FunctionVersion="1")
        lam.create_alias(FunctionName="pc", Name="canary", FunctionVersion="1",
                         RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
        lam.put_provisioned_concurrency_config(FunctionName="pc", Qualifier="live",
                                               ProvisionedConcurrentExecutions=1)
        deadline = time.time() + 60
        while lam.get_provisioned_concurrency_config(
                FunctionName="pc", Qualifier="live")["Status"] != "READY":
            if time.time() > deadline:
                raise RuntimeError("provisioned concurrency not READY")
            time.sleep(0.05)
        c = Conn(dm.port)
        print("Python 3.11, 1,769 MB, N=%d, 60 ms between calls, keep-warm 0 s" % N)
        line("version 2 on demand (cold start each call)", timed(c, "pc:2", N, 0.06))
        line("alias live, provisioned concurrency 1", timed(c, "pc:live", N, 0.06))
        dm.stop()
        dm.extra_args = ["--log-level", "info"]  # default keep-warm: warm comparisons
        dm.start()
        c = Conn(dm.port)
        for q in ("pc", "pc:canary"):
            timed(c, q, 20, 0)  # warm every instance first
        print("warm, keep-alive, N=%d each, no pauses" % (N * 20))
        line("unqualified ($LATEST)", timed(c, "pc", N * 20, 0))
        line("alias live (provisioned instance)", timed(c, "pc:live", N * 20, 0))
        line("alias canary (10% to version 2)", timed(c, "pc:canary", N * 20, 0))
    finally:
        stop_daemon(dm)


if __name__ == "__main__":
    main()
