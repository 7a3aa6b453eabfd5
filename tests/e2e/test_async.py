"""
test_async.py - end-to-end tests of asynchronous invocation (src/async.c, src/async_config.c,
src/async_sched.c, the Event branch of src/api_invoke.c) against a real `nimbus serve`, through
boto3, the aws CLI and raw requests.

Covers: 202 with an empty body and the event's request id (boto3 and `aws lambda invoke
--invocation-type Event`, `nimbus invoke --event`), the 1 MB payload limit (413), delivery with the same request id on
every attempt, retries after function errors (a function failing N times then succeeding, counted
in its own /tmp on its single instance), MaximumRetryAttempts 0, the maximum event age with a
throttled function (EventAgeExceeded), OnSuccess and OnFailure destination records (their shape),
dropped events logged in the function's log, Put/Get/Update/Delete/ListFunctionEventInvokeConfigs
with their validation and errors, and durability: events accepted before a `kill -9` of the daemon
are all delivered after a restart on the same data dir, with possible duplicates counted in
/metrics; a function that is its own destination stops after 16 records, also when the daemon is
killed and restarted in the middle of the chain. The daemon runs with the retry delays scaled down (async_* settings): the same code paths
with smaller numbers.
"""
import glob
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from conftest import ROLE, Daemon, zip_files
from helpers import c_probe_zip, metrics, uniq, wait_for

REGION, ACCOUNT = "us-east-1", "000000000000"
LIMIT = 1048576  # async payload limit, bytes
# A retry after a function error waits n x 300 ms; throttles back off from 50 ms to 200 ms; one
# second of MaximumEventAgeInSeconds lasts 10 ms (so the minimum, 60, is 0.6 s).
FAST = ["--async-retry-delay-ms", "300", "--async-backoff-min-ms", "50",
        "--async-backoff-max-ms", "200", "--async-age-unit-ms", "10"]

FLAKY = r'''
import json, os

def handler(event, context):
    rid = context.aws_request_id
    path = "/tmp/attempts-" + rid
    n = int(open(path).read()) + 1 if os.path.exists(path) else 1
    with open(path, "w") as f:
        f.write(str(n))
    print("ATTEMPT %s %d %s" % (rid, n, json.dumps(event)))
    if n <= event.get("fail", 0):
        raise RuntimeError("failure %d of %s" % (n, rid))
    return {"ok": True, "attempt": n, "event": event}
'''

RECORDER = r'''
import json

def handler(event, context):
    print("RECORD " + json.dumps(event, sort_keys=True))
    return None
'''


def arn(name, qualifier=None):
    a = "arn:aws:lambda:%s:%s:function:%s" % (REGION, ACCOUNT, name)
    return a + ":" + qualifier if qualifier else a


@pytest.fixture(scope="module")
def dm(nimbus_bin):
    d = tempfile.mkdtemp(prefix="nimbus-e2e-")
    daemon = Daemon(d, FAST).start()
    yield daemon
    daemon.stop()
    if not os.environ.get("NIMBUS_KEEP_DATA"):
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def lam(dm):
    return dm.boto3()


def create_py(lam, name, code, **kw):
    kw.setdefault("Timeout", 30)
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                        Handler="main.handler",
                        Code={"ZipFile": zip_files({"main.py": (code, 0o644)})}, **kw)
    return name


@pytest.fixture(scope="module")
def recorder(lam):
    return create_py(lam, uniq("recorder"), RECORDER)


def fn_log(dm, name):
    """Every line of the function's log files (message part only)."""
    out = []
    for path in sorted(glob.glob(os.path.join(dm.data_dir, "logs", name, "*.log"))):
        with open(path, errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t", 2)
                if len(parts) == 3:
                    out.append(parts[2])
    return out


def records(dm, recorder):
    return [json.loads(l[len("RECORD "):]) for l in fn_log(dm, recorder) if l.startswith("RECORD ")]


def record_for(dm, recorder, rid, timeout=20):
    def find():
        return [r for r in records(dm, recorder) if r["requestContext"]["requestId"] == rid]
    got = wait_for(find, timeout=timeout)
    assert got, "no destination record for %s:\n%s" % (rid, dm.daemon_log()[-3000:])
    assert len(got) == 1, got
    return got[0]


def attempts(dm, name, rid):
    return [l for l in fn_log(dm, name) if l.startswith("ATTEMPT %s " % rid)]


def send_event(lam, name, event, **kw):
    r = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event), **kw)
    assert r["StatusCode"] == 202, r
    assert r["Payload"].read() == b""
    rid = r["ResponseMetadata"]["RequestId"]
    assert rid == r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    return rid


def client_error(fn):
    with pytest.raises(ClientError) as ei:
        fn()
    e = ei.value.response
    return e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Code"], e["Error"]["Message"]


def metric(dm, key):
    return metrics(dm).get(key, 0.0)


# ---- accept ----------------------------------------------------------------------------------


def test_event_202_then_delivered_with_the_same_request_id(dm, lam):
    name = create_py(lam, uniq("flaky"), FLAKY)
    rid = send_event(lam, name, {"hello": "async"})
    lines = wait_for(lambda: attempts(dm, name, rid), timeout=20)
    assert lines, dm.daemon_log()[-3000:]
    assert lines[0] == 'ATTEMPT %s 1 {"hello": "async"}' % rid
    # the platform lines carry the same id
    assert any(l == "START RequestId: %s Version: $LATEST" % rid for l in fn_log(dm, name))
    assert wait_for(lambda: metric(dm, "nimbus_async_delivered_total") >= 1)


def test_aws_cli_event(dm, lam, tmp_path):
    name = create_py(lam, uniq("flaky"), FLAKY)
    out = tmp_path / "out"
    _, stdout, _ = dm.aws("lambda", "invoke", "--function-name", name, "--invocation-type",
                          "Event", "--payload", json.dumps({"cli": True}), "--cli-binary-format",
                          "raw-in-base64-out", str(out))
    assert json.loads(stdout) == {"StatusCode": 202}
    assert out.read_bytes() == b""
    lines = wait_for(lambda: [l for l in fn_log(dm, name) if l.startswith("ATTEMPT ")], timeout=20)
    assert lines and lines[0].endswith(' 1 {"cli": true}'), lines


def test_nimbus_cli_event(dm, lam):
    name = create_py(lam, uniq("flaky"), FLAKY)
    p = dm.cli("invoke", name, "--payload", '{"from": "nimbus"}', "--event", check=True)
    rid = p.stdout.strip()
    assert re.match(r"^[0-9a-f-]{36}$", rid), p.stdout
    lines = wait_for(lambda: attempts(dm, name, rid), timeout=20)
    assert lines == ['ATTEMPT %s 1 {"from": "nimbus"}' % rid], lines
    p = dm.cli("invoke", name, "--event", "--log")
    assert p.returncode == 2 and "--log needs a synchronous invocation" in p.stderr


def test_payload_limit_is_1_mb(dm, lam):
    name = create_py(lam, uniq("flaky"), FLAKY)
    # exactly 1,048,576 bytes of JSON is accepted
    body = json.dumps({"pad": "x" * (LIMIT - 11)})
    assert len(body) == LIMIT
    r = lam.invoke(FunctionName=name, InvocationType="Event", Payload=body)
    assert r["StatusCode"] == 202
    status, code, msg = client_error(lambda: lam.invoke(
        FunctionName=name, InvocationType="Event", Payload=body + " "))
    assert (status, code) == (413, "RequestTooLargeException")
    assert msg == ("Request must be smaller than 1048576 bytes for the InvokeFunction "
                   "operation")
    # the same body is fine synchronously (6 MB limit)
    r = lam.invoke(FunctionName=name, Payload=body + " ")
    assert r["StatusCode"] == 200 and "FunctionError" not in r


def test_event_validation_like_sync(dm, lam):
    status, code, _ = client_error(lambda: lam.invoke(FunctionName=uniq("nope"),
                                                      InvocationType="Event", Payload=b"{}"))
    assert (status, code) == (404, "ResourceNotFoundException")
    name = create_py(lam, uniq("flaky"), FLAKY)
    status, code, _ = client_error(lambda: lam.invoke(FunctionName=name, InvocationType="Event",
                                                      Payload=b"{not json"))
    assert (status, code) == (400, "InvalidRequestContentException")
    status, code, _ = client_error(lambda: lam.invoke(FunctionName=name, InvocationType="Event",
                                                      Payload=b"{}", Qualifier="nope"))
    assert (status, code) == (404, "ResourceNotFoundException")
    # DryRun still validates only
    r = lam.invoke(FunctionName=name, InvocationType="DryRun", Payload=b"{}")
    assert r["StatusCode"] == 204
    time.sleep(0.3)
    assert fn_log(dm, name) == []


# ---- retries and destinations ----------------------------------------------------------------


def test_retries_after_function_errors_then_on_success(dm, lam, recorder):
    # reserved concurrency 1: one instance, so its /tmp counts every attempt
    name = create_py(lam, uniq("flaky"), FLAKY)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": arn(recorder)}})
    before = metric(dm, 'nimbus_async_retries_total{reason="function_error"}')
    rid = send_event(lam, name, {"fail": 2, "k": "v"})
    rec = record_for(dm, recorder, rid)
    assert [l.split()[2] for l in attempts(dm, name, rid)] == ["1", "2", "3"]
    assert rec["version"] == "1.0"
    assert rec["requestContext"] == {"requestId": rid, "functionArn": arn(name, "$LATEST"),
                                     "condition": "Success", "approximateInvokeCount": 3}
    assert rec["requestPayload"] == {"fail": 2, "k": "v"}
    assert rec["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert rec["responsePayload"] == {"ok": True, "attempt": 3, "event": {"fail": 2, "k": "v"}}
    assert rec["timestamp"].endswith("Z")
    assert metric(dm, 'nimbus_async_retries_total{reason="function_error"}') >= before + 2


def test_max_retry_attempts_0_to_on_failure(dm, lam, recorder):
    name = create_py(lam, uniq("flaky"), FLAKY)
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": arn(recorder)}})
    rid = send_event(lam, name, {"fail": 5})
    rec = record_for(dm, recorder, rid)
    assert len(attempts(dm, name, rid)) == 1
    assert rec["requestContext"]["condition"] == "RetriesExhausted"
    assert rec["requestContext"]["approximateInvokeCount"] == 1
    assert rec["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST",
                                      "functionError": "Unhandled"}
    assert rec["responsePayload"]["errorType"] == "RuntimeError"
    assert rec["responsePayload"]["errorMessage"] == "failure 1 of %s" % rid


def test_retries_exhausted_without_destination_is_dropped_and_logged(dm, lam):
    name = create_py(lam, uniq("flaky"), FLAKY)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    dropped = metric(dm, "nimbus_async_dropped_total")
    rid = send_event(lam, name, {"fail": 9})
    line = wait_for(lambda: [l for l in fn_log(dm, name) if "dropped" in l and rid in l],
                    timeout=20)
    assert line == ["nimbus: asynchronous invocation dropped: RequestId: %s Condition: "
                    "RetriesExhausted ApproximateInvokeCount: 3" % rid], line
    assert [l.split()[2] for l in attempts(dm, name, rid)] == ["1", "2", "3"]
    assert metric(dm, "nimbus_async_dropped_total") >= dropped + 1
    assert "async event dropped request_id=%s" % rid in dm.daemon_log()


def test_throttled_until_max_event_age_then_on_failure(dm, lam, recorder):
    # reserved concurrency 0 refuses every attempt: throttles are retried with backoff (they are
    # not function errors) until the event is older than MaximumEventAgeInSeconds
    name = create_py(lam, uniq("flaky"), FLAKY)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0, MaximumEventAgeInSeconds=60,
        DestinationConfig={"OnFailure": {"Destination": arn(recorder)}})
    throttles = metric(dm, 'nimbus_async_retries_total{reason="throttle"}')
    rid = send_event(lam, name, {"never": "runs"})
    rec = record_for(dm, recorder, rid)
    assert rec["requestContext"]["condition"] == "EventAgeExceeded"
    assert rec["requestContext"]["approximateInvokeCount"] == 0
    assert rec["requestPayload"] == {"never": "runs"}
    assert "responsePayload" not in rec
    assert fn_log(dm, name) == []
    assert metric(dm, 'nimbus_async_retries_total{reason="throttle"}') >= throttles + 2
    assert metric(dm, 'nimbus_function_throttles_total{function="%s",version="$LATEST"}' % name) >= 2


def test_destination_record_for_alias_free_qualifier(dm, lam, recorder):
    # the event keeps the qualifier it was sent with: $LATEST given explicitly
    name = create_py(lam, uniq("flaky"), FLAKY)
    lam.put_function_event_invoke_config(
        FunctionName=name, Qualifier="$LATEST",
        DestinationConfig={"OnSuccess": {"Destination": arn(recorder)}})
    rid = send_event(lam, name, {"q": 1}, Qualifier="$LATEST")
    rec = record_for(dm, recorder, rid)
    assert rec["requestContext"]["functionArn"] == arn(name, "$LATEST")


# ---- event invoke config API -----------------------------------------------------------------


def test_event_invoke_config_crud(dm, lam, recorder):
    name = create_py(lam, uniq("cfg"), FLAKY)
    status, code, msg = client_error(lambda: lam.get_function_event_invoke_config(
        FunctionName=name))
    assert (status, code) == (404, "ResourceNotFoundException")
    assert msg == "The function %s doesn't have an EventInvokeConfig" % arn(name, "$LATEST")
    status, code, _ = client_error(lambda: lam.update_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=1))
    assert (status, code) == (404, "ResourceNotFoundException")

    r = lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1,
                                             MaximumEventAgeInSeconds=3600)
    assert r["FunctionArn"] == arn(name, "$LATEST")
    assert r["MaximumRetryAttempts"] == 1 and r["MaximumEventAgeInSeconds"] == 3600
    assert r["LastModified"].year >= 2024  # a timestamp botocore parsed
    assert r["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}

    r = lam.update_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": arn(recorder)}})
    assert r["MaximumRetryAttempts"] == 1 and r["MaximumEventAgeInSeconds"] == 3600
    assert r["DestinationConfig"]["OnFailure"] == {"Destination": arn(recorder)}

    # Put replaces the whole config: unset fields are gone
    r = lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    assert "MaximumEventAgeInSeconds" not in r
    assert r["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    g = lam.get_function_event_invoke_config(FunctionName=name)
    assert g["MaximumRetryAttempts"] == 0 and "MaximumEventAgeInSeconds" not in g

    # the unqualified config is the $LATEST one
    g2 = lam.get_function_event_invoke_config(FunctionName=name, Qualifier="$LATEST")
    assert g2["FunctionArn"] == g["FunctionArn"]

    lst = lam.list_function_event_invoke_configs(FunctionName=name)
    assert [c["FunctionArn"] for c in lst["FunctionEventInvokeConfigs"]] == [arn(name, "$LATEST")]
    _, stdout, _ = dm.aws("lambda", "list-function-event-invoke-configs", "--function-name", name)
    assert len(json.loads(stdout)["FunctionEventInvokeConfigs"]) == 1

    lam.delete_function_event_invoke_config(FunctionName=name)
    status, code, _ = client_error(lambda: lam.get_function_event_invoke_config(
        FunctionName=name))
    assert (status, code) == (404, "ResourceNotFoundException")
    status, code, _ = client_error(lambda: lam.delete_function_event_invoke_config(
        FunctionName=name))
    assert (status, code) == (404, "ResourceNotFoundException")
    assert lam.list_function_event_invoke_configs(
        FunctionName=name)["FunctionEventInvokeConfigs"] == []


def test_event_invoke_config_validation(dm, lam, recorder):
    name = create_py(lam, uniq("cfg"), FLAKY)
    status, code, msg = client_error(lambda: lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=3))
    assert (status, code) == (400, "ValidationException")
    assert "maximumRetryAttempts" in msg and "less than or equal to 2" in msg
    status, code, msg = client_error(lambda: lam.put_function_event_invoke_config(
        FunctionName=name, MaximumEventAgeInSeconds=21601))
    assert (status, code) == (400, "ValidationException")
    assert "maximumEventAgeInSeconds" in msg
    # below the minimum boto3 refuses itself; the server too
    with pytest.raises(ParamValidationError):
        lam.put_function_event_invoke_config(FunctionName=name, MaximumEventAgeInSeconds=59)
    status, _, body = dm.request("PUT", "/2019-09-25/functions/%s/event-invoke-config" % name,
                                 json.dumps({"MaximumEventAgeInSeconds": 59}),
                                 {"Content-Type": "application/json"})
    assert status == 400 and b"greater than or equal to 60" in body
    # destinations: a missing queue, a missing function, another account
    for dest in ("arn:aws:sqs:us-east-1:000000000000:q", arn(uniq("missing")),
                 "arn:aws:lambda:us-east-1:111111111111:function:%s" % recorder, "nonsense"):
        status, code, msg = client_error(lambda: lam.put_function_event_invoke_config(
            FunctionName=name, DestinationConfig={"OnFailure": {"Destination": dest}}))
        assert (status, code) == (400, "InvalidParameterValueException"), dest
        assert msg.startswith("The destination ARN %s is invalid." % dest), msg
    # nothing was stored by the refused calls
    status, code, _ = client_error(lambda: lam.get_function_event_invoke_config(
        FunctionName=name))
    assert code == "ResourceNotFoundException"
    # unknown function / qualifier
    status, code, _ = client_error(lambda: lam.put_function_event_invoke_config(
        FunctionName=uniq("nope"), MaximumRetryAttempts=1))
    assert (status, code) == (404, "ResourceNotFoundException")
    status, code, _ = client_error(lambda: lam.put_function_event_invoke_config(
        FunctionName=name, Qualifier="nope", MaximumRetryAttempts=1))
    assert (status, code) == (404, "ResourceNotFoundException")


def test_event_invoke_config_persists_and_goes_with_its_function(fresh_daemon, recorder):
    d1 = fresh_daemon(FAST)
    lam = d1.boto3()
    name = create_py(lam, uniq("cfg"), FLAKY)
    other = create_py(lam, uniq("rec"), RECORDER)
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=1,
        DestinationConfig={"OnSuccess": {"Destination": arn(other)}})
    d1.stop()
    d2 = Daemon(d1.data_dir, FAST).start()
    try:
        lam2 = d2.boto3()
        g = lam2.get_function_event_invoke_config(FunctionName=name)
        assert g["MaximumRetryAttempts"] == 1
        assert g["DestinationConfig"]["OnSuccess"] == {"Destination": arn(other)}
        lam2.delete_function(FunctionName=name)
        create_py(lam2, name, FLAKY)
        status, code, _ = client_error(lambda: lam2.get_function_event_invoke_config(
            FunctionName=name))
        assert (status, code) == (404, "ResourceNotFoundException")
    finally:
        d2.stop()


# ---- durability ------------------------------------------------------------------------------


def test_sigterm_keeps_waiting_events_for_the_next_start(fresh_daemon):
    # a throttled function (reserved concurrency 0) holds its events in retry; a clean stop
    # keeps them, the next start delivers them once the function may run: none was in flight
    d1 = fresh_daemon(FAST)
    lam = d1.boto3()
    name = create_py(lam, uniq("held"), FLAKY)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    rids = [send_event(lam, name, {"n": i}) for i in range(5)]
    assert wait_for(lambda: metric(d1, 'nimbus_async_retries_total{reason="throttle"}') >= 5)
    assert metric(d1, "nimbus_async_queue_depth") == 5
    assert d1.stop() == 0
    d2 = Daemon(d1.data_dir, FAST).start()
    try:
        assert metric(d2, "nimbus_async_queue_depth") == 5
        assert metric(d2, "nimbus_async_redelivered_total") == 0
        d2.boto3().delete_function_concurrency(FunctionName=name)
        for rid in rids:
            assert wait_for(lambda: attempts(d2, name, rid), timeout=20), rid
        assert wait_for(lambda: metric(d2, "nimbus_async_queue_depth") == 0)
        assert metric(d2, "nimbus_async_delivered_total") == 5
        for rid in rids:
            assert len(attempts(d2, name, rid)) == 1
    finally:
        d2.stop()



def test_retry_count_survives_a_restart(fresh_daemon):
    # MaximumRetryAttempts 1: one failed attempt before the stop, one after, then it is over
    slow = ["--async-retry-delay-ms", "60000"]
    d1 = fresh_daemon(slow)
    lam = d1.boto3()
    name = create_py(lam, uniq("restart"), FLAKY)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)
    rid = send_event(lam, name, {"fail": 99})
    assert wait_for(lambda: metric(d1, 'nimbus_async_retries_total{reason="function_error"}'),
                    timeout=20)
    assert d1.stop() == 0
    d2 = Daemon(d1.data_dir, FAST).start()
    try:
        line = "nimbus: asynchronous invocation dropped: RequestId: %s Condition: " \
               "RetriesExhausted ApproximateInvokeCount: 2" % rid
        assert wait_for(lambda: line in fn_log(d2, name), timeout=20), fn_log(d2, name)
        starts = [l for l in fn_log(d2, name) if l.startswith("START RequestId: %s " % rid)]
        assert len(starts) == 2
        assert metric(d2, "nimbus_async_redelivered_total") == 0
    finally:
        d2.stop()


@pytest.mark.slow
def test_kill_9_loses_no_accepted_event(fresh_daemon):
    """10,000 Event invocations from 16 clients; the daemon is killed with SIGKILL midway and
    restarted on the same data dir: every event that got its 202 is delivered (the function logs
    each request id), duplicates are possible and counted."""
    total, workers = 10000, 16
    d1 = fresh_daemon(["--async-concurrency", "8"])
    lam = d1.boto3()
    name = uniq("durable")
    lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=ROLE,
                        Handler="probe", Code={"ZipFile": c_probe_zip()}, Timeout=30)
    path = "/2015-03-31/functions/%s/invocations" % name
    hdrs = {"X-Amz-Invocation-Type": "Event", "Content-Type": "application/json"}
    accepted, unsent, lock = [], [], threading.Lock()
    killed = threading.Event()

    def send(dm, i):
        if dm is d1 and killed.is_set():
            unsent.append(i)
            return
        try:
            status, h, _ = dm.request("POST", path, json.dumps({"id": i}), hdrs, timeout=30)
        except OSError:
            return  # in flight at the kill: never acknowledged
        if status == 202:
            with lock:
                accepted.append(h["x-amzn-requestid"])
                if len(accepted) == total // 2 and dm is d1:
                    os.kill(d1.proc.pid, signal.SIGKILL)
                    killed.set()

    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(lambda i: send(d1, i), range(total)))
    d1.proc.wait()
    assert killed.is_set() and len(accepted) >= total // 2
    port = d1.port
    d1.log.close()
    d2 = Daemon(d1.data_dir, ["--async-concurrency", "8"])
    d2.port, d2.endpoint = port, "http://127.0.0.1:%d" % port
    d2.start()
    try:
        # the rest of the 10,000 go to the restarted daemon, while it redelivers
        with ThreadPoolExecutor(workers) as ex:
            list(ex.map(lambda i: send(d2, i), list(unsent)))
        assert len(accepted) >= total - 2 * workers
        want = set(accepted)

        def delivered():
            seen = set()
            for l in fn_log(d2, name):
                if l.startswith("c probe: request "):
                    seen.add(l[len("c probe: request "):].strip())
            return want <= seen

        assert wait_for(delivered, timeout=45, interval=0.5), d2.daemon_log()[-3000:]
        m = metrics(d2)
        print("accepted", len(accepted), "redelivered", m["nimbus_async_redelivered_total"])
        # what was in flight at the kill is counted, and nothing is left behind
        assert wait_for(lambda: metrics(d2)["nimbus_async_queue_depth"] == 0, timeout=20)
        # every delivery of a redelivered event is counted: deliveries beyond the accepted
        # events can only come from events loaded as in flight
        starts = [l for l in fn_log(d2, name) if l.startswith("START RequestId: ")]
        dups = len(starts) - len(set(starts))
        assert dups <= m["nimbus_async_redelivered_total"], (dups, m)
    finally:
        d2.stop()


# ---- versions and aliases ----------------------------------------------------------------------

TAGGED = r'''
import os
TAG = "@TAG@"
def handler(event, context):
    print("TAGGED %s %s" % (TAG, context.aws_request_id))
    if TAG == "fail":
        raise RuntimeError("version %s fails" % os.environ["AWS_LAMBDA_FUNCTION_VERSION"])
    return {"tag": TAG, "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"]}
'''


def test_event_to_an_alias_runs_the_version_picked_at_each_attempt(fresh_daemon):
    # retries wait 3 s, long enough to move the alias between the two attempts
    dm = fresh_daemon([a if a != "300" else "3000" for a in FAST])
    lam = dm.boto3()
    recorder = create_py(lam, uniq("rec"), RECORDER)
    name = uniq("alias-ev")
    create_py(lam, name, TAGGED.replace("@TAG@", "fail"), Publish=True)
    lam.update_function_code(FunctionName=name, Publish=True,
                             ZipFile=zip_files({"main.py": (TAGGED.replace("@TAG@", "ok"), 0o644)}))
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lam.put_function_event_invoke_config(
        FunctionName=name, Qualifier="live", MaximumRetryAttempts=1,
        DestinationConfig={"OnSuccess": {"Destination": arn(recorder)}})
    # an alias with DryRun: 204 once it resolves, 404 for an unknown one
    assert lam.invoke(FunctionName=name, Qualifier="live",
                      InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(ClientError) as ei:
        lam.invoke(FunctionName=name, Qualifier="nope", InvocationType="DryRun")
    assert ei.value.response["Error"]["Code"] == "ResourceNotFoundException"

    rid = send_event(lam, name, {"n": 1}, Qualifier="live")
    key = 'nimbus_function_errors_total{function="%s",version="1"}' % name
    assert wait_for(lambda: metric(dm, key) >= 1, timeout=20), dm.daemon_log()[-3000:]
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
    rec = record_for(dm, recorder, rid)
    assert rec["requestContext"] == {"requestId": rid, "functionArn": arn(name, "live"),
                                     "condition": "Success", "approximateInvokeCount": 2}
    assert rec["responseContext"] == {"statusCode": 200, "executedVersion": "2"}
    assert rec["responsePayload"] == {"tag": "ok", "version": "2"}


def test_a_version_or_alias_takes_its_event_invoke_config_along(fresh_daemon):
    dm = fresh_daemon(FAST)
    lam = dm.boto3()
    name = create_py(lam, uniq("eic-q"), RECORDER, Publish=True)
    lam.create_alias(FunctionName=name, Name="a", FunctionVersion="1")
    for q in ("$LATEST", "1", "a"):
        lam.put_function_event_invoke_config(FunctionName=name, Qualifier=q,
                                             MaximumRetryAttempts=1)

    def qualifiers(client):
        cfgs = client.list_function_event_invoke_configs(FunctionName=name)
        return sorted(c["FunctionArn"].rsplit(":", 1)[1]
                      for c in cfgs["FunctionEventInvokeConfigs"])
    assert qualifiers(lam) == ["$LATEST", "1", "a"]
    lam.delete_alias(FunctionName=name, Name="a")
    assert qualifiers(lam) == ["$LATEST", "1"]
    # an alias of the same name starts without the old config
    lam.create_alias(FunctionName=name, Name="a", FunctionVersion="1")
    status, code, msg = client_error(lambda: lam.get_function_event_invoke_config(
        FunctionName=name, Qualifier="a"))
    assert (status, code) == (404, "ResourceNotFoundException")
    assert "doesn't have an EventInvokeConfig" in msg
    lam.delete_alias(FunctionName=name, Name="a")
    lam.delete_function(FunctionName=name, Qualifier="1")
    assert qualifiers(lam) == ["$LATEST"]
    # and the store agrees: nothing comes back at a restart
    dm.stop()
    d2 = Daemon(dm.data_dir, FAST).start()
    try:
        lam2 = d2.boto3()
        assert qualifiers(lam2) == ["$LATEST"]
        lam2.create_alias(FunctionName=name, Name="a", FunctionVersion="$LATEST")
        status, code, _ = client_error(lambda: lam2.get_function_event_invoke_config(
            FunctionName=name, Qualifier="a"))
        assert (status, code) == (404, "ResourceNotFoundException")
    finally:
        d2.stop()


def test_a_function_that_is_its_own_destination_stops_after_16_records(dm, lam):
    name = create_py(lam, uniq("selfdest"), RECORDER)
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": arn(name)}})
    before = metric(dm, "nimbus_async_loops_stopped_total")
    rid = send_event(lam, name, {"start": True})
    assert wait_for(lambda: metric(dm, "nimbus_async_loops_stopped_total") >= before + 1,
                    timeout=60), dm.daemon_log()[-3000:]
    stopped = wait_for(lambda: [l for l in fn_log(dm, name)
                                if l.startswith("nimbus: destination record not sent")])
    assert len(stopped) == 1 and "recursive loop detected after 16" in stopped[0], stopped
    recs = wait_for(lambda: [r for r in records(dm, name) if "requestContext" in r] if len(
        records(dm, name)) >= 17 else None)
    assert recs and len(recs) == 16, recs
    # the first record is about the client's event, each next one about the record before it
    assert recs[0]["requestContext"]["requestId"] == rid
    assert recs[0]["requestPayload"] == {"start": True}
    # nothing more arrives
    settled = len(records(dm, name))
    assert settled == 17


SLOW_RECORDER = r'''
import json, time

def handler(event, context):
    time.sleep(0.4)
    print("RECORD " + json.dumps(event, sort_keys=True))
    return None
'''


def test_destination_loop_count_survives_kill_9(fresh_daemon):
    # a function that is its own OnSuccess destination; the daemon is killed with SIGKILL midway
    # through the chain and restarted: the chain's count comes back with the stored events, so
    # the chain still stops after 16 records in total (not 16 more)
    d1 = fresh_daemon(FAST)
    lam = d1.boto3()
    name = create_py(lam, uniq("selfkill"), SLOW_RECORDER)
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": arn(name)}})
    rid = send_event(lam, name, {"start": True})

    def chain(dm):  # the destination records seen, by the request id they are about
        return {r["requestContext"]["requestId"]: r for r in records(dm, name)
                if "requestContext" in r}
    assert wait_for(lambda: len(chain(d1)) >= 4, timeout=60), d1.daemon_log()[-3000:]
    d1.stop(sig=signal.SIGKILL)
    seen = len(chain(d1))
    assert 4 <= seen < 16, seen  # killed mid-chain
    d2 = Daemon(d1.data_dir, FAST).start()
    try:
        assert wait_for(lambda: metric(d2, "nimbus_async_loops_stopped_total") >= 1,
                        timeout=60), d2.daemon_log()[-3000:]
        assert wait_for(lambda: metric(d2, "nimbus_async_queue_depth") == 0, timeout=20)
        time.sleep(1)
        stopped = [l for l in fn_log(d2, name)
                   if l.startswith("nimbus: destination record not sent")]
        assert len(stopped) == 1 and "recursive loop detected after 16" in stopped[0], stopped
        recs = chain(d2)
        assert len(recs) == 16, sorted(recs)
        assert recs[rid]["requestPayload"] == {"start": True}
        # each record but the first is about an event that carried the record before it: one
        # unbroken chain from the client's event, no fork after the restart
        refs = {r["requestPayload"]["requestContext"]["requestId"]
                for k, r in recs.items() if k != rid}
        assert len(refs) == 15 and refs < set(recs), (refs, sorted(recs))
        assert metric(d2, "nimbus_async_loops_stopped_total") == 1
        assert metric(d2, "nimbus_async_queue_depth") == 0
    finally:
        d2.stop()


def test_config_writes_racing_version_deletes_leave_no_orphans(fresh_daemon):
    # a Put of a version's config and the version's delete sent together, in either order of
    # arrival: whatever the replies, no config may outlive its version, in memory or on disk
    dm = fresh_daemon(FAST)
    lam = dm.boto3()
    name = create_py(lam, uniq("race"), RECORDER)
    outcomes = set()

    def put(q):
        try:
            lam.put_function_event_invoke_config(FunctionName=name, Qualifier=q,
                                                 MaximumRetryAttempts=1)
            return "put"
        except ClientError as e:
            return e.response["Error"]["Code"]

    def delete(q):
        try:
            lam.delete_function(FunctionName=name, Qualifier=q)
            return "deleted"
        except ClientError as e:
            return e.response["Error"]["Code"]

    with ThreadPoolExecutor(2) as pool:
        for i in range(12):
            lam.update_function_configuration(FunctionName=name, Timeout=10 + i)
            q = lam.publish_version(FunctionName=name)["Version"]
            if i % 2:
                lam.put_function_event_invoke_config(FunctionName=name, Qualifier=q,
                                                     MaximumRetryAttempts=0)
            a, b = pool.submit(put, q), pool.submit(delete, q)
            outcomes.add((a.result(), b.result()))

    def listed(client):
        cfgs = client.list_function_event_invoke_configs(FunctionName=name)
        return [c["FunctionArn"] for c in cfgs["FunctionEventInvokeConfigs"]]
    assert listed(lam) == [], outcomes
    dm.stop()
    d2 = Daemon(dm.data_dir, FAST).start()
    try:
        assert listed(d2.boto3()) == [], outcomes
    finally:
        d2.stop()
