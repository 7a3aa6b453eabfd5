"""
test_http_triggers.py - function URLs and HTTP routes on the public listener: payload format 2.0
events (headers, cookies, query strings, path parameters, base64 bodies), API Gateway's response
mapping, errors (502/504/429), CORS, AWS_IAM URLs, the URL config API through boto3 and aws CLI,
routes through the nimbus CLI, wake from zero and persistence across a restart.

HTTP requests to the public listener are made with Python's http.client and curl, as a client of a
function URL would; the API listener is driven only through the Daemon helpers.
"""
import base64
import http.client
import json
import os
import re
import shutil
import subprocess
import urllib.parse

import pytest

from conftest import zip_dir
from helpers import metrics, uniq, wait_for

FUNCS = os.path.join(os.path.dirname(__file__), "functions")
ROLE = "arn:aws:iam::000000000000:role/lambda-role"
CURL = shutil.which("curl") or "/usr/bin/curl"


def deploy(lam, name, **kw):
    kw.setdefault("Timeout", 30)
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                        Handler="http_fn.handler",
                        Code={"ZipFile": zip_dir(os.path.join(FUNCS, "py_http"))}, **kw)


def host_of(url):
    """Host header (with port) of a FunctionUrl."""
    return urllib.parse.urlsplit(url).netloc


def send(daemon, method, path, body=b"", headers=(), host=None, timeout=60):
    """One request to the public listener; headers is a list of (name, value) pairs (repeats
    allowed). Returns (status, [(name, value)...] lower-cased names, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", daemon.public_port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host or "127.0.0.1:%d" % daemon.public_port)
        for k, v in headers:
            conn.putheader(k, v)
        if body or method in ("POST", "PUT"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body if body else None)
        r = conn.getresponse()
        data = r.read()
        return r.status, [(k.lower(), v) for k, v in r.getheaders()], data
    finally:
        conn.close()


def hget(headers, name):
    vals = [v for k, v in headers if k == name]
    return vals[0] if vals else None


@pytest.fixture(scope="module")
def fn(daemon):
    """A function with a NONE URL (CORS on) and its URL config."""
    lam = daemon.boto3()
    name = uniq("http")
    deploy(lam, name)
    cfg = lam.create_function_url_config(
        FunctionName=name, AuthType="NONE",
        Cors={"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"],
              "AllowHeaders": ["x-custom"], "ExposeHeaders": ["x-multi"], "MaxAge": 300,
              "AllowCredentials": True})
    return name, cfg


def url_get(daemon, cfg, path="/", **kw):
    return send(daemon, kw.pop("method", "GET"), path, host=host_of(cfg["FunctionUrl"]), **kw)


def test_url_config_crud_boto3(daemon, fn):
    lam = daemon.boto3()
    name, cfg = fn
    assert re.fullmatch(r"http://[a-z0-9]{32}\.lambda-url\.us-east-1\.localhost:%d/"
                        % daemon.public_port, cfg["FunctionUrl"]), cfg["FunctionUrl"]
    assert cfg["AuthType"] == "NONE" and cfg["FunctionArn"].endswith(":function:" + name)
    assert cfg["Cors"]["MaxAge"] == 300  # (botocore 1.29 does not model InvokeMode yet)
    got = lam.get_function_url_config(FunctionName=name)
    assert got["FunctionUrl"] == cfg["FunctionUrl"] and got["CreationTime"] == cfg["CreationTime"]
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.create_function_url_config(FunctionName=name, AuthType="BOGUS", Qualifier="x")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 404)
    listed = lam.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"]
    assert [c["FunctionUrl"] for c in listed] == [cfg["FunctionUrl"]]
    # update keeps the id, changes what was given
    other = uniq("http")
    deploy(lam, other)
    c2 = lam.create_function_url_config(FunctionName=other, AuthType="NONE")
    up = lam.update_function_url_config(FunctionName=other, AuthType="AWS_IAM",
                                        Cors={"AllowOrigins": ["*"]})
    assert up["FunctionUrl"] == c2["FunctionUrl"] and up["AuthType"] == "AWS_IAM"
    assert up["Cors"] == {"AllowOrigins": ["*"]}
    lam.delete_function_url_config(FunctionName=other)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_url_config(FunctionName=other)
    st, _, _ = url_get(daemon, c2)
    assert st == 403  # the URL is gone
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_url_config(FunctionName="no-such-fn")


def test_url_config_aws_cli(daemon):
    lam = daemon.boto3()
    name = uniq("http")
    deploy(lam, name)
    _, out, _ = daemon.aws("lambda", "create-function-url-config", "--function-name", name,
                           "--auth-type", "NONE")
    url = json.loads(out)["FunctionUrl"]
    _, out, _ = daemon.aws("lambda", "get-function-url-config", "--function-name", name)
    assert json.loads(out)["FunctionUrl"] == url
    _, out, _ = daemon.aws("lambda", "list-function-url-configs", "--function-name", name)
    assert [c["FunctionUrl"] for c in json.loads(out)["FunctionUrlConfigs"]] == [url]
    daemon.aws("lambda", "delete-function-url-config", "--function-name", name)
    rc, _, err = daemon.aws("lambda", "get-function-url-config", "--function-name", name,
                            check=False)
    assert rc != 0 and "ResourceNotFoundException" in err


def test_event_shape(daemon, fn):
    _, cfg = fn
    st, hs, body = url_get(daemon, cfg, "/a/b%20c?x=1&x=2&y=hello%20w&flag",
                           headers=[("Cookie", "c1=v1; c2=v2"), ("X-Dup", "one"),
                                    ("X-Dup", "two"), ("User-Agent", "probe/1.0")])
    assert st == 200, body
    ev = json.loads(body)
    assert ev["version"] == "2.0" and ev["routeKey"] == "$default"
    assert ev["rawPath"] == "/a/b%20c"
    assert ev["rawQueryString"] == "x=1&x=2&y=hello%20w&flag"
    assert ev["queryStringParameters"] == {"x": "1,2", "y": "hello w", "flag": ""}
    assert ev["cookies"] == ["c1=v1", "c2=v2"]
    assert "cookie" not in ev["headers"]
    assert ev["headers"]["x-dup"] == "one,two"
    assert ev["headers"]["host"] == host_of(cfg["FunctionUrl"])
    assert ev["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert ev["headers"]["x-forwarded-proto"] == "http"
    assert ev["headers"]["x-forwarded-port"] == str(daemon.public_port)
    assert ev["isBase64Encoded"] is False and "body" not in ev
    rc = ev["requestContext"]
    url_id = host_of(cfg["FunctionUrl"]).split(".")[0]
    assert rc["apiId"] == url_id and rc["domainPrefix"] == url_id
    assert rc["http"] == {"method": "GET", "path": "/a/b%20c", "protocol": "HTTP/1.1",
                          "sourceIp": "127.0.0.1", "userAgent": "probe/1.0"}
    assert rc["stage"] == "$default" and rc["routeKey"] == "$default"
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", rc["time"])
    assert isinstance(rc["timeEpoch"], int) and rc["requestId"]
    assert hget(hs, "x-amzn-requestid") == rc["requestId"]


def test_post_json_and_prefix_form(daemon, fn):
    _, cfg = fn
    url_id = host_of(cfg["FunctionUrl"]).split(".")[0]
    doc = json.dumps({"k": "v", "ü": 1})
    st, _, body = send(daemon, "POST", "/_url/%s/items?mode=echo" % url_id, doc.encode(),
                       [("Content-Type", "application/json")])
    assert st == 200, body
    ev = json.loads(body)
    assert ev["body"] == doc and ev["isBase64Encoded"] is False
    assert ev["rawPath"] == "/items" and ev["requestContext"]["http"]["method"] == "POST"
    # unknown url ids are refused as AWS does
    st, _, body = send(daemon, "GET", "/_url/%s/" % ("0" * 32))
    assert st == 403 and json.loads(body) == {"Message": "Forbidden"}


def test_binary_round_trip(daemon, fn):
    _, cfg = fn
    raw = bytes(range(256)) * 4
    st, hs, body = url_get(daemon, cfg, "/?mode=reverse", method="POST", body=raw,
                           headers=[("Content-Type", "application/octet-stream")])
    assert st == 200
    assert body == raw[::-1]
    assert hget(hs, "content-type") == "application/octet-stream"
    # the event saw base64
    st, _, body = url_get(daemon, cfg, "/?mode=echo", method="POST", body=raw,
                          headers=[("Content-Type", "image/png")])
    ev = json.loads(body)
    assert ev["isBase64Encoded"] is True and base64.b64decode(ev["body"]) == raw


def test_response_cookies_and_headers(daemon, fn):
    _, cfg = fn
    st, hs, body = url_get(daemon, cfg, "/?mode=cookies")
    assert st == 201 and body == b"made"
    assert [v for k, v in hs if k == "set-cookie"] == ["a=1; Max-Age=60", "b=2; Path=/"]
    assert hget(hs, "x-multi") == "v1,v2" and hget(hs, "content-type") == "text/plain"


def test_bare_values(daemon, fn):
    _, cfg = fn
    st, hs, body = url_get(daemon, cfg, "/?mode=bare")
    assert st == 200 and json.loads(body) == {"hello": "world", "n": 1}
    assert hget(hs, "content-type") == "application/json"
    st, _, body = url_get(daemon, cfg, "/?mode=string")
    assert st == 200 and body == b'"hi"'


def test_function_error_is_502(daemon, fn):
    _, cfg = fn
    st, _, body = url_get(daemon, cfg, "/?mode=error")
    assert st == 502 and json.loads(body) == {"message": "Internal Server Error"}


def test_timeout_is_504(daemon):
    lam = daemon.boto3()
    name = uniq("http")
    deploy(lam, name, Timeout=1)
    cfg = lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    st, _, _ = url_get(daemon, cfg, "/?mode=sleep")
    assert st == 504


def test_throttle_is_429(daemon):
    lam = daemon.boto3()
    name = uniq("http")
    deploy(lam, name)
    cfg = lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    st, _, _ = url_get(daemon, cfg, "/")
    assert st == 429
    lam.delete_function_concurrency(FunctionName=name)
    st, _, _ = url_get(daemon, cfg, "/?mode=tiny")
    assert st == 200


def test_six_mb_body(daemon, fn):
    _, cfg = fn
    big = b"x" * (6 * 1024 * 1024 - 1024)
    st, _, body = url_get(daemon, cfg, "/?mode=size", method="POST", body=big,
                          headers=[("Content-Type", "text/plain")])
    assert st == 200, body[:200]
    assert json.loads(body) == {"len": len(big), "b64": False}
    st, _, _ = url_get(daemon, cfg, "/?mode=size", method="POST",
                       body=b"x" * (6 * 1024 * 1024 + 10), headers=[("Content-Type", "text/plain")])
    assert st == 413


def test_cors(daemon, fn):
    _, cfg = fn
    st, hs, body = url_get(daemon, cfg, "/", method="OPTIONS",
                           headers=[("Origin", "https://app.example"),
                                    ("Access-Control-Request-Method", "POST"),
                                    ("Access-Control-Request-Headers", "x-custom")])
    assert st == 200 and body == b""
    assert hget(hs, "access-control-allow-origin") == "https://app.example"
    assert hget(hs, "access-control-allow-methods") == "GET,POST"
    assert hget(hs, "access-control-allow-headers") == "x-custom"
    assert hget(hs, "access-control-max-age") == "300"
    assert hget(hs, "access-control-allow-credentials") == "true"
    # a foreign origin gets no CORS headers
    st, hs, _ = url_get(daemon, cfg, "/", method="OPTIONS",
                        headers=[("Origin", "https://evil.example"),
                                 ("Access-Control-Request-Method", "POST")])
    assert hget(hs, "access-control-allow-origin") is None
    # a real request from the allowed origin carries them
    st, hs, _ = url_get(daemon, cfg, "/?mode=cookies", headers=[("Origin", "https://app.example")])
    assert st == 201
    assert hget(hs, "access-control-allow-origin") == "https://app.example"
    assert hget(hs, "access-control-expose-headers") == "x-multi"


def test_aws_iam_url(daemon, tmp_path):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    lam = daemon.boto3()
    name = uniq("http")
    deploy(lam, name)
    cfg = lam.create_function_url_config(FunctionName=name, AuthType="AWS_IAM")
    url = cfg["FunctionUrl"] + "p?mode=tiny"

    def signed(key_id, secret, service="lambda"):
        req = AWSRequest(method="GET", url=url, data=b"")
        SigV4Auth(Credentials(key_id, secret), service, "us-east-1").add_auth(req)
        return [(k, v) for k, v in req.headers.items()]

    st, _, _ = url_get(daemon, cfg, "/p?mode=tiny")
    assert st == 403
    st, _, body = url_get(daemon, cfg, "/p?mode=tiny", headers=signed(daemon.key_id,
                                                                      daemon.secret))
    assert st == 200 and body == b"ok"
    st, _, _ = url_get(daemon, cfg, "/p?mode=tiny",
                       headers=signed(daemon.key_id, daemon.secret, "s3"))
    assert st == 403
    # a key whose policy does not allow lambda:InvokeFunctionUrl is refused; one that does is not
    pol = tmp_path / "p.json"
    for action, want in (("lambda:ListFunctions", 403), ("lambda:InvokeFunctionUrl", 200)):
        pol.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": action, "Resource": "*"}]}))
        out = daemon.cli("keys", "create", "--policy", str(pol), check=True).stdout
        creds = dict(line.split(" = ") for line in out.strip().splitlines())
        st, _, _ = url_get(daemon, cfg, "/p?mode=tiny",
                           headers=signed(creds["aws_access_key_id"],
                                          creds["aws_secret_access_key"]))
        assert st == want, action


def test_curl(daemon, fn):
    _, cfg = fn
    host = host_of(cfg["FunctionUrl"])
    hostname = host.split(":")[0]
    p = subprocess.run([CURL, "-s", "-i", "--resolve", "%s:%d:127.0.0.1" % (hostname,
                                                                           daemon.public_port),
                        "-b", "k=v", "-H", "X-Dup: 1", "-H", "X-Dup: 2",
                        cfg["FunctionUrl"] + "c/url?q=1&q=2"],
                       capture_output=True, timeout=60)
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), p.stdout[:300]
    ev = json.loads(body)
    assert ev["rawPath"] == "/c/url" and ev["cookies"] == ["k=v"]
    assert ev["headers"]["x-dup"] == "1,2" and ev["queryStringParameters"] == {"q": "1,2"}
    assert ev["requestContext"]["http"]["userAgent"].startswith("curl/")
    # prefix form, binary body through curl
    url_id = hostname.split(".")[0]
    data = os.urandom(3000)
    p = subprocess.run([CURL, "-s", "--data-binary", "@-", "-H",
                        "Content-Type: application/octet-stream",
                        "http://127.0.0.1:%d/_url/%s/?mode=reverse" % (daemon.public_port,
                                                                       url_id)],
                       input=data, capture_output=True, timeout=60)
    assert p.stdout == data[::-1]


def test_routes(daemon):
    lam = daemon.boto3()
    users, proxy, dflt = uniq("rt"), uniq("rt"), uniq("rt")
    for n in (users, proxy, dflt):
        deploy(lam, n)
    for key, target in (("GET /users/{id}", users), ("ANY /{proxy+}", proxy),
                        ("$default", dflt), ("GET /users/me", users)):
        daemon.cli("route", "add", key, target, check=True)
    ls = daemon.cli("route", "ls", check=True).stdout
    assert "GET /users/{id}" in ls and users in ls and "$default" in ls
    p = daemon.cli("route", "add", "GET /users/{id}", proxy)
    assert p.returncode != 0  # a route key is unique
    p = daemon.cli("route", "add", "FETCH /x", proxy)
    assert p.returncode != 0

    def ev(method, path, body=b""):
        st, _, out = send(daemon, method, path, body)
        assert st == 200, out
        return json.loads(out)

    e = ev("GET", "/users/42?mode=echo")
    assert e["routeKey"] == "GET /users/{id}" and e["pathParameters"] == {"id": "42"}
    assert e["requestContext"]["routeKey"] == "GET /users/{id}"
    assert ev("GET", "/users/me")["routeKey"] == "GET /users/me"  # literal beats label
    e = ev("POST", "/users/42")  # no POST route for it: the greedy ANY
    assert e["routeKey"] == "ANY /{proxy+}" and e["pathParameters"] == {"proxy": "users/42"}
    e = ev("DELETE", "/a/b/c")
    assert e["pathParameters"] == {"proxy": "a/b/c"}
    e = ev("GET", "/")  # {proxy+} needs a segment: $default
    assert e["routeKey"] == "$default" and "pathParameters" not in e
    daemon.cli("route", "rm", "$default", check=True)
    st, _, out = send(daemon, "GET", "/")
    assert st == 404 and json.loads(out) == {"message": "Not Found"}
    for key in ("GET /users/{id}", "ANY /{proxy+}", "GET /users/me"):
        daemon.cli("route", "rm", key, check=True)


def fn_instances(daemon, name):
    m = metrics(daemon)
    return sum(v for k, v in m.items()
               if k.startswith("nimbus_function_instances{") and 'function="%s"' % name in k)


def test_wake_from_zero(daemon):
    lam = daemon.boto3()
    name = uniq("wake")
    deploy(lam, name)
    cfg = lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert fn_instances(daemon, name) == 0
    st, _, body = url_get(daemon, cfg, "/?mode=tiny")
    assert st == 200 and body == b"ok"
    assert fn_instances(daemon, name) == 1
    # and a route wakes a function with no instance too
    other = uniq("wake")
    deploy(lam, other)
    daemon.cli("route", "add", "GET /wake/%s" % other, other, check=True)
    assert fn_instances(daemon, other) == 0
    st, _, _ = send(daemon, "GET", "/wake/%s?mode=tiny" % other)
    assert st == 200
    assert fn_instances(daemon, other) == 1
    daemon.cli("route", "rm", "GET /wake/%s" % other, check=True)
    m = metrics(daemon)
    assert m['nimbus_http_replies_total{trigger="url",code="2xx"}'] >= 1
    assert m['nimbus_http_replies_total{trigger="route",code="2xx"}'] >= 1
    assert m["nimbus_http_function_urls"] >= 1


def test_persisted_across_restart(fresh_daemon):
    dm = fresh_daemon()
    lam = dm.boto3()
    name = uniq("http")
    deploy(lam, name)
    cfg = lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    dm.cli("route", "add", "GET /keep", name, check=True)
    dm.stop()
    dm.start()
    lam = dm.boto3()
    assert lam.get_function_url_config(FunctionName=name)["FunctionUrl"] == cfg["FunctionUrl"]
    st, _, body = url_get(dm, cfg, "/?mode=tiny")
    assert st == 200 and body == b"ok"
    st, _, body = send(dm, "GET", "/keep?mode=tiny")
    assert st == 200 and body == b"ok"
    # deleting the function drops its URL and routes
    lam.delete_function(FunctionName=name)
    st, _, _ = url_get(dm, cfg, "/")
    assert st == 403
    st, _, _ = send(dm, "GET", "/keep")
    assert st == 404
    assert "GET /keep" not in dm.cli("route", "ls", check=True).stdout


def test_alias_qualified_url(daemon):
    lam = daemon.boto3()
    name = uniq("http")
    deploy(lam, name)
    v = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=v)
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.create_function_url_config(FunctionName=name, Qualifier=v, AuthType="NONE")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    cfg = lam.create_function_url_config(FunctionName=name, Qualifier="live", AuthType="NONE")
    assert cfg["FunctionArn"].endswith(":function:%s:live" % name)
    plain = lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert plain["FunctionUrl"] != cfg["FunctionUrl"]
    assert len(lam.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"]) == 2
    st, _, body = url_get(daemon, cfg, "/?mode=tiny")
    assert st == 200 and body == b"ok"
    lam.delete_alias(FunctionName=name, Name="live")  # its URL goes with it
    st, _, _ = url_get(daemon, cfg, "/?mode=tiny")
    assert st == 403
    st, _, _ = url_get(daemon, plain, "/?mode=tiny")
    assert st == 200


def test_route_to_alias_and_errors(daemon):
    lam = daemon.boto3()
    name = uniq("rt")
    deploy(lam, name)
    v = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=v)
    key = "POST /q/%s/{id}" % name
    daemon.cli("route", "add", key, name + ":live", check=True)
    assert (name + ":live") in daemon.cli("route", "ls", check=True).stdout
    st, _, body = send(daemon, "POST", "/q/%s/7?mode=echo" % name, b"hello",
                       [("Content-Type", "text/plain")])
    assert st == 200, body
    ev = json.loads(body)
    assert ev["body"] == "hello" and ev["pathParameters"] == {"id": "7"}
    assert ev["requestContext"]["apiId"] == "nimbus"
    st, _, _ = send(daemon, "GET", "/q/%s/7" % name)  # method not routed, no $default (removed
    assert st == 404                                   # by test_routes)
    p = daemon.cli("route", "add", "GET /x", "no-such-function")
    assert p.returncode != 0
    p = daemon.cli("route", "rm", "GET /never-added")
    assert p.returncode != 0
    daemon.cli("route", "rm", key, check=True)
