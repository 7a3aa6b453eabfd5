"""
test_cli.py - end-to-end tests of the nimbus CLI (src/cli/) against a real `nimbus serve`.

Covers deploy (a folder, a .zip, redeploy = update of code and of only the given settings, modes
and symlinks kept), invoke (payload inline / @file / stdin, --log tail, exit 1 on a function
error, 3 on a platform error, a function named by ARN), ls (table, --json, pagination), rm, logs
(--since, --follow until SIGINT), --help of every subcommand, usage errors (exit 2) and an
unreachable endpoint (exit 3). The function is tests/e2e/functions/echo_sh, a POSIX sh custom
runtime; tests that change it work on a copy. Settings are cross-checked through boto3.
"""
import base64
import hashlib
import json
import os
import re
import select
import shutil
import signal
import subprocess
import time

import pytest

from conftest import FUNCS, NIMBUS, free_port, zip_dir

ECHO = os.path.join(FUNCS, "echo_sh")
SUBCOMMANDS = ["deploy", "invoke", "ls", "rm", "logs", "route"]


def run(*args, env=None, input=None):
    """Runs the CLI without a daemon; returns the CompletedProcess."""
    return subprocess.run([NIMBUS] + list(args), capture_output=True, text=True, input=input,
                          env=env, timeout=60)


def deploy(daemon, name, path, *extra):
    p = daemon.cli("deploy", name, path, *extra)
    assert p.returncode == 0, p.stderr
    out = dict(line.split(": ", 1) for line in p.stdout.splitlines())
    return out


def copy_echo(tmp_path, name="fn"):
    dst = tmp_path / name
    shutil.copytree(ECHO, dst, symlinks=True)
    return dst


def set_version(folder, version):
    boot = folder / "bootstrap"
    text = boot.read_text()
    text = re.sub(r"^VERSION=.*$", "VERSION='\"%s\"'" % version, text, count=1, flags=re.M)
    boot.write_text(text)
    os.chmod(boot, 0o755)


def invoke(daemon, name, payload, *extra):
    return daemon.cli("invoke", name, "--payload", payload, *extra)


@pytest.fixture(scope="module")
def echo(daemon):
    """The echo_sh function deployed once from its folder; returns deploy's output."""
    return deploy(daemon, "cli-echo", ECHO)


# ---- help and usage (no daemon needed) ----

def test_help_of_every_subcommand(nimbus_bin):
    p = run("--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: nimbus")
    for sub in SUBCOMMANDS + ["serve", "config"]:
        assert sub in p.stdout
    p = run("help")
    assert p.returncode == 0 and "commands:" in p.stdout
    p = run("--version")
    assert p.returncode == 0 and re.match(r"^nimbus \d+\.\d+\.\d+", p.stdout)
    for sub in SUBCOMMANDS:
        for flag in ("--help", "-h"):
            p = run(sub, flag)
            assert p.returncode == 0, (sub, p.stderr)
            assert p.stdout.startswith("usage: nimbus %s" % sub), p.stdout
            assert "--endpoint URL" in p.stdout and p.stderr == ""
        p = run("help", sub)
        assert p.returncode == 0 and p.stdout.startswith("usage: nimbus %s" % sub)
    for sub in ("serve", "config"):
        p = run(sub, "--help")
        assert p.returncode == 0 and "usage" in p.stdout, (sub, p.stdout, p.stderr)


@pytest.mark.parametrize("args, message", [
    ([], None),
    (["bogus"], "unknown command 'bogus'"),
    (["--bogus"], "unknown option '--bogus'"),
    (["deploy", "onlyname"], "missing NAME or PATH"),
    (["deploy", "a", ECHO, "extra"], "too many arguments"),
    (["deploy", "a", ECHO, "--memory", "lots"], "invalid --memory 'lots'"),
    (["deploy", "a", ECHO, "--env", "NOEQUALS"], "invalid --env 'NOEQUALS': expected KEY=VALUE"),
    (["invoke"], "missing NAME"),
    (["invoke", "f", "--bogus"], "unknown option '--bogus'"),
    (["invoke", "f", "--payload"], "option '--payload' requires an argument"),
    (["ls", "extra"], "unexpected argument 'extra'"),
    (["rm"], "missing NAME"),
    (["logs", "f", "--since", "yesterday"], "invalid --since 'yesterday'"),
    (["logs"], "missing NAME"),
])
def test_usage_error_exit_2(nimbus_bin, args, message):
    p = run(*args)
    assert p.returncode == 2, (args, p.stdout, p.stderr)
    assert "usage: nimbus" in p.stderr and p.stdout == ""
    if message:
        assert "error: " + message in p.stderr, p.stderr


def test_bad_local_input_exit_2(nimbus_bin, tmp_path):
    not_zip = tmp_path / "notes.txt"
    not_zip.write_text("hello")
    p = run("deploy", "f", str(not_zip), "--endpoint", "http://127.0.0.1:1")
    assert p.returncode == 2 and "not a folder or a .zip file" in p.stderr
    p = run("deploy", "f", str(tmp_path / "missing"), "--endpoint", "http://127.0.0.1:1")
    assert p.returncode == 2 and "No such file or directory" in p.stderr
    p = run("invoke", "f", "--payload", "@" + str(tmp_path / "missing.json"),
            "--endpoint", "http://127.0.0.1:1")
    assert p.returncode == 2 and "cannot read payload file" in p.stderr
    p = run("ls", "--endpoint", "127.0.0.1:9000")
    assert p.returncode == 2 and "invalid endpoint" in p.stderr


def test_unreachable_endpoint_exit_3(nimbus_bin):
    url = "http://127.0.0.1:%d" % free_port()
    env = dict(os.environ, NIMBUS_ENDPOINT=url)
    for args in (["ls"], ["invoke", "f"], ["rm", "f"], ["logs", "f"], ["deploy", "f", ECHO]):
        p = run(*args, env=env)
        assert p.returncode == 3, (args, p.stderr)
        assert p.stderr.startswith("error: cannot reach nimbus at %s: " % url), p.stderr
        assert p.stderr.count("error:") == 1
    # the flag, before or after the subcommand, wins over the environment
    p = run("--endpoint", url, "ls", env=dict(os.environ, NIMBUS_ENDPOINT="http://x.invalid"))
    assert p.returncode == 3 and url in p.stderr
    p = run("ls", "--endpoint=" + url)
    assert p.returncode == 3 and url in p.stderr


# ---- deploy ----

def test_deploy_folder(daemon, lam, echo):
    assert re.fullmatch(r"arn:aws:lambda:[a-z0-9-]+:\d{12}:function:cli-echo", echo["arn"])
    assert echo["state"] == "Active"
    cfg = lam.get_function_configuration(FunctionName="cli-echo")
    assert cfg["CodeSha256"] == echo["code_sha256"]
    assert cfg["FunctionArn"] == echo["arn"]
    assert cfg["Runtime"] == "provided.al2023" and cfg["Handler"] == "handler"
    assert cfg["MemorySize"] == 128 and cfg["Timeout"] == 3
    assert cfg["Role"] == "arn:aws:iam::000000000000:role/nimbus"
    p = invoke(daemon, "cli-echo", '{"hello": "world"}')
    assert p.returncode == 0, p.stderr
    assert p.stdout == '{"hello": "world"}'  # as is: no newline added when not a tty


def test_deploy_same_folder_twice_same_sha(daemon, echo):
    # the folder zip is reproducible, so an unchanged folder keeps its CodeSha256
    again = deploy(daemon, "cli-echo", ECHO)
    assert again["code_sha256"] == echo["code_sha256"]
    assert again["arn"] == echo["arn"]


def test_deploy_zip_sent_as_is(daemon, lam, tmp_path):
    data = zip_dir(ECHO)
    path = tmp_path / "echo.zip"
    path.write_bytes(data)
    out = deploy(daemon, "cli-zip", str(path), "--memory", "256", "--timeout", "10",
                 "--env", "GREETING=from-zip", "--description", "zipped")
    assert out["code_sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    cfg = lam.get_function_configuration(FunctionName="cli-zip")
    assert cfg["MemorySize"] == 256 and cfg["Timeout"] == 10
    assert cfg["Description"] == "zipped"
    assert cfg["Environment"]["Variables"] == {"GREETING": "from-zip"}
    p = invoke(daemon, "cli-zip", '"env"')
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"greeting": "from-zip"}


def test_redeploy_updates_code_and_given_settings(daemon, lam, tmp_path):
    fn = copy_echo(tmp_path)
    first = deploy(daemon, "cli-redeploy", str(fn), "--memory", "192")
    assert json.loads(invoke(daemon, "cli-redeploy", '"version"').stdout) == "v1"

    set_version(fn, "v2")
    second = deploy(daemon, "cli-redeploy", str(fn), "--timeout", "7", "--env", "GREETING=hi",
                    "--env", "OTHER=x")
    assert second["arn"] == first["arn"]
    assert second["code_sha256"] != first["code_sha256"]
    p = invoke(daemon, "cli-redeploy", '"version"')
    assert p.returncode == 0 and json.loads(p.stdout) == "v2", p.stdout + p.stderr
    assert json.loads(invoke(daemon, "cli-redeploy", '"env"').stdout) == {"greeting": "hi"}
    cfg = lam.get_function_configuration(FunctionName="cli-redeploy")
    assert cfg["CodeSha256"] == second["code_sha256"]
    assert cfg["Timeout"] == 7
    assert cfg["MemorySize"] == 192  # not given the second time: unchanged
    assert cfg["Environment"]["Variables"] == {"GREETING": "hi", "OTHER": "x"}

    # a runtime given on redeploy is sent; a bad one is nimbus' refusal: exit 3, code kept
    p = daemon.cli("deploy", "cli-redeploy", str(fn), "--runtime", "cobol85")
    assert p.returncode == 3, p.stdout + p.stderr
    assert "error: InvalidParameterValueException: " in p.stderr
    assert p.stderr.count("error:") == 1


def test_redeploy_without_runtime_keeps_runtime_and_handler(daemon, lam, tmp_path):
    fn = tmp_path / "py"
    fn.mkdir()
    (fn / "app.py").write_text("def main(event, context):\n    return 'one'\n")
    deploy(daemon, "cli-keep-rt", str(fn), "--runtime", "python3.11", "--handler", "app.main")
    (fn / "app.py").write_text("def main(event, context):\n    return 'two'\n")
    deploy(daemon, "cli-keep-rt", str(fn), "--memory", "256")
    cfg = lam.get_function_configuration(FunctionName="cli-keep-rt")
    assert (cfg["Runtime"], cfg["Handler"], cfg["MemorySize"]) == ("python3.11", "app.main", 256)
    p = invoke(daemon, "cli-keep-rt", "{}")
    assert p.returncode == 0 and json.loads(p.stdout) == "two", p.stdout + p.stderr


def test_deploy_keeps_modes_and_symlinks(daemon, tmp_path):
    fn = copy_echo(tmp_path)
    (fn / "data.txt").write_text('"read through the link"')
    os.symlink("data.txt", fn / "data-link")
    (fn / ".hidden").write_text("dotfiles are kept")
    deploy(daemon, "cli-link", str(fn))
    p = invoke(daemon, "cli-link", '"link"')
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == "read through the link"


def test_deploy_refused_by_nimbus_exit_3(daemon, tmp_path):
    p = daemon.cli("deploy", "bad name!", ECHO)
    assert p.returncode == 3
    assert p.stderr.startswith("error: InvalidParameterValueException: "), p.stderr
    p = daemon.cli("deploy", "cli-mem", ECHO, "--memory", "64")
    assert p.returncode == 3 and "InvalidParameterValueException" in p.stderr


# ---- invoke ----

def test_invoke_payload_file_and_stdin(daemon, echo, tmp_path):
    ev = tmp_path / "event.json"
    ev.write_text('{"from": "file"}')
    p = daemon.cli("invoke", "cli-echo", "--payload", "@" + str(ev))
    assert p.returncode == 0 and json.loads(p.stdout) == {"from": "file"}, p.stderr
    p = daemon.cli("invoke", "cli-echo", "--payload", "-", input='{"from": "stdin"}')
    assert p.returncode == 0 and json.loads(p.stdout) == {"from": "stdin"}, p.stderr
    p = daemon.cli("invoke", "cli-echo")  # default payload
    assert p.returncode == 0 and json.loads(p.stdout) == {}, p.stderr


def test_invoke_log_tail(daemon, echo):
    p = daemon.cli("invoke", "cli-echo", "--payload", '{"tail": 1}', "--log")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"tail": 1}
    assert "START RequestId: " in p.stderr
    assert 'echo_sh: event {"tail": 1}' in p.stderr
    assert "END RequestId: " in p.stderr and "REPORT RequestId: " in p.stderr
    p = daemon.cli("invoke", "cli-echo", "--payload", '{"tail": 2}')
    assert p.stderr == ""  # no tail unless asked


def test_invoke_function_error_exit_1(daemon, echo):
    p = daemon.cli("invoke", "cli-echo", "--payload", '{"please": "fail"}', "--log")
    assert p.returncode == 1, p.stdout + p.stderr
    err = json.loads(p.stdout)
    assert err["errorType"] == "EchoError" and err["errorMessage"] == "asked to fail"
    assert "START RequestId: " in p.stderr


def test_invoke_platform_error_exit_3(daemon):
    p = daemon.cli("invoke", "cli-no-such-function")
    assert p.returncode == 3
    assert p.stderr.startswith("error: ResourceNotFoundException: "), p.stderr
    assert p.stderr.count("\n") == 1 and p.stdout == ""


def test_invoke_by_arn_and_qualifier(daemon, echo):
    # the ARN's ':' must be percent-encoded in the path label, as botocore does
    p = daemon.cli("invoke", echo["arn"], "--payload", '{"by": "arn"}')
    assert p.returncode == 0 and json.loads(p.stdout) == {"by": "arn"}, p.stderr
    p = daemon.cli("invoke", "cli-echo", "--qualifier", "$LATEST", "--payload", "[1]")
    assert p.returncode == 0 and json.loads(p.stdout) == [1], p.stderr


# ---- ls, rm ----

def test_ls_table_and_json(daemon, echo):
    p = daemon.cli("ls")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["NAME", "RUNTIME", "MEMORY", "TIMEOUT", "LAST_MODIFIED"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["cli-echo"][1:4] == ["provided.al2023", "128", "3"]
    assert re.match(r"\d{4}-\d\d-\d\dT", rows["cli-echo"][4])
    p = daemon.cli("ls", "--json")
    assert p.returncode == 0, p.stderr
    fns = {f["FunctionName"]: f for f in json.loads(p.stdout)["Functions"]}
    assert fns["cli-echo"]["FunctionArn"] == echo["arn"]


def test_ls_follows_pages(fresh_daemon):
    dm = fresh_daemon()
    lam = dm.boto3("lambda")
    data = zip_dir(ECHO)
    names = ["cli-page-%03d" % i for i in range(57)]  # the CLI asks for pages of 50
    for n in names:
        lam.create_function(FunctionName=n, Runtime="provided.al2023", Handler="handler",
                            Role="arn:aws:iam::000000000000:role/x", Code={"ZipFile": data})
    p = dm.cli("ls", "--json")
    assert p.returncode == 0, p.stderr
    assert sorted(f["FunctionName"] for f in json.loads(p.stdout)["Functions"]) == names
    p = dm.cli("ls")
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 1 + len(names)


def test_rm(daemon, tmp_path):
    deploy(daemon, "cli-rm-a", ECHO)
    deploy(daemon, "cli-rm-b", ECHO)
    p = daemon.cli("rm", "cli-rm-a")
    assert p.returncode == 0 and p.stdout == "deleted cli-rm-a\n", p.stderr
    p = daemon.cli("rm", "cli-rm-a")
    assert p.returncode == 3
    assert p.stderr.startswith("error: ResourceNotFoundException: ")
    # one missing name does not stop the others
    p = daemon.cli("rm", "cli-rm-missing", "cli-rm-b")
    assert p.returncode == 3 and "deleted cli-rm-b" in p.stdout
    assert p.stderr.count("error:") == 1
    names = [f["FunctionName"] for f in json.loads(daemon.cli("ls", "--json").stdout)["Functions"]]
    assert "cli-rm-a" not in names and "cli-rm-b" not in names


# ---- logs ----

def wait_for(predicate, timeout=10):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value or time.time() > deadline:
            return value
        time.sleep(0.2)


def test_logs(daemon, echo):
    marker = "logs-%d" % time.time_ns()
    p = invoke(daemon, "cli-echo", json.dumps({"marker": marker}))
    assert p.returncode == 0, p.stderr

    def logged():
        q = daemon.cli("logs", "cli-echo")
        assert q.returncode == 0, q.stderr
        return q.stdout if marker in q.stdout else None
    out = wait_for(logged)
    assert out, "marker never showed up in nimbus logs"
    lines = out.splitlines()
    assert any('echo_sh: event {"marker": "%s"}' % marker in line for line in lines), out
    assert any("START RequestId: " in line for line in lines), out
    assert any("REPORT RequestId: " in line for line in lines), out
    # --since: epoch ms in the future shows nothing; 1h shows the marker
    future = str(int(time.time() * 1000) + 3600_000)
    q = daemon.cli("logs", "cli-echo", "--since", future)
    assert q.returncode == 0 and q.stdout == "", q.stdout
    q = daemon.cli("logs", "cli-echo", "--since", "1h")
    assert q.returncode == 0 and marker in q.stdout
    q = daemon.cli("logs", "cli-no-such-function")
    assert q.returncode == 3 and "ResourceNotFoundException" in q.stderr


def test_logs_follow_until_sigint(daemon, echo):
    marker = "follow-%d" % time.time_ns()
    proc = subprocess.Popen([NIMBUS, "logs", "cli-echo", "--follow", "--since", "1s"],
                            env=daemon.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.7)  # let it reach the polling loop first
        assert proc.poll() is None, proc.stderr.read()
        p = invoke(daemon, "cli-echo", json.dumps({"marker": marker}))
        assert p.returncode == 0, p.stderr
        deadline = time.time() + 15
        buf = b""
        while time.time() < deadline and marker.encode() not in buf:
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                assert chunk, "follow ended early: %r" % proc.stderr.read()
                buf += chunk
        assert marker.encode() in buf, "follow did not print the new event: %r" % buf
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
        assert proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_logs_show_multiline_records_as_lines(daemon, tmp_path):
    """A Python traceback is one log event whose lines the runtime joins with CR (like Lambda);
    `nimbus logs` prints them as separate lines."""
    fn = tmp_path / "tb"
    fn.mkdir()
    (fn / "app.py").write_text("def main(event, context):\n    raise KeyError('tb-marker')\n")
    deploy(daemon, "cli-traceback", str(fn), "--runtime", "python3.11", "--handler", "app.main")
    p = invoke(daemon, "cli-traceback", "{}")
    assert p.returncode == 1, p.stdout + p.stderr

    def logged():
        # bytes, not text: text mode would turn CR into newlines itself
        q = subprocess.run([NIMBUS, "logs", "cli-traceback"], env=daemon.env(),
                           capture_output=True, timeout=30)
        return q.stdout if b"tb-marker" in q.stdout else None
    out = wait_for(logged)
    assert out, "the error record never showed up in nimbus logs"
    assert b"\r" not in out
    lines = out.split(b"\n")
    assert any(line.startswith(b"[ERROR] KeyError: 'tb-marker'") for line in lines), out
    assert any(line.startswith(b"Traceback (most recent call last):") for line in lines), out
