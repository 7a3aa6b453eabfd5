"""
helpers.py - shared pieces of test_invoke.py, test_scaling.py and test_isolation.py: the test
functions' packages, invoking with the log tail decoded, Lambda's log-line formats, the daemon's
/metrics, and finding a function's sandbox processes on the host (by the AWS_LAMBDA_* variables
in /proc/PID/environ, which only the runtime processes of that function carry).
"""
import base64
import json
import os
import re
import time
import urllib.request
import uuid

from conftest import BUILD, FUNCS, zip_dir, zip_files

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
UUID = re.compile("^%s$" % UUID_RE)


def report_re(memory=128, init=None):
    """Lambda's REPORT line; init True/False requires/forbids the Init Duration field."""
    init_part = {None: r"(Init Duration: \d+\.\d\d ms\t)?", True: r"Init Duration: \d+\.\d\d ms\t",
                 False: ""}[init]
    return re.compile(r"^REPORT RequestId: (%s)\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
                      r"Memory Size: %d MB\tMax Memory Used: \d+ MB\t%s$" % (UUID_RE, memory,
                                                                            init_part))


def uniq(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def py_probe_zip():
    return zip_dir(os.path.join(FUNCS, "py_probe"))


def c_probe_zip(libc="glibc"):
    """The C probe as a zip; libc "musl" gives the build linked statically against musl."""
    path = os.path.join(BUILD, "tests", "e2e", "functions", "c_probe",
                        "bootstrap-musl" if libc == "musl" else "bootstrap")
    with open(path, "rb") as f:
        return zip_files({"bootstrap": (f.read(), 0o755)})


def deploy_probe(client, name, **kw):
    """The Python probe (tests/e2e/functions/py_probe) as function `name`."""
    kw.setdefault("Timeout", 30)
    return client.create_function(FunctionName=name, Runtime="python3.11",
                                  Role="arn:aws:iam::000000000000:role/lambda-role",
                                  Handler="probe.handler", Code={"ZipFile": py_probe_zip()}, **kw)


def call(client, name, event=None, tail=False, **kw):
    """Invokes with a JSON event; returns (response, decoded payload or raw bytes, log text)."""
    if tail:
        kw["LogType"] = "Tail"
    payload = event if isinstance(event, (bytes, str)) else json.dumps(event or {})
    r = client.invoke(FunctionName=name, Payload=payload, **kw)
    raw = r["Payload"].read()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw
    log = base64.b64decode(r["LogResult"]).decode() if "LogResult" in r else None
    return r, body, log


def op(client, function, op_name, tail=False, **fields):
    """Runs one probe op; asserts the invocation succeeded; returns (body, log)."""
    fields["op"] = op_name
    r, body, log = call(client, function, fields, tail=tail)
    assert r["StatusCode"] == 200, r
    assert "FunctionError" not in r, (body, log)
    return body, log


def metrics(daemon):
    with urllib.request.urlopen(daemon.endpoint + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.split()
            out[k] = float(v)
    return out


def wait_for(pred, timeout=10.0, interval=0.05):
    """Polls pred() until it is truthy; returns its last value."""
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v or time.time() >= deadline:
            return v
        time.sleep(interval)


def sandbox_pids(marker):
    """Host pids whose environment contains `marker` (e.g. AWS_LAMBDA_FUNCTION_NAME=x)."""
    want = marker.encode() + b"\0"
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % p, "rb") as f:
                env = f.read()
        except OSError:
            continue
        if (b"\0" + env).find(b"\0" + want) >= 0:
            pids.append(int(p))
    return pids


def fn_pids(name):
    return sandbox_pids("AWS_LAMBDA_FUNCTION_NAME=%s" % name)


def stream_pids(log_stream):
    return sandbox_pids("AWS_LAMBDA_LOG_STREAM_NAME=%s" % log_stream)


def children(pid):
    """Direct children of a host pid."""
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return False


def no_retry(daemon):
    """A boto3 Lambda client that sends every call exactly once (botocore would retry a 429)."""
    import boto3
    from botocore.config import Config
    return boto3.client("lambda", endpoint_url=daemon.endpoint, region_name="us-east-1",
                        aws_access_key_id=daemon.key_id, aws_secret_access_key=daemon.secret,
                        config=Config(retries={"total_max_attempts": 1, "mode": "standard"},
                                      read_timeout=120, connect_timeout=5,
                                      max_pool_connections=20))

