"""
test_node_park.py - end-to-end tests of parked runtimes (src/prewarm.c): after a Node.js function
was invoked, instances are started ahead, initialized and left waiting on the Runtime API `next`;
an invocation that finds no warm instance takes one (no Init Duration, counted in
nimbus_function_parked_hits_total) and another is parked in the background. Also: no variable
of the daemon's own environment reaches a function.

The function (tests/e2e/functions/node_park) answers a random id made at init (`instance`), its
code version, its log stream (which finds its host processes) and, when asked, its environment.
"""
import concurrent.futures
import os
import signal
import time

import pytest

from conftest import FUNCS, zip_files
from helpers import call, fn_pids, metrics, stream_pids, uniq, wait_for

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
SRC = os.path.join(FUNCS, "node_park", "index.js")


def node_zip(version="v1"):
    with open(SRC) as f:
        code = f.read().replace("const VERSION = 'v1';", "const VERSION = '%s';" % version)
    return zip_files({"index.js": (code, 0o644)})


def deploy(client, name, version="v1"):
    client.create_function(FunctionName=name, Runtime="nodejs20.x", Role=ROLE,
                           Handler="index.handler", Code={"ZipFile": node_zip(version)},
                           Timeout=30)


def parked(dm, name):
    return metrics(dm).get('nimbus_function_parked_instances{function="%s"}' % name, 0)


def hits(dm, name):
    return metrics(dm).get(
        'nimbus_function_parked_hits_total{function="%s",version="$LATEST"}' % name, 0)


def colds(dm, name):
    return metrics(dm).get(
        'nimbus_function_cold_starts_total{function="%s",version="$LATEST"}' % name, 0)


def busy(dm, name):
    return metrics(dm).get('nimbus_function_instances{function="%s",state="busy"}' % name, 0)


def ok(client, name, event=None, tail=True):
    r, body, log = call(client, name, event or {}, tail=tail)
    assert r["StatusCode"] == 200 and "FunctionError" not in r, (body, log)
    return body, log


def settled(dm, name):
    """Waits until no instance of name is busy: one that just answered is back at its `next`."""
    assert wait_for(lambda: busy(dm, name) == 0, timeout=15)


def wait_parked(dm, name, n, timeout=20):
    assert wait_for(lambda: parked(dm, name) == n, timeout=timeout), \
        "parked=%s, wanted %d\n%s" % (parked(dm, name), n, dm.daemon_log()[-3000:])


def cold_while_busy(dm, client, name, event=None):
    """Keeps the warm instance busy and invokes again: that invocation finds no warm instance.
    Returns its (body, log)."""
    settled(dm, name)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        slow = ex.submit(ok, dm.boto3(), name, {"sleep": 1500}, False)
        assert wait_for(lambda: busy(dm, name) >= 1, timeout=10)
        res = ok(client, name, event)
        slow.result()
    return res


@pytest.fixture(scope="module")
def client(daemon):
    return daemon.boto3()


def test_parked_instance_serves_the_next_cold_invocation(daemon, client):
    name = uniq("park")
    deploy(client, name)
    first, log = ok(client, name)
    assert "Init Duration" in log  # the first one paid the init
    assert first["initType"] == "on-demand"
    wait_parked(daemon, name, 1)
    settled(daemon, name)
    c0, h0 = colds(daemon, name), hits(daemon, name)
    # a warm instance is reused first: the parked one is not taken by a warm invocation
    again, log = ok(client, name)
    assert again["instance"] == first["instance"] and "Init Duration" not in log
    assert hits(daemon, name) == h0 and parked(daemon, name) == 1

    body, log = cold_while_busy(daemon, client, name)
    assert body["instance"] != first["instance"]
    assert body["calls"] == 1  # initialized ahead, this is its first event
    assert body["initType"] == "on-demand"
    assert "Init Duration" not in log  # the init happened ahead of time, unpaid by this one
    assert "REPORT RequestId:" in log
    assert hits(daemon, name) == h0 + 1
    assert colds(daemon, name) == c0  # not a cold start: nothing was started for it
    wait_parked(daemon, name, 1)  # refilled in the background
    m = metrics(daemon)
    assert m["nimbus_parked_hits_total"] >= 1
    assert m["nimbus_parked_instances"] >= 1


def test_burst_uses_several_parked_instances(daemon, client):
    name = uniq("burst")
    deploy(client, name)
    ok(client, name)
    wait_parked(daemon, name, 1)
    # three at once: one warm, one parked, one more (a cold start or the refill): the peak of
    # concurrent cold-path invocations becomes 2 (3 when the warm instance was not back at its
    # `next` yet, as on a loaded machine)
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        list(ex.map(lambda _: ok(daemon.boto3(), name, {"sleep": 2000}, False), range(3)))
    assert wait_for(lambda: parked(daemon, name) >= 2, timeout=20), daemon.daemon_log()[-3000:]
    settled(daemon, name)
    k = int(parked(daemon, name))
    assert k in (2, 3)
    warm = int(metrics(daemon)['nimbus_function_instances{function="%s",state="idle"}' % name]) - k
    assert warm >= 1
    c0, h0 = colds(daemon, name), hits(daemon, name)
    n = warm + k  # every warm instance and every parked one
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        bodies = list(ex.map(lambda _: ok(daemon.boto3(), name, {"sleep": 2000}, False)[0],
                             range(n)))
    assert len({b["instance"] for b in bodies}) == n
    assert hits(daemon, name) == h0 + k
    assert colds(daemon, name) == c0
    assert sum(1 for b in bodies if b["calls"] == 1) == k  # the parked ones


def test_code_update_drops_parked_and_new_code_runs(daemon, client):
    name = uniq("upd")
    deploy(client, name)
    first, _ = ok(client, name)
    wait_parked(daemon, name, 1)
    old_pids = fn_pids(name)
    assert old_pids
    client.update_function_code(FunctionName=name, ZipFile=node_zip("v2"))
    client.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert wait_for(lambda: not any(p in fn_pids(name) for p in old_pids), timeout=20), \
        "old instances (parked included) still run"
    body, _ = ok(client, name)
    assert body["version"] == "v2"
    wait_parked(daemon, name, 1)
    body, log = cold_while_busy(daemon, client, name)
    assert body["version"] == "v2" and body["calls"] == 1 and "Init Duration" not in log


def test_crashed_parked_instance_is_replaced(daemon, client):
    name = uniq("crash")
    deploy(client, name)
    first, _ = ok(client, name)
    wait_parked(daemon, name, 1)
    warm = set(stream_pids(first["stream"]))
    victims = [p for p in fn_pids(name) if p not in warm]
    assert victims
    for p in victims:
        os.kill(p, signal.SIGKILL)
    # replaced: a new parked instance runs (other processes), and it serves
    assert wait_for(lambda: parked(daemon, name) == 1 and
                    [p for p in fn_pids(name) if p not in warm and p not in victims],
                    timeout=20), daemon.daemon_log()[-3000:]
    h0 = hits(daemon, name)
    body, log = cold_while_busy(daemon, client, name)
    assert body["calls"] == 1 and "Init Duration" not in log
    assert hits(daemon, name) == h0 + 1


def test_delete_leaves_nothing_behind(daemon, client):
    name = uniq("del")
    deploy(client, name)
    ok(client, name)
    wait_parked(daemon, name, 1)
    assert len(fn_pids(name)) >= 2
    client.delete_function(FunctionName=name)
    assert wait_for(lambda: not fn_pids(name), timeout=20)
    time.sleep(0.5)  # nothing is started again (a refill would show here)
    assert not fn_pids(name)
    assert 'nimbus_function_parked_instances{function="%s"}' % name not in metrics(daemon)


def test_versions_do_not_park(daemon, client):
    name = uniq("ver")
    deploy(client, name)
    v = client.publish_version(FunctionName=name)["Version"]
    ok(client, name + ":" + v)
    time.sleep(0.5)
    assert parked(daemon, name) == 0
    assert hits(daemon, name) == 0


def test_window_expiry_drops_parked(fresh_daemon):
    dm = fresh_daemon(["--keep-warm-s", "2", "--reap-interval-ms", "50"])
    client = dm.boto3()
    name = uniq("win")
    deploy(client, name)
    ok(client, name)
    wait_parked(dm, name, 1)
    assert len(fn_pids(name)) >= 2
    # keep_warm_s after the last invocation, the warm and the parked instances stop, and none is
    # started again
    assert wait_for(lambda: not fn_pids(name), timeout=15), dm.daemon_log()[-3000:]
    assert parked(dm, name) == 0
    time.sleep(1)
    assert not fn_pids(name)
    # a new invocation is a real cold start again, and parking resumes
    _, log = ok(client, name)
    assert "Init Duration" in log
    wait_parked(dm, name, 1)


def test_node_park_max_zero_is_off(fresh_daemon):
    dm = fresh_daemon(["--node-park-max", "0"])
    client = dm.boto3()
    name = uniq("off")
    deploy(client, name)
    ok(client, name)
    time.sleep(0.5)
    assert parked(dm, name) == 0
    _, log = cold_while_busy(dm, client, name)
    assert "Init Duration" in log  # a real cold start
    assert hits(dm, name) == 0


HOST_VARS = {
    "NODE_EXTRA_CA_CERTS": "/etc/ssl/certs/ca-certificates.crt",
    "NODE_OPTIONS": "--max-old-space-size=64",
    "NODE_PATH": "/host/node_modules",
    "NODE_DEBUG": "http",
    "UV_THREADPOOL_SIZE": "64",
    "PYTHONPATH": "/host/python",
    "LD_PRELOAD": "/host/libevil.so",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "AWS_ACCESS_KEY_ID": "AKIDHOSTLEAK",
    "NIMBUS_HOST_MARKER": "leak",
}


def test_function_opts_out_with_nimbus_park_0(daemon, client):
    name = uniq("optout")
    client.create_function(FunctionName=name, Runtime="nodejs20.x", Role=ROLE,
                           Handler="index.handler", Code={"ZipFile": node_zip()}, Timeout=30,
                           Environment={"Variables": {"NIMBUS_PARK": "0"}})
    ok(client, name)
    time.sleep(0.5)
    assert parked(daemon, name) == 0
    _, log = cold_while_busy(daemon, client, name)
    assert "Init Duration" in log
    assert hits(daemon, name) == 0


def test_host_environment_never_reaches_functions(fresh_daemon, monkeypatch):
    for k, v in HOST_VARS.items():
        monkeypatch.setenv(k, v)
    dm = fresh_daemon()
    with open("/proc/%d/environ" % dm.proc.pid, "rb") as f:
        assert b"NODE_EXTRA_CA_CERTS=" in f.read()  # the daemon really has them
    for k in HOST_VARS:  # only the daemon had them; the clients below get a clean environment
        monkeypatch.delenv(k)
    client = dm.boto3()
    name = uniq("env")
    deploy(client, name)
    cold, _ = ok(client, name, {"env": True})
    wait_parked(dm, name, 1)
    hit, log = cold_while_busy(dm, client, name, {"env": True})
    assert "Init Duration" not in log and hit["calls"] == 1  # served by the parked instance
    for body in (cold, hit):
        env = body["env"]
        for k, v in HOST_VARS.items():
            if k == "NODE_PATH":
                assert env.get(k) != v  # the platform's own NODE_PATH, never the host's
            else:
                assert k not in env, k
        assert "AKIDHOSTLEAK" not in "".join(env.values())
        assert "/host/" not in "".join(env.values())
        allowed = {"PATH", "LANG", "TZ", "LD_LIBRARY_PATH", "NODE_PATH", "LAMBDA_TASK_ROOT",
                   "LAMBDA_RUNTIME_DIR", "AWS_LAMBDA_RUNTIME_API", "_HANDLER",
                   "NIMBUS_RUNTIME_API_SOCKET",
                   "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
                   "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_LOG_GROUP_NAME",
                   "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_REGION", "AWS_DEFAULT_REGION",
                   "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_EXECUTION_ENV",
                   "_X_AMZN_TRACE_ID"}
        assert set(env) <= allowed, set(env) - allowed
