"""A request body's tail lent to the app: when the whole rest of a Content-Length body is
already in the kernel's receive queue, the connection stops reading and the app's wsgi.input
receives that rest from the socket itself (a duplicate of it), straight into the bytes it
returns. Checked byte-exact (sha256 both sides) with every way of reading, with the app reading
all, part or none of it, with a pipelined request behind the body and with Connection: close.

The tail is lent only when the body is all queued, which a running worker races against (it
reads what arrives): the tests stop the worker (SIGSTOP) while the client's bytes are queued,
on a connection whose earlier large body raised its receive buffer, so the lending is certain;
the app reports the sockets open while it runs, one more (the duplicate) when it was lent."""

import fcntl
import hashlib
import json
import os
import random
import signal
import struct
import termios
import threading
import time

import pytest

from http_client import Connection
from nginx_diff import start_portico
from wsgi_support import APPS_DIR, start_wsgi

MIB = 1024 * 1024
TAIL = 3 * MIB
SIOCOUTQ = termios.TIOCOUTQ  # the socket's unacknowledged output: 0 once the peer has it all


@pytest.fixture(scope="module")
def app(module_launch):
    return start_wsgi(module_launch, args=["--limit-request-body", "100m"])


@pytest.fixture(scope="module")
def payload():
    return random.Random(23).randbytes(TAIL)


def _post(target, body, extra=b""):
    return (b"POST " + target.encode() + b" HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n"
            % len(body) + extra + b"\r\n" + body)


def _result(response):
    assert response.status == 200, response
    return json.loads(response.body)


def _warm(conn, payload):
    """One large body on `conn` (its receive buffer grows for it); returns the worker's pid and
    the sockets it has open while serving a request on this connection without a lent tail."""
    conn.send(_post("/digest-part", payload))
    first = _result(conn.read_response())
    assert first["sha256"] == hashlib.sha256(payload).hexdigest()
    conn.send(_post("/digest-part", b"small"))
    small = _result(conn.read_response())
    return small["pid"], small["sockets"]


def _queued(conn, pid, raw):
    """Sends `raw` while the worker is stopped, so all of it waits in the kernel when the worker
    goes on; fails when the bytes did not all fit in the socket's queue."""
    os.kill(pid, signal.SIGSTOP)
    try:
        sender = threading.Thread(target=conn.send, args=(raw,), daemon=True)
        sender.start()
        sender.join(timeout=10.0)
        deadline = time.monotonic() + 5.0
        unacked = None
        while time.monotonic() < deadline:
            unacked = struct.unpack("i", fcntl.ioctl(conn.sock.fileno(), SIOCOUTQ, b"\0" * 4))[0]
            if not sender.is_alive() and unacked == 0:
                break
            time.sleep(0.01)
        assert not sender.is_alive() and unacked == 0, (
            "the request did not fit in the stopped worker's receive queue (%r bytes unacknowledged)"
            % unacked)
    finally:
        os.kill(pid, signal.SIGCONT)


def _lent_response(conn, warm_body, raw):
    """Warms `conn` with `warm_body`, sends `raw` while the worker is stopped, and returns the
    app's answer to its first request, checked to have had the tail lent."""
    pid, sockets = _warm(conn, warm_body)
    _queued(conn, pid, raw)
    lent = _result(conn.read_response())
    assert lent["sockets"] == sockets + 1, "the tail was not lent: %r" % lent
    return lent


@pytest.mark.time_budget(30)
@pytest.mark.parametrize("step", [65536, 1000, 3 * MIB], ids=["64k-reads", "small-reads", "one-read"])
def test_a_lent_tail_reaches_the_app_byte_exact_and_the_next_request_follows(app, payload, step):
    with app.connect(timeout=20.0) as conn:
        lent = _lent_response(conn, payload, _post("/digest-part?step=%d" % step, payload)
                              + b"GET /hello?i=next HTTP/1.1\r\nHost: localhost\r\n\r\n")
        after = conn.read_response()
    assert (lent["length"], lent["sha256"]) == (len(payload), hashlib.sha256(payload).hexdigest())
    assert (after.status, after.body) == (200, b"hello next\n")


@pytest.mark.time_budget(30)
def test_lines_read_across_the_memory_part_and_the_lent_tail(app):
    lines = b"".join(b"line %07d %s\n" % (i, b"x" * (i % 300)) for i in range(20000))
    with app.connect(timeout=20.0) as conn:
        lent = _lent_response(conn, lines, _post("/digest-part?lines=1", lines))
    assert (lent["length"], lent["sha256"]) == (len(lines), hashlib.sha256(lines).hexdigest())
    assert lent["partial_lines"] == 0, "readline() cut a line where the memory part ends"


@pytest.mark.time_budget(30)
@pytest.mark.parametrize("read", [0, 100, 2 * MIB])
def test_what_the_app_leaves_of_a_lent_tail_is_discarded_before_the_next_request(app, payload, read):
    with app.connect(timeout=20.0) as conn:
        lent = _lent_response(conn, payload, _post("/digest-part?read=%d" % read, payload)
                              + b"GET /hello?i=after HTTP/1.1\r\nHost: localhost\r\n\r\n")
        after = conn.read_response()
        # And the connection goes on: another body, read whole.
        conn.send(_post("/digest-part", payload[:5000]))
        last = _result(conn.read_response())
    assert (lent["length"], lent["sha256"]) == (read, hashlib.sha256(payload[:read]).hexdigest())
    assert (after.status, after.body) == (200, b"hello after\n")
    assert last["sha256"] == hashlib.sha256(payload[:5000]).hexdigest()


@pytest.mark.time_budget(30)
def test_connection_close_with_an_unread_lent_tail_delivers_the_response(app, payload):
    # The close waits for the tail to come back (the app's thread has the socket's input),
    # then discards the rest while lingering: the response arrives whole, never reset.
    with app.connect(timeout=20.0) as conn:
        lent = _lent_response(conn, payload,
                              _post("/digest-part?read=10", payload, b"Connection: close\r\n"))
        closed, _, extra = conn.wait_closed(10.0)
    assert closed and extra == b"", "after the response: closed %r, then %r" % (closed, extra[:200])
    assert (lent["length"], lent["sha256"]) == (10, hashlib.sha256(payload[:10]).hexdigest())


LENGTH_LOGGED = r"""
    log_format sizes '$request_uri $status $request_length';
    client_max_body_size 100m;
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        access_log @DIR@/access.log sizes;
        location / { wsgi_app introspect:application; wsgi_pythonpath %s; }
    }
""" % APPS_DIR


@pytest.mark.time_budget(40)
@pytest.mark.parametrize("close", [False, True], ids=["keep-alive", "close"])
def test_a_lent_tail_counts_in_request_length(tmp_path, payload, close):
    # $request_length is the whole request whether the loop or the app received the body, and
    # whether the log line is written before the tail comes back (Connection: close) or after.
    server = start_portico(str(tmp_path), LENGTH_LOGGED, 1, mime=False)
    try:
        conn = Connection.tcp("127.0.0.1", server.ports[0], 20.0)
        try:
            lent = _lent_response(conn, payload, _post(
                "/digest-part?read=100", payload, b"Connection: close\r\n" if close else b""))
            if close:
                conn.wait_closed(10.0)
            else:
                conn.send(b"GET /hello?i=after HTTP/1.1\r\nHost: localhost\r\n\r\n")
                assert conn.read_response().status == 200
        finally:
            conn.close()
    finally:
        server.stop()
    assert lent["length"] == 100
    with open(os.path.join(str(tmp_path), "access.log")) as handle:
        lines = handle.read().splitlines()
    head = len(_post("/digest-part?read=100", b"", b"Connection: close\r\n" if close else b""))
    head += len(str(len(payload))) - 1  # the head above was made for a body of length 0
    assert lines[2] == "/digest-part?read=100 200 %d" % (head + len(payload)), lines
