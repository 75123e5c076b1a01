"""A stop (TERM, QUIT, INT) closes the listening sockets first — in the master and in every
worker — so a new client is refused (ECONNREFUSED) within 100 ms instead of being queued for a
worker that will never answer it, while the requests already in flight complete (TERM/QUIT).
A reload (HUP) keeps the sockets open: new workers inherit them."""

import os
import signal
import socket
import threading
import time

import pytest

from master_support import send_signal, start_master, wait_exit, wait_for_workers
from nginx_diff import prepare_tree, start_portico
from wsgi_support import wait_until

REFUSED_WITHIN = 0.1  # seconds after the signal (issue 10)
APPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps")
SLOW_MS = 1500  # the in-flight request outlives the refusal by far


def _connect_outcome(port):
    """'refused', 'connected', or the error's name, for one connect attempt."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return "refused"
        except OSError as error:
            return type(error).__name__
        return "connected"


def _in_flight(port, target, result):
    """Starts a request in a thread; `result` gets (status or error, seconds)."""
    def run():
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=15.0) as sock:
                sock.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                              % target).encode())
                data = b""
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else data[:60]
            result["answer"] = (status, time.monotonic() - started)
        except Exception as error:  # the test reports what went wrong
            result["answer"] = (repr(error), time.monotonic() - started)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _signal_and_watch_refusal(port, deliver):
    """Delivers the signal, then connects every few ms until refused. Returns (seconds from the
    signal to the first refusal or None, outcomes of the attempts after it)."""
    sent = time.monotonic()
    deliver()
    first = None
    while time.monotonic() - sent < 2.0:
        if _connect_outcome(port) == "refused":
            first = time.monotonic() - sent
            break
        time.sleep(0.003)
    # Once refused it stays refused (no worker still listens on a copy of the socket).
    after = [_connect_outcome(port) for _ in range(10)] if first is not None else []
    return first, after


def _check(first, after, signame, what):
    assert first is not None, "%s: new connections were still accepted 2 s after %s" % (what, signame)
    assert first < REFUSED_WITHIN, (
        "%s: the first refused connection came %.0f ms after %s (wanted < %.0f ms)"
        % (what, first * 1000, signame, REFUSED_WITHIN * 1000))
    assert after == ["refused"] * len(after), "%s: after the first refusal: %r" % (what, after)


@pytest.mark.time_budget(20)
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGQUIT", "SIGINT"])
def test_stop_refuses_new_connections_at_once_and_finishes_in_flight(launch, signame, workers):
    server = start_master(launch, workers=workers, threads=2)
    assert len(wait_for_workers(server, workers)) == workers
    result = {}
    mark = os.path.join(server.log_dir, "running")
    thread = _in_flight(server.port, "/sleep?ms=%d&mark=%s" % (SLOW_MS, mark), result)
    assert wait_until(lambda: os.path.exists(mark), 10.0), "the request never ran: %r" % result
    first, after = _signal_and_watch_refusal(
        server.port, lambda: send_signal(server, getattr(signal, signame)))
    code = wait_exit(server, 8.0)
    thread.join(timeout=5.0)
    _check(first, after, signame, "-w %d" % workers)
    assert code == 0, "exit code %r after %s; stderr:\n%s" % (code, signame, server.stderr())
    if signame != "SIGINT":  # INT is the fast stop: in-flight requests are cut
        assert result.get("answer", (None,))[0] == 200, (
            "the request in flight at %s got %r" % (signame, result.get("answer")))


SITE = r"""
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        location / { wsgi_app master_apps:application; wsgi_pythonpath %s; wsgi_threads 2; }
    }
""" % APPS


@pytest.mark.time_budget(20)
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGQUIT", "SIGINT"])
def test_stop_refuses_new_connections_with_a_configuration_file(tmp_path, signame):
    prepare_tree(str(tmp_path), {})
    served = start_portico(str(tmp_path), SITE, 1)
    port = served.ports[0]
    try:
        assert served.request("GET", "/pid").status == 200
        result = {}
        mark = os.path.join(str(tmp_path), "running")
        thread = _in_flight(port, "/sleep?ms=%d&mark=%s" % (SLOW_MS, mark), result)
        assert wait_until(lambda: os.path.exists(mark), 10.0), "the request never ran: %r" % result
        first, after = _signal_and_watch_refusal(
            port, lambda: served.proc.send_signal(getattr(signal, signame)))
        code = served.proc.wait(timeout=8.0)
        thread.join(timeout=5.0)
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()
    _check(first, after, signame, "-c")
    assert code == 0, "exit code %r after %s" % (code, signame)
    if signame != "SIGINT":
        assert result.get("answer", (None,))[0] == 200, (
            "the request in flight at %s got %r" % (signame, result.get("answer")))


@pytest.mark.time_budget(20)
def test_reload_never_refuses(launch):
    server = start_master(launch, workers=2)
    old = wait_for_workers(server, 2)
    assert len(old) == 2
    send_signal(server, signal.SIGHUP)
    outcomes = []
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        outcomes.append(_connect_outcome(server.port))
        time.sleep(0.005)
    assert "refused" not in outcomes, "a connection was refused during a reload: %r" % outcomes
    assert wait_for_workers(server, 2, timeout=6.0, exclude=old), "no new workers after HUP"
