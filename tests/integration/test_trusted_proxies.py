"""Trusted front ends: the PROXY protocol on `listen … proxy_protocol` (v1 and v2, plain and ssl,
compared with Debian's nginx 1.22 where it can be), realip from it, $proxy_protocol_* in logs,
broken headers; and gunicorn's --forwarded-allow-ips / --proxy-protocol, with gunicorn 20.1
itself as the oracle for the same requests."""

import json
import os
import socket
import ssl
import struct
import subprocess
import time

import pytest

from nginx_diff import prepare_tree, start_nginx, start_portico
from servers import free_port, portico_binary, terminate
from wsgi_support import read_text, wait_until

APPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps")
GUNICORN = "/usr/bin/gunicorn"

TCP4 = b"PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n"
TCP6 = b"PROXY TCP6 2001:Db8::1 2001:Db8::2 123 5678\r\n"
UNKNOWN = b"PROXY UNKNOWN\r\n"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
V2_TCP4 = V2_SIG + struct.pack("!BBH4s4sHH", 0x21, 0x11, 12, bytes([192, 0, 2, 1]),
                               bytes([192, 0, 2, 2]), 123, 5678)
V2_TCP6_TLV = V2_SIG + struct.pack("!BBH16s16sHH", 0x21, 0x21, 36 + 5,
                                   socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
                                   socket.inet_pton(socket.AF_INET6, "2001:db8::2"),
                                   123, 5678) + b"\x01\x00\x02h2"
V2_LOCAL = V2_SIG + struct.pack("!BBH", 0x20, 0x00, 0)

SITE = r"""
    log_format pp "$proxy_protocol_addr:$proxy_protocol_port $remote_addr:$remote_port";
    add_header X-IP $remote_addr!$remote_port;
    add_header X-PP $proxy_protocol_addr!$proxy_protocol_port;
    add_header X-PPS $proxy_protocol_server_addr!$proxy_protocol_server_port;
    server {
        listen 127.0.0.1:@PORT@ proxy_protocol;
        server_name localhost;
        root @DIR@/www;
        set_real_ip_from 127.0.0.1;
        access_log @DIR@/pp.log pp;
        location /pp/ { real_ip_header proxy_protocol; }
        location /deny/ { real_ip_header proxy_protocol; deny 192.0.2.1; }
    }
"""


def _raw(port, data, host="127.0.0.1", timeout=5.0):
    """Sends `data` and reads until the server closes; the bytes it answered."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def _headers(response):
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    out = {"status": head[0].split(" ")[1] if head and " " in head[0] else ""}
    for line in head[1:]:
        name, _, value = line.partition(":")
        out[name.strip().lower()] = value.strip()
    return out


def _get(path):
    return ("GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" % path).encode()


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """nginx and portico serving SITE, each in its own directory."""
    served = {}
    for name, start in (("nginx", start_nginx), ("portico", start_portico)):
        workdir = str(tmp_path_factory.mktemp(name))
        prepare_tree(workdir, {"www/t1": "SEE-THIS\n", "www/pp/t1": "PP\n", "www/deny/t1": "D\n"})
        served[name] = (start(workdir, SITE, 1), workdir)
    yield served
    for server, _ in served.values():
        server.stop()


@pytest.mark.parametrize("header, expected", [
    (TCP4, ("192.0.2.1!123", "192.0.2.2!5678")),
    (TCP6, ("2001:Db8::1!123", "2001:Db8::2!5678")),
    (UNKNOWN, ("!", "!")),
    (V2_TCP4, ("192.0.2.1!123", "192.0.2.2!5678")),
    (V2_TCP6_TLV, ("2001:db8::1!123", "2001:db8::2!5678")),
    (V2_LOCAL, ("!", "!")),
])
def test_proxy_protocol_variables_match_nginx(pair, header, expected):
    seen = {}
    for name, (server, _) in pair.items():
        h = _headers(_raw(server.ports[0], header + _get("/t1")))
        seen[name] = (h["status"], h.get("x-pp"), h.get("x-pps"), h.get("x-ip", "").split("!")[0])
    assert seen["portico"] == seen["nginx"]
    assert seen["portico"][:3] == ("200",) + expected
    assert seen["portico"][3] == "127.0.0.1"  # without realip the socket's address stays


@pytest.mark.parametrize("header, client", [
    (TCP4, "192.0.2.1!123"), (TCP6, "2001:db8::1!123"), (V2_TCP4, "192.0.2.1!123")])
def test_realip_from_proxy_protocol_matches_nginx(pair, header, client):
    for name, (server, _) in pair.items():
        h = _headers(_raw(server.ports[0], header + _get("/pp/t1")))
        assert (name, h["status"], h.get("x-ip", "").lower()) == (name, "200", client)
        h = _headers(_raw(server.ports[0], header + _get("/deny/t1")))
        if header is not TCP6:
            assert (name, h["status"]) == (name, "403")


def test_access_log_has_proxy_protocol_addr(pair):
    lines = {}
    for name, (server, workdir) in pair.items():
        _raw(server.ports[0], TCP4 + _get("/pp/t1?log"))
        path = os.path.join(workdir, "pp.log")
        wait_until(lambda: "192.0.2.1:123 192.0.2.1:123" in read_text(path), 5)
        lines[name] = [l for l in read_text(path).splitlines() if l.startswith("192.0.2.1:123 ")]
    assert lines["portico"] and lines["nginx"]
    assert lines["portico"][-1] == lines["nginx"][-1] == "192.0.2.1:123 192.0.2.1:123"


@pytest.mark.parametrize("data, logged", [
    # nginx writes the bytes it read raw (CR LF too); portico escapes them.
    (b"GET /t1 HTTP/1.0\r\n\r\n", 'broken header: "GET /t1 HTTP/1.0'),
    (b"PROXY TCP4 192.0.2.1 192.0.2.2 123\r\n\r\n", 'broken header: "PROXY TCP4 192.0.2.1 192.0.2.2 123'),
    (V2_SIG + b"\x11\x11\x00\x00", "unknown PROXY protocol version: 1"),
])
def test_broken_header_closes_and_logs_as_nginx(pair, data, logged):
    for name, (server, workdir) in pair.items():
        assert _raw(server.ports[0], data) == b"", name
        log = os.path.join(workdir, "%s-error.log" % name)
        assert wait_until(lambda: logged in read_text(log), 5), (name, read_text(log)[-2000:])
        text = read_text(log)
        line = text[text.rindex(logged) - 60:]
        assert "[error]" in line and "while reading PROXY protocol, client: 127.0.0.1" in line


def test_header_split_across_reads_is_waited_for(pair):
    # nginx judges the first read alone; portico waits (bounded by client_header_timeout).
    server, _ = pair["portico"]
    with socket.create_connection(("127.0.0.1", server.ports[0]), timeout=5) as sock:
        sock.sendall(TCP4[:9])
        time.sleep(0.2)
        sock.sendall(TCP4[9:] + _get("/t1"))
        response = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    h = _headers(response)
    assert (h["status"], h["x-pp"]) == ("200", "192.0.2.1!123")


def test_oversized_v1_header_is_refused(pair):
    server, workdir = pair["portico"]
    assert _raw(server.ports[0], b"PROXY UNKNOWN " + b"a" * 200 + b"\r\n" + _get("/t1")) == b""


def test_proxy_protocol_before_tls(tmp_path):
    workdir = str(tmp_path)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", os.path.join(workdir, "key.pem"),
                    "-out", os.path.join(workdir, "cert.pem")], check=True, capture_output=True)
    prepare_tree(workdir, {"www/t1": "SEE-THIS\n"})
    site = r"""
    server {
        listen 127.0.0.1:@PORT@ ssl proxy_protocol;
        ssl_certificate @DIR@/cert.pem;
        ssl_certificate_key @DIR@/key.pem;
        root @DIR@/www;
        add_header X-PP $proxy_protocol_addr!$proxy_protocol_port;
        add_header X-Scheme $scheme;
    }
"""
    server = start_portico(workdir, site, 1)
    try:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        for header, pp in ((TCP4, "192.0.2.1!123"), (V2_TCP6_TLV, "2001:db8::1!123")):
            with socket.create_connection(("127.0.0.1", server.ports[0]), timeout=5) as raw:
                raw.sendall(header)
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(_get("/t1"))
                    response = b""
                    while True:
                        chunk = tls.recv(65536)
                        if not chunk:
                            break
                        response += chunk
            h = _headers(response)
            assert (h["status"], h["x-pp"], h["x-scheme"]) == ("200", pp, "https")
        # A ClientHello without the header is a broken header, not a handshake.
        with socket.create_connection(("127.0.0.1", server.ports[0]), timeout=5) as raw:
            with pytest.raises((ssl.SSLError, OSError)):
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(_get("/t1"))
                    if not tls.recv(100):
                        raise OSError("closed")
        log = os.path.join(workdir, "portico-error.log")
        assert wait_until(lambda: 'broken header: "\\x16\\x03' in read_text(log), 5)
    finally:
        server.stop()


# --- the flags, with gunicorn 20.1 as the oracle ------------------------------------------------

class Backend:
    def __init__(self, name, proc, port, stderr):
        self.name, self.proc, self.port, self.stderr = name, proc, port, stderr

    def environ(self, headers=(), proxy=b""):
        lines = "".join("%s: %s\r\n" % h for h in headers)
        data = proxy + ("GET /environ HTTP/1.0\r\nHost: localhost\r\n%s\r\n" % lines).encode()
        response = _raw(self.port, data)
        head, _, body = response.partition(b"\r\n\r\n")
        status = head.split(b" ")[1].decode() if head else ""
        return status, (json.loads(body) if status == "200" else None)


def _start_backend(tmp_path, name, args, env=None):
    stderr = os.path.join(str(tmp_path), name + ".stderr")
    for _ in range(5):
        port = free_port()
        if name == "gunicorn":
            if not os.access(GUNICORN, os.X_OK):
                pytest.skip("gunicorn is not installed")
            command = [GUNICORN, "-b", "127.0.0.1:%d" % port, "-w", "1", "--chdir", APPS] + args + [
                "introspect:application"]
        else:
            command = [portico_binary(), "-b", "127.0.0.1:%d" % port, "-w", "1", "--pythonpath",
                       APPS] + args + ["introspect:application"]
        full_env = dict(os.environ)
        full_env.pop("FORWARDED_ALLOW_IPS", None)
        full_env.update(env or {})
        with open(stderr, "ab") as err:
            proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err,
                                    stdin=subprocess.DEVNULL, cwd=str(tmp_path), env=full_env)

        def up():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return True
            except OSError:
                return False
        if wait_until(lambda: up() or proc.poll() is not None, 20) and proc.poll() is None:
            return Backend(name, proc, port, stderr)
        terminate(proc)
    raise AssertionError("%s did not start: %s" % (name, read_text(stderr)[-2000:]))


@pytest.fixture
def backends(tmp_path):
    started = []

    def start(args, env=None):
        pair = [_start_backend(tmp_path, name, args, env) for name in ("gunicorn", "portico")]
        started.extend(pair)
        return pair
    yield start
    for backend in started:
        terminate(backend.proc)


SCHEME_CASES = [
    ((), "http"),
    ((("X-Forwarded-Proto", "https"),), "https"),
    ((("X-Forwarded-Proto", "HTTPS"),), "http"),
    ((("X-Forwarded-Ssl", "on"),), "https"),
    ((("X-Forwarded-Protocol", "ssl"),), "https"),
    ((("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "on")), "https"),
    ((("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "off")), 400),
]


@pytest.mark.parametrize("args, env, trusted", [
    ([], None, True),                                              # the default: 127.0.0.1
    (["--forwarded-allow-ips", "10.9.9.9"], None, False),
    (["--forwarded-allow-ips", "10.9.9.9, *"], None, True),
    ([], {"FORWARDED_ALLOW_IPS": "10.9.9.9"}, False),             # gunicorn's environment default
    (["--forwarded-allow-ips", "127.0.0.1"], {"FORWARDED_ALLOW_IPS": "10.9.9.9"}, True),
])
def test_forwarded_scheme_matches_gunicorn(backends, args, env, trusted):
    pair = backends(args, env)
    for headers, expected in SCHEME_CASES:
        results = {}
        for backend in pair:
            status, environ = backend.environ(headers)
            results[backend.name] = status if environ is None else environ["wsgi.url_scheme"]
        want = (str(expected) if expected == 400 else expected) if trusted else "http"
        assert results == {"gunicorn": want, "portico": want}, headers


def test_forwarded_for_sets_remote_addr_only_from_trusted_peers(backends):
    # gunicorn 20.1 leaves REMOTE_ADDR to the socket; portico follows X-Forwarded-For from a
    # trusted peer (the choice, documented in the README): its last untrusted hop.
    gunicorn, portico = backends(["--forwarded-allow-ips", "127.0.0.1,10.0.0.2"])
    headers = (("X-Forwarded-For", "203.0.113.9, 10.0.0.2"),)
    assert gunicorn.environ(headers)[1]["REMOTE_ADDR"] == "127.0.0.1"
    environ = portico.environ(headers)[1]
    assert environ["REMOTE_ADDR"] == "203.0.113.9"
    assert environ["HTTP_X_FORWARDED_FOR"] == "203.0.113.9, 10.0.0.2"
    gunicorn, portico = backends(["--forwarded-allow-ips", "10.0.0.2"])
    assert portico.environ(headers)[1]["REMOTE_ADDR"] == "127.0.0.1"


def test_proxy_protocol_flag_matches_gunicorn(backends):
    pair = backends(["--proxy-protocol"])
    for backend in pair:
        status, environ = backend.environ(proxy=TCP4)
        assert status == "200", backend.name
        got = {k: environ.get(k) for k in ("REMOTE_ADDR", "REMOTE_PORT", "PROXY_PROTOCOL",
                                           "PROXY_ADDR", "PROXY_PORT")}
        assert got == {"REMOTE_ADDR": "192.0.2.1", "REMOTE_PORT": "123", "PROXY_PROTOCOL": "TCP4",
                       "PROXY_ADDR": "192.0.2.2", "PROXY_PORT": "5678"}, backend.name
        # The header is optional with --proxy-protocol.
        status, environ = backend.environ()
        assert (status, environ["REMOTE_ADDR"]) == ("200", "127.0.0.1"), backend.name
    # portico also takes v2 there (gunicorn 20.1 reads v1 only).
    status, environ = pair[1].environ(proxy=V2_TCP4)
    assert (status, environ["REMOTE_ADDR"]) == ("200", "192.0.2.1")


def test_proxy_protocol_and_forwarded_headers_together(backends):
    # The front end that sent the PROXY header (127.0.0.1, trusted) is also trusted for its
    # scheme header, though REMOTE_ADDR is the header's client.
    for backend in backends(["--proxy-protocol"]):
        status, environ = backend.environ((("X-Forwarded-Proto", "https"),), proxy=TCP4)
        assert (status, environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]) == (
            "200", "192.0.2.1", "https"), backend.name


def test_proxy_header_from_a_peer_not_allowed(backends):
    gunicorn, portico = backends(["--proxy-protocol", "--proxy-allow-from", "10.9.9.9"])
    assert gunicorn.environ(proxy=TCP4)[0] == "403"
    # portico closes the connection (before any HTTP) and says why in the error log.
    assert portico.environ(proxy=TCP4)[0] == ""
    assert wait_until(lambda: "not in --proxy-allow-from" in read_text(portico.stderr), 5)
    assert portico.environ()[0] == "200"
