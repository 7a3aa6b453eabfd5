"""
test_metrics.py - GET /metrics and `nimbus stats`: per-function counters, histograms and gauges
after a known sequence of invocations (successes, a function error, a throttle), the exposition
checked by a strict parser of the Prometheus text format 0.0.4 written here (sample syntax, HELP
and TYPE before samples, families not split, histogram buckets cumulative with +Inf == _count),
deleted functions leaving the output, and the CLI's human summary and exit codes.
"""
import math
import re
import time

import pytest
from botocore.exceptions import ClientError

from conftest import free_port
from helpers import call, deploy_probe, metrics, no_retry, uniq, wait_for

NAME_RE = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_RE = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
SAMPLE_RE = re.compile(r"^(%s)(?:\{((?:%s)(?:,%s)*)?\})? (\S+)$" % (NAME_RE, LABEL_RE, LABEL_RE))
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def unescape(v):
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v)


def parse_strict(text):
    """Parses an exposition strictly; returns {family: {"type", "help", "samples": [(name,
    labels dict, value)]}}. Raises AssertionError on anything the format does not allow."""
    assert text.endswith("\n"), "exposition must end with a newline"
    families = {}
    current = None  # the family whose samples are being read
    done = set()  # families whose samples ended (must not reappear)

    def family_of(name):
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[:-len(suffix)]
            if name.endswith(suffix) and families.get(base, {}).get("type") == "histogram":
                return base
        return name

    for n, line in enumerate(text.split("\n")[:-1], 1):
        assert line, "line %d: empty line" % n
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) (%s) (.*)$" % NAME_RE, line)
            assert m, "line %d: bad comment %r" % (n, line)
            kind, name, rest = m.groups()
            f = families.setdefault(name, {"type": None, "help": None, "samples": []})
            assert not f["samples"] and name not in done, \
                "line %d: %s after samples of %s" % (n, kind, name)
            key = kind.lower()
            assert f[key] is None, "line %d: second %s for %s" % (n, kind, name)
            if kind == "TYPE":
                assert rest in TYPES, "line %d: bad type %r" % (n, rest)
            f[key] = rest
            continue
        m = SAMPLE_RE.match(line)
        assert m, "line %d: bad sample %r" % (n, line)
        name, labels_text, value = m.group(1), m.group(2), m.group(m.lastindex)
        labels = {}
        for k, v in re.findall(LABEL_RE, labels_text or ""):
            assert k not in labels, "line %d: label %s twice" % (n, k)
            labels[k] = unescape(v)
        fam = family_of(name)
        f = families.get(fam)
        assert f and f["type"], "line %d: sample of %s before its TYPE" % (n, fam)
        assert f["help"] is not None, "line %d: sample of %s before its HELP" % (n, fam)
        if current != fam:
            assert fam not in done, "line %d: family %s split" % (n, fam)
            if current:
                done.add(current)
            current = fam
        v = float(value)  # accepts +Inf, -Inf, NaN as well
        if f["type"] == "counter":
            assert v >= 0, "line %d: negative counter" % n
        f["samples"].append((name, labels, v))
    for fam, f in families.items():
        if f["type"] == "histogram":
            check_histogram(fam, f["samples"])
    return families


def check_histogram(fam, samples):
    series = {}
    for name, labels, v in samples:
        key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        s = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if name == fam + "_bucket":
            assert "le" in labels, "%s: bucket without le" % fam
            s["buckets"].append((float(labels["le"]), v))
        elif name == fam + "_sum":
            s["sum"] = v
        elif name == fam + "_count":
            s["count"] = v
        else:
            raise AssertionError("%s: stray sample %s" % (fam, name))
    for key, s in series.items():
        b = s["buckets"]
        assert b and b[-1][0] == math.inf, "%s%s: no +Inf bucket" % (fam, key)
        assert [le for le, _ in b] == sorted(set(le for le, _ in b)), "%s%s: le order" % (fam, key)
        assert all(b[i][1] <= b[i + 1][1] for i in range(len(b) - 1)), \
            "%s%s: buckets not cumulative" % (fam, key)
        assert s["count"] is not None and s["sum"] is not None, "%s%s: no _sum/_count" % (fam, key)
        assert b[-1][1] == s["count"], "%s%s: +Inf != _count" % (fam, key)


def scrape(daemon):
    status, headers, body = daemon.request("GET", "/metrics")
    assert status == 200 and headers["content-type"] == "text/plain; version=0.0.4"
    return body.decode()


def value(families, fam, name=None, **labels):
    """The one sample of fam named name (default fam) with exactly these labels."""
    found = [v for n, ls, v in families[fam]["samples"] if n == (name or fam) and ls == labels]
    assert len(found) == 1, (fam, name, labels, found)
    return found[0]


def has_function(families, fn):
    return any(ls.get("function") == fn for f in families.values() for _, ls, _ in f["samples"])


def test_per_function_metrics_and_stats(fresh_daemon):
    dm = fresh_daemon()
    lam = no_retry(dm)
    name = deploy_probe(lam, uniq("met"))["FunctionName"]
    other = deploy_probe(lam, uniq("met-other"))["FunctionName"]
    cold = 0
    for _ in range(4):
        r, _, log = call(lam, name, {"op": "whoami"}, tail=True)
        assert "FunctionError" not in r
        cold += "Init Duration" in log
    r, _, log = call(lam, name, {"op": "no_such_op"}, tail=True)  # KeyError: a function error
    assert r.get("FunctionError") == "Unhandled"
    cold += "Init Duration" in log
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as ei:
        call(lam, name, {"op": "whoami"})
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    lam.delete_function_concurrency(FunctionName=name)
    assert cold >= 1

    def settled():
        f = parse_strict(scrape(dm))
        return f if value(f, "nimbus_function_instances", function=name, state="busy") == 0 \
            else None
    fams = wait_for(settled, 5)
    assert fams, scrape(dm)
    fn = {"function": name, "version": "$LATEST"}
    assert value(fams, "nimbus_function_invocations_total", **fn) == 5
    assert value(fams, "nimbus_function_errors_total", **fn) == 1
    assert value(fams, "nimbus_function_timeouts_total", **fn) == 0
    assert value(fams, "nimbus_function_throttles_total", **fn) == 1
    assert value(fams, "nimbus_function_cold_starts_total", **fn) == cold
    dur, init = "nimbus_function_duration_seconds", "nimbus_function_init_duration_seconds"
    assert value(fams, dur, dur + "_count", **fn) == 5
    assert value(fams, dur, dur + "_sum", **fn) > 0
    assert value(fams, init, init + "_count", **fn) == cold
    assert value(fams, "nimbus_function_concurrent_executions", function=name) == 0
    assert value(fams, "nimbus_function_instances", function=name, state="starting") == 0
    assert value(fams, "nimbus_function_instances", function=name, state="idle") >= 1
    # the other function: present, all zero
    assert value(fams, "nimbus_function_invocations_total", function=other, version="$LATEST") == 0
    assert value(fams, dur, dur + "_bucket", function=other, version="$LATEST", le="+Inf") == 0
    # daemon-wide unlabelled totals (this daemon served only these calls), in families of their
    # own: summing a per-function family never counts a total twice
    for fam in fams:
        per_fn = {"function" in ls for _, ls, _ in fams[fam]["samples"]}
        if fam.startswith("nimbus_function_"):
            assert per_fn <= {True}, fam
        elif fam.startswith("nimbus_"):
            assert per_fn <= {False}, fam
    assert value(fams, "nimbus_invocations_total") == 5
    assert value(fams, "nimbus_errors_total") == 1
    assert value(fams, "nimbus_throttles_total") == 1
    assert value(fams, "nimbus_cold_starts_total") == cold
    assert value(fams, "nimbus_functions") == 2
    assert value(fams, "nimbus_instances") >= 1
    assert value(fams, "nimbus_warm_instances") >= 1
    assert value(fams, "nimbus_concurrent_executions") == 0
    for g in ("nimbus_parked_sandboxes", "nimbus_netns_pool_free"):
        assert fams[g]["type"] == "gauge" and value(fams, g) >= 0
    assert value(fams, "process_resident_memory_bytes") > 1 << 20
    assert value(fams, "process_open_fds") > 3
    assert 0 < value(fams, "process_cpu_seconds_total") < 3600
    assert time.time() - 3600 < value(fams, "process_start_time_seconds") <= time.time() + 1
    assert value(fams, "process_max_fds") >= value(fams, "process_open_fds")
    # helpers.metrics() (unlabelled lines) keeps working
    flat = metrics(dm)
    assert flat["nimbus_invocations_total"] == 5 and flat["nimbus_throttles_total"] == 1

    p = dm.cli("stats", name)
    assert p.returncode == 0, p.stderr
    out = dict(line.split(": ", 1) for line in p.stdout.splitlines())
    assert out["function"] == name
    assert out["versions"] == "$LATEST"
    assert out["invocations"] == "5"
    assert out["errors"] == "1"
    assert out["timeouts"] == "0"
    assert out["throttles"] == "1"
    assert out["cold starts"] == str(cold)
    for k in ("duration p50", "duration p99", "init duration p50"):
        assert re.match(r"^\d+\.\d\d ms$", out[k]), (k, out[k])
    assert float(out["duration p50"].split()[0]) <= float(out["duration p99"].split()[0])
    assert re.match(r"^\d+ \(idle \d+, busy 0, starting 0\)$", out["instances"]), out
    p = dm.cli("stats", other)
    assert p.returncode == 0 and "duration p50: -\n" in p.stdout, p.stdout

    # a deleted function disappears; the totals stay
    lam.delete_function(FunctionName=name)
    fams = parse_strict(scrape(dm))
    assert not has_function(fams, name)
    assert has_function(fams, other)
    assert value(fams, "nimbus_invocations_total") == 5
    p = dm.cli("stats", name)
    assert p.returncode == 3 and p.stderr == "error: function '%s' not found\n" % name, p.stderr


def test_stats_usage_and_unreachable(nimbus_bin, daemon):
    p = daemon.cli("stats", "--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: nimbus stats NAME")
    p = daemon.cli("stats")
    assert p.returncode == 2 and "missing NAME" in p.stderr
    p = daemon.cli("stats", "a", "b")
    assert p.returncode == 2 and "unexpected argument 'b'" in p.stderr
    url = "http://127.0.0.1:%d" % free_port()
    p = daemon.cli("stats", "f", "--endpoint", url)
    assert p.returncode == 3 and p.stderr.startswith("error: cannot reach nimbus at %s: " % url)


def test_strict_parser_rejects_bad_expositions():
    good = ("# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
            "h_sum 3\nh_count 2\n")
    parse_strict(good)
    bad = [
        "x 1\n",  # no TYPE
        "# HELP x y\n# TYPE x gauge\nx{a=\"b} 1\n",  # unterminated label
        "# HELP x y\n# TYPE x gauge\nx 1\n# HELP z y\n# TYPE z gauge\nz 1\nx 2\n",  # split family
        good.replace("h_count 2", "h_count 3"),  # +Inf != _count
        good.replace("le=\"1\"} 1", "le=\"1\"} 5"),  # not cumulative
        "# HELP x y\n# TYPE x gauge\nx 1",  # no final newline
    ]
    for text in bad:
        with pytest.raises(AssertionError):
            parse_strict(text)
