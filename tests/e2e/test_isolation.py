"""
test_isolation.py - end-to-end tests of the sandbox (src/sandbox.c, src/seccomp.c, src/cgroup.c,
src/spawner.c as driven by src/instance.c): what a hostile function can and cannot do.

A probe function (tests/e2e/functions/py_probe) tries, and reports the kernel's answer: reading
host files (/etc/shadow, /root, the daemon's data dir, a neighbour's code dir), writing outside
/tmp, connecting to the daemon's API port on the host loopback and to the outside, reaching another
instance's Runtime API through the abstract Unix socket, running as
root or with capabilities (uid, CapEff, NoNewPrivs, Seccomp in /proc/self/status), ptrace, mount,
unshare, setns, bpf and other denied syscalls, signalling processes outside its sandbox, seeing
other processes in /proc, a fork bomb against the pids limit, filling /tmp past its size (ENOSPC)
or past the memory limit (OOM), allocating past its memory, and sharing /tmp with another function
or another instance. After every test, the daemon and two neighbour functions (Python and C) must
still answer.
"""
import concurrent.futures
import glob
import json
import os
import socket
import time

import pytest

from conftest import ROLE
from helpers import c_probe_zip, call, deploy_probe, fn_pids, metrics, op, uniq, wait_for

DENIED = ("EACCES", "EPERM", "ENOENT")


@pytest.fixture(scope="module")
def probe(lam):
    return deploy_probe(lam, uniq("iso-probe"), Timeout=20)["FunctionName"]


@pytest.fixture(scope="module")
def neighbours(lam):
    py = deploy_probe(lam, uniq("iso-nb-py"))["FunctionName"]
    c = lam.create_function(FunctionName=uniq("iso-nb-c"), Runtime="provided.al2023", Role=ROLE,
                            Handler="x", Code={"ZipFile": c_probe_zip()})["FunctionName"]
    # warm both up front: after every test the same instances must still be serving
    _, body, _ = call(lam, py, {"op": "whoami"})
    return {"py": py, "c": c, "py_instance": body["instance"]}


@pytest.fixture(autouse=True)
def neighbours_keep_answering(daemon, lam, neighbours):
    yield
    assert daemon.alive(), daemon.daemon_log()[-3000:]
    r, body, _ = call(lam, neighbours["c"], {"still": "here"})
    assert "FunctionError" not in r and body["event"] == {"still": "here"}, body
    r, body, _ = call(lam, neighbours["py"], {"op": "whoami"})
    assert "FunctionError" not in r, body
    # the neighbour's warm instance was not disturbed (killed, restarted) by the test
    assert body["instance"] == neighbours["py_instance"], body


def code_dirs(daemon):
    root = os.path.join(daemon.data_dir, "code")
    return [os.path.join(root, d) for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))]


def test_host_files_are_out_of_reach(daemon, lam, probe, neighbours):
    dirs = code_dirs(daemon)
    assert dirs
    paths = ["/etc/shadow", "/etc/sudoers", "/root", "/root/.ssh", "/home", "/boot", "/var/lib",
             "/sys/fs/cgroup", daemon.data_dir, os.path.join(daemon.data_dir, "daemon.log"),
             os.path.join(daemon.data_dir, "nimbus.db")] + dirs + \
        [os.path.join(d, "probe.py") for d in dirs]
    body, _ = op(lam, probe, "read", paths=paths)
    for p in paths:
        assert not body["result"][p]["ok"] and body["result"][p]["errno"] in DENIED, (p, body)
    # what the host has at those paths is really there (the probe is not just looking wrong)
    assert os.path.exists("/etc/shadow") and os.path.isdir(daemon.data_dir)
    # the function's own code is readable at /var/task, the runtime at /var/runtime
    body, _ = op(lam, probe, "read", paths=["/var/task/probe.py", "/var/runtime/python"])
    assert body["result"]["/var/task/probe.py"]["ok"]
    assert body["result"]["/var/runtime/python"]["ok"]


def test_sandbox_init_is_off_limits(lam, probe):
    body, _ = op(lam, probe, "read", paths=["/proc/1/environ", "/proc/1/root/", "/proc/1/mem"])
    for p, res in body["result"].items():
        assert not res["ok"] and res["errno"] in ("EACCES", "EPERM"), (p, res)


def test_writes_outside_tmp_fail(lam, probe):
    paths = ["/var/task/x", "/var/task/probe.py", "/x", "/usr/x", "/usr/bin/x", "/etc/x",
             "/etc/passwd", "/var/runtime/x", "/var/x", "/proc/sys/kernel/hostname",
             "/proc/sysrq-trigger", "/dev/x"]
    body, _ = op(lam, probe, "write", paths=paths + ["/tmp/ok"])
    res = body["result"]
    for p in paths:
        assert not res[p]["ok"] and res[p]["errno"] in ("EROFS", "EACCES", "EPERM", "ENOENT"), \
            (p, res[p])
    assert res["/tmp/ok"] == {"ok": True}


def test_no_network_but_the_runtime_api(daemon, lam, probe):
    host_ip = None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))  # no packet is sent; picks the outgoing address
            host_ip = s.getsockname()[0]
    except OSError:
        pass
    targets = [["127.0.0.1", daemon.port], ["127.0.0.1", 22], ["1.1.1.1", 53],
               ["8.8.8.8", 443]]
    if host_ip and not host_ip.startswith("127."):
        targets.append([host_ip, daemon.port])
    body, _ = op(lam, probe, "connect", targets=targets + [["127.0.0.1", 9001]])
    res = body["result"]
    for host, port in targets:
        key = "%s:%d" % (host, port)
        assert not res[key]["ok"] and res[key]["errno"] in (
            "ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH", "timeout"), (key, res[key])
    assert res["127.0.0.1:9001"] == {"ok": True}  # the Runtime API itself
    body, _ = op(lam, probe, "ifaces")
    assert body["result"]["ifaces"] == ["lo"]


def fn_log(daemon, name):
    out = []
    for path in sorted(glob.glob(os.path.join(daemon.data_dir, "logs", name, "*.log"))):
        with open(path, errors="replace") as f:
            out += [line.rstrip("\n").split("\t", 2)[-1] for line in f]
    return out


def test_runtime_api_unix_socket_is_the_instances_own(daemon, lam, probe):
    """Every instance's network namespace has its own abstract Unix socket for the Runtime API
    (@nimbus-runtime-api): a function reaches its own instance's Runtime API there and no other.
    While B runs an invocation (its id known from the asynchronous 202), A posts a response for
    B's id on its socket: unknown there (400). Then A posts its own response there: A's caller
    gets exactly that, and B's invocation ends normally."""
    other = deploy_probe(lam, uniq("iso-unix-b"), Timeout=20)["FunctionName"]
    r = lam.invoke(FunctionName=other, InvocationType="Event",
                   Payload=json.dumps({"op": "sleep", "seconds": 3}).encode())
    b_id = r["ResponseMetadata"]["RequestId"]
    start = "START RequestId: %s Version: $LATEST" % b_id
    assert wait_for(lambda: start in fn_log(daemon, other), timeout=15), fn_log(daemon, other)
    body, _ = op(lam, probe, "rapi_unix", posts=[[b_id, '"hijack"']])
    assert body["result"] == [{"status": 400, "errorType": "InvalidRequestID"}], body
    r, body, _ = call(lam, probe, {"op": "rapi_unix", "posts": [["self", '{"via": "unix"}']]})
    assert "FunctionError" not in r and body == {"via": "unix"}, body
    assert wait_for(lambda: any(l.startswith("END RequestId: %s" % b_id)
                                for l in fn_log(daemon, other)), timeout=15)
    log = fn_log(daemon, other)
    assert not [l for l in log if "rror" in l or "hijack" in l], log
    # and the probe's instance goes on serving (its runtime's own late POST got a 400)
    body, _ = op(lam, probe, "whoami")
    assert "instance" in body


def test_runtime_api_connection_flood(daemon, lam, probe):
    fds_before = len(os.listdir("/proc/%d/fd" % daemon.proc.pid))
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(op, lam, probe, "rapi_flood", n=400, hold=1.5)
        time.sleep(1.0)
        fds_during = len(os.listdir("/proc/%d/fd" % daemon.proc.pid))
        body, _ = fut.result()
    res = body["result"]
    # the daemon holds a bounded number of the function's connections, not all of them
    assert res["still_open"] <= 100, res
    assert fds_during - fds_before <= 100, (fds_before, fds_during)


def test_unprivileged_and_filtered(lam, probe):
    body, _ = op(lam, probe, "status")
    st, r = body["result"]["status"], body["result"]
    assert r["uid"] != 0 and r["euid"] != 0 and r["gid"] != 0 and 0 not in r["groups"]
    assert all(int(x) != 0 for x in st["Uid"].split()), st["Uid"]
    assert all(int(x) != 0 for x in st["Gid"].split()), st["Gid"]
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(st[cap], 16) == 0, (cap, st[cap])
    assert st["NoNewPrivs"] == "1"
    assert st["Seccomp"] == "2"
    assert r["hostname"] != socket.gethostname()


def test_dangerous_syscalls_are_denied(lam, probe):
    names = ["ptrace", "mount", "umount2", "unshare", "unshare_user", "unshare_net", "setns",
             "bpf", "chroot", "pivot_root", "keyctl", "userfaultfd", "perf_event_open",
             "io_uring_setup", "init_module", "kexec_load", "clone_newpid", "setuid0",
             "sethostname"]
    body, _ = op(lam, probe, "syscalls", names=names)
    for n in names:
        res = body["result"][n]
        assert res["rc"] == -1 and res["errno"] in ("EPERM", "ENOSYS"), (n, res)
    for n in ("ptrace", "mount", "unshare", "setns", "bpf"):
        assert body["result"][n]["errno"] == "EPERM", (n, body["result"][n])


def test_cannot_signal_outside_the_sandbox(daemon, lam, probe):
    host_pids = [p for p in (daemon.proc.pid, os.getpid(), 1) if p > 2] + [1]
    body, _ = op(lam, probe, "signal", pids=[p for p in host_pids if p != 1] + [1], sig=9)
    res = body["result"]
    # host pids do not exist in the sandbox's pid namespace
    for pid in host_pids:
        if pid != 1:
            assert res[str(pid)] == {"ok": False, "errno": "ESRCH"}, (pid, res)
    # SIGKILL to the namespace's own init is dropped by the kernel: the instance lives on
    again, _ = op(lam, probe, "whoami")
    assert again["instance"] == body["instance"]
    assert daemon.alive()


def test_proc_shows_only_the_sandbox(lam, probe):
    body, _ = op(lam, probe, "procs")
    procs = body["result"]["procs"]
    assert [p[0] for p in procs] == [1, body["result"]["self"]], procs
    assert procs[0][1] == "nimbus-init"
    assert "bootstrap.py" in procs[1][1]
    assert not any("nimbus serve" in p[1] or "pytest" in p[1] for p in procs)


def test_fork_bomb_is_contained(lam):
    # 1,769 MB buys a whole CPU, so the bomb reaches the pids limit within the call
    name = deploy_probe(lam, uniq("iso-bomb"), MemorySize=1769, Timeout=20)["FunctionName"]
    r, body, _ = call(lam, name, {"op": "forkbomb", "seconds": 2})
    if "FunctionError" in r:  # an error is fine as long as it is contained
        assert body["errorType"] in ("Runtime.ExitError", "Sandbox.Timedout"), body
    else:
        res = body["result"]
        assert 100 <= res["peak"] <= 1024, res  # --pids-max (default 1024) held
        assert res["left"] <= 2, res
    assert len(fn_pids(name)) <= 2


def test_tmp_is_size_limited(lam):
    name = deploy_probe(lam, uniq("iso-tmp"), MemorySize=1024,
                        EphemeralStorage={"Size": 512})["FunctionName"]
    body, _ = op(lam, name, "filltmp", mb=700)
    res = body["result"]
    assert res["errno"] == "ENOSPC", res
    assert res["size_mb"] == 512 and 500 <= res["written_mb"] <= 512, res


def test_tmp_past_memory_is_oom(lam):
    name = deploy_probe(lam, uniq("iso-tmpoom"), MemorySize=128)["FunctionName"]
    r, body, _ = call(lam, name, {"op": "filltmp", "mb": 400, "cleanup": False})
    # tmpfs pages are charged to the instance's memory: the kernel stops it either way
    if "FunctionError" in r:
        assert body["errorType"] == "Runtime.ExitError", body
        assert "signal: killed" in body["errorMessage"], body
    else:
        assert body["result"]["errno"] in ("ENOSPC", "ENOMEM"), body
    r, body, _ = call(lam, name, {"op": "tmp_list"})
    assert "FunctionError" not in r and "fill" not in body["result"]["tmp"]


def test_allocation_past_memory_is_oom(lam, daemon):
    name = deploy_probe(lam, uniq("iso-oom"), MemorySize=128)["FunctionName"]
    before = metrics(daemon)["nimbus_instances"]
    r, body, _ = call(lam, name, {"op": "alloc", "mb": 1024})
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert "signal: killed" in body["errorMessage"], body
    r, body, _ = call(lam, name, {"op": "alloc", "mb": 20})
    assert "FunctionError" not in r
    assert metrics(daemon)["nimbus_instances"] <= before + 1


def test_tmp_is_private_to_each_function(lam, probe, neighbours):
    secret = uniq("secret")
    body, _ = op(lam, probe, "tmp_put", name=secret)
    assert secret in body["result"]["tmp"]
    body, _ = op(lam, neighbours["py"], "tmp_list")
    assert secret not in body["result"]["tmp"]
    assert secret not in os.listdir("/tmp")  # nor on the host


def test_tmp_is_private_to_each_instance(lam):
    name = deploy_probe(lam, uniq("iso-tmpinst"))["FunctionName"]
    secret = uniq("secret")
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        put = ex.submit(op, lam, name, "tmp_put", name=secret, pause=1.5)
        look = ex.submit(op, lam, name, "tmp_list", pause=0.7)
        (wrote, _), (seen, _) = put.result(), look.result()
    assert wrote["instance"] != seen["instance"]  # two concurrent calls, two instances
    assert secret in wrote["result"]["tmp"]
    assert secret not in seen["result"]["tmp"], seen
