"""proxy_pass with Upgrade (WebSocket): the upstream's 101 is passed on and the connection
becomes a two-way byte tunnel, as nginx's ngx_http_upstream_upgrade.

Backends: a websockets echo server (python3-websockets from Debian) behind the tutorial
configuration (`map $http_upgrade $connection_upgrade` + proxy_set_header Upgrade/Connection),
and raw-socket backends for what a library hides (bytes pipelined behind the handshake, a large
burst to a client that does not read yet, a 101 the client never asked for). Every byte is
compared or hashed; closes from either side, and proxy_read_timeout over an idle tunnel."""

import asyncio
import hashlib
import os
import socket
import threading
import time

import pytest

from nginx_diff import start_portico
from servers import close_listener

websockets = pytest.importorskip("websockets")

TUTORIAL = """
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    server {
        listen 127.0.0.1:@PORT@;
        location / {
            proxy_pass http://127.0.0.1:%d;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout %s;
        }
    }"""


class WebSocketBackend:
    """A websockets server in its own thread and loop: /echo echoes every message, /close
    sends "bye" and closes with 4001, /hash answers each message with its sha256. The close
    codes it saw from clients are kept in `client_closes`."""

    def __init__(self):
        self.client_closes = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    async def _handler(self, ws, path):
        try:
            if path == "/close":
                await ws.send("bye")
                await ws.close(4001, "server says bye")
                return
            async for message in ws:
                if path == "/hash":
                    data = message if isinstance(message, bytes) else message.encode()
                    await ws.send(hashlib.sha256(data).hexdigest())
                else:
                    await ws.send(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.client_closes.append(ws.close_code)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def main():
            self.server = await websockets.serve(self._handler, "127.0.0.1", 0,
                                                 max_size=None)
            self.port = self.server.sockets[0].getsockname()[1]
            self.ready.set()
            self.stopped = asyncio.Event()
            await self.stopped.wait()
            self.server.close()
            await self.server.wait_closed()

        self.loop.run_until_complete(main())

    def stop(self):
        self.loop.call_soon_threadsafe(self.stopped.set)
        self.thread.join(10)


@pytest.fixture(scope="module")
def ws_backend():
    backend = WebSocketBackend()
    yield backend
    backend.stop()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def serve(tmp_path, port, read_timeout="10s", body=None):
    return start_portico(str(tmp_path), body or TUTORIAL % (port, read_timeout), 1, mime=False)


def error_log(tmp_path):
    with open(os.path.join(str(tmp_path), "portico-error.log"), errors="replace") as handle:
        return handle.read()


def test_many_messages_both_ways_and_large_ones_hashed(tmp_path, ws_backend):
    server = serve(tmp_path, ws_backend.port)

    async def scenario():
        url = "ws://127.0.0.1:%d/echo" % server.ports[0]
        async with websockets.connect(url, max_size=None) as ws:
            # Many small messages, sent before any is read: the tunnel keeps their order.
            for i in range(500):
                await ws.send("message %d" % i)
            for i in range(500):
                assert await ws.recv() == "message %d" % i
            # Binary messages both ways, up to 4 MiB, every byte checked.
            for size in (1, 1000, 65536, 1 << 20, 4 << 20):
                data = os.urandom(size)
                await ws.send(data)
                back = await ws.recv()
                assert hashlib.sha256(back).hexdigest() == hashlib.sha256(data).hexdigest()
        async with websockets.connect(url.replace("/echo", "/hash"), max_size=None) as ws:
            data = os.urandom(8 << 20)
            await ws.send(data)
            assert await ws.recv() == hashlib.sha256(data).hexdigest()

    try:
        run(scenario())
    finally:
        server.stop()


def test_server_close_reaches_the_client(tmp_path, ws_backend):
    server = serve(tmp_path, ws_backend.port)

    async def scenario():
        url = "ws://127.0.0.1:%d/close" % server.ports[0]
        async with websockets.connect(url) as ws:
            assert await ws.recv() == "bye"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.code == 4001
            assert closed.value.reason == "server says bye"

    try:
        run(scenario())
    finally:
        server.stop()


def test_client_close_reaches_the_server(tmp_path, ws_backend):
    server = serve(tmp_path, ws_backend.port)

    async def scenario():
        url = "ws://127.0.0.1:%d/echo" % server.ports[0]
        ws = await websockets.connect(url)
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.close(4002, "client says bye")
        assert ws.close_code == 4002  # the server's answering close came back through

    try:
        before = len(ws_backend.client_closes)
        run(scenario())
        deadline = time.monotonic() + 10
        while len(ws_backend.client_closes) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert 4002 in ws_backend.client_closes[before:]
    finally:
        server.stop()


def test_idle_tunnel_is_closed_by_proxy_read_timeout(tmp_path, ws_backend):
    server = serve(tmp_path, ws_backend.port, read_timeout="1s")

    async def scenario():
        url = "ws://127.0.0.1:%d/echo" % server.ports[0]
        # No keep-alive pings: the tunnel is idle both ways.
        async with websockets.connect(url, ping_interval=None) as ws:
            await ws.send("one")
            assert await ws.recv() == "one"
            started = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 20)
            return time.monotonic() - started

    try:
        run(scenario())
        deadline = time.monotonic() + 5
        text = ""
        while time.monotonic() < deadline:
            text = error_log(tmp_path)
            if "while proxying upgraded connection" in text:
                break
            time.sleep(0.05)
        assert ("upstream timed out (110: Connection timed out) while proxying upgraded "
                "connection") in text
        assert 'upstream: "http://127.0.0.1:%d/echo"' % ws_backend.port in text
    finally:
        server.stop()


class RawUpgradeBackend:
    """Answers an upgrade with `reply` and then runs `after(conn)`."""

    def __init__(self, reply, after):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.after = after
        self.requests = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(65536)
                if not more:
                    return
                data += more
            head, _, rest = data.partition(b"\r\n\r\n")
            self.requests.append(head)
            conn.sendall(self.reply)
            self.after(conn, rest)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        close_listener(self.sock)


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        assert more, data
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


SWITCH = b"HTTP/1.1 101 Switching\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n"


def upper_echo(conn, rest):
    """Sends "handshaked", then echoes every line upper-cased (the pipelined ones first)."""
    conn.sendall(b"handshaked\r\n")
    data = rest
    while True:
        while b"\n" in data:
            line, _, data = data.partition(b"\n")
            conn.sendall(line.upper() + b"\n")
        more = conn.recv(65536)
        if not more:
            return
        data += more


def test_bytes_pipelined_behind_the_handshake_reach_the_upstream(tmp_path):
    backend = RawUpgradeBackend(SWITCH, upper_echo)
    server = serve(tmp_path, backend.port)
    try:
        with socket.create_connection(("127.0.0.1", server.ports[0]), timeout=10) as s:
            s.sendall(b"GET /x HTTP/1.1\r\nHost: localhost\r\nUpgrade: foo\r\n"
                      b"Connection: Upgrade\r\n\r\nearly bytes\n")
            head, rest = read_head(s)
            lines = head.split("\r\n")
            assert lines[0] == "HTTP/1.1 101 Switching"
            assert "Upgrade: foo" in lines
            assert "Connection: upgrade" in lines
            assert not any(l.lower().startswith(("content-length", "transfer-encoding"))
                           for l in lines)
            data = rest
            while b"EARLY BYTES\n" not in data:
                more = s.recv(65536)
                assert more, data
                data += more
            assert data == b"handshaked\r\nEARLY BYTES\n"
            s.sendall(b"next\n")
            data = b""
            while not data.endswith(b"\n"):
                data += s.recv(65536)
            assert data == b"NEXT\n"
        # What the upstream got: the tutorial's headers for an upgrade.
        sent = backend.requests[0].decode("latin-1").split("\r\n")
        assert sent[0] == "GET /x HTTP/1.1"
        assert "Upgrade: foo" in sent and "Connection: upgrade" in sent
    finally:
        server.stop()
        backend.close()


def burst_then_drain(burst):
    """A tunnel backend that sends `burst`, half-closes and reads the client until it closes."""
    def handler(conn, rest):
        conn.sendall(burst)
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(30)
        while conn.recv(65536):
            pass
    return handler


def test_a_burst_to_a_client_that_does_not_read_yet_arrives_whole(tmp_path):
    burst = os.urandom(16 << 20)
    backend = RawUpgradeBackend(SWITCH, burst_then_drain(burst))
    server = serve(tmp_path, backend.port, read_timeout="20s")
    try:
        with socket.create_connection(("127.0.0.1", server.ports[0]), timeout=30) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: foo\r\n\r\n")
            head, rest = read_head(s)
            assert head.startswith("HTTP/1.1 101 ")
            time.sleep(1.0)  # the tunnel must hold back, not drop, while nobody reads
            data = bytearray(rest)
            while True:
                more = s.recv(1 << 20)
                if not more:
                    break  # the upstream closed: the tunnel ends after the last byte
                data += more
            assert len(data) == len(burst)
            assert hashlib.sha256(data).digest() == hashlib.sha256(burst).digest()
    finally:
        server.stop()
        backend.close()


def test_a_101_the_client_did_not_ask_for_is_a_502(tmp_path):
    backend = RawUpgradeBackend(SWITCH, upper_echo)
    server = serve(tmp_path, backend.port)
    try:
        with socket.create_connection(("127.0.0.1", server.ports[0]), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            head, _ = read_head(s)
            assert head.startswith("HTTP/1.1 502 ")
        assert "upstream sent an unrequested 101" in error_log(tmp_path)
    finally:
        server.stop()
        backend.close()


def test_a_burst_to_an_upstream_that_does_not_read_yet_arrives_whole(tmp_path):
    burst = os.urandom(16 << 20)
    digests = []

    def slow_reader(conn, rest):
        time.sleep(1.0)  # the client's bytes must wait in the tunnel, bounded, not be lost
        data = bytearray(rest)
        conn.settimeout(30)
        while len(data) < len(burst):
            more = conn.recv(1 << 20)
            if not more:
                break
            data += more
        digests.append(hashlib.sha256(data).hexdigest())
        conn.sendall(hashlib.sha256(data).hexdigest().encode() + b"\n")

    backend = RawUpgradeBackend(SWITCH, slow_reader)
    server = serve(tmp_path, backend.port, read_timeout="20s")
    try:
        with socket.create_connection(("127.0.0.1", server.ports[0]), timeout=30) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: foo\r\n\r\n")
            head, rest = read_head(s)
            assert head.startswith("HTTP/1.1 101 ")
            s.sendall(burst)
            data = rest
            while not data.endswith(b"\n"):
                more = s.recv(65536)
                assert more, data
                data += more
            assert data.decode().strip() == hashlib.sha256(burst).hexdigest()
    finally:
        server.stop()
        backend.close()


def test_limit_rate_does_not_pace_the_tunnel(tmp_path):
    """limit_rate paces responses, not a tunnel (nginx's upgraded connection writes past its
    write filter): 4 MiB through a location with `limit_rate 1k` arrive whole within the
    test's budget, where 1 KiB/s would take over an hour."""
    burst = os.urandom(4 << 20)
    backend = RawUpgradeBackend(SWITCH, burst_then_drain(burst))
    body = TUTORIAL.replace("proxy_read_timeout %s;", "proxy_read_timeout %s; limit_rate 1k;")
    server = serve(tmp_path, backend.port, body=body % (backend.port, "20s"))
    try:
        with socket.create_connection(("127.0.0.1", server.ports[0]), timeout=20) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: foo\r\n\r\n")
            head, rest = read_head(s)
            assert head.startswith("HTTP/1.1 101 ")
            data = bytearray(rest)
            while True:
                more = s.recv(1 << 20)
                if not more:
                    break
                data += more
            assert hashlib.sha256(data).digest() == hashlib.sha256(burst).digest()
    finally:
        server.stop()
        backend.close()
