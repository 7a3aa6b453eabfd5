"""esm.py - event source mapping throughput: queue messages per second through
send -> function -> delete, for batch sizes 10 and 100, next to a baseline in the same run
(SendMessageBatch alone, the same client threads).

Phases (N messages of 100 bytes each, T client threads sending with boto3 SendMessageBatch):
1. baseline: send N messages to a queue nobody consumes (msgs/s acknowledged, each fsync'd).
2. per batch size B: a Python function that returns None is mapped to a fresh queue
   (ScalingConfig.MaximumConcurrency C; B > 10 uses MaximumBatchingWindowInSeconds 1);
   a) drain: N messages are sent with the mapping disabled, then it is enabled and the clock runs
      until the queue is empty (received, invoked, deleted durably);
   b) end to end: the mapping is enabled while N messages are sent; the clock runs from the first
      send until the queue is empty.

usage: /usr/bin/python3 bench/esm.py [N] [THREADS] [MAX_CONCURRENCY]
"""
import json
import sys
import threading
import time

from common import ROLE, report, start_daemon, stop_daemon, zip_files

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 4
CONC = int(sys.argv[3]) if len(sys.argv) > 3 else 4

FN = "def handler(event, context):\n    return None\n"


def send_all(dm, url, n):
    per = n // THREADS

    def worker():
        sqs = dm.boto3("sqs")
        for i in range(0, per, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(j), "MessageBody": "x" * 100} for j in range(10)])

    ts = [threading.Thread(target=worker) for _ in range(THREADS)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return per * THREADS, time.monotonic() - t0


def depth(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def wait_empty(sqs, url, timeout=120):
    deadline = time.monotonic() + timeout
    while depth(sqs, url) and time.monotonic() < deadline:
        time.sleep(0.02)
    return time.monotonic()


def queue(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    return url, arn


def main():
    dm = start_daemon()
    try:
        lam, sqs = dm.boto3("lambda"), dm.boto3("sqs")
        lam.create_function(FunctionName="sink", Runtime="python3.11", Role=ROLE,
                            Handler="f.handler", Code={"ZipFile": zip_files({"f.py": (FN, 0o644)})},
                            Timeout=30)
        url, _ = queue(sqs, "baseline")
        n, secs = send_all(dm, url, N)
        rows = [("SendMessageBatch alone (baseline)", "%.0f msgs/s" % (n / secs))]
        for b in (10, 100):
            for mode in ("drain", "e2e"):
                url, arn = queue(sqs, "q%d%s" % (b, mode))
                body = {"EventSourceArn": arn, "FunctionName": "sink", "BatchSize": b,
                        "Enabled": False, "ScalingConfig": {"MaximumConcurrency": CONC}}
                if b > 10:
                    body["MaximumBatchingWindowInSeconds"] = 1
                st, _h, out = dm.request("POST", "/2015-03-31/event-source-mappings/",
                                         json.dumps(body), {"Content-Type": "application/json"})
                uid = json.loads(out)["UUID"]
                if mode == "drain":
                    n, _ = send_all(dm, url, N)
                    t0 = time.monotonic()
                    lam.update_event_source_mapping(UUID=uid, Enabled=True)
                    t1 = wait_empty(sqs, url)
                    rows.append(("batch %d: drain %d queued (receive, invoke, delete)" % (b, n),
                                 "%.0f msgs/s" % (n / (t1 - t0))))
                else:
                    lam.update_event_source_mapping(UUID=uid, Enabled=True)
                    t0 = time.monotonic()
                    n, _ = send_all(dm, url, N)
                    t1 = wait_empty(sqs, url)
                    rows.append(("batch %d: send -> function -> delete" % b,
                                 "%.0f msgs/s" % (n / (t1 - t0))))
                lam.update_event_source_mapping(UUID=uid, Enabled=False)
        report("Event source mapping throughput (N=%d, %d sender threads, MaximumConcurrency %d)"
               % (N, THREADS, CONC), rows)
    finally:
        stop_daemon(dm)


if __name__ == "__main__":
    main()
