"""--timeout: a request running past it is answered 504 by the worker itself (the error page,
an access-log line) and its Python thread gets an asynchronous exception; a thread running
Python code stops and the worker lives on, a thread stuck in C code costs its worker, which the
master kills (after its Python stacks were written to the error log) and replaces. Idle workers
and workers busy with many short requests are left alone."""

import os
import re
import threading
import time

import pytest

from http_client import ProtocolError
from master_support import (pid_of, pin_connections, start_master, wait_for_log_match,
                            wait_for_workers, wait_served_by, workers)
from wsgi_support import read_text

TIMEOUT = 2
GRACE = 2  # the master kills a worker whose thread is still stuck this long after --timeout


def _await_answer(conn, target, result):
    """Thread body: sends target and records seconds until answered, the status (None if
    closed without one) and the body."""
    started = time.monotonic()
    conn.settimeout(15.0)
    try:
        conn.send("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % target)
        response = conn.read_response()
        status, body = response.status, response.body
    except (ProtocolError, OSError):
        status, body = None, b""
    result["elapsed"] = time.monotonic() - started
    result["status"] = status
    result["body"] = body


def _stuck_request(launch, route):
    """Two workers, --timeout 2, an access log; `route` sent on a connection pinned to one
    worker while the other keeps serving; checks the 504 and its access-log line. Returns
    (server, stuck pid, other pid, the stuck request's connection, still open).

    Each phase's time is printed (pytest shows it when the test fails), so a run that outlives
    its budget says where the time went."""
    started = time.monotonic()

    def phase(name):
        print("%6.2f s  %s" % (time.monotonic() - started, name))

    access_log = os.path.join(str(launch.tmp_path_factory.mktemp("access")), "access.log")
    server = start_master(launch, workers=2,
                          args=["--timeout", str(TIMEOUT), "--access-logfile", access_log])
    assert len(wait_for_workers(server, 2)) == 2
    phase("two workers started")
    pinned = pin_connections(server, 2)
    (stuck_pid, stuck_conn), (other_pid, other_conn) = pinned.items()
    phase("a connection pinned to each: %d (to be stuck) and %d" % (stuck_pid, other_pid))
    result = {}
    waiter = threading.Thread(target=_await_answer, args=(stuck_conn, route, result), daemon=True)
    waiter.start()
    served_meanwhile = 0
    try:
        # The other worker keeps serving while its sibling is stuck.
        while waiter.is_alive() and served_meanwhile < 200:
            response = other_conn.request("GET", "/pid")
            assert response.status == 200 and pid_of(response) == other_pid, response
            served_meanwhile += 1
            time.sleep(0.05)
        waiter.join(timeout=12.0)
    finally:
        other_conn.close()
    phase("the stuck request's client done (%d requests served meanwhile): %r"
          % (served_meanwhile, {k: result[k] for k in ("status", "elapsed") if k in result}))
    assert "elapsed" in result, "the stuck request got no answer and no close within 12 s"
    assert result["status"] == 504, (
        "the stuck request's client got status %r after %.1f s (wanted 504)"
        % (result["status"], result["elapsed"]))
    assert b"504 Gateway Time-out" in result["body"], result["body"]
    assert result["elapsed"] >= TIMEOUT - 0.5, (
        "answered 504 after %.1f s, before --timeout %d" % (result["elapsed"], TIMEOUT))
    assert result["elapsed"] < TIMEOUT + 1.5, (
        "the stuck request was answered after %.1f s with --timeout %d" % (result["elapsed"], TIMEOUT))
    logged = re.compile(r'"GET %s HTTP/1.1" 504 ' % re.escape(route))
    deadline = time.monotonic() + 3.0
    while not logged.search(read_text(access_log)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logged.search(read_text(access_log)), "no 504 line in the access log:\n%s" % read_text(access_log)
    return server, stuck_pid, other_pid, stuck_conn


@pytest.mark.time_budget(25)
@pytest.mark.parametrize("route, frame", [("/spin", "spin_forever_9c"), ("/stuck", "stuck_forever_7f")])
def test_request_running_python_past_timeout_gets_504_and_the_worker_lives_on(launch, route, frame):
    server, stuck_pid, other_pid, stuck_conn = _stuck_request(launch, route)
    with stuck_conn:
        # The kept-alive connection goes on (its next request may move to the idle sibling
        # while the interrupted thread is still unwinding), and the asynchronous exception
        # ended the app's call: the interrupted worker serves again.
        response = stuck_conn.request("GET", "/pid")
        assert response.status == 200 and pid_of(response) in (stuck_pid, other_pid), response
        assert wait_served_by(server, stuck_pid, 5.0) is not None, (
            "worker %d does not serve after its request was interrupted" % stuck_pid)
        match, text = wait_for_log_match(server, frame)
        assert match, "the interrupted frame %s is not in the error log:\n%s" % (frame, text[-4000:])
        assert "RequestTimeout" in text, text[-4000:]
        assert re.search(r"time.?out", text, re.IGNORECASE), text[-4000:]
        # Past the point where the master would kill a worker still stuck, it is still there.
        time.sleep(GRACE + 1.5)
        assert workers(server) == {stuck_pid, other_pid}, (
            "the interrupted worker was replaced: %r" % workers(server))
        response = stuck_conn.request("GET", "/pid")
        assert response.status == 200 and pid_of(response) in (stuck_pid, other_pid), response
    assert "WORKER TIMEOUT" not in read_text(server.error_log), read_text(server.error_log)[-4000:]


@pytest.mark.time_budget(25)
def test_request_stuck_in_c_past_timeout_gets_504_and_the_worker_is_replaced(launch):
    server, stuck_pid, other_pid, stuck_conn = _stuck_request(launch, "/csleep")
    stuck_conn.close()
    # time.sleep in C runs no bytecode: the exception cannot fire, so the master kills the
    # worker a grace later, after its faulthandler wrote the Python stacks.
    after = wait_for_workers(server, 2, timeout=GRACE + 6.0, exclude={stuck_pid})
    assert len(after) == 2 and stuck_pid not in after and other_pid in after, (stuck_pid, after)
    match, text = wait_for_log_match(server, "sleep_in_c_5e")
    assert match, "the stuck frame is not in the error log:\n%s" % text[-4000:]
    assert "master_apps.py" in text, "the stack in the error log lacks the app's file:\n%s" % text[-4000:]
    assert "WORKER TIMEOUT" in text, text[-4000:]
    new = (after - {other_pid}).pop()
    assert wait_served_by(server, new, 3.0) is not None, (
        "the replacement worker %d did not serve within 3 s" % new)


@pytest.mark.time_budget(20)
def test_timeout_spares_idle_and_steadily_busy_workers(launch):
    server = start_master(launch, workers=2, args=["--timeout", str(TIMEOUT)])
    before = wait_for_workers(server, 2)
    assert len(before) == 2
    pinned = pin_connections(server, 1)
    (busy_pid, conn), = pinned.items()
    started = time.monotonic()
    with conn:
        # Many requests, each well under --timeout, for longer than --timeout in total.
        while time.monotonic() - started < TIMEOUT + 1.5:
            response = conn.request("GET", "/sleep?ms=600")
            assert response.status == 200 and pid_of(response) == busy_pid, response
    assert workers(server) == before, (
        "workers changed from %r to %r although no request outlived --timeout" % (before, workers(server)))
