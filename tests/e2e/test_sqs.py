"""
test_sqs.py - the SQS-compatible queue service with real clients: boto3 1.26 and the aws CLI 2.9
(query protocol, form POST + XML) and the AWS SDK for JavaScript v3 (JSON 1.0 protocol).

Covers every operation, message attributes and their MD5s (checked against an independent
implementation of the algorithm below), long polling (early return when a message arrives from
another thread, empty after the wait), visibility timeouts, delays, retention, redrive to a
dead-letter queue, FIFO ordering and deduplication, batches with partial failures, error shapes of
both protocols, and durability across `kill -9` (slow).
"""
import base64
import hashlib
import json
import os
import shutil
import signal
import struct
import tempfile
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError

import jssdk
from conftest import Daemon
from helpers import uniq

NS = "{http://queue.amazonaws.com/doc/2012-11-05/}"


@pytest.fixture(scope="module")
def sqs(daemon):
    return daemon.boto3("sqs")


def md5(b):
    return hashlib.md5(b if isinstance(b, bytes) else b.encode()).hexdigest()


def md5_attrs(attrs):
    """MD5OfMessageAttributes, written from the algorithm's description (LAMBDA.md §6.4)."""
    out = b""
    for name in sorted(attrs):
        a = attrs[name]
        enc = lambda b: struct.pack(">I", len(b)) + b
        out += enc(name.encode()) + enc(a["DataType"].encode())
        if "StringValue" in a:
            out += b"\x01" + enc(a["StringValue"].encode())
        else:
            v = a["BinaryValue"]
            out += b"\x02" + enc(v if isinstance(v, bytes) else base64.b64decode(v))
    return hashlib.md5(out).hexdigest()


def new_queue(sqs, prefix="q", **attrs):
    name = uniq(prefix)
    if attrs.get("FifoQueue") == "true":
        name += ".fifo"
    return sqs.create_queue(QueueName=name, Attributes={k: str(v) for k, v in attrs.items()})[
        "QueueUrl"]


def code_of(e):
    return e.response["Error"]["Code"]


def raw_query(daemon, params, path="/"):
    body = urllib.parse.urlencode(params)
    return daemon.request("POST", path, body, {
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, service="sqs")


def raw_json(daemon, op, body):
    return daemon.request("POST", "/", json.dumps(body), {
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS." + op},
        service="sqs")


# ---- basics ------------------------------------------------------------------------------------

def test_round_trip_with_attributes_and_md5s(sqs, daemon):
    url = new_queue(sqs)
    assert url.startswith(daemon.endpoint + "/000000000000/")
    body = "hello <&\"'> \r\n\t \u00e9\u4e2d\U0001F600"
    attrs = {"s": {"DataType": "String", "StringValue": "v<&>"},
             "n": {"DataType": "Number", "StringValue": "12.5"},
             "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
             "custom": {"DataType": "String.json", "StringValue": "{}"}}
    r = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attrs)
    assert r["MD5OfMessageBody"] == md5(body)
    assert r["MD5OfMessageAttributes"] == md5_attrs(attrs)
    m = sqs.receive_message(QueueUrl=url, AttributeNames=["All"],
                            MessageAttributeNames=["All"])["Messages"]
    assert len(m) == 1
    m = m[0]
    assert m["Body"] == body and m["MessageId"] == r["MessageId"]
    assert m["MD5OfBody"] == md5(body)
    assert m["MessageAttributes"] == attrs
    assert m["MD5OfMessageAttributes"] == md5_attrs(attrs)
    a = m["Attributes"]
    assert a["ApproximateReceiveCount"] == "1"
    assert abs(int(a["SentTimestamp"]) - time.time() * 1000) < 60000
    assert "ApproximateFirstReceiveTimestamp" in a and a["SenderId"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_message_attribute_name_filters(sqs):
    url = new_queue(sqs)
    attrs = {"foo.a": {"DataType": "String", "StringValue": "1"},
             "foo.b": {"DataType": "String", "StringValue": "2"},
             "bar": {"DataType": "String", "StringValue": "3"}}
    sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=attrs)
    m = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["foo.*"],
                            VisibilityTimeout=0)["Messages"][0]
    assert set(m["MessageAttributes"]) == {"foo.a", "foo.b"}
    assert m["MD5OfMessageAttributes"] == md5_attrs({k: attrs[k] for k in ("foo.a", "foo.b")})
    m = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["bar"],
                            VisibilityTimeout=0)["Messages"][0]
    assert set(m["MessageAttributes"]) == {"bar"}
    m = sqs.receive_message(QueueUrl=url, MessageAttributeNames=[".*"],
                            AttributeNames=["SentTimestamp"], VisibilityTimeout=0)["Messages"][0]
    assert set(m["MessageAttributes"]) == set(attrs)
    assert set(m["Attributes"]) == {"SentTimestamp"}
    m = sqs.receive_message(QueueUrl=url)["Messages"][0]
    assert "MessageAttributes" not in m and "Attributes" not in m


def test_boto3_speaks_query_protocol(daemon):
    """What boto3 1.26 sends is the form-encoded query protocol; a raw query request works."""
    s, h, b = raw_query(daemon, {"Action": "CreateQueue", "Version": "2012-11-05",
                                 "QueueName": uniq("raw"), "Attribute.1.Name": "DelaySeconds",
                                 "Attribute.1.Value": "0"})
    assert s == 200, b
    root = ET.fromstring(b)
    assert root.tag == NS + "CreateQueueResponse"
    url = root.find(NS + "CreateQueueResult/" + NS + "QueueUrl").text
    # botocore's serializer for this operation is the query one
    import botocore.session
    model = botocore.session.get_session().get_service_model("sqs")
    assert model.protocol == "query"
    # percent-encoded body with '+' for space
    s, h, b = daemon.request("POST", "/", "Action=SendMessage&QueueUrl=%s&MessageBody=a+b%%26c" %
                             urllib.parse.quote(url, safe=""),
                             {"Content-Type": "application/x-www-form-urlencoded"}, service="sqs")
    assert s == 200, b
    assert ET.fromstring(b).find(".//" + NS + "MD5OfMessageBody").text == md5("a b&c")


def test_post_to_queue_url_path(sqs, daemon):
    url = new_queue(sqs)
    path = urllib.parse.urlparse(url).path
    s, h, b = raw_query(daemon, {"Action": "SendMessage", "MessageBody": "via-path"}, path=path)
    assert s == 200, b
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "via-path"


def test_queue_attributes_get_set(sqs):
    url = new_queue(sqs, VisibilityTimeout=10, DelaySeconds=0)
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["VisibilityTimeout"] == "10" and a["MessageRetentionPeriod"] == "345600"
    assert a["QueueArn"].startswith("arn:aws:sqs:us-east-1:000000000000:")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "20",
                                                       "MaximumMessageSize": "2048"})
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout",
                                                               "MaximumMessageSize"])
    assert a["Attributes"] == {"VisibilityTimeout": "20", "MaximumMessageSize": "2048"}
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 2049)
    assert code_of(e.value) == "InvalidParameterValue"
    sqs.send_message(QueueUrl=url, MessageBody="x" * 2000)
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert a["Attributes"]["ApproximateNumberOfMessages"] == "1"
    with pytest.raises(ClientError) as e:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "43201"})
    assert code_of(e.value) == "InvalidAttributeValue"
    with pytest.raises(ClientError) as e:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Bogus": "1"})
    assert code_of(e.value) == "InvalidAttributeName"
    with pytest.raises(ClientError) as e:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Bogus"])
    assert code_of(e.value) == "InvalidAttributeName"


def test_create_queue_idempotent_and_conflict(sqs):
    name = uniq("idem")
    u1 = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "7"})["QueueUrl"]
    u2 = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "7"})["QueueUrl"]
    assert u1 == u2
    with pytest.raises(sqs.exceptions.QueueNameExists) as e:
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "8"})
    assert code_of(e.value) == "QueueAlreadyExists"
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName="bad name!")
    assert code_of(e.value) == "InvalidParameterValue"
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == u1


def test_list_queues_prefix_and_paging(sqs):
    prefix = uniq("lst")
    names = sorted("%s-%d" % (prefix, i) for i in range(5))
    for n in names:
        sqs.create_queue(QueueName=n)
    urls = sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"]
    assert [u.rsplit("/", 1)[1] for u in urls] == names
    seen, token = [], None
    while True:
        kw = {"QueueNamePrefix": prefix, "MaxResults": 2}
        if token:
            kw["NextToken"] = token
        r = sqs.list_queues(**kw)
        seen += [u.rsplit("/", 1)[1] for u in r.get("QueueUrls", [])]
        token = r.get("NextToken")
        if not token:
            break
    assert seen == names
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix=uniq("none"))


def test_tags(sqs):
    name = uniq("tags")
    url = sqs.create_queue(QueueName=name, tags={"a": "1", "b": "2"})["QueueUrl"]
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"a": "1", "b": "2"}
    sqs.tag_queue(QueueUrl=url, Tags={"c": "3"})
    sqs.untag_queue(QueueUrl=url, TagKeys=["a"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"b": "2", "c": "3"}


# ---- long polling, visibility, delay ---------------------------------------------------------

def test_long_poll_returns_when_a_message_arrives(sqs, daemon):
    url = new_queue(sqs)
    other = daemon.boto3("sqs")

    def later():
        time.sleep(1.0)
        other.send_message(QueueUrl=url, MessageBody="wake")

    t = threading.Thread(target=later)
    t.start()
    r = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)
    t.join()
    assert [m["Body"] for m in r["Messages"]] == ["wake"]


def test_long_poll_empty_after_wait(sqs):
    url = new_queue(sqs)
    t0 = time.monotonic()
    r = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    assert "Messages" not in r
    assert time.monotonic() - t0 >= 0.9  # the wait was held, not answered at once


def test_queue_default_wait_time(sqs):
    url = new_queue(sqs, ReceiveMessageWaitTimeSeconds=1)
    t0 = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    assert time.monotonic() - t0 >= 0.9


def test_visibility_timeout_and_change(sqs):
    url = new_queue(sqs, VisibilityTimeout=1)
    sqs.send_message(QueueUrl=url, MessageBody="v")
    m1 = sqs.receive_message(QueueUrl=url)["Messages"][0]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    # a long poll is woken when the message becomes visible again
    m2 = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5,
                             AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
    assert m2["MessageId"] == m1["MessageId"]
    assert m2["Attributes"]["ApproximateReceiveCount"] == "2"
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"],
                                  VisibilityTimeout=0)
    m3 = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"][0]
    assert m3["MessageId"] == m1["MessageId"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m3["ReceiptHandle"],
                                  VisibilityTimeout=60)
    time.sleep(1.5)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    # a stale handle (from before the last receive) is not in flight any more
    with pytest.raises(ClientError) as e:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m1["ReceiptHandle"],
                                      VisibilityTimeout=0)
    assert code_of(e.value) == "AWS.SimpleQueueService.MessageNotInflight"
    with pytest.raises(ClientError) as e:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle="garbage", VisibilityTimeout=0)
    assert code_of(e.value) == "ReceiptHandleIsInvalid"
    r = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "ok", "ReceiptHandle": m3["ReceiptHandle"], "VisibilityTimeout": 0},
        {"Id": "bad", "ReceiptHandle": "garbage", "VisibilityTimeout": 0}])
    assert [x["Id"] for x in r["Successful"]] == ["ok"]
    assert [(x["Id"], x["Code"]) for x in r["Failed"]] == [("bad", "ReceiptHandleIsInvalid")]
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["MessageId"] == m1["MessageId"]


def test_delay_seconds_queue_and_message(sqs):
    url = new_queue(sqs, DelaySeconds=2)
    sqs.send_message(QueueUrl=url, MessageBody="queue-delay")
    sqs.send_message(QueueUrl=url, MessageBody="no-delay", DelaySeconds=0)
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["ApproximateNumberOfMessagesDelayed"] == "1"
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["no-delay"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    r = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)
    assert [m["Body"] for m in r["Messages"]] == ["queue-delay"]
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901)
    assert code_of(e.value) == "InvalidParameterValue"


def test_max_number_of_messages(sqs):
    url = new_queue(sqs)
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "m%d" % i}
                                                  for i in range(10)])
    sqs.send_message(QueueUrl=url, MessageBody="m10")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(got) == 10
    got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in got) == sorted("m%d" % i for i in range(11))
    for bad in (0, 11):
        with pytest.raises(ClientError) as e:
            sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=bad)
        assert code_of(e.value) == "InvalidParameterValue"


@pytest.mark.slow
def test_retention_expiry(sqs):
    url = new_queue(sqs, MessageRetentionPeriod=60)
    sqs.send_message(QueueUrl=url, MessageBody="old")
    time.sleep(61)
    sqs.send_message(QueueUrl=url, MessageBody="new")
    r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    assert [m["Body"] for m in r["Messages"]] == ["new"]


# ---- redrive, FIFO ---------------------------------------------------------------------------

def test_redrive_to_dead_letter_queue(sqs):
    dlq = new_queue(sqs, "dlq")
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    src = new_queue(sqs, "src", VisibilityTimeout=0,
                    RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn,
                                              "maxReceiveCount": "2"}))
    src_arn = sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sqs.send_message(QueueUrl=src, MessageBody="poison")
    for i in range(2):
        m = sqs.receive_message(QueueUrl=src, AttributeNames=["All"])["Messages"][0]
        assert m["Attributes"]["ApproximateReceiveCount"] == str(i + 1)
    assert "Messages" not in sqs.receive_message(QueueUrl=src)
    m = sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"])["Messages"][0]
    assert m["Body"] == "poison"
    assert m["Attributes"]["DeadLetterQueueSourceArn"] == src_arn
    with pytest.raises(ClientError) as e:
        sqs.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": "{not json"})
    assert code_of(e.value) == "InvalidParameterValue"


def test_fifo_group_ordering(sqs):
    url = new_queue(sqs, "fifo", FifoQueue="true", VisibilityTimeout=30)
    seqs = []
    for i in range(3):
        for g in ("A", "B"):
            r = sqs.send_message(QueueUrl=url, MessageBody="%s%d" % (g, i), MessageGroupId=g,
                                 MessageDeduplicationId="%s%d" % (g, i))
            seqs.append(int(r["SequenceNumber"]))
    assert seqs == sorted(seqs) and len(set(seqs)) == 6
    # one message: the head of a group; that group is now blocked, the other is not
    m = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]
    assert [x["Body"] for x in m] == ["A0"]
    assert m[0]["Attributes"]["MessageGroupId"] == "A"
    assert m[0]["Attributes"]["SequenceNumber"] == "%020d" % seqs[0]
    m2 = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [x["Body"] for x in m2] == ["B0", "B1", "B2"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m[0]["ReceiptHandle"])
    m3 = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [x["Body"] for x in m3] == ["A1", "A2"]
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="x")
    assert code_of(e.value) == "MissingParameter"
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="A")
    assert code_of(e.value) == "InvalidParameterValue"


def test_fifo_dedup_explicit_and_content_based(sqs):
    url = new_queue(sqs, "dedup", FifoQueue="true")
    r1 = sqs.send_message(QueueUrl=url, MessageBody="one", MessageGroupId="g",
                          MessageDeduplicationId="d1")
    r2 = sqs.send_message(QueueUrl=url, MessageBody="one again", MessageGroupId="g",
                          MessageDeduplicationId="d1")
    assert r1["MessageId"] == r2["MessageId"]
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["one"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    # still deduplicated after the delete (5-minute window)
    sqs.send_message(QueueUrl=url, MessageBody="one", MessageGroupId="g",
                     MessageDeduplicationId="d1")
    assert "Messages" not in sqs.receive_message(QueueUrl=url)

    cb = new_queue(sqs, "cbd", FifoQueue="true", ContentBasedDeduplication="true")
    a = sqs.send_message(QueueUrl=cb, MessageBody="same", MessageGroupId="g")
    b = sqs.send_message(QueueUrl=cb, MessageBody="same", MessageGroupId="g")
    c = sqs.send_message(QueueUrl=cb, MessageBody="other", MessageGroupId="g")
    assert a["MessageId"] == b["MessageId"] != c["MessageId"]
    got = sqs.receive_message(QueueUrl=cb, MaxNumberOfMessages=10,
                              AttributeNames=["MessageDeduplicationId"])["Messages"]
    assert [m["Body"] for m in got] == ["same", "other"]
    assert got[0]["Attributes"]["MessageDeduplicationId"] == hashlib.sha256(b"same").hexdigest()
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName=uniq("notfifo"), Attributes={"FifoQueue": "true"})
    assert code_of(e.value) in ("InvalidParameterValue", "InvalidAttributeValue")


# ---- batches, purge, delete ------------------------------------------------------------------

def test_batches_with_partial_failures(sqs):
    url = new_queue(sqs)
    r = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "a", "MessageBody": "ok-a"},
        {"Id": "b", "MessageBody": "bad\x00"},
        {"Id": "c", "MessageBody": "ok-c", "MessageAttributes": {
            "k": {"DataType": "String", "StringValue": "v"}}},
        {"Id": "d", "MessageBody": "x", "MessageAttributes": {"k": {"DataType": "Nope",
                                                                    "StringValue": "v"}}}])
    assert sorted(x["Id"] for x in r["Successful"]) == ["a", "c"]
    ok = {x["Id"]: x for x in r["Successful"]}
    assert ok["a"]["MD5OfMessageBody"] == md5("ok-a")
    assert ok["c"]["MD5OfMessageAttributes"] == md5_attrs({"k": {"DataType": "String",
                                                                 "StringValue": "v"}})
    failed = {x["Id"]: x for x in r["Failed"]}
    assert failed["b"]["Code"] == "InvalidMessageContents" and failed["b"]["SenderFault"]
    assert failed["d"]["Code"] == "InvalidParameterValue"
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in got) == ["ok-a", "ok-c"]
    r = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "x", "ReceiptHandle": got[0]["ReceiptHandle"]},
        {"Id": "y", "ReceiptHandle": got[1]["ReceiptHandle"]},
        {"Id": "z", "ReceiptHandle": "not-a-handle"}])
    assert sorted(x["Id"] for x in r["Successful"]) == ["x", "y"]
    assert [(x["Id"], x["Code"]) for x in r["Failed"]] == [("z", "ReceiptHandleIsInvalid")]
    for entries, code in (
            ([], "AWS.SimpleQueueService.EmptyBatchRequest"),
            ([{"Id": str(i), "MessageBody": "x"} for i in range(11)],
             "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"),
            ([{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}],
             "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
            ([{"Id": "a b", "MessageBody": "x"}], "AWS.SimpleQueueService.InvalidBatchEntryId")):
        with pytest.raises(ClientError) as e:
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert code_of(e.value) == code


def test_purge_and_delete_queue(sqs):
    url = new_queue(sqs)
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    sqs.purge_queue(QueueUrl=url)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    sqs.send_message(QueueUrl=url, MessageBody="after")
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "after"
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=url, MessageBody="x")
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=url.rsplit("/", 1)[1])


def test_delete_queue_answers_held_long_poll(sqs, daemon):
    url = new_queue(sqs)
    out = {}

    def poll():
        out["r"] = daemon.boto3("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=20)

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    sqs.delete_queue(QueueUrl=url)
    t.join(timeout=30)
    assert not t.is_alive() and time.monotonic() - t0 < 15
    assert "Messages" not in out["r"]


# ---- error shapes ------------------------------------------------------------------------------

def test_query_error_shapes(daemon):
    cases = [
        ({"Action": "GetQueueUrl", "QueueName": "nope-" + uniq("x")}, 400,
         "AWS.SimpleQueueService.NonExistentQueue"),
        ({"Action": "Frobnicate"}, 400, "InvalidAction"),
        ({"Action": "CreateQueue"}, 400, "MissingParameter"),
        ({"QueueName": "x"}, 400, "MissingAction"),
        ({"Action": "SendMessage", "QueueUrl": "http://x/000000000000/nope-zz",
          "MessageBody": "x"}, 400, "AWS.SimpleQueueService.NonExistentQueue"),
    ]
    for params, status, code in cases:
        s, h, b = raw_query(daemon, params)
        assert s == status, (params, b)
        root = ET.fromstring(b)
        assert root.tag == NS + "ErrorResponse"
        assert root.find(NS + "Error/" + NS + "Code").text == code
        assert root.find(NS + "Error/" + NS + "Type").text == "Sender"
        assert root.find(NS + "Error/" + NS + "Message").text
        assert root.find(NS + "RequestId").text
    s, h, b = daemon.request("POST", "/", "Action=SendMessage&QueueUrl=%zz",
                             {"Content-Type": "application/x-www-form-urlencoded"}, service="sqs")
    assert s == 400 and b"InvalidParameterValue" in b


def test_json_error_shapes(daemon):
    s, h, b = raw_json(daemon, "GetQueueUrl", {"QueueName": "nope-" + uniq("x")})
    assert s == 400
    assert json.loads(b)["__type"] == "QueueDoesNotExist"
    assert h["x-amzn-query-error"] == "AWS.SimpleQueueService.NonExistentQueue;Sender"
    s, h, b = raw_json(daemon, "Frobnicate", {})
    assert s == 400 and h["x-amzn-query-error"] == "InvalidAction;Sender"
    s, h, b = daemon.request("POST", "/", "{not json", {
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.ListQueues"},
        service="sqs")
    assert s == 400 and "__type" in json.loads(b)
    s, h, b = raw_json(daemon, "CreateQueue", {})
    assert s == 400 and h["x-amzn-query-error"] == "MissingParameter;Sender"


def test_send_message_contents_refused(sqs):
    url = new_queue(sqs)
    for body in ("\x00", "a\x08b", "\ufffe", "\x1f"):
        with pytest.raises(ClientError) as e:
            sqs.send_message(QueueUrl=url, MessageBody=body)
        assert code_of(e.value) == "InvalidMessageContents"
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="")
    assert code_of(e.value) == "MissingParameter"
    with pytest.raises(ClientError) as e:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="bogus")
    assert code_of(e.value) == "ReceiptHandleIsInvalid"
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={
            "AWS.x": {"DataType": "String", "StringValue": "v"}})
    assert code_of(e.value) == "InvalidParameterValue"


# ---- aws CLI (query) ---------------------------------------------------------------------------

def test_aws_cli_round_trip(daemon):
    name = uniq("cli")
    _, out, _ = daemon.aws("sqs", "create-queue", "--queue-name", name)
    url = json.loads(out)["QueueUrl"]
    _, out, _ = daemon.aws("sqs", "send-message", "--queue-url", url, "--message-body", "from cli",
                           "--message-attributes",
                           '{"k":{"DataType":"String","StringValue":"v"}}')
    assert json.loads(out)["MD5OfMessageBody"] == md5("from cli")
    _, out, _ = daemon.aws("sqs", "receive-message", "--queue-url", url,
                           "--message-attribute-names", "All", "--attribute-names", "All")
    m = json.loads(out)["Messages"][0]
    assert m["Body"] == "from cli" and m["MessageAttributes"]["k"]["StringValue"] == "v"
    daemon.aws("sqs", "delete-message", "--queue-url", url, "--receipt-handle",
               m["ReceiptHandle"])
    _, out, _ = daemon.aws("sqs", "get-queue-attributes", "--queue-url", url,
                           "--attribute-names", "ApproximateNumberOfMessagesNotVisible")
    assert json.loads(out)["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0"
    _, out, _ = daemon.aws("sqs", "list-queues", "--queue-name-prefix", name)
    assert json.loads(out)["QueueUrls"] == [url]
    rc, _, err = daemon.aws("sqs", "get-queue-url", "--queue-name", uniq("nope"), check=False)
    assert rc != 0 and "NonExistentQueue" in err
    daemon.aws("sqs", "purge-queue", "--queue-url", url)
    daemon.aws("sqs", "delete-queue", "--queue-url", url)


# ---- JS SDK v3 (JSON 1.0) ----------------------------------------------------------------------

def test_js_sdk_json_protocol(js, daemon):
    name = uniq("js")
    call = lambda op, **kw: jssdk.sdk_call(op, client="SQS", **kw)
    (r,) = js.run([call("CreateQueue", QueueName=name, Attributes={"VisibilityTimeout": "30"},
                        tags={"t": "1"})])
    url = r["output"]["QueueUrl"]
    attrs = {"s": {"DataType": "String", "StringValue": "v"},
             "b": {"DataType": "Binary", "BinaryValue": b"\x01\x02"}}
    body = "js <&> \r\n \U0001F600"
    res = js.run([
        call("SendMessage", QueueUrl=url, MessageBody=body, MessageAttributes=attrs),
        call("SendMessageBatch", QueueUrl=url, Entries=[
            {"Id": "a", "MessageBody": "b1"}, {"Id": "b", "MessageBody": "\x00"}]),
        call("ReceiveMessage", QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
             MessageSystemAttributeNames=["All"]),
        call("GetQueueAttributes", QueueUrl=url, AttributeNames=["All"]),
        call("ListQueues", QueueNamePrefix=name),
        call("GetQueueUrl", QueueName=name),
        call("ListQueueTags", QueueUrl=url),
        call("GetQueueUrl", QueueName=uniq("nope")),
        call("SendMessage", QueueUrl=url, MessageBody="\x01"),
        call("ReceiveMessage", QueueUrl=url, WaitTimeSeconds=1),
    ])
    for i in range(7):
        assert "output" in res[i], res[i]
    assert res[0]["output"]["MD5OfMessageBody"] == md5(body)
    assert res[0]["output"]["MD5OfMessageAttributes"] == md5_attrs(attrs)
    assert [x["Id"] for x in res[1]["output"]["Successful"]] == ["a"]
    assert res[1]["output"]["Failed"][0]["Code"] == "InvalidMessageContents"
    msgs = res[2]["output"]["Messages"]
    assert sorted(m["Body"] for m in msgs) == sorted([body, "b1"])
    m = [m for m in msgs if m["Body"] == body][0]
    assert m["MessageAttributes"]["b"]["BinaryValue"] == b"\x01\x02"
    assert m["MD5OfMessageAttributes"] == md5_attrs(attrs)
    assert m["Attributes"]["ApproximateReceiveCount"] == "1"
    assert res[3]["output"]["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "2"
    assert res[4]["output"]["QueueUrls"] == [url]
    assert res[5]["output"]["QueueUrl"] == url
    assert res[6]["output"]["Tags"] == {"t": "1"}
    assert res[7]["error"]["name"] == "QueueDoesNotExist"
    assert res[7]["error"]["$metadata"]["httpStatusCode"] == 400
    assert res[8]["error"]["name"] == "InvalidMessageContents"
    assert "Messages" not in res[9]["output"]
    handles = [{"Id": "m%d" % i, "ReceiptHandle": x["ReceiptHandle"]} for i, x in enumerate(msgs)]
    res = js.run([
        call("ChangeMessageVisibility", QueueUrl=url, ReceiptHandle=msgs[0]["ReceiptHandle"],
             VisibilityTimeout=100),
        call("ChangeMessageVisibilityBatch", QueueUrl=url, Entries=[
            dict(h, VisibilityTimeout=100) for h in handles]),
        call("DeleteMessageBatch", QueueUrl=url, Entries=handles),
        call("DeleteMessage", QueueUrl=url, ReceiptHandle="garbage"),
        call("SetQueueAttributes", QueueUrl=url, Attributes={"DelaySeconds": "1"}),
        call("TagQueue", QueueUrl=url, Tags={"u": "2"}),
        call("UntagQueue", QueueUrl=url, TagKeys=["t"]),
        call("ListQueueTags", QueueUrl=url),
        call("PurgeQueue", QueueUrl=url),
        call("DeleteQueue", QueueUrl=url),
        call("GetQueueUrl", QueueName=name),
    ])
    for i in (0, 1, 2, 4, 5, 6, 7, 8, 9):
        assert "output" in res[i], (i, res[i])
    assert len(res[2]["output"]["Successful"]) == 2
    assert res[3]["error"]["name"] == "ReceiptHandleIsInvalid"
    assert res[7]["output"]["Tags"] == {"u": "2"}
    assert res[10]["error"]["name"] == "QueueDoesNotExist"


def test_js_sdk_long_poll_and_fifo(js, sqs):
    url = new_queue(sqs, "jsf", FifoQueue="true", ContentBasedDeduplication="true")
    call = lambda op, **kw: jssdk.sdk_call(op, client="SQS", **kw)
    res = js.run([
        call("SendMessage", QueueUrl=url, MessageBody="f1", MessageGroupId="g"),
        call("SendMessage", QueueUrl=url, MessageBody="f1", MessageGroupId="g"),
        call("SendMessage", QueueUrl=url, MessageBody="f2", MessageGroupId="g"),
        call("ReceiveMessage", QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2),
    ])
    assert res[0]["output"]["MessageId"] == res[1]["output"]["MessageId"]
    assert int(res[2]["output"]["SequenceNumber"]) > int(res[0]["output"]["SequenceNumber"])
    assert [m["Body"] for m in res[3]["output"]["Messages"]] == ["f1", "f2"]


# ---- durability --------------------------------------------------------------------------------

@pytest.mark.slow
def test_durability_kill_9(nimbus_bin):
    data = tempfile.mkdtemp(prefix="nimbus-e2e-")
    dm = Daemon(data).start()
    try:
        c = dm.boto3("sqs")
        url = c.create_queue(QueueName="durable", Attributes={"VisibilityTimeout": "600"})[
            "QueueUrl"]
        acked, deleted, deleting = set(), set(), set()
        lock = threading.Lock()
        total, threads = 10000, 8
        stop = threading.Event()

        def sender(t):
            cl = dm.boto3("sqs")
            i = t * 10
            while i < total and not stop.is_set():
                entries = [{"Id": str(j), "MessageBody": "m-%05d" % (i + j)} for j in range(10)]
                try:
                    r = cl.send_message_batch(QueueUrl=url, Entries=entries)
                except Exception:
                    return
                with lock:
                    acked.update("m-%05d" % (i + int(x["Id"])) for x in r["Successful"])
                i += threads * 10

        def deleter():
            cl = dm.boto3("sqs")
            while not stop.is_set():
                try:
                    r = cl.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                           VisibilityTimeout=3)
                    for m in r.get("Messages", []):
                        with lock:  # a delete cut short by the kill may still have committed
                            deleting.add(m["Body"])
                        cl.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                        with lock:
                            deleted.add(m["Body"])
                            deleting.discard(m["Body"])
                except Exception:
                    return

        ts = [threading.Thread(target=sender, args=(t,)) for t in range(threads)]
        ts.append(threading.Thread(target=deleter))
        for t in ts:
            t.start()
        while True:
            with lock:
                if len(acked) >= total // 2:
                    break
            time.sleep(0.01)
        os.kill(dm.proc.pid, signal.SIGKILL)
        dm.proc.wait()
        stop.set()
        for t in ts:
            t.join(timeout=60)
        assert 0 < len(acked) < total and deleted
        dm2 = Daemon(data).start()
        try:
            c2 = dm2.boto3("sqs")
            url2 = c2.get_queue_url(QueueName="durable")["QueueUrl"]
            # received-but-not-deleted messages come back once their 3 s visibility ends
            got = set()
            deadline = time.monotonic() + 8
            while True:
                r = c2.receive_message(QueueUrl=url2, MaxNumberOfMessages=10,
                                       VisibilityTimeout=600, WaitTimeSeconds=1)
                got.update(m["Body"] for m in r.get("Messages", []))
                if "Messages" not in r and time.monotonic() > deadline:
                    break
            assert not (got & deleted), "acknowledged deletes came back"
            assert len(deleting) <= 1  # one deleter thread: at most one delete in flight
            assert acked - deleted - deleting <= got, "%d acknowledged messages lost" % len(
                acked - deleted - deleting - got)
        finally:
            dm2.stop()
    finally:
        if dm.alive():
            dm.stop()
        shutil.rmtree(data, ignore_errors=True)


def test_aws_cli_sends_query_protocol(daemon):
    """The aws CLI 2.9 (its own vendored botocore) posts form-encoded Action=… requests."""
    _, _, err = daemon.aws("--debug", "sqs", "list-queues")
    assert "'Content-Type': 'application/x-www-form-urlencoded" in err
    assert "'Action': 'ListQueues'" in err  # the form's fields, as botocore logs them
    assert "X-Amz-Target" not in err
    assert "<ListQueuesResponse" in err  # and it parsed our XML reply


def test_abandoned_long_poll_takes_no_message(sqs, daemon):
    """A client that leaves during a long poll releases it: the next message is not swallowed."""
    url = new_queue(sqs)
    import socket
    with pytest.raises((socket.timeout, TimeoutError, OSError)):
        daemon.request("POST", "/", urllib.parse.urlencode({
            "Action": "ReceiveMessage", "QueueUrl": url, "WaitTimeSeconds": "20"}),
            {"Content-Type": "application/x-www-form-urlencoded"}, timeout=0.5, service="sqs")
    time.sleep(0.3)
    sqs.send_message(QueueUrl=url, MessageBody="kept")
    r = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)
    assert [m["Body"] for m in r["Messages"]] == ["kept"]


def test_restart_keeps_queues_and_messages(nimbus_bin):
    data = tempfile.mkdtemp(prefix="nimbus-e2e-")
    try:
        dm = Daemon(data).start()
        c = dm.boto3("sqs")
        url = c.create_queue(QueueName="keep", Attributes={"VisibilityTimeout": "1",
                                                           "DelaySeconds": "0"},
                             tags={"team": "x"})["QueueUrl"]
        furl = c.create_queue(QueueName="keep.fifo", Attributes={
            "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
        attrs = {"k": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}}
        c.send_message(QueueUrl=url, MessageBody="stays", MessageAttributes=attrs)
        c.send_message(QueueUrl=url, MessageBody="goes")
        fids = [c.send_message(QueueUrl=furl, MessageBody="f%d" % i, MessageGroupId="g")[
            "MessageId"] for i in range(3)]
        got = c.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        gone = [m for m in got if m["Body"] == "goes"][0]
        c.delete_message(QueueUrl=url, ReceiptHandle=gone["ReceiptHandle"])
        dm.stop()
        dm = Daemon(data).start()
        try:
            c = dm.boto3("sqs")
            url = c.get_queue_url(QueueName="keep")["QueueUrl"]
            furl = c.get_queue_url(QueueName="keep.fifo")["QueueUrl"]
            assert c.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "x"}
            a = c.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
            assert a["Attributes"]["VisibilityTimeout"] == "1"
            r = c.receive_message(QueueUrl=url, WaitTimeSeconds=5, MaxNumberOfMessages=10,
                                  MessageAttributeNames=["All"],
                                  AttributeNames=["ApproximateReceiveCount"])
            assert [m["Body"] for m in r["Messages"]] == ["stays"]
            m = r["Messages"][0]
            assert m["MessageAttributes"] == attrs
            assert m["MD5OfMessageAttributes"] == md5_attrs(attrs)
            assert m["Attributes"]["ApproximateReceiveCount"] == "2"
            r = c.receive_message(QueueUrl=furl, MaxNumberOfMessages=10)
            assert [m["Body"] for m in r["Messages"]] == ["f0", "f1", "f2"]
            # the deduplication window survives the restart (content-based here)
            again = c.send_message(QueueUrl=furl, MessageBody="f0", MessageGroupId="g")
            assert again["MessageId"] == fids[0]
        finally:
            dm.stop()
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_error_shapes_both_protocols(sqs, daemon):
    """Each error in both protocols: query XML Code and JSON __type + x-amzn-query-error."""
    url = new_queue(sqs)
    name = url.rsplit("/", 1)[1]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "30"})
    missing = url + "-missing"
    entry = "SendMessageBatchRequestEntry"
    cases = [
        # (op, JSON input, query params, code, JSON __type)
        ("GetQueueUrl", {"QueueName": name + "-missing"}, {"QueueName": name + "-missing"},
         "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"),
        ("CreateQueue", {"QueueName": name, "Attributes": {"VisibilityTimeout": "31"}},
         {"QueueName": name, "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "31"},
         "QueueAlreadyExists", "QueueNameExists"),
        ("CreateQueue", {}, {}, "MissingParameter", "MissingParameterException"),
        ("SendMessage", {"QueueUrl": missing, "MessageBody": "x"},
         {"QueueUrl": missing, "MessageBody": "x"}, "AWS.SimpleQueueService.NonExistentQueue",
         "QueueDoesNotExist"),
        ("SendMessage", {"QueueUrl": url, "MessageBody": "\u0001"},
         {"QueueUrl": url, "MessageBody": "\u0001"}, "InvalidMessageContents",
         "InvalidMessageContents"),
        ("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 11},
         {"QueueUrl": url, "MaxNumberOfMessages": "11"}, "InvalidParameterValue",
         "InvalidParameterValueException"),
        ("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": "x"},
         {"QueueUrl": url, "ReceiptHandle": "x"}, "ReceiptHandleIsInvalid",
         "ReceiptHandleIsInvalid"),
        ("SetQueueAttributes", {"QueueUrl": url, "Attributes": {"Nope": "1"}},
         {"QueueUrl": url, "Attribute.1.Name": "Nope", "Attribute.1.Value": "1"},
         "InvalidAttributeName", "InvalidAttributeName"),
        ("SetQueueAttributes", {"QueueUrl": url, "Attributes": {"DelaySeconds": "901"}},
         {"QueueUrl": url, "Attribute.1.Name": "DelaySeconds", "Attribute.1.Value": "901"},
         "InvalidAttributeValue", "InvalidAttributeValue"),
        ("SendMessageBatch", {"QueueUrl": url, "Entries": []}, {"QueueUrl": url},
         "AWS.SimpleQueueService.EmptyBatchRequest", "EmptyBatchRequest"),
        ("SendMessageBatch",
         {"QueueUrl": url, "Entries": [{"Id": "a", "MessageBody": "x"}] * 2},
         {"QueueUrl": url, entry + ".1.Id": "a", entry + ".1.MessageBody": "x",
          entry + ".2.Id": "a", entry + ".2.MessageBody": "x"},
         "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "BatchEntryIdsNotDistinct"),
        ("ChangeMessageVisibility",
         {"QueueUrl": url, "ReceiptHandle": "%016x-%016x" % (1, 2), "VisibilityTimeout": 5},
         {"QueueUrl": url, "ReceiptHandle": "%016x-%016x" % (1, 2), "VisibilityTimeout": "5"},
         "AWS.SimpleQueueService.MessageNotInflight", "MessageNotInflight"),
        ("Frobnicate", {}, {}, "InvalidAction", "InvalidAction"),
    ]
    for op, jin, qin, code, jtype in cases:
        s, h, b = raw_json(daemon, op, jin)
        assert s == 400, (op, b)
        assert h["content-type"] == "application/x-amz-json-1.0"
        assert json.loads(b)["__type"] == jtype, (op, b)
        assert json.loads(b)["message"]
        assert h["x-amzn-query-error"] == code + ";Sender", (op, h)
        params = dict(qin, Action=op, Version="2012-11-05")
        s, h, b = raw_query(daemon, params)
        assert s == 400, (op, b)
        root = ET.fromstring(b)
        assert root.find(NS + "Error/" + NS + "Code").text == code, (op, b)
        assert root.find(NS + "Error/" + NS + "Type").text == "Sender"


def test_nimbus_queue_cli(daemon):
    name = uniq("nq")
    p = daemon.cli("queue", "create", name, "--attr", "VisibilityTimeout=5", check=True)
    url = p.stdout.strip()
    assert url.endswith("/000000000000/" + name)
    assert daemon.cli("queue", "ls", name, check=True).stdout.split() == [url]
    mid = daemon.cli("queue", "send", name, "hello from nimbus", check=True).stdout.strip()
    assert len(mid) == 36
    p = daemon.cli("queue", "recv", name, "--keep", "--json", check=True)
    msgs = json.loads(p.stdout)["Messages"]
    assert msgs[0]["MessageId"] == mid and msgs[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    daemon.cli("queue", "purge", name, check=True)
    daemon.cli("queue", "send", name, "second", check=True)
    assert daemon.cli("queue", "recv", name, "--wait", "2", check=True).stdout == "second\n"
    assert daemon.cli("queue", "recv", name, check=True).stdout == ""  # deleted by the recv
    p = daemon.cli("queue", "send", "nope-" + name, "x")
    assert p.returncode == 3 and "QueueDoesNotExist" in p.stderr
    p = daemon.cli("queue", "frob")
    assert p.returncode == 2 and "unknown action" in p.stderr
    p = daemon.cli("queue", "recv", name, "--max", "11")
    assert p.returncode == 2
    assert "deleted " + name in daemon.cli("queue", "rm", name, check=True).stdout
    assert daemon.cli("queue", "ls", name, check=True).stdout == ""
