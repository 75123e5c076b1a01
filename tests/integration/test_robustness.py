"""Bounded smoke tests: many simultaneous clients and a stream of garbage never take the server down."""

import random
import selectors
import socket
import struct
import time

import pytest

from http_client import Connection, build_request

CONCURRENT = 200
GARBAGE_ITERATIONS = 1000
GARBAGE_BATCH = 50
SEED = 0x5EED


@pytest.fixture(scope="module")
def robust(module_launch):
    return module_launch.start(["--header-timeout", "1", "--body-timeout", "1", "--keep-alive", "2"])


def test_many_connections_at_once(robust, site):
    names = ["p%02d.txt" % (index % 16) for index in range(CONCURRENT)]
    connections = []
    try:
        for _ in range(CONCURRENT):
            connections.append(Connection.tcp("127.0.0.1", robust.port, timeout=10))
        for conn, name in zip(connections, names):
            conn.send(build_request("GET", "/static/" + name))
        for conn, name in zip(connections, names):
            response = conn.read_response()
            assert response.status == 200
            assert response.body == site.files[name]
    finally:
        for conn in connections:
            conn.close()
    assert robust.alive()


def test_many_connections_with_partial_heads_then_complete(robust, site):
    # Every connection is mid-head at the same moment; all must then be answered.
    connections = []
    try:
        for _ in range(CONCURRENT):
            connections.append(Connection.tcp("127.0.0.1", robust.port, timeout=10))
        for conn in connections:
            conn.send(b"GET /static/a.txt HTTP/1.1\r\n")
        for conn in connections:
            conn.send(b"Host: x\r\nConnection: close\r\n\r\n")
        for conn in connections:
            response = conn.read_response()
            assert response.status == 200
            assert response.body == site.files["a.txt"]
    finally:
        for conn in connections:
            conn.close()


VALID = [
    build_request("GET", "/static/a.txt"),
    build_request("GET", "/static/digits.txt", headers=[("Range", "bytes=1-3,5-")]),
    build_request("GET", "/static/a.txt", headers=[("Transfer-Encoding", "chunked")])
    + b"5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n",
    build_request("HEAD", "/static/pre.js", headers=[("Accept-Encoding", "gzip"),
                                                     ("If-None-Match", '"abc"')]),
    build_request("POST", "/static/a.txt", body=b"payload"),
]


def _garbage(rng):
    kind = rng.random()
    if kind < 0.3:
        return rng.randbytes(rng.randint(1, 600))
    base = bytearray(rng.choice(VALID) * rng.randint(1, 3))
    if kind < 0.7:
        for _ in range(rng.randint(1, 8)):
            base[rng.randrange(len(base))] = rng.randrange(256)
    elif kind < 0.85:
        cut = rng.randrange(len(base))
        base[cut:cut] = rng.choice([b"\r\n", b"\r", b"\n", b"\x00", b":", b" ", b"%", b"%00", b"..",
                                    b"\r\n\r\n", b"ffffffffffffffff\r\n", b"Content-Length: 9\r\n"])
    else:
        del base[rng.randrange(len(base)):]
    return bytes(base)


@pytest.mark.time_budget(90)
def test_garbage_never_crashes_the_server(robust, site):
    rng = random.Random(SEED)
    start = time.monotonic()
    sent = 0
    while sent < GARBAGE_ITERATIONS:
        batch = []
        for _ in range(min(GARBAGE_BATCH, GARBAGE_ITERATIONS - sent)):
            payload = _garbage(rng)
            sock = socket.create_connection(("127.0.0.1", robust.port), timeout=5)
            try:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server may already have refused and closed; that is fine
            batch.append(sock)
            sent += 1
        _drain(batch, deadline=time.monotonic() + 3)
        assert robust.alive(), "portico died after %d garbage connections; stderr:\n%s" % (
            sent, robust.stderr())
    elapsed = time.monotonic() - start
    with robust.connect() as conn:
        response = conn.request("GET", "/static/a.txt")
    assert response.status == 200
    assert response.body == site.files["a.txt"]
    assert robust.alive()
    assert elapsed < 80


def _drain(sockets, deadline):
    """Reads every socket until the server closes it or the deadline passes, then closes all."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    open_count = len(sockets)
    while open_count and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
            try:
                data = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                selector.unregister(key.fileobj)
                open_count -= 1
    selector.close()
    for sock in sockets:
        sock.close()


def test_client_disconnects_mid_response(robust, site):
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", robust.port), timeout=5)
        sock.sendall(build_request("GET", "/static/huge.bin"))
        sock.recv(1000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST while the server is still writing
    assert robust.alive()
    with robust.connect() as conn:
        assert conn.request("GET", "/static/a.txt").status == 200


def test_half_closed_client_still_gets_response(robust, site):
    with robust.connect() as conn:
        conn.send(build_request("GET", "/static/a.txt"))
        conn.sock.shutdown(socket.SHUT_WR)
        response = conn.read_response()
    assert response.status == 200
    assert response.body == site.files["a.txt"]


@pytest.mark.parametrize("payload", [
    b"GET /static/a.txt HTTP/1.1\r\nHost: x\r\n",  # mid-head
    build_request("GET", "/static/a.txt"),         # complete, then idle keep-alive
    build_request("GET", "/static/a.txt", headers=[("Content-Length", "50")]) + b"partial",
], ids=["mid_head", "idle_keep_alive", "mid_body"])
def test_client_eof_releases_connection_promptly(launch, payload):
    # With long timeouts, a peer that has gone away must not pin a connection (and its fd) until the
    # timer fires: EOF from the client ends the connection once nothing is left to send.
    server = launch.start(["--keep-alive", "30", "--header-timeout", "30", "--body-timeout", "30"])
    with server.connect() as conn:
        conn.send(payload)
        conn.sock.shutdown(socket.SHUT_WR)
        closed, elapsed, _received = conn.wait_closed(3)
    assert closed and elapsed < 1.0, "server held a half-closed connection for %.1f s" % elapsed
