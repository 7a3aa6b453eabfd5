"""
test_js_sdk.py - every Lambda operation nimbus serves, through the AWS SDK for JavaScript v3
(@aws-sdk/client-lambda, pinned in tests/js/package-lock.json, driven by tests/js/sdk.mjs via the
`js` fixture): CreateFunction (zip), GetFunction, GetFunctionConfiguration, ListFunctions (by
hand and with the SDK's paginator), UpdateFunctionCode, UpdateFunctionConfiguration with the
FunctionUpdatedV2 / FunctionActiveV2 waiters, Invoke (payload round trip, LogType Tail, a
function error, DryRun, ClientContext), GetAccountSettings, Put/Get/DeleteFunctionConcurrency,
Tag/Untag/ListTags, DeleteFunction, and the errors as the SDK parses them (exception class,
$fault, status, message, modelled members such as Reason and retryAfterSeconds).

Every assertion is on what the SDK parsed, so a member name, a status code, a header or a JSON
type on the wire that the JS SDK reads differently from boto3 fails here.
"""
import base64
import hashlib
import json
import re

import pytest

from conftest import ROLE, zip_files
from helpers import UUID, py_probe_zip, report_re, uniq
from jssdk import ACCOUNT, JsSdk, arn, assert_error, require, sdk_call, status

LIMIT = 6291456  # Invoke's request limit, bytes
LAST_MODIFIED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")


def pkg(text):
    """A small provided.al2023 package (never run); text makes its hash unique."""
    return zip_files({"bootstrap": ("#!/bin/sh\n# %s\nexit 0\n" % text, 0o755)})


def b64sha(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def create_input(name, code=None, **kw):
    d = {"FunctionName": name, "Runtime": "provided.al2023", "Role": ROLE,
         "Handler": "bootstrap", "Code": {"ZipFile": code if code is not None else pkg(name)}}
    d.update(kw)
    return d


@pytest.fixture(scope="module")
def py(js):
    """The Python probe (tests/e2e/functions/py_probe), created through the JS SDK."""
    name = uniq("js-py")
    out = js.call("CreateFunction", FunctionName=name, Runtime="python3.11", Role=ROLE,
                  Handler="probe.handler", Code={"ZipFile": py_probe_zip()}, Timeout=30)
    assert out["State"] == "Active"
    return name


def invoke(js, name, event, **kw):
    """Invokes with a JSON event; returns (output, decoded payload)."""
    out = js.call("Invoke", FunctionName=name, Payload=json.dumps(event).encode(), **kw)
    return out, json.loads(out["Payload"]) if out["Payload"] else None


# ---- create / get / list -------------------------------------------------------------------


def test_create_and_get(js):
    name = uniq("js")
    code = pkg(name)
    r = js.call("CreateFunction", **create_input(
        name, code, MemorySize=256, Timeout=30, Description="from the JS SDK",
        Environment={"Variables": {"GREETING": "hello", "EMPTY_VALUE": ""}},
        Tags={"team": "js"}))
    assert status(r) == 201
    assert r["FunctionName"] == name and r["FunctionArn"] == arn(name)
    assert r["Runtime"] == "provided.al2023" and r["Role"] == ROLE and r["Handler"] == "bootstrap"
    assert r["CodeSize"] == len(code) and isinstance(r["CodeSize"], int)
    assert r["CodeSha256"] == b64sha(code)
    assert r["Description"] == "from the JS SDK"
    assert r["Timeout"] == 30 and r["MemorySize"] == 256
    assert LAST_MODIFIED.match(r["LastModified"]), r["LastModified"]
    assert r["Version"] == "$LATEST"
    assert r["Environment"] == {"Variables": {"GREETING": "hello", "EMPTY_VALUE": ""}}
    assert r["TracingConfig"] == {"Mode": "PassThrough"}
    assert UUID.match(r["RevisionId"])
    assert r["State"] == "Active" and r["LastUpdateStatus"] == "Successful"
    assert r["PackageType"] == "Zip" and r["Architectures"] == ["x86_64"]
    assert r["EphemeralStorage"] == {"Size": 512}
    assert r["SnapStart"] == {"ApplyOn": "None", "OptimizationStatus": "Off"}
    # The JS SDK's model knows LoggingConfig (botocore 1.29's does not).
    assert r["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/aws/lambda/" + name}

    want = {k: v for k, v in r.items() if k != "$metadata"}
    cfg, got = js.run([sdk_call("GetFunctionConfiguration", FunctionName=name),
                       sdk_call("GetFunction", FunctionName=name)])
    cfg, got = cfg["output"], got["output"]
    assert status(cfg) == 200 and status(got) == 200
    assert {k: v for k, v in cfg.items() if k != "$metadata"} == want
    assert got["Configuration"] == want
    assert got["Code"]["RepositoryType"] == "S3"
    assert got["Code"]["Location"].startswith("http")
    assert got["Tags"] == {"team": "js"}
    assert "Concurrency" not in got

    # Qualified forms the SDK puts in the path (':' percent-encoded).
    for ref in (arn(name), "%s:function:%s" % (ACCOUNT, name)):
        assert js.call("GetFunctionConfiguration", FunctionName=ref)["FunctionArn"] == arn(name)
    c = js.call("GetFunctionConfiguration", FunctionName=name, Qualifier="$LATEST")
    assert c["FunctionArn"] == arn(name, "$LATEST")


def test_list_functions_paginated(fresh_daemon):
    require()
    js = JsSdk(fresh_daemon())  # alone on its daemon: the listing is exactly these functions
    names = sorted("js-page-%02d" % i for i in range(5))
    created = js.run([sdk_call("CreateFunction", **create_input(n)) for n in names])
    assert all("output" in c for c in created), created

    first = js.call("ListFunctions", MaxItems=2)
    assert [f["FunctionName"] for f in first["Functions"]] == names[:2]
    assert first["NextMarker"]
    second = js.call("ListFunctions", MaxItems=2, Marker=first["NextMarker"])
    assert [f["FunctionName"] for f in second["Functions"]] == names[2:4]
    everything = js.call("ListFunctions")
    assert [f["FunctionName"] for f in everything["Functions"]] == names
    assert "NextMarker" not in everything
    item = everything["Functions"][0]
    assert item["FunctionArn"] == arn(names[0]) and item["CodeSha256"] == b64sha(pkg(names[0]))

    # The SDK's paginator follows NextMarker until it is absent.
    pages = js.call("paginate:ListFunctions", paginator={"pageSize": 2})["pages"]
    assert [len(p["Functions"]) for p in pages] == [2, 2, 1]
    assert [f["FunctionName"] for p in pages for f in p["Functions"]] == names
    assert all(p["NextMarker"] for p in pages[:-1]) and "NextMarker" not in pages[-1]

    err = js.error("ListFunctions", MaxItems=10001)
    assert_error(err, "InvalidParameterValueException", 400, "maxItems")


# ---- updates and waiters -------------------------------------------------------------------


def test_update_code_and_configuration_with_waiters(js):
    name = uniq("js-upd")
    first = js.call("CreateFunction", **create_input(name, Environment={"Variables": {"A1": "x"}}))
    code2 = pkg(name + "-v2")
    r = js.call("UpdateFunctionCode", FunctionName=name, ZipFile=code2)
    assert status(r) == 200
    assert r["CodeSha256"] == b64sha(code2) != first["CodeSha256"]
    assert r["CodeSize"] == len(code2)
    assert r["RevisionId"] != first["RevisionId"]
    err = js.error("UpdateFunctionCode", FunctionName=name, ZipFile=pkg("x"),
                   RevisionId=first["RevisionId"])
    assert_error(err, "PreconditionFailedException", 412, "Revision Id")

    r2 = js.call("UpdateFunctionConfiguration", FunctionName=name, MemorySize=1024, Timeout=60,
                 Description="updated", Environment={"Variables": {"B2": "y"}},
                 EphemeralStorage={"Size": 1024}, RevisionId=r["RevisionId"])
    assert r2["MemorySize"] == 1024 and r2["Timeout"] == 60 and r2["Description"] == "updated"
    assert r2["Environment"] == {"Variables": {"B2": "y"}}
    assert r2["EphemeralStorage"] == {"Size": 1024}
    assert r2["CodeSha256"] == r["CodeSha256"] and r2["RevisionId"] != r["RevisionId"]

    updated, active = js.run([sdk_call("waitUntil:FunctionUpdatedV2", FunctionName=name),
                              sdk_call("waitUntil:FunctionActiveV2", FunctionName=name)])
    for w in (updated, active):
        assert w["output"]["state"] == "SUCCESS", w
        cfg = w["output"]["reason"]["Configuration"]  # the GetFunction the waiter polled
        assert cfg["RevisionId"] == r2["RevisionId"] and cfg["MemorySize"] == 1024
    assert updated["output"]["reason"]["Configuration"]["LastUpdateStatus"] == "Successful"
    assert active["output"]["reason"]["Configuration"]["State"] == "Active"
    # The JS SDK's waiters retry on errors no acceptor names (botocore's fail): on a missing
    # function this one times out, having seen the 404s.
    err = js.error("waitUntil:FunctionActiveV2", FunctionName=name + "-nope",
                   waiter={"maxWaitTime": 2, "minDelay": 1, "maxDelay": 1})
    assert err["name"] == "TimeoutError" and err["waiter"]["state"] == "TIMEOUT", err
    assert list(err["waiter"]["observedResponses"]) == [
        "404: Function not found: " + arn(name + "-nope")], err

    err = js.error("UpdateFunctionConfiguration", FunctionName=name, Timeout=901)
    assert_error(err, "InvalidParameterValueException", 400, "'timeout'")
    assert js.call("GetFunctionConfiguration", FunctionName=name)["Timeout"] == 60


# ---- invoke --------------------------------------------------------------------------------


def test_invoke_payload_round_trip(js, py):
    data = {"nested": {"list": [1, 2.5, None, True, "\u00fc\u4e2d"]}, "s": "x" * 1000}
    out, body = invoke(js, py, {"op": "echo", "data": data})
    assert status(out) == 200
    assert out["StatusCode"] == 200 and out["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in out and "LogResult" not in out
    assert body == data
    # The same through the ARN and an explicit $LATEST qualifier.
    out, body = invoke(js, arn(py), {"op": "echo", "data": 7}, Qualifier="$LATEST")
    assert body == 7 and out["ExecutedVersion"] == "$LATEST"


def test_invoke_log_tail(js, py):
    out = js.call("Invoke", FunctionName=py, LogType="Tail", metadata=True,
                  Payload=json.dumps({"op": "log", "lines": 3}).encode())
    assert "FunctionError" not in out
    assert json.loads(out["Payload"])["result"] == {"logged": 3}
    rid = out["$metadata"]["requestId"]
    assert UUID.match(rid)
    log = base64.b64decode(out["LogResult"]).decode()
    lines = log.rstrip("\n").split("\n")
    assert "START RequestId: %s Version: $LATEST" % rid in lines
    assert lines[-2] == "END RequestId: %s" % rid
    m = report_re(128).match(lines[-1])
    assert m and m.group(1) == rid, lines[-1]
    assert sum(1 for ln in lines if ln.startswith("probe log line ")) == 3


def test_invoke_function_error(js, py):
    out, body = invoke(js, py, {"op": "raise"}, LogType="Tail")
    assert status(out) == 200 and out["StatusCode"] == 200
    assert out["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "probe was asked to raise"
    assert "ValueError" in base64.b64decode(out["LogResult"]).decode()
    # the next invocation works
    _, body = invoke(js, py, {"op": "echo", "data": "after"})
    assert body == "after"


def test_invoke_dry_run(js, py):
    out = js.call("Invoke", FunctionName=py, InvocationType="DryRun",
                  Payload=b'{"op":"exit"}')
    assert status(out) == 204 and out["StatusCode"] == 204
    assert not out.get("Payload")
    err = js.error("Invoke", FunctionName=uniq("js-nope"), InvocationType="DryRun")
    assert_error(err, "ResourceNotFoundException", 404)


def test_invoke_client_context(js, py):
    cc = {"custom": {"from": "js-sdk", "n": 1}, "env": {"platform": "node"},
          "client": {"installation_id": "inst-1", "app_title": "t", "app_version_name": "1",
                     "app_version_code": "1", "app_package_name": "p"}}
    out, body = invoke(js, py, {"op": "context", "pause": 0},
                       ClientContext=base64.b64encode(json.dumps(cc).encode()).decode())
    assert "FunctionError" not in out, body
    body = body["result"]
    assert body["client_context"] == {"custom": cc["custom"], "env": cc["env"],
                                      "client_installation_id": "inst-1"}
    assert body["function_name"] == py and body["invoked_function_arn"] == arn(py)
    err = js.error("Invoke", FunctionName=py, Payload=b"{}", ClientContext="not base64 json!")
    assert_error(err, "InvalidParameterValueException", 400, "Client context")


def test_invoke_errors(js, py):
    name = uniq("js-missing")
    missing, too_large, bad_json = js.run([
        sdk_call("Invoke", FunctionName=name, Payload=b"{}"),
        sdk_call("Invoke", FunctionName=py, Payload=b" " * (LIMIT + 1)),
        sdk_call("Invoke", FunctionName=py, Payload=b"{not json"),
    ])
    assert_error(missing["error"], "ResourceNotFoundException", 404,
                 "Function not found: " + arn(name))
    assert missing["error"]["Type"] == "User"
    assert_error(too_large["error"], "RequestTooLargeException", 413, str(LIMIT))
    assert_error(bad_json["error"], "InvalidRequestContentException", 400,
                 "Could not parse request body into json")


def test_throttle_with_reason(js, py):
    name = uniq("js-throttle")
    js.call("CreateFunction", FunctionName=name, Runtime="python3.11", Role=ROLE,
            Handler="probe.handler", Code={"ZipFile": py_probe_zip()}, Timeout=30)
    put, throttled, deleted, ok = js.run([
        sdk_call("PutFunctionConcurrency", FunctionName=name, ReservedConcurrentExecutions=0),
        sdk_call("Invoke", FunctionName=name, Payload=b'{"op":"echo","data":1}'),
        sdk_call("DeleteFunctionConcurrency", FunctionName=name),
        sdk_call("Invoke", FunctionName=name, Payload=b'{"op":"echo","data":1}'),
    ])
    assert put["output"]["ReservedConcurrentExecutions"] == 0
    err = assert_error(throttled["error"], "TooManyRequestsException", 429, "Rate Exceeded.")
    assert err["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert err["Type"] == "User"
    assert err["retryAfterSeconds"] == "1"  # from the Retry-After header
    assert status(deleted["output"]) == 204
    assert ok["output"]["StatusCode"] == 200 and json.loads(ok["output"]["Payload"]) == 1


# ---- account settings, concurrency, tags, delete -------------------------------------------


def test_account_settings_and_concurrency(js):
    name = uniq("js-conc")
    code = pkg(name)
    before = js.call("GetAccountSettings")
    assert status(before) == 200
    limit = before["AccountLimit"]
    assert limit["TotalCodeSize"] == 80530636800 and limit["CodeSizeUnzipped"] == 262144000
    assert limit["CodeSizeZipped"] == 52428800 and limit["ConcurrentExecutions"] == 1000
    js.call("CreateFunction", **create_input(name, code))

    res = js.run([
        sdk_call("GetFunctionConcurrency", FunctionName=name),
        sdk_call("PutFunctionConcurrency", FunctionName=name, ReservedConcurrentExecutions=150),
        sdk_call("GetFunctionConcurrency", FunctionName=name),
        sdk_call("GetFunction", FunctionName=name),
        sdk_call("GetAccountSettings"),
        sdk_call("PutFunctionConcurrency", FunctionName=name,
                  ReservedConcurrentExecutions=limit["UnreservedConcurrentExecutions"] - 99),
        sdk_call("DeleteFunctionConcurrency", FunctionName=name),
        sdk_call("GetFunctionConcurrency", FunctionName=name),
        sdk_call("GetAccountSettings"),
        sdk_call("PutFunctionConcurrency", FunctionName=uniq("js-nope"),
                  ReservedConcurrentExecutions=1),
    ])
    none, put, get, fn, during, too_many, deleted, after_del, after, missing = res
    assert "ReservedConcurrentExecutions" not in none["output"]
    assert status(put["output"]) == 200 and put["output"]["ReservedConcurrentExecutions"] == 150
    assert get["output"]["ReservedConcurrentExecutions"] == 150
    assert fn["output"]["Concurrency"] == {"ReservedConcurrentExecutions": 150}
    during = during["output"]
    assert during["AccountLimit"]["UnreservedConcurrentExecutions"] == \
        limit["UnreservedConcurrentExecutions"] - 150
    assert during["AccountUsage"]["FunctionCount"] == before["AccountUsage"]["FunctionCount"] + 1
    assert during["AccountUsage"]["TotalCodeSize"] == \
        before["AccountUsage"]["TotalCodeSize"] + len(code)
    assert_error(too_many["error"], "InvalidParameterValueException", 400, "minimum value of [100]")
    assert status(deleted["output"]) == 204
    assert "ReservedConcurrentExecutions" not in after_del["output"]
    assert after["output"]["AccountLimit"] == limit
    assert_error(missing["error"], "ResourceNotFoundException", 404)


def test_tags(js):
    name = uniq("js-tags")
    js.call("CreateFunction", **create_input(name, Tags={"a": "1"}))
    tag, listed, untag, listed2, fn, missing = js.run([
        sdk_call("TagResource", Resource=arn(name), Tags={"b": "2", "c": "3"}),
        sdk_call("ListTags", Resource=arn(name)),
        sdk_call("UntagResource", Resource=arn(name), TagKeys=["a", "c"]),
        sdk_call("ListTags", Resource=arn(name)),
        sdk_call("GetFunction", FunctionName=name),
        sdk_call("ListTags", Resource=arn(name + "-nope")),
    ])
    assert status(tag["output"]) == 204
    assert listed["output"]["Tags"] == {"a": "1", "b": "2", "c": "3"}
    assert status(untag["output"]) == 204
    assert listed2["output"]["Tags"] == {"b": "2"}
    assert fn["output"]["Tags"] == {"b": "2"}
    assert_error(missing["error"], "ResourceNotFoundException", 404)


def test_delete(js):
    name = uniq("js-del")
    js.call("CreateFunction", **create_input(name))
    latest, deleted, get, again = js.run([
        sdk_call("DeleteFunction", FunctionName=name, Qualifier="$LATEST"),
        sdk_call("DeleteFunction", FunctionName=name),
        sdk_call("GetFunction", FunctionName=name),
        sdk_call("DeleteFunction", FunctionName=name),
    ])
    assert_error(latest["error"], "InvalidParameterValueException", 400,
                 "$LATEST version cannot be deleted without deleting the function.")
    assert status(deleted["output"]) == 204
    for r in (get, again):
        assert_error(r["error"], "ResourceNotFoundException", 404,
                     "Function not found: " + arn(name))
    # the name is free again; deleting by ARN works
    assert status(js.call("CreateFunction", **create_input(name))) == 201
    assert status(js.call("DeleteFunction", FunctionName=arn(name))) == 204


# ---- errors --------------------------------------------------------------------------------


def test_error_mapping(js):
    name = uniq("js-err")
    first, dup, bad_memory, bad_role, not_found, bad_qualifier = js.run([
        sdk_call("CreateFunction", **create_input(name)),
        sdk_call("CreateFunction", **create_input(name)),
        sdk_call("CreateFunction", **create_input(uniq("js-err"), MemorySize=64)),
        sdk_call("CreateFunction", **create_input(uniq("js-err"), Role="not-a-role")),
        sdk_call("GetFunctionConfiguration", FunctionName=name + "-nope"),
        sdk_call("GetFunction", FunctionName=name + ":$LATEST", Qualifier="prod"),
    ])
    assert status(first["output"]) == 201
    err = assert_error(dup["error"], "ResourceConflictException", 409, name)
    assert err["Type"] == "User"
    assert_error(bad_memory["error"], "InvalidParameterValueException", 400)
    assert_error(bad_role["error"], "InvalidParameterValueException", 400)
    assert_error(not_found["error"], "ResourceNotFoundException", 404,
                 "Function not found: " + arn(name + "-nope"))
    assert_error(bad_qualifier["error"], "InvalidParameterValueException", 400,
                 "does not match the specified qualifier")


def test_harness_blobs_and_faults(js, py):
    text, unknown_op, unknown_client, sqs = js.run([
        {"op": "Invoke", "input": {"FunctionName": py,
                                   "Payload": {"$utf8": '{"op":"echo","data":"\u00fc"}'}}},
        {"op": "NoSuchOperation"},
        {"client": "NoSuchService", "op": "X"},
        {"client": "SQS", "op": "ListQueues"},
    ])
    assert json.loads(text["output"]["Payload"]) == "\u00fc"
    # the pinned SQS client loads (whatever the daemon answers before it serves SQS)
    assert "output" in sqs or sqs["error"]["name"] != "HarnessError", sqs
    assert unknown_op["error"]["name"] == "HarnessError"
    assert unknown_client["error"]["name"] == "HarnessError"
