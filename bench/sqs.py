"""sqs.py - throughput of the SQS service: durable sends (batches of 10 and single messages) and
send -> receive -> delete cycles, against the raw fsync rate of the same disk measured in the same
run (each acknowledged send is fsync'd, so without group commit sends/s could not exceed it).

Clients: T threads, each with its own keep-alive connection, posting query-protocol forms
(what boto3 1.26 and the aws CLI 2.9 send) for S seconds per phase. Python's client side is part
of the measurement; the figures are a floor for the server.

usage: /usr/bin/python3 bench/sqs.py [SECONDS] [THREADS]
"""
import http.client
import sys
import threading
import time
import urllib.parse

from common import fsync_rate, report, start_daemon, stop_daemon

SECS = float(sys.argv[1]) if len(sys.argv) > 1 else 5
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 8


DM = None  # the daemon: requests are signed with its root key (SigV4 service sqs)


class Client:
    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, params):
        body = urllib.parse.urlencode(params)
        h = DM.sign("POST", "/", body.encode(), {"Content-Type": "application/x-www-form-urlencoded"},
                    service="sqs")
        self.c.request("POST", "/", body, h)
        r = self.c.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(data)
        return data


def run_phase(port, fn):
    """Runs fn(client) in THREADS threads for SECS; fn returns messages done; returns msgs/s."""
    total = [0] * THREADS
    stop = time.monotonic() + SECS

    def worker(i):
        c = Client(port)
        while time.monotonic() < stop:
            total[i] += fn(c)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(total) / (time.monotonic() - t0)


def main():
    global DM
    dm = DM = start_daemon()
    try:
        base = fsync_rate(dm.data_dir, record=128)
        url = Client(dm.port).call({"Action": "CreateQueue", "QueueName": "bench"})
        url = url.decode().split("<QueueUrl>")[1].split("</QueueUrl>")[0]
        batch = {"Action": "SendMessageBatch", "QueueUrl": url}
        for i in range(10):
            batch["SendMessageBatchRequestEntry.%d.Id" % (i + 1)] = str(i)
            batch["SendMessageBatchRequestEntry.%d.MessageBody" % (i + 1)] = "x" * 100
        b10 = run_phase(dm.port, lambda c: (c.call(batch), 10)[1])
        one = {"Action": "SendMessage", "QueueUrl": url, "MessageBody": "x" * 100}
        b1 = run_phase(dm.port, lambda c: (c.call(one), 1)[1])
        Client(dm.port).call({"Action": "PurgeQueue", "QueueUrl": url})

        def cycle(c):
            c.call(one)
            data = c.call({"Action": "ReceiveMessage", "QueueUrl": url,
                           "MaxNumberOfMessages": "1"}).decode()
            if "<ReceiptHandle>" not in data:
                return 0
            h = data.split("<ReceiptHandle>")[1].split("</ReceiptHandle>")[0]
            c.call({"Action": "DeleteMessage", "QueueUrl": url, "ReceiptHandle": h})
            return 1

        srd = run_phase(dm.port, cycle)
        report("SQS throughput (%d client threads, %.0f s per phase)" % (THREADS, SECS), [
            ("raw fsync rate, same disk (baseline)", "%.0f fsyncs/s" % base),
            ("SendMessageBatch (10 per request)", "%.0f msgs/s (%.1fx fsync)" % (b10, b10 / base)),
            ("SendMessage", "%.0f msgs/s (%.1fx fsync)" % (b1, b1 / base)),
            ("send -> receive -> delete", "%.0f msgs/s" % srd),
        ])
    finally:
        stop_daemon(dm)


if __name__ == "__main__":
    main()
