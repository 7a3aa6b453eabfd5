"""
test_prometheus.py - a real Prometheus (Debian's `prometheus` 2.42) scrapes the daemon's /metrics
every second: the target is up with no scrape error, and after a known number of invocations the
values Prometheus stored (queried through its HTTP API, PromQL) match them per function and
version; `promtool check metrics` lints an exposition with invocations in it.

Prometheus runs as a child of the test with a generated config, storage in a temporary folder
and its web listener on a free loopback port; it is stopped at the end of the module. The tests
skip only when the binaries are missing (scripts/deps.sh installs them). Every wait is bounded.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import pytest

from conftest import ROLE, free_port
from helpers import c_probe_zip, call, uniq, wait_for

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")


class Prometheus:
    def __init__(self, target, workdir):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.workdir = workdir
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n"
                    "  scrape_interval: 1s\n"
                    "  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "scrape_configs:\n"
                    "  - job_name: nimbus\n"
                    "    static_configs:\n"
                    "      - targets: ['%s']\n" % target)
        self.log_path = os.path.join(workdir, "prometheus.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + config,
             "--storage.tsdb.path=" + os.path.join(workdir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port,
             "--web.console.templates=" + workdir, "--web.console.libraries=" + workdir],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)

    def get(self, path, **params):
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("prometheus exited:\n" + self.logs())
        try:
            return self.get("/-/ready")[0] == 200
        except OSError:
            return False

    def query(self, promql):
        """The instant vector of promql as {frozenset(labels without __name__): float}."""
        status, body = self.get("/api/v1/query", query=promql)
        doc = json.loads(body)
        assert status == 200 and doc["status"] == "success", body
        assert doc["data"]["resultType"] == "vector", body
        return {frozenset((k, v) for k, v in r["metric"].items() if k != "__name__"):
                float(r["value"][1]) for r in doc["data"]["result"]}

    def scalar(self, promql):
        """The value of a query answering exactly one series, or None while it answers none."""
        v = self.query(promql)
        assert len(v) <= 1, (promql, v)
        return next(iter(v.values())) if v else None

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def prom(daemon):
    if not PROMETHEUS:
        pytest.skip("prometheus is not installed (scripts/deps.sh installs it)")
    workdir = tempfile.mkdtemp(prefix="nimbus-prom-")
    p = Prometheus("127.0.0.1:%d" % daemon.port, workdir)
    try:
        assert wait_for(p.ready, 60, 0.2), "prometheus not ready:\n" + p.logs()
        yield p
    finally:
        p.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def deploy_c(lam, name):
    return lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=ROLE,
                               Handler="probe.handler",
                               Code={"ZipFile": c_probe_zip()})["FunctionName"]


def test_target_up_without_scrape_errors(prom):
    assert wait_for(lambda: prom.scalar('up{job="nimbus"}') == 1, 30), prom.logs()
    status, body = prom.get("/api/v1/targets")
    targets = json.loads(body)["data"]["activeTargets"]
    assert len(targets) == 1, targets
    # Prometheus' own parser read the whole exposition: any format error would be lastError
    assert wait_for(lambda: json.loads(prom.get("/api/v1/targets")[1])["data"]["activeTargets"]
                    [0]["health"] == "up", 30)
    t = json.loads(prom.get("/api/v1/targets")[1])["data"]["activeTargets"][0]
    assert t["lastError"] == "", t
    assert prom.scalar('scrape_samples_scraped{job="nimbus"}') >= 18  # no function yet
    assert prom.scalar('process_resident_memory_bytes{job="nimbus"}') > 1 << 20
    assert prom.scalar('process_open_fds{job="nimbus"}') > 3
    assert prom.scalar('process_start_time_seconds{job="nimbus"}') <= time.time() + 1


def test_scraped_values_match_invocations(prom, daemon, lam):
    name = deploy_c(lam, uniq("prom"))
    ok, failed = 5, 2
    for _ in range(ok):
        r, _, _ = call(lam, name, {"n": 1})
        assert "FunctionError" not in r
    for _ in range(failed):
        r, _, _ = call(lam, name, {"op": "fail"})
        assert r.get("FunctionError") == "Unhandled"
    sel = '{job="nimbus",function="%s",version="$LATEST"}' % name

    def scraped():
        return prom.scalar("nimbus_function_invocations_total" + sel) == ok + failed
    assert wait_for(scraped, 30, 0.25), (prom.query('{function="%s"}' % name), prom.logs())
    assert prom.scalar("nimbus_function_errors_total" + sel) == failed
    assert prom.scalar("nimbus_function_throttles_total" + sel) == 0
    assert prom.scalar("nimbus_function_duration_seconds_count" + sel) == ok + failed
    assert prom.scalar("nimbus_function_duration_seconds_bucket" +
                       sel.replace("}", ',le="+Inf"}')) == ok + failed
    cold = prom.scalar("nimbus_function_cold_starts_total" + sel)
    assert cold >= 1
    assert prom.scalar("nimbus_function_init_duration_seconds_count" + sel) == cold
    # PromQL over the histogram works on what was stored (the median of 7 fast calls is < 10 s)
    p50 = prom.scalar('histogram_quantile(0.5, sum by (le) '
                      '(nimbus_function_duration_seconds_bucket%s))' % sel)
    assert 0 < p50 < 10
    # the per-function family never includes the daemon-wide total: the sum is at most it
    assert prom.scalar('sum(nimbus_function_invocations_total{job="nimbus"})') <= \
        prom.scalar('nimbus_invocations_total{job="nimbus"}')
    idle = '{job="nimbus",function="%s",state="idle"}' % name
    # (a call may land before the previous runtime is back at `next`: then it starts another)
    assert wait_for(lambda: (prom.scalar("nimbus_function_instances" + idle) or 0) >= 1, 30)


def test_promtool_checks_the_exposition(daemon, lam):
    if not PROMTOOL:
        pytest.skip("promtool is not installed (scripts/deps.sh installs it)")
    name = deploy_c(lam, uniq("promtool"))
    call(lam, name, {"n": 1})
    call(lam, name, {"op": "fail"})
    status, headers, body = daemon.request("GET", "/metrics")
    assert status == 200 and name.encode() in body
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True,
                       timeout=60)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
        (p.stdout, p.stderr)
    # and promtool does complain about a broken exposition (the check is not a no-op)
    broken = body.replace(b"# TYPE nimbus_invocations_total counter\n",
                          b"# TYPE nimbus_invocations_total counter\n"
                          b"# TYPE nimbus_invocations_total gauge\n")
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=broken, capture_output=True,
                       timeout=60)
    assert p.returncode != 0
