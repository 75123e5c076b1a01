"""A worker whose Python thread has more jobs queued hands a finished response to its event loop
without waking it (the response goes out at the loop's next wake-up: under load, with the next
request; the loop sleeps at most a millisecond meanwhile, and runs such messages at any wake-up).
What must hold: a finished response is never held back behind the next job, however long that
job runs (the event loop's unit tests check the sleep bound itself)."""

import errno
import os
import socket
import time

import pytest

from master_support import pid_of, start_master, wait_for_workers
from wsgi_support import wait_until


@pytest.mark.time_budget(40)
def test_a_finished_response_is_not_held_behind_a_long_queued_job(launch, tmp_path):
    server = start_master(launch, workers=1)
    assert len(wait_for_workers(server, 1)) == 1
    first = server.connect(timeout=10.0)
    quick = server.connect(timeout=10.0)
    slow = server.connect(timeout=10.0)
    try:
        mark = str(tmp_path / "running")
        first.send("GET /sleep?ms=600&mark=%s HTTP/1.1\r\nHost: localhost\r\n\r\n" % mark)
        assert wait_until(lambda: os.path.exists(mark), 10.0), "the first request never started"
        # The one Python thread sleeps; the next two requests queue behind it, in this order.
        quick.send("GET /pid HTTP/1.1\r\nHost: localhost\r\n\r\n")
        time.sleep(0.1)
        slow.send("GET /sleep?ms=5000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        # The first and the quick response end while another job waits (both posted without a
        # wake-up); the slow job then runs for 5 s with nothing else for the loop to do.
        started = first.read_response("GET")
        assert started.status == 200, started
        answered = quick.read_response("GET")
        assert answered.status == 200 and pid_of(answered) == pid_of(started), answered
        # Both came while the slow job still runs: its response is not there yet.
        slow.sock.setblocking(False)
        try:
            early = slow.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            early = None
        assert early is None, "the slow job's response came with the quick one's: it was held"
        slow.sock.setblocking(True)
        assert slow.read_response("GET").status == 200
    finally:
        for conn in (first, quick, slow):
            conn.close()
