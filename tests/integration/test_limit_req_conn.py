"""limit_req and limit_conn against Debian's nginx with the same configuration.

The zones live in shared memory: with `worker_processes 4`, every worker counts in the same
zone, so portico lets through what nginx lets through (within the issue's ±burst, in a timed
run with many clients). Sequential cases (statuses, $limit_req_status, dry runs, error_page)
go through the differential harness; a reload keeps a zone whose size is unchanged.
"""

import os
import signal
import socket
import subprocess
import threading
import time

import pytest

import nginx_diff
from nginx_diff import run_case
from servers import free_port, portico_binary, terminate

NGINX = "/usr/sbin/nginx"

needs_nginx = pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="nginx is not installed")


# ---- sequential differential cases (one worker each; rates slow enough to be timeless) ----

STATUS_CASE = """
    limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
    limit_req_zone $arg_k zone=bykey:1m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=dry:1m rate=1r/m;
    limit_conn_zone $binary_remote_addr zone=conn:1m;
    server {
        listen 127.0.0.1:@PORT@;
        root @DIR@/www;
        add_header X-Req $limit_req_status always;
        add_header X-Conn $limit_conn_status always;
        location /burst { limit_req zone=one burst=2 nodelay; }
        location /custom { limit_req zone=bykey nodelay; limit_req_status 429; }
        location /dry { limit_req zone=dry; limit_req_dry_run on; }
        location /page { limit_req zone=bykey; error_page 503 /sorry.html; }
        location /conn { limit_conn conn 1; }
        location /free { }
        location = /sorry.html { }
    }
"""
STATUS_FILES = {"www/burst": "b", "www/custom": "c", "www/dry": "d", "www/page": "p",
                "www/conn": "n", "www/free": "f", "www/sorry.html": "sorry\n"}


@needs_nginx
def test_statuses_variables_and_dry_run_as_nginx(tmp_path):
    requests = [("GET", "/burst")] * 5            # 1 + burst 2 pass, then 503 (nodelay)
    requests += [("GET", "/custom?k=a"), ("GET", "/custom?k=a"),  # 429, and per key
                 ("GET", "/custom?k=b"), ("GET", "/custom")]      # an empty key: not limited
    requests += [("GET", "/dry")] * 3              # PASSED, then REJECTED_DRY_RUN, served
    requests += [("GET", "/page?k=p"), ("GET", "/page?k=p")]     # the 503 goes to error_page
    requests += [("GET", "/conn")] * 3             # each request releases its count at its end
    requests += [("GET", "/free")]                 # no limit: no variable
    run_case(tmp_path, STATUS_CASE, STATUS_FILES, requests)


# ---- the timed multi-worker runs ----

def _conf(workdir, port, body, nginx):
    user = "user root;\n" if nginx and os.geteuid() == 0 else ""
    temp = ""
    if nginx:
        os.makedirs(os.path.join(workdir, "temp"), exist_ok=True)
        temp = "".join("    %s_temp_path %s/temp/%s;\n" % (k, workdir, k)
                       for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return """%sworker_processes 4;
pid %s/server.pid;
error_log %s/error.log info;
events { worker_connections 512; }
http {
    access_log off;
%s%s
}
""" % (user, workdir, workdir, temp, body.replace("@PORT@", str(port)).replace("@DIR@", workdir))


class Running:
    """nginx (master + 4 workers) or portico (master + 4 workers) on one configuration."""

    def __init__(self, kind, root, body):
        self.workdir = os.path.join(root, kind)
        os.makedirs(os.path.join(self.workdir, "www"), exist_ok=True)
        for name in ("r", "c"):
            with open(os.path.join(self.workdir, "www", name), "w") as f:
                f.write("ok\n")
        self.port = free_port()
        self.conf = os.path.join(self.workdir, "server.conf")
        with open(self.conf, "w") as f:
            f.write(_conf(self.workdir, self.port, body, kind == "nginx"))
        binary = NGINX if kind == "nginx" else portico_binary()
        args = [binary, "-p", self.workdir + "/", "-c", self.conf]
        if kind == "nginx":
            args += ["-g", "daemon off;"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "%s exited: %s" % (kind, self.error_log())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        # A worker answers (the master listens before its workers accept): a timed run that
        # began while they boot would count fewer seconds than it thinks.
        while time.monotonic() < deadline and _get(self.port, "/probe", timeout=2.0) == 0:
            time.sleep(0.05)
        time.sleep(0.2)

    def error_log(self):
        try:
            with open(os.path.join(self.workdir, "error.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT if "nginx" in self.workdir else signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _get(port, path, timeout=10.0):
    """One request on its own connection; the status, or 0 when the connection failed."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(("GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" % path).encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else 0
    except (OSError, ValueError, IndexError):
        return 0


def _timed_run(port, path, seconds, clients):
    """`clients` threads request `path` in a loop (new connection each) until `seconds` have
    passed; a request started before then counts, however long it is held. Returns the
    statuses."""
    statuses = []
    lock = threading.Lock()
    start = time.monotonic()

    def client():
        while time.monotonic() - start < seconds:
            status = _get(port, path)
            with lock:
                statuses.append(status)
            if status != 200:
                time.sleep(0.01)  # a refused client retries, without spinning the CPU

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return statuses


REQ_BODY = """
    limit_req_zone $binary_remote_addr zone=one:1m rate=10r/s;
    server {
        listen 127.0.0.1:@PORT@;
        root @DIR@/www;
        location /r { limit_req zone=one burst=5; }
    }
"""


@needs_nginx
def test_limit_req_over_four_workers_passes_what_nginx_passes(tmp_path):
    counts = {}
    for kind in ("nginx", "portico"):
        server = Running(kind, str(tmp_path), REQ_BODY)
        try:
            statuses = _timed_run(server.port, "/r", 2.0, 12)
        finally:
            server.stop()
        assert set(statuses) <= {200, 503}, (kind, sorted(set(statuses)))
        counts[kind] = statuses.count(200)
        if kind == "portico":
            log = server.error_log()
            assert 'limiting requests, excess: 5.' in log and 'by zone "one"' in log, log[-2000:]
            assert 'delaying request, excess: ' in log, log[-2000:]
    # 1 + burst + rate * seconds ≈ 26 for both; a zone per worker would pass ~4 times that.
    assert abs(counts["portico"] - counts["nginx"]) <= 5, counts
    assert 20 <= counts["portico"] <= 32, counts


CONN_BODY = """
    limit_req_zone $binary_remote_addr zone=slow:1m rate=1r/s;
    limit_conn_zone $binary_remote_addr zone=conn:1m;
    server {
        listen 127.0.0.1:@PORT@;
        root @DIR@/www;
        # The count is taken in /c and held while the named location's limit_req delays the
        # request (an internal redirect keeps the request, and its count, alive).
        location /c { limit_conn conn 2; try_files /missing @slow; }
        location @slow { limit_req zone=slow burst=100; }
        location /charge { limit_req zone=slow burst=100; }
    }
"""


@needs_nginx
def test_limit_conn_over_four_workers_holds_what_nginx_holds(tmp_path):
    results = {}
    for kind in ("nginx", "portico"):
        server = Running(kind, str(tmp_path), CONN_BODY)
        try:
            # Charge the bucket so every /c request below is delayed (and holds its count).
            assert _get(server.port, "/charge") == 404  # no file: limit_req passed it
            statuses = []
            lock = threading.Lock()
            barrier = threading.Barrier(8)

            def client():
                barrier.wait()
                status = _get(server.port, "/c")
                with lock:
                    statuses.append(status)

            threads = [threading.Thread(target=client) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            # Every count went back when its request ended: a new request is served.
            after = _get(server.port, "/c")
        finally:
            server.stop()
        results[kind] = (statuses.count(200), statuses.count(503), after)
        if kind == "portico":
            assert 'limiting connections by zone "conn"' in server.error_log()
    # Two at a time: the first two are held by the delay (1 s and 2 s), the rest are refused
    # at once.
    assert results["portico"] == results["nginx"], results
    assert results["portico"][:2] == (2, 6), results


# ---- zones across a reload ----

RELOAD_BODY = """
    limit_req_zone $binary_remote_addr zone=one:%s rate=1r/m;
    server {
        listen 127.0.0.1:@PORT@;
        root @DIR@/www;
        location /r { limit_req zone=one nodelay; }
    }
"""


def _reload(server, size):
    with open(server.conf, "w") as f:
        f.write(_conf(server.workdir, server.port, RELOAD_BODY % size, False))
    before = server.error_log().count("Booting worker")
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while server.error_log().count("Booting worker") < before + 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # the old workers finish draining and stop accepting


def test_zone_survives_a_reload_unless_its_size_changes(tmp_path):
    server = Running("portico", str(tmp_path), RELOAD_BODY % "1m")
    try:
        assert _get(server.port, "/r") == 200
        assert _get(server.port, "/r") == 503
        _reload(server, "1m")  # same name and size: nginx reuses the zone, and its state
        assert _get(server.port, "/r") == 503, server.error_log()[-2000:]
        _reload(server, "2m")  # another size: a new, empty zone (nginx)
        assert _get(server.port, "/r") == 200, server.error_log()[-2000:]
        assert _get(server.port, "/r") == 503
    finally:
        server.stop()


def test_reload_refuses_a_zone_whose_key_changed(tmp_path):
    server = Running("portico", str(tmp_path), RELOAD_BODY % "1m")
    try:
        assert _get(server.port, "/r") == 200
        with open(server.conf, "w") as f:
            f.write(_conf(server.workdir, server.port,
                          (RELOAD_BODY % "1m").replace("$binary_remote_addr", "$uri"), False))
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        message = ('limit_req "one" uses the "$uri" key while previously it used the '
                   '"$binary_remote_addr" key')
        while message not in server.error_log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert message in server.error_log()
        assert _get(server.port, "/r") == 503  # the running configuration (and zone) stayed
    finally:
        server.stop()


KEEPALIVE_BODY = """
    limit_conn_zone $binary_remote_addr zone=conn:1m;
    server {
        listen 127.0.0.1:@PORT@;
        root @DIR@/www;
        location /c { limit_conn conn 1; }
    }
"""


def test_limit_conn_count_ends_with_the_request_not_the_connection(tmp_path):
    # nginx releases the count in the request's pool cleanup: a keep-alive connection making
    # one request after another never meets its own earlier count, while a second connection
    # is refused only while a request is in progress.
    server = Running("portico", str(tmp_path), KEEPALIVE_BODY)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            for _ in range(3):
                s.sendall(b"GET /c HTTP/1.1\r\nHost: localhost\r\n\r\n")
                data = b""
                while not data.endswith(b"ok\n"):
                    chunk = s.recv(65536)
                    assert chunk, data
                    data += chunk
                assert data.startswith(b"HTTP/1.1 200 "), data
            assert _get(server.port, "/c") == 200  # the idle connection holds nothing
    finally:
        server.stop()
