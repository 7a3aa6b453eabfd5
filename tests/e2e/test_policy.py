"""
test_policy.py - key policies end to end (src/policy.c, src/authz.c, src/audit.c): keys created
with `nimbus keys create --policy FILE`, then used by boto3, the aws CLI 2.9 and the nimbus CLI.

Covers: an Allow of lambda:InvokeFunction on function:app-* (invokes app-x, not other-y, may not
DeleteFunction; 403 AccessDeniedException with IAM's message), the lambda:Invoke* wildcard, an
explicit Deny beating an Allow of lambda:* on *, qualified resources (function:app:prod is not
function:app), NotAction, Event invocations authorized like synchronous ones, denied requests in
`nimbus audit` (key id, action, resource), an unsigned request recorded as refused, and the root
key allowed everything.
"""
import json
import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import AWS, NIMBUS, ROLE, zip_files
from helpers import uniq

REGION, ACCOUNT = "us-east-1", "000000000000"

APP = """
import os
def handler(event, context):
    return {"fn": context.function_name, "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"]}
"""


def arn(name, qualifier=None):
    a = "arn:aws:lambda:%s:%s:function:%s" % (REGION, ACCOUNT, name)
    return a + ":" + qualifier if qualifier else a


def denial(kid, action, resource, explicit=False):
    return ("User: arn:aws:iam::%s:user/%s is not authorized to perform: %s on resource: %s "
            "%s" % (ACCOUNT, kid, action, resource,
                            "with an explicit deny in an identity-based policy" if explicit else
                            "because no identity-based policy allows the %s action" % action))


class Key:
    """An access key made by `nimbus keys create --policy FILE`, with its clients."""

    def __init__(self, daemon, tmp_path, statements):
        self.daemon = daemon
        path = tmp_path / ("policy-%s.json" % uniq("p"))
        path.write_text(json.dumps({"Version": "2012-10-17", "Statement": statements}))
        out = daemon.cli("keys", "create", "--policy", str(path), check=True).stdout
        creds = dict(line.split(" = ") for line in out.strip().splitlines())
        self.id, self.secret = creds["aws_access_key_id"], creds["aws_secret_access_key"]
        self.lam = daemon.boto3(aws_access_key_id=self.id, aws_secret_access_key=self.secret)

    def env(self):
        e = self.daemon.env()
        e["AWS_ACCESS_KEY_ID"], e["AWS_SECRET_ACCESS_KEY"] = self.id, self.secret
        return e

    def aws(self, *args):
        return subprocess.run([AWS, "--endpoint-url", self.daemon.endpoint, "--output", "json"] +
                              list(args), env=self.env(), capture_output=True, text=True,
                              timeout=120)

    def cli(self, *args):
        return subprocess.run([NIMBUS] + list(args), env=self.env(), capture_output=True,
                              text=True, timeout=120)


def error_of(fn):
    with pytest.raises(ClientError) as ei:
        fn()
    r = ei.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def invoke_ok(lam, name, **kw):
    r = lam.invoke(FunctionName=name, Payload=b"{}", **kw)
    assert r["StatusCode"] in (200, 202, 204), r
    return r


@pytest.fixture(scope="module")
def fns(daemon):
    """app-x, app-web (versions 1 and 2, alias prod -> 1), other-y, all made with the root key."""
    lam = daemon.boto3()
    names = {"x": "app-x", "web": "app-web", "other": "other-y"}
    for n in names.values():
        lam.create_function(FunctionName=n, Runtime="python3.11", Role=ROLE,
                            Handler="app.handler", Timeout=30,
                            Code={"ZipFile": zip_files({"app.py": (APP, 0o644)})})
    lam.publish_version(FunctionName="app-web")
    lam.update_function_configuration(FunctionName="app-web", Timeout=31)
    lam.publish_version(FunctionName="app-web")
    lam.create_alias(FunctionName="app-web", Name="prod", FunctionVersion="1")
    return names


def test_invoke_allowed_on_app_star_only(daemon, fns, tmp_path):
    key = Key(daemon, tmp_path, [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                                  "Resource": arn("app-*")}])
    body = json.loads(invoke_ok(key.lam, "app-x")["Payload"].read())
    assert body["fn"] == "app-x"
    # app-* also spans a qualifier (the resource part matches as a whole)
    assert invoke_ok(key.lam, "app-web", Qualifier="prod")["ExecutedVersion"] == "1"
    st, code, msg = error_of(lambda: key.lam.invoke(FunctionName="other-y", Payload=b"{}"))
    assert (st, code) == (403, "AccessDeniedException")
    assert msg == denial(key.id, "lambda:InvokeFunction", arn("other-y"))
    st, code, msg = error_of(lambda: key.lam.delete_function(FunctionName="app-x"))
    assert (st, code) == (403, "AccessDeniedException")
    assert msg == denial(key.id, "lambda:DeleteFunction", arn("app-x"))
    assert daemon.boto3().get_function(FunctionName="app-x")  # still there
    # the aws CLI and the nimbus CLI see the same decisions
    p = key.aws("lambda", "invoke", "--function-name", "app-x", "/dev/null")
    assert p.returncode == 0, p.stderr
    p = key.aws("lambda", "invoke", "--function-name", "other-y", "/dev/null")
    assert p.returncode != 0 and "AccessDeniedException" in p.stderr
    assert denial(key.id, "lambda:InvokeFunction", arn("other-y")) in p.stderr
    p = key.cli("invoke", "app-x")
    assert p.returncode == 0 and json.loads(p.stdout)["fn"] == "app-x", p.stderr
    p = key.cli("invoke", "other-y")
    assert p.returncode == 3 and "AccessDeniedException" in p.stderr, (p.stdout, p.stderr)
    p = key.cli("rm", "app-x")
    assert p.returncode == 3 and "AccessDeniedException" in p.stderr


def test_event_invocations_are_authorized_the_same_way(daemon, fns, tmp_path):
    key = Key(daemon, tmp_path, [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                                  "Resource": arn("app-*")}])
    r = invoke_ok(key.lam, "app-x", InvocationType="Event")
    assert r["StatusCode"] == 202
    st, code, msg = error_of(lambda: key.lam.invoke(FunctionName="other-y",
                                                    InvocationType="Event", Payload=b"{}"))
    assert (st, code) == (403, "AccessDeniedException")
    assert msg == denial(key.id, "lambda:InvokeFunction", arn("other-y"))
    p = key.cli("invoke", "--event", "other-y")
    assert p.returncode == 3 and "AccessDeniedException" in p.stderr
    p = key.aws("lambda", "invoke", "--function-name", "other-y", "--invocation-type", "Event",
                "/dev/null")
    assert p.returncode != 0 and "AccessDeniedException" in p.stderr
    # DryRun too: it checks permissions and nothing else
    st, code, _ = error_of(lambda: key.lam.invoke(FunctionName="other-y",
                                                  InvocationType="DryRun"))
    assert (st, code) == (403, "AccessDeniedException")
    assert invoke_ok(key.lam, "app-x", InvocationType="DryRun")["StatusCode"] == 204


def test_invoke_star_wildcard(daemon, fns, tmp_path):
    key = Key(daemon, tmp_path, [{"Effect": "Allow", "Action": "lambda:Invoke*",
                                  "Resource": "*"}])
    invoke_ok(key.lam, "other-y")
    invoke_ok(key.lam, "app-web", Qualifier="2")
    # Invoke* does not cover GetFunction, and the case of the action does not matter
    st, code, msg = error_of(lambda: key.lam.get_function(FunctionName="other-y"))
    assert (st, code) == (403, "AccessDeniedException")
    assert msg == denial(key.id, "lambda:GetFunction", arn("other-y"))
    upper = Key(daemon, tmp_path, [{"Effect": "Allow", "Action": "LAMBDA:invoke*",
                                    "Resource": "*"}])
    invoke_ok(upper.lam, "other-y")


def test_explicit_deny_beats_allow(daemon, fns, tmp_path):
    key = Key(daemon, tmp_path, [
        {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"},
        {"Sid": "KeepOther", "Effect": "Deny", "Action": "lambda:DeleteFunction",
         "Resource": arn("other-y")}])
    lam = key.lam
    name = uniq("app-tmp")
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                        Handler="app.handler", Code={"ZipFile": zip_files({"app.py": (APP,
                                                                                      0o644)})})
    lam.delete_function(FunctionName=name)  # Allow lambda:* covers it
    st, code, msg = error_of(lambda: lam.delete_function(FunctionName="other-y"))
    assert (st, code) == (403, "AccessDeniedException")
    assert msg == denial(key.id, "lambda:DeleteFunction", arn("other-y"), explicit=True)
    # the deny names the unqualified ARN: deleting a version is another resource
    lam.get_function(FunctionName="other-y")
    invoke_ok(lam, "other-y")
    p = key.aws("lambda", "delete-function", "--function-name", "other-y")
    assert p.returncode != 0 and "explicit deny" in p.stderr


def test_qualified_resources(daemon, fns, tmp_path):
    key = Key(daemon, tmp_path, [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                                  "Resource": arn("app-web", "prod")}])
    assert invoke_ok(key.lam, "app-web", Qualifier="prod")["ExecutedVersion"] == "1"
    assert invoke_ok(key.lam, "app-web:prod")["ExecutedVersion"] == "1"
    for kw, res in (({}, arn("app-web")), ({"Qualifier": "1"}, arn("app-web", "1")),
                    ({"Qualifier": "$LATEST"}, arn("app-web", "$LATEST"))):
        st, code, msg = error_of(lambda: key.lam.invoke(FunctionName="app-web", Payload=b"{}",
                                                        **kw))
        assert (st, code) == (403, "AccessDeniedException"), kw
        assert msg == denial(key.id, "lambda:InvokeFunction", res), kw
    # and the other way round: function:app-web covers only unqualified requests
    plain = Key(daemon, tmp_path, [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                                    "Resource": arn("app-web")}])
    invoke_ok(plain.lam, "app-web")
    st, code, _ = error_of(lambda: plain.lam.invoke(FunctionName="app-web", Qualifier="prod",
                                                    Payload=b"{}"))
    assert (st, code) == (403, "AccessDeniedException")
    both = Key(daemon, tmp_path, [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                                   "Resource": [arn("app-web"), arn("app-web", "*")]}])
    invoke_ok(both.lam, "app-web")
    invoke_ok(both.lam, "app-web", Qualifier="2")


def test_not_action(daemon, fns, tmp_path):
    key = Key(daemon, tmp_path, [
        {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"},
        {"Effect": "Deny", "NotAction": ["lambda:Get*", "lambda:List*"],
         "Resource": arn("app-*")}])
    lam = key.lam
    assert lam.get_function(FunctionName="app-x")["Configuration"]["FunctionName"] == "app-x"
    assert lam.list_versions_by_function(FunctionName="app-web")["Versions"]
    for call, action in ((lambda: lam.invoke(FunctionName="app-x", Payload=b"{}"),
                          "lambda:InvokeFunction"),
                         (lambda: lam.update_function_configuration(FunctionName="app-x",
                                                                    Description="no"),
                          "lambda:UpdateFunctionConfiguration")):
        st, code, msg = error_of(call)
        assert (st, code) == (403, "AccessDeniedException")
        assert msg == denial(key.id, action, arn("app-x"), explicit=True)
    invoke_ok(lam, "other-y")  # outside the Deny's resources


def test_denied_and_refused_requests_are_audited(daemon, fns, tmp_path):
    key = Key(daemon, tmp_path, [{"Effect": "Allow", "Action": "lambda:GetFunction",
                                  "Resource": "*"}])
    with pytest.raises(ClientError) as ei:
        key.lam.delete_function(FunctionName="app-x", Qualifier="1")
    denied_rid = ei.value.response["ResponseMetadata"]["RequestId"]
    status, headers, _ = daemon.request("DELETE", "/2015-03-31/functions/app-x", sign=False)
    assert status == 403 and headers["x-amzn-ErrorType"].startswith(
        "MissingAuthenticationTokenException")
    refused_rid = headers["x-amzn-RequestId"]
    recs = [json.loads(line) for line in
            daemon.cli("audit", "--json", check=True).stdout.splitlines() if line.strip()]
    by_rid = {r["requestId"]: r for r in recs}
    d = by_rid[denied_rid]
    assert (d["keyId"], d["action"], d["resource"], d["result"], d["status"], d["error"]) == (
        key.id, "lambda:DeleteFunction", arn("app-x", "1"), "denied", 403,
        "AccessDeniedException")
    r = by_rid[refused_rid]
    assert (r["keyId"], r["result"], r["status"], r["error"]) == (
        "-", "refused", 403, "MissingAuthenticationTokenException")
    assert r["action"] == "lambda:DeleteFunction" and r["resource"] == arn("app-x")
    # the human form names the key, the action and the resource of the denial
    lines = [ln for ln in daemon.cli("audit", check=True).stdout.splitlines()
             if key.id in ln and "denied" in ln]
    assert lines and "lambda:DeleteFunction" in lines[-1] and arn("app-x", "1") in lines[-1]
    # the function is untouched
    assert daemon.boto3().get_function(FunctionName="app-x", Qualifier="$LATEST")


def test_root_key_can_do_everything(daemon, fns):
    lam = daemon.boto3()
    name = uniq("root")
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                        Handler="app.handler", Publish=True,
                        Code={"ZipFile": zip_files({"app.py": (APP, 0o644)})})
    lam.create_alias(FunctionName=name, Name="a", FunctionVersion="1")
    invoke_ok(lam, name, Qualifier="a")
    invoke_ok(lam, name, InvocationType="Event")
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)
    lam.tag_resource(Resource=arn(name), Tags={"k": "v"})
    lam.delete_alias(FunctionName=name, Name="a")
    lam.delete_function(FunctionName=name, Qualifier="1")
    lam.delete_function(FunctionName=name)
    assert daemon.cli("keys", "ls", check=True).returncode == 0
    _, out, _ = daemon.aws("lambda", "list-functions")
    assert {"app-x", "other-y"} <= {f["FunctionName"] for f in json.loads(out)["Functions"]}
    assert daemon.cli("audit", "--limit", "1", check=True).returncode == 0
