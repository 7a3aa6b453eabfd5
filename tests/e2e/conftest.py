"""
conftest.py - end-to-end fixtures: build output lookup, a real `nimbus serve` on a free port with a
temporary data dir, and clients (boto3, the aws CLI v2 from Debian, the nimbus CLI) pointed at it.

Run with Debian's interpreter so python3-boto3 is importable: /usr/bin/python3 -m pytest tests/e2e.
The build dir is $NIMBUS_BUILD (default: build/ at the repository root).

Every daemon's exit is checked: stopped with SIGTERM it must exit 0 within the stop timeout, and
under a sanitizer build its part of the daemon log must hold no ASan/LSan/UBSan report. A daemon
that fails this fails the test that stopped it (fresh_daemon, or a test's own Daemon), or the
module's last test at teardown (the module daemon), with the first lines of the report. A daemon
a test kills with SIGKILL is exempt from the exit-status check only.
"""
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import zipfile
import io

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("NIMBUS_BUILD", os.path.join(ROOT, "build"))
NIMBUS = os.path.join(BUILD, "src", "nimbus")
AWS = "/usr/bin/aws"  # Debian's awscli 2.9 (not a pip one on PATH)
FUNCS = os.path.join(ROOT, "tests", "e2e", "functions")


def sanitized_build(build=BUILD):
    """True when build is a sanitizer build (meson's b_sanitize option is set)."""
    try:
        with open(os.path.join(build, "meson-info", "intro-buildoptions.json")) as f:
            opts = json.load(f)
    except (OSError, ValueError):
        return False
    for o in opts:
        if o.get("name") == "b_sanitize":
            v = o.get("value")
            return bool(v) and v != "none" and v != ["none"]
    return False


SANITIZED = sanitized_build()
# the first line of a report of ASan, LSan (leaks at exit) and UBSan
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
REPORT_LINES = 40  # lines of a report quoted in a failure


class Headers(dict):
    """Response headers: lower-case names, looked up case-insensitively."""

    def get(self, k, default=None):
        return dict.get(self, k.lower(), default)

    def __getitem__(self, k):
        return dict.__getitem__(self, k.lower())

    def __contains__(self, k):
        return dict.__contains__(self, k.lower())


def read_credentials(path, profile="nimbus"):
    """(access key id, secret) of profile in a shared-credentials file, or (None, None)."""
    import configparser
    cp = configparser.ConfigParser()
    if not cp.read(path) or not cp.has_section(profile):
        return None, None
    return cp.get(profile, "aws_access_key_id"), cp.get(profile, "aws_secret_access_key")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """One `nimbus serve` process. start() waits until /healthz answers."""

    def __init__(self, data_dir, extra_args=()):
        self.data_dir = data_dir
        self.port = free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.extra_args = list(extra_args)
        # the public listener (function URLs, HTTP routes) on a free port of its own
        self.public_port = free_port()
        if not any(a.startswith("--public-listen") for a in self.extra_args):
            self.extra_args += ["--public-listen", "127.0.0.1:%d" % self.public_port]
        self.proc = None
        self.log_path = os.path.join(data_dir, "daemon.log")
        self.credentials = os.path.join(data_dir, "credentials")
        self.key_id = self.secret = None  # the root key, read at start()
        # exit check (check_exit): where this process' part of the shared log starts, whether it
        # became healthy, whether stop() had to kill it, the verdict once it exited
        self.log_offset = 0
        self.healthy = False
        self.stop_timed_out = False
        self.problem = None  # None: not diagnosed yet; "" : exited fine
        self.reported = False

    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        self.log = open(self.log_path, "ab")
        STARTED.append(self)
        # free_port() only finds a port that was free a moment ago: on a first start, a port
        # taken in between (by another process on this host) is replaced and the start retried.
        # A restart keeps its port, which its clients already use.
        for attempt in range(3):
            if self.try_start(retry_ports=attempt < 2 and not self.healthy):
                return self
        raise RuntimeError("nimbus exited early:\n" + self.daemon_log())

    def try_start(self, retry_ports):
        """One start attempt: True once healthy; False when the daemon could not bind its
        ports and retry_ports allows new ones (then chosen here); raises otherwise."""
        self.log_offset = self.log.tell()
        args = [NIMBUS, "serve", "--listen", "127.0.0.1:%d" % self.port,
                "--data-dir", self.data_dir, "--log-level", "debug",
                "--cgroup-parent", "nimbus-e2e-%d" % self.port] + self.extra_args
        CGROUP_PARENTS.add("nimbus-e2e-%d" % self.port)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                if retry_ports and "address already in use" in self.attempt_log():
                    self.replace_ports()
                    return False
                raise RuntimeError("nimbus exited early:\n" + self.daemon_log())
            try:
                with urllib.request.urlopen(self.endpoint + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        # the daemon writes its root key there at first start
                        self.key_id, self.secret = read_credentials(self.credentials)
                        self.healthy = True
                        return True
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nimbus did not become healthy:\n" + self.daemon_log())

    def replace_ports(self):
        old_public = "127.0.0.1:%d" % self.public_port
        self.port = free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        if old_public in self.extra_args:
            self.public_port = free_port()
            self.extra_args[self.extra_args.index(old_public)] = "127.0.0.1:%d" % self.public_port

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.stop_timed_out = sig != signal.SIGKILL
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
            self.diagnose()  # now: the test may remove the data folder (and the log) next
        return self.proc.returncode if self.proc else None

    def diagnose(self):
        """Once the process exited: sets self.problem to "" (a clean exit) or what went wrong."""
        if self.problem is not None or not self.proc or self.proc.poll() is None:
            return
        rc = self.proc.returncode
        why = []
        if self.stop_timed_out:
            why.append("did not exit within the stop timeout after SIGTERM (killed)")
        elif rc != 0 and self.healthy and rc != -signal.SIGKILL:
            # before healthy, an exit is start()'s to report; SIGKILL is a test's own doing
            why.append("exited with %s" % (("signal %d" % -rc) if rc < 0 else "status %d" % rc))
        report = self.sanitizer_report() if SANITIZED else None
        if report:
            why.append("sanitizer report in %s:\n%s" % (self.log_path, report))
        self.problem = "; ".join(why)

    def sanitizer_report(self):
        """The first lines of the first sanitizer report in this process' part of the log."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return None
        for i, line in enumerate(lines):
            if any(m in line for m in SANITIZER_MARKERS):
                return "\n".join(lines[i:i + REPORT_LINES])
        return None

    def check_exit(self):
        """What went wrong with this daemon's exit, once (then None); None while it runs."""
        self.diagnose()
        if not self.problem or self.reported:
            return None
        self.reported = True
        return "nimbus daemon (pid %d, port %d) %s" % (self.proc.pid, self.port, self.problem)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def attempt_log(self):
        """What the current start attempt logged."""
        with open(self.log_path, "rb") as f:
            f.seek(self.log_offset)
            return f.read().decode(errors="replace")

    def daemon_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-20000:]
        except OSError:
            return ""

    def env(self):
        e = dict(os.environ)
        e.update({
            "AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
            "NIMBUS_ENDPOINT": self.endpoint, "AWS_PAGER": "",
            "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        })
        return e

    def sign(self, method, path, body=b"", headers=None, key_id=None, secret=None,
             service="lambda"):
        """Headers of a request signed (SigV4, botocore's SigV4Auth) with the root key or the
        given one; path is the wire path (already percent-encoded), with any query."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        req = AWSRequest(method=method, url=self.endpoint + path, data=body,
                         headers=dict(headers or {}))
        SigV4Auth(Credentials(key_id or self.key_id, secret or self.secret), service,
                  "us-east-1").add_auth(req)
        return dict(req.headers.items())

    def raw_request(self, method, path, body=b"", headers=None):
        """The bytes of one HTTP/1.1 request signed with the root key (Host and Content-Length
        included), for tests that drive a raw socket."""
        headers = self.sign(method, path, body, headers)
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1:%d" % self.port,
                 "Content-Length: %d" % len(body)]
        lines += ["%s: %s" % kv for kv in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def request(self, method, path, body=b"", headers=None, timeout=120, sign=True,
                service="lambda"):
        """One raw HTTP request to the API listener (for what no AWS client can send: malformed
        bodies, odd headers). Signed with the root key for service unless sign=False. Returns (status,
        headers (lower-case names, case-insensitive lookups), body bytes). Tests use this (or
        boto3/aws/cli) for every call to the API listener, never urllib directly, so that
        credentials are applied in one place."""
        import http.client
        if isinstance(body, str):
            body = body.encode()
        headers = dict(headers or {})
        if sign:
            headers = self.sign(method, path, body, headers, service=service)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            return r.status, Headers({k.lower(): v for k, v in r.getheaders()}), data
        finally:
            conn.close()

    def boto3(self, service="lambda", **kw):
        import boto3
        from botocore.config import Config
        cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120,
                     connect_timeout=5)
        args = dict(endpoint_url=self.endpoint, region_name="us-east-1",
                    aws_access_key_id=self.key_id, aws_secret_access_key=self.secret, config=cfg)
        args.update(kw)
        return boto3.client(service, **args)

    def aws(self, *args, check=True, input=None):
        """Runs the aws CLI; returns (rc, stdout, stderr)."""
        p = subprocess.run([AWS, "--endpoint-url", self.endpoint, "--output", "json"] +
                           list(args), env=self.env(), capture_output=True, text=True,
                           input=input, timeout=180)
        if check and p.returncode != 0:
            raise AssertionError("aws %s failed (%d): %s" % (" ".join(args), p.returncode,
                                                              p.stderr))
        return p.returncode, p.stdout, p.stderr

    def cli(self, *args, check=False, input=None, timeout=180):
        """Runs the nimbus CLI against this daemon; returns the CompletedProcess."""
        p = subprocess.run([NIMBUS] + list(args), env=self.env(), capture_output=True,
                           text=True, input=input, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("nimbus %s failed (%d): %s%s" % (" ".join(args), p.returncode,
                                                                  p.stdout, p.stderr))
        return p


def zip_dir(path):
    """Zips a folder in memory, keeping the executable bit; returns bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for base, _dirs, files in os.walk(path):
            for name in sorted(files):
                full = os.path.join(base, name)
                rel = os.path.relpath(full, path)
                info = zipfile.ZipInfo(rel)
                info.external_attr = (os.stat(full).st_mode & 0o777 | 0o100000) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(full, "rb") as f:
                    z.writestr(info, f.read())
    return buf.getvalue()


def zip_files(files):
    """files: {name: (bytes|str, mode)} -> zip bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, (data, mode) in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (mode | 0o100000) << 16
            z.writestr(info, data)
    return buf.getvalue()


ROLE = "arn:aws:iam::000000000000:role/lambda-role"

STARTED = []  # every Daemon started in this session whose exit is not checked yet


def check_daemon_exits():
    """Fails the current test or teardown if a daemon that exited did not exit cleanly; forgets
    the daemons that exited."""
    problems = []
    for dm in list(STARTED):
        p = dm.check_exit()
        if p:
            problems.append(p)
        if dm.problem is not None:
            STARTED.remove(dm)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def daemon_exits():
    """After each test: a daemon that exited during it (a test's own, or one that crashed) exited
    cleanly."""
    yield
    check_daemon_exits()


CGROUP_PARENTS = set()  # the --cgroup-parent of every daemon started in this module


def remove_cgroup_tree(name):
    """Removes /sys/fs/cgroup/*/NAME depth first, killing what is left in it. A daemon stopped
    with SIGTERM removes its own; one a test killed with SIGKILL and never restarted leaves it,
    and on a shared host every leftover cpu group makes each cpu-quota write walk further."""
    for root in glob.glob("/sys/fs/cgroup/*/" + name):
        for dirpath, _, _ in sorted(os.walk(root), key=lambda w: -w[0].count("/")):
            try:
                with open(os.path.join(dirpath, "cgroup.procs")) as f:
                    for pid in f.read().split():
                        os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
            for _ in range(50):
                try:
                    os.rmdir(dirpath)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


@pytest.fixture(scope="module", autouse=True)
def daemon_exits_module():
    """After a module's own module-scoped fixtures: the daemons they stopped exited cleanly, and
    no cgroup of theirs is left on the host."""
    yield
    check_daemon_exits()
    if not any(dm.proc and dm.proc.poll() is None for dm in STARTED):
        for name in CGROUP_PARENTS:
            remove_cgroup_tree(name)
        CGROUP_PARENTS.clear()


@pytest.fixture(scope="session")
def nimbus_bin():
    if not os.path.exists(NIMBUS):
        pytest.fail("nimbus binary not built at %s" % NIMBUS)
    return NIMBUS


def module_daemon(extra_args=()):
    """The body of a module-scoped daemon fixture (`yield from module_daemon(args)`): a daemon
    with extra_args in a new data folder; stopped and its
    folder removed (unless NIMBUS_KEEP_DATA is set) at the end."""
    d = tempfile.mkdtemp(prefix="nimbus-e2e-")
    dm = Daemon(d, extra_args).start()
    yield dm
    dm.stop()
    problem = dm.check_exit()
    if problem:  # the folder (and the daemon log) stays for a look
        pytest.fail(problem, pytrace=False)
    if not os.environ.get("NIMBUS_KEEP_DATA"):
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def daemon(nimbus_bin):
    """A daemon shared by the tests of one module."""
    yield from module_daemon()


@pytest.fixture
def fresh_daemon(nimbus_bin):
    """A daemon of the test's own; extra args via dm = fresh_daemon(args)."""
    made = []

    def make(extra_args=()):
        d = tempfile.mkdtemp(prefix="nimbus-e2e-")
        dm = Daemon(d, extra_args).start()
        made.append(dm)
        return dm

    yield make
    for dm in made:
        dm.stop()
    check_daemon_exits()  # before the folders (and logs) go; a failure keeps them
    if not os.environ.get("NIMBUS_KEEP_DATA"):  # keep daemon logs for debugging
        for dm in made:
            shutil.rmtree(dm.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def lam(daemon):
    return daemon.boto3("lambda")


def create_function(client, name, zip_bytes, runtime="provided.al2023", handler="handler",
                    **kw):
    return client.create_function(FunctionName=name, Runtime=runtime, Role=ROLE,
                                  Handler=handler, Code={"ZipFile": zip_bytes}, **kw)


def invoke(client, name, payload=b"{}", **kw):
    """Invokes; returns (response dict, payload bytes)."""
    r = client.invoke(FunctionName=name, Payload=payload, **kw)
    return r, r["Payload"].read()


@pytest.fixture(scope="module")
def js(daemon):
    """The AWS SDK for JavaScript v3 pointed at the module's daemon (tests/e2e/jssdk.py); skips
    when tests/js/node_modules is missing (fails instead under CI)."""
    import jssdk
    jssdk.require()
    return jssdk.JsSdk(daemon)
