"""Listeners (IPv6, unix sockets, several binds), the command line, logs, pid file and graceful stop."""

import os
import re
import socket
import subprocess
import time

import pytest

from http_client import Connection
from servers import free_port, portico_binary
from wsgi_support import read_text

CLI_TIMEOUT = 5


def _ipv6_loopback_available():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def _run_cli(args, tmp_path):
    binary = portico_binary()
    if not os.access(binary, os.X_OK):
        pytest.fail("portico binary %s is missing (set PORTICO_BIN)" % binary)
    try:
        return subprocess.run([binary] + args, capture_output=True, timeout=CLI_TIMEOUT,
                              cwd=str(tmp_path), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("portico %s did not exit within %d s" % (" ".join(args), CLI_TIMEOUT))


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    return predicate()


# --- listeners --------------------------------------------------------------------------------

@pytest.mark.skipif(not _ipv6_loopback_available(), reason="no IPv6 loopback")
def test_ipv6_listener(launch, site):
    server = launch.start(host="::1")
    with Connection.tcp("::1", server.port) as conn:
        response = conn.request("GET", "/static/a.txt", host="[::1]:%d" % server.port)
    assert response.status == 200
    assert response.body == site.files["a.txt"]


def test_unix_socket_listener(launch, site, tmp_path):
    path = str(tmp_path / "s.sock")
    server = launch.start(unix_path=path)
    assert os.path.exists(path)
    with Connection.unix(path) as conn:
        response = conn.request("GET", "/static/a.txt")
        follow = conn.request("GET", "/static/b.txt")
    assert response.status == 200
    assert response.body == site.files["a.txt"]
    assert follow.body == site.files["b.txt"]
    server.stop_and_check()
    assert not os.path.exists(path), "unix socket file left behind after exit"


def test_unix_socket_replaces_stale_socket_file(launch, site, tmp_path):
    # A socket file left by a killed server (nobody listening) must not prevent a restart.
    path = str(tmp_path / "stale.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()
    server = launch.start(unix_path=path)
    with Connection.unix(path) as conn:
        assert conn.request("GET", "/static/a.txt").status == 200
    server.stop_and_check()


def test_two_tcp_binds_both_serve(launch, site):
    second = free_port()
    server = launch.start(["--bind", "127.0.0.1:%d" % second],
                          extra_ready=[(socket.AF_INET, ("127.0.0.1", second))])
    for port in (server.port, second):
        with Connection.tcp("127.0.0.1", port) as conn:
            response = conn.request("GET", "/static/a.txt")
        assert response.status == 200, port
        assert response.body == site.files["a.txt"]


@pytest.mark.parametrize("form", ["-b ADDR", "--bind=ADDR", "-bADDR"])
def test_bind_flag_spellings(launch, site, form):
    extra = free_port()
    address = "127.0.0.1:%d" % extra
    args = form.replace("ADDR", address).split(" ")
    launch.start(args, extra_ready=[(socket.AF_INET, ("127.0.0.1", extra))])
    with Connection.tcp("127.0.0.1", extra) as conn:
        assert conn.request("GET", "/static/a.txt").body == site.files["a.txt"]


def test_tcp_and_unix_binds_together(launch, site, tmp_path):
    path = str(tmp_path / "both.sock")
    port = free_port()
    server = launch.start(["--bind", "127.0.0.1:%d" % port], unix_path=path,
                          extra_ready=[(socket.AF_INET, ("127.0.0.1", port))])
    with Connection.unix(path) as conn:
        assert conn.request("GET", "/static/a.txt").body == site.files["a.txt"]
    with Connection.tcp("127.0.0.1", port) as conn:
        assert conn.request("GET", "/static/b.txt").body == site.files["b.txt"]
    server.stop_and_check()
    assert not os.path.exists(path)


def test_port_in_use_fails_cleanly(site, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = _run_cli(["--bind", "127.0.0.1:%d" % port, "--static", "/static/=" + site.static], tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip(), "no message for a bind failure"


# --- command line -----------------------------------------------------------------------------

def test_help(tmp_path):
    result = _run_cli(["--help"], tmp_path)
    assert result.returncode == 0
    text = result.stdout.decode()
    for flag in ("--bind", "--static", "--keep-alive", "--limit-request-line", "--limit-request-fields",
                 "--limit-request-field_size", "--access-logfile", "--access-logformat",
                 "--error-logfile", "--log-level", "--pid", "--chdir", "--backlog"):
        assert flag in text, "--help does not mention %s" % flag


@pytest.mark.parametrize("flag", ["--version", "-v"])
def test_version(tmp_path, flag):
    result = _run_cli([flag], tmp_path)
    assert result.returncode == 0
    assert re.search(r"portico\S* .*\d+\.\d+", result.stdout.decode()), result.stdout


def test_unknown_flag_is_exit_2_with_one_line(tmp_path):
    result = _run_cli(["--frobnicate"], tmp_path)
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert "--frobnicate" in lines[0]


@pytest.mark.parametrize("args", [
    ["--backlog", "x"],
    ["--bind", "nonsense:port"],
    ["--bind", "127.0.0.1:99999"],
    ["--keep-alive", "abc"],
    ["--limit-request-line", "-5"],
    ["--log-level", "loud"],
    ["--static", "no-equals-sign"],
    ["--bind"],
])
def test_bad_values_are_exit_2(tmp_path, args):
    if "--bind" not in args:
        # Should the value be wrongly accepted, keep the stray server off any shared port.
        args = args + ["--bind", "127.0.0.1:%d" % free_port()]
    result = _run_cli(args, tmp_path)
    assert result.returncode == 2, (args, result.returncode, result.stderr)
    assert result.stderr.strip()


# --- pid file, logs, chdir --------------------------------------------------------------------

def test_pid_file_written_and_removed(launch, tmp_path):
    pid_path = str(tmp_path / "portico.pid")
    server = launch.start(["--pid", pid_path])
    content = _wait_for(lambda: read_text(pid_path).strip())
    assert content == str(server.proc.pid)
    server.stop_and_check()
    assert not os.path.exists(pid_path), "pid file left behind after exit"


COMBINED_RE = re.compile(
    r'^127\.0\.0\.1 - - \[\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] '
    r'"GET /static/a\.txt HTTP/1\.1" 200 \d+ "-" "ua"$')


def test_access_log_combined_format(launch, site, tmp_path):
    log_path = str(tmp_path / "access.log")
    server = launch.start(["--access-logfile", log_path])
    with server.connect() as conn:
        response = conn.request("GET", "/static/a.txt", headers=[("User-Agent", "ua")])
    assert response.status == 200
    text = _wait_for(lambda: read_text(log_path) if read_text(log_path).endswith("\n") else "")
    lines = text.splitlines()
    assert len(lines) == 1, lines
    assert COMBINED_RE.match(lines[0]), lines[0]
    assert lines[0].split('" 200 ')[1].split()[0] == str(len(site.files["a.txt"]))


def test_access_log_referer_and_error_status(launch, tmp_path):
    log_path = str(tmp_path / "access.log")
    server = launch.start(["--access-logfile", log_path])
    with server.connect() as conn:
        conn.request("GET", "/static/missing", headers=[("User-Agent", "ua"), ("Referer", "http://r/")])
    line = _wait_for(lambda: read_text(log_path).strip())
    assert re.search(r'"GET /static/missing HTTP/1\.1" 404 \d+ "http://r/" "ua"$', line), line


def test_access_log_custom_format(launch, tmp_path):
    log_path = str(tmp_path / "access.log")
    server = launch.start(["--access-logfile", log_path, "--access-logformat", "%(h)s %(s)s %(m)s"])
    with server.connect() as conn:
        assert conn.request("GET", "/static/a.txt").status == 200
    line = _wait_for(lambda: read_text(log_path).strip())
    assert line == "127.0.0.1 200 GET", line


def test_access_log_to_stdout(launch, tmp_path):
    server = launch.start(["--access-logfile", "-"])
    with server.connect() as conn:
        assert conn.request("GET", "/static/a.txt", headers=[("User-Agent", "ua")]).status == 200
    line = _wait_for(lambda: server.stdout().strip())
    assert line, "nothing written to stdout"
    assert COMBINED_RE.match(line.splitlines()[-1]), line


def test_error_logfile_is_used(launch, tmp_path):
    log_path = str(tmp_path / "error.log")
    server = launch.start(["--error-logfile", log_path, "--log-level", "debug"])
    with server.connect() as conn:
        conn.request("GET", "/static/a.txt")
    assert _wait_for(lambda: os.path.exists(log_path))
    server.stop_and_check()
    assert read_text(log_path).strip(), "debug-level error log is empty"


def test_chdir_makes_static_relative(launch, site):
    server = launch.start(["--chdir", site.root, "--static", "/rel/=static"])
    with server.connect() as conn:
        response = conn.request("GET", "/rel/a.txt")
    assert response.status == 200
    assert response.body == site.files["a.txt"]


def test_two_static_mounts(launch, site):
    server = launch.start(["--static", "/other/=" + os.path.join(site.static, "sub")])
    with server.connect() as conn:
        assert conn.request("GET", "/other/inner.txt").body == site.files["sub/inner.txt"]
        assert conn.request("GET", "/static/a.txt").body == site.files["a.txt"]


# --- graceful stop ----------------------------------------------------------------------------

@pytest.mark.time_budget(40)
def test_sigterm_lets_inflight_download_finish(launch, site):
    server = launch.start()
    data = site.files["huge.bin"]
    with server.connect(timeout=10, rcvbuf=16384) as conn:
        conn.send(b"GET /static/huge.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        head = conn.read_head()
        assert head[1] == 200
        first = conn.read_exact(1 << 20)
        server.terminate()
        time.sleep(0.3)
        assert server.alive(), "portico exited with a download in flight"
        body = first
        while len(body) < len(data):
            body += conn.read_exact(min(256 * 1024, len(data) - len(body)))
            time.sleep(0.005)
        assert body == data
    server.proc.wait(timeout=10)
    assert server.proc.returncode == 0, server.stderr()
    server.returncode = 0


def test_sigterm_with_idle_keep_alive_exits_promptly(launch, site):
    server = launch.start(["--keep-alive", "2"])
    with server.connect() as conn:
        assert conn.request("GET", "/static/a.txt").status == 200
        start = time.monotonic()
        server.terminate()
        server.proc.wait(timeout=10)
        elapsed = time.monotonic() - start
    assert server.proc.returncode == 0, server.stderr()
    server.returncode = 0
    assert elapsed < 4, "an idle keep-alive connection held up shutdown for %.1f s" % elapsed


def test_sigterm_stops_accepting(launch, site):
    server = launch.start()
    port = server.port
    server.stop_and_check()
    with pytest.raises(OSError):
        Connection.tcp("127.0.0.1", port, timeout=2)


def test_access_log_durations_have_microseconds(launch, tmp_path):
    # %(D)s is microseconds measured with a µs clock (not milliseconds × 1000), %(M)s
    # milliseconds, %(L)s decimal seconds: all from the same duration.
    log_path = str(tmp_path / "access.log")
    server = launch.start(["--access-logfile", log_path, "--access-logformat", "%(D)s %(M)s %(L)s"])
    with server.connect() as conn:
        for _ in range(20):
            assert conn.request("GET", "/static/a.txt").status == 200
    text = _wait_for(lambda: len(read_text(log_path).splitlines()) >= 20 and read_text(log_path))
    rows = [line.split() for line in text.splitlines()]
    assert len(rows) == 20
    micros = [int(r[0]) for r in rows]
    assert any(m % 1000 for m in micros), micros  # not whole milliseconds
    for d, m, l in rows:
        assert int(m) == int(d) // 1000, (d, m)
        assert abs(float(l) - int(d) / 1e6) < 1e-5, (d, l)
