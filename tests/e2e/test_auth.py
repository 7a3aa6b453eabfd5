"""
test_auth.py - authentication of the API listener: SigV4 with the keys the daemon creates, as
real clients send it (boto3, aws CLI 2.9 with the shared-credentials file, the nimbus CLI), the
refusals and their AWS error types, `nimbus keys`, secrets sealed at rest, --insecure, and
presigned Code.Location URLs.
"""
import datetime
import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from conftest import AWS, NIMBUS, ROLE, create_function, read_credentials, zip_files

BOOTSTRAP = b"#!/bin/sh\nwhile true; do sleep 1; done\n"


def pkg():
    return zip_files({"bootstrap": (BOOTSTRAP, 0o755)})


def error_of(fn):
    with pytest.raises(ClientError) as ei:
        fn()
    r = ei.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def aws_with_file(daemon, *args):
    """aws CLI with only the daemon's credentials file (no key in the environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_SHARED_CREDENTIALS_FILE": daemon.credentials, "AWS_CONFIG_FILE": "/dev/null",
                "AWS_PAGER": ""})
    return subprocess.run([AWS, "--profile", "nimbus", "--endpoint-url", daemon.endpoint,
                           "--output", "json"] + list(args), env=env, capture_output=True,
                          text=True, timeout=120)


def cli_env(daemon, key_id, secret):
    e = daemon.env()
    e["AWS_ACCESS_KEY_ID"], e["AWS_SECRET_ACCESS_KEY"] = key_id, secret
    return e


def test_credentials_file_written_0600(daemon):
    st = os.stat(daemon.credentials)
    assert st.st_mode & 0o777 == 0o600
    text = open(daemon.credentials).read()
    assert text.startswith("[nimbus]\n")
    assert "region = us-east-1" in text
    assert daemon.key_id and daemon.secret
    assert os.stat(os.path.join(daemon.data_dir, "master.key")).st_mode & 0o777 == 0o600


def test_aws_cli_and_boto3_with_the_credentials_file(daemon):
    name = "auth-file-fn"
    create_function(daemon.boto3(), name, pkg())
    p = aws_with_file(daemon, "lambda", "list-functions")
    assert p.returncode == 0, p.stderr
    assert name in [f["FunctionName"] for f in json.loads(p.stdout)["Functions"]]
    # a full ARN in the path (':' -> %3A, double-encoded in the canonical request)
    arn = "arn:aws:lambda:us-east-1:000000000000:function:%s" % name
    p = aws_with_file(daemon, "lambda", "get-function-configuration", "--function-name", arn)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["FunctionName"] == name
    import boto3
    with mock.patch.dict(os.environ, {"AWS_SHARED_CREDENTIALS_FILE": daemon.credentials,
                                      "AWS_CONFIG_FILE": "/dev/null"}):
        s = boto3.session.Session(profile_name="nimbus")
        lam = s.client("lambda", endpoint_url=daemon.endpoint)
        assert lam.get_function(FunctionName=arn + ":$LATEST")["Configuration"][
            "FunctionName"] == name


def test_nimbus_cli_reads_the_data_dir_credentials(daemon):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"NIMBUS_ENDPOINT": daemon.endpoint, "NIMBUS_DATA_DIR": daemon.data_dir,
                "HOME": "/nonexistent"})
    p = subprocess.run([NIMBUS, "ls"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    # and refuses politely without any credentials
    env["NIMBUS_DATA_DIR"] = "/nonexistent"
    p = subprocess.run([NIMBUS, "ls"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 3
    assert "MissingAuthenticationTokenException" in p.stderr


def test_nimbus_cli_profile_option(daemon):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"NIMBUS_ENDPOINT": daemon.endpoint, "AWS_SHARED_CREDENTIALS_FILE":
                daemon.credentials, "NIMBUS_DATA_DIR": "/nonexistent"})
    p = subprocess.run([NIMBUS, "--profile", "nimbus", "keys", "ls"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and daemon.key_id in p.stdout, p.stderr
    p = subprocess.run([NIMBUS, "--profile", "absent", "ls"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 3 and "MissingAuthenticationTokenException" in p.stderr


def test_scope_of_another_region_or_service(daemon):
    lam = daemon.boto3(region_name="eu-west-1")
    st, code, msg = error_of(lambda: lam.list_functions())
    assert (st, code) == (403, "InvalidSignatureException")
    assert "scoped to a valid region, not 'eu-west-1'" in msg
    hdrs = daemon.sign("GET", "/2015-03-31/functions/", service="sqs")
    st, h, body = daemon.request("GET", "/2015-03-31/functions/", b"", hdrs, sign=False)
    assert (st, h["x-amzn-ErrorType"]) == (403, "InvalidSignatureException")
    assert "correct service: 'lambda'" in json.loads(body)["message"]


def test_wrong_secret_is_invalid_signature(daemon):
    lam = daemon.boto3(aws_secret_access_key=daemon.secret[:-1] + "x")
    st, code, msg = error_of(lambda: lam.list_functions())
    assert (st, code) == (403, "InvalidSignatureException")
    assert msg.startswith("The request signature we calculated does not match")
    env = cli_env(daemon, daemon.key_id, "wrong" + daemon.secret[5:])
    p = subprocess.run([AWS, "--endpoint-url", daemon.endpoint, "lambda", "list-functions"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "InvalidSignatureException" in p.stderr


def test_unknown_key_is_unrecognized_client(daemon):
    lam = daemon.boto3(aws_access_key_id="NKIAAAAAAAAAAAAAAAAA")
    st, code, msg = error_of(lambda: lam.list_functions())
    assert (st, code) == (403, "UnrecognizedClientException")
    assert msg == "The security token included in the request is invalid."


def test_unsigned_is_refused_and_public_routes_stay_open(daemon):
    st, h, body = daemon.request("GET", "/2015-03-31/functions/", sign=False)
    assert st == 403
    assert h["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    for path in ("/healthz", "/metrics"):
        st, _, _ = daemon.request("GET", path, sign=False)
        assert st == 200, path
    # the logs and code endpoints of nimbus are not public either
    st, _, _ = daemon.request("GET", "/nimbus/v1/functions/x/logs", sign=False)
    assert st == 403


def test_tampered_body_header_and_garbled_auth(daemon):
    body = json.dumps({"FunctionName": "never", "Runtime": "provided", "Role": ROLE,
                       "Code": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}})
    hdrs = daemon.sign("POST", "/2015-03-31/functions", body.encode(),
                       {"Content-Type": "application/json"})
    st, h, _ = daemon.request("POST", "/2015-03-31/functions", body.replace("never", "nevex"),
                              hdrs, sign=False)
    assert (st, h["x-amzn-ErrorType"]) == (403, "InvalidSignatureException")
    # a signed header changed in transit
    hdrs2 = dict(hdrs, **{"Content-Type": "application/x-amz-json-1.1"})
    st, h, _ = daemon.request("POST", "/2015-03-31/functions", body, hdrs2, sign=False)
    assert (st, h["x-amzn-ErrorType"]) == (403, "InvalidSignatureException")
    # x-amz-content-sha256 that is not the body's
    hdrs3 = daemon.sign("GET", "/2015-03-31/functions/", b"",
                        {"x-amz-content-sha256": "0" * 64})
    st, h, _ = daemon.request("GET", "/2015-03-31/functions/", b"", hdrs3, sign=False)
    assert (st, h["x-amzn-ErrorType"]) == (403, "InvalidSignatureException")
    # an Authorization header without its parts
    st, h, _ = daemon.request("GET", "/2015-03-31/functions/", b"",
                              {"Authorization": "AWS4-HMAC-SHA256 Credential=x"}, sign=False)
    assert (st, h["x-amzn-ErrorType"]) == (403, "IncompleteSignatureException")
    assert "nevex" not in [f["FunctionName"] for f in daemon.boto3().list_functions()["Functions"]]


@pytest.mark.parametrize("minutes", [-20, 20])
def test_skewed_clock_is_refused(daemon, minutes):
    at = datetime.datetime.utcnow() + datetime.timedelta(minutes=minutes)
    with mock.patch("botocore.auth.datetime") as dt:
        dt.datetime.utcnow.return_value = at
        hdrs = daemon.sign("GET", "/2015-03-31/functions/")
    st, h, body = daemon.request("GET", "/2015-03-31/functions/", b"", hdrs, sign=False)
    assert (st, h["x-amzn-ErrorType"]) == (403, "InvalidSignatureException")
    msg = json.loads(body)["message"]
    if minutes < 0:
        assert msg.startswith("Signature expired: ") and msg.endswith(" - 15 min.)"), msg
    else:
        assert msg.startswith("Signature not yet current: "), msg


def test_keys_create_ls_rm(daemon, tmp_path):
    lister = tmp_path / "lister.json"
    lister.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"}]}))
    out = daemon.cli("keys", "create", "--description", "ci key", "--policy", str(lister),
                     check=True).stdout
    creds = dict(line.split(" = ") for line in out.strip().splitlines())
    kid, secret = creds["aws_access_key_id"], creds["aws_secret_access_key"]
    assert kid != daemon.key_id
    ls = daemon.cli("keys", "ls", check=True).stdout
    assert kid in ls and "ci key" in ls and daemon.key_id in ls
    assert secret not in ls and daemon.secret not in ls
    # the new key works with boto3 and the nimbus CLI
    lam = daemon.boto3(aws_access_key_id=kid, aws_secret_access_key=secret)
    lam.list_functions()
    p = subprocess.run([NIMBUS, "ls"], env=cli_env(daemon, kid, secret), capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    # a policy must be a JSON object; a valid one is kept
    bad = tmp_path / "bad.json"
    bad.write_text("[1]")
    p = daemon.cli("keys", "create", "--policy", str(bad))
    assert p.returncode == 3 and "InvalidParameterValueException" in p.stderr
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"Version": "2012-10-17", "Statement": []}))
    p = daemon.cli("keys", "create", "--policy", str(empty))
    assert p.returncode == 3 and "InvalidParameterValueException" in p.stderr
    keys = json.loads(daemon.cli("keys", "ls", "--json", check=True).stdout)["Keys"]
    assert any(k["Policy"] and json.loads(k["Policy"])["Version"] == "2012-10-17" for k in keys)
    # a key without a policy may do nothing
    out = daemon.cli("keys", "create", check=True).stdout
    bare = dict(line.split(" = ") for line in out.strip().splitlines())
    st, code, _ = error_of(lambda: daemon.boto3(
        aws_access_key_id=bare["aws_access_key_id"],
        aws_secret_access_key=bare["aws_secret_access_key"]).list_functions())
    assert (st, code) == (403, "AccessDeniedException")
    # the root key cannot be deleted; a removed key stops working at once
    p = daemon.cli("keys", "rm", daemon.key_id)
    assert p.returncode == 3 and "root key cannot be deleted" in p.stderr
    daemon.cli("keys", "rm", kid, check=True)
    st, code, _ = error_of(lambda: lam.list_functions())
    assert (st, code) == (403, "UnrecognizedClientException")
    assert kid not in daemon.cli("keys", "ls", check=True).stdout
    p = daemon.cli("keys", "rm", kid)
    assert p.returncode == 3 and "ResourceNotFoundException" in p.stderr


def test_secrets_are_not_stored_in_plaintext(fresh_daemon):
    dm = fresh_daemon()
    out = dm.cli("keys", "create", check=True).stdout
    secret = dict(line.split(" = ") for line in out.strip().splitlines())["aws_secret_access_key"]
    dm.stop()  # checkpoints the WAL into nimbus.db
    for needle in (secret, dm.secret):
        for base, _dirs, files in os.walk(dm.data_dir):
            for f in files:
                path = os.path.join(base, f)
                if path == dm.credentials and needle == dm.secret:
                    continue  # the root key's credentials file is meant to hold it
                with open(path, "rb") as fh:
                    assert needle.encode() not in fh.read(), path
    # keys survive a restart (decrypted with the master key)
    dm.start()
    lam = dm.boto3()
    lam.list_functions()


def test_wrong_master_key_refuses_to_start(fresh_daemon):
    dm = fresh_daemon()
    dm.stop()
    with open(os.path.join(dm.data_dir, "master.key"), "wb") as f:
        f.write(os.urandom(32))
    with pytest.raises(RuntimeError) as ei:
        dm.start()
    assert "wrong master key" in str(ei.value)


def test_insecure_serves_unsigned_requests(fresh_daemon):
    dm = fresh_daemon(["--insecure"])
    st, _, body = dm.request("GET", "/2015-03-31/functions/", sign=False)
    assert st == 200, body
    assert "INSECURE MODE" in dm.daemon_log()


def test_insecure_refuses_a_non_loopback_listener(tmp_path):
    p = subprocess.run([NIMBUS, "serve", "--insecure", "--listen", "0.0.0.0:0", "--data-dir",
                        str(tmp_path), "--cgroup-parent", "nimbus-e2e-insecure"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "--insecure needs a loopback listen address" in p.stderr


def test_presigned_code_location(daemon):
    lam = daemon.boto3()
    code = pkg()
    name = "auth-code-fn"
    create_function(lam, name, code)
    loc = lam.get_function(FunctionName=name)["Code"]["Location"]
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)
    assert q["X-Amz-Expires"] == ["600"] and q["X-Amz-Credential"][0].startswith(daemon.key_id)
    with urllib.request.urlopen(loc, timeout=30) as r:  # no credentials needed
        assert r.read() == code
    # a tampered URL is refused
    bad = loc.replace("X-Amz-Expires=600", "X-Amz-Expires=601")
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(bad, timeout=30)
    assert ei.value.code == 403
    assert ei.value.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


def test_expired_presigned_url_is_refused(daemon):
    """A presigned URL made by botocore (SigV4QueryAuth) works until X-Amz-Expires, then not."""
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    lam = daemon.boto3()
    name = "auth-code-fn2"
    create_function(lam, name, pkg())
    url = daemon.endpoint + "/nimbus/v1/functions/%s/code" % name
    req = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(Credentials(daemon.key_id, daemon.secret), "lambda", "us-east-1",
                   expires=1).add_auth(req)
    with urllib.request.urlopen(req.url, timeout=30) as r:
        assert r.status == 200
    time.sleep(2.2)  # past X-Amz-Expires
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req.url, timeout=30)
    assert ei.value.code == 403
    assert ei.value.headers["x-amzn-ErrorType"] == "AccessDeniedException"
    assert json.loads(ei.value.read())["message"] == "Request has expired"


def test_no_secret_in_function_reads_or_key_listings(daemon):
    out = daemon.cli("keys", "create", "--description", "secret-check", check=True).stdout
    creds = dict(line.split(" = ") for line in out.strip().splitlines())
    secrets = [daemon.secret, creds["aws_secret_access_key"]]
    lam = daemon.boto3()
    name = "auth-secrets-fn"
    create_function(lam, name, pkg(), Environment={"Variables": {"PLAIN": "value"}})
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    bodies = []
    for path in ("/2015-03-31/functions/%s" % name,
                 "/2015-03-31/functions/%s?Qualifier=live" % name,
                 "/2015-03-31/functions/%s/configuration" % name,
                 "/2015-03-31/functions/?FunctionVersion=ALL",
                 "/2015-03-31/functions/%s/versions" % name,
                 "/2015-03-31/functions/%s/aliases" % name,
                 "/nimbus/v1/keys"):
        status, headers, body = daemon.request("GET", path)
        assert status == 200, (path, body)
        bodies.append(body.decode() + json.dumps(dict(headers)))
    for p in (daemon.cli("keys", "ls", check=True), daemon.cli("keys", "ls", "--json", check=True),
              daemon.cli("ls", check=True)):
        bodies.append(p.stdout + p.stderr)
    _, aws_out, _ = daemon.aws("lambda", "get-function", "--function-name", name)
    bodies.append(aws_out)
    for text in bodies:
        for s in secrets:
            assert s not in text
    # Code.Location names the caller's key, never its secret (a presigned URL carries only a
    # signature)
    loc = lam.get_function(FunctionName=name)["Code"]["Location"]
    assert daemon.key_id in urllib.parse.unquote(loc)
    keys = json.loads(daemon.cli("keys", "ls", "--json", check=True).stdout)["Keys"]
    assert all("SecretAccessKey" not in k for k in keys)
