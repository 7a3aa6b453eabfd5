"""
test_esm.py - event source mappings SQS queue -> function (src/esm.c, src/api_esm.c) against a
real `nimbus serve`, with boto3, the aws CLI and the AWS SDK for JavaScript v3.

Covers: Create/Get/Update/Delete/ListEventSourceMappings (State strings, LastModified, filters,
Marker/MaxItems) and their validation errors; end to end: a Python function receives the SQS event
(§4.3 shape) in batches of the configured size, the messages are deleted after success, a failing
function's messages come back and land in the DLQ after maxReceiveCount, ReportBatchItemFailures
deletes only the successful ones (a malformed response fails the whole batch), a disabled mapping
does not consume, wake from zero (no instance before the first message), FIFO order per group.
Durability (slow): 10,000 messages, kill -9 of the daemon midway, restart on the same data dir:
every message processed at least once and none deleted without a successful invocation.
"""
import glob
import json
import os
import signal
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ROLE, Daemon, zip_files
from helpers import metrics, uniq, wait_for

REGION, ACCOUNT = "us-east-1", "000000000000"

WORKER = r'''
import json

def handler(event, context):
    recs = event["Records"]
    print("BATCH %d %s" % (len(recs), json.dumps(recs[0], sort_keys=True)))
    failures = []
    for r in recs:
        print("REC %s %s %s" % (r["messageId"], r["attributes"]["ApproximateReceiveCount"],
                                r["body"]))
        if r["body"].startswith("fail"):
            raise RuntimeError("failing " + r["body"])
        if r["body"].startswith("bad"):
            failures.append({"itemIdentifier": r["messageId"]})
        if r["body"].startswith("malformed"):
            return {"batchItemFailures": "nope"}
    ok = [r["messageId"] for r in recs if not r["body"].startswith("bad")]
    print("DONE " + " ".join(ok))
    return {"batchItemFailures": failures}
'''


def fn_log(dm, name):
    out = []
    for path in sorted(glob.glob(os.path.join(dm.data_dir, "logs", name, "*.log"))):
        with open(path, errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t", 2)
                if len(parts) == 3:
                    out.append(parts[2])
    return out


def recs(dm, name):
    """(messageId, receive count, body) of every REC line."""
    out = []
    for l in fn_log(dm, name):
        if l.startswith("REC "):
            mid, n, body = l[4:].split(" ", 2)
            out.append((mid, int(n), body))
    return out


def batches(dm, name):
    return [(int(l.split(" ", 2)[1]), json.loads(l.split(" ", 2)[2])) for l in fn_log(dm, name)
            if l.startswith("BATCH ")]


def done_ids(dm, name):
    ids = []
    for l in fn_log(dm, name):
        if l.startswith("DONE"):
            ids += l.split()[1:]
    return ids


@pytest.fixture(scope="module")
def sqs(daemon):
    return daemon.boto3("sqs")


def deploy(lam, name=None, **kw):
    name = name or uniq("esmfn")
    kw.setdefault("Timeout", 30)
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                        Handler="worker.handler",
                        Code={"ZipFile": zip_files({"worker.py": (WORKER, 0o644)})}, **kw)
    return name


def new_queue(sqs, prefix="esmq", fifo=False, **attrs):
    name = uniq(prefix) + (".fifo" if fifo else "")
    if fifo:
        attrs["FifoQueue"] = "true"
    url = sqs.create_queue(QueueName=name, Attributes={k: str(v) for k, v in attrs.items()})[
        "QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    return url, arn


def depth(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def send(sqs, url, bodies, **kw):
    for i in range(0, len(bodies), 10):
        entries = [dict(Id=str(j), MessageBody=b, **kw) for j, b in enumerate(bodies[i:i + 10])]
        r = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert not r.get("Failed"), r


def empty(sqs, url):
    return depth(sqs, url) == (0, 0)


def raw(daemon, method, uid, body=None):
    """A raw signed request to /2015-03-31/event-source-mappings/[uid] (for what boto3 1.26
    lacks: ScalingConfig); (status, headers, body)."""
    return daemon.request(method, "/2015-03-31/event-source-mappings/" + uid,
                          json.dumps(body).encode() if body is not None else b"",
                          {"Content-Type": "application/json"})


def create(daemon, **kw):
    st, _h, body = raw(daemon, "POST", "", kw)
    assert st == 202, body
    return json.loads(body)


def err(call):
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response


# ---- control plane ------------------------------------------------------------------------

def test_crud_boto3(daemon, lam, sqs):
    fn = deploy(lam)
    _url, arn = new_queue(sqs)
    c = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, BatchSize=5,
                                        Enabled=False)
    assert c["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert c["State"] == "Creating"
    assert c["EventSourceArn"] == arn and c["BatchSize"] == 5
    assert c["FunctionArn"] == "arn:aws:lambda:%s:%s:function:%s" % (REGION, ACCOUNT, fn)
    assert abs(c["LastModified"].timestamp() - time.time()) < 120
    uid = c["UUID"]
    g = lam.get_event_source_mapping(UUID=uid)
    assert g["State"] == "Disabled" and g["MaximumBatchingWindowInSeconds"] == 0
    u = lam.update_event_source_mapping(UUID=uid, Enabled=True, BatchSize=50,
                                        MaximumBatchingWindowInSeconds=2,
                                        FunctionResponseTypes=["ReportBatchItemFailures"])
    assert u["State"] == "Enabling"
    # boto3 1.26 predates ScalingConfig: raw request
    st, _h, body = raw(daemon, "PUT", uid, {"ScalingConfig": {"MaximumConcurrency": 3}})
    assert st == 202 and json.loads(body)["ScalingConfig"] == {"MaximumConcurrency": 3}
    st, h, body = raw(daemon, "PUT", uid, {"ScalingConfig": {"MaximumConcurrency": 1}})
    assert st == 400 and h["x-amzn-errortype"].startswith("ValidationException"), body
    g = lam.get_event_source_mapping(UUID=uid)
    assert g["State"] == "Enabled" and g["BatchSize"] == 50
    assert g["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    st, _h, body = raw(daemon, "GET", uid)
    assert st == 200 and json.loads(body)["ScalingConfig"] == {"MaximumConcurrency": 3}
    u = lam.update_event_source_mapping(UUID=uid, Enabled=False)
    assert u["State"] == "Disabling"
    lst = lam.list_event_source_mappings(FunctionName=fn)["EventSourceMappings"]
    assert [m["UUID"] for m in lst] == [uid]
    assert lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"][0][
        "UUID"] == uid
    d = lam.delete_event_source_mapping(UUID=uid)
    assert d["State"] == "Deleting" and d["ResponseMetadata"]["HTTPStatusCode"] == 202
    e = err(lambda: lam.get_event_source_mapping(UUID=uid))
    assert e["Error"]["Code"] == "ResourceNotFoundException"
    assert lam.list_event_source_mappings(FunctionName=fn)["EventSourceMappings"] == []


def test_errors(daemon, lam, sqs):
    fn = deploy(lam)
    _url, arn = new_queue(sqs)
    _furl, farn = new_queue(sqs, fifo=True)
    cases = [
        (dict(EventSourceArn=arn, FunctionName="nope-" + fn), "ResourceNotFoundException"),
        (dict(EventSourceArn=arn + "-missing", FunctionName=fn),
         "InvalidParameterValueException"),
        (dict(EventSourceArn=arn, FunctionName=fn, BatchSize=100),
         "InvalidParameterValueException"),
        (dict(EventSourceArn=farn, FunctionName=fn, BatchSize=20,
              MaximumBatchingWindowInSeconds=1), "InvalidParameterValueException"),
        (dict(EventSourceArn=arn, FunctionName=fn + ":nover"), "ResourceNotFoundException"),
    ]
    for kw, code in cases:
        e = err(lambda: lam.create_event_source_mapping(**kw))
        assert e["Error"]["Code"] == code, (kw, e)
    ok = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, Enabled=False)
    e = err(lambda: lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn))
    assert e["Error"]["Code"] == "ResourceConflictException"
    assert e["ResponseMetadata"]["HTTPStatusCode"] == 409
    for uid in ("00000000-0000-0000-0000-000000000000",):
        for call in (lambda: lam.get_event_source_mapping(UUID=uid),
                     lambda: lam.delete_event_source_mapping(UUID=uid),
                     lambda: lam.update_event_source_mapping(UUID=uid, BatchSize=2)):
            assert err(call)["Error"]["Code"] == "ResourceNotFoundException"
    e = err(lambda: lam.update_event_source_mapping(UUID=ok["UUID"], BatchSize=11))
    assert e["Error"]["Code"] == "InvalidParameterValueException"
    lam.delete_event_source_mapping(UUID=ok["UUID"])


def test_list_paging_and_alias(daemon, lam, sqs):
    fn = deploy(lam)
    v = lam.publish_version(FunctionName=fn)["Version"]
    lam.create_alias(FunctionName=fn, Name="live", FunctionVersion=v)
    uids = []
    for _ in range(3):
        _url, arn = new_queue(sqs)
        uids.append(lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn + ":live",
                                                    Enabled=False)["UUID"])
    m = lam.get_event_source_mapping(UUID=uids[0])
    assert m["FunctionArn"].endswith(":function:%s:live" % fn)
    p1 = lam.list_event_source_mappings(FunctionName=fn, MaxItems=2)
    assert len(p1["EventSourceMappings"]) == 2 and p1["NextMarker"]
    p2 = lam.list_event_source_mappings(FunctionName=fn, MaxItems=2, Marker=p1["NextMarker"])
    got = [x["UUID"] for x in p1["EventSourceMappings"] + p2["EventSourceMappings"]]
    assert sorted(got) == sorted(uids) and "NextMarker" not in p2
    for u in uids:
        lam.delete_event_source_mapping(UUID=u)


def test_crud_aws_cli(daemon, lam, sqs):
    fn = deploy(lam)
    _url, arn = new_queue(sqs)
    _rc, out, _e = daemon.aws("lambda", "create-event-source-mapping", "--function-name", fn,
                              "--event-source-arn", arn, "--batch-size", "7", "--no-enabled")
    c = json.loads(out)
    assert c["State"] == "Creating" and c["BatchSize"] == 7
    _rc, out, _e = daemon.aws("lambda", "get-event-source-mapping", "--uuid", c["UUID"])
    assert json.loads(out)["State"] == "Disabled"
    _rc, out, _e = daemon.aws("lambda", "list-event-source-mappings", "--function-name", fn)
    assert [m["UUID"] for m in json.loads(out)["EventSourceMappings"]] == [c["UUID"]]
    _rc, out, _e = daemon.aws("lambda", "update-event-source-mapping", "--uuid", c["UUID"],
                              "--batch-size", "3")
    assert json.loads(out)["BatchSize"] == 3
    rc, _o, e = daemon.aws("lambda", "get-event-source-mapping", "--uuid", "nope", check=False)
    assert rc != 0 and "ResourceNotFoundException" in e
    daemon.aws("lambda", "delete-event-source-mapping", "--uuid", c["UUID"])


def test_crud_js_sdk(daemon, lam, sqs, js):
    fn = deploy(lam)
    _url, arn = new_queue(sqs)
    c = js.call("CreateEventSourceMapping", EventSourceArn=arn, FunctionName=fn, BatchSize=4,
                Enabled=False, ScalingConfig={"MaximumConcurrency": 5})
    assert c["State"] == "Creating" and c["BatchSize"] == 4
    assert c["ScalingConfig"] == {"MaximumConcurrency": 5}
    g = js.call("GetEventSourceMapping", UUID=c["UUID"])
    assert g["State"] == "Disabled"
    lst = js.call("ListEventSourceMappings", EventSourceArn=arn)
    assert [m["UUID"] for m in lst["EventSourceMappings"]] == [c["UUID"]]
    e = js.error("CreateEventSourceMapping", EventSourceArn=arn, FunctionName=fn)
    assert "ResourceConflict" in json.dumps(e)
    js.call("DeleteEventSourceMapping", UUID=c["UUID"])
    e = js.error("GetEventSourceMapping", UUID=c["UUID"])
    assert "ResourceNotFound" in json.dumps(e)


# ---- end to end ---------------------------------------------------------------------------

def fn_instances(daemon, fn):
    m = metrics(daemon)
    return sum(v for k, v in m.items()
               if k.startswith("nimbus_function_instances{") and 'function="%s"' % fn in k)


def test_batches_delete_and_wake_from_zero(daemon, lam, sqs):
    fn = deploy(lam)
    url, arn = new_queue(sqs)
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, BatchSize=5)
    time.sleep(0.5)
    assert fn_instances(daemon, fn) == 0  # wake from zero: nothing runs before a message
    bodies = ["m%d" % i for i in range(20)]
    send(sqs, url, bodies, MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
    assert wait_for(lambda: len(set(done_ids(daemon, fn))) == 20, timeout=60), fn_log(daemon, fn)
    assert fn_instances(daemon, fn) >= 1
    assert wait_for(lambda: empty(sqs, url), timeout=20)
    bs = batches(daemon, fn)
    assert all(1 <= n <= 5 for n, _ in bs) and sum(n for n, _ in bs) == 20
    r = bs[0][1]
    assert r["eventSource"] == "aws:sqs" and r["eventSourceARN"] == arn
    assert r["awsRegion"] == REGION and r["body"].startswith("m")
    for k in ("ApproximateReceiveCount", "SentTimestamp", "SenderId",
              "ApproximateFirstReceiveTimestamp"):
        assert k in r["attributes"], r
    assert r["messageAttributes"]["k"]["stringValue"] == "v"
    assert r["messageAttributes"]["k"]["dataType"] == "String"
    import hashlib
    assert r["md5OfBody"] == hashlib.md5(r["body"].encode()).hexdigest()
    assert r["receiptHandle"] and r["messageId"]
    m = metrics(daemon)
    assert m["nimbus_esm_records_deleted_total"] >= 20


def test_failures_go_to_dlq(daemon, lam, sqs):
    fn = deploy(lam)
    dlq_url, dlq_arn = new_queue(sqs, "dlq")
    url, arn = new_queue(sqs, VisibilityTimeout=1, RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}))
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, BatchSize=1)
    send(sqs, url, ["fail-1"])
    assert wait_for(lambda: depth(sqs, dlq_url)[0] == 1, timeout=30), fn_log(daemon, fn)
    seen = [n for _mid, n, b in recs(daemon, fn) if b == "fail-1"]
    assert seen == [1, 2]
    assert wait_for(lambda: empty(sqs, url), timeout=10)
    msg = sqs.receive_message(QueueUrl=dlq_url)["Messages"][0]
    assert msg["Body"] == "fail-1"


def test_report_batch_item_failures(daemon, lam, sqs):
    fn = deploy(lam)
    url, arn = new_queue(sqs, VisibilityTimeout=5)
    u = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, BatchSize=10,
                                        MaximumBatchingWindowInSeconds=1,
                                        FunctionResponseTypes=["ReportBatchItemFailures"],
                                        Enabled=False)["UUID"]
    send(sqs, url, ["ok-1", "bad-1", "ok-2", "bad-2"])
    lam.update_event_source_mapping(UUID=u, Enabled=True)
    # the bad ones come back (receive count 2), the good ones only once
    assert wait_for(lambda: sum(1 for _m, n, b in recs(daemon, fn) if n >= 2) >= 2, timeout=30)
    lam.update_event_source_mapping(UUID=u, Enabled=False)
    r = recs(daemon, fn)
    assert sorted(b for _m, n, b in r if n == 1) == ["bad-1", "bad-2", "ok-1", "ok-2"]
    assert {b for _m, n, b in r if n >= 2} == {"bad-1", "bad-2"}
    # a malformed response fails the whole batch
    fn2 = deploy(lam)
    url2, arn2 = new_queue(sqs, VisibilityTimeout=2)
    send(sqs, url2, ["malformed-1"])
    u2 = lam.create_event_source_mapping(EventSourceArn=arn2, FunctionName=fn2, BatchSize=1,
                                         FunctionResponseTypes=["ReportBatchItemFailures"])
    assert wait_for(lambda: any(n >= 2 for _m, n, _b in recs(daemon, fn2)), timeout=30)
    lam.delete_event_source_mapping(UUID=u2["UUID"])
    lam.delete_event_source_mapping(UUID=u)


def test_disabled_does_not_consume(daemon, lam, sqs):
    fn = deploy(lam)
    url, arn = new_queue(sqs)
    u = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, Enabled=False)
    send(sqs, url, ["d1", "d2", "d3"])
    time.sleep(2)
    assert depth(sqs, url) == (3, 0) and recs(daemon, fn) == []
    lam.update_event_source_mapping(UUID=u["UUID"], Enabled=True)
    assert wait_for(lambda: empty(sqs, url), timeout=60)
    assert wait_for(lambda: sorted(b for _m, _n, b in recs(daemon, fn)) == ["d1", "d2", "d3"],
                    timeout=10), recs(daemon, fn)


def test_throttle_backs_off_without_failing(daemon, lam, sqs):
    fn = deploy(lam)
    lam.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=0)
    url, arn = new_queue(sqs, VisibilityTimeout=30)
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, BatchSize=10)
    before = metrics(daemon).get("nimbus_esm_throttles_total", 0)
    send(sqs, url, ["t1", "t2"])
    assert wait_for(lambda: metrics(daemon)["nimbus_esm_throttles_total"] > before, timeout=10)
    time.sleep(1)
    assert recs(daemon, fn) == [] and not empty(sqs, url)
    lam.delete_function_concurrency(FunctionName=fn)
    # the held batch goes out after the backoff: received once, not failed
    assert wait_for(lambda: empty(sqs, url), timeout=30)
    assert wait_for(lambda: sorted((b, n) for _m, n, b in recs(daemon, fn)) ==
                    [("t1", 1), ("t2", 1)], timeout=10), recs(daemon, fn)


def test_fifo_order_per_group(daemon, lam, sqs):
    fn = deploy(lam)
    url, arn = new_queue(sqs, fifo=True, ContentBasedDeduplication="true")
    for g in ("a", "b"):
        for i in range(0, 30, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[
                dict(Id=str(j), MessageBody="%s-%02d" % (g, i + j), MessageGroupId=g)
                for j in range(10)])
    create(daemon, EventSourceArn=arn, FunctionName=fn, BatchSize=3,
           ScalingConfig={"MaximumConcurrency": 2})
    assert wait_for(lambda: empty(sqs, url), timeout=60), fn_log(daemon, fn)
    assert wait_for(lambda: len(recs(daemon, fn)) >= 60, timeout=10)
    r = [b for _m, _n, b in recs(daemon, fn)]
    for g in ("a", "b"):
        assert [b for b in r if b.startswith(g)] == ["%s-%02d" % (g, i) for i in range(30)]
    _n, first = batches(daemon, fn)[0]
    assert first["attributes"]["MessageGroupId"] in ("a", "b")
    assert "SequenceNumber" in first["attributes"]


# ---- durability ---------------------------------------------------------------------------

@pytest.mark.slow
def test_durability_kill9(nimbus_bin, tmp_path):
    """10,000 messages; kill -9 of the daemon midway; restart: every message processed at least
    once, and every message deleted was in a batch that succeeded (DONE line)."""
    data = str(tmp_path / "data")
    dm = Daemon(data).start()
    try:
        lam, sqs = dm.boto3("lambda"), dm.boto3("sqs")
        fn = deploy(lam)
        url, arn = new_queue(sqs, VisibilityTimeout=3)
        uid = create(dm, EventSourceArn=arn, FunctionName=fn, BatchSize=10, Enabled=False,
                     ScalingConfig={"MaximumConcurrency": 2})["UUID"]
        bodies = ["n%05d" % i for i in range(10000)]
        send(sqs, url, bodies)
        lam.update_event_source_mapping(UUID=uid, Enabled=True)
        assert wait_for(lambda: len(set(done_ids(dm, fn))) >= 1000, timeout=60)
        dm.proc.send_signal(signal.SIGKILL)
        dm.proc.wait()
        dm.log.close()
        dm2 = Daemon(data)
        dm2.port = dm.port
        dm2.endpoint = dm.endpoint
        dm2.start()
        try:
            sqs2 = dm2.boto3("sqs")
            # messages left in the queue at restart were never deleted; count them now
            left = sum(depth(sqs2, url))
            assert wait_for(lambda: empty(sqs2, url), timeout=60), depth(sqs2, url)
            time.sleep(1.5)  # the log flush timer
            ids_done = set(done_ids(dm2, fn))
            processed = {b for _m, _n, b in recs(dm2, fn)}
            assert processed == set(bodies)
            # the queue is empty and nothing went to a DLQ: every message was deleted, and each
            # one's id is in a DONE line (a successful invocation)
            by_body = {}
            for mid, _n, b in recs(dm2, fn):
                by_body.setdefault(b, set()).add(mid)
            assert all(by_body[b] & ids_done for b in bodies)
            assert 0 < left < 10000  # killed midway
        finally:
            dm2.stop()
    finally:
        if dm.alive():
            dm.stop()


# ---- async destinations to queues ---------------------------------------------------------

OKFAIL = r'''
def handler(event, context):
    if event.get("fail"):
        raise RuntimeError("asked to fail")
    return {"echo": event}
'''


def test_async_destinations_to_queues(daemon, lam, sqs):
    name = uniq("dest")
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="f.handler",
                        Code={"ZipFile": zip_files({"f.py": (OKFAIL, 0o644)})}, Timeout=10)
    ok_url, ok_arn = new_queue(sqs, "okq")
    bad_url, bad_arn = new_queue(sqs, "badq")
    # a queue that does not exist is refused
    e = err(lambda: lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": ok_arn + "-nope"}}))
    assert e["Error"]["Code"] == "InvalidParameterValueException"
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0,
        DestinationConfig={"OnSuccess": {"Destination": ok_arn},
                           "OnFailure": {"Destination": bad_arn}})
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 1}')
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"fail": true}')

    def one(url):
        r = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
        return r[0] if r else None
    m = wait_for(lambda: one(ok_url), timeout=60)
    assert m, "no OnSuccess record"
    rec = json.loads(m["Body"])
    assert rec["requestContext"]["condition"] == "Success"
    assert rec["requestContext"]["functionArn"].endswith(":function:%s:$LATEST" % name)
    assert rec["requestPayload"] == {"n": 1} and rec["responsePayload"] == {"echo": {"n": 1}}
    m = wait_for(lambda: one(bad_url), timeout=60)
    assert m, "no OnFailure record"
    rec = json.loads(m["Body"])
    assert rec["requestContext"]["condition"] == "RetriesExhausted"
    assert rec["requestPayload"] == {"fail": True}
    assert rec["responseContext"]["functionError"] == "Unhandled"


def test_async_dead_letter_queue(daemon, lam, sqs):
    dlq_url, dlq_arn = new_queue(sqs, "fdlq")
    name = uniq("dlqfn")
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="f.handler",
                        Code={"ZipFile": zip_files({"f.py": (OKFAIL, 0o644)})}, Timeout=10,
                        DeadLetterConfig={"TargetArn": dlq_arn})
    assert lam.get_function_configuration(FunctionName=name)["DeadLetterConfig"] == {
        "TargetArn": dlq_arn}
    e = err(lambda: lam.update_function_configuration(
        FunctionName=name, DeadLetterConfig={"TargetArn": "arn:aws:sns:us-east-1:0:t"}))
    assert e["Error"]["Code"] == "InvalidParameterValueException"
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    r = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"fail": 1}')
    rid = r["ResponseMetadata"]["RequestId"]

    def one():
        m = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1,
                                MessageAttributeNames=["All"]).get("Messages", [])
        return m[0] if m else None
    m = wait_for(one, timeout=60)
    assert m, "no dead letter"
    assert json.loads(m["Body"]) == {"fail": 1}
    attrs = m["MessageAttributes"]
    assert attrs["RequestID"]["StringValue"] == rid
    assert attrs["ErrorCode"]["DataType"] == "Number"
    assert "asked to fail" in attrs["ErrorMessage"]["StringValue"]
    lam.update_function_configuration(FunctionName=name, DeadLetterConfig={"TargetArn": ""})
    assert "DeadLetterConfig" not in lam.get_function_configuration(FunctionName=name)
