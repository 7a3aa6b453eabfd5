"""idle_schedules.py - what schedule rules cost an idle daemon: daemon CPU and wake-ups per second
with no rules, then with N enabled rules (each with a Lambda target) whose next tick is far away
(rate(1 hour) created now, and cron rules for 03:00 on 1 January 2099), over WINDOW seconds each.
The scheduler arms one timer for the earliest tick, so the two figures should be level; the
daemon's own count of timer fires (nimbus_schedule_wakeups_total) is printed too. Never asserts.

usage: /usr/bin/python3 bench/idle_schedules.py [N] [WINDOW_S]
"""
import sys
import time

ARGS = sys.argv[1:]
sys.argv = sys.argv[:1]
import idle  # noqa: E402  (measure, groups, rows; its own argv defaults)
from common import c_sleep_zip, deploy, report, start_daemon, stop_daemon  # noqa: E402

N = int(ARGS[0]) if ARGS else 200
idle.WINDOW = float(ARGS[1]) if len(ARGS) > 1 else 10.0


def wakeups(dm):
    status, _, body = dm.request("GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith("nimbus_schedule_wakeups_total "):
            return int(float(line.split()[1]))
    return 0


def main():
    dm = start_daemon()
    try:
        time.sleep(2)  # start-up work (pools filling) done
        base = idle.measure({"daemon": [dm.proc.pid]})
        deploy(dm, "tick", c_sleep_zip(), "provided.al2023")
        ev = dm.boto3("events")
        arn = "arn:aws:lambda:us-east-1:000000000000:function:tick"
        for i in range(N):
            expr = "rate(1 hour)" if i % 2 else "cron(0 3 1 1 ? 2099)"
            ev.put_rule(Name="r%04d" % i, ScheduleExpression=expr)
            ev.put_targets(Rule="r%04d" % i, Targets=[{"Id": "t", "Arn": arn}])
        time.sleep(1)
        w0 = wakeups(dm)
        ruled = idle.measure({"daemon": [dm.proc.pid]})
        report("idle cost of %d schedule rules (%.0f s windows)" % (N, idle.WINDOW),
               idle.rows("no rules", base) + idle.rows("%d rules" % N, ruled) +
               [("scheduler timer fires during the window", str(wakeups(dm) - w0))])
    finally:
        stop_daemon(dm)


if __name__ == "__main__":
    main()
