"""
test_invoke.py - end-to-end tests of synchronous Invoke (src/api_invoke.c, src/invoke.c,
src/runtime_api.c, src/instance.c and the runtimes) against a real `nimbus serve`, through boto3
and the aws CLI.

Covers: Python, Node, C (runtimes/c) and shell-`bootstrap` functions, and the four examples/,
answering exactly what their handler returned; the request id (x-amzn-RequestId == the context's
aws_request_id), X-Amz-Executed-Version, the context object, ClientContext, Lambda's environment
variables (LAMBDA.md §1.9) and the user's, the remaining time; LogType=Tail with START/END/REPORT in
Lambda's exact format, Init Duration on cold starts only, and only the last 4 KB; function errors
(handler exception, import error, missing handler, no bootstrap, exit, SIGKILL, timeout, init
longer than the timeout, out of memory) each with Lambda's error document and a working next
invocation; payload limits both ways (6 MB), malformed requests (bad JSON, unknown function, bad
invocation or log type, bad client context, unknown qualifier) as AWS-shaped errors; DryRun; Event
(accepted with 202; the rest in test_async.py).
"""
import base64
import http.client
import json
import os
import re
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import BUILD, FUNCS, ROLE, ROOT, zip_dir, zip_files
from helpers import (UUID, c_probe_zip, call, deploy_probe, metrics, py_probe_zip, report_re,
                     uniq, wait_for)

REGION, ACCOUNT = "us-east-1", "000000000000"
LIMIT = 6291456  # Invoke's request limit, bytes
STREAM_RE = re.compile(r"^\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}$")


def arn(name):
    return "arn:aws:lambda:%s:%s:function:%s" % (REGION, ACCOUNT, name)


def create(lam, name, code, runtime, handler, **kw):
    kw.setdefault("Timeout", 30)
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                        Code={"ZipFile": code}, **kw)
    return name


def client_error(fn):
    with pytest.raises(ClientError) as ei:
        fn()
    e = ei.value.response
    return e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Code"], e["Error"]["Message"]


def log_lines(log):
    assert log.endswith("\n"), repr(log)
    return log[:-1].split("\n")


def assert_invocation_log(log, rid, init=None, memory=128):
    """The Tail of one invocation: START first (possibly after the lines of a failed init),
    END and REPORT last, in Lambda's format."""
    lines = log_lines(log)
    start = "START RequestId: %s Version: $LATEST" % rid
    assert start in lines, lines
    assert lines[-2] == "END RequestId: %s" % rid, lines
    m = report_re(memory, init=init).match(lines[-1])
    assert m and m.group(1) == rid, lines[-1]
    return lines[lines.index(start) + 1:-2]


@pytest.fixture(scope="module")
def py(lam):
    return deploy_probe(lam, uniq("inv-py"), Environment={"Variables": {
        "USER_VAR": "hello", "WITH_SPACES": "a b=c"}})["FunctionName"]


@pytest.fixture(scope="module")
def node(lam):
    return create(lam, uniq("inv-node"), zip_dir(os.path.join(FUNCS, "node_probe")),
                  "nodejs20.x", "index.handler",
                  Environment={"Variables": {"USER_VAR": "from-node"}})


@pytest.fixture(scope="module", params=["glibc", "musl"])
def cfn(lam, request):
    """The C probe, once built against glibc and once statically against musl (the C runtime
    library is built for both; runtimes/README.md)."""
    return create(lam, uniq("inv-c-" + request.param), c_probe_zip(request.param),
                  "provided.al2023", "probe.handler", MemorySize=256)


@pytest.fixture(scope="module")
def sh(lam):
    return create(lam, uniq("inv-sh"), zip_dir(os.path.join(FUNCS, "echo_sh")), "provided.al2",
                  "echo.handler")


# ---- results -------------------------------------------------------------------------------


def test_python_returns_handler_result(lam, py):
    data = {"nested": {"list": [1, 2.5, None, True, "\u00fc"]}, "s": "x" * 1000}
    r = lam.invoke(FunctionName=py, Payload=json.dumps({"op": "echo", "data": data}))
    raw = r["Payload"].read()
    assert r["StatusCode"] == 200 and "FunctionError" not in r
    assert raw == json.dumps(data).encode()  # what the runtime's json.dumps made of the result
    assert r["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/json"


def test_python_non_object_events_and_results(lam, py):
    for event in ([1, 2, 3], "just a string", 42, None):
        _, body, _ = call(lam, py, json.dumps(event))
        assert body["event"] == event
    r = lam.invoke(FunctionName=py, Payload=json.dumps({"op": "echo", "data": None}))
    assert r["Payload"].read() == b"null"  # a handler returning None answers JSON null


def test_node_returns_handler_result_and_context(lam, node):
    event = {"a": [1, 2, {"b": None}], "c": "d"}
    r, body, _ = call(lam, node, event)
    assert r["StatusCode"] == 200 and "FunctionError" not in r, body
    rid = r["ResponseMetadata"]["RequestId"]
    assert body["event"] == event
    assert body["awsRequestId"] == rid
    assert body["functionName"] == node
    assert body["functionVersion"] == "$LATEST"
    assert str(body["memoryLimitInMB"]) == "128"
    assert body["invokedFunctionArn"] == arn(node)
    assert body["logGroupName"] == "/aws/lambda/" + node
    assert 25000 < body["remaining"] <= 30000
    assert body["env"] == {"AWS_LAMBDA_FUNCTION_NAME": node, "AWS_EXECUTION_ENV":
                           "AWS_Lambda_nodejs20.x", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
                           "_HANDLER": "index.handler", "USER_VAR": "from-node"}
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-amz-executed-version"] == "$LATEST"


def test_c_returns_handler_result_verbatim(lam, cfn):
    payload = b'{"k": [1, 2,   3],\n "s": "t"}'
    r = lam.invoke(FunctionName=cfn, Payload=payload)
    raw = r["Payload"].read()
    rid = r["ResponseMetadata"]["RequestId"]
    assert r["StatusCode"] == 200 and "FunctionError" not in r, raw
    body = json.loads(raw)
    assert 25000 < body["remaining_ms"] <= 30000
    expected = ('{"request_id":"%s","invoked_arn":"%s","remaining_ms":%d,"client_context":null,'
                '"function_name":"%s","memory":"256","handler":"probe.handler",'
                '"execution_env":"<unset>","event":%s}' % (
                    rid, arn(cfn), body["remaining_ms"], cfn, payload.decode()))
    assert raw == expected.encode()


def test_shell_bootstrap_returns_event_verbatim(lam, sh):
    payload = b'{"x": "y",  "n": [1,2]}'
    r = lam.invoke(FunctionName=sh, Payload=payload)
    assert r["StatusCode"] == 200 and "FunctionError" not in r
    assert r["Payload"].read() == payload


@pytest.mark.parametrize("example", ["python", "node", "c", "shell"])
def test_examples(lam, example):
    name = uniq("ex-" + example)
    if example == "python":
        create(lam, name, zip_dir(os.path.join(ROOT, "examples/python/hello")), "python3.11",
               "lambda_function.handler")
    elif example == "node":
        create(lam, name, zip_dir(os.path.join(ROOT, "examples/node/hello")), "nodejs20.x",
               "index.handler")
    elif example == "c":
        with open(os.path.join(BUILD, "examples/c/hello/bootstrap"), "rb") as f:
            create(lam, name, zip_files({"bootstrap": (f.read(), 0o755)}), "provided.al2023",
                   "hello")
    else:
        create(lam, name, zip_dir(os.path.join(ROOT, "examples/shell/hello")), "provided.al2023",
               "function.handler")
    r, body, log = call(lam, name, {"name": "nimbus"}, tail=True)
    assert r["StatusCode"] == 200 and "FunctionError" not in r, (body, log)
    rid = r["ResponseMetadata"]["RequestId"]
    if example == "c":
        assert body["message"] == "hello from C" and body["request_id"] == rid
        assert body["event"] == {"name": "nimbus"}
    elif example == "shell":
        assert body == {"message": "Hello, nimbus!", "function": name}
    else:
        assert body["message"] == "Hello, nimbus!"
    r, body, _ = call(lam, name, {"name": "x", "fail": True})
    assert r.get("FunctionError") == "Unhandled", body
    assert body["errorType"] in ("ValueError", "Error", "HelloError", "HandlerError")


# ---- context, headers, environment ---------------------------------------------------------


def test_request_id_version_and_context(lam, py):
    r, body, _ = call(lam, py, {"op": "context"})
    ctx = body["result"]
    rid = r["ResponseMetadata"]["RequestId"]
    assert UUID.match(rid)
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"] == rid
    assert ctx["aws_request_id"] == rid
    assert r["ExecutedVersion"] == "$LATEST"
    assert ctx["function_name"] == py
    assert ctx["function_version"] == "$LATEST"
    assert ctx["memory_limit_in_mb"] == "128"
    assert ctx["invoked_function_arn"] == arn(py)
    assert ctx["log_group_name"] == "/aws/lambda/" + py
    assert STREAM_RE.match(ctx["log_stream_name"]), ctx["log_stream_name"]
    assert ctx["cwd"] == "/var/task"
    assert ctx["client_context"] is None
    assert re.match(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=[01]$",
                    ctx["trace_env"]), ctx["trace_env"]
    # every invocation has its own id
    r2, body2, _ = call(lam, py, {"op": "context", "pause": 0})
    assert body2["result"]["aws_request_id"] == r2["ResponseMetadata"]["RequestId"] != rid


def test_trace_header_is_passed_through(lam, py):
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    lam.meta.events.register_first(
        "before-sign.lambda.Invoke", lambda request, **kw: request.headers.__setitem__(
            "X-Amzn-Trace-Id", trace), unique_id="trace-header")
    try:
        _, body, _ = call(lam, py, {"op": "context", "pause": 0})
    finally:
        lam.meta.events.unregister("before-sign.lambda.Invoke", unique_id="trace-header")
    assert body["result"]["trace_env"] == trace


def test_remaining_time_decreases_within_timeout(lam, py):
    _, body, _ = call(lam, py, {"op": "context", "pause": 0.25})
    r1, r2 = body["result"]["remaining"]
    assert 25000 < r1 <= 30000
    assert 200 <= r1 - r2 <= 1500, (r1, r2)


def test_client_context_reaches_python(lam, py):
    cc = {"custom": {"k": "v", "n": 1}, "env": {"platform": "nimbus"},
          "client": {"installation_id": "inst-1", "app_title": "t"}}
    _, body, _ = call(lam, py, {"op": "context", "pause": 0},
                      ClientContext=base64.b64encode(json.dumps(cc).encode()).decode())
    got = body["result"]["client_context"]
    assert got == {"custom": cc["custom"], "env": cc["env"], "client_installation_id": "inst-1"}


def test_client_context_reaches_node_and_c(lam, node, cfn):
    cc = {"custom": {"who": "caller"}, "env": {"e": "1"}}
    b64 = base64.b64encode(json.dumps(cc).encode()).decode()
    _, body, _ = call(lam, node, {}, ClientContext=b64)
    assert body["clientContext"]["custom"] == cc["custom"]
    assert body["clientContext"]["env"] == cc["env"]
    _, body, _ = call(lam, cfn, {}, ClientContext=b64)
    assert body["client_context"] == cc


def test_bad_client_context_is_400(lam, py):
    for bad in ("not base64!!", base64.b64encode(b"[1,2]").decode(),
                base64.b64encode(b"{broken").decode()):
        status, code, _ = client_error(lambda: lam.invoke(FunctionName=py, Payload=b"{}",
                                                          ClientContext=bad))
        assert (status, code) == (400, "InvalidParameterValueException"), bad


def test_environment_variables(lam, py):
    _, body, _ = call(lam, py, {"op": "env"})
    env = body["result"]
    expected = {
        "AWS_LAMBDA_FUNCTION_NAME": py,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/" + py,
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "NIMBUS_RUNTIME_API_SOCKET": "@nimbus-runtime-api",
        "_HANDLER": "probe.handler",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "USER_VAR": "hello",
        "WITH_SPACES": "a b=c",
    }
    for k, v in expected.items():
        assert env.get(k) == v, (k, env.get(k))
    assert STREAM_RE.match(env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert "/usr/bin" in env["PATH"].split(":")
    raw_keys = [e.split("=", 1)[0] for e in env.pop("__raw__")]
    assert len(raw_keys) == len(set(raw_keys)), sorted(raw_keys)  # each variable once
    # nothing of the daemon's own environment leaks into a function
    leaked = {k for k, v in os.environ.items() if env.get(k) == v and not k.startswith("AWS_")
              and k not in ("LANG", "PATH", "TZ", "LD_LIBRARY_PATH")}
    assert not leaked, leaked


def test_user_env_overrides_unreserved_defaults(lam):
    mine = {"PATH": "/opt/custom/bin:/usr/bin:/bin", "TZ": "Europe/Paris", "LANG": "C.UTF-8",
            "LD_LIBRARY_PATH": "/var/task/lib", "GREETING": "gr\u00fc\u00dfe"}
    name = deploy_probe(lam, uniq("inv-envov"), Environment={"Variables": mine})["FunctionName"]
    _, body, _ = call(lam, name, {"op": "env"})
    env = body["result"]
    raw = env.pop("__raw__")
    for k, v in mine.items():
        assert env[k] == v, (k, env[k])
        assert [e for e in raw if e.startswith(k + "=")] == ["%s=%s" % (k, v)], (k, raw)


def test_reserved_env_keys_are_refused(lam):
    for key in ("AWS_LAMBDA_RUNTIME_API", "NIMBUS_RUNTIME_API_SOCKET", "_HANDLER",
                "LAMBDA_TASK_ROOT"):
        status, code, msg = client_error(lambda: deploy_probe(
            lam, uniq("inv-resv"), Environment={"Variables": {key: "x"}}))
        assert (status, code) == (400, "InvalidParameterValueException") and key in msg


def test_custom_runtime_has_no_execution_env(lam, cfn):
    _, body, _ = call(lam, cfn, {})
    assert body["execution_env"] == "<unset>"
    assert body["function_name"] == cfn and body["memory"] == "256"


# ---- logs ----------------------------------------------------------------------------------


def test_log_tail_format_cold_then_warm(lam):
    name = deploy_probe(lam, uniq("inv-log"))["FunctionName"]
    r, body, log = call(lam, name, {"op": "log", "lines": 2}, tail=True)
    rid = r["ResponseMetadata"]["RequestId"]
    lines = log_lines(log)
    assert lines[0] == "START RequestId: %s Version: $LATEST" % rid
    assert lines[1:3] == ["probe log line 00000 " + "y" * 50, "probe log line 00001 " + "y" * 50]
    assert lines[-2] == "END RequestId: %s" % rid
    m = report_re(128, init=True).match(lines[-1])
    assert m and m.group(1) == rid, lines[-1]
    assert len(lines) == 5, lines
    r, body2, log = call(lam, name, {"op": "log", "lines": 1}, tail=True)
    assert body2["instance"] == body["instance"]  # warm: same instance, so no Init Duration
    lines = log_lines(log)
    m = report_re(128, init=False).match(lines[-1])
    assert m and m.group(1) == r["ResponseMetadata"]["RequestId"], lines[-1]
    # billed = ceil(duration), at least 1 ms
    d = float(re.search(r"\tDuration: ([\d.]+) ms", lines[-1]).group(1))
    b = int(re.search(r"Billed Duration: (\d+) ms", lines[-1]).group(1))
    assert b == max(1, int(-(-d // 1))), lines[-1]


def test_log_tail_is_last_4kb(lam, py):
    r, _, log = call(lam, py, {"op": "log", "lines": 100, "width": 100}, tail=True)
    raw = base64.b64decode(r["LogResult"])
    assert 3500 < len(raw) <= 4096, len(raw)
    lines = log_lines(log)
    assert report_re(128).match(lines[-1]), lines[-1]
    assert lines[-3] == "probe log line 00099 " + "y" * 100
    assert "probe log line 00000" not in log and "START RequestId" not in log


def test_stdout_and_stderr_both_reach_the_log(lam, py):
    r, _, log = call(lam, py, {"op": "log", "lines": 2, "stderr": 2}, tail=True)
    own = assert_invocation_log(log, r["ResponseMetadata"]["RequestId"])
    assert sorted(own) == sorted(["probe log line 00000 " + "y" * 50,
                                  "probe log line 00001 " + "y" * 50,
                                  "probe stderr line 00000", "probe stderr line 00001"]), own


def test_function_log_file(daemon, lam):
    """Item 8: the per-function log (what `nimbus logs` reads) has the invocation's lines
    between START and END/REPORT, on the instance's log stream."""
    name = deploy_probe(lam, uniq("inv-logfile"))["FunctionName"]
    r, body, _ = call(lam, name, {"op": "log", "lines": 3})
    rid = r["ResponseMetadata"]["RequestId"]

    def events():
        st, _, data = daemon.request("GET", "/nimbus/v1/functions/%s/logs" % name, timeout=10)
        assert st == 200, data
        evs = json.loads(data)["events"]
        return evs if any(e["message"].startswith("REPORT RequestId: " + rid) for e in evs) \
            else None

    evs = wait_for(events, 5)
    assert evs, "no REPORT line in the function's log"
    msgs = [e["message"] for e in evs]
    i = msgs.index("START RequestId: %s Version: $LATEST" % rid)
    assert msgs[i + 1:i + 4] == ["probe log line %05d %s" % (n, "y" * 50) for n in range(3)]
    assert msgs[i + 4] == "END RequestId: " + rid
    assert report_re(128, init=True).match(msgs[i + 5]), msgs[i + 5]
    assert {e["logStreamName"] for e in evs[i:i + 6]} == {body["log_stream"]}
    ts = [e["timestamp"] for e in evs[i:i + 6]]
    assert ts == sorted(ts) and abs(ts[0] / 1000 - time.time()) < 60


def test_no_log_result_without_tail(lam, py):
    r, _, _ = call(lam, py, {"op": "whoami"})
    assert "LogResult" not in r
    r, _, _ = call(lam, py, {"op": "whoami"}, LogType="None")
    assert "LogResult" not in r


def test_error_record_in_tail(lam, py):
    r, body, log = call(lam, py, {"op": "raise"}, tail=True)
    assert "[ERROR] ValueError: probe was asked to raise" in log
    assert report_re(128).match(log_lines(log)[-1])


# ---- function errors -----------------------------------------------------------------------


def test_handler_exception(lam, py):
    _, before, _ = call(lam, py, {"op": "whoami"})
    r, body, _ = call(lam, py, {"op": "raise"})
    assert r["StatusCode"] == 200
    assert r["FunctionError"] == "Unhandled"
    assert r["ExecutedVersion"] == "$LATEST"
    assert set(body) == {"errorMessage", "errorType", "stackTrace"}, body
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "probe was asked to raise"
    assert isinstance(body["stackTrace"], list) and body["stackTrace"]
    assert all(isinstance(s, str) for s in body["stackTrace"])
    assert any("op_raise" in s for s in body["stackTrace"])
    # the instance survives an error its handler raised
    _, after, _ = call(lam, py, {"op": "whoami"})
    assert after["instance"] == before["instance"] and after["calls"] == before["calls"] + 2


def test_node_and_c_handler_errors(lam, node, cfn):
    r, body, _ = call(lam, node, {"fail": True})
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "TypeError"
    assert body["errorMessage"] == "node probe was asked to fail"
    assert isinstance(body["trace"], list) and body["trace"][0].startswith("TypeError")
    r, body, _ = call(lam, cfn, {"fail": True})
    assert r["FunctionError"] == "Unhandled"
    assert body == {"errorType": "ProbeError", "errorMessage": "c probe was asked to fail"} or \
        (body["errorType"], body["errorMessage"]) == ("ProbeError", "c probe was asked to fail")


def test_import_error(lam):
    name = create(lam, uniq("inv-imp"), zip_dir(os.path.join(FUNCS, "py_import_error")),
                  "python3.11", "app.handler")
    for _ in range(2):  # every cold start fails the same way
        r, body, log = call(lam, name, {}, tail=True)
        assert r["FunctionError"] == "Unhandled"
        assert body["errorType"] == "Runtime.ImportModuleError"
        assert body["errorMessage"] == ("Unable to import module 'app': No module named "
                                        "'nimbus_no_such_module'")
        assert body["stackTrace"] == []
        assert "[ERROR] Runtime.ImportModuleError" in log
        assert_invocation_log(log, r["ResponseMetadata"]["RequestId"], init=True)


def test_handler_not_found(lam):
    name = create(lam, uniq("inv-nohandler"), py_probe_zip(), "python3.11", "probe.nothere")
    r, body, _ = call(lam, name, {})
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.HandlerNotFound"
    assert body["errorMessage"] == "Handler 'nothere' missing on module 'probe'"


def test_node_handler_not_found(lam):
    name = create(lam, uniq("inv-nodenoh"), zip_dir(os.path.join(FUNCS, "node_probe")),
                  "nodejs20.x", "index.nothere")
    r, body, _ = call(lam, name, {})
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.HandlerNotFound", body


@pytest.mark.parametrize("src,fname,error_type,message", [
    ("require('nimbus-no-such');\nexports.handler = async () => 1;\n", "index.js",
     "Runtime.ImportModuleError", "Error: Cannot find module 'nimbus-no-such'"),
    ("exports.handler = async () => {;\n", "index.js", "Runtime.UserCodeSyntaxError",
     "SyntaxError: Unexpected end of input"),
    ("exports.handler = (e, c, cb) => { cb(new RangeError('bad')); };\n", "index.js",
     "RangeError", "bad"),
    ("exports.handler = async () => { process.exit(3); };\n", "index.js", "Runtime.ExitError",
     "Runtime exited with error: exit status 3"),
], ids=["import", "syntax", "callback-error", "exit"])
def test_node_failures(lam, src, fname, error_type, message):
    name = create(lam, uniq("inv-nodefail"), zip_files({fname: (src, 0o644)}), "nodejs20.x",
                  "index.handler")
    r, body, log = call(lam, name, {}, tail=True)
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == error_type, body
    assert message in body["errorMessage"], body
    assert_invocation_log(log, r["ResponseMetadata"]["RequestId"])


def test_node_callback_and_esm_handlers(lam):
    cb = create(lam, uniq("inv-nodecb"), zip_files({"index.js": (
        "exports.handler = (e, c, cb) => { cb(null, {ok: e}); };\n", 0o644)}), "nodejs20.x",
        "index.handler")
    _, body, _ = call(lam, cb, {"x": 1})
    assert body == {"ok": {"x": 1}}
    esm = create(lam, uniq("inv-nodeesm"), zip_files({"app/index.mjs": (
        "export const handler = async (e) => ({esm: e});\n", 0o644)}), "nodejs18.x",
        "app/index.handler")
    _, body, _ = call(lam, esm, [1, 2])
    assert body == {"esm": [1, 2]}


@pytest.mark.parametrize("files", [
    {"README": ("no bootstrap here\n", 0o644)},
    {"bootstrap": ("#!/bin/sh\nexit 0\n", 0o644)},  # not executable
], ids=["missing", "not-executable"])
def test_provided_without_bootstrap(lam, files):
    name = create(lam, uniq("inv-noboot"), zip_files(files), "provided.al2023", "x")
    r, body, log = call(lam, name, {}, tail=True)
    rid = r["ResponseMetadata"]["RequestId"]
    assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.InvalidEntrypoint"
    assert body["errorMessage"] == ("RequestId: %s Error: Couldn't find valid bootstrap(s): "
                                    "[/var/task/bootstrap /opt/bootstrap]" % rid)
    assert_invocation_log(log, rid)


def test_exit_in_handler_new_instance(lam):
    name = deploy_probe(lam, uniq("inv-exit"))["FunctionName"]
    _, first, _ = call(lam, name, {"op": "whoami"})
    r, body, _ = call(lam, name, {"op": "exit", "code": 3})
    assert body["errorType"] == "Runtime.ExitError" and body["errorMessage"].endswith(
        "Runtime exited with error: exit status 3")
    r, after, log = call(lam, name, {"op": "whoami"}, tail=True)
    assert "FunctionError" not in r
    assert after["instance"] != first["instance"] and after["calls"] == 1
    assert report_re(128, init=True).match(log_lines(log)[-1])


def test_kill9_in_handler(lam):
    name = deploy_probe(lam, uniq("inv-kill"))["FunctionName"]
    r, body, _ = call(lam, name, {"op": "kill9"})
    rid = r["ResponseMetadata"]["RequestId"]
    assert r["FunctionError"] == "Unhandled"
    assert body == {"errorType": "Runtime.ExitError",
                    "errorMessage": "RequestId: %s Error: Runtime exited with error: signal: "
                                    "killed" % rid}
    r, after, _ = call(lam, name, {"op": "whoami"})
    assert "FunctionError" not in r and after["calls"] == 1


@pytest.mark.parametrize("tcp", [False, True])
def test_c_runtime_transport(lam, tcp):
    """The C runtime talks to the Runtime API on the instance's abstract Unix socket
    (NIMBUS_RUNTIME_API_SOCKET); without that variable (the probe removes it when PROBE_TCP is
    set) it falls back to TCP on AWS_LAMBDA_RUNTIME_API, and works the same."""
    env = {"Variables": {"PROBE_TCP": "1"}} if tcp else {"Variables": {}}
    name = create(lam, uniq("inv-ctr"), c_probe_zip(), "provided.al2023", "probe.handler",
                  Environment=env)
    for i in range(3):  # a cold start, then the same connection kept alive
        r, body, _ = call(lam, name, {"transport": i})
        assert "FunctionError" not in r, body
        assert body == {"transport": "tcp" if tcp else "unix",
                        "socket_env": "<unset>" if tcp else "@nimbus-runtime-api"}, body
    r, body, _ = call(lam, name, {"fail": True})
    assert r["FunctionError"] == "Unhandled" and body["errorType"] == "ProbeError"
    r, body, _ = call(lam, name, {"ok": 2})
    assert "FunctionError" not in r and body["event"] == {"ok": 2}


def test_c_runtime_crash(lam, cfn):
    r, body, _ = call(lam, cfn, {"crash": True})
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"].endswith("Runtime exited with error: exit status 3")
    r, body, _ = call(lam, cfn, {"ok": 1})
    assert "FunctionError" not in r and body["event"] == {"ok": 1}


def test_c_runtime_pipelined_exchanges(lam):
    """The C runtime sends each outcome and the following GET next in one write, and the Runtime
    API writes the 202 together with the next invocation: successes, errors and an oversized
    response (413 to the POST) follow each other on one warm instance, every answer reaches its
    caller, and what the handler printed is logged inside its own invocation, before END."""
    name = create(lam, uniq("inv-cpipe"), c_probe_zip(), "provided.al2023", "probe.handler",
                  MemorySize=256)
    for i in range(12):
        event = {"fail": True, "i": i} if i % 3 == 1 else {"i": i}
        r, body, log = call(lam, name, event, tail=True)
        rid = r["ResponseMetadata"]["RequestId"]
        own = assert_invocation_log(log, rid, init=(i == 0), memory=256)
        # what the handler printed is read before END, also on the cold start (the runtime's
        # first `next` waits for the spawner to hand over the instance's output pipes)
        assert own[0] == "c probe: request %s" % rid, own
        if i % 3 == 1:
            assert own[1:] == ['[ERROR] {"errorMessage":"c probe was asked to fail",'
                               '"errorType":"ProbeError","stackTrace":[]}'], own
            assert r["FunctionError"] == "Unhandled" and body["errorType"] == "ProbeError"
        else:
            assert own[1:] == [], own
            assert "FunctionError" not in r and body["event"] == event and body["request_id"] == rid
    # the probe echoes the event, so this response is over 6 MB: the POST is refused with 413
    big = b'{"pad":"' + b"a" * 6291300 + b'"}'
    r, body, _ = call(lam, name, big)
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Function.ResponseSizeTooLarge", body
    for i in range(3):  # and the same instance goes on (no Init Duration: no cold start)
        r, body, log = call(lam, name, {"after": i}, tail=True)
        assert "FunctionError" not in r and body["event"] == {"after": i}
        assert_invocation_log(log, r["ResponseMetadata"]["RequestId"], init=False, memory=256)


@pytest.mark.parametrize("runtime", ["python3.11", "nodejs20.x"])
def test_back_to_back_invocations_stay_warm(daemon, lam, runtime):
    """The Python and Node runtimes send each outcome (response or error) and the following GET
    next in one write, like the C runtime, so the instance is waiting for work by the time its
    caller has the answer. Invocations sent the moment the previous one returned (requests signed
    beforehand, one keep-alive connection) all run on the instance the first one started: no Init
    Duration after the first, one cold start in /metrics."""
    if runtime.startswith("python"):
        name = deploy_probe(lam, uniq("inv-b2b-py"))["FunctionName"]
        ok, fail = {"op": "whoami"}, {"op": "raise"}
    else:
        name = create(lam, uniq("inv-b2b-node"), zip_dir(os.path.join(FUNCS, "node_probe")),
                      runtime, "index.handler")
        ok, fail = {"n": 1}, {"fail": True}
    path = "/2015-03-31/functions/%s/invocations" % name
    signed = []
    for event in (ok, fail):
        body = json.dumps(event).encode()
        signed.append((body, daemon.sign("POST", path, body, {"X-Amz-Log-Type": "Tail"})))
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
    instances = set()
    try:
        for i in range(30):
            failing = i % 3 == 2
            body, headers = signed[failing]
            conn.request("POST", path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            assert r.status == 200, data
            assert r.getheader("X-Amz-Function-Error") == ("Unhandled" if failing else None)
            log = base64.b64decode(r.getheader("X-Amz-Log-Result")).decode()
            assert report_re(128, init=(i == 0)).match(log_lines(log)[-1]), (i, log)
            if not failing:
                instances.add(json.loads(data)["instance"])
    finally:
        conn.close()
    assert len(instances) == 1, instances
    cold = [v for k, v in metrics(daemon).items()
            if k.startswith("nimbus_function_cold_starts_total{") and '"%s"' % name in k]
    assert cold == [1.0], cold


def test_timeout(lam):
    name = deploy_probe(lam, uniq("inv-to"), Timeout=1)["FunctionName"]
    t0 = time.monotonic()
    r, body, log = call(lam, name, {"op": "sleep", "seconds": 5}, tail=True)
    elapsed = time.monotonic() - t0
    rid = r["ResponseMetadata"]["RequestId"]
    assert 0.9 <= elapsed < 2.0, elapsed
    assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
    assert body == {"errorType": "Sandbox.Timedout",
                    "errorMessage": "RequestId: %s Error: Task timed out after 1.00 seconds" % rid}
    lines = log_lines(log)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z %s Task timed out after \d+\.\d\d "
                    r"seconds$" % rid, lines[-3]), lines
    assert lines[-2] == "END RequestId: %s" % rid
    m = report_re(128).match(lines[-1])
    assert m, lines[-1]
    assert float(re.search(r"\tDuration: ([\d.]+) ms", lines[-1]).group(1)) <= 1000.0
    # the timed-out instance was stopped; the next invocation gets a fresh one
    r, body, log = call(lam, name, {"op": "whoami"}, tail=True)
    assert "FunctionError" not in r and body["calls"] == 1
    assert report_re(128, init=True).match(log_lines(log)[-1])


def test_init_longer_than_timeout(lam):
    name = create(lam, uniq("inv-slowinit"), zip_dir(os.path.join(FUNCS, "py_slow_init")),
                  "python3.11", "app.handler", Timeout=1,
                  Environment={"Variables": {"INIT_SLEEP": "30"}})
    t0 = time.monotonic()
    r, body, log = call(lam, name, {}, tail=True)
    elapsed = time.monotonic() - t0
    assert elapsed < 2.0, elapsed  # no request waits past its function's timeout
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
    own = assert_invocation_log(log, r["ResponseMetadata"]["RequestId"])
    assert len(own) == 1 and "Task timed out after" in own[0], own


def test_out_of_memory(lam):
    name = deploy_probe(lam, uniq("inv-oom"), MemorySize=128)["FunctionName"]
    r, body, log = call(lam, name, {"op": "alloc", "mb": 400}, tail=True)
    rid = r["ResponseMetadata"]["RequestId"]
    assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"].startswith(
        "RequestId: %s Error: Runtime exited with error: signal: killed" % rid), body
    report = log_lines(log)[-1]
    assert report_re(128).match(report), report
    used = int(re.search(r"Max Memory Used: (\d+) MB", report).group(1))
    assert 100 <= used <= 128, report
    r, body, _ = call(lam, name, {"op": "alloc", "mb": 10})
    assert "FunctionError" not in r and body["result"] == {"allocated_mb": 10}


# ---- the Runtime API as a custom runtime sees it ------------------------------------------


@pytest.fixture(scope="module")
def rapi(lam):
    return create(lam, uniq("inv-rapi"), zip_dir(os.path.join(FUNCS, "rapi_probe")),
                  "provided.al2023", "probe", Timeout=10)


def test_runtime_api_next_headers(lam, rapi):
    cc = base64.b64encode(b'{"custom":{"a":1}}').decode()
    t0 = int(time.time() * 1000)
    r, body, _ = call(lam, rapi, {"mode": "probe", "n": 1}, ClientContext=cc)
    rid = r["ResponseMetadata"]["RequestId"]
    h = body["headers"]
    assert body["event"] == {"mode": "probe", "n": 1}
    assert h["lambda-runtime-aws-request-id"] == rid
    assert h["lambda-runtime-invoked-function-arn"] == arn(rapi)
    assert h["content-type"] == "application/json"
    assert re.match(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=[01]$",
                    h["lambda-runtime-trace-id"])
    assert json.loads(h["lambda-runtime-client-context"]) == {"custom": {"a": 1}}
    deadline = int(h["lambda-runtime-deadline-ms"])
    assert t0 + 8000 < deadline <= int(time.time() * 1000) + 10000, (t0, deadline)


def test_runtime_api_state_rules(lam, rapi):
    """Out-of-order calls are refused with Lambda's error documents while the invocation is
    current, and after it was answered."""
    _, body, _ = call(lam, rapi, {"mode": "probe"})
    assert body["second_next"][0] == 403
    assert body["second_next"][2]["errorType"] == "InvalidStateTransition"
    for k in ("bad_id_response", "bad_id_error"):
        assert body[k][0] == 400 and body[k][2] == {"errorMessage": "Invalid request ID",
                                                    "errorType": "InvalidRequestID"}, body[k]
    assert body["init_error_after_init"][0] == 403
    assert body["init_error_after_init"][2]["errorType"] == "InvalidStateTransition"
    assert body["unknown_path"][0] == 404
    assert set(body["unknown_path"][2]) == {"errorMessage", "errorType"}
    # the same instance reports, in its next answer, what it was told after answering
    time.sleep(0.5)
    _, body2, _ = call(lam, rapi, {"mode": "probe"})
    prev = body2["previous"]
    assert prev is not None, "a second instance answered: the first was not back at `next`"
    assert prev["response_status"] == [202, {"status": "OK"}]
    for k in ("second_response", "error_after_response"):
        status, _, doc = prev[k]
        assert status in (400, 403) and doc["errorType"] in (
            "InvalidRequestID", "InvalidStateTransition"), (k, prev[k])


def test_runtime_api_error_documents(lam, rapi):
    doc = {"errorType": "My.Error", "errorMessage": "m", "stackTrace": ["a", "b"]}
    r, body, _ = call(lam, rapi, {"mode": "error", "body": json.dumps(doc)})
    assert r["FunctionError"] == "Unhandled" and body == doc
    # no usable body: the error is built from the header
    r, body, _ = call(lam, rapi, {"mode": "error", "body": None, "type": "Custom.NoBody"})
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Custom.NoBody" and "errorMessage" in body
    r, body, _ = call(lam, rapi, {"mode": "error", "body": "plain words", "type": "Custom.Text"})
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Custom.Text"


def test_runtime_response_passed_verbatim(lam, rapi):
    r, _, _ = call(lam, rapi, {"mode": "raw", "text": "not json at all \u00e9\n"})
    assert "FunctionError" not in r
    r = lam.invoke(FunctionName=rapi, Payload=json.dumps({"mode": "raw", "text": "x\u00e9\n"}))
    assert r["Payload"].read() == "x\u00e9\n".encode()


def test_custom_runtime_init_error(lam):
    name = create(lam, uniq("inv-initerr"), zip_dir(os.path.join(FUNCS, "rapi_probe")),
                  "provided.al2023", "init-error")
    for _ in range(2):
        r, body, log = call(lam, name, {}, tail=True)
        rid = r["ResponseMetadata"]["RequestId"]
        assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
        assert body == {"errorMessage": "init failed on purpose", "errorType": "Custom.InitBoom"}
        assert "rapi_probe: failing init" in log
        assert_invocation_log(log, rid, init=True)


def test_custom_runtime_exits_before_next(lam):
    name = create(lam, uniq("inv-early"), zip_dir(os.path.join(FUNCS, "rapi_probe")),
                  "provided.al2023", "exit-early")
    r, body, log = call(lam, name, {}, tail=True)
    rid = r["ResponseMetadata"]["RequestId"]
    assert r["FunctionError"] == "Unhandled"
    assert body == {"errorType": "Runtime.ExitError",
                    "errorMessage": "RequestId: %s Error: Runtime exited with error: exit "
                                    "status 2" % rid}
    assert_invocation_log(log, rid)


# ---- limits and malformed requests ---------------------------------------------------------


def test_request_payload_over_6mb_is_413(lam, py):
    status, code, msg = client_error(lambda: lam.invoke(FunctionName=py,
                                                        Payload=b" " * (LIMIT + 1)))
    assert (status, code) == (413, "RequestTooLargeException")
    assert "6291456" in msg


def test_request_payload_at_6mb_limit(lam, py):
    head, tail = b'{"op":"echo","data":"', b'"}'
    payload = head + b"a" * (LIMIT - len(head) - len(tail)) + tail
    assert len(payload) == LIMIT
    r = lam.invoke(FunctionName=py, Payload=payload)
    raw = r["Payload"].read()
    assert "FunctionError" not in r, raw[:300]
    assert raw == b'"' + payload[len(head):-len(tail)] + b'"'


def test_payload_round_trip_5_9mb(lam, py):
    data = os.urandom(int(5.9e6 * 3 / 4) // 3 * 3)
    text = base64.b64encode(data).decode()
    r = lam.invoke(FunctionName=py, Payload=json.dumps({"op": "echo", "data": text}))
    raw = r["Payload"].read()
    assert "FunctionError" not in r, raw[:300]
    assert base64.b64decode(json.loads(raw)) == data


def test_response_over_6mb(lam, py):
    r, body, log = call(lam, py, {"op": "big", "bytes": 6291556}, tail=True)
    assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Function.ResponseSizeTooLarge"
    assert body["errorMessage"] == ("Response payload size (6291558 bytes) exceeded maximum "
                                    "allowed payload size (6291556 bytes).")
    assert report_re(128).match(log_lines(log)[-1])
    # the largest response that fits: 6291556 bytes including the JSON quotes
    r = lam.invoke(FunctionName=py, Payload=json.dumps({"op": "big", "bytes": 6291554}))
    raw = r["Payload"].read()
    assert "FunctionError" not in r and len(raw) == 6291556
    _, body, _ = call(lam, py, {"op": "whoami"})
    assert body["instance"]


def test_response_far_over_6mb(lam, py):
    r, body, _ = call(lam, py, {"op": "big", "bytes": 20 * 1024 * 1024})
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Function.ResponseSizeTooLarge", body


def test_invalid_json_payload(lam, py):
    for bad in (b"{not json", b'{"a":1', b"\xff\xfe"):
        status, code, msg = client_error(lambda: lam.invoke(FunctionName=py, Payload=bad))
        assert (status, code) == (400, "InvalidRequestContentException"), bad
        assert msg.startswith("Could not parse request body into json")


def test_empty_payload_is_empty_object(lam, py):
    r = lam.invoke(FunctionName=py)
    body = json.loads(r["Payload"].read())
    assert "FunctionError" not in r and body["instance"]


def test_unknown_function_is_404(lam):
    name = uniq("inv-missing")
    status, code, msg = client_error(lambda: lam.invoke(FunctionName=name, Payload=b"{}"))
    assert (status, code) == (404, "ResourceNotFoundException")
    assert msg == "Function not found: " + arn(name)


def test_unknown_qualifier_is_404(lam, py):
    r = lam.invoke(FunctionName=py, Payload=b"{}", Qualifier="$LATEST")
    assert r["StatusCode"] == 200 and r["ExecutedVersion"] == "$LATEST"
    status, code, msg = client_error(lambda: lam.invoke(FunctionName=py, Payload=b"{}",
                                                        Qualifier="7"))
    assert (status, code) == (404, "ResourceNotFoundException")
    assert msg == "Function not found: " + arn(py) + ":7"


def test_invoke_by_arn(lam, py):
    r, body, _ = call(lam, arn(py), {"op": "whoami"})
    assert r["StatusCode"] == 200 and body["instance"]


def test_bad_invocation_and_log_type_are_400(lam, py):
    status, code, _ = client_error(lambda: lam.invoke(FunctionName=py, Payload=b"{}",
                                                      InvocationType="Sometimes"))
    assert (status, code) == (400, "InvalidParameterValueException")
    status, code, _ = client_error(lambda: lam.invoke(FunctionName=py, Payload=b"{}",
                                                      LogType="Everything"))
    assert (status, code) == (400, "InvalidParameterValueException")


def test_dry_run(lam, py):
    r = lam.invoke(FunctionName=py, Payload=b'{"op":"exit"}', InvocationType="DryRun")
    assert r["StatusCode"] == 204
    assert r["Payload"].read() == b""
    status, code, _ = client_error(lambda: lam.invoke(FunctionName=uniq("nope"),
                                                      InvocationType="DryRun"))
    assert (status, code) == (404, "ResourceNotFoundException")


def test_event_invocation_accepted(lam, py):
    # Asynchronous invocation in depth: test_async.py. Here: 202, an empty body, a request id.
    r = lam.invoke(FunctionName=py, Payload=b"{}", InvocationType="Event")
    assert r["StatusCode"] == 202
    assert r["Payload"].read() == b""
    assert UUID.match(r["ResponseMetadata"]["RequestId"])


# ---- the aws CLI ---------------------------------------------------------------------------


def test_aws_cli_invoke(daemon, py, tmp_path):
    out = tmp_path / "out.json"
    _, stdout, _ = daemon.aws("lambda", "invoke", "--function-name", py, "--payload",
                              json.dumps({"op": "echo", "data": {"cli": [1, 2]}}),
                              "--cli-binary-format", "raw-in-base64-out", "--log-type", "Tail",
                              str(out))
    meta = json.loads(stdout)
    assert meta["StatusCode"] == 200 and meta["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in meta
    assert out.read_bytes() == b'{"cli": [1, 2]}'
    log = base64.b64decode(meta["LogResult"]).decode()
    assert report_re(128).match(log_lines(log)[-1])


def test_aws_cli_function_error_and_client_context(daemon, py, tmp_path):
    out = tmp_path / "out.json"
    _, stdout, _ = daemon.aws("lambda", "invoke", "--function-name", py, "--payload",
                              '{"op": "raise"}', "--cli-binary-format", "raw-in-base64-out",
                              str(out))
    assert json.loads(stdout)["FunctionError"] == "Unhandled"
    assert json.loads(out.read_text())["errorType"] == "ValueError"
    cc = base64.b64encode(json.dumps({"custom": {"via": "cli"}}).encode()).decode()
    daemon.aws("lambda", "invoke", "--function-name", py, "--payload",
               '{"op": "context", "pause": 0}', "--cli-binary-format", "raw-in-base64-out",
               "--client-context", cc, str(out))
    assert json.loads(out.read_text())["result"]["client_context"]["custom"] == {"via": "cli"}


def test_aws_cli_errors(daemon, py, tmp_path):
    out = str(tmp_path / "out.json")
    rc, _, err = daemon.aws("lambda", "invoke", "--function-name", uniq("nope"), out,
                            check=False)
    assert rc != 0 and "ResourceNotFoundException" in err
    rc, _, err = daemon.aws("lambda", "invoke", "--function-name", py, "--payload", "{bad",
                            "--cli-binary-format", "raw-in-base64-out", out, check=False)
    assert rc != 0 and "InvalidRequestContentException" in err
    rc, stdout, _ = daemon.aws("lambda", "invoke", "--function-name", py, "--invocation-type",
                               "DryRun", out)
    assert json.loads(stdout)["StatusCode"] == 204
