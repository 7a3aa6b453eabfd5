"""common.py - shared pieces of the benchmark scripts: a daemon on free ports (the e2e fixture's
Daemon class), deploying a function, one keep-alive HTTP connection for timing, percentiles, the raw
write+fsync rate of the data disk, and a baseline nginx serving a static 200 in the same run.

Benchmarks never assert; they print figures and ratios against a baseline measured in the same run.
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from conftest import Daemon, free_port, zip_dir, zip_files, ROLE  # noqa: E402,F401

BUILD = os.environ.get("NIMBUS_BUILD", os.path.join(ROOT, "build"))
C_SLEEP = os.path.join(BUILD, "bench", "functions", "c_sleep", "bootstrap")
C_SLEEP_MUSL = C_SLEEP + "-musl"  # the same function linked against musl (when musl-gcc exists)


def start_daemon(extra=()):
    d = tempfile.mkdtemp(prefix="nimbus-bench-")
    dm = Daemon(d, ["--log-level", "info"] + list(extra))
    dm.start()
    return dm


def stop_daemon(dm):
    dm.stop()
    shutil.rmtree(dm.data_dir, ignore_errors=True)


def deploy(dm, name, zip_bytes, runtime, handler="handler", memory=128, timeout=30):
    lam = dm.boto3("lambda")
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                        Code={"ZipFile": zip_bytes}, MemorySize=memory, Timeout=timeout)


def fsync_rate(directory, secs=2.0, record=100):
    """Sequential write+fsync of record-byte records to a new file in directory for secs: the
    rate (per second) one fsync per acknowledged write would allow on that disk."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < secs:
        os.write(fd, b"x" * record)
        os.fsync(fd)
        n += 1
    el = time.perf_counter() - t0
    os.close(fd)
    os.unlink(path)
    return n / el


def c_sleep_zip(path=C_SLEEP):
    with open(path, "rb") as f:
        return zip_files({"bootstrap": (f.read(), 0o755)})


class Conn:
    """One keep-alive connection; invoke() returns (seconds, status, headers, body). With a
    daemon, every request is SigV4-signed with its root key before the clock starts (the
    client's signing is not part of the figure; the daemon's verification is)."""

    def __init__(self, port, daemon=None):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.daemon = daemon

    def request(self, method, path, body=None, headers=None):
        if self.daemon is not None and self.daemon.key_id:
            headers = self.daemon.sign(method, path, body or b"", headers)
        t0 = time.perf_counter()
        self.c.request(method, path, body=body, headers=headers or {})
        r = self.c.getresponse()
        data = r.read()
        return time.perf_counter() - t0, r.status, dict(r.getheaders()), data

    def invoke(self, name, payload=b"{}", tail=False):
        h = {"Content-Type": "application/json"}
        if tail:
            h["X-Amz-Log-Type"] = "Tail"
        return self.request("POST", "/2015-03-31/functions/%s/invocations" % name, payload, h)


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


class Nginx:
    """Debian's nginx serving `return 200 "ok"` on a free loopback port (1 worker)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="nimbus-bench-nginx-")
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""worker_processes 1; daemon off; pid %(d)s/nginx.pid; error_log %(d)s/error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path %(d)s; proxy_temp_path %(d)s;
  fastcgi_temp_path %(d)s; uwsgi_temp_path %(d)s; scgi_temp_path %(d)s;
  server { listen 127.0.0.1:%(p)d; location / { return 200 "ok"; } } }
""" % {"d": self.dir, "p": self.port})
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                Conn(self.port).request("GET", "/")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def report(title, rows):
    print("\n## " + title)
    for k, v in rows:
        print("  %-46s %s" % (k, v))
