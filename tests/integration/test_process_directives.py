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
from master_support import process_ids, wait_for_workers
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


def _assert_dropped_to(pids, user):
    """Every worker runs as `user`. A worker is forked as root and drops to the user once its
    site (logs) is open; the master may list it before that (under ASan, well before)."""
    wanted = (user.pw_uid, user.pw_gid)
    wait_until(lambda: all(process_ids(pid) == wanted for pid in pids), 10)
    for pid in pids:
        assert process_ids(pid) == wanted, pid


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
    assert process_ids(site.proc.pid) == (0, 0)
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


# --- worker_cpu_affinity ------------------------------------------------------------------------

AFFINITY_HTTP = r"""
    server {
        listen 127.0.0.1:@PORT@;
        location / { return 200 "ok\n"; }
    }
"""


def _cpus_allowed(pid):
    """The CPU numbers in /proc/PID/status's Cpus_allowed_list, for every thread of the process."""
    found = set()
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, tid)) as handle:
            for line in handle:
                if line.startswith("Cpus_allowed_list:"):
                    cpus = set()
                    for part in line.split(":", 1)[1].strip().split(","):
                        low, _, high = part.partition("-")
                        cpus.update(range(int(low), int(high or low) + 1))
                    found.add(frozenset(cpus))
    return found


ALL_CPUS = frozenset(os.sched_getaffinity(0))
needs_two_cpus = pytest.mark.skipif(len(ALL_CPUS) < 2, reason="binding workers apart needs two CPUs")


@needs_two_cpus
def test_worker_cpu_affinity_auto_binds_each_worker_to_its_own_cpu(site):
    site.configure("worker_processes 2;\nworker_cpu_affinity auto;", "", AFFINITY_HTTP)
    site.start()
    assert site.wait_ready(), site.log()
    pids = wait_for_workers(site, 2, timeout=10)
    assert len(pids) == 2, site.log()
    cpus = sorted(ALL_CPUS)
    # A worker binds itself just after the fork: its pid may be seen a moment before (a loaded
    # machine made that moment long enough to read an unbound worker).
    wait_until(lambda: site.log().count("sched_setaffinity(): using cpu #") >= 2, 10)

    def one_cpu_each():
        return all(len(b) == 1 and len(next(iter(b))) == 1 for b in map(_cpus_allowed, pids))
    wait_until(one_cpu_each, 10)
    bound = [_cpus_allowed(pid) for pid in pids]
    # Each worker (every one of its threads) on one CPU, the two on the first two CPUs.
    assert all(len(b) == 1 and len(next(iter(b))) == 1 for b in bound), bound
    assert sorted(next(iter(next(iter(b)))) for b in bound) == cpus[:2], bound
    assert _cpus_allowed(site.proc.pid) == {ALL_CPUS}  # the master is not bound
    assert "using cpu #%d" % cpus[0] in site.log() and "using cpu #%d" % cpus[1] in site.log()
    assert site.request("/").status == 200


@needs_two_cpus
def test_worker_cpu_affinity_masks_and_a_replaced_worker_keeps_its_mask(site):
    cpus = sorted(ALL_CPUS)
    mask = lambda *chosen: "".join("1" if c in chosen else "0" for c in reversed(range(cpus[-1] + 1)))
    # Worker 0 on the second CPU, worker 1 (and any after it: the last mask) on the first.
    site.configure("worker_processes 2;\nworker_cpu_affinity %s %s;" % (mask(cpus[1]), mask(cpus[0])),
                   "", AFFINITY_HTTP)
    site.start()
    assert site.wait_ready(), site.log()
    pids = wait_for_workers(site, 2, timeout=10)
    by_cpu = {next(iter(next(iter(_cpus_allowed(pid))))): pid for pid in pids}
    assert sorted(by_cpu) == cpus[:2], by_cpu
    # A killed worker's replacement takes its number, so its CPU.
    killed = by_cpu[cpus[1]]
    os.kill(killed, signal.SIGKILL)
    now = wait_for_workers(site, 2, timeout=10, exclude=[killed])
    assert killed not in now and len(now) == 2, site.log()
    replacement = (set(now) - set(pids)).pop()
    wait_until(lambda: _cpus_allowed(replacement) == {frozenset([cpus[1]])}, 10)
    assert _cpus_allowed(replacement) == {frozenset([cpus[1]])}
    assert _cpus_allowed(by_cpu[cpus[0]]) == {frozenset([cpus[0]])}


@pytest.mark.parametrize("directive, message", [
    ("worker_cpu_affinity 01 012;", 'invalid character "2" in "worker_cpu_affinity"'),
    ("worker_cpu_affinity auto 01 10;", 'invalid number of arguments in "worker_cpu_affinity" directive'),
    ("worker_cpu_affinity %s;" % ("1" * 1025), '"worker_cpu_affinity" supports up to 1024 CPUs only'),
    ("worker_cpu_affinity 01;\nworker_cpu_affinity 10;", '"worker_cpu_affinity" directive is duplicate'),
])
def test_worker_cpu_affinity_refusals_match_nginx(tmp_path, directive, message):
    from nginx_diff import NGINX
    conf = tmp_path / "affinity.conf"
    conf.write_text("%s\nevents {}\nhttp {}\n" % directive)
    for binary in (portico_binary(), NGINX):
        proc = subprocess.run([binary, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)
        assert proc.returncode != 0, (binary, proc.stderr)
        assert message + " in %s:" % conf in proc.stderr, (binary, proc.stderr)


def test_worker_cpu_affinity_mask_count_warning_matches_nginx(tmp_path):
    from nginx_diff import NGINX
    conf = tmp_path / "affinity.conf"
    conf.write_text("worker_processes 3;\nworker_cpu_affinity 01 10;\nevents {}\nhttp {}\n")
    warning = ('the number of "worker_processes" is not equal to the number of "worker_cpu_affinity" '
               'masks, using last mask for remaining worker processes')
    for binary in (portico_binary(), NGINX):
        proc = subprocess.run([binary, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, (binary, proc.stderr)
        assert "[warn]" in proc.stderr and warning in proc.stderr, (binary, proc.stderr)
