"""
test_zygote.py - end-to-end tests of the Python zygote (runtimes/python/zygote.py,
src/zygote.c, src/zygote_py.c, the zygote path of src/sandbox.c and src/spawner.c): instances
forked from one pre-initialised interpreter must be exactly as isolated as fresh starts.

An instance tells where it came from by sys.flags.no_user_site (only the zygote runs with -s); the
daemon's debug log says `zygote=1` for each such start. This module's daemon keeps 6 zygote slots
so that concurrent starts come from the zygote too, and it re-runs every test of test_isolation.py
(imported below) against zygote-born probes; the last test checks that they really were.
"""
import concurrent.futures
import os
import re
import signal
import time

import pytest

from conftest import ROLE, module_daemon, zip_files
from helpers import call, deploy_probe, op, uniq
from test_isolation import *  # noqa: F401,F403 - the isolation suite, on zygote instances
from test_isolation import code_dirs  # noqa: F401


@pytest.fixture(scope="module")
def daemon(nimbus_bin):
    """This module's own daemon: more zygote slots, so bursts of 2-4 starts use the zygote."""
    yield from module_daemon(["--zygote-pool", "6"])


def zygote_probe(lam, name, **event):
    body, _ = op(lam, name, "zygote", **event)
    return body


def fresh_instance(lam, name, **event):
    """One invocation on a new instance of name: its idle instances are retired first by a
    change of its environment (instances run the environment they started with)."""
    env = lam.get_function_configuration(FunctionName=name).get("Environment", {})
    env = dict(env.get("Variables", {}), ZY_GEN=uniq("g"))
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": env})
    return zygote_probe(lam, name, **event)


def wait_zygote(lam, name, timeout=20):
    """Starts new instances of name until one comes from the zygote (its slots fill after the
    first Python start of the daemon)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = fresh_instance(lam, name)
        if body["result"]["no_user_site"] == 1:
            return body
        time.sleep(0.3)
    pytest.fail("no instance came from the zygote within %d s" % timeout)


@pytest.fixture(scope="module", autouse=True)
def zygote_ready(daemon, lam):
    name = deploy_probe(lam, uniq("zy-warm"))["FunctionName"]
    wait_zygote(lam, name)
    time.sleep(0.5)  # all slots refilled
    return name


def concurrent_pair(lam, name, **event):
    """Two invocations at once: two instances. Returns both results."""
    event.setdefault("pause", 1.0)
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        futs = [ex.submit(zygote_probe, lam, name, **event) for _ in range(2)]
        a, b = [f.result()["result"] for f in futs]
    return a, b


def test_concurrent_zygote_instances_are_separate(lam):
    name = deploy_probe(lam, uniq("zy-pair"))["FunctionName"]
    a, b = concurrent_pair(lam, name)
    assert a["no_user_site"] == b["no_user_site"] == 1, (a, b)  # both from the zygote
    # each its own pid, mount, net, ipc, uts and cgroup namespace, as a fresh start
    for ns in ("pid", "mnt", "net", "ipc", "uts", "cgroup"):
        assert a["ns"][ns] != b["ns"][ns], (ns, a["ns"], b["ns"])
    assert a["pid"] == b["pid"] == 2  # pid 1 is the instance's init
    assert a["uid"] != b["uid"] and 0 not in (a["uid"], b["uid"])
    # no random state is shared: Python's generator, the kernel's, uuid4
    assert a["random"] != b["random"]
    assert a["urandom"] != b["urandom"]
    assert not set(a["uuid4"]) & set(b["uuid4"])


def test_instance_looks_like_a_fresh_start(lam):
    name = deploy_probe(lam, uniq("zy-look"))["FunctionName"]
    plain = deploy_probe(lam, uniq("zy-look-plain"),
                         Environment={"Variables": {"NIMBUS_ZYGOTE": "0"}})["FunctionName"]
    z = zygote_probe(lam, name)["result"]
    p = zygote_probe(lam, plain)["result"]
    assert z["no_user_site"] == 1 and p["no_user_site"] == 0
    # same open fds (stdio, the Runtime API connection...): nothing of the zygote's (its socket)
    for k in ("cmdline", "executable", "argv", "main_file", "fds", "stdio"):
        assert z[k] == p[k], (k, z[k], p[k])
    assert z["cmdline"] == ["/usr/bin/python3", "/var/runtime/python/bootstrap.py"]
    assert z["stdio"] == ["/dev/n", "pipe:[", "pipe:["], z["stdio"]
    assert z["main_file"] == "/var/runtime/python/bootstrap.py"


def test_module_state_does_not_travel(lam):
    a = deploy_probe(lam, uniq("zy-taint-a"))["FunctionName"]
    b = deploy_probe(lam, uniq("zy-taint-b"))["FunctionName"]
    secret = uniq("taint")
    first = zygote_probe(lam, a, taint=secret)["result"]
    assert first["no_user_site"] == 1 and first["tainted"] is None
    again = zygote_probe(lam, a)["result"]  # the same (warm) instance keeps its own state
    assert again["tainted"] == secret and again["env_taint"] == secret
    other = zygote_probe(lam, b)["result"]  # another function's instance, same zygote
    assert other["no_user_site"] == 1
    assert other["tainted"] is None and other["env_taint"] is None
    new_a = fresh_instance(lam, a)["result"]  # and a new instance of the same function
    assert new_a["tainted"] is None and new_a["env_taint"] is None


def test_environment_stays_with_its_function(lam):
    secret = uniq("s3cr3t")
    a = deploy_probe(lam, uniq("zy-env-a"),
                     Environment={"Variables": {"ZY_SECRET": secret}})["FunctionName"]
    b = deploy_probe(lam, uniq("zy-env-b"))["FunctionName"]
    for name, has in ((a, True), (b, False), (a, True)):
        body, _ = op(lam, name, "env")
        env = body["result"]
        raw = env.pop("__raw__")
        assert zygote_probe(lam, name)["result"]["no_user_site"] == 1
        assert (env.get("ZY_SECRET") == secret) is has, env
        assert any(secret in e for e in raw) is has, raw
        assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
        assert "_NIMBUS_ZYGOTE_PAD" not in env and not any("_NIMBUS" in e for e in raw)
        keys = [e.split("=", 1)[0] for e in raw]
        # /proc/self/environ is the start environment: all of it, nothing else (the runtime sets
        # _X_AMZN_TRACE_ID per invocation later)
        assert len(keys) == len(set(keys)), keys
        assert set(keys) == set(env) - {"_X_AMZN_TRACE_ID"}, (keys, sorted(env))


def test_each_instance_gets_its_own_invocations(lam):
    name = deploy_probe(lam, uniq("zy-rid"))["FunctionName"]
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        futs = [ex.submit(call, lam, name, {"op": "context", "pause": 0.8}) for _ in range(4)]
        results = [f.result() for f in futs]
    streams = set()
    for r, body, _ in results:
        assert "FunctionError" not in r, body
        assert body["result"]["aws_request_id"] == r["ResponseMetadata"]["RequestId"]
        streams.add(body["log_stream"])
    assert len(streams) == 4  # four instances, each answered its own request


def test_logs_report_and_init_duration(lam):
    name = deploy_probe(lam, uniq("zy-log"))["FunctionName"]
    r, body, log = call(lam, name, {"op": "log", "lines": 3, "stderr": 1}, tail=True)
    assert "FunctionError" not in r, body
    assert "probe log line 00002" in log and "probe stderr line 00000" in log
    assert re.search(r"Init Duration: \d+\.\d\d ms", log), log
    assert re.search(r"Max Memory Used: \d+ MB", log), log
    assert zygote_probe(lam, name)["result"]["no_user_site"] == 1


def test_crash_timeout_and_oom_are_reported_as_for_a_fresh_start(lam):
    name = deploy_probe(lam, uniq("zy-bad"), Timeout=2, MemorySize=128)["FunctionName"]
    assert zygote_probe(lam, name)["result"]["no_user_site"] == 1
    r, body, _ = call(lam, name, {"op": "exit", "code": 7})
    assert r["FunctionError"] == "Unhandled" and body["errorType"] == "Runtime.ExitError"
    assert "exit status 7" in body["errorMessage"], body
    r, body, _ = call(lam, name, {"op": "kill9"})
    assert body["errorType"] == "Runtime.ExitError" and "signal: killed" in body["errorMessage"]
    r, body, _ = call(lam, name, {"op": "sleep", "seconds": 5})
    assert r["FunctionError"] == "Unhandled" and body["errorType"] == "Sandbox.Timedout", body
    r, body, _ = call(lam, name, {"op": "alloc", "mb": 1024})
    assert body["errorType"] == "Runtime.ExitError" and "signal: killed" in body["errorMessage"]
    r, body, _ = call(lam, name, {"op": "alloc", "mb": 20})  # a new instance serves again
    assert "FunctionError" not in r, body
    assert zygote_probe(lam, name)["result"]["no_user_site"] == 1


def test_opt_out_starts_plain(lam):
    name = deploy_probe(lam, uniq("zy-out"),
                        Environment={"Variables": {"NIMBUS_ZYGOTE": "0"}})["FunctionName"]
    for _ in range(2):
        res = fresh_instance(lam, name)["result"]
        assert res["no_user_site"] == 0
    # variables only read at interpreter start make a plain start too
    name = deploy_probe(lam, uniq("zy-pyenv"),
                        Environment={"Variables": {"PYTHONDONTWRITEBYTECODE": "1"}})["FunctionName"]
    assert zygote_probe(lam, name)["result"]["no_user_site"] == 0


def our_zygote(daemon):
    """pid of this daemon's zygote: the child of its spawner running zygote.py."""
    kids = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%s/cmdline" % p, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        kids.setdefault(ppid, []).append((int(p), cmd))
    for spawner, cmd in kids.get(daemon.proc.pid, []):
        for pid, zcmd in kids.get(spawner, []):
            if b"zygote.py" in zcmd:
                return pid
    return None


def test_zygote_is_hardened(daemon, zygote_ready):
    pid = our_zygote(daemon)
    assert pid
    st = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            st[k] = v.strip()
    assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1"
    cap_eff, cap_bnd = int(st["CapEff"], 16), int(st["CapBnd"], 16)
    for cap in (12, 13, 16, 17, 19, 27):  # NET_ADMIN, NET_RAW, SYS_MODULE, SYS_RAWIO, PTRACE, MKNOD
        assert not cap_eff & (1 << cap) and not cap_bnd & (1 << cap), cap
    for ns in ("mnt", "net", "ipc", "uts"):
        assert os.readlink("/proc/%d/ns/%s" % (pid, ns)) != os.readlink("/proc/self/ns/" + ns)
    with open("/proc/%d/mountinfo" % pid) as f:
        mounts = [line.split() for line in f]
    root = [m for m in mounts if m[4] == "/"]
    assert root and all("ro" in m[5].split(",") for m in root), root
    assert all("ro" in m[5].split(",") for m in mounts if not m[4].startswith("/sys/fs/cgroup"))


def test_zygote_is_restarted_after_it_dies(daemon, lam, zygote_ready):
    pid = our_zygote(daemon)
    assert pid
    os.kill(pid, signal.SIGKILL)
    # parked children survive their zygote (they are the spawner's); later starts work, from a
    # plain start at worst, and a new zygote takes over
    name = deploy_probe(lam, uniq("zy-restart"))["FunctionName"]
    for _ in range(8):
        body = fresh_instance(lam, name)
        assert "instance" in body
    wait_zygote(lam, name)
    new = our_zygote(daemon)
    assert new and new != pid
    assert daemon.alive()


def test_zz_isolation_suite_ran_on_zygote_instances(daemon):
    log = daemon.daemon_log() + open(daemon.log_path, "rb").read().decode(errors="replace")
    starts = re.findall(r"instance spawn function=(\S+) instance=\d+ zygote=(\d)", log)
    py_zygote = [f for f, z in starts if z == "1"]
    assert len(py_zygote) >= 30, starts
    assert any(f.startswith("iso-probe") for f in py_zygote)
    assert any(f.startswith("iso-oom") for f in py_zygote)
