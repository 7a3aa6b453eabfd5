"""
test_js_sdk_control.py - the Lambda control surface of issue 3 through the AWS SDK for JavaScript v3
(@aws-sdk/client-lambda, tests/js/sdk.mjs via the `js` fixture): Invoke with InvocationType Event
(202 and the event's request id) and DryRun (204, also of an alias), Put/Get/Update/Delete/
ListFunctionEventInvokeConfigs and their validation errors, PublishVersion and
ListVersionsByFunction (the SDK's paginator), Publish: true on CreateFunction and
UpdateFunctionCode, GetFunction with qualifiers, aliases with RoutingConfig and RevisionId
conflicts (PreconditionFailedException), DeleteFunction with Qualifier, provisioned concurrency
until READY, and SigV4 from the SDK's side: the default provider chain reading the daemon's
credentials file, a wrong secret (InvalidSignatureException), an unknown key
(UnrecognizedClientException) and a key whose policy denies (AccessDeniedException).

Every assertion is on what the SDK parsed (exception class, $fault, status, message, members).
"""
import json

import pytest

from conftest import ROLE, zip_files
from helpers import uniq, wait_for
from jssdk import ACCOUNT, JsSdk, arn, assert_error, sdk_call, status


APP = """
import os
TAG = %r
def handler(event, context):
    return {"tag": TAG, "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
            "invoked": context.invoked_function_arn}
"""


def app_zip(tag):
    return zip_files({"app.py": (APP % tag, 0o644)})


def create_input(name, tag="v1", **kw):
    d = {"FunctionName": name, "Runtime": "python3.11", "Role": ROLE, "Handler": "app.handler",
         "Code": {"ZipFile": app_zip(tag)}, "Timeout": 30}
    d.update(kw)
    return d


def payload(out):
    return json.loads(out["Payload"])


@pytest.fixture(scope="module")
def fn(js):
    """A function with versions 1 (v1) and 2 (v2), $LATEST at v3, all through the JS SDK."""
    name = uniq("jsc")
    js.call("CreateFunction", **create_input(name, "v1"))
    v1, up, v2, up2 = js.run([
        sdk_call("PublishVersion", FunctionName=name, Description="first"),
        sdk_call("UpdateFunctionCode", FunctionName=name, ZipFile=app_zip("v2")),
        sdk_call("PublishVersion", FunctionName=name),
        sdk_call("UpdateFunctionCode", FunctionName=name, ZipFile=app_zip("v3")),
    ])
    return {"name": name, "v1": v1["output"], "v2": v2["output"]}


# ---- invoke: Event and DryRun -----------------------------------------------------------------


def test_invoke_event_and_dry_run(js, fn):
    name = fn["name"]
    ev, ev_alias_missing, dry, dry_v1, too_big = js.run([
        sdk_call("Invoke", FunctionName=name, InvocationType="Event", Payload=b'{"a":1}',
                 metadata=True),
        sdk_call("Invoke", FunctionName=name, Qualifier="nope", InvocationType="Event",
                 Payload=b"{}"),
        sdk_call("Invoke", FunctionName=name, InvocationType="DryRun", Payload=b"{}"),
        sdk_call("Invoke", FunctionName=name + ":1", InvocationType="DryRun"),
        sdk_call("Invoke", FunctionName=name, InvocationType="Event",
                 Payload=b" " * (1048576 + 1)),
    ])
    out = ev["output"]
    assert out["$metadata"]["httpStatusCode"] == 202 and out["StatusCode"] == 202
    assert not out.get("Payload")
    rid = out["$metadata"]["requestId"]
    assert len(rid) == 36 and rid.count("-") == 4
    assert_error(ev_alias_missing["error"], "ResourceNotFoundException", 404,
                 "Function not found: " + arn(name, "nope"))
    assert status(dry["output"]) == 204 and dry["output"]["StatusCode"] == 204
    assert status(dry_v1["output"]) == 204
    assert_error(too_big["error"], "RequestTooLargeException", 413, "1048576")


# ---- event invoke configs -----------------------------------------------------------------


def test_event_invoke_config_crud_and_validation(js, fn):
    name = fn["name"]
    dest = uniq("jsc-dest")
    js.call("CreateFunction", **create_input(dest))
    res = js.run([
        sdk_call("GetFunctionEventInvokeConfig", FunctionName=name),
        sdk_call("PutFunctionEventInvokeConfig", FunctionName=name, MaximumRetryAttempts=1,
                 MaximumEventAgeInSeconds=3600),
        sdk_call("UpdateFunctionEventInvokeConfig", FunctionName=name,
                 DestinationConfig={"OnFailure": {"Destination": arn(dest)}}),
        sdk_call("PutFunctionEventInvokeConfig", FunctionName=name, Qualifier="1",
                 MaximumRetryAttempts=0),
        sdk_call("GetFunctionEventInvokeConfig", FunctionName=name, Qualifier="$LATEST"),
        sdk_call("paginate:ListFunctionEventInvokeConfigs", FunctionName=name,
                 paginator={"pageSize": 1}),
        sdk_call("PutFunctionEventInvokeConfig", FunctionName=name, MaximumRetryAttempts=3),
        sdk_call("PutFunctionEventInvokeConfig", FunctionName=name,
                 MaximumEventAgeInSeconds=21601),
        sdk_call("PutFunctionEventInvokeConfig", FunctionName=name,
                 DestinationConfig={"OnSuccess": {"Destination": arn(uniq("missing"))}}),
        sdk_call("UpdateFunctionEventInvokeConfig", FunctionName=name, Qualifier="2",
                 MaximumRetryAttempts=1),
        sdk_call("DeleteFunctionEventInvokeConfig", FunctionName=name, Qualifier="1"),
        sdk_call("DeleteFunctionEventInvokeConfig", FunctionName=name, Qualifier="1"),
    ])
    (missing, put, upd, put_v1, get, pages, retries, age, bad_dest, upd_missing, deleted,
     deleted_again) = res
    assert_error(missing["error"], "ResourceNotFoundException", 404,
                 "The function %s doesn't have an EventInvokeConfig" % arn(name, "$LATEST"))
    p = put["output"]
    assert status(p) == 200 and p["FunctionArn"] == arn(name, "$LATEST")
    assert p["MaximumRetryAttempts"] == 1 and p["MaximumEventAgeInSeconds"] == 3600
    assert p["LastModified"].year >= 2024  # the SDK parsed a timestamp into a Date
    u = upd["output"]
    assert u["MaximumRetryAttempts"] == 1 and u["MaximumEventAgeInSeconds"] == 3600
    assert u["DestinationConfig"]["OnFailure"] == {"Destination": arn(dest)}
    assert put_v1["output"]["FunctionArn"] == arn(name, "1")
    assert get["output"]["DestinationConfig"]["OnFailure"] == {"Destination": arn(dest)}
    pages = pages["output"]["pages"]
    assert [c["FunctionArn"] for p in pages for c in p["FunctionEventInvokeConfigs"]] == \
        [arn(name, "$LATEST"), arn(name, "1")]
    assert len(pages) >= 2 and pages[0]["NextMarker"]
    assert_error(retries["error"], "ValidationException", 400, "maximumRetryAttempts")
    assert_error(age["error"], "ValidationException", 400, "maximumEventAgeInSeconds")
    assert_error(bad_dest["error"], "InvalidParameterValueException", 400,
                 "The destination ARN")
    assert_error(upd_missing["error"], "ResourceNotFoundException", 404, arn(name, "2"))
    assert status(deleted["output"]) == 204
    assert_error(deleted_again["error"], "ResourceNotFoundException", 404)


# ---- versions -----------------------------------------------------------------------------


def test_publish_and_list_versions(js, fn):
    name = fn["name"]
    v1, v2 = fn["v1"], fn["v2"]
    assert status(v1) == 201 and v1["Version"] == "1" and v1["FunctionArn"] == arn(name, "1")
    assert v1["Description"] == "first" and v2["Version"] == "2"
    assert v1["CodeSha256"] != v2["CodeSha256"]
    latest = js.call("GetFunction", FunctionName=name)["Configuration"]
    again, stale, bad_sha, pages, manual = js.run([
        sdk_call("PublishVersion", FunctionName=name, CodeSha256=latest["CodeSha256"]),
        sdk_call("PublishVersion", FunctionName=name, RevisionId=v1["RevisionId"]),
        sdk_call("PublishVersion", FunctionName=name, CodeSha256=v1["CodeSha256"]),
        sdk_call("paginate:ListVersionsByFunction", FunctionName=name,
                 paginator={"pageSize": 2}),
        sdk_call("ListVersionsByFunction", FunctionName=name, MaxItems=1),
    ])
    # v3 publishes as 3; the stale RevisionId and the old CodeSha256 are refused
    assert again["output"]["Version"] == "3"
    assert_error(stale["error"], "PreconditionFailedException", 412, "Revision Id")
    assert_error(bad_sha["error"], "InvalidParameterValueException", 400, "CodeSHA256")
    pages = pages["output"]["pages"]
    assert [len(p["Versions"]) for p in pages] == [2, 2]
    assert [v["Version"] for p in pages for v in p["Versions"]] == ["$LATEST", "1", "2", "3"]
    assert [v["FunctionArn"] for p in pages for v in p["Versions"]] == [
        arn(name, "$LATEST"), arn(name, "1"), arn(name, "2"), arn(name, "3")]
    assert "NextMarker" not in pages[-1]
    assert manual["output"]["NextMarker"] and len(manual["output"]["Versions"]) == 1


def test_get_function_with_qualifiers(js, fn):
    name = fn["name"]
    js.call("CreateAlias", FunctionName=name, Name="q", FunctionVersion="2")
    by_num, by_arn, by_alias, cfg_q, missing, mismatch = js.run([
        sdk_call("GetFunction", FunctionName=name, Qualifier="1"),
        sdk_call("GetFunction", FunctionName=arn(name, "2")),
        sdk_call("GetFunction", FunctionName=name + ":q"),
        sdk_call("GetFunctionConfiguration", FunctionName=name, Qualifier="q"),
        sdk_call("GetFunction", FunctionName=name, Qualifier="99"),
        sdk_call("GetFunction", FunctionName=name + ":1", Qualifier="2"),
    ])
    c = by_num["output"]["Configuration"]
    assert c["Version"] == "1" and c["FunctionArn"] == arn(name, "1")
    assert c["CodeSha256"] == fn["v1"]["CodeSha256"]
    assert by_arn["output"]["Configuration"]["Version"] == "2"
    a = by_alias["output"]["Configuration"]
    assert a["Version"] == "2" and a["FunctionArn"] == arn(name, "q")
    assert cfg_q["output"]["FunctionArn"] == arn(name, "q")
    assert_error(missing["error"], "ResourceNotFoundException", 404,
                 "Function not found: " + arn(name, "99"))
    assert_error(mismatch["error"], "InvalidParameterValueException", 400,
                 "does not match the specified qualifier")


def test_publish_true_on_create_and_update_code(js):
    name = uniq("jsc-pub")
    created = js.call("CreateFunction", Publish=True, **create_input(name, "p1"))
    assert status(created) == 201
    assert created["Version"] == "1" and created["FunctionArn"] == arn(name)
    updated = js.call("UpdateFunctionCode", FunctionName=name, ZipFile=app_zip("p2"),
                      Publish=True)
    assert status(updated) == 200
    assert updated["Version"] == "2" and updated["FunctionArn"] == arn(name, "2")
    # the same code again: nothing changed since version 2, which is the answer
    same = js.call("UpdateFunctionCode", FunctionName=name, ZipFile=app_zip("p2"), Publish=True)
    assert same["Version"] == "2"
    versions = js.call("ListVersionsByFunction", FunctionName=name)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    r1, r2 = js.run([sdk_call("Invoke", FunctionName=name, Qualifier="1"),
                     sdk_call("Invoke", FunctionName=name, Qualifier="2")])
    assert payload(r1["output"])["tag"] == "p1" and r1["output"]["ExecutedVersion"] == "1"
    assert payload(r2["output"])["tag"] == "p2" and r2["output"]["ExecutedVersion"] == "2"


# ---- aliases ------------------------------------------------------------------------------


def test_alias_crud_with_routing_and_revision(js, fn):
    name = fn["name"]
    created = js.call("CreateAlias", FunctionName=name, Name="live", FunctionVersion="1",
                      Description="d", RoutingConfig={"AdditionalVersionWeights": {"2": 0.25}})
    assert status(created) == 201
    assert created["AliasArn"] == arn(name, "live") and created["FunctionVersion"] == "1"
    assert created["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.25}}
    res = js.run([
        sdk_call("GetAlias", FunctionName=name, Name="live"),
        sdk_call("UpdateAlias", FunctionName=name, Name="live", FunctionVersion="2",
                 RoutingConfig={"AdditionalVersionWeights": {}},
                 RevisionId=created["RevisionId"]),
        sdk_call("UpdateAlias", FunctionName=name, Name="live", FunctionVersion="1",
                 RevisionId=created["RevisionId"]),
        sdk_call("CreateAlias", FunctionName=name, Name="live", FunctionVersion="1"),
        sdk_call("CreateAlias", FunctionName=name, Name="123", FunctionVersion="1"),
        sdk_call("CreateAlias", FunctionName=name, Name="x", FunctionVersion="1",
                 RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}}),
        sdk_call("paginate:ListAliases", FunctionName=name, paginator={"pageSize": 1}),
        sdk_call("ListAliases", FunctionName=name, FunctionVersion="2"),
        sdk_call("Invoke", FunctionName=name, Qualifier="live", InvocationType="DryRun"),
        sdk_call("Invoke", FunctionName=name, Qualifier="live"),
        sdk_call("DeleteFunction", FunctionName=name, Qualifier="2"),
        sdk_call("GetAlias", FunctionName=name, Name="nope"),
    ])
    (got, upd, stale, dup, digits, self_route, pages, by_version, dry, run, del_used,
     missing) = res
    assert got["output"]["RevisionId"] == created["RevisionId"]
    u = upd["output"]
    assert u["FunctionVersion"] == "2" and u["RevisionId"] != created["RevisionId"]
    assert not u.get("RoutingConfig", {}).get("AdditionalVersionWeights")
    assert_error(stale["error"], "PreconditionFailedException", 412, "Revision Id")
    assert_error(dup["error"], "ResourceConflictException", 409,
                 "Alias already exists: " + arn(name, "live"))
    assert_error(digits["error"], "InvalidParameterValueException", 400, "(?!^[0-9]+$)")
    assert_error(self_route["error"], "InvalidParameterValueException", 400,
                 "already included in routing configuration")
    names = [a["Name"] for p in pages["output"]["pages"] for a in p["Aliases"]]
    assert "live" in names and len(pages["output"]["pages"]) == len(names)
    assert "live" in [a["Name"] for a in by_version["output"]["Aliases"]]
    assert status(dry["output"]) == 204
    assert run["output"]["ExecutedVersion"] == "2"
    assert payload(run["output"])["invoked"] == arn(name, "live")
    assert_error(del_used["error"], "ResourceConflictException", 409,
                 "aliases reference it: [live, q]")
    assert_error(missing["error"], "ResourceNotFoundException", 404,
                 "Alias not found: " + arn(name, "nope"))
    deleted, after, dry_gone = js.run([
        sdk_call("DeleteAlias", FunctionName=name, Name="live"),
        sdk_call("GetAlias", FunctionName=name, Name="live"),
        sdk_call("Invoke", FunctionName=name, Qualifier="live", InvocationType="DryRun"),
    ])
    assert status(deleted["output"]) == 204
    assert_error(after["error"], "ResourceNotFoundException", 404)
    assert_error(dry_gone["error"], "ResourceNotFoundException", 404)


def test_delete_function_with_qualifier(js):
    name = uniq("jsc-delq")
    js.call("CreateFunction", Publish=True, **create_input(name, "d1"))
    js.call("PutFunctionEventInvokeConfig", FunctionName=name, Qualifier="1",
            MaximumRetryAttempts=0)
    latest, deleted, get, again, eic, fn_left = js.run([
        sdk_call("DeleteFunction", FunctionName=name, Qualifier="$LATEST"),
        sdk_call("DeleteFunction", FunctionName=name, Qualifier="1"),
        sdk_call("GetFunction", FunctionName=name, Qualifier="1"),
        sdk_call("DeleteFunction", FunctionName=arn(name, "1")),
        sdk_call("ListFunctionEventInvokeConfigs", FunctionName=name),
        sdk_call("GetFunction", FunctionName=name),
    ])
    assert_error(latest["error"], "InvalidParameterValueException", 400,
                 "$LATEST version cannot be deleted")
    assert status(deleted["output"]) == 204
    assert_error(get["error"], "ResourceNotFoundException", 404, arn(name, "1"))
    assert_error(again["error"], "ResourceNotFoundException", 404)
    # the version's event invoke config went with it
    assert eic["output"]["FunctionEventInvokeConfigs"] == []
    assert fn_left["output"]["Configuration"]["Version"] == "$LATEST"


# ---- provisioned concurrency --------------------------------------------------------------


def test_provisioned_concurrency_until_ready(js):
    name = uniq("jsc-pc")
    js.call("CreateFunction", Publish=True, **create_input(name, "pc"))
    js.call("CreateAlias", FunctionName=name, Name="prod", FunctionVersion="1")
    put, latest, missing = js.run([
        sdk_call("PutProvisionedConcurrencyConfig", FunctionName=name, Qualifier="prod",
                 ProvisionedConcurrentExecutions=1),
        sdk_call("PutProvisionedConcurrencyConfig", FunctionName=name, Qualifier="$LATEST",
                 ProvisionedConcurrentExecutions=1),
        sdk_call("GetProvisionedConcurrencyConfig", FunctionName=name, Qualifier="1"),
    ])
    p = put["output"]
    assert status(p) == 202 and p["RequestedProvisionedConcurrentExecutions"] == 1
    assert p["Status"] in ("IN_PROGRESS", "READY")
    assert_error(latest["error"], "InvalidParameterValueException", 400,
                 "cannot be applied to unpublished function versions")
    assert_error(missing["error"], "ProvisionedConcurrencyConfigNotFoundException", 404,
                 "No Provisioned Concurrency Config found for this function")

    def ready():
        g = js.call("GetProvisionedConcurrencyConfig", FunctionName=name, Qualifier="prod")
        return g if g["Status"] == "READY" else None
    g = wait_for(ready, timeout=60)
    assert g, "provisioned concurrency never became READY"
    assert g["AvailableProvisionedConcurrentExecutions"] == 1
    assert g["AllocatedProvisionedConcurrentExecutions"] == 1
    lst, deleted, after = js.run([
        sdk_call("ListProvisionedConcurrencyConfigs", FunctionName=name),
        sdk_call("DeleteProvisionedConcurrencyConfig", FunctionName=name, Qualifier="prod"),
        sdk_call("GetProvisionedConcurrencyConfig", FunctionName=name, Qualifier="prod"),
    ])
    cfgs = lst["output"]["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"] for c in cfgs] == [arn(name, "prod")]
    assert status(deleted["output"]) == 204
    assert_error(after["error"], "ProvisionedConcurrencyConfigNotFoundException", 404)


# ---- SigV4 and policies, from the SDK's side ----------------------------------------------


def test_default_chain_signs_with_the_credentials_file(daemon, js):
    # no key in the environment: the SDK's default chain reads the daemon's credentials file
    file_js = JsSdk(daemon, env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
                                 "AWS_SHARED_CREDENTIALS_FILE": daemon.credentials,
                                 "AWS_PROFILE": "nimbus"})
    out = file_js.call("GetAccountSettings", metadata=True)
    assert status(out) == 200 and out["$metadata"]["requestId"]
    # the same file with the wrong profile has no key: the SDK refuses before sending
    none_js = JsSdk(daemon, env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
                                 "AWS_SHARED_CREDENTIALS_FILE": daemon.credentials,
                                 "AWS_PROFILE": "nope"})
    err = none_js.error("GetAccountSettings")
    assert "$metadata" not in err or not err["$metadata"].get("httpStatusCode"), err


def test_wrong_secret_and_unknown_key(daemon, js):
    wrong, unknown = js.run([
        sdk_call("ListFunctions", config={"credentials": {
            "accessKeyId": daemon.key_id, "secretAccessKey": "x" * 40}}),
        sdk_call("ListFunctions", config={"credentials": {
            "accessKeyId": "AKIAUNKNOWNKEY000000", "secretAccessKey": "x" * 40}}),
    ])
    assert_error(wrong["error"], "InvalidSignatureException", 403,
                 "The request signature we calculated does not match")
    assert_error(unknown["error"], "UnrecognizedClientException", 403,
                 "The security token included in the request is invalid.")


def test_policy_denial_as_the_sdk_surfaces_it(daemon, js, fn, tmp_path):
    name = fn["name"]
    policy = tmp_path / "invoke-only.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["lambda:InvokeFunction", "lambda:GetFunction"],
         "Resource": arn(name)}]}))
    out = daemon.cli("keys", "create", "--policy", str(policy), check=True).stdout
    creds = dict(line.split(" = ") for line in out.strip().splitlines())
    kid, secret = creds["aws_access_key_id"], creds["aws_secret_access_key"]
    keyed = {"credentials": {"accessKeyId": kid, "secretAccessKey": secret}}
    ok, get, delete, other, event = js.run([
        sdk_call("Invoke", FunctionName=name, config=keyed),
        sdk_call("GetFunction", FunctionName=name, config=keyed),
        sdk_call("DeleteFunction", FunctionName=name, config=keyed),
        sdk_call("ListFunctions", config=keyed),
        sdk_call("Invoke", FunctionName=name, Qualifier="1", InvocationType="Event",
                 config=keyed),
    ])
    assert payload(ok["output"])["tag"] == "v3"
    assert get["output"]["Configuration"]["FunctionName"] == name
    err = assert_error(delete["error"], "AccessDeniedException", 403)
    assert err["message"] == (
        "User: arn:aws:iam::%s:user/%s is not authorized to perform: lambda:DeleteFunction on "
        "resource: %s because no identity-based policy allows the lambda:DeleteFunction action"
        % (ACCOUNT, kid, arn(name)))
    assert_error(other["error"], "AccessDeniedException", 403, "lambda:ListFunctions")
    # the qualified resource is another resource: the unqualified statement does not cover it
    assert_error(event["error"], "AccessDeniedException", 403, arn(name, "1"))
