"""The process-level directives of a configuration file: `user` (workers drop to it when the
master is root, as nginx's do) and `events { worker_connections; multi_accept; }` (a worker at
its connection limit stops accepting until one closes). Runs portico with `-c FILE`."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from http_client import Connection
from master_support import wait_for_workers
from wsgi_support import wait_until
from servers import free_port, portico_binary, terminate
from nginx_diff import _can_connect

USER = "www-data"

WHOAMI = r'''
import json, os

def application(environ, start_response):
    body = json.dumps({"uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(),
                       "pid": os.getpid()}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
'''


def _ids(pid):
    """(real uid, real gid) of a process, from /proc/PID/status."""
    uid = gid = None
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
            elif line.startswith("Gid:"):
                gid = int(line.split()[1])
    return uid, gid


def _assert_dropped_to(pids, user):
    """Every worker runs as `user`. A worker is forked as root and drops to the user once its
    site (logs) is open; the master may list it before that (under ASan, well before)."""
    wanted = (user.pw_uid, user.pw_gid)
    wait_until(lambda: all(_ids(pid) == wanted for pid in pids), 10)
    for pid in pids:
        assert _ids(pid) == wanted, pid


class Site:
    """A private, world-readable directory (the workers may not be root) with a config file."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="portico-process-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.proc = None
        self.conf = os.path.join(self.dir, "portico.conf")
        self.error_log = os.path.join(self.dir, "error.log")
        self.stderr = os.path.join(self.dir, "stderr.log")

    def write(self, relative, data, mode=0o644):
        path = os.path.join(self.dir, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(data)
        os.chmod(path, mode)
        return path

    def configure(self, main, events, http):
        text = """%s
pid %s/portico.pid;
error_log %s info;
events { %s }
http {
    default_type text/plain;
    access_log off;
%s
}
""" % (main, self.dir, self.error_log, events, http.replace("@DIR@", self.dir)
       .replace("@PORT@", str(self.port)))
        self.write("portico.conf", text)

    def start(self, prefix=()):
        with open(self.stderr, "ab") as err:
            self.proc = subprocess.Popen(list(prefix) + [portico_binary(), "-c", self.conf],
                                         stdout=subprocess.DEVNULL, stderr=err,
                                         stdin=subprocess.DEVNULL, cwd=self.dir)
        return self

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if _can_connect(self.port):
                return True
            time.sleep(0.05)
        return False

    def request(self, target, conn=None):
        if conn is not None:
            return conn.request("GET", target, host="localhost")
        with Connection.tcp("127.0.0.1", self.port, 5.0) as fresh:
            return fresh.request("GET", target, host="localhost")

    def log(self):
        text = ""
        for path in (self.error_log, self.stderr):
            if os.path.exists(path):
                with open(path, errors="replace") as handle:
                    text += handle.read()
        return text

    def stop(self):
        terminate(self.proc, 10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def site():
    s = Site()
    yield s
    s.stop()


# --- user ---------------------------------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping to a user needs root")

USER_HTTP = r"""
    server {
        listen 127.0.0.1:@PORT@;
        access_log @DIR@/logs/access.log;
        root @DIR@/www;
        location /app/ { wsgi_app whoami:application; wsgi_pythonpath @DIR@/apps; }
    }
"""


def _start_user_site(site, workers=2):
    site.write("apps/whoami.py", WHOAMI)
    site.write("www/public.txt", "public\n")
    site.write("www/secret.txt", "root only\n", mode=0o600)
    os.makedirs(os.path.join(site.dir, "logs"), mode=0o700)  # only root may create files there
    site.configure("user %s;\nworker_processes %d;" % (USER, workers), "worker_connections 64;",
                   USER_HTTP)
    site.start()
    assert site.wait_ready(), site.log()


@needs_root
def test_workers_run_as_the_user_and_the_master_stays_root(site):
    import pwd
    expected = pwd.getpwnam(USER)
    _start_user_site(site)
    pids = wait_for_workers(site, 2, timeout=10)
    assert len(pids) == 2, site.log()
    _assert_dropped_to(pids, expected)
    assert _ids(site.proc.pid) == (0, 0)
    answer = json.loads(site.request("/app/").body)
    assert answer["uid"] == answer["euid"] == expected.pw_uid
    assert answer["gid"] == expected.pw_gid
    assert "not applied yet" not in site.log()


@needs_root
def test_files_only_root_may_read_are_403_and_the_access_log_is_still_written(site):
    _start_user_site(site)
    assert site.request("/public.txt").status == 200
    denied = site.request("/secret.txt")
    assert denied.status == 403, denied
    with open(os.path.join(site.dir, "logs", "access.log")) as handle:
        logged = handle.read()
    assert "GET /public.txt" in logged and "GET /secret.txt" in logged


@needs_root
def test_reload_starts_new_workers_as_the_user(site):
    import pwd
    expected = pwd.getpwnam(USER)
    _start_user_site(site)
    old = wait_for_workers(site, 2, timeout=10)
    with open(site.conf) as handle:
        text = handle.read()
    with open(site.conf, "w") as handle:
        handle.write(text.replace("location /app/", 'location = /new { return 200 "new"; }\n'
                                                    "        location /app/"))
    site.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if site.request("/new").status == 200:
            break
        time.sleep(0.1)
    assert site.request("/new").body == b"new"
    pids = wait_for_workers(site, 2, timeout=10, exclude=old)
    assert pids and not (pids & old)
    _assert_dropped_to(pids, expected)
    assert json.loads(site.request("/app/").body)["uid"] == expected.pw_uid


@needs_root
def test_a_failed_setuid_is_nginx_s_message_and_a_boot_failure(site):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    import pwd
    gid = pwd.getpwnam(USER).pw_gid
    site.write("www/index.html", "x\n")
    site.configure("user %s;\nworker_processes 1;" % USER, "",
                   "server { listen 127.0.0.1:@PORT@; root @DIR@/www; }")
    # Root without CAP_SETGID/CAP_SETUID: the master starts, the worker cannot switch.
    site.start(prefix=["setpriv", "--bounding-set", "-setuid,-setgid", "--inh-caps",
                       "-setuid,-setgid"])
    try:
        code = site.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        code = None
    assert "setgid(%d) failed (1: Operation not permitted)" % gid in site.log(), site.log()
    assert code not in (None, 0), site.log()


# --- worker_connections, multi_accept -----------------------------------------------------------

LIMIT_HTTP = r"""
    server {
        listen 127.0.0.1:@PORT@;
        location / { return 200 "ok"; }
    }
"""


def _responds(sock, timeout):
    """True when `sock` gets a response's first bytes within `timeout` seconds."""
    sock.settimeout(timeout)
    try:
        return bool(sock.recv(1024))
    except socket.timeout:
        return False


@pytest.mark.parametrize("multi_accept", ["off", "on"])
def test_worker_connections_limit_queues_the_next_client(site, multi_accept):
    site.configure("worker_processes 1;",
                   "worker_connections 4; multi_accept %s;" % multi_accept, LIMIT_HTTP)
    site.start()
    assert site.wait_ready(), site.log()
    held = []
    try:
        for _ in range(4):
            conn = Connection.tcp("127.0.0.1", site.port, 5.0)
            held.append(conn)
            assert site.request("/", conn).status == 200
        # The fifth connects (the kernel's queue) but is not accepted while four are open.
        fifth = socket.create_connection(("127.0.0.1", site.port), timeout=5)
        try:
            fifth.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            assert not _responds(fifth, 1.0), "a fifth connection was served past the limit"
            held.pop().close()
            assert _responds(fifth, 10.0), "the queued client was not served after a close"
        finally:
            fifth.close()
        deadline = time.monotonic() + 5
        while "4 worker_connections are not enough" not in site.log() and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        assert "4 worker_connections are not enough" in site.log()
    finally:
        for conn in held:
            conn.close()
