"""
jssdk.py - the AWS SDK for JavaScript v3 as an e2e client: runs tests/js/sdk.mjs under Node with a
daemon's environment (Daemon.env(): endpoint, region, credentials) and gives back what the SDK
parsed. The `js` fixture in conftest.py hands a JsSdk for the module's daemon to any test.

    out = js.call("GetFunction", FunctionName=name)          # the output, or raises JsCallError
    err = js.error("GetFunction", FunctionName="nope")       # the error, or fails the test
    res = js.run([sdk_call("CreateFunction", ...), sdk_call("Invoke", ...)])  # one node process

Helpers for the assertions: arn(name[, qualifier]), status(output) (its HTTP status) and
assert_error(err, ExceptionName, http_status[, message part]).

Python values cross as JSON: bytes <-> {"$b64"} (returned blobs come back as bytes), datetime
<-> {"$date"}. Lowercase keyword arguments of call()/error() are harness options (client,
paginator, waiter, config, metadata; see the header of tests/js/sdk.mjs), PascalCase ones the
operation's input: a new operation or service needs no code here, e.g.
js.call("PublishVersion", FunctionName=n) or js.call("SendMessage", client="SQS", ...).
"""
import base64
import datetime
import json
import os
import subprocess

import pytest

from conftest import ROOT

JS_DIR = os.path.join(ROOT, "tests", "js")
HARNESS = os.path.join(JS_DIR, "sdk.mjs")
NODE = "/usr/bin/node"
OPTIONS = ("client", "paginator", "waiter", "config", "metadata", "maxPages")
REGION, ACCOUNT = "us-east-1", "000000000000"


class JsCallError(AssertionError):
    """A call the test expected to succeed answered an error; .error is what the SDK parsed."""

    def __init__(self, op, error):
        super().__init__("JS SDK %s failed: %s" % (op, json.dumps(error)))
        self.error = error


def missing_reason():
    """Why the harness cannot run here, or None."""
    if not os.access(NODE, os.X_OK):
        return "%s not found (scripts/deps.sh installs nodejs)" % NODE
    for pkg in ("client-lambda", "client-sqs"):
        if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "@aws-sdk", pkg)):
            return ("tests/js/node_modules/@aws-sdk/%s is missing: run scripts/deps.sh "
                    "(npm ci --prefix tests/js)" % pkg)
    return None


def require():
    """Skips the test when the SDK is not installed, except under CI (CI=true), which runs
    scripts/deps.sh first and where a skip would hide the missing install step."""
    reason = missing_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def to_js(v):
    if isinstance(v, (bytes, bytearray)):
        return {"$b64": base64.b64encode(v).decode()}
    if isinstance(v, datetime.datetime):
        return {"$date": v.isoformat()}
    if isinstance(v, dict):
        return {k: to_js(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [to_js(x) for x in v]
    return v


def from_js(v):
    if isinstance(v, dict):
        if "$b64" in v and set(v) <= {"$b64", "$text"}:
            return base64.b64decode(v["$b64"])
        if set(v) == {"$date"}:
            return datetime.datetime.fromisoformat(v["$date"].replace("Z", "+00:00"))
        return {k: from_js(x) for k, x in v.items()}
    if isinstance(v, list):
        return [from_js(x) for x in v]
    return v


def sdk_call(op, **kw):
    """One call's JSON for JsSdk.run(): keywords named in OPTIONS are harness options, the rest
    the operation's input."""
    c = {"op": op, "input": {k: v for k, v in kw.items() if k not in OPTIONS}}
    c.update({k: v for k, v in kw.items() if k in OPTIONS})
    return c


class JsSdk:
    def __init__(self, daemon, env=None):
        self.daemon = daemon
        self.extra_env = dict(env or {})

    def run(self, calls, timeout=300):
        """Runs the calls in order in one node process; returns one dict per call,
        {"output": {...}} or {"error": {...}}, with blobs as bytes and dates as datetime."""
        env = self.daemon.env()
        env.update(self.extra_env)
        p = subprocess.run([NODE, HARNESS], input=json.dumps(to_js(list(calls))), env=env,
                           capture_output=True, text=True, timeout=timeout, cwd=JS_DIR)
        lines = p.stdout.splitlines()
        if p.returncode != 0 or len(lines) != len(calls):
            raise AssertionError("sdk.mjs exited %d with %d of %d results:\n%s\n%s" %
                                 (p.returncode, len(lines), len(calls), p.stdout, p.stderr))
        return [from_js(json.loads(line)) for line in lines]

    def call(self, op, **kw):
        """Runs one call; returns its output (with "$metadata": {"httpStatusCode"}); raises
        JsCallError if it failed."""
        (r,) = self.run([sdk_call(op, **kw)])
        if "error" in r:
            raise JsCallError(op, r["error"])
        return r["output"]

    def error(self, op, **kw):
        """Runs one call that must fail; returns the error the SDK parsed (name, message, $fault,
        $metadata.httpStatusCode and the modelled members)."""
        (r,) = self.run([sdk_call(op, **kw)])
        assert "error" in r, "JS SDK %s succeeded, expected an error: %s" % (op, r)
        return r["error"]


def arn(name, qualifier=None):
    """The function's ARN, qualified when qualifier is given."""
    a = "arn:aws:lambda:%s:%s:function:%s" % (REGION, ACCOUNT, name)
    return a + ":" + qualifier if qualifier else a


def status(doc):
    """The HTTP status of an output (a call made with its $metadata)."""
    return doc["$metadata"]["httpStatusCode"]


def assert_error(err, name, http_status, message=None):
    """Asserts err (from JsSdk.error) is a client fault of class name with that status (and,
    when given, message in its message); returns err."""
    assert err["name"] == name, err
    assert err["$fault"] == "client", err
    assert err["$metadata"]["httpStatusCode"] == http_status, err
    if message is not None:
        assert message in err["message"], err
    return err
