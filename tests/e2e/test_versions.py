"""
test_versions.py - end-to-end tests of versions and aliases (src/api_versions.c, registry_resolve)
against a real `nimbus serve`, through boto3, the aws CLI (2.9) and the nimbus CLI: PublishVersion
(numbers never reused, CodeSha256/RevisionId preconditions, nothing-changed returns the last
version), ListVersionsByFunction with pagination, qualifiers in every form (name:N, name:alias,
full and partial ARNs, ?Qualifier=) on GetFunction / GetFunctionConfiguration / Invoke /
DeleteFunction, immutability of published versions, aliases (CRUD, RevisionId, weighted routing
with a 1,000-invocation canary checked against binomial bounds), rollback, and a restart that keeps
versions and aliases. Provisioned concurrency: Put/Get/List/Delete through boto3 and the aws CLI,
READY with instances up before any invocation (/metrics), the initialization type the function
sees, no Init Duration on a provisioned call, account settings, replacement of a dead instance,
keep-warm never reaping them, FAILED on an init failure, and restoration at restart.
"""
import json
import math

import pytest
from botocore.exceptions import ClientError

from conftest import FUNCS, ROLE, zip_dir, zip_files
from helpers import uniq, wait_for

ACCOUNT = "000000000000"
REGION = "us-east-1"


def arn(name, qualifier=None):
    a = "arn:aws:lambda:%s:%s:function:%s" % (REGION, ACCOUNT, name)
    return a + ":" + qualifier if qualifier else a


APP = """
import os
TAG = %r
def handler(event, context):
    if event.get("exit"):
        os._exit(3)
    return {"tag": TAG,
            "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
            "ctx_version": context.function_version,
            "invoked": context.invoked_function_arn,
            "stream": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],
            "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
            "greeting": os.environ.get("GREETING")}
"""


def app_zip(tag):
    return zip_files({"app.py": (APP % tag, 0o644)})


def deploy(lam, name, tag="v1", **kw):
    return lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                               Handler="app.handler", Code={"ZipFile": app_zip(tag)},
                               Timeout=30, **kw)


def run(lam, name, **kw):
    r = lam.invoke(FunctionName=name, Payload=b"{}", **kw)
    body = json.loads(r["Payload"].read())
    assert r["StatusCode"] == 200 and "FunctionError" not in r, body
    return r["ExecutedVersion"], body


def error_of(excinfo):
    e = excinfo.value.response
    return e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Code"], e["Error"]["Message"]


@pytest.fixture(scope="module")
def fn(lam):
    """A function with versions 1 (code v1) and 2 (code v2), $LATEST at code v3."""
    name = uniq("ver")
    deploy(lam, name, "v1")
    v1 = lam.publish_version(FunctionName=name, Description="first")
    lam.update_function_code(FunctionName=name, ZipFile=app_zip("v2"))
    v2 = lam.publish_version(FunctionName=name)
    lam.update_function_code(FunctionName=name, ZipFile=app_zip("v3"))
    return {"name": name, "v1": v1, "v2": v2}


def test_publish_version_shape(lam, fn):
    v1, v2 = fn["v1"], fn["v2"]
    assert v1["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (v1["Version"], v2["Version"]) == ("1", "2")
    assert v1["FunctionArn"] == arn(fn["name"], "1")
    assert v1["Description"] == "first"
    assert v1["CodeSha256"] != v2["CodeSha256"]
    latest = lam.get_function_configuration(FunctionName=fn["name"])
    assert latest["Version"] == "$LATEST" and latest["FunctionArn"] == arn(fn["name"])


def test_publish_nothing_changed_returns_last_version(lam):
    name = uniq("same")
    deploy(lam, name)
    a = lam.publish_version(FunctionName=name)
    b = lam.publish_version(FunctionName=name, Description="again")
    assert a["Version"] == b["Version"] == "1"
    assert a["RevisionId"] == b["RevisionId"]
    # a configuration change is a change
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"AB": "1"}})
    assert lam.publish_version(FunctionName=name)["Version"] == "2"


def test_publish_preconditions(lam):
    name = uniq("pre")
    cfg = deploy(lam, name)
    with pytest.raises(ClientError) as e:
        lam.publish_version(FunctionName=name, CodeSha256="x" * 44)
    status, code, msg = error_of(e)
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "CodeSHA256" in msg and cfg["CodeSha256"] in msg
    with pytest.raises(ClientError) as e:
        lam.publish_version(FunctionName=name, RevisionId="0" * 36)
    assert error_of(e)[:2] == (412, "PreconditionFailedException")
    v = lam.publish_version(FunctionName=name, CodeSha256=cfg["CodeSha256"],
                            RevisionId=cfg["RevisionId"])
    assert v["Version"] == "1"


def test_version_numbers_never_reused(lam):
    name = uniq("reuse")
    deploy(lam, name, "a")
    assert lam.publish_version(FunctionName=name)["Version"] == "1"
    lam.update_function_code(FunctionName=name, ZipFile=app_zip("b"))
    assert lam.publish_version(FunctionName=name)["Version"] == "2"
    lam.delete_function(FunctionName=name, Qualifier="2")
    lam.update_function_code(FunctionName=name, ZipFile=app_zip("c"))
    assert lam.publish_version(FunctionName=name)["Version"] == "3"
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]]
    assert versions == ["$LATEST", "1", "3"]


def test_list_versions_pagination(lam, fn):
    got = []
    pages = lam.get_paginator("list_versions_by_function").paginate(
        FunctionName=fn["name"], PaginationConfig={"PageSize": 1})
    for page in pages:
        assert len(page["Versions"]) <= 1
        got += [(v["Version"], v["FunctionArn"]) for v in page["Versions"]]
    assert got == [("$LATEST", arn(fn["name"], "$LATEST")), ("1", arn(fn["name"], "1")),
                   ("2", arn(fn["name"], "2"))]


def test_list_functions_all_versions(lam, fn):
    for size in (1, 2, 50):
        pages = lam.get_paginator("list_functions").paginate(
            FunctionVersion="ALL", PaginationConfig={"PageSize": size})
        arns = [f["FunctionArn"] for p in pages for f in p["Functions"]
                if f["FunctionName"] == fn["name"]]
        assert arns == [arn(fn["name"], "$LATEST"), arn(fn["name"], "1"),
                        arn(fn["name"], "2")], size
    plain = [f for p in lam.get_paginator("list_functions").paginate(
        PaginationConfig={"PageSize": 1}) for f in p["Functions"]]
    mine = [f["FunctionArn"] for f in plain if f["FunctionName"] == fn["name"]]
    assert mine == [arn(fn["name"])]
    assert len(plain) == len({f["FunctionName"] for f in plain})


def test_qualifier_forms_on_get(lam, fn):
    name = fn["name"]
    for ref, kw in [(name + ":1", {}), (arn(name, "1"), {}), ("%s:function:%s:1" % (ACCOUNT, name), {}),
                    (name, {"Qualifier": "1"}), (arn(name), {"Qualifier": "1"})]:
        c = lam.get_function_configuration(FunctionName=ref, **kw)
        assert (c["Version"], c["FunctionArn"], c["CodeSha256"]) == (
            "1", arn(name, "1"), fn["v1"]["CodeSha256"]), ref
    g = lam.get_function(FunctionName=name, Qualifier="2")
    assert g["Configuration"]["Version"] == "2"
    assert g["Configuration"]["CodeSha256"] == fn["v2"]["CodeSha256"]
    g = lam.get_function(FunctionName=name, Qualifier="$LATEST")
    assert g["Configuration"]["FunctionArn"] == arn(name, "$LATEST")
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=name, Qualifier="99")
    status, code, msg = error_of(e)
    assert (status, code) == (404, "ResourceNotFoundException")
    assert msg == "Function not found: " + arn(name, "99")
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=name + ":1", Qualifier="2")
    assert error_of(e)[:2] == (400, "InvalidParameterValueException")


def test_version_code_download(daemon, lam, fn):
    loc = lam.get_function(FunctionName=fn["name"], Qualifier="1")["Code"]["Location"]
    path = loc[loc.index("/nimbus/"):]
    status, _h, body = daemon.request("GET", path)
    assert status == 200 and body == app_zip("v1")


def test_invoke_versions_are_immutable(lam, fn):
    name = fn["name"]
    for ref, kw, tag, ver in [(name + ":1", {}, "v1", "1"), (name, {"Qualifier": "2"}, "v2", "2"),
                              (arn(name, "1"), {}, "v1", "1"), (name, {}, "v3", "$LATEST"),
                              (name + ":$LATEST", {}, "v3", "$LATEST")]:
        executed, body = run(lam, ref, **kw)
        assert (executed, body["tag"], body["version"], body["ctx_version"]) == (ver, tag, ver,
                                                                                  ver), ref
        assert body["stream"].split("/")[3].startswith("[%s]" % ver)
        assert body["invoked"] == (arn(name) if ref == name and not kw else
                                   arn(name, kw.get("Qualifier") or ref.rsplit(":", 1)[1])), ref
        assert body["init_type"] == "on-demand"
    # updating $LATEST changes neither the code nor the configuration of published versions
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"GREETING": "hi"}})
    _, body = run(lam, name)
    assert body["greeting"] == "hi"
    _, body = run(lam, name + ":1")
    assert body["tag"] == "v1" and body["greeting"] is None
    assert lam.get_function_configuration(FunctionName=name, Qualifier="1").get("Environment") is None


def test_version_instance_survives_latest_update(lam):
    """A published version's warm instance is not retired when $LATEST changes."""
    name = uniq("warm")
    deploy(lam, name, "a")
    lam.publish_version(FunctionName=name)
    r1 = lam.invoke(FunctionName=name, Qualifier="1", LogType="Tail")
    r1["Payload"].read()
    lam.update_function_code(FunctionName=name, ZipFile=app_zip("b"))
    r2 = lam.invoke(FunctionName=name, Qualifier="1", LogType="Tail")
    import base64
    log = base64.b64decode(r2["LogResult"]).decode()
    assert json.loads(r2["Payload"].read())["tag"] == "a"
    assert "Init Duration" not in log, log


def test_invoke_unknown_qualifier(lam, fn):
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=fn["name"], Qualifier="nope")
    assert error_of(e) == (404, "ResourceNotFoundException",
                           "Function not found: " + arn(fn["name"], "nope"))


def test_delete_version_rules(lam):
    name = uniq("del")
    deploy(lam, name, "a")
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName=name, Qualifier="1")
    status, code, msg = error_of(e)
    assert (status, code) == (409, "ResourceConflictException") and "live" in msg
    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName=name, Qualifier="$LATEST")
    assert error_of(e) == (400, "InvalidParameterValueException",
                           "$LATEST version cannot be deleted without deleting the function.")
    lam.delete_alias(FunctionName=name, Name="live")
    lam.delete_function(FunctionName=name + ":1")
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=name, Qualifier="1")
    assert error_of(e)[0] == 404
    assert lam.get_function(FunctionName=name)["Configuration"]["Version"] == "$LATEST"
    lam.delete_function(FunctionName=name)


def test_tags_on_unqualified_arn_only(lam, fn):
    with pytest.raises(ClientError) as e:
        lam.tag_resource(Resource=arn(fn["name"], "1"), Tags={"a": "b"})
    assert error_of(e)[:2] == (400, "InvalidParameterValueException")
    lam.tag_resource(Resource=arn(fn["name"]), Tags={"a": "b"})
    assert lam.get_function(FunctionName=fn["name"], Qualifier="1")["Tags"] == {"a": "b"}


def test_alias_crud(lam, fn):
    name = fn["name"]
    a = lam.create_alias(FunctionName=name, Name="prod", FunctionVersion="1", Description="p")
    assert a["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (a["AliasArn"], a["Name"], a["FunctionVersion"], a["Description"]) == (
        arn(name, "prod"), "prod", "1", "p")
    assert lam.get_alias(FunctionName=name, Name="prod")["RevisionId"] == a["RevisionId"]
    with pytest.raises(ClientError) as e:
        lam.create_alias(FunctionName=name, Name="prod", FunctionVersion="1")
    assert error_of(e) == (409, "ResourceConflictException",
                           "Alias already exists: " + arn(name, "prod"))
    with pytest.raises(ClientError) as e:
        lam.create_alias(FunctionName=name, Name="x", FunctionVersion="42")
    assert error_of(e)[:2] == (404, "ResourceNotFoundException")
    with pytest.raises(ClientError) as e:
        lam.create_alias(FunctionName=name, Name="123", FunctionVersion="1")
    assert error_of(e)[:2] == (400, "InvalidParameterValueException")
    # RevisionId optimistic concurrency
    with pytest.raises(ClientError) as e:
        lam.update_alias(FunctionName=name, Name="prod", FunctionVersion="2",
                         RevisionId="0" * 36)
    assert error_of(e)[:2] == (412, "PreconditionFailedException")
    u = lam.update_alias(FunctionName=name, Name="prod", FunctionVersion="2",
                         RevisionId=a["RevisionId"])
    assert u["FunctionVersion"] == "2" and u["RevisionId"] != a["RevisionId"]
    assert u["Description"] == "p"
    # qualifier = alias on get and invoke
    c = lam.get_function_configuration(FunctionName=name, Qualifier="prod")
    assert (c["Version"], c["FunctionArn"]) == ("2", arn(name, "prod"))
    executed, body = run(lam, name + ":prod")
    assert (executed, body["tag"], body["invoked"]) == ("2", "v2", arn(name, "prod"))
    executed, _ = run(lam, arn(name, "prod"))
    assert executed == "2"
    lam.create_alias(FunctionName=name, Name="dev", FunctionVersion="$LATEST")
    executed, body = run(lam, name, Qualifier="dev")
    assert (executed, body["tag"]) == ("$LATEST", "v3")
    names = [x["Name"] for x in lam.list_aliases(FunctionName=name)["Aliases"]]
    assert names == ["dev", "prod"]
    only = lam.list_aliases(FunctionName=name, FunctionVersion="2")["Aliases"]
    assert [x["Name"] for x in only] == ["prod"]
    pages = list(lam.get_paginator("list_aliases").paginate(
        FunctionName=name, PaginationConfig={"PageSize": 1}))
    assert [x["Name"] for p in pages for x in p["Aliases"]] == ["dev", "prod"]
    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName=name, Qualifier="dev")
    assert error_of(e)[:2] == (400, "InvalidParameterValueException")
    lam.delete_alias(FunctionName=name, Name="dev")
    with pytest.raises(ClientError) as e:
        lam.get_alias(FunctionName=name, Name="dev")
    assert error_of(e) == (404, "ResourceNotFoundException",
                           "Alias not found: " + arn(name, "dev"))


def test_alias_routing_validation(lam, fn):
    name = fn["name"]
    for version, weights in [("$LATEST", {"1": 0.5}), ("1", {"1": 0.5}), ("1", {"2": 1.5}),
                             ("1", {"2": 0.1, "3": 0.1})]:
        with pytest.raises(ClientError) as e:
            lam.create_alias(FunctionName=name, Name="bad", FunctionVersion=version,
                             RoutingConfig={"AdditionalVersionWeights": weights})
        assert error_of(e)[:2] == (400, "InvalidParameterValueException"), (version, weights)
    with pytest.raises(ClientError) as e:
        lam.create_alias(FunctionName=name, Name="bad", FunctionVersion="1",
                         RoutingConfig={"AdditionalVersionWeights": {"77": 0.5}})
    assert error_of(e)[:2] == (404, "ResourceNotFoundException")


def test_canary_split(lam, fn):
    """10% to version 2 over 1,000 invocations: within 4 sigma of the binomial mean."""
    name = fn["name"]
    a = lam.create_alias(FunctionName=name, Name="canary", FunctionVersion="1",
                         RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
    assert a["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}
    n, p = 1000, 0.1
    counts = {"1": 0, "2": 0}
    for _ in range(n):
        r = lam.invoke(FunctionName=name, Qualifier="canary", Payload=b"{}")
        body = json.loads(r["Payload"].read())
        counts[r["ExecutedVersion"]] += 1
        assert body["tag"] == {"1": "v1", "2": "v2"}[r["ExecutedVersion"]]
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(counts["2"] - n * p) <= 4 * sigma, counts
    assert counts["1"] + counts["2"] == n


def test_aws_cli_versions_and_aliases(daemon, lam):
    name = uniq("cli")
    deploy(lam, name, "a")
    _, out, _ = daemon.aws("lambda", "publish-version", "--function-name", name,
                           "--description", "from cli")
    assert json.loads(out)["Version"] == "1"
    _, out, _ = daemon.aws("lambda", "list-versions-by-function", "--function-name", name)
    assert [v["Version"] for v in json.loads(out)["Versions"]] == ["$LATEST", "1"]
    daemon.aws("lambda", "create-alias", "--function-name", name, "--name", "live",
               "--function-version", "1")
    lam.update_function_code(FunctionName=name, ZipFile=app_zip("b"))
    daemon.aws("lambda", "publish-version", "--function-name", name)
    _, out, _ = daemon.aws("lambda", "update-alias", "--function-name", name, "--name", "live",
                           "--routing-config", '{"AdditionalVersionWeights":{"2":0.25}}')
    assert json.loads(out)["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.25}
    _, out, _ = daemon.aws("lambda", "get-alias", "--function-name", name, "--name", "live")
    assert json.loads(out)["FunctionVersion"] == "1"
    _, out, _ = daemon.aws("lambda", "list-aliases", "--function-name", name)
    assert [a["Name"] for a in json.loads(out)["Aliases"]] == ["live"]
    _, out, _ = daemon.aws("lambda", "get-function-configuration", "--function-name", name,
                           "--qualifier", "2")
    assert json.loads(out)["Version"] == "2"
    import os
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        outfile = os.path.join(tmp, "out.json")
        _, out, _ = daemon.aws("lambda", "invoke", "--function-name", name, "--qualifier", "1",
                               "--payload", "{}", outfile)
        assert json.loads(out)["ExecutedVersion"] == "1"
        with open(outfile) as f:
            assert json.load(f)["tag"] == "a"
    # provisioned concurrency through the aws CLI
    _, out, _ = daemon.aws("lambda", "put-provisioned-concurrency-config", "--function-name", name,
                           "--qualifier", "2", "--provisioned-concurrent-executions", "1")
    assert json.loads(out)["RequestedProvisionedConcurrentExecutions"] == 1
    wait_for(lambda: lam.get_provisioned_concurrency_config(
        FunctionName=name, Qualifier="2")["Status"] == "READY", timeout=60, interval=0.1)
    _, out, _ = daemon.aws("lambda", "list-provisioned-concurrency-configs", "--function-name",
                           name)
    assert [c["FunctionArn"] for c in json.loads(out)["ProvisionedConcurrencyConfigs"]] == \
        [arn(name, "2")]
    daemon.aws("lambda", "delete-provisioned-concurrency-config", "--function-name", name,
               "--qualifier", "2")
    rc, _, err = daemon.aws("lambda", "delete-function", "--function-name", name, "--qualifier",
                            "1", check=False)
    assert rc != 0 and "ResourceConflictException" in err
    daemon.aws("lambda", "delete-alias", "--function-name", name, "--name", "live")
    daemon.aws("lambda", "delete-function", "--function-name", name, "--qualifier", "1")
    _, out, _ = daemon.aws("lambda", "list-versions-by-function", "--function-name", name)
    assert [v["Version"] for v in json.loads(out)["Versions"]] == ["$LATEST", "2"]


def test_nimbus_cli_publish_alias_rollback(daemon, lam):
    name = uniq("ncli")
    deploy(lam, name, "a")
    p = daemon.cli("publish", name, "--description", "one", check=True)
    assert "1" in p.stdout
    lam.update_function_code(FunctionName=name, ZipFile=app_zip("b"))
    daemon.cli("publish", name, check=True)
    # rollback with no history
    p = daemon.cli("alias", name, "live", "1", check=True)
    p = daemon.cli("rollback", name, "live")
    assert p.returncode == 3 and "no previous version" in p.stderr
    # move live to 2, then roll back to 1
    daemon.cli("alias", name, "live", "2", check=True)
    assert run(lam, name + ":live")[0] == "2"
    p = daemon.cli("invoke", name, "--qualifier", "live", check=True)
    assert json.loads(p.stdout)["tag"] == "b"
    p = daemon.cli("invoke", name + ":1", check=True)
    assert json.loads(p.stdout)["tag"] == "a"
    p = daemon.cli("rollback", name, "live", check=True)
    assert "version 1" in p.stdout
    assert lam.get_alias(FunctionName=name, Name="live")["FunctionVersion"] == "1"
    assert run(lam, name + ":live")[0] == "1"
    # a canary, then rolling it back removes the routing
    daemon.cli("alias", name, "live", "1", "--weight", "2=0.2", check=True)
    a = lam.get_alias(FunctionName=name, Name="live")
    assert a["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.2}}
    daemon.cli("rollback", name, "live", check=True)
    a = lam.get_alias(FunctionName=name, Name="live")
    assert a["FunctionVersion"] == "1" and "RoutingConfig" not in a
    p = daemon.cli("alias", "ls", name, check=True)
    assert "live" in p.stdout and "1" in p.stdout
    p = daemon.cli("publish", "--help", check=True)
    assert "publish" in p.stdout
    for cmd in ("alias", "rollback"):
        assert daemon.cli(cmd, "--help", check=True).stdout


def test_restart_keeps_versions_and_aliases(fresh_daemon):
    dm = fresh_daemon()
    lam = dm.boto3()
    name = uniq("rst")
    deploy(lam, name, "a")
    lam.publish_version(FunctionName=name)
    lam.update_function_code(FunctionName=name, ZipFile=app_zip("b"))
    lam.publish_version(FunctionName=name)
    lam.delete_function(FunctionName=name, Qualifier="2")
    lam.update_function_code(FunctionName=name, ZipFile=app_zip("c"))
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion="$LATEST")
    before = lam.get_alias(FunctionName=name, Name="live")
    dm.stop()
    dm.start()
    lam = dm.boto3()
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]] \
        == ["$LATEST", "1"]
    after = lam.get_alias(FunctionName=name, Name="live")
    after.pop("ResponseMetadata")
    before.pop("ResponseMetadata")
    assert after == before
    assert run(lam, name + ":1")[1]["tag"] == "a"  # its code package survived the start-up GC
    assert run(lam, name + ":live")[1]["tag"] == "c"
    # the rollback history survived too
    assert dm.cli("rollback", name, "live", check=True).returncode == 0
    assert lam.get_alias(FunctionName=name, Name="live")["FunctionVersion"] == "1"
    # numbers stay unused after a restart
    lam.update_function_code(FunctionName=name, ZipFile=app_zip("d"))
    assert lam.publish_version(FunctionName=name)["Version"] == "3"


# ---- provisioned concurrency ----

def instances(daemon, name, state="idle"):
    status, _h, body = daemon.request("GET", "/metrics")
    assert status == 200
    key = 'nimbus_function_instances{function="%s",state="%s"}' % (name, state)
    for line in body.decode().splitlines():
        if line.startswith(key + " "):
            return int(float(line.split()[1]))
    return 0


def pc_status(lam, name, qualifier):
    return lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)


def wait_ready(lam, name, qualifier, timeout=60):
    r = wait_for(lambda: pc_status(lam, name, qualifier)["Status"] != "IN_PROGRESS",
                 timeout=timeout, interval=0.1)
    got = pc_status(lam, name, qualifier)
    assert got["Status"] == "READY", got
    return got


def test_provisioned_concurrency(fresh_daemon):
    # a short keep-warm window: provisioned instances must outlive it
    dm = fresh_daemon(["--keep-warm-s", "1", "--reap-interval-ms", "100"])
    lam = dm.boto3()
    name = uniq("pc")
    deploy(lam, name, "a")
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    total = lam.get_account_settings()["AccountLimit"]["ConcurrentExecutions"]

    r = lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live",
                                               ProvisionedConcurrentExecutions=2)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert r["RequestedProvisionedConcurrentExecutions"] == 2
    assert r["Status"] in ("IN_PROGRESS", "READY")
    got = wait_ready(lam, name, "live")
    assert got["AvailableProvisionedConcurrentExecutions"] == 2
    assert got["AllocatedProvisionedConcurrentExecutions"] == 2
    # the instances exist before any invocation
    assert instances(dm, name) == 2
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == \
        total - 2
    items = lam.list_provisioned_concurrency_configs(FunctionName=name)
    assert [(i["FunctionArn"], i["Status"]) for i in items["ProvisionedConcurrencyConfigs"]] == \
        [(arn(name, "live"), "READY")]
    _, out, _ = dm.aws("lambda", "get-provisioned-concurrency-config", "--function-name", name,
                       "--qualifier", "live")
    assert json.loads(out)["Status"] == "READY"

    # invocations run on them: no Init Duration, initialization type provisioned-concurrency
    import base64
    for _ in range(3):
        r = lam.invoke(FunctionName=name, Qualifier="live", LogType="Tail", Payload=b"{}")
        body = json.loads(r["Payload"].read())
        log = base64.b64decode(r["LogResult"]).decode()
        assert r["ExecutedVersion"] == "1"
        assert body["init_type"] == "provisioned-concurrency"
        assert "REPORT RequestId" in log and "Init Duration" not in log, log
    # $LATEST (on demand) is told so
    _, body = run(lam, name)
    assert body["init_type"] == "on-demand"

    # keep-warm (1 s here) never reaps them
    import time
    time.sleep(2.5)
    assert instances(dm, name) == 2

    # one dies: it is replaced
    r = lam.invoke(FunctionName=name, Qualifier="live", Payload=b'{"exit": 1}')
    assert r.get("FunctionError") == "Unhandled"
    wait_for(lambda: instances(dm, name) == 2 and
             pc_status(lam, name, "live")["Status"] == "READY", timeout=60, interval=0.1)
    assert instances(dm, name) == 2

    # a restart brings them back before any invocation
    dm.stop()
    dm.start()
    lam = dm.boto3()
    wait_ready(lam, name, "live")
    assert instances(dm, name) == 2

    # moving the alias moves the provisioned instances to the new version
    lam.update_function_code(FunctionName=name, ZipFile=app_zip("b"))
    lam.publish_version(FunctionName=name)
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
    wait_for(lambda: pc_status(lam, name, "live")["Status"] == "READY" and
             instances(dm, name) == 2, timeout=60, interval=0.1)
    r = lam.invoke(FunctionName=name, Qualifier="live", Payload=b"{}")
    body = json.loads(r["Payload"].read())
    assert (body["tag"], body["init_type"]) == ("b", "provisioned-concurrency")

    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="live")
    wait_for(lambda: instances(dm, name) == 0, timeout=30, interval=0.1)
    assert instances(dm, name) == 0
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == total
    with pytest.raises(ClientError) as e:
        pc_status(lam, name, "live")
    assert error_of(e)[:2] == (404, "ProvisionedConcurrencyConfigNotFoundException")


def test_provisioned_concurrency_errors(daemon, lam):
    name = uniq("pce")
    deploy(lam, name, "a")
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="dev", FunctionVersion="$LATEST")
    for q in ("$LATEST", "dev"):
        with pytest.raises(ClientError) as e:
            lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=q,
                                                   ProvisionedConcurrentExecutions=1)
        assert error_of(e) == (400, "InvalidParameterValueException",
                               "Provisioned Concurrency Configs cannot be applied to "
                               "unpublished function versions."), q
    with pytest.raises(ClientError) as e:
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="7",
                                               ProvisionedConcurrentExecutions=1)
    assert error_of(e)[:2] == (404, "ResourceNotFoundException")
    with pytest.raises(ClientError) as e:
        pc_status(lam, name, "1")
    assert error_of(e)[:2] == (404, "ProvisionedConcurrencyConfigNotFoundException")
    # a reservation may not go below the provisioned amount
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1",
                                           ProvisionedConcurrentExecutions=2)
    with pytest.raises(ClientError) as e:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    assert error_of(e)[:2] == (400, "InvalidParameterValueException")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    # within the function's reservation
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    with pytest.raises(ClientError) as e:
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1",
                                               ProvisionedConcurrentExecutions=2)
    assert error_of(e)[:2] == (400, "InvalidParameterValueException")
    lam.delete_function_concurrency(FunctionName=name)
    # 100 must stay unreserved
    total = lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    with pytest.raises(ClientError) as e:
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1",
                                               ProvisionedConcurrentExecutions=total - 99)
    assert error_of(e)[:2] == (400, "InvalidParameterValueException")


def test_provisioned_concurrency_init_failure(daemon, lam):
    name = uniq("pcf")
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": zip_dir(FUNCS + "/py_import_error")})
    lam.publish_version(FunctionName=name)
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1",
                                           ProvisionedConcurrentExecutions=1)
    wait_for(lambda: pc_status(lam, name, "1")["Status"] != "IN_PROGRESS", timeout=60,
             interval=0.1)
    got = pc_status(lam, name, "1")
    assert got["Status"] == "FAILED" and got["StatusReason"], got
    # deleting the version takes its config along
    lam.delete_function(FunctionName=name, Qualifier="1")
    assert lam.list_provisioned_concurrency_configs(
        FunctionName=name)["ProvisionedConcurrencyConfigs"] == []


def test_publish_true_on_create_and_update_code(daemon, lam, tmp_path):
    name = uniq("pub")
    r = deploy(lam, name, "p1", Publish=True)
    # the version's configuration, with the unqualified ARN (as Lambda answers CreateFunction)
    assert r["Version"] == "1" and r["FunctionArn"] == arn(name)
    assert lam.get_function(FunctionName=name, Qualifier="1")["Configuration"]["CodeSha256"] == \
        r["CodeSha256"]
    r = lam.update_function_code(FunctionName=name, ZipFile=app_zip("p2"), Publish=True)
    assert r["Version"] == "2" and r["FunctionArn"] == arn(name, "2")
    assert run(lam, name, Qualifier="1")[1]["tag"] == "p1"
    assert run(lam, name, Qualifier="2")[1]["tag"] == "p2"
    assert run(lam, name)[1]["tag"] == "p2"
    # unchanged since version 2: version 2 is the answer, no version 3
    r = lam.update_function_code(FunctionName=name, ZipFile=app_zip("p2"), Publish=True)
    assert r["Version"] == "2"
    # without Publish nothing is published; DryRun with Publish publishes nothing either
    lam.update_function_code(FunctionName=name, ZipFile=app_zip("p3"))
    lam.update_function_code(FunctionName=name, ZipFile=app_zip("p4"), Publish=True,
                             DryRun=True)
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]] \
        == ["$LATEST", "1", "2"]
    # the aws CLI's --publish
    other = uniq("pub-cli")
    zpath = tmp_path / "code.zip"
    zpath.write_bytes(app_zip("c1"))
    _, out, _ = daemon.aws("lambda", "create-function", "--function-name", other, "--runtime",
                           "python3.11", "--role", ROLE, "--handler", "app.handler",
                           "--zip-file", "fileb://%s" % zpath, "--publish")
    assert json.loads(out)["Version"] == "1"
    zpath.write_bytes(app_zip("c2"))
    _, out, _ = daemon.aws("lambda", "update-function-code", "--function-name", other,
                           "--zip-file", "fileb://%s" % zpath, "--publish")
    assert json.loads(out)["Version"] == "2" and json.loads(out)["FunctionArn"] == arn(other, "2")


def test_provisioned_config_goes_with_its_version_or_alias(lam):
    name = uniq("pc-del")
    before = lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    deploy(lam, name, "v1", Publish=True)
    lam.create_alias(FunctionName=name, Name="a", FunctionVersion="1")
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="a",
                                           ProvisionedConcurrentExecutions=1)
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1",
                                           ProvisionedConcurrentExecutions=1)

    def listed():
        cfgs = lam.list_provisioned_concurrency_configs(FunctionName=name)
        return sorted(c["FunctionArn"] for c in cfgs["ProvisionedConcurrencyConfigs"])
    assert listed() == [arn(name, "1"), arn(name, "a")]
    lam.delete_alias(FunctionName=name, Name="a")
    assert listed() == [arn(name, "1")]
    lam.create_alias(FunctionName=name, Name="a", FunctionVersion="1")
    with pytest.raises(ClientError) as ei:
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="a")
    assert ei.value.response["Error"]["Code"] == "ProvisionedConcurrencyConfigNotFoundException"
    lam.delete_alias(FunctionName=name, Name="a")
    lam.delete_function(FunctionName=name, Qualifier="1")
    assert listed() == []
    # the account got the provisioned concurrency back
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == before
