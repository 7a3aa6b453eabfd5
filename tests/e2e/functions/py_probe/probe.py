# probe.py - the Python function of the invocation, scaling and isolation e2e tests (runtime
# python3.x, handler probe.handler). The event's "op" picks what it does; every op answers a JSON
# object. The module-level INSTANCE (a fresh uuid per import) and CALLS counter tell the tests
# which instance served an invocation and whether it was reused.
#
# Invocation ops: echo, context, env, raise, exit, kill9, sleep, alloc, big, log.
# Isolation ops (each reports what the kernel answered, as errno names, instead of failing):
# read, write, connect, ifaces, rapi_flood, rapi_unix, status, syscalls, signal, forkbomb, filltmp, procs,
# tmp_put, tmp_list. Zygote op (test_zygote.py): zygote.
import ctypes
import errno
import os
import signal
import socket
import sys
import time
import uuid

INSTANCE = uuid.uuid4().hex
CALLS = 0


def _errname(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__


def op_echo(event, context):
    return event.get("data")


def op_context(event, context):
    r1 = context.get_remaining_time_in_millis()
    time.sleep(event.get("pause", 0.2))
    r2 = context.get_remaining_time_in_millis()
    cc = context.client_context
    return {
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": [r1, r2],
        "client_context": None if cc is None else {
            "custom": cc.custom, "env": cc.env,
            "client_installation_id": cc.client.installation_id if cc.client else None,
        },
        "trace_env": os.environ.get("_X_AMZN_TRACE_ID"),
        "cwd": os.getcwd(),
    }


def op_env(event, context):
    env = dict(os.environ)
    # the exact envp the runtime was started with, duplicates included
    with open("/proc/self/environ", "rb") as f:
        env["__raw__"] = [e.decode("utf-8", "replace") for e in f.read().split(b"\0") if e]
    return env


def op_raise(event, context):
    raise ValueError("probe was asked to raise")


def op_exit(event, context):
    os._exit(event.get("code", 3))


def op_kill9(event, context):
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)


def op_sleep(event, context):
    time.sleep(event.get("seconds", 1))
    return {"slept": event.get("seconds", 1)}


def op_alloc(event, context):
    chunks = []
    for _ in range(event.get("mb", 400)):
        chunks.append(b"x" * (1 << 20))  # touched: bytes are filled
    return {"allocated_mb": len(chunks)}


def op_big(event, context):
    return "x" * event["bytes"]


def op_log(event, context):
    for i in range(event.get("lines", 10)):
        print("probe log line %05d %s" % (i, "y" * event.get("width", 50)))
    for i in range(event.get("stderr", 0)):
        print("probe stderr line %05d" % i, file=sys.stderr)
    return {"logged": event.get("lines", 10)}


def op_read(event, context):
    out = {}
    for path in event["paths"]:
        try:
            if os.path.isdir(path):
                out[path] = {"ok": True, "entries": sorted(os.listdir(path))[:50]}
            else:
                with open(path, "rb") as f:
                    out[path] = {"ok": True, "data": f.read(200).decode("latin-1")}
        except OSError as e:
            out[path] = {"ok": False, "errno": _errname(e)}
    return out


def op_write(event, context):
    out = {}
    for path in event["paths"]:
        try:
            with open(path, "wb") as f:
                f.write(b"nimbus probe was here\n")
            out[path] = {"ok": True}
        except OSError as e:
            out[path] = {"ok": False, "errno": _errname(e)}
    return out


def op_connect(event, context):
    out = {}
    for host, port in event["targets"]:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(3)
        try:
            s.connect((host, port))
            out["%s:%d" % (host, port)] = {"ok": True}
        except OSError as e:
            out["%s:%d" % (host, port)] = {"ok": False, "errno": _errname(e)}
        finally:
            s.close()
    return out


def op_rapi_unix(event, context):
    """POSTs each [request_id, body] of event["posts"] as that invocation's response to the
    Runtime API on the abstract Unix socket named by NIMBUS_RUNTIME_API_SOCKET ("self": this
    invocation's id); reports each answer."""
    import http.client
    import json

    class UnixHTTP(http.client.HTTPConnection):
        def __init__(self, addr):
            super().__init__("localhost", timeout=5)
            self._addr = addr

        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(self.timeout)
            self.sock.connect(self._addr)

    name = os.environ["NIMBUS_RUNTIME_API_SOCKET"]
    addr = "\0" + name[1:] if name.startswith("@") else name
    out = []
    for rid, body in event["posts"]:
        rid = context.aws_request_id if rid == "self" else rid
        c = UnixHTTP(addr)
        try:
            c.request("POST", "/2018-06-01/runtime/invocation/%s/response" % rid, body.encode())
            r = c.getresponse()
            data = r.read()
            out.append({"status": r.status,
                        "errorType": json.loads(data).get("errorType") if data else None})
        except OSError as e:
            out.append({"errno": _errname(e)})
        finally:
            c.close()
    return out


def op_ifaces(event, context):
    return {"ifaces": sorted(name for _, name in socket.if_nameindex())}


def op_rapi_flood(event, context):
    """Opens many connections to the Runtime API and holds them; reports how many the daemon
    kept open."""
    socks, refused = [], 0
    for _ in range(event.get("n", 300)):
        try:
            socks.append(socket.create_connection(("127.0.0.1", 9001), timeout=2))
        except OSError:
            refused += 1
    time.sleep(event.get("hold", 1))
    still_open = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) != b"":
                still_open += 1
        except BlockingIOError:
            still_open += 1
        except OSError:
            pass
        s.close()
    return {"connected": len(socks), "refused": refused, "still_open": still_open}


def op_status(event, context):
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return {"status": fields, "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
            "groups": os.getgroups(), "hostname": socket.gethostname()}


# x86_64 syscall numbers
SYSCALLS = {"ptrace": (101, (16, 1, 0, 0)),  # PTRACE_ATTACH to pid 1
            "mount": (165, None), "unshare": (272, (0x20000,)),  # CLONE_NEWNS
            "setns": (308, None), "bpf": (321, (0, 0, 0)), "chroot": (161, None),
            "umount2": (166, None), "pivot_root": (155, None), "keyctl": (250, (0,)),
            "userfaultfd": (323, (0,)), "perf_event_open": (298, None),
            "io_uring_setup": (425, (1, 0)), "init_module": (175, None),
            "kexec_load": (246, (0, 0, 0, 0)), "unshare_user": (272, (0x10000000,)),
            "unshare_net": (272, (0x40000000,)), "clone_newpid": (56, (0x20000000 | 17, 0, 0, 0, 0)),
            "setuid0": (105, (0,)), "sethostname": (170, None)}


def op_syscalls(event, context):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    out = {}
    for name in event["names"]:
        nr, args = SYSCALLS[name]
        if args is None:
            if name == "mount":
                args = (ctypes.c_char_p(b"none"), ctypes.c_char_p(b"/tmp"),
                        ctypes.c_char_p(b"tmpfs"), 0, 0)
            elif name == "setns":
                fd = os.open("/proc/self/ns/net", os.O_RDONLY)
                args = (fd, 0)
            elif name in ("chroot", "umount2"):
                args = (ctypes.c_char_p(b"/tmp"), 0)
            elif name == "pivot_root":
                args = (ctypes.c_char_p(b"/tmp"), ctypes.c_char_p(b"/tmp"))
            elif name == "perf_event_open":
                attr = ctypes.create_string_buffer(128)
                args = (attr, 0, -1, -1, 0)
            elif name == "init_module":
                args = (ctypes.c_char_p(b"\0" * 64), 64, ctypes.c_char_p(b""))
            elif name == "sethostname":
                args = (ctypes.c_char_p(b"evil"), 4)
        ctypes.set_errno(0)
        rc = libc.syscall(ctypes.c_long(nr), *args)
        e = ctypes.get_errno()
        out[name] = {"rc": rc, "errno": errno.errorcode.get(e, str(e)) if rc < 0 else None}
        if rc >= 0 and name == "clone_newpid":
            os._exit(0) if rc == 0 else os.waitpid(rc, 0)
    return out


def _procs():
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("latin-1").strip()
        except OSError as e:
            cmd = "<%s>" % _errname(e)
        out.append([int(p), cmd])
    return sorted(out)


def op_signal(event, context):
    out = {}
    for pid in event["pids"]:
        try:
            os.kill(pid, event.get("sig", 0))
            out[str(pid)] = {"ok": True}
        except OSError as e:
            out[str(pid)] = {"ok": False, "errno": _errname(e)}
    return out


def op_procs(event, context):
    return {"procs": _procs(), "self": os.getpid()}


def op_forkbomb(event, context):
    """Forks a classic bomb (every process forks for ever), counts what the pids limit let
    through, then kills the lot and answers."""
    bomb = os.fork()
    if bomb == 0:
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.005)
    time.sleep(event.get("seconds", 2))
    peak = len([p for p in os.listdir("/proc") if p.isdigit()])
    errors = 0
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            os.kill(-1, signal.SIGKILL)  # everything we may signal in the pid namespace
        except OSError:
            errors += 1
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        left = [p for p in os.listdir("/proc") if p.isdigit()]
        if len(left) <= 2:  # init and us
            break
        time.sleep(0.05)
    return {"peak": peak, "left": len([p for p in os.listdir("/proc") if p.isdigit()])}


def op_filltmp(event, context):
    """Writes /tmp/fill until the kernel says no; answers bytes written and the errno."""
    chunk = b"z" * (1 << 20)
    written = 0
    err = None
    try:
        with open("/tmp/fill", "wb") as f:
            for _ in range(event.get("mb", 1024)):
                f.write(chunk)
                f.flush()
                written += len(chunk)
    except OSError as e:
        err = _errname(e)
    st = os.statvfs("/tmp")
    if event.get("cleanup", True):
        os.unlink("/tmp/fill")
    return {"written_mb": written >> 20, "errno": err, "size_mb": st.f_blocks * st.f_frsize >> 20}


def op_tmp_put(event, context):
    with open("/tmp/" + event["name"], "w") as f:
        f.write(event.get("text", "secret"))
    time.sleep(event.get("pause", 0))  # after writing: holds the instance
    return {"tmp": sorted(os.listdir("/tmp"))}


def op_tmp_list(event, context):
    time.sleep(event.get("pause", 0))  # before listing
    return {"tmp": sorted(os.listdir("/tmp"))}


def op_zygote(event, context):
    """What tells instances of one zygote apart (or must): namespaces, ids, random state, module
    state left by other invocations; and whether this instance came from the zygote (only the
    zygote runs with -s, see runtimes/python/zygote.py)."""
    import json
    import random

    out = {"no_user_site": sys.flags.no_user_site, "pid": os.getpid(), "uid": os.getuid(),
           "ns": {n: os.readlink("/proc/self/ns/" + n) for n in ("pid", "mnt", "net", "ipc",
                                                                  "uts", "cgroup")},
           "random": [random.random() for _ in range(4)], "urandom": os.urandom(16).hex(),
           "uuid4": [str(uuid.uuid4()) for _ in range(3)],
           "tainted": getattr(json, "_probe_taint", None),
           "env_taint": os.environ.get("PROBE_TAINT"),
           "fds": sorted(int(f) for f in os.listdir("/proc/self/fd")),
           "stdio": [os.readlink("/proc/self/fd/%d" % i)[:6] for i in range(3)],
           "cmdline": open("/proc/self/cmdline", "rb").read().rstrip(b"\0").split(b"\0"),
           "exe": os.readlink("/proc/self/exe"), "executable": sys.executable, "argv": sys.argv,
           "main_file": getattr(sys.modules["__main__"], "__file__", None)}
    out["cmdline"] = [c.decode() for c in out["cmdline"]]
    if event.get("taint"):
        json._probe_taint = event["taint"]  # a module the zygote preloaded
        os.environ["PROBE_TAINT"] = event["taint"]
    time.sleep(event.get("pause", 0))
    return out


def handler(event, context):
    global CALLS
    CALLS += 1
    if not isinstance(event, dict):
        return {"instance": INSTANCE, "calls": CALLS, "event": event}
    op = event.get("op", "whoami")
    if op == "echo":
        return op_echo(event, context)
    if op == "big":
        return op_big(event, context)
    result = {"instance": INSTANCE, "calls": CALLS,
              "log_stream": context.log_stream_name}
    if op != "whoami":
        result["result"] = globals()["op_" + op](event, context)
    return result
