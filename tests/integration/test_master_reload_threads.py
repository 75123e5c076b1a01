"""A reload that changes the number of Python threads per worker (issue 13).

The master's status board has, per worker, one "busy since" stamp per Python thread, read by
the master's timeout watch. It was sized once, at start: a reload from `wsgi_threads 1` to
`wsgi_threads 8` logged that the master kept 1 thread while the new workers ran 8, and their
busy stamps overwrote the next worker's slot (pid, request count, heartbeat, state) — a live
worker showed `state=free`, and a false WORKER TIMEOUT followed. The new generation of workers
must run the new count on a board sized for it (the old one drains on its own), for the
nginx-style file (`wsgi_threads`) and for the gunicorn-style flags (`--threads`)."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from http_client import Connection
from master_support import wait_for_workers
from nginx_diff import _can_connect
from servers import free_port, portico_binary, terminate
from wsgi_support import wait_until

# A slow app that says which worker answered and how many of its requests ran at once.
SLOW_APP = r'''
import json, os, threading, time
from urllib.parse import parse_qs

_lock = threading.Lock()
_running = 0
_peak = 0

def application(environ, start_response):
    global _running, _peak
    query = parse_qs(environ.get("QUERY_STRING", ""))
    ms = int(query.get("ms", ["0"])[0])
    with _lock:
        _running += 1
        _peak = max(_peak, _running)
    try:
        time.sleep(ms / 1000.0)
    finally:
        with _lock:
            _running -= 1
    body = json.dumps({"pid": os.getpid(), "peak": _peak,
                       "multithread": environ["wsgi.multithread"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''

CONCURRENT = 16
SLOW_MS = 1500
# The master logs a status line per worker every 5 s at the debug level.
STATUS_LINE = re.compile(r"worker pid=(\d+) requests=(\d+) state=(\w+)")


class Site:
    """A private directory with the app, a configuration file or a command line, and logs."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="portico-threads-", dir="/tmp")
        self.port = free_port()
        self.conf = os.path.join(self.dir, "portico.conf")
        self.error_log = os.path.join(self.dir, "error.log")
        self.stderr = os.path.join(self.dir, "stderr.log")
        self.proc = None
        with open(os.path.join(self.dir, "slowapp.py"), "w") as handle:
            handle.write(SLOW_APP)

    def configure(self, threads):
        with open(self.conf, "w") as handle:
            handle.write("""
worker_processes 2;
pid %(dir)s/portico.pid;
error_log %(log)s debug;
events { }
http {
    access_log off;
    server {
        listen 127.0.0.1:%(port)d;
        location / { wsgi_app slowapp:application; wsgi_pythonpath %(dir)s; wsgi_threads %(threads)d; }
    }
}
""" % {"dir": self.dir, "log": self.error_log, "port": self.port, "threads": threads})

    def start(self, command):
        with open(self.stderr, "ab") as err:
            self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err,
                                         stdin=subprocess.DEVNULL, cwd=self.dir)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.proc.poll() is None:
            if _can_connect(self.port):
                return
            time.sleep(0.05)
        raise AssertionError("portico did not start:\n" + self.log())

    def log(self):
        text = ""
        for path in (self.error_log, self.stderr):
            if os.path.exists(path):
                with open(path, errors="replace") as handle:
                    text += handle.read()
        return text

    def stop(self):
        if self.proc is not None:
            terminate(self.proc, 10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def site():
    s = Site()
    yield s
    s.stop()


def _slow_requests(port, count, ms):
    """`count` concurrent requests; returns their answers (status, json or error text)."""
    answers = [None] * count

    def one(index):
        try:
            with Connection.tcp("127.0.0.1", port, 30.0) as conn:
                response = conn.request("GET", "/slow?ms=%d" % ms, host="localhost",
                                        headers=[("Connection", "close")])
            answers[index] = (response.status, json.loads(response.body)
                              if response.status == 200 else response.body[:200])
        except Exception as error:  # reported by the assertion below
            answers[index] = (None, repr(error))

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def _status_after(site, offset, pids, timeout=15.0):
    """{pid: (requests, state)} from the master's status lines logged after `offset` of the
    error log, once every pid of `pids` has one."""
    found = {}

    def check():
        with open(site.error_log, errors="replace") as handle:
            handle.seek(offset)
            text = handle.read()
        for match in STATUS_LINE.finditer(text):
            found[int(match.group(1))] = (int(match.group(2)), match.group(3))
        return all(pid in found for pid in pids)

    wait_until(check, timeout)
    return found


def _reload_to_eight_threads_and_check(site, reload):
    old = wait_for_workers(site, 2, timeout=15)
    assert len(old) == 2, site.log()
    reload()
    site.proc.send_signal(signal.SIGHUP)
    new = wait_for_workers(site, 2, timeout=15, exclude=old)
    assert len(new) == 2 and not (new & old), site.log()

    served = {}
    for _ in range(2):  # two rounds: every thread of both workers is used and freed twice
        answers = _slow_requests(site.port, CONCURRENT, SLOW_MS)
        bad = [a for a in answers if a is None or a[0] != 200]
        assert not bad, "requests not answered: %r\n%s" % (bad[:5], site.log())
        for _status, body in answers:
            served.setdefault(body["pid"], []).append(body)
    log = site.log()
    assert set(served) <= new, "answered by %r, the new workers are %r" % (set(served), new)
    # The new count is really used: the app says so, and requests of one worker overlapped.
    assert all(body["multithread"] for bodies in served.values() for body in bodies)
    assert max(body["peak"] for bodies in served.values() for body in bodies) > 1, served

    # The board the master reads is the one the workers write: each live worker's line shows
    # it ready, with at least the requests it answered; no false timeout kills one.
    with open(site.error_log, errors="replace") as handle:
        offset = len(handle.read().encode())
    status = _status_after(site, offset, new)
    for pid in new:
        assert pid in status, "no status line for worker %d:\n%s" % (pid, site.log()[-4000:])
        requests, state = status[pid]
        assert state == "ready", "worker %d shows %r:\n%s" % (pid, status[pid], site.log()[-4000:])
        assert requests >= len(served.get(pid, [])), (pid, status[pid], len(served.get(pid, [])))
    log = site.log()
    assert "WORKER TIMEOUT" not in log, log
    assert wait_for_workers(site, 2, timeout=5) == new, site.log()
    # No thread count is kept back from the new workers (the master used to say it kept 1
    # while the workers ran 8).
    assert "keeping 1" not in log, log


@pytest.mark.time_budget(60)
def test_reload_from_one_to_eight_wsgi_threads_sizes_the_status_board(site):
    site.configure(1)
    site.start([portico_binary(), "-c", site.conf])
    _reload_to_eight_threads_and_check(site, lambda: site.configure(8))


@pytest.mark.time_budget(60)
def test_threads_flag_survives_a_reload_with_a_fitting_status_board(site):
    # The flags are re-read as given at start, so --threads cannot change on HUP; the board
    # must still be sized from what the reloaded workers run (8), not from a default.
    command = [portico_binary(), "--bind", "127.0.0.1:%d" % site.port, "-w", "2",
               "--threads", "8", "--pythonpath", site.dir, "--log-level", "debug",
               "--error-logfile", site.error_log, "slowapp:application"]
    site.start(command)
    _reload_to_eight_threads_and_check(site, lambda: None)


@pytest.mark.time_budget(60)
def test_reload_of_a_preloaded_app_keeps_serving(site):
    # The app imported once in the master serves the reloaded workers too: the runtime must
    # not point into the configuration the reload replaced (the new workers died with
    # std::bad_alloc, over and over).
    command = [portico_binary(), "--bind", "127.0.0.1:%d" % site.port, "-w", "2", "--preload",
               "--threads", "8", "--pythonpath", site.dir, "--log-level", "debug",
               "--error-logfile", site.error_log, "slowapp:application"]
    site.start(command)
    _reload_to_eight_threads_and_check(site, lambda: None)
    assert "exited with code" not in site.log(), site.log()
