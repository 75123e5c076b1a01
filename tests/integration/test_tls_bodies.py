"""Response bodies over TLS as the fast path writes them: files read into memory and written in
16 KiB records (the head joined with the first file bytes, the socket corked until the last
record), records read ahead (several requests in one socket read), Connection: close after a
large file. Runs portico with -c and an `ssl` listener; the certificate is made with the openssl
CLI once per module."""

import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from servers import free_port, portico_binary, terminate

SIZES = {"empty.bin": 0, "13b.txt": 13, "record.bin": 16384, "record1.bin": 16385,
         "nearly64k.bin": 65536 - 100, "100k.bin": 100 * 1024, "1m.bin": 1024 * 1024 + 7}


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI is not installed")
    root = tmp_path_factory.mktemp("tls-bodies")
    docs = root / "docs"
    docs.mkdir()
    digests = {}
    for name, size in SIZES.items():
        data = os.urandom(size)
        (docs / name).write_bytes(data)
        digests[name] = data
    crt, key = root / "ec.crt", root / "ec.key"
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    port = free_port()
    conf = root / "portico.conf"
    conf.write_text(f"""worker_processes 1;
error_log {root}/error.log info;
pid {root}/portico.pid;
events {{ worker_connections 256; }}
http {{
    default_type application/octet-stream;
    access_log off;
    keepalive_timeout 30;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        location / {{ root {docs}; }}
    }}
}}
""")
    proc = subprocess.Popen([portico_binary(), "-c", str(conf)], cwd=str(root),
                            stdout=subprocess.DEVNULL, stderr=open(root / "stderr", "wb"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, (root / "stderr").read_text()
            time.sleep(0.05)
    yield port, digests
    terminate(proc)


def tls_connect(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def read_response(sock, buf=b""):
    """One response with a Content-Length body: (status, headers, body, bytes left over)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the response head"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed %d bytes into a %d-byte body" % (len(rest), length)
        rest += chunk
    return status, headers, rest[:length], rest[length:]


def get(name, extra=""):
    return ("GET /%s HTTP/1.1\r\nHost: localhost\r\n%s\r\n" % (name, extra)).encode()


def test_every_size_arrives_whole_on_one_keepalive_connection(tls_server):
    port, files = tls_server
    with tls_connect(port) as s:
        for name, data in files.items():
            s.sendall(get(name))
            status, headers, body, left = read_response(s)
            assert status == 200
            assert left == b""
            assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest(), name


def test_ranges_of_a_large_file(tls_server):
    port, files = tls_server
    data = files["1m.bin"]
    with tls_connect(port) as s:
        s.sendall(get("1m.bin", "Range: bytes=100-70000\r\n"))
        status, headers, body, _ = read_response(s)
        assert status == 206
        assert headers["content-range"] == "bytes 100-70000/%d" % len(data)
        assert body == data[100:70001]
        s.sendall(get("1m.bin", "Range: bytes=-20000\r\n"))
        status, _, body, _ = read_response(s)
        assert status == 206 and body == data[-20000:]


def test_pipelined_requests_in_one_write_are_all_answered(tls_server):
    # Three requests in one TLS record, then three records in one TCP segment: the server
    # reads them ahead and must answer each without waiting for another readiness event.
    port, files = tls_server
    with tls_connect(port) as s:
        s.sendall(get("13b.txt") + get("100k.bin") + get("record1.bin"))
        left = b""
        for name in ("13b.txt", "100k.bin", "record1.bin"):
            status, _, body, left = read_response(s, left)
            assert status == 200 and body == files[name]
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    while True:  # the handshake over memory BIOs, so the three records can share one send()
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            raw.sendall(outgoing.read())
            incoming.write(raw.recv(65536))
    raw.sendall(outgoing.read())
    for name in ("13b.txt", "nearly64k.bin", "13b.txt"):
        tls.write(get(name))
    raw.sendall(outgoing.read())  # three records, one segment

    class Reader:
        def recv(self, n):
            while True:
                try:
                    return tls.read(n)
                except ssl.SSLWantReadError:
                    data = raw.recv(65536)
                    if not data:
                        return b""
                    incoming.write(data)

    left = b""
    for name in ("13b.txt", "nearly64k.bin", "13b.txt"):
        status, _, body, left = read_response(Reader(), left)
        assert status == 200 and body == files[name]
    raw.close()


def test_connection_close_after_a_large_file_delivers_it_all(tls_server):
    port, files = tls_server
    with tls_connect(port) as s:
        s.sendall(get("1m.bin", "Connection: close\r\n"))
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ssl.SSLEOFError:
                break
            if not chunk:
                break
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert body == files["1m.bin"]


def test_head_of_a_large_file_has_no_body(tls_server):
    port, files = tls_server
    with tls_connect(port) as s:
        s.sendall(b"HEAD /100k.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        assert buf.startswith(b"HTTP/1.1 200")
        assert ("Content-Length: %d" % len(files["100k.bin"])).encode() in buf
        assert buf.endswith(b"\r\n\r\n")
        s.sendall(get("13b.txt"))
        status, _, body, _ = read_response(s)
        assert status == 200 and body == files["13b.txt"]
