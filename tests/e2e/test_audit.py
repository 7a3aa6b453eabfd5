"""
test_audit.py - the audit log end to end: control-plane changes made with boto3 appear in
`nimbus audit` (action, resource, result, status, the request id boto3 saw), failed changes keep
their error status, reads and invokes do not appear, `--limit` keeps the newest records, the
/nimbus/v1/audit endpoint pages with nextToken, and DATA_DIR/audit.log is mode 0600, opened
O_APPEND by the daemon, and keeps its records across a restart.
"""
import json
import os
import subprocess
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import NIMBUS, ROLE, Daemon, free_port, zip_files

ACCOUNT = "000000000000"
REGION = "us-east-1"


def arn(name, qualifier=None):
    a = "arn:aws:lambda:%s:%s:function:%s" % (REGION, ACCOUNT, name)
    return a + ":" + qualifier if qualifier else a


def pkg(text="v1"):
    return zip_files({"bootstrap": ("#!/bin/sh\n# %s\nexit 0\n" % text, 0o755)})


def create(lam, name):
    """CreateFunction of a small package (never run); returns the response."""
    return lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=ROLE,
                               Handler="h", Code={"ZipFile": pkg()})


def uniq(prefix="au"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def audit_records(dm, *args):
    """Records printed by `nimbus audit --json ARGS`."""
    p = dm.cli("audit", "--json", *args, check=True)
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def rid(resp):
    return resp["ResponseMetadata"]["RequestId"]


def test_changes_are_audited_reads_are_not(fresh_daemon):
    dm = fresh_daemon()
    lam = dm.boto3()
    name = uniq()
    created = create(lam, name)
    # reads: none of these may be audited
    lam.get_function(FunctionName=name)
    lam.get_function_configuration(FunctionName=name)
    lam.list_functions()
    lam.list_tags(Resource=arn(name))
    lam.get_account_settings()
    dm.cli("ls", check=True)
    # changes
    upd = lam.update_function_configuration(FunctionName=name, Description="d")
    tag = lam.tag_resource(Resource=arn(name), Tags={"team": "a"})
    conc = lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName=uniq("missing"))
    missing_rid = e.value.response["ResponseMetadata"]["RequestId"]
    deleted = lam.delete_function(FunctionName=arn(name))

    recs = audit_records(dm)
    got = [(r["action"], r["resource"], r["result"], r["status"]) for r in recs]
    assert got[0] == ("lambda:CreateFunction", "*", "allowed", 201)
    assert got[1:4] == [
        ("lambda:UpdateFunctionConfiguration", arn(name), "allowed", 200),
        ("lambda:TagResource", arn(name), "allowed", 204),
        ("lambda:PutFunctionConcurrency", arn(name), "allowed", 200),
    ]
    assert got[4][0] == "lambda:DeleteFunction" and got[4][2:] == ("allowed", 404)
    assert got[5] == ("lambda:DeleteFunction", arn(name), "allowed", 204)
    assert len(recs) == 6, got
    assert [r["requestId"] for r in recs] == [rid(created), rid(upd), rid(tag), rid(conc),
                                              missing_rid, rid(deleted)]
    assert recs[4]["error"] == "ResourceNotFoundException"
    assert "error" not in recs[0]
    for r in recs:
        assert r["keyId"] == dm.key_id  # the root key of the credentials file
        assert r["source"].startswith("127.0.0.1:")
        assert r["time"].endswith("Z") and len(r["time"]) == 24

    # the human form carries the same facts, one line per record
    out = dm.cli("audit", check=True).stdout.splitlines()
    assert len(out) == 6
    assert "lambda:TagResource" in out[2] and arn(name) in out[2] and " allowed 204" in out[2]
    assert "allowed 404 ResourceNotFoundException" in out[4]
    # --limit keeps the newest
    last = audit_records(dm, "--limit", "2")
    assert [r["requestId"] for r in last] == [missing_rid, rid(deleted)]
    # --since in the future: nothing
    assert audit_records(dm, "--since", "99999999999999") == []


def test_invoke_is_not_audited(fresh_daemon):
    dm = fresh_daemon()
    lam = dm.boto3()
    name = uniq("inv")
    create(lam, name)
    r = lam.invoke(FunctionName=name, InvocationType="DryRun")
    assert r["StatusCode"] == 204
    recs = audit_records(dm)
    assert [r["action"] for r in recs] == ["lambda:CreateFunction"]


def test_endpoint_pages(fresh_daemon):
    dm = fresh_daemon()
    lam = dm.boto3()
    name = uniq("pg")
    create(lam, name)
    for i in range(4):
        lam.tag_resource(Resource=arn(name), Tags={"k%d" % i: "v"})
    seen, token = [], None
    for _ in range(10):
        path = "/nimbus/v1/audit?since=0&limit=2" + ("&nextToken=" + token if token else "")
        status, _h, body = dm.request("GET", path)
        assert status == 200, body
        page = json.loads(body)
        assert len(page["events"]) <= 2
        seen += page["events"]
        if page["nextToken"] == token:
            break
        token = page["nextToken"]
    assert [r["action"] for r in seen] == ["lambda:CreateFunction"] + ["lambda:TagResource"] * 4
    status, h, body = dm.request("GET", "/nimbus/v1/audit?limit=0")
    assert status == 400 and h["x-amzn-errortype"] == "InvalidParameterValueException"
    status, h, body = dm.request("GET", "/nimbus/v1/audit?nextToken=abc")
    assert status == 400


def test_file_is_append_only_and_survives_restart(fresh_daemon):
    dm = fresh_daemon()
    lam = dm.boto3()
    a = uniq("keep")
    create(lam, a)
    path = os.path.join(dm.data_dir, "audit.log")
    assert os.stat(path).st_mode & 0o7777 == 0o600
    # the daemon's descriptor for the log is O_APPEND (flags in /proc/PID/fdinfo are octal)
    fd_dir = "/proc/%d/fd" % dm.proc.pid
    flags = None
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, fd)) == os.path.realpath(path):
                with open("/proc/%d/fdinfo/%s" % (dm.proc.pid, fd)) as f:
                    for line in f:
                        if line.startswith("flags:"):
                            flags = int(line.split()[1], 8)
        except OSError:
            continue
    assert flags is not None, "the daemon does not hold audit.log open"
    assert flags & os.O_APPEND
    assert flags & os.O_ACCMODE == os.O_WRONLY
    with open(path, "rb") as f:
        before = f.read()
    assert before.count(b"\n") == 1
    dm.stop()

    dm2 = Daemon(dm.data_dir).start()
    try:
        lam2 = dm2.boto3()
        lam2.delete_function(FunctionName=a)
        with open(path, "rb") as f:
            after = f.read()
        assert after.startswith(before)  # the old record is untouched, the new one follows
        recs = audit_records(dm2)
        assert [(r["action"], r["status"]) for r in recs] == [
            ("lambda:CreateFunction", 201), ("lambda:DeleteFunction", 204)]
        assert os.stat(path).st_mode & 0o7777 == 0o600
    finally:
        dm2.stop()


@pytest.mark.parametrize("args,message", [
    (["audit", "--since", "yesterday"], "invalid --since 'yesterday'"),
    (["audit", "extra"], "too many arguments"),
    (["audit", "--limit", "0"], "--limit must be an integer"),
    (["audit", "--bogus"], "unknown option '--bogus'"),
])
def test_cli_usage_errors(nimbus_bin, args, message):
    p = subprocess.run([NIMBUS] + args, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, (args, p.stderr)
    assert "usage: nimbus audit" in p.stderr and "error: " + message in p.stderr


def test_cli_help_and_unreachable(nimbus_bin):
    p = subprocess.run([NIMBUS, "audit", "--help"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "--since WHEN" in p.stdout and "--limit N" in p.stdout
    p = subprocess.run([NIMBUS, "--help"], capture_output=True, text=True, timeout=60)
    assert "audit" in p.stdout
    url = "http://127.0.0.1:%d" % free_port()
    p = subprocess.run([NIMBUS, "audit", "--endpoint", url], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 3 and p.stderr.startswith("error: cannot reach nimbus at %s" % url)
