"""
test_scaling.py - end-to-end tests of instance scaling and lifecycle (src/api_invoke.c admission,
src/pool.c, src/instance.c, src/daemon.c) against a real `nimbus serve`.

Covers: warm reuse of an idle instance (same instance, no Init Duration) and most-recently-used
choice; N concurrent invocations starting N instances, later reused; reserved concurrency (1 ->
the second concurrent call gets 429 TooManyRequestsException with Reason
ReservedFunctionConcurrentInvocationLimitExceeded; 0 -> every call refused) and the account limit
across functions (ConcurrentInvocationLimitExceeded); idle reap (after the keep-warm window the
instance stops, /metrics drops to 0, the next call is a cold start); update of code or
configuration while warm or busy (new behaviour next, old instance stopped, in-flight call
unharmed); delete while warm or busy; a caller hanging up mid-invocation; restart keeps functions;
SIGTERM drains an in-flight call, exits 0 and leaves no sandbox, runtime or spawner process; the
drain is bounded by --drain-timeout-s.
"""
import concurrent.futures
import json
import signal
import socket
import time

import pytest
from botocore.exceptions import ClientError

from conftest import Daemon, zip_files
from helpers import (alive, c_probe_zip, call, children, deploy_probe, fn_pids, metrics, no_retry,
                     report_re, stream_pids, uniq, wait_for)


def invoke_or_error(client, name, event):
    """(response, body) or ('429', reason) / (status, code) on a ClientError."""
    try:
        r, body, _ = call(client, name, event)
        return r, body
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response


def run_concurrently(client, name, events, stagger=0.0):
    with concurrent.futures.ThreadPoolExecutor(len(events)) as ex:
        futs = []
        for ev in events:
            futs.append(ex.submit(invoke_or_error, client, name, ev))
            time.sleep(stagger)
        return [f.result() for f in futs]


def throttles(results):
    return [body for status, body in results if status == 429]


def successes(results):
    return [body for r, body in results if isinstance(r, dict) and "FunctionError" not in r]


def wait_inflight(daemon, n, timeout=10):
    assert wait_for(lambda: metrics(daemon)["nimbus_concurrent_executions"] >= n, timeout), \
        metrics(daemon)


# ---- reuse and scale-out -------------------------------------------------------------------


def test_warm_reuse(lam):
    name = deploy_probe(lam, uniq("sc-warm"))["FunctionName"]
    r, first, log = call(lam, name, {"op": "whoami"}, tail=True)
    assert report_re(128, init=True).match(log.splitlines()[-1])
    assert first["calls"] == 1
    for n in (2, 3):
        r, body, log = call(lam, name, {"op": "whoami"}, tail=True)
        assert body["instance"] == first["instance"] and body["calls"] == n
        assert report_re(128, init=False).match(log.splitlines()[-1]), log
    assert len(fn_pids(name)) == 1


def test_concurrent_invocations_start_instances(lam, daemon):
    name = deploy_probe(lam, uniq("sc-conc"))["FunctionName"]
    cold_before = metrics(daemon)["nimbus_cold_starts_total"]
    results = run_concurrently(lam, name, [{"op": "sleep", "seconds": 1.5}] * 4)
    ok = successes(results)
    assert len(ok) == 4, results
    instances = {b["instance"] for b in ok}
    assert len(instances) == 4
    assert metrics(daemon)["nimbus_cold_starts_total"] - cold_before == 4
    assert len(fn_pids(name)) == 4  # four runtime processes, one per sandbox
    # the warm instances serve the next wave: no new cold start
    results = run_concurrently(lam, name, [{"op": "sleep", "seconds": 1}] * 4)
    ok = successes(results)
    assert len(ok) == 4 and {b["instance"] for b in ok} == instances
    assert metrics(daemon)["nimbus_cold_starts_total"] - cold_before == 4


def test_most_recently_used_instance_first(lam):
    name = deploy_probe(lam, uniq("sc-mru"))["FunctionName"]
    ok = successes(run_concurrently(lam, name, [{"op": "sleep", "seconds": 1}] * 2))
    assert len({b["instance"] for b in ok}) == 2
    _, last, _ = call(lam, name, {"op": "whoami"})
    for _ in range(3):
        _, body, _ = call(lam, name, {"op": "whoami"})
        assert body["instance"] == last["instance"]


# ---- concurrency limits --------------------------------------------------------------------


def test_reserved_concurrency_one(daemon):
    lam = no_retry(daemon)
    name = deploy_probe(lam, uniq("sc-res1"))["FunctionName"]
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    results = run_concurrently(lam, name, [{"op": "sleep", "seconds": 2},
                                           {"op": "whoami"}], stagger=0.7)
    assert len(successes(results)) == 1, results
    (err,) = throttles(results)
    assert err["Error"]["Code"] == "TooManyRequestsException"
    assert err["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert err["ResponseMetadata"]["HTTPHeaders"].get("retry-after") is not None
    # the slot is free again once the first call answered
    r, body, _ = call(lam, name, {"op": "whoami"})
    assert "FunctionError" not in r
    lam.delete_function_concurrency(FunctionName=name)
    assert len(successes(run_concurrently(lam, name, [{"op": "sleep", "seconds": 1}] * 2))) == 2


def test_reserved_concurrency_zero(daemon):
    lam = no_retry(daemon)
    name = deploy_probe(lam, uniq("sc-res0"))["FunctionName"]
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as ei:
        call(lam, name, {"op": "whoami"})
    e = ei.value.response
    assert e["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert e["Error"]["Code"] == "TooManyRequestsException"
    assert e["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert fn_pids(name) == []  # refused before any instance started
    lam.delete_function_concurrency(FunctionName=name)
    r, _, _ = call(lam, name, {"op": "whoami"})
    assert "FunctionError" not in r


def test_account_concurrency_limit(fresh_daemon):
    dm = fresh_daemon(["--account-concurrency", "2"])
    lam = no_retry(dm)
    a = deploy_probe(lam, uniq("sc-acct-a"))["FunctionName"]
    b = deploy_probe(lam, uniq("sc-acct-b"))["FunctionName"]
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        f1 = ex.submit(invoke_or_error, lam, a, {"op": "sleep", "seconds": 2})
        f2 = ex.submit(invoke_or_error, lam, b, {"op": "sleep", "seconds": 2})
        wait_inflight(dm, 2)
        f3 = ex.submit(invoke_or_error, lam, a, {"op": "whoami"})
        results = [f1.result(), f2.result(), f3.result()]
    assert len(successes(results[:2])) == 2, results
    status, err = results[2]
    assert status == 429, results[2]
    assert err["Error"]["Code"] == "TooManyRequestsException"
    assert err["Reason"] == "ConcurrentInvocationLimitExceeded"
    assert metrics(dm)["nimbus_throttles_total"] == 1
    assert metrics(dm)["nimbus_concurrent_executions"] == 0
    r, _, _ = call(lam, a, {"op": "whoami"})
    assert "FunctionError" not in r


# ---- scale to zero, updates, delete --------------------------------------------------------


def test_idle_instances_are_reaped(fresh_daemon):
    dm = fresh_daemon(["--keep-warm-s", "1", "--reap-interval-ms", "100"])
    lam = dm.boto3()
    name = deploy_probe(lam, uniq("sc-reap"))["FunctionName"]
    _, first, log = call(lam, name, {"op": "whoami"}, tail=True)
    assert report_re(128, init=True).match(log.splitlines()[-1])
    assert metrics(dm)["nimbus_instances"] == 1
    t0 = time.monotonic()
    assert wait_for(lambda: metrics(dm)["nimbus_instances"] == 0, 5), metrics(dm)
    assert time.monotonic() - t0 >= 0.5  # not before the keep-warm window
    assert wait_for(lambda: fn_pids(name) == [], 3), fn_pids(name)
    _, body, log = call(lam, name, {"op": "whoami"}, tail=True)
    assert body["instance"] != first["instance"] and body["calls"] == 1
    assert report_re(128, init=True).match(log.splitlines()[-1]), log
    # an instance in use is not reaped, however long the call
    _, body, _ = call(lam, name, {"op": "sleep", "seconds": 1.5})
    assert body["result"] == {"slept": 1.5}


def test_update_configuration_while_warm(lam):
    name = deploy_probe(lam, uniq("sc-updcfg"), Environment={"Variables": {"VERSION": "one"}})[
        "FunctionName"]
    _, before, _ = call(lam, name, {"op": "env"})
    assert before["result"]["VERSION"] == "one"
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"VERSION": "two"}})
    _, after, _ = call(lam, name, {"op": "env"})
    assert after["result"]["VERSION"] == "two"
    assert after["instance"] != before["instance"]
    assert wait_for(lambda: stream_pids(before["log_stream"]) == [], 5), "old instance still runs"
    assert len(fn_pids(name)) == 1


def test_update_code_while_warm(lam):
    name = deploy_probe(lam, uniq("sc-updcode"))["FunctionName"]
    _, before, _ = call(lam, name, {"op": "whoami"})
    code = zip_files({"probe.py": ("def handler(event, context):\n    return 'version two'\n",
                                   0o644)})
    lam.update_function_code(FunctionName=name, ZipFile=code)
    r, body, _ = call(lam, name, {"op": "whoami"})
    assert body == "version two"
    assert wait_for(lambda: stream_pids(before["log_stream"]) == [], 5), "old instance still runs"


def test_update_while_busy(lam):
    name = deploy_probe(lam, uniq("sc-updbusy"), Environment={"Variables": {"VERSION": "one"}})[
        "FunctionName"]
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        busy = ex.submit(invoke_or_error, lam, name, {"op": "sleep", "seconds": 1.5})
        time.sleep(0.7)
        lam.update_function_configuration(FunctionName=name,
                                          Environment={"Variables": {"VERSION": "two"}})
        _, now, _ = call(lam, name, {"op": "env"})
        r, old = busy.result()
    assert isinstance(r, dict) and "FunctionError" not in r, old
    assert old["result"] == {"slept": 1.5}
    assert now["result"]["VERSION"] == "two" and now["instance"] != old["instance"]
    # the old instance stops once its call is over
    assert wait_for(lambda: stream_pids(old["log_stream"]) == [], 5)
    _, again, _ = call(lam, name, {"op": "whoami"})
    assert again["instance"] == now["instance"]


def test_delete_while_warm(lam):
    name = deploy_probe(lam, uniq("sc-del"))["FunctionName"]
    call(lam, name, {"op": "whoami"})
    assert len(fn_pids(name)) == 1
    lam.delete_function(FunctionName=name)
    with pytest.raises(ClientError) as ei:
        call(lam, name, {"op": "whoami"})
    assert ei.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert wait_for(lambda: fn_pids(name) == [], 5), fn_pids(name)


def test_delete_while_busy(lam):
    name = deploy_probe(lam, uniq("sc-delbusy"))["FunctionName"]
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        busy = ex.submit(invoke_or_error, lam, name, {"op": "sleep", "seconds": 1.5})
        time.sleep(0.7)
        lam.delete_function(FunctionName=name)
        r, body = busy.result()
    assert isinstance(r, dict) and "FunctionError" not in r, body
    assert body["result"] == {"slept": 1.5}
    assert wait_for(lambda: fn_pids(name) == [], 5), fn_pids(name)
    # a function of the same name is a new function, with new instances
    deploy_probe(lam, name)
    _, again, _ = call(lam, name, {"op": "whoami"})
    assert again["instance"] != body["instance"] and again["calls"] == 1


def test_caller_hanging_up_mid_invocation(daemon, lam):
    name = deploy_probe(lam, uniq("sc-hangup"))["FunctionName"]
    _, first, _ = call(lam, name, {"op": "whoami"})
    s = socket.create_connection(("127.0.0.1", daemon.port))
    body = json.dumps({"op": "sleep", "seconds": 1.0}).encode()
    s.sendall(daemon.raw_request("POST", "/2015-03-31/functions/%s/invocations" % name, body,
                                 {"Content-Type": "application/json"}))
    wait_inflight(daemon, 1)
    s.close()  # the caller is gone; the invocation runs to its end and its reply is dropped
    assert wait_for(lambda: metrics(daemon)["nimbus_concurrent_executions"] == 0, 5), \
        metrics(daemon)
    r, again, _ = call(lam, name, {"op": "whoami"})
    assert "FunctionError" not in r
    assert again["instance"] == first["instance"] and again["calls"] == 3


# ---- daemon restart and stop ---------------------------------------------------------------


def test_restart_keeps_functions(fresh_daemon):
    dm = fresh_daemon()
    lam = dm.boto3()
    py = deploy_probe(lam, uniq("sc-rs-py"), Environment={"Variables": {"VERSION": "kept"}})[
        "FunctionName"]
    c = lam.create_function(FunctionName=uniq("sc-rs-c"), Runtime="provided.al2023",
                            Role="arn:aws:iam::000000000000:role/lambda-role", Handler="x",
                            Code={"ZipFile": c_probe_zip()})["FunctionName"]
    sha = lam.get_function(FunctionName=py)["Configuration"]["CodeSha256"]
    _, before, _ = call(lam, py, {"op": "env"})
    assert dm.stop() == 0
    dm2 = Daemon(dm.data_dir).start()
    try:
        lam2 = dm2.boto3()
        assert lam2.get_function(FunctionName=py)["Configuration"]["CodeSha256"] == sha
        r, body, log = call(lam2, py, {"op": "env"}, tail=True)
        assert "FunctionError" not in r and body["result"]["VERSION"] == "kept"
        assert body["instance"] != before["instance"]
        assert report_re(128, init=True).match(log.splitlines()[-1])
        r, body, _ = call(lam2, c, {"x": 1})
        assert "FunctionError" not in r and body["event"] == {"x": 1}
    finally:
        assert dm2.stop() == 0


def spawner_of(dm):
    kids = children(dm.proc.pid)
    assert kids, "the daemon has no spawner child"
    return kids


def test_sigterm_drains_in_flight_invocation(fresh_daemon):
    dm = fresh_daemon()
    lam = dm.boto3()
    name = deploy_probe(lam, uniq("sc-drain"))["FunctionName"]
    idle = deploy_probe(lam, uniq("sc-drain-idle"))["FunctionName"]
    call(lam, idle, {"op": "whoami"})  # a warm instance that must be stopped too
    helpers_before = spawner_of(dm)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(invoke_or_error, lam, name, {"op": "sleep", "seconds": 2})
        wait_inflight(dm, 1)
        t0 = time.monotonic()
        dm.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        # no new work is admitted while draining
        late = invoke_or_error(no_retry(dm), idle, {"op": "whoami"})
        r, body = fut.result()
    assert isinstance(r, dict) and "FunctionError" not in r, body
    assert body["result"] == {"slept": 2}
    assert late[0] == 503 and late[1]["Error"]["Code"] == "ServiceException", late
    rc = dm.proc.wait(timeout=15)
    assert rc == 0, dm.daemon_log()[-3000:]
    assert time.monotonic() - t0 < 10
    assert "stopped" in dm.daemon_log()
    # no sandbox, runtime or spawner outlives the daemon
    assert wait_for(lambda: fn_pids(name) == [] and fn_pids(idle) == [], 5), \
        (fn_pids(name), fn_pids(idle))
    assert wait_for(lambda: not any(alive(p) for p in helpers_before), 5), helpers_before


def test_drain_is_bounded(fresh_daemon):
    dm = fresh_daemon(["--drain-timeout-s", "1"])
    lam = dm.boto3()
    name = deploy_probe(lam, uniq("sc-drainmax"))["FunctionName"]
    helpers_before = spawner_of(dm)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(invoke_or_error, lam, name, {"op": "sleep", "seconds": 20})
        wait_inflight(dm, 1)
        t0 = time.monotonic()
        dm.proc.send_signal(signal.SIGTERM)
        rc = dm.proc.wait(timeout=15)
        elapsed = time.monotonic() - t0
        try:
            r, body = fut.result(timeout=10)
        except Exception as e:  # the connection may simply close
            r, body = None, repr(e)
    assert rc == 0, dm.daemon_log()[-3000:]
    assert 0.9 <= elapsed < 8, elapsed
    # the call cut short ends as a runtime killed under it (or, at worst, a closed connection)
    if isinstance(r, dict):
        assert r.get("FunctionError") == "Unhandled", body
        assert body["errorType"] == "Runtime.ExitError", body
    assert wait_for(lambda: fn_pids(name) == [], 5), fn_pids(name)
    assert wait_for(lambda: not any(alive(p) for p in helpers_before), 5)


def test_burst_of_cold_starts(daemon, lam):
    """250 concurrent cold starts: every caller gets its answer and the daemon survives. (A burst
    fills the spawner socket, which once re-armed its poll handle with a NULL callback.)"""
    import asyncio
    import os
    from conftest import BUILD
    with open(os.path.join(BUILD, "bench", "functions", "c_sleep", "bootstrap"), "rb") as f:
        z = zip_files({"bootstrap": (f.read(), 0o755)})
    name = uniq("sc-burst")
    lam.create_function(FunctionName=name, Runtime="provided.al2023", Handler="h", Timeout=60,
                        Role="arn:aws:iam::000000000000:role/x", Code={"ZipFile": z})
    n = 250

    raw = daemon.raw_request("POST", "/2015-03-31/functions/%s/invocations" % name,
                             b'{"ms":1500}')

    async def one():
        r, w = await asyncio.open_connection("127.0.0.1", daemon.port)
        w.write(raw)
        await w.drain()
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 60)
        w.close()
        return head.split(b" ")[1]

    async def burst():
        return await asyncio.gather(*[one() for _ in range(n)], return_exceptions=True)

    statuses = asyncio.run(burst())
    assert statuses.count(b"200") == n, statuses
    assert daemon.alive()
    assert metrics(daemon)["nimbus_instances"] >= n
