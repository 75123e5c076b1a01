"""gunicorn's statsd metrics (--statsd-host, --statsd-prefix, --dogstatsd-tags), caught by a UDP
socket of the test: portico and Debian's gunicorn serve the same requests and must send the same
metrics — each request's count, status and duration, the worker count — in the same format; also
from gunicorn.conf.py, in --print-config, and a bad address refused."""

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from master_support import print_config_settings
from servers import free_port, portico_binary
from wsgi_support import wait_until

GUNICORN = shutil.which("gunicorn")

APP = '''
def application(environ, start_response):
    if environ["PATH_INFO"] == "/missing":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"yes"]
'''


def fetch_status(port, path):
    # The body is read before the connection closes: gunicorn's sync worker sends it after the
    # head, and a client gone by then costs the request its metrics (EPIPE, no access line).
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code


class Collector:
    """A statsd server: every metric received, in order (a datagram may carry several, a line
    each, as statsd reads them)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.lines = []

    def drain(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.lines.extend(self.sock.recv(65536).decode().split("\n"))
            except socket.timeout:
                pass

    def close(self):
        self.sock.close()


def serve(binary, tmp_path, extra, requests):
    """Runs `binary` with 2 workers and statsd on; sends `requests`; returns the datagrams of
    the boot and of the requests."""
    collector = Collector()
    port = free_port()
    args = [binary, "--bind", "127.0.0.1:%d" % port, "--workers", "2",
            "--statsd-host", "127.0.0.1:%d" % collector.port] + extra + ["app:application"]
    proc = subprocess.Popen(args, cwd=str(tmp_path), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def up():
            try:
                return fetch_status(port, "/warmup") == 200
            except OSError:
                return False
        wait_until(up, 15.0)
        collector.drain(1.5)  # the boot's metrics and the warm-up request
        boot = collector.lines
        collector.lines = []
        for path, status in requests:
            assert fetch_status(port, path) == status
        collector.drain(1.5)
        return boot, collector.lines
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        collector.close()


def shape(lines, prefix):
    """The metrics as (name, type) with counts; durations by name only (their values vary)."""
    out = {}
    for line in lines:
        match = re.fullmatch(re.escape(prefix) + r"([\w.]+):([-\d.]+)\|(c|g|ms)(\|@1\.0)?(\|#.*)?",
                             line)
        assert match, line
        name, value, kind, rate, tags = match.groups()
        if kind == "c":
            assert rate == "|@1.0", line
        if kind == "ms":
            assert float(value) >= 0 and "." in value, line
            value = "*"
        if name.startswith("gunicorn.log."):
            continue  # gunicorn logs warnings of its own (its log lines differ from portico's)
        key = (name, kind, value, tags or "")
        out[key] = out.get(key, 0) + 1
    return out


@pytest.fixture
def appdir(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


REQUESTS = [("/", 200), ("/a", 200), ("/missing", 404)]


def test_portico_sends_the_metrics_gunicorn_sends(appdir):
    extra = ["--statsd-prefix", "myapp", "--dogstatsd-tags", "env:test,team:web"]
    boot, lines = serve(portico_binary(), appdir, extra, REQUESTS)
    mine = shape(lines, "myapp.")
    requests = ("gunicorn.requests", "c", "1", "|#env:test,team:web")
    assert mine[requests] == 3
    assert mine[("gunicorn.request.status.200", "c", "1", "|#env:test,team:web")] == 2
    assert mine[("gunicorn.request.status.404", "c", "1", "|#env:test,team:web")] == 1
    assert mine[("gunicorn.request.duration", "ms", "*", "|#env:test,team:web")] == 3
    # The worker count once, when it becomes 2 (gunicorn reports it when it changes).
    gauge = ("gunicorn.workers", "g", "2", "|#env:test,team:web")
    assert shape(boot, "myapp.").get(gauge) == 1, boot
    if GUNICORN is None:
        pytest.skip("Debian's gunicorn is not installed")
    their_boot, their_lines = serve(GUNICORN, appdir, extra, REQUESTS)
    assert shape(lines, "myapp.") == shape(their_lines, "myapp.")
    assert shape(their_boot, "myapp.").get(gauge) == 1, their_boot


def test_an_error_line_is_counted_and_no_prefix_means_none(appdir):
    # A 500 from the app is an error-log line: gunicorn.log.error. Without --statsd-prefix the
    # names stand alone.
    (appdir / "app.py").write_text(APP + '''
_inner = application
def application(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom")
    return _inner(environ, start_response)
''')
    _, lines = serve(portico_binary(), appdir, [], [("/boom", 500), ("/", 200)])
    assert "gunicorn.log.error:1|c|@1.0" in lines, lines
    assert lines.count("gunicorn.requests:1|c|@1.0") == 2, lines
    assert "gunicorn.request.status.500:1|c|@1.0" in lines


def test_config_file_print_config_and_bad_addresses(appdir):
    (appdir / "gunicorn.conf.py").write_text(
        'statsd_host = "localhost:8125"\nstatsd_prefix = "svc"\ndogstatsd_tags = "a:1"\n')
    out = subprocess.run([portico_binary(), "--print-config", "app"], cwd=str(appdir),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    printed = print_config_settings(out.stdout)
    assert printed["statsd_host"].strip() == "('localhost', 8125)"
    assert printed["statsd_prefix"].strip() == "svc"
    assert printed["dogstatsd_tags"].strip() == "a:1"
    if GUNICORN:
        theirs = subprocess.run([GUNICORN, "--print-config", "app"], cwd=str(appdir),
                                capture_output=True, text=True, timeout=30)
        for name in ("statsd_host", "statsd_prefix", "dogstatsd_tags"):
            assert re.search(r"^%s\s+= %s$" % (name, re.escape(printed[name].strip())),
                             theirs.stdout, re.M), (name, theirs.stdout)
    os.remove(appdir / "gunicorn.conf.py")
    for bad in ("localhost", "a:b:c", "host:port"):
        out = subprocess.run([portico_binary(), "--statsd-host", bad, "app"], cwd=str(appdir),
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 2
        assert "argument --statsd-host: invalid value" in out.stderr, out.stderr
    out = subprocess.run([portico_binary(), "--statsd-host", "no-such-host.invalid:8125",
                          "--bind", "127.0.0.1:%d" % free_port(), "app"], cwd=str(appdir),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "--statsd-host no-such-host.invalid:8125" in out.stderr
