"""proxy_pass responses and slow clients: with proxy_buffering on, a response the client reads
slower than the upstream sends goes past the proxy_buffers read-ahead into an unlinked temporary
file (proxy_temp_path), so the upstream is read to its end at its own speed and its connection
goes back to the keep-alive pool while the client is still reading; proxy_max_temp_file_size
bounds the file (0: no file, the upstream waits for the client, as with proxy_buffering off or
"X-Accel-Buffering: no"). Every byte is hashed; the temporary directory never shows a file; the
worker's memory stays bounded. The new directives' load-time checks are compared with Debian's
`nginx -t` on the same files.

The backend here is a raw keep-alive HTTP/1.1 server that records, per request, how many body
bytes it has handed to the kernel and when its last byte went, and which of its connections
served a request."""

import hashlib
import os
import re
import socket
import ssl
import subprocess
import threading
import time
import zlib

import pytest

from master_support import wait_for_workers
from nginx_diff import start_portico
from servers import NginxServer, close_listener, free_port, portico_binary
from tls_support import certs, client_context  # noqa: F401 (certs is a fixture)

MIB = 1024 * 1024
SANITIZED = bool(os.environ.get("PORTICO_SANITIZED"))
BLOCK = bytes(range(256)) * 256  # 64 KiB


def digest_of(size):
    h = hashlib.sha256()
    left = size
    while left:
        n = min(left, len(BLOCK))
        h.update(BLOCK[:n])
        left -= n
    return h.hexdigest()


def wait_until(predicate, timeout=20.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class Backend:
    """A keep-alive HTTP/1.1 backend. GET /big/N[?xab=V] answers N pattern bytes (with
    "X-Accel-Buffering: V" when asked); /peer answers the port of the proxy's connection;
    /stream/KEY sends a first chunk, waits for `release(KEY)`, then the rest."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.sent = {}      # request path -> body bytes handed to the kernel
        self.done = {}      # request path -> threading.Event set after the last byte
        self.peer = {}      # request path -> the proxy connection's port
        self.gates = {}     # stream key -> threading.Event
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                conn, addr = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, addr[1]), daemon=True).start()

    def event(self, path):
        with self.lock:
            return self.done.setdefault(path, threading.Event())

    def gate(self, key):
        with self.lock:
            return self.gates.setdefault(key, threading.Event())

    def release(self, key):
        self.gate(key).set()

    def _serve(self, conn, peer_port):
        buf = b""
        try:
            conn.settimeout(60)
            while True:
                while b"\r\n\r\n" not in buf:
                    more = conn.recv(65536)
                    if not more:
                        return
                    buf += more
                head, buf = buf.split(b"\r\n\r\n", 1)
                path = head.split(b"\r\n")[0].split(b" ")[1].decode()
                with self.lock:
                    self.peer[path] = peer_port
                self._answer(conn, path, peer_port)
        except OSError:
            pass
        finally:
            conn.close()

    def _answer(self, conn, path, peer_port):
        if path.startswith("/peer"):
            body = b"%d" % peer_port
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            return
        extra = b""
        match = re.search(r"xab=(\w+)", path)
        if match:
            extra = b"X-Accel-Buffering: %s\r\n" % match.group(1).encode()
        if path.startswith("/stream/"):
            key = path.split("/")[2].split("?")[0]
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n%s\r\n"
                         b"6\r\nfirst.\r\n" % extra)
            self.gate(key).wait(30)
            conn.sendall(b"5\r\nrest.\r\n0\r\n\r\n")
            self.event(path).set()
            return
        size = int(path.split("/")[2].split("?")[0])
        if "ct=text" in path:
            extra += b"Content-Type: text/plain\r\n"
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (size, extra))
        left = size
        while left:
            n = min(left, len(BLOCK))
            conn.sendall(BLOCK[:n])
            left -= n
            with self.lock:
                self.sent[path] = size - left
        self.event(path).set()

    def progress(self, path):
        with self.lock:
            return self.sent.get(path, 0)

    def stalled(self, path, size, quiet=1.0, timeout=20.0):
        """Waits until the backend's sending of `path` stops moving for `quiet` seconds (or
        ends); returns the bytes sent by then."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now = self.progress(path)
            if now >= size:
                return now
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return now
            time.sleep(0.05)
        return self.progress(path)

    def close(self):
        self.stopped = True
        close_listener(self.sock)


@pytest.fixture
def backend():
    b = Backend()
    yield b
    for key in list(b.gates):
        b.release(key)
    b.close()


class SlowClient:
    """A client with a small receive window that reads the body only when told to."""

    def __init__(self, port, target, rcvbuf=32 * 1024, tls=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(30)
        self.sock.connect(("127.0.0.1", port))
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        self.sock.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % target.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            more = self.sock.recv(4096)
            assert more, "closed before the head: %r" % buf
            buf += more
        head, self.pending = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.length = int(self.headers.get("content-length", "-1"))
        self.received = 0
        self.hash = hashlib.sha256()

    def read(self, count):
        """Reads `count` more body bytes (fewer at the end)."""
        want = min(count, self.length - self.received)
        while want > 0:
            data = self.pending or self.sock.recv(min(want, 65536))
            self.pending = b""
            assert data, "closed after %d of %d bytes" % (self.received, self.length)
            if len(data) > want:
                data, self.pending = data[:want], data[want:]
            self.hash.update(data)
            self.received += len(data)
            want -= len(data)

    def read_all(self):
        self.read(self.length - self.received)
        return self.hash.hexdigest()

    def close(self):
        close_listener(self.sock)


def worker_of(server):
    pids = wait_for_workers(server, 1)
    assert len(pids) == 1, pids
    return pids.pop()


def temp_files(pid, directory):
    """The worker's open files in `directory` (unlinked ones included): {fd path: size}."""
    out = {}
    fds = "/proc/%d/fd" % pid
    for name in os.listdir(fds):
        path = os.path.join(fds, name)
        try:
            target = os.readlink(path)
            if target.startswith(directory + "/"):
                out[path] = os.stat(path).st_size
        except OSError:
            pass
    return out


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def start(tmp_path, backend, location_extra="", server_extra="", listen_extra=""):
    temp = str(tmp_path / "ptemp")
    server = start_portico(str(tmp_path), """
        log_format up '$request_uri $upstream_response_time $request_time';
        upstream be { server 127.0.0.1:%d; keepalive 4; }
        server { listen 127.0.0.1:@PORT@%s;
                 access_log @DIR@/up.log up;
                 proxy_http_version 1.1;
                 proxy_set_header Connection "";
                 proxy_temp_path %s 1 2;
                 %s
                 location / { proxy_pass http://be; %s } }
        """ % (backend.port, listen_extra, temp, server_extra, location_extra), 1, mime=False)
    return server, temp


@pytest.mark.parametrize("sendfile,tls", [("on", False), ("off", False), ("on", True)],
                         ids=["sendfile", "read", "tls"])
def test_slow_client_gets_every_byte_while_the_upstream_is_released(tmp_path, backend, sendfile,
                                                                     tls, request):
    # sendfile on: the file goes to the connection as ranges (sendfile, or the TLS connection
    # reads them); off: read() here into memory pieces.
    size = 16 * MIB  # the kernel's socket buffers toward the client take up to ~5 MiB of it
    context, listen_extra, server_extra = None, "", "sendfile %s;" % sendfile
    if tls:
        certs = request.getfixturevalue("certs")
        context = client_context(certs)
        listen_extra = " ssl"
        server_extra += " ssl_certificate %s; ssl_certificate_key %s;" % (
            certs.chain("localhost", "ecdsa"), certs.key("localhost", "ecdsa"))
    server, temp = start(tmp_path, backend, server_extra=server_extra, listen_extra=listen_extra)
    try:
        worker = worker_of(server)
        target = "/big/%d" % size
        done = backend.event(target)
        client = SlowClient(server.ports[0], target, tls=context)
        assert client.status == 200 and client.length == size
        client.read(64 * 1024)
        # The client reads nothing more: the upstream still sends all of it, at its speed.
        assert done.wait(20), "backend sent %d of %d bytes" % (backend.progress(target), size)
        assert client.received < 1 * MIB
        spilled = temp_files(worker, temp)
        assert len(spilled) == 1 and list(spilled.values())[0] > 4 * MIB, spilled
        assert os.listdir(temp) == []  # unlinked from the start
        # The upstream connection went back to the pool: the next request is served on it.
        with socket.create_connection(("127.0.0.1", server.ports[0]), timeout=10) as raw:
            other = context.wrap_socket(raw, server_hostname="localhost") if tls else raw
            other.sendall(b"GET /peer HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            answer = b""
            while True:
                try:
                    more = other.recv(65536)
                except ssl.SSLEOFError:  # a close without close_notify ends it as well
                    more = b""
                if not more:
                    break
                answer += more
        assert answer.split(b"\r\n\r\n", 1)[1] == b"%d" % backend.peer[target]
        time.sleep(1.0)  # the client is slow: $request_time grows, $upstream_response_time not
        assert client.read_all() == digest_of(size)
        client.close()
        assert wait_until(lambda: not temp_files(worker, temp), 10)
        assert os.listdir(temp) == []
        assert wait_until(lambda: target in open(str(tmp_path / "up.log")).read(), 10)
        line = [l for l in open(str(tmp_path / "up.log")) if l.startswith(target)][0].split()
        upstream_time, request_time = float(line[1]), float(line[2])
        assert request_time >= 1.0 and upstream_time < request_time - 0.5, line
    finally:
        server.stop()


def held(backend, target, size, worker, temp):
    """The upstream waits for the client: its sending stalls short of the end, no file."""
    sent = backend.stalled(target, size)
    assert sent < size, "the backend sent everything although the client read nothing"
    assert temp_files(worker, temp) == {}


def test_max_temp_file_size_zero_holds_the_upstream(tmp_path, backend):
    size = 48 * MIB  # beyond what the kernel's socket buffers on the way can hold
    server, temp = start(tmp_path, backend, "proxy_max_temp_file_size 0;")
    try:
        worker = worker_of(server)
        target = "/big/%d" % size
        client = SlowClient(server.ports[0], target)
        client.read(256 * 1024)
        held(backend, target, size, worker, temp)
        assert client.read_all() == digest_of(size)
        client.close()
    finally:
        server.stop()


def test_max_temp_file_size_bounds_the_file(tmp_path, backend):
    size = 48 * MIB
    server, temp = start(tmp_path, backend, "proxy_max_temp_file_size 1m;")
    try:
        worker = worker_of(server)
        target = "/big/%d" % size
        client = SlowClient(server.ports[0], target)
        client.read(256 * 1024)
        sent = backend.stalled(target, size)
        assert sent < size  # the file is full: reading waits for the client
        spilled = temp_files(worker, temp)
        assert len(spilled) == 1, spilled
        assert 512 * 1024 < list(spilled.values())[0] <= 1 * MIB, spilled
        assert client.read_all() == digest_of(size)
        client.close()
        assert wait_until(lambda: not temp_files(worker, temp), 10)
        assert os.listdir(temp) == []
    finally:
        server.stop()


@pytest.mark.parametrize("directive,xab,spills", [
    ("proxy_buffering off;", None, False),
    ("", "no", False),
    ("proxy_buffering off;", "yes", True),
], ids=["buffering-off", "x-accel-no", "off-but-x-accel-yes"])
def test_unbuffered_responses_hold_the_upstream(tmp_path, backend, directive, xab, spills):
    size = (8 if spills else 48) * MIB
    server, temp = start(tmp_path, backend, directive)
    try:
        worker = worker_of(server)
        target = "/big/%d" % size + ("?xab=%s" % xab if xab else "")
        client = SlowClient(server.ports[0], target)
        assert "x-accel-buffering" not in client.headers  # hidden, as nginx
        client.read(64 * 1024)
        if spills:
            assert backend.event(target).wait(20)
            assert client.received < 1 * MIB
            assert len(temp_files(worker, temp)) == 1
        else:
            held(backend, target, size, worker, temp)
        assert client.read_all() == digest_of(size)
        client.close()
    finally:
        server.stop()


@pytest.mark.parametrize("directive,xab", [("proxy_buffering off;", ""), ("", "?xab=no"),
                                           ("", "")],
                         ids=["buffering-off", "x-accel-no", "buffering-on"])
def test_first_chunk_is_passed_before_the_rest_exists(tmp_path, backend, directive, xab):
    server, _temp = start(tmp_path, backend, directive)
    try:
        key = "k%d" % free_port()
        with socket.create_connection(("127.0.0.1", server.ports[0]), timeout=10) as conn:
            conn.sendall(b"GET /stream/%s%s HTTP/1.1\r\nHost: t\r\n\r\n" % (key.encode(),
                                                                            xab.encode()))
            got = b""
            while b"first." not in got:
                more = conn.recv(65536)
                assert more, got
                got += more
            assert b"rest." not in got
            backend.release(key)
            while not got.endswith(b"0\r\n\r\n"):
                more = conn.recv(65536)
                assert more, got
                got += more
        body = got.split(b"\r\n\r\n", 1)[1]
        assert b"first." in body and b"rest." in body
    finally:
        server.stop()


@pytest.mark.skipif(SANITIZED, reason="ASan's quarantine makes RSS meaningless")
@pytest.mark.parametrize("sendfile", ["on", "off"])
def test_worker_memory_stays_bounded_with_several_slow_clients(tmp_path, backend, sendfile):
    size = 16 * MIB
    count = 4
    server, temp = start(tmp_path, backend, server_extra="sendfile %s;" % sendfile)
    try:
        worker = worker_of(server)
        warm = SlowClient(server.ports[0], "/big/%d" % MIB)
        assert warm.read_all() == digest_of(MIB)
        warm.close()
        baseline = rss_bytes(worker)
        clients = []
        for i in range(count):
            target = "/big/%d?c=%d" % (size, i)
            clients.append((target, SlowClient(server.ports[0], target)))
        for target, client in clients:
            client.read(64 * 1024)
        for target, _client in clients:
            assert backend.event(target).wait(30), backend.progress(target)
        assert len(temp_files(worker, temp)) == count
        growth = rss_bytes(worker) - baseline
        print("rss growth %d bytes with %d clients x %d bytes spilled" % (growth, count, size))
        assert growth < 8 * MIB, "worker grew by %d bytes for %d × %d" % (growth, count, size)
        for _target, client in clients:
            assert client.read_all() == digest_of(size)
            client.close()
        assert wait_until(lambda: not temp_files(worker, temp), 10)
    finally:
        server.stop()


# ---- the directives' load-time checks, against Debian's nginx -t ----

NGINX = NginxServer.binary()

CONF_CASES = [
    ("defaults", "proxy_pass http://127.0.0.1:1;"),
    ("all_set", "proxy_pass http://127.0.0.1:1; proxy_buffers 4 16k; proxy_busy_buffers_size 32k;\n"
                "proxy_temp_file_write_size 64k; proxy_max_temp_file_size 10m;"),
    ("max_zero", "proxy_max_temp_file_size 0;"),
    ("busy_too_small", "proxy_buffer_size 16k;\nproxy_busy_buffers_size 8k;"),
    ("busy_too_large", "proxy_busy_buffers_size 64k;"),
    ("two_buffers_default_busy", "proxy_buffers 2 16k;"),
    ("one_buffer", "proxy_buffers 1 4k;"),
    ("write_too_small", "proxy_temp_file_write_size 1k;"),
    ("max_too_small", "proxy_max_temp_file_size 2k;"),
    ("busy_invalid", "proxy_busy_buffers_size abc;"),
    ("dup_busy", "proxy_busy_buffers_size 8k;\nproxy_busy_buffers_size 8k;"),
    ("temp_path_levels", "proxy_temp_path @DIR@/pt 1 2 2;"),
    ("temp_path_bad_level", "proxy_temp_path @DIR@/pt 3 0;"),
    ("temp_path_too_deep", "proxy_temp_path @DIR@/pt 1 2 2 2;"),
    ("temp_path_dup", "proxy_temp_path @DIR@/pt;\nproxy_temp_path @DIR@/pt2;"),
]


def _lines(stderr, who):
    return [line[len(who) + 2:] for line in stderr.splitlines() if line.startswith(who + ": [")]


@pytest.mark.skipif(NGINX is None or os.geteuid() != 0,
                    reason="needs Debian's nginx, run as root (user, log files)")
@pytest.mark.parametrize("name,body", CONF_CASES, ids=[c[0] for c in CONF_CASES])
def test_directive_checks_match_nginx(tmp_path, name, body):
    directory = str(tmp_path)
    os.makedirs(os.path.join(directory, "logs"))
    text = ("events {}\nhttp {\nserver {\nlisten 127.0.0.1:%d;\nlocation / {\n%s\n}\n}\n}\n"
            % (free_port(), body.replace("@DIR@", directory)))
    conf = os.path.join(directory, "site.conf")
    with open(conf, "w") as handle:
        handle.write(text)
    nginx = subprocess.run([NGINX, "-t", "-q", "-e", os.path.join(directory, "e.log"),
                            "-p", directory + "/", "-c", conf],
                           capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    portico = subprocess.run([portico_binary(), "-t", "-q", "-p", directory + "/", "-c", conf],
                             capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert portico.returncode == nginx.returncode, (nginx.stderr, portico.stderr)
    assert _lines(portico.stderr, "portico") == _lines(nginx.stderr, "nginx")


@pytest.mark.parametrize("sendfile", ["on", "off"])
def test_gzipped_spilled_response(tmp_path, backend, sendfile):
    # The gzip filter reads the file ranges it is handed (and lets them go once compressed).
    size = 16 * MIB
    # A small send buffer (listen sndbuf=): the compressed pattern is small, and the kernel's
    # default buffers would take all of it, so that nothing would wait in the file.
    server, temp = start(tmp_path, backend, server_extra="sendfile %s; gzip on; "
                         "gzip_types text/plain; gzip_comp_level 1;" % sendfile,
                         listen_extra=" sndbuf=8k")
    try:
        worker = worker_of(server)
        target = "/big/%d?ct=text" % size
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", server.ports[0]))
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n"
                     b"Connection: close\r\n\r\n" % target.encode())
        first = sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 200"), first
        # The upstream is read to its end while the client reads nothing more; the filter
        # compresses in turns, slower than the upstream sends: the rest waits in the file.
        assert backend.event(target).wait(30), backend.progress(target)
        # Most runs find the rest waiting in the file here; how much the filter and the kernel
        # took first depends on scheduling, so the file is not required (the slow-client tests
        # require it), only that the client gets the whole body.
        assert len(temp_files(worker, temp)) <= 1
        data = first
        while True:
            more = sock.recv(1 << 20)
            if not more:
                break
            data += more
        sock.close()
        head, body = data.split(b"\r\n\r\n", 1)
        assert b"content-encoding: gzip" in head.lower()
        assert b"transfer-encoding: chunked" in head.lower()
        raw = b""
        while True:
            line, body = body.split(b"\r\n", 1)
            n = int(line.split(b";")[0], 16)
            if n == 0:
                break
            raw += body[:n]
            body = body[n + 2:]
        plain = zlib.decompress(raw, 16 + zlib.MAX_WBITS)
        assert len(plain) == size
        assert hashlib.sha256(plain).hexdigest() == digest_of(size)
        assert wait_until(lambda: not temp_files(worker, temp), 10)
    finally:
        server.stop()
