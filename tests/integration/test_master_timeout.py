"""--timeout: a worker stuck in one request past it is killed and replaced, after its Python
stacks were written to the error log; idle workers and workers busy with many short requests
are left alone."""

import re
import threading
import time

import pytest

from http_client import ProtocolError
from master_support import (pid_of, pin_connections, start_master, wait_for_log_match,
                            wait_for_workers, wait_served_by, workers)

TIMEOUT = 2


def _await_answer(conn, target, result):
    """Thread body: sends target and records (seconds until answered, status or None if closed)."""
    started = time.monotonic()
    conn.settimeout(15.0)
    try:
        conn.send("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % target)
        status = conn.read_response().status
    except (ProtocolError, OSError):
        status = None
    result["elapsed"] = time.monotonic() - started
    result["status"] = status


@pytest.mark.time_budget(20)
@pytest.mark.parametrize("route, frame", [("/stuck", "stuck_forever_7f"), ("/spin", "spin_forever_9c")])
def test_stuck_worker_is_killed_at_timeout_with_its_stack_logged(launch, route, frame):
    server = start_master(launch, workers=2, args=["--timeout", str(TIMEOUT)])
    assert len(wait_for_workers(server, 2)) == 2
    pinned = pin_connections(server, 2)
    (stuck_pid, stuck_conn), (other_pid, other_conn) = pinned.items()
    result = {}
    waiter = threading.Thread(target=_await_answer, args=(stuck_conn, route, result), daemon=True)
    waiter.start()
    served_meanwhile = 0
    try:
        # The other worker keeps serving while its sibling is stuck and then killed.
        while waiter.is_alive() and served_meanwhile < 200:
            response = other_conn.request("GET", "/pid")
            assert response.status == 200 and pid_of(response) == other_pid, response
            served_meanwhile += 1
            time.sleep(0.05)
        waiter.join(timeout=12.0)
    finally:
        stuck_conn.close()
        other_conn.close()
    assert "elapsed" in result, "the stuck request got no answer and no close within 12 s"
    assert result["elapsed"] >= TIMEOUT - 0.5, (
        "the stuck worker was killed after %.1f s, before --timeout %d" % (result["elapsed"], TIMEOUT))
    assert result["elapsed"] < TIMEOUT + 6, (
        "the stuck request lasted %.1f s with --timeout %d" % (result["elapsed"], TIMEOUT))
    assert result["status"] in (None, 500, 502, 503, 504), (
        "the stuck request's client got status %r" % result["status"])
    match, text = wait_for_log_match(server, frame)
    assert match, "the stuck frame %s is not in the error log:\n%s" % (frame, text[-4000:])
    assert "master_apps.py" in text, "the stack in the error log lacks the app's file:\n%s" % text[-4000:]
    assert re.search(r"time.?out", text, re.IGNORECASE), "the log never says 'timeout':\n%s" % text[-4000:]
    after = wait_for_workers(server, 2, timeout=3.0, exclude={stuck_pid})
    assert len(after) == 2 and stuck_pid not in after and other_pid in after, (stuck_pid, after)
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
