"""
test_control_plane.py - end-to-end tests of the Lambda control plane (src/api_lambda.c) against a
real `nimbus serve`, through boto3, the aws CLI (Debian's 2.9) and raw HTTP where a client would
refuse to send the request: create / get / get-configuration / list with pagination / update code /
update configuration / delete, the function-active-v2 and function-updated-v2 waiters, reserved
concurrency with the 100-unreserved rule, account settings, tags, the code download behind
Code.Location, AWS-shaped errors (status, x-amzn-ErrorType, message) and a restart that keeps
every function. No function is invoked here: the packages are never run.
"""
import base64
import hashlib
import io
import json
import os
import re
import threading
import urllib.error
import urllib.request
import uuid
import zipfile

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ROLE, Daemon, zip_files

ACCOUNT = "000000000000"  # the daemon's default account id
REGION = "us-east-1"  # the daemon's default region
LAST_MODIFIED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def pkg(text="v1"):
    """A small provided.al2023 package; text makes its hash unique."""
    return zip_files({"bootstrap": ("#!/bin/sh\n# %s\nexit 0\n" % text, 0o755)})


def b64sha(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def uniq(prefix="cp"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


def arn(name, qualifier=None):
    a = "arn:aws:lambda:%s:%s:function:%s" % (REGION, ACCOUNT, name)
    return a + ":" + qualifier if qualifier else a


def raw_client(daemon):
    """boto3 without client-side parameter validation, to reach the server's own checks."""
    import boto3
    return boto3.client("lambda", endpoint_url=daemon.endpoint, region_name=REGION,
                        aws_access_key_id=daemon.key_id, aws_secret_access_key=daemon.secret,
                        config=Config(parameter_validation=False,
                                      retries={"max_attempts": 1, "mode": "standard"}))


def create(client, name, code=None, runtime="provided.al2023", handler="bootstrap", **kw):
    return client.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                                  Code={"ZipFile": code if code is not None else pkg(name)}, **kw)


def http(daemon, method, path, body=None, headers=None):
    """Raw (signed) request; returns (status, headers, body bytes)."""
    headers = dict(headers or {})
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    return daemon.request(method, path, body if body is not None else b"", headers)


def assert_client_error(fn, status, code, message=None):
    with pytest.raises(ClientError) as ei:
        fn()
    r = ei.value.response
    assert r["ResponseMetadata"]["HTTPStatusCode"] == status, r
    assert r["Error"]["Code"] == code, r
    if message is not None:
        assert message in r["Error"]["Message"], r["Error"]["Message"]
    return r


def assert_http_error(resp, status, code, message=None):
    st, headers, body = resp
    assert st == status, (st, body)
    assert headers.get("x-amzn-ErrorType", "").split(":")[0] == code, (headers, body)
    doc = json.loads(body)
    msg = doc.get("message") or doc.get("Message")
    if message is not None:
        assert message in msg, msg
    return doc


# ---------------------------------------------------------------------------------------------
# create / get / list / update / delete


def test_create_and_get(lam, daemon):
    name = uniq()
    code = pkg(name)
    r = create(lam, name, code, MemorySize=256, Timeout=30, Description="a function",
               Environment={"Variables": {"GREETING": "hello", "EMPTY_VALUE": ""}},
               Tags={"team": "core"})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert r["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-requestid")
    assert r["FunctionName"] == name
    assert r["FunctionArn"] == arn(name)
    assert r["Runtime"] == "provided.al2023"
    assert r["Role"] == ROLE
    assert r["Handler"] == "bootstrap"
    assert r["CodeSize"] == len(code)
    assert r["CodeSha256"] == b64sha(code)
    assert r["Description"] == "a function"
    assert r["Timeout"] == 30
    assert r["MemorySize"] == 256
    assert LAST_MODIFIED.match(r["LastModified"]), r["LastModified"]
    assert r["Version"] == "$LATEST"
    assert r["Environment"] == {"Variables": {"GREETING": "hello", "EMPTY_VALUE": ""}}
    assert r["TracingConfig"] == {"Mode": "PassThrough"}
    assert UUID.match(r["RevisionId"])
    assert r["State"] == "Active"
    assert r["LastUpdateStatus"] == "Successful"
    assert r["PackageType"] == "Zip"
    assert r["Architectures"] == ["x86_64"]
    assert r["EphemeralStorage"] == {"Size": 512}
    assert r["SnapStart"] == {"ApplyOn": "None", "OptimizationStatus": "Off"}
    assert "RuntimeVersionConfig" not in r
    # botocore 1.29 predates LoggingConfig and drops it: read the wire.
    st, _, body = http(daemon, "GET", "/2015-03-31/functions/%s/configuration" % name)
    assert st == 200
    assert json.loads(body)["LoggingConfig"] == {"LogFormat": "Text",
                                                 "LogGroup": "/aws/lambda/" + name}

    cfg = lam.get_function_configuration(FunctionName=name)
    got = lam.get_function(FunctionName=name)
    for doc in (cfg, got["Configuration"]):
        doc = dict(doc)
        doc.pop("ResponseMetadata", None)
        want = dict(r)
        want.pop("ResponseMetadata")
        assert doc == want
    assert got["Code"]["RepositoryType"] == "S3"
    assert got["Tags"] == {"team": "core"}
    assert "Concurrency" not in got
    with urllib.request.urlopen(got["Code"]["Location"], timeout=30) as resp:
        assert resp.read() == code


def test_defaults_and_no_environment(lam):
    name = uniq()
    r = lam.create_function(FunctionName=name, Runtime="provided", Role=ROLE,
                            Code={"ZipFile": pkg(name)})
    assert r["MemorySize"] == 128 and r["Timeout"] == 3 and r["Description"] == ""
    assert "Environment" not in r
    assert "Handler" not in r
    r = create(lam, uniq(), runtime="python3.12", handler="app.handler")
    assert r["Runtime"] == "python3.12" and r["Handler"] == "app.handler"
    r = create(lam, uniq(), runtime="nodejs22.x", handler="index.handler",
               EphemeralStorage={"Size": 10240}, MemorySize=10240, Timeout=900)
    assert r["EphemeralStorage"] == {"Size": 10240}


def test_references_and_qualifiers(lam):
    name = uniq()
    create(lam, name)
    for ref in (name, arn(name), "%s:function:%s" % (ACCOUNT, name)):
        assert lam.get_function_configuration(FunctionName=ref)["FunctionArn"] == arn(name)
    for ref, q in ((name + ":$LATEST", None), (name, "$LATEST"), (arn(name, "$LATEST"), None)):
        kw = {"Qualifier": q} if q else {}
        c = lam.get_function_configuration(FunctionName=ref, **kw)
        assert c["FunctionArn"] == arn(name, "$LATEST")
        assert c["Version"] == "$LATEST"
        g = lam.get_function(FunctionName=ref, **kw)
        assert g["Configuration"]["FunctionArn"] == arn(name, "$LATEST")
    assert_client_error(lambda: lam.get_function(FunctionName=name, Qualifier="7"), 404,
                        "ResourceNotFoundException", "Function not found: " + arn(name, "7"))
    assert_client_error(lambda: lam.get_function(FunctionName=name + ":prod"), 404,
                        "ResourceNotFoundException", "Function not found: " + arn(name, "prod"))
    assert_client_error(
        lambda: lam.get_function(FunctionName=name + ":$LATEST", Qualifier="prod"), 400,
        "InvalidParameterValueException", "does not match the specified qualifier")
    other = "arn:aws:lambda:eu-west-1:%s:function:%s" % (ACCOUNT, name)
    assert_client_error(lambda: lam.get_function(FunctionName=other), 404,
                        "ResourceNotFoundException", "not reachable in this region")


def test_list_pagination(fresh_daemon):
    dm = fresh_daemon()
    lam = dm.boto3()
    names = sorted("page-%02d" % i for i in range(7))
    for n in names:
        create(lam, n)
    r = lam.list_functions()
    assert [f["FunctionName"] for f in r["Functions"]] == names
    assert "NextMarker" not in r
    item = r["Functions"][0]
    assert item["FunctionArn"] == arn(names[0])
    assert "State" not in item and "LastUpdateStatus" not in item
    assert item["Version"] == "$LATEST" and item["CodeSha256"] == b64sha(pkg(names[0]))

    seen, marker, pages = [], None, 0
    while True:
        kw = {"Marker": marker} if marker else {}
        r = lam.list_functions(MaxItems=3, **kw)
        pages += 1
        assert len(r["Functions"]) <= 3
        seen += [f["FunctionName"] for f in r["Functions"]]
        marker = r.get("NextMarker")
        if not marker:
            break
    assert seen == names and pages == 3
    r = lam.list_functions(MaxItems=7)
    assert len(r["Functions"]) == 7 and "NextMarker" not in r

    pag = lam.get_paginator("list_functions")
    got = [f["FunctionName"] for page in pag.paginate(PaginationConfig={"PageSize": 2})
           for f in page["Functions"]]
    assert got == names

    _, out, _ = dm.aws("lambda", "list-functions", "--page-size", "2")
    assert [f["FunctionName"] for f in json.loads(out)["Functions"]] == names
    _, out, _ = dm.aws("lambda", "list-functions", "--max-items", "4")
    doc = json.loads(out)
    assert len(doc["Functions"]) == 4 and doc.get("NextToken")

    r = lam.list_functions(FunctionVersion="ALL")
    assert r["Functions"][0]["FunctionArn"] == arn(names[0], "$LATEST")
    for bad in ("0", "10001", "x"):
        assert_http_error(http(dm, "GET", "/2015-03-31/functions/?MaxItems=" + bad), 400,
                          "InvalidParameterValueException", "maxItems")
    st, _, body = http(dm, "GET", "/2015-03-31/functions/?MaxItems=10000")
    assert st == 200 and len(json.loads(body)["Functions"]) == 7


def test_update_code(lam):
    name = uniq()
    first = create(lam, name)
    code2 = pkg(name + "-v2")
    r = lam.update_function_code(FunctionName=name, ZipFile=code2)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["CodeSha256"] == b64sha(code2) != first["CodeSha256"]
    assert r["CodeSize"] == len(code2)
    assert r["RevisionId"] != first["RevisionId"]
    assert r["LastUpdateStatus"] == "Successful" and r["State"] == "Active"
    g = lam.get_function(FunctionName=name)
    assert g["Configuration"]["CodeSha256"] == b64sha(code2)
    with urllib.request.urlopen(g["Code"]["Location"], timeout=30) as resp:
        assert resp.read() == code2
    # Optimistic concurrency through RevisionId.
    assert_client_error(lambda: lam.update_function_code(FunctionName=name, ZipFile=pkg("x"),
                                                         RevisionId=first["RevisionId"]),
                        412, "PreconditionFailedException", "Revision Id")
    r2 = lam.update_function_code(FunctionName=name, ZipFile=pkg("v3"),
                                  RevisionId=r["RevisionId"])
    assert r2["CodeSha256"] == b64sha(pkg("v3"))
    # DryRun validates without changing anything.
    r3 = lam.update_function_code(FunctionName=name, ZipFile=pkg("v4"), DryRun=True)
    assert r3["RevisionId"] == r2["RevisionId"]
    assert lam.get_function_configuration(FunctionName=name)["CodeSha256"] == r2["CodeSha256"]
    # Unsupported code sources.
    raw = raw_client_for(lam)
    assert_client_error(lambda: raw.update_function_code(FunctionName=name, S3Bucket="b",
                                                         S3Key="k"),
                        400, "InvalidParameterValueException", "S3")
    assert_client_error(lambda: raw.update_function_code(FunctionName=name,
                                                         ImageUri="repo/img:1"),
                        400, "InvalidParameterValueException", "ImageUri")
    assert_client_error(lambda: lam.update_function_code(FunctionName="nope-" + name,
                                                         ZipFile=code2),
                        404, "ResourceNotFoundException", "Function not found: " + arn("nope-" + name))


def raw_client_for(lam):
    import boto3
    creds = lam._request_signer._credentials
    return boto3.client("lambda", endpoint_url=lam.meta.endpoint_url, region_name=REGION,
                        aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key,
                        config=Config(parameter_validation=False,
                                      retries={"max_attempts": 1, "mode": "standard"}))


def test_update_configuration(lam):
    name = uniq()
    first = create(lam, name, Environment={"Variables": {"A1": "x"}})
    r = lam.update_function_configuration(
        FunctionName=name, MemorySize=1024, Timeout=60, Description="new",
        Environment={"Variables": {"B2": "y"}}, Handler="other", Runtime="provided.al2",
        EphemeralStorage={"Size": 1024})
    assert r["MemorySize"] == 1024 and r["Timeout"] == 60 and r["Description"] == "new"
    assert r["Environment"] == {"Variables": {"B2": "y"}}
    assert r["Handler"] == "other" and r["Runtime"] == "provided.al2"
    assert r["EphemeralStorage"] == {"Size": 1024}
    assert r["CodeSha256"] == first["CodeSha256"]
    assert r["RevisionId"] != first["RevisionId"]
    c = lam.get_function_configuration(FunctionName=name)
    assert c["MemorySize"] == 1024 and c["RevisionId"] == r["RevisionId"]
    # Members not given keep their values; an empty map clears the environment.
    r2 = lam.update_function_configuration(FunctionName=name, Environment={"Variables": {}})
    assert "Environment" not in r2 and r2["MemorySize"] == 1024 and r2["Timeout"] == 60
    # A refused update changes nothing.
    assert_client_error(lambda: lam.update_function_configuration(FunctionName=name,
                                                                  Timeout=901),
                        400, "InvalidParameterValueException", "'timeout'")
    assert lam.get_function_configuration(FunctionName=name)["RevisionId"] == r2["RevisionId"]
    assert_client_error(lambda: lam.update_function_configuration(
        FunctionName=name, Description="x", RevisionId=first["RevisionId"]),
        412, "PreconditionFailedException")
    # Switching to a runtime that needs a handler: python with "other" works.
    r3 = lam.update_function_configuration(FunctionName=name, Runtime="python3.11")
    assert r3["Runtime"] == "python3.11" and r3["Handler"] == "other"


def test_delete(lam):
    name = uniq()
    create(lam, name)
    assert_client_error(lambda: lam.delete_function(FunctionName=name, Qualifier="$LATEST"), 400,
                        "InvalidParameterValueException",
                        "$LATEST version cannot be deleted without deleting the function.")
    r = lam.delete_function(FunctionName=name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert_client_error(lambda: lam.get_function(FunctionName=name), 404,
                        "ResourceNotFoundException", "Function not found: " + arn(name))
    assert_client_error(lambda: lam.delete_function(FunctionName=name), 404,
                        "ResourceNotFoundException", "Function not found: " + arn(name))
    assert name not in [f["FunctionName"] for f in lam.list_functions(MaxItems=10000)["Functions"]]
    # The name is free again.
    r = create(lam, name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 201
    lam.delete_function(FunctionName=arn(name))
    assert_client_error(lambda: lam.get_function(FunctionName=name), 404,
                        "ResourceNotFoundException")


# ---------------------------------------------------------------------------------------------
# the aws CLI, waiters


def test_cli_lifecycle_and_waiters(daemon, tmp_path):
    name = uniq("cli")
    z = tmp_path / "f.zip"
    z.write_bytes(pkg(name))
    _, out, _ = daemon.aws("lambda", "create-function", "--function-name", name, "--runtime",
                           "provided.al2023", "--handler", "bootstrap", "--role", ROLE,
                           "--zip-file", "fileb://%s" % z, "--memory-size", "256",
                           "--environment", "Variables={K1=v1}")
    doc = json.loads(out)
    assert doc["FunctionArn"] == arn(name) and doc["MemorySize"] == 256
    assert doc["CodeSha256"] == b64sha(pkg(name))
    daemon.aws("lambda", "wait", "function-active-v2", "--function-name", name)
    daemon.aws("lambda", "wait", "function-active", "--function-name", name)
    daemon.aws("lambda", "wait", "function-exists", "--function-name", name)

    z.write_bytes(pkg(name + "v2"))
    _, out, _ = daemon.aws("lambda", "update-function-code", "--function-name", name,
                           "--zip-file", "fileb://%s" % z)
    assert json.loads(out)["CodeSha256"] == b64sha(pkg(name + "v2"))
    daemon.aws("lambda", "wait", "function-updated-v2", "--function-name", name)
    _, out, _ = daemon.aws("lambda", "update-function-configuration", "--function-name", name,
                           "--timeout", "42", "--description", "via cli")
    assert json.loads(out)["Timeout"] == 42
    daemon.aws("lambda", "wait", "function-updated-v2", "--function-name", name)
    daemon.aws("lambda", "wait", "function-updated", "--function-name", name)

    _, out, _ = daemon.aws("lambda", "get-function", "--function-name", name)
    doc = json.loads(out)
    assert doc["Configuration"]["Timeout"] == 42
    assert doc["Configuration"]["Description"] == "via cli"
    assert doc["Configuration"]["Environment"] == {"Variables": {"K1": "v1"}}
    _, out, _ = daemon.aws("lambda", "get-function-configuration", "--function-name", name)
    assert json.loads(out)["FunctionName"] == name

    daemon.aws("lambda", "delete-function", "--function-name", name)
    rc, _, err = daemon.aws("lambda", "get-function", "--function-name", name, check=False)
    assert rc != 0 and "ResourceNotFoundException" in err and arn(name) in err


def test_cli_errors(daemon, tmp_path):
    z = tmp_path / "f.zip"
    z.write_bytes(pkg("x"))
    base = ["lambda", "create-function", "--role", ROLE, "--runtime", "provided.al2023",
            "--handler", "bootstrap", "--zip-file", "fileb://%s" % z]
    rc, _, err = daemon.aws(*base, "--function-name", uniq(), "--memory-size", "20000",
                            check=False)
    assert rc != 0 and "InvalidParameterValueException" in err and "memorySize" in err
    rc, _, err = daemon.aws(*base, "--function-name", "bad.name", check=False)
    assert rc != 0 and "InvalidParameterValueException" in err
    name = uniq()
    daemon.aws(*base, "--function-name", name)
    rc, _, err = daemon.aws(*base, "--function-name", name, check=False)
    assert rc != 0 and "ResourceConflictException" in err and "Function already exist" in err
    rc, _, err = daemon.aws("lambda", "get-function-configuration", "--function-name",
                            "does-not-exist", check=False)
    assert rc != 0 and "ResourceNotFoundException" in err


# ---------------------------------------------------------------------------------------------
# errors, AWS-shaped


def test_validation_errors(daemon):
    raw = raw_client(daemon)
    ok = dict(Runtime="provided.al2023", Role=ROLE, Handler="bootstrap",
              Code={"ZipFile": pkg("e")})

    def refused(message, **kw):
        """Creates with kw over a valid request (None drops a member); expects a 400 and no
        function left behind."""
        args = dict(ok, FunctionName=uniq())
        args.update(kw)
        args = {k: v for k, v in args.items() if v is not None}
        r = assert_client_error(lambda: raw.create_function(**args), 400,
                                "InvalidParameterValueException", message)
        if "FunctionName" not in kw:
            assert_client_error(lambda: raw.get_function(FunctionName=args["FunctionName"]),
                                404, "ResourceNotFoundException")
        return r

    refused("failed to satisfy constraint: Member must satisfy regular expression pattern",
            FunctionName="bad name!")
    refused("Member must have length less than or equal to 64", FunctionName="a" * 65)
    refused("Value '64' at 'memorySize' failed to satisfy constraint: Member must have value "
            "greater than or equal to 128", MemorySize=64)
    refused("Member must have value less than or equal to 10240", MemorySize=10241)
    refused("Value '0' at 'timeout' failed to satisfy constraint", Timeout=0)
    refused("Value '901' at 'timeout' failed to satisfy constraint: Member must have value less "
            "than or equal to 900", Timeout=901)
    refused("at 'ephemeralStorage.size'", EphemeralStorage={"Size": 100})
    refused("Reserved keys used in this request: AWS_REGION",
            Environment={"Variables": {"AWS_REGION": "eu-west-1"}})
    refused("Lambda was unable to configure your environment variables because the environment "
            "variables you have provided contains reserved keys that are currently not "
            "supported for modification. Reserved keys used in this request: _HANDLER",
            Environment={"Variables": {"_HANDLER": "x"}})
    refused("Lambda was unable to configure your environment variables because the environment "
            "variables you have provided exceeded the 4KB limit. String measured: ",
            Environment={"Variables": {"BIG": "x" * 4096}})
    refused("Map keys must satisfy constraint", Environment={"Variables": {"1BAD": "x"}})
    refused("Value java17 at 'runtime' failed to satisfy constraint: Member must satisfy enum "
            "value set: [", Runtime="java17")
    refused("Runtime and Handler are mandatory parameters", Runtime="python3.12", Handler=None)
    refused("at 'role' failed to satisfy constraint", Role="not-a-role")
    refused("at 'description'", Description="d" * 257)
    refused("at 'handler'", Handler="has space")
    refused("x86_64", Architectures=["arm64"])
    refused("Image", PackageType="Image")
    refused("memorySize", MemorySize="lots")
    # 4 KB exactly is fine ({"BIG":"…"} is 4096 bytes).
    name = uniq()
    r = raw.create_function(FunctionName=name, Environment={"Variables": {"BIG": "x" * 4086}},
                            **ok)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 201


def test_not_found_and_conflict(lam):
    missing = uniq("missing")
    for call in (lambda: lam.get_function(FunctionName=missing),
                 lambda: lam.get_function_configuration(FunctionName=missing),
                 lambda: lam.update_function_configuration(FunctionName=missing, Timeout=5),
                 lambda: lam.delete_function(FunctionName=missing),
                 lambda: lam.get_function_concurrency(FunctionName=missing),
                 lambda: lam.put_function_concurrency(FunctionName=missing,
                                                      ReservedConcurrentExecutions=1)):
        r = assert_client_error(call, 404, "ResourceNotFoundException",
                                "Function not found: " + arn(missing))
        assert r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"].startswith(
            "ResourceNotFoundException")
    name = uniq()
    create(lam, name)
    assert_client_error(lambda: create(lam, name), 409, "ResourceConflictException",
                        "Function already exist: " + name)


def test_garbage_bodies(daemon):
    assert_http_error(http(daemon, "POST", "/2015-03-31/functions", "{not json"), 400,
                      "InvalidRequestContentException")
    assert_http_error(http(daemon, "POST", "/2015-03-31/functions", "[1,2]"), 400,
                      "InvalidRequestContentException")
    body = {"FunctionName": uniq(), "Role": ROLE, "Runtime": "provided.al2023",
            "Handler": "bootstrap", "Code": {"ZipFile": "!!!not base64!!!"}}
    assert_http_error(http(daemon, "POST", "/2015-03-31/functions", json.dumps(body)), 400,
                      "InvalidParameterValueException")
    body["Code"] = {}
    assert_http_error(http(daemon, "POST", "/2015-03-31/functions", json.dumps(body)), 400,
                      "InvalidParameterValueException")
    del body["Code"]
    assert_http_error(http(daemon, "POST", "/2015-03-31/functions", json.dumps(body)), 400,
                      "InvalidParameterValueException", "'code'")
    name = uniq()
    create(daemon.boto3(), name)
    assert_http_error(http(daemon, "PUT", "/2015-03-31/functions/%s/configuration" % name,
                           "garbage"), 400, "InvalidRequestContentException")
    assert_http_error(http(daemon, "PUT", "/2015-03-31/functions/%s/code" % name,
                           json.dumps({"ZipFile": "QUJD"})), 400,
                      "InvalidParameterValueException")
    assert_http_error(http(daemon, "PUT", "/2017-10-31/functions/%s/concurrency" % name, "{"), 400,
                      "InvalidRequestContentException")
    assert_http_error(http(daemon, "GET", "/2015-03-31/functions/bad%20name"), 400,
                      "InvalidParameterValueException", "functionName")


def test_bad_packages(lam):
    name = uniq()
    assert_client_error(lambda: create(lam, name, code=b"definitely not a zip"), 400,
                        "InvalidParameterValueException")
    slip = zip_files({"bootstrap": ("#!/bin/sh\n", 0o755), "../../evil": ("x", 0o644)})
    assert_client_error(lambda: create(lam, name, code=slip), 400,
                        "InvalidParameterValueException")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("/etc/evil", "x")
    assert_client_error(lambda: create(lam, name, code=buf.getvalue()), 400,
                        "InvalidParameterValueException")
    assert_client_error(lambda: lam.get_function(FunctionName=name), 404,
                        "ResourceNotFoundException")
    # An existing function keeps its code when an update brings a bad package.
    good = create(lam, name)
    assert_client_error(lambda: lam.update_function_code(FunctionName=name, ZipFile=slip), 400,
                        "InvalidParameterValueException")
    assert lam.get_function_configuration(FunctionName=name)["CodeSha256"] == good["CodeSha256"]


def test_concurrent_creates_of_one_name(daemon):
    """Two creates racing for a name: exactly one wins, the other gets 409."""
    name = uniq()
    big = zip_files({"bootstrap": ("#!/bin/sh\n", 0o755),
                     "blob": (os.urandom(4 << 20), 0o644)})
    results = []

    def go():
        client = daemon.boto3()
        try:
            create(client, name, code=big)
            results.append("ok")
        except ClientError as e:
            results.append((e.response["ResponseMetadata"]["HTTPStatusCode"],
                            e.response["Error"]["Code"], e.response["Error"]["Message"]))

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1, results
    for r in results:
        if r != "ok":
            assert r == (409, "ResourceConflictException", "Function already exist: " + name)


def test_concurrent_updates_conflict(daemon):
    """Writes racing on one function: each either succeeds or gets Lambda's 409."""
    name = uniq()
    lam = daemon.boto3()
    create(lam, name)
    codes = [zip_files({"bootstrap": ("#!/bin/sh\n", 0o755), "blob": (os.urandom(3 << 20), 0o644)})
             for _ in range(4)]
    results = []

    def go(code):
        client = daemon.boto3()
        try:
            results.append(client.update_function_code(FunctionName=name,
                                                        ZipFile=code)["CodeSha256"])
        except ClientError as e:
            results.append((e.response["ResponseMetadata"]["HTTPStatusCode"],
                            e.response["Error"]["Code"], e.response["Error"]["Message"]))

    threads = [threading.Thread(target=go, args=(c,)) for c in codes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in results if isinstance(r, str)]
    assert ok, results
    for r in results:
        if not isinstance(r, str):
            assert r == (409, "ResourceConflictException",
                         "The operation cannot be performed at this time. An update is in "
                         "progress for resource: " + arn(name)), r
    final = lam.get_function_configuration(FunctionName=name)["CodeSha256"]
    assert final in ok


# ---------------------------------------------------------------------------------------------
# concurrency, account settings, tags


def test_concurrency_and_account_settings(fresh_daemon):
    dm = fresh_daemon(["--account-concurrency", "300"])
    lam = dm.boto3()
    s = lam.get_account_settings()
    assert s["AccountLimit"] == {"TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000,
                                 "CodeSizeZipped": 52428800, "ConcurrentExecutions": 300,
                                 "UnreservedConcurrentExecutions": 300}
    assert s["AccountUsage"] == {"TotalCodeSize": 0, "FunctionCount": 0}
    a, b = uniq("a"), uniq("b")
    ca, cb = create(lam, a), create(lam, b)

    assert lam.get_function_concurrency(FunctionName=a).get("ReservedConcurrentExecutions") is None
    r = lam.put_function_concurrency(FunctionName=a, ReservedConcurrentExecutions=150)
    assert r["ReservedConcurrentExecutions"] == 150
    assert lam.get_function_concurrency(FunctionName=a)["ReservedConcurrentExecutions"] == 150
    assert lam.get_function(FunctionName=a)["Concurrency"] == {"ReservedConcurrentExecutions": 150}
    s = lam.get_account_settings()
    assert s["AccountLimit"]["UnreservedConcurrentExecutions"] == 150
    assert s["AccountUsage"] == {"TotalCodeSize": ca["CodeSize"] + cb["CodeSize"],
                                 "FunctionCount": 2}

    # 300 - 150 - 51 < 100: refused; 50 leaves exactly 100: accepted.
    assert_client_error(
        lambda: lam.put_function_concurrency(FunctionName=b, ReservedConcurrentExecutions=51),
        400, "InvalidParameterValueException",
        "Specified ReservedConcurrentExecutions for function decreases account's "
        "UnreservedConcurrentExecution below its minimum value of [100].")
    lam.put_function_concurrency(FunctionName=b, ReservedConcurrentExecutions=50)
    # Raising a's own reservation counts its old value only once.
    assert_client_error(
        lambda: lam.put_function_concurrency(FunctionName=a, ReservedConcurrentExecutions=151),
        400, "InvalidParameterValueException", "minimum value of [100]")
    lam.put_function_concurrency(FunctionName=a, ReservedConcurrentExecutions=150)
    lam.put_function_concurrency(FunctionName=a, ReservedConcurrentExecutions=0)
    assert lam.get_function_concurrency(FunctionName=a)["ReservedConcurrentExecutions"] == 0
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 250

    r = lam.delete_function_concurrency(FunctionName=b)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=b)
    assert "Concurrency" not in lam.get_function(FunctionName=b)
    raw = raw_client(dm)
    assert_client_error(lambda: raw.put_function_concurrency(FunctionName=b,
                                                             ReservedConcurrentExecutions=-1),
                        400, "InvalidParameterValueException")

    # The aws CLI sees the same.
    _, out, _ = dm.aws("lambda", "put-function-concurrency", "--function-name", b,
                       "--reserved-concurrent-executions", "20")
    assert json.loads(out) == {"ReservedConcurrentExecutions": 20}
    _, out, _ = dm.aws("lambda", "get-function-concurrency", "--function-name", b)
    assert json.loads(out) == {"ReservedConcurrentExecutions": 20}
    _, out, _ = dm.aws("lambda", "get-account-settings")
    assert json.loads(out)["AccountLimit"]["UnreservedConcurrentExecutions"] == 280
    dm.aws("lambda", "delete-function-concurrency", "--function-name", b)
    # Deleting a function frees its reservation.
    lam.put_function_concurrency(FunctionName=b, ReservedConcurrentExecutions=200)
    lam.delete_function(FunctionName=b)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 300


def test_tags(lam):
    name = uniq()
    create(lam, name, Tags={"a": "1"})
    lam.tag_resource(Resource=arn(name), Tags={"b": "2", "c": "3"})
    assert lam.list_tags(Resource=arn(name))["Tags"] == {"a": "1", "b": "2", "c": "3"}
    lam.untag_resource(Resource=arn(name), TagKeys=["a", "c"])
    assert lam.list_tags(Resource=arn(name))["Tags"] == {"b": "2"}
    assert lam.get_function(FunctionName=name)["Tags"] == {"b": "2"}
    assert_client_error(lambda: lam.list_tags(Resource=arn("nope-" + name)), 404,
                        "ResourceNotFoundException")
    raw = raw_client_for(lam)
    assert_client_error(lambda: raw.list_tags(Resource=name), 400,
                        "InvalidParameterValueException")


# ---------------------------------------------------------------------------------------------
# durability


def test_restart_keeps_functions(fresh_daemon):
    dm = fresh_daemon()
    lam = dm.boto3()
    a, b = uniq("keep"), uniq("keep")
    create(lam, a, MemorySize=512, Environment={"Variables": {"KEY": "v" * 10, "K2": ""}},
           Tags={"t": "1"}, Description="kept")
    create(lam, b)
    code_b = pkg("b-v2")
    lam.update_function_code(FunctionName=b, ZipFile=code_b)
    lam.put_function_concurrency(FunctionName=a, ReservedConcurrentExecutions=7)
    gone = uniq("gone")
    create(lam, gone)
    lam.delete_function(FunctionName=gone)
    before = {n: lam.get_function(FunctionName=n) for n in (a, b)}
    listed = lam.list_functions()["Functions"]
    dm.stop()

    dm2 = Daemon(dm.data_dir)
    dm2.start()
    try:
        lam2 = dm2.boto3()
        for n in (a, b):
            got = lam2.get_function(FunctionName=n)
            for k in ("Configuration", "Tags", "Concurrency"):
                assert got.get(k) == before[n].get(k), k
        assert lam2.list_functions()["Functions"] == listed
        assert_client_error(lambda: lam2.get_function(FunctionName=gone), 404,
                            "ResourceNotFoundException")
        loc = lam2.get_function(FunctionName=b)["Code"]["Location"]
        with urllib.request.urlopen(loc, timeout=30) as resp:
            assert resp.read() == code_b
        s = lam2.get_account_settings()
        assert s["AccountLimit"]["UnreservedConcurrentExecutions"] == 993
        assert s["AccountUsage"]["FunctionCount"] == 2
        # Still writable after the restart.
        r = lam2.update_function_configuration(FunctionName=a, Timeout=9)
        assert r["Timeout"] == 9 and r["Environment"] == before[a]["Configuration"]["Environment"]
    finally:
        dm2.stop()
