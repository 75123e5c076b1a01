"""Streaming responses, the iterable's close(), threads, and clients too slow to send or to read."""

import socket
import time
import uuid

import pytest

from wsgi_support import start_wsgi, wait_until

CLOSE_WAIT = 8.0  # seconds for close() to be observed
QUICK = 2.0       # an unrelated request must finish within this while another client stalls


@pytest.fixture(scope="module")
def app(module_launch):
    return start_wsgi(module_launch, threads=1)


@pytest.fixture(scope="module")
def threaded(module_launch):
    return start_wsgi(module_launch, threads=4)


def _close_count(server, key):
    with server.connect() as conn:
        response = conn.request("GET", "/close-count?key=" + key)
    assert response.status == 200
    return int(response.body)


def _timed_get(server, target, timeout=QUICK + 3):
    start = time.monotonic()
    with server.connect(timeout=timeout) as conn:
        response = conn.request("GET", target)
    return response, time.monotonic() - start


# --- close() ----------------------------------------------------------------------------------

def test_close_called_after_success(app):
    key = uuid.uuid4().hex
    with app.connect() as conn:
        response = conn.request("GET", "/close-counter?mode=ok&key=" + key)
    assert response.body == b"part 1\npart 2\npart 3\n"
    assert wait_until(lambda: _close_count(app, key) == 1, CLOSE_WAIT), _close_count(app, key)


def test_close_called_after_head(app):
    key = uuid.uuid4().hex
    with app.connect() as conn:
        response = conn.request("HEAD", "/close-counter?mode=ok&key=" + key)
    assert response.status == 200
    assert wait_until(lambda: _close_count(app, key) == 1, CLOSE_WAIT), _close_count(app, key)


def test_close_called_after_exception_mid_iteration(app):
    key = uuid.uuid4().hex
    with app.connect() as conn:
        conn.send(b"GET /close-counter?mode=raise&key=%s HTTP/1.1\r\nHost: localhost\r\n\r\n" % key.encode())
        conn.wait_closed(5)
    assert wait_until(lambda: _close_count(app, key) == 1, CLOSE_WAIT), _close_count(app, key)


@pytest.mark.time_budget(20)
def test_close_called_after_client_disconnects_mid_stream(app):
    key = uuid.uuid4().hex
    with app.connect() as conn:
        conn.send(b"GET /close-counter?mode=stream&key=%s HTTP/1.1\r\nHost: localhost\r\n\r\n" % key.encode())
        conn.read_head()
        conn.read_exact(200 * 1024)
        # RST rather than FIN, so the server's next write fails at once.
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    assert wait_until(lambda: _close_count(app, key) == 1, CLOSE_WAIT), _close_count(app, key)
    # The single Python thread is free again.
    response, elapsed = _timed_get(app, "/hello?i=free")
    assert response.body == b"hello free\n"
    assert elapsed < QUICK


@pytest.mark.time_budget(20)
def test_close_called_after_client_disconnects_gracefully(app):
    key = uuid.uuid4().hex
    with app.connect() as conn:
        conn.send(b"GET /close-counter?mode=stream&key=%s HTTP/1.1\r\nHost: localhost\r\n\r\n" % key.encode())
        conn.read_head()
        conn.read_exact(64 * 1024)
    assert wait_until(lambda: _close_count(app, key) == 1, CLOSE_WAIT), _close_count(app, key)


# --- streaming --------------------------------------------------------------------------------

def test_chunks_are_delivered_as_produced(app):
    with app.connect() as conn:
        start = time.monotonic()
        conn.send(b"GET /drip?n=5&s=0.4 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        conn.read_head()
        first = conn.read_until(b"drip 0\n")
        first_at = time.monotonic() - start
        rest = conn.read_until(b"0\r\n\r\n")
        total = time.monotonic() - start
    assert b"drip 0" in first
    assert b"drip 4" in rest
    assert first_at < 1.0, "first chunk held back %.2f s (buffered until the end?)" % first_at
    assert total >= 1.5


# --- threads and slow clients -----------------------------------------------------------------

@pytest.mark.time_budget(20)
def test_threads_run_requests_concurrently(threaded):
    connections = [threaded.connect(timeout=10) for _ in range(3)]
    try:
        start = time.monotonic()
        for conn in connections:
            conn.send(b"GET /slow?s=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        for conn in connections:
            assert conn.read_response().status == 200
        elapsed = time.monotonic() - start
    finally:
        for conn in connections:
            conn.close()
    assert elapsed < 2.5, "3 x 1 s sleeps took %.2f s with --threads 4" % elapsed


def test_static_served_while_the_only_thread_is_busy(app, site):
    with app.connect(timeout=10) as busy:
        busy.send(b"GET /slow?s=1.5 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        time.sleep(0.2)
        response, elapsed = _timed_get(app, "/static/a.txt")
        assert response.body == site.files["a.txt"]
        assert elapsed < 1.0, "static waited %.2f s behind a Python request" % elapsed
        assert busy.read_response().status == 200


@pytest.mark.time_budget(20)
def test_slow_request_body_does_not_hold_the_python_thread(app):
    payload = b"p" * 100000
    with app.connect(timeout=10) as slow:
        slow.send(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % len(payload))
        slow.send(payload[:1000])
        time.sleep(0.3)
        for index in range(3):
            response, elapsed = _timed_get(app, "/hello?i=%d" % index)
            assert response.body == b"hello %d\n" % index
            assert elapsed < QUICK, "a WSGI request waited %.2f s behind a slow upload" % elapsed
            slow.send(payload[1000 + index * 100:1000 + (index + 1) * 100])
            time.sleep(0.2)
        slow.send(payload[1300:])
        response = slow.read_response()
    assert response.status == 200
    assert response.body == payload


def _stalled_reader(server, target):
    conn = server.connect(timeout=10, rcvbuf=4096)
    conn.send(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % target.encode())
    return conn


@pytest.mark.time_budget(25)
def test_non_reading_client_does_not_stall_others(threaded, site):
    stalled = _stalled_reader(threaded, "/large?mb=64")
    try:
        time.sleep(0.5)  # long enough for the socket buffers to fill
        for index in range(4):
            response, elapsed = _timed_get(threaded, "/hello?i=%d" % index)
            assert response.body == b"hello %d\n" % index
            assert elapsed < QUICK, "WSGI request took %.2f s beside a stalled reader" % elapsed
            response, elapsed = _timed_get(threaded, "/static/big.bin")
            assert response.body == site.files["big.bin"]
            assert elapsed < QUICK, "static request took %.2f s beside a stalled reader" % elapsed
        # The stalled client can still read its response (nothing was lost while it waited).
        stalled.read_head()
        assert len(stalled.read_exact(1024 * 1024)) == 1024 * 1024
    finally:
        stalled.close()
    assert threaded.alive()


@pytest.mark.time_budget(25)
def test_non_reading_client_with_one_thread_static_still_served(app, site):
    stalled = _stalled_reader(app, "/large?mb=64")
    try:
        time.sleep(0.5)
        for _ in range(3):
            response, elapsed = _timed_get(app, "/static/big.bin")
            assert response.body == site.files["big.bin"]
            assert elapsed < QUICK, "static request took %.2f s beside a stalled reader" % elapsed
    finally:
        stalled.close()
    # Once the stalled client is gone the only Python thread must come back.
    assert wait_until(lambda: _timed_get(app, "/hello?i=back")[0].body == b"hello back\n", 8)


@pytest.mark.time_budget(25)
def test_non_reading_client_with_one_thread_wsgi_still_served(app):
    # nginx in front of gunicorn buffers a slow reader's response; portico should not let one
    # stalled reader hold the only Python thread until --send-timeout.
    stalled = _stalled_reader(app, "/large?mb=64")
    try:
        time.sleep(0.5)
        response, elapsed = _timed_get(app, "/hello?i=1", timeout=QUICK + 1)
        assert response.body == b"hello 1\n"
        assert elapsed < QUICK, "WSGI request took %.2f s beside a stalled reader" % elapsed
    finally:
        stalled.close()
