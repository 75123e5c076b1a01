"""Helpers for the test_master_*.py modules: starting portico as a master with workers, finding
its workers through /proc, keep-alive connections pinned to one worker, a retrying client that
behaves like a real one, and bounded background load generators."""

import os
import re
import socket
import threading
import time

from http_client import ProtocolError
from wsgi_support import read_log, start_wsgi, wait_until

APP = "master_apps:application"


def start_master(launcher, workers=2, app=APP, args=(), threads=None, env_extra=None,
                 pythonpath=True, static=False, keep_alive=30):
    """Starts `portico -w N` serving `app`; the server gets .error_log and .boot_log (paths).

    Readiness is only "the port accepts" (the master's listener); callers that need the workers
    up use wait_for_workers().
    """
    log_dir = launcher.tmp_path_factory.mktemp("masterlog")
    boot_log = str(log_dir / "boot.log")
    env = dict(os.environ)
    env["PORTICO_TEST_BOOT_LOG"] = boot_log
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(env_extra or {})
    full = ["-w", str(workers), "--keep-alive", str(keep_alive)] + list(args)
    server = start_wsgi(launcher, app=app, args=full, threads=threads, pythonpath=pythonpath,
                        static=static, env=env)
    server.boot_log = boot_log
    server.log_dir = str(log_dir)
    return server


def process_state(pid):
    """(ppid, state letter) from /proc/<pid>/stat, or None when the process is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            data = handle.read().decode("latin-1")
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces; the fields after it are fixed.
    rest = data[data.rfind(")") + 2:].split()
    return int(rest[1]), rest[0]


def print_config_settings(text):
    """--print-config's output (gunicorn's `name = value` lines) as a dict."""
    out = {}
    for line in text.splitlines():
        if " = " in line:
            key, value = line.split(" = ", 1)
            out[key.strip()] = value
    return out


def process_ids(pid):
    """(real uid, real gid) of a process, from /proc/PID/status."""
    uid = gid = None
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
            elif line.startswith("Gid:"):
                gid = int(line.split()[1])
    return uid, gid


def children(pid):
    """The live (non-zombie) child pids of `pid`."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        info = process_state(int(entry))
        if info is not None and info[0] == pid and info[1] != "Z":
            found.add(int(entry))
    return found


def workers(server):
    return children(server.proc.pid)


def wait_for_workers(server, count, timeout=5.0, exclude=()):
    """Waits until the master has exactly `count` live children; returns them (or the last set)."""
    exclude = set(exclude)
    result = {"pids": set()}

    def ready():
        result["pids"] = workers(server)
        return len(result["pids"]) == count and not (result["pids"] & exclude)

    wait_until(ready, timeout)
    return result["pids"]


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def cpu_seconds(pid):
    """utime + stime of one process, in seconds."""
    with open("/proc/%d/stat" % pid, "rb") as handle:
        data = handle.read().decode("latin-1")
    rest = data[data.rfind(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def boot_pids(server):
    """Pids that imported the app, in order (from the app's PORTICO_TEST_BOOT_LOG)."""
    try:
        with open(server.boot_log) as handle:
            return [int(line) for line in handle.read().split()]
    except OSError:
        return []


def send_signal(server, signo):
    os.kill(server.proc.pid, signo)


def wait_exit(server, timeout):
    """Waits for the master to exit; returns its code (None if still running). Marks the server
    as finished so the launcher does not expect it alive at teardown."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = server.proc.poll()
        if code is not None:
            server.returncode = code
            return code
        time.sleep(0.02)
    return None


def port_is_free(port, host="127.0.0.1"):
    """True when nothing listens on host:port any more (no orphan worker still holds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            probe.listen(1)
            return True
        except OSError:
            return False


def log_text(server):
    return read_log(server)


def wait_for_log_match(server, pattern, timeout=5.0, flags=re.IGNORECASE):
    """Polls the logs until regex `pattern` matches; returns (match or None, text)."""
    regex = re.compile(pattern, flags)
    found = {"match": None, "text": ""}

    def check():
        found["text"] = read_log(server)
        found["match"] = regex.search(found["text"])
        return found["match"]

    wait_until(check, timeout)
    return found["match"], found["text"]


class Failure(Exception):
    """A request that did not get a complete response."""


def fetch(server, target, conn=None, timeout=5.0, method="GET"):
    """One GET as a careful real client (urllib3, browsers) does it.

    On a reused keep-alive connection, a close with no response byte at all is the benign
    race of RFC 9112 section 9.3.1 (the server closed the idle connection as the request
    left): the request is retried once on a new connection, as clients do for idempotent
    requests. Everything else that is not a full response raises Failure.
    Returns (response, connection to reuse or None, retried?).
    """
    retried = False
    if conn is not None:
        try:
            conn.send("%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % (method, target))
            got_bytes = conn._fill()
        except (BrokenPipeError, ConnectionResetError):
            got_bytes = False
        except OSError as error:
            conn.close()
            raise Failure("reused connection: %r" % error)
        if got_bytes:
            try:
                response = conn.read_response(method)
            except (ProtocolError, OSError) as error:
                conn.close()
                raise Failure("reused connection, partial response: %r" % error)
            return _keep_or_close(response, conn) + (retried,)
        conn.close()
        retried = True
    try:
        conn = server.connect(timeout=timeout)
    except OSError as error:
        raise Failure("connect: %r" % error)
    try:
        conn.send("%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % (method, target))
        response = conn.read_response(method)
    except (ProtocolError, OSError) as error:
        conn.close()
        raise Failure("new connection: %r" % error)
    return _keep_or_close(response, conn) + (retried,)


def _keep_or_close(response, conn):
    if "close" in response.connection_tokens():
        conn.close()
        return response, None
    return response, conn


def pid_of(response):
    return int(response.body.decode().strip())


def served_pid(server, timeout=2.0):
    """The pid that answers /pid on a new connection, or None when that fails."""
    try:
        response, conn, _retried = fetch(server, "/pid", timeout=timeout)
    except Failure:
        return None
    if conn is not None:
        conn.close()
    return pid_of(response) if response.status == 200 else None


def wait_served_by(server, pid, timeout, clients=6):
    """Waits until `pid` answers a /pid request; returns the seconds it took, or None.

    Under light sequential load one worker may win every accept (all workers wake, the hot one
    is first), so a just-started worker is only proven to serve when connections arrive
    concurrently: bursts of parallel clients until `pid` answers.
    """
    started = time.monotonic()
    deadline = started + timeout
    found = threading.Event()

    def client():
        while not found.is_set() and time.monotonic() < deadline:
            if served_pid(server, timeout=1.0) == pid:
                found.set()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    served = found.wait(timeout)
    elapsed = time.monotonic() - started
    found.set()
    for thread in threads:
        thread.join(timeout=2.0)
    return elapsed if served else None


def pin_connections(server, count, timeout=20.0, burst=None):
    """Keep-alive connections to `count` distinct workers: {pid: Connection}.

    A connection stays with the worker that accepted it (or that it was handed to), so this
    opens connections until enough workers have answered on one; the extras are closed.
    Connections come in bursts: `burst` connections opened, then a /pid request sent on each
    before any answer is read. The workers race for each accept (one accept per wake-up), so a
    burst spreads over the workers that are serving; one request at a time would leave at most
    one connection in the queue, and the worker that is already running (hot, or simply
    scheduled first on a loaded machine) would win it again and again. Only quick requests are
    sent, so a slow pin costs no queue of work on a worker; a worker still loading its app
    (its process exists, it does not accept yet) just misses a burst, and the next one follows
    at once, until `timeout`.
    """
    burst = burst or max(4, 2 * count)
    pinned = {}
    deadline = time.monotonic() + timeout
    bursts = 0
    try:
        while len(pinned) < count and time.monotonic() < deadline:
            bursts += 1
            conns = []
            try:
                for _ in range(burst):
                    conns.append(server.connect(timeout=5.0))
                for conn in conns:
                    conn.send("GET /pid HTTP/1.1\r\nHost: localhost\r\n\r\n")
                for conn in conns:
                    response = conn.read_response("GET")
                    assert response.status == 200, response
                    pid = pid_of(response)
                    if pid not in pinned and len(pinned) < count:
                        pinned[pid] = conn
            finally:
                kept = {id(conn) for conn in pinned.values()}
                for conn in conns:
                    if id(conn) not in kept:
                        conn.close()
            if len(pinned) < count:
                time.sleep(0.02)
    except BaseException:
        for conn in pinned.values():
            conn.close()
        raise
    if len(pinned) < count:
        for conn in pinned.values():
            conn.close()
        raise AssertionError("only %d distinct workers answered %d bursts of %d new connections in"
                             " %.0f s (wanted %d): connections are not spread over the workers"
                             % (len(pinned), bursts, burst, timeout, count))
    return pinned


class Load:
    """Background clients hitting `target` until stopped or `max_seconds` pass; each record is
    (start, end, ok, detail, pid, mode). mode "keepalive" reuses its connection (with the
    benign-race retry of fetch()), "new" opens one per request."""

    def __init__(self, server, target="/pid", keepalive=2, new=2, max_seconds=10.0,
                 timeout=5.0, pause=0.005):
        self.server = server
        self.target = target
        self.timeout = timeout
        self.pause = pause
        self.deadline = time.monotonic() + max_seconds
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.records = []
        self.retries = 0
        self.threads = [threading.Thread(target=self._run, args=("keepalive",), daemon=True)
                        for _ in range(keepalive)]
        self.threads += [threading.Thread(target=self._run, args=("new",), daemon=True)
                         for _ in range(new)]

    def start(self):
        for thread in self.threads:
            thread.start()
        return self

    def stop(self):
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=self.timeout + 2)
        return self.records

    def _run(self, mode):
        conn = None
        while not self.stop_event.is_set() and time.monotonic() < self.deadline:
            start = time.monotonic()
            try:
                response, conn, retried = fetch(self.server, self.target,
                                                conn if mode == "keepalive" else None, self.timeout)
                if mode != "keepalive" and conn is not None:
                    conn.close()
                    conn = None
                ok = response.status == 200
                detail = "" if ok else "status %d" % response.status
                pid = pid_of(response) if ok else None
                if retried:
                    with self.lock:
                        self.retries += 1
            except Failure as error:
                conn = None
                ok, detail, pid = False, str(error), None
            with self.lock:
                self.records.append((start, time.monotonic(), ok, detail, pid, mode))
            if self.pause:
                time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def failures(self):
        return [r for r in self.records if not r[2]]

    def summary(self):
        failed = self.failures()
        return "%d requests, %d failed, %d benign retries; first failures: %r" % (
            len(self.records), len(failed), self.retries, failed[:5])
