"""density.py - memory cost of N concurrent warm C instances (default 1000).

Fires N concurrent invocations of the C sleep function (each sleeps long enough that all N
instances are alive at once), then, while they sleep, reads: the daemon's RSS, the spawner's RSS,
the kernel's Slab + KernelStack + PageTables + Percpu from /proc/meminfo, and the sum of the
instances' memory cgroups (memory.usage_in_bytes). Baseline: the same readings before the burst,
in the same run. Prints per-instance figures.

usage: /usr/bin/python3 bench/density.py [N]
"""
import asyncio
import glob
import os
import sys
import time

from common import c_sleep_zip, deploy, report, start_daemon, stop_daemon

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
SLEEP_MS = 20000


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":")
            out[k] = int(v.split()[0]) * 1024
    return out


def kernel_bytes(mi):
    return sum(mi.get(k, 0) for k in ("Slab", "KernelStack", "PageTables", "Percpu"))


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def children(pid):
    out = []
    for p in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(p.split("/")[2]))
        except OSError:
            pass
    return out


def cgroup_usage(parent):
    total = 0
    for p in glob.glob("/sys/fs/cgroup/memory/%s/*/memory.usage_in_bytes" % parent):
        try:
            with open(p) as f:
                total += int(f.read())
        except OSError:
            pass
    return total


def live_instances(dm):
    import urllib.request
    with urllib.request.urlopen(dm.endpoint + "/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("nimbus_instances "):
                return int(line.split()[1])
    return 0


SIGNED = {}  # headers of one signed Invoke, replayed by every request of the burst (valid 15 min)


async def invoke(port, i):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    body = b'{"ms":%d}' % SLEEP_MS
    hdrs = b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in SIGNED.items())
    w.write(b"POST /2015-03-31/functions/dense/invocations HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            b"%sContent-Length: %d\r\n\r\n" % (port, hdrs, len(body)) + body)
    await w.drain()
    data = await r.read(200)
    w.close()
    return data.split(b" ")[1] if data else b"-"


async def burst(port):
    return await asyncio.gather(*[invoke(port, i) for i in range(N)])


def main():
    dm = start_daemon(["--account-concurrency", str(max(N, 1000)), "--netns-pool", "8"])
    try:
        deploy(dm, "dense", c_sleep_zip(), "provided.al2023", memory=128, timeout=60)
        SIGNED.update(dm.sign("POST", "/2015-03-31/functions/dense/invocations",
                              b'{"ms":%d}' % SLEEP_MS))
        time.sleep(1)
        daemon_pid = dm.proc.pid
        parent = "nimbus-e2e-%d" % dm.port
        spawner = [p for p in children(daemon_pid)]
        before = meminfo()
        d_rss0 = rss(daemon_pid)
        s_rss0 = sum(rss(p) for p in spawner)
        t0 = time.time()
        loop = asyncio.new_event_loop()
        task = loop.create_task(burst(dm.port))
        # let the burst start every instance, then read while they sleep
        deadline = t0 + SLEEP_MS / 1000 - 3
        peak = None
        while time.time() < deadline:
            loop.run_until_complete(asyncio.sleep(0.5))
            n_inst = live_instances(dm)
            if n_inst >= N:
                peak = (time.time() - t0, meminfo(), rss(daemon_pid),
                        sum(rss(p) for p in spawner), cgroup_usage(parent), n_inst)
                break
        statuses = loop.run_until_complete(task)
        ok = sum(1 for s in statuses if s == b"200")
        if not peak:
            print("did not reach %d live instances before the sleep ended" % N)
            return
        secs, after, d_rss, s_rss, cg, n_inst = peak
        k = kernel_bytes(after) - kernel_bytes(before)
        report("density: %d concurrent C instances (%d answered 200)" % (N, ok), [
            ("time until all instances were live", "%.2f s (%.0f instances/s)" % (secs, N / secs)),
            ("daemon RSS before / during", "%.1f / %.1f MiB" % (d_rss0 / 2**20, d_rss / 2**20)),
            ("daemon RSS per instance", "%.1f KiB" % ((d_rss - d_rss0) / N / 1024)),
            ("spawner RSS before / during", "%.1f / %.1f MiB" % (s_rss0 / 2**20, s_rss / 2**20)),
            ("kernel (slab+stacks+pagetables+percpu) per instance", "%.1f KiB" % (k / N / 1024)),
            ("instance cgroups' memory per instance", "%.1f KiB" % (cg / n_inst / 1024)),
            ("MemAvailable drop per instance", "%.1f KiB" % ((before["MemAvailable"] - after["MemAvailable"]) / N / 1024)),
        ])
    except Exception:
        print("daemon alive: %s\n%s" % (dm.alive(), dm.daemon_log()[-3000:]))
        raise
    finally:
        stop_daemon(dm)


if __name__ == "__main__":
    main()
