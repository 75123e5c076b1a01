"""HTTP over TLS with portico run with `-c`: a plain request to the TLS port (nginx's 400 page,
error_page 497 — compared with nginx 1.22 when it is installed), $https and $scheme on TLS and
plain ports, the WSGI environ (wsgi.url_scheme, HTTPS), and no byte lost: large static files
and WSGI responses (whole, generated, file_wrapper) to fast and slow readers, uploads with
Content-Length and chunked, keep-alive, pipelining in one record, HEAD and ranges; every body
compared by sha256."""

import json
import os
import random
import socket
import sys
import time

import pytest

from http_client import Connection
from nginx_diff import start_nginx
from tls_support import APPS, TlsPortico, certs, client_context, sha256  # noqa: F401

sys.path.insert(0, APPS)
import bulk  # noqa: E402  (tests/apps: the bytes the app serves)

BIG = 5 * 1024 * 1024

SITE = r"""
    server {
        listen 127.0.0.1:@PORT@ ssl;
        listen 127.0.0.1:@PORT2@;
        server_name localhost;
        ssl_certificate @CERTS@/localhost-ecdsa.pem;
        ssl_certificate_key @CERTS@/localhost-ecdsa.key;
        client_max_body_size 32m;
        root @DIR@/www;
        location = /vars { return 200 "https=[$https] scheme=$scheme port=$server_port\n"; }
        location /app/ {
            wsgi_app introspect:application;
            wsgi_pythonpath @APPS@;
        }
        location /bulk/ {
            wsgi_app bulk:application;
            wsgi_pythonpath @APPS@;
            wsgi_env BULK_DIR @DIR@/bulk;
        }
        location / { }
    }
    server {
        listen 127.0.0.1:@PORT3@ ssl;
        server_name localhost;
        ssl_certificate @CERTS@/localhost-rsa.pem;
        ssl_certificate_key @CERTS@/localhost-rsa.key;
        error_page 497 =301 https://$host:$server_port$request_uri;
        location / { return 200 "tls 3\n"; }
    }
"""

PLAIN_TO_TLS = b"The plain HTTP request was sent to HTTPS port"


@pytest.fixture(scope="module")
def tls(tmp_path_factory, certs):  # noqa: F811
    workdir = tmp_path_factory.mktemp("tls-http")
    www = workdir / "www"
    www.mkdir()
    rng = random.Random(13)
    (www / "big.bin").write_bytes(rng.randbytes(BIG))
    (www / "small.txt").write_bytes(b"small file\n")
    for index in range(16):
        (www / ("p%02d.txt" % index)).write_bytes(b"pipelined %02d\n" % index * (index + 1))
    (workdir / "bulk").mkdir()
    (workdir / "bulk" / ("%d.bin" % BIG)).write_bytes(bulk.payload(BIG))
    server = TlsPortico(workdir, certs, SITE, nports=3)
    server.start()
    server.big = (www / "big.bin").read_bytes()
    yield server
    server.stop_and_check()


def _plain(port):
    return Connection.tcp("127.0.0.1", port, 5.0)


# --- a plain request to the TLS port, $https, $scheme, the WSGI environ -------------------------

def test_plain_http_to_the_tls_port_is_nginxs_400(tls):
    with _plain(tls.port) as conn:
        response = conn.request("GET", "/vars", host="localhost")
        assert response.status == 400
        assert PLAIN_TO_TLS in response.body
        assert b"<title>400 The plain HTTP request was sent to HTTPS port</title>" in response.body
        assert "close" in response.connection_tokens()
        assert conn.read_to_close() == b""
    # TLS clients on the same port are served meanwhile.
    assert tls.request("/vars").body.startswith(b"https=[on]")


def test_error_page_497_redirects_to_https(tls):
    with _plain(tls.ports[2]) as conn:
        response = conn.request("GET", "/some/path?x=1", host="localhost")
    assert response.status == 301
    assert response.header("Location") == "https://localhost:%d/some/path?x=1" % tls.ports[2]
    assert tls.request("/", port=tls.ports[2]).body == b"tls 3\n"


NGINX_497 = r"""
    server {
        listen 127.0.0.1:@PORT@ ssl;
        server_name localhost;
        ssl_certificate %(certs)s/localhost-ecdsa.pem;
        ssl_certificate_key %(certs)s/localhost-ecdsa.key;
        location / { return 200 "x\n"; }
    }
    server {
        listen 127.0.0.1:@PORT2@ ssl;
        server_name localhost;
        ssl_certificate %(certs)s/localhost-ecdsa.pem;
        ssl_certificate_key %(certs)s/localhost-ecdsa.key;
        error_page 497 =301 https://$host:$server_port$request_uri;
        location / { return 200 "x\n"; }
    }
"""


def test_plain_http_answers_match_nginx(tmp_path, tls, certs):  # noqa: F811
    """The 400 page and the 497 redirect byte for byte as nginx 1.22's (but for the names)."""
    oracle = start_nginx(str(tmp_path), NGINX_497 % {"certs": certs.dir}, 2, mime=False)
    try:
        answers = []
        for ports in ((oracle.ports[0], tls.ports[0]), (oracle.ports[1], tls.ports[2])):
            pair = []
            for port in ports:
                with _plain(port) as conn:
                    response = conn.request("GET", "/a?b=1", host="localhost")
                body = response.body.replace(b"nginx/1.22.1", b"SERVER").replace(b"nginx", b"SERVER")
                body = body.replace(b"portico/", b"SERVER/").split(b"SERVER")[0]
                location = (response.header("Location") or "").replace(":%d/" % port, ":PORT/")
                pair.append((response.status, body, location, response.header("Content-Type"),
                             sorted(response.connection_tokens())))
            answers.append(pair)
        for nginx_answer, portico_answer in answers:
            assert portico_answer == nginx_answer
    finally:
        oracle.stop()


def test_https_and_scheme_on_tls_and_plain_ports(tls):
    assert tls.request("/vars").body == b"https=[on] scheme=https port=%d\n" % tls.ports[0]
    with _plain(tls.ports[1]) as conn:
        response = conn.request("GET", "/vars", host="localhost")
    assert response.body == b"https=[] scheme=http port=%d\n" % tls.ports[1]


def test_wsgi_environ_over_tls_and_plain(tls):
    env = json.loads(tls.request("/app/environ").body)
    assert env["wsgi.url_scheme"] == "https"
    assert env["HTTPS"] == "on"
    # gunicorn's SERVER_PORT: the Host's port, else the scheme's.
    assert env["SERVER_PORT"] == "443"
    with _plain(tls.ports[1]) as conn:
        env = json.loads(conn.request("GET", "/app/environ", host="localhost").body)
    assert env["wsgi.url_scheme"] == "http"
    assert "HTTPS" not in env
    assert env["SERVER_PORT"] == "80"


# --- no byte lost -------------------------------------------------------------------------------

def _slow_get(tls, target, rcvbuf=4096, pause_bytes=256 * 1024):
    """GET through a small receive window, reading 1-4 KiB at a time with pauses for the first
    `pause_bytes`, then fast; returns (head, body)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(10)
    raw.connect(("127.0.0.1", tls.port))
    sock = client_context(tls.certs).wrap_socket(raw, server_hostname="localhost")
    with sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" %
                     target.encode())
        data = bytearray()
        rng = random.Random(7)
        paused = 0
        while True:
            chunk = sock.recv(rng.randint(1024, 4096) if len(data) < pause_bytes else 262144)
            if not chunk:
                break
            data += chunk
            if len(data) < pause_bytes and len(data) // 32768 > paused:
                paused = len(data) // 32768
                time.sleep(0.05)
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return head, body


def _dechunk(body):
    out = bytearray()
    while True:
        line, _, body = body.partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += body[:size]
        body = body[size + 2:]


def test_a_large_static_file_to_fast_and_slow_readers(tls):
    response = tls.request("/big.bin")
    assert response.status == 200 and len(response.body) == BIG
    assert sha256(response.body) == sha256(tls.big)
    head, body = _slow_get(tls, "/big.bin")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert len(body) == BIG and sha256(body) == sha256(tls.big)


@pytest.mark.parametrize("kind", ["single", "gen", "list", "wrap"])
def test_large_wsgi_responses_to_fast_and_slow_readers(tls, kind):
    expected = sha256(bulk.payload(BIG))
    response = tls.request("/bulk/%s/%d" % (kind, BIG))
    assert response.status == 200
    assert len(response.body) == BIG and sha256(response.body) == expected
    head, body = _slow_get(tls, "/bulk/%s/%d" % (kind, BIG))
    assert head.startswith(b"HTTP/1.1 200 ")
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    assert len(body) == BIG and sha256(body) == expected


def test_uploads_with_content_length_and_chunked_are_hashed_whole(tls):
    rng = random.Random(99)
    payload = rng.randbytes(6 * 1024 * 1024 + 123)
    with tls.connect() as conn:
        response = conn.request("POST", "/app/digest", host="localhost", body=payload)
        assert response.status == 200
        assert json.loads(response.body) == {"length": len(payload), "sha256": sha256(payload),
                                             "content_length": str(len(payload))}
        # Chunked, in uneven chunks, on the same keep-alive connection.
        pieces, offset = [], 0
        while offset < len(payload):
            size = rng.randint(1, 300000)
            pieces.append(b"%x\r\n%s\r\n" % (len(payload[offset:offset + size]),
                                             payload[offset:offset + size]))
            offset += size
        conn.send(b"POST /app/digest HTTP/1.1\r\nHost: localhost\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(pieces) + b"0\r\n\r\n")
        response = conn.read_response()
        assert response.status == 200
        result = json.loads(response.body)
        assert (result["length"], result["sha256"]) == (len(payload), sha256(payload))


def test_keep_alive_with_many_requests(tls):
    with tls.connect() as conn:
        for index in range(150):
            kind = index % 3
            if kind == 0:
                response = conn.request("GET", "/small.txt", host="localhost")
                assert (response.status, response.body) == (200, b"small file\n")
            elif kind == 1:
                response = conn.request("GET", "/app/hello?i=%d" % index, host="localhost")
                assert (response.status, response.body) == (200, b"hello %d\n" % index)
            else:
                response = conn.request("HEAD", "/big.bin", host="localhost")
                assert response.status == 200 and response.body == b""
                assert response.header("Content-Length") == str(BIG)
            assert "close" not in response.connection_tokens()


def test_pipelined_requests_in_one_record(tls):
    requests = b"".join(b"GET /p%02d.txt HTTP/1.1\r\nHost: localhost\r\n\r\n" % index
                        for index in range(16))
    assert len(requests) < 16384  # one TLS record
    with tls.connect() as conn:
        conn.send(requests)
        for index in range(16):
            response = conn.read_response()
            assert (response.status, response.body) == (200, b"pipelined %02d\n" % index * (index + 1))
        # WSGI and HEAD in one record too.
        conn.send(b"GET /app/hello?i=1 HTTP/1.1\r\nHost: localhost\r\n\r\n"
                  b"HEAD /app/hello?i=2 HTTP/1.1\r\nHost: localhost\r\n\r\n"
                  b"GET /app/hello?i=3 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert conn.read_response().body == b"hello 1\n"
        head = conn.read_response(method="HEAD")
        assert head.status == 200 and head.body == b"" and head.header("Content-Length") == "8"
        assert conn.read_response().body == b"hello 3\n"


def test_pipelined_requests_across_many_records(tls):
    # ~60 KiB of requests in one write: several records queued at once, all read and answered.
    pad = "x" * 1500
    requests = b"".join(b"GET /p%02d.txt HTTP/1.1\r\nHost: localhost\r\nX-Pad: %s\r\n\r\n" % (
        index % 16, pad.encode()) for index in range(40))
    assert len(requests) > 3 * 16384
    with tls.connect() as conn:
        conn.send(requests)
        for index in range(40):
            response = conn.read_response()
            assert response.body == b"pipelined %02d\n" % (index % 16) * (index % 16 + 1)


def test_head_over_tls(tls):
    with tls.connect() as conn:
        response = conn.request("HEAD", "/big.bin", host="localhost")
        assert response.header("Content-Length") == str(BIG) and response.body == b""
        response = conn.request("HEAD", "/bulk/single/%d" % BIG, host="localhost")
        assert response.status == 200 and response.body == b""
        # The connection is still in step: the next answer is whole.
        assert conn.request("GET", "/small.txt", host="localhost").body == b"small file\n"


@pytest.mark.parametrize("spec, start, end", [
    ("bytes=100-199", 100, 200),
    ("bytes=-1000", BIG - 1000, BIG),
    ("bytes=65000-1300000", 65000, 1300001),  # across the 64 KiB pieces read for TLS
    ("bytes=%d-" % (BIG - 70000), BIG - 70000, BIG),
])
def test_ranges_over_tls(tls, spec, start, end):
    response = tls.request("/big.bin", headers=[("Range", spec)])
    assert response.status == 206
    assert response.header("Content-Range") == "bytes %d-%d/%d" % (start, end - 1, BIG)
    assert sha256(response.body) == sha256(tls.big[start:end])


def test_a_client_that_leaves_mid_response_does_not_disturb_others(tls):
    for _ in range(5):
        with tls.connect() as conn:
            conn.send(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
            conn.read_head()
            conn.sock.recv(1000)
    response = tls.request("/big.bin")
    assert sha256(response.body) == sha256(tls.big)
    assert os.path.exists(os.path.join(tls.workdir, "www", "big.bin"))


@pytest.mark.parametrize("target, tail", [("/small.txt", b"small file\n"), ("/vars", b"\n"),
                                          ("/app/hello", b"hello \n")])
def test_a_connection_close_response_ends_with_close_notify(tls, target, tail):
    # A request without a body is answered and closed at once (no lingering: nothing more of it
    # can come), and the close is a TLS one, as nginx's ngx_ssl_shutdown makes it: close_notify,
    # then FIN. A strict client (ragged EOFs not suppressed) reads a clean end, not a truncation.
    raw = socket.create_connection(("127.0.0.1", tls.port), 5)
    sock = client_context(tls.certs).wrap_socket(raw, server_hostname="localhost",
                                                 suppress_ragged_eofs=False)
    try:
        sock.sendall(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
                     b"Connection: close\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(65536)  # ssl.SSLEOFError on a close without close_notify
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
    assert b"\r\nConnection: close\r\n" in data
    assert data.rstrip(b"\r\n").endswith(tail.rstrip(b"\n")), data[-200:]
