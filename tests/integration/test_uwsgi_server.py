"""portico as a uwsgi server: Debian's nginx in front with `uwsgi_pass` and Debian's own
`uwsgi_params` file, portico behind it (`listen ... uwsgi` over TCP and a unix socket, and the
flags' `--protocol uwsgi`), and the real uWSGI from apt behind the same nginx as the oracle:
same app (tests/apps/uwsgi_app.py), same answers. Also packets sent raw to portico: a malformed
one closes the connection with an error-log line, and portico serves on."""

import hashlib
import json
import os
import socket
import struct
import subprocess
import time

import pytest

from http_client import Connection, build_request
from servers import PorticoServer, free_port, portico_binary, _tail

from uwsgi_support import (APPS, NGINX, UWSGI, UWSGI_PARAMS, needs_nginx_and_uwsgi,
                           stop as _stop, wait_listening as _wait_listening)

pytestmark = needs_nginx_and_uwsgi


def packet(pairs, modifier1=0, modifier2=0):
    """A uwsgi packet, encoded here independently of portico's codec."""
    data = b""
    for key, value in pairs:
        key, value = key.encode("latin-1"), value.encode("latin-1")
        data += struct.pack("<H", len(key)) + key + struct.pack("<H", len(value)) + value
    return struct.pack("<BHB", modifier1, len(data), modifier2) + data


class Stack:
    """nginx with one server per backend: portico over TCP, portico over a unix socket (one
    portico, file mode), portico from the flags, and uWSGI."""

    BACKENDS = ("tcp", "unix", "flags", "uwsgi")

    def __init__(self, workdir):
        self.dir = workdir
        self.procs = []
        self.sock = os.path.join(workdir, "portico.sock")
        self.portico_port = free_port()
        self.uwsgi_port = free_port()
        self.portico_log = os.path.join(workdir, "portico-error.log")
        self.flags = None

    def start(self):
        conf = os.path.join(self.dir, "portico.conf")
        with open(conf, "w") as f:
            f.write("""worker_processes 1;
pid %(dir)s/portico.pid;
error_log %(log)s info;
events { }
http {
    access_log off;
    server {
        listen 127.0.0.1:%(port)d uwsgi;
        listen unix:%(sock)s uwsgi;
        client_max_body_size 20m;
        location / { wsgi_app uwsgi_app:application; wsgi_pythonpath %(apps)s; }
    }
}
""" % {"dir": self.dir, "log": self.portico_log, "port": self.portico_port, "sock": self.sock,
       "apps": APPS})
        stderr = open(os.path.join(self.dir, "portico.stderr"), "wb")
        self.portico = subprocess.Popen([portico_binary(), "-p", self.dir + "/", "-c", conf],
                                        stdout=subprocess.DEVNULL, stderr=stderr,
                                        stdin=subprocess.DEVNULL, cwd=self.dir)
        stderr.close()
        self.procs.append(self.portico)
        _wait_listening(self.portico, [(socket.AF_INET, ("127.0.0.1", self.portico_port)),
                                       (socket.AF_UNIX, self.sock)],
                        os.path.join(self.dir, "portico.stderr"))

        flags_dir = os.path.join(self.dir, "flags")
        os.makedirs(flags_dir)
        self.flags = PorticoServer(flags_dir, ["--protocol", "uwsgi", "--pythonpath", APPS,
                                               "--limit-request-body", "0", "--log-level", "info",
                                               "uwsgi_app:application"]).start()

        uwsgi_log = os.path.join(self.dir, "uwsgi.log")
        self.uwsgi = subprocess.Popen(
            [UWSGI, "--plugin", "python3", "--socket", "127.0.0.1:%d" % self.uwsgi_port,
             "--wsgi-file", os.path.join(APPS, "uwsgi_app.py"), "--processes", "1",
             "--need-app", "--die-on-term", "--logto", uwsgi_log],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            cwd=self.dir)
        self.procs.append(self.uwsgi)
        _wait_listening(self.uwsgi, [(socket.AF_INET, ("127.0.0.1", self.uwsgi_port))], uwsgi_log)

        passes = {"tcp": "127.0.0.1:%d" % self.portico_port, "unix": "unix:" + self.sock,
                  "flags": "127.0.0.1:%d" % self.flags.port, "uwsgi": "127.0.0.1:%d" % self.uwsgi_port}
        self.ports = {name: free_port() for name in self.BACKENDS}
        servers = ""
        for name in self.BACKENDS:
            target = passes[name]
            servers += """
    server {
        listen 127.0.0.1:%(port)d;
        server_name localhost;
        client_max_body_size 20m;
        location / { include %(params)s; uwsgi_param X_EXTRA_PARAM hello; uwsgi_pass %(to)s; }
        location /secure/ { include %(params)s; uwsgi_param HTTPS on; uwsgi_pass %(to)s; }
        location /unbuffered/ { include %(params)s; uwsgi_buffering off; uwsgi_pass %(to)s; }
    }""" % {"port": self.ports[name], "params": UWSGI_PARAMS, "to": target}
        temp = os.path.join(self.dir, "temp")
        os.makedirs(temp)
        nginx_conf = os.path.join(self.dir, "nginx.conf")
        with open(nginx_conf, "w") as f:
            f.write("""%(user)s
worker_processes 1;
pid %(dir)s/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %(temp)s/body;
    proxy_temp_path %(temp)s/proxy;
    fastcgi_temp_path %(temp)s/fastcgi;
    uwsgi_temp_path %(temp)s/uwsgi;
    scgi_temp_path %(temp)s/scgi;
%(servers)s
}
""" % {"user": "user root;" if os.geteuid() == 0 else "", "dir": self.dir, "temp": temp,
       "servers": servers})
        nginx_log = os.path.join(self.dir, "nginx-error.log")
        self.nginx = subprocess.Popen(
            [NGINX, "-p", self.dir + "/", "-c", nginx_conf, "-e", nginx_log,
             "-g", "daemon off; master_process off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        self.procs.append(self.nginx)
        _wait_listening(self.nginx, [(socket.AF_INET, ("127.0.0.1", p)) for p in self.ports.values()],
                        nginx_log)
        return self

    def stop(self):
        if self.flags:
            self.flags.stop()
        for proc in reversed(self.procs):
            _stop(proc, 3 if proc is self.nginx else 15)

    def connect(self, backend, source="127.0.0.1", timeout=10.0):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", self.ports[backend]))
        return Connection(sock, timeout)

    def request(self, backend, method, target, headers=None, body=b"", source="127.0.0.1"):
        with self.connect(backend, source) as conn:
            response = conn.request(method, target, headers=headers, body=body,
                                    host="localhost:%d" % self.ports[backend])
            response.client_port = conn.sock.getsockname()[1]
            return response


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(str(tmp_path_factory.mktemp("uwsgi")))
    try:
        s.start()
        yield s
    finally:
        s.stop()


PORTICO = ("tcp", "unix", "flags")

# What differs between backends by nature: the client's port (one connection each) and the
# server's port (one nginx server each).
VARYING = ("REMOTE_PORT", "SERVER_PORT")


def env_of(stack, backend, target, method="GET", headers=None, body=b"", source="127.0.0.1"):
    r = stack.request(backend, method, target, headers=headers, body=body, source=source)
    assert r.status == 200, (backend, r.status, r.body[:500])
    env = json.loads(r.body)
    env["_client_port"] = r.client_port
    return env


def comparable(env):
    out = {k: v for k, v in env.items() if k not in VARYING and not k.startswith("_")}
    # PEP 3333 allows an empty SCRIPT_NAME to be left out (uWSGI does; portico sets "").
    out["SCRIPT_NAME"] = out.get("SCRIPT_NAME") or ""
    return out


@pytest.mark.parametrize("target", ["/", "/env/a%20b/c.txt?x=1&y=%2F&z", "/env/?q=caf%C3%A9"])
def test_get_matches_uwsgi(stack, target):
    headers = [("X-Custom", "custom value"), ("User-Agent", "uwsgi-test/1"),
               ("Cookie", "a=1; b=2")]
    oracle = env_of(stack, "uwsgi", target, headers=headers)
    assert oracle["REQUEST_URI"] == target
    for backend in PORTICO:
        env = env_of(stack, backend, target, headers=headers)
        assert comparable(env) == comparable(oracle), backend
        # Debian's uwsgi_params send HTTP_HOST as $host: without the port, over the header.
        assert env["HTTP_HOST"] == "localhost"
        assert env["SERVER_PORT"] == str(stack.ports[backend])
        # nginx's own client: the connection portico sees is nginx's.
        assert env["REMOTE_PORT"] == str(env["_client_port"])
    assert oracle["X_EXTRA_PARAM"] == "hello"  # a site's own uwsgi_param reaches the app


def test_remote_addr_is_nginxs_client(stack):
    # The client connects from 127.0.0.2; portico's own peer is nginx on 127.0.0.1.
    for backend in PORTICO + ("uwsgi",):
        env = env_of(stack, backend, "/who", source="127.0.0.2")
        assert env["REMOTE_ADDR"] == "127.0.0.2", backend


def test_https_param_sets_the_url_scheme(stack):
    oracle = env_of(stack, "uwsgi", "/secure/x")
    assert oracle["wsgi.url_scheme"] == "https"
    plain = env_of(stack, "uwsgi", "/plain")
    assert plain["wsgi.url_scheme"] == "http"
    for backend in PORTICO:
        env = env_of(stack, backend, "/secure/x")
        assert env["wsgi.url_scheme"] == "https", backend
        assert env["HTTPS"] == "on"
        assert env_of(stack, backend, "/plain")["wsgi.url_scheme"] == "http"


def test_status_and_headers_match_uwsgi(stack):
    oracle = stack.request("uwsgi", "GET", "/status")
    assert oracle.status == 404
    for backend in PORTICO:
        r = stack.request(backend, "GET", "/status")
        assert (r.status, r.body) == (oracle.status, oracle.body), backend
        for name in ("x-app", "set-cookie", "content-type"):
            assert r.header(name) == oracle.header(name), (backend, name)
        head = stack.request(backend, "HEAD", "/status")
        assert head.status == 404 and head.body == b""


def test_small_post(stack):
    body = b"name=value&other=%C3%A9"
    want = {"length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
            "CONTENT_LENGTH": str(len(body))}
    headers = [("Content-Type", "application/x-www-form-urlencoded")]
    for backend in PORTICO + ("uwsgi",):
        r = stack.request(backend, "POST", "/post", headers=headers, body=body)
        assert r.status == 200, (backend, r.body[:300])
        assert json.loads(r.body) == want, backend
        env = env_of(stack, backend, "/env", method="POST", headers=headers, body=body)
        assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
        assert env["CONTENT_LENGTH"] == str(len(body))


@pytest.mark.time_budget(120)
@pytest.mark.parametrize("backend", PORTICO)
def test_ten_megabyte_post(stack, backend):
    body = os.urandom(10 * 1024 * 1024)
    r = stack.request(backend, "POST", "/post", body=body)
    assert r.status == 200, r.body[:300]
    assert json.loads(r.body)["sha256"] == hashlib.sha256(body).hexdigest()


def test_chunked_client_body(stack):
    # nginx reads the chunked body whole and sends its length: the app sees CONTENT_LENGTH.
    payload = b"x" * 70000
    chunked = b"".join(b"%x\r\n" % len(payload[i:i + 9000]) + payload[i:i + 9000] + b"\r\n"
                       for i in range(0, len(payload), 9000)) + b"0\r\n\r\n"
    for backend in PORTICO:
        with stack.connect(backend) as conn:
            conn.send(b"POST /post HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
                      b"Connection: close\r\n\r\n" + chunked)
            r = conn.read_response()
        assert r.status == 200, (backend, r.body[:300])
        got = json.loads(r.body)
        assert got["length"] == len(payload) and got["CONTENT_LENGTH"] == str(len(payload))


def test_body_over_the_limit_is_413(stack):
    # portico's own client_max_body_size (20m in its file), before a byte of the body.
    data = packet([("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/post"),
                   ("CONTENT_LENGTH", str(21 * 1024 * 1024))])
    reply = _raw(stack, data)
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]


@pytest.mark.time_budget(120)
@pytest.mark.parametrize("location", ["/", "/unbuffered/"])
@pytest.mark.parametrize("length", ["0", "1"])
def test_large_response_to_a_slow_reader(stack, location, length):
    # HTTP/1.0: nginx ends the response with the close whether or not it has a length. With
    # uwsgi_buffering off nginx reads from the backend only as fast as this client reads.
    size = 12 * 1024 * 1024 + 123
    want = hashlib.sha256(b"".join(
        (bytes(range(256)) * 256)[:min(65536, size - i)] for i in range(0, size, 65536))).hexdigest()
    for backend in ("tcp", "unix", "uwsgi"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.settimeout(30)
        with sock:
            sock.connect(("127.0.0.1", stack.ports[backend]))
            sock.sendall(build_request("GET", "%sbig?n=%d&length=%s" % (location, size, length),
                                       host="localhost", version="HTTP/1.0"))
            data = b""
            while b"\r\n\r\n" not in data:
                piece = sock.recv(4096)
                assert piece, data
                data += piece
            head, _, body = data.partition(b"\r\n\r\n")
            assert b" 200 " in head.split(b"\r\n")[0], head
            assert (b"content-length: %d" % size in head.lower()) == (length == "1"), head
            # Stall so every buffer on the way fills, then read the rest.
            time.sleep(1.0)
            digest = hashlib.sha256(body)
            got = len(body)
            while True:
                piece = sock.recv(262144)
                if not piece:
                    break
                digest.update(piece)
                got += len(piece)
        assert got == size, backend
        assert digest.hexdigest() == want, backend


def _raw(stack, data, unix=False):
    """Sends bytes straight to portico's uwsgi socket; returns what came back before the close."""
    if unix:
        conn = Connection.unix(stack.sock, 5.0)
    else:
        conn = Connection.tcp("127.0.0.1", stack.portico_port, 5.0)
    with conn:
        conn.send(data)
        return conn.read_to_close()


def _wait_log(path, text):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if text in _tail(path, 100000):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("data, reason", [
    (packet([("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/")], modifier1=5),
     "uwsgi modifier1 5 is not supported"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "uwsgi modifier1 71 is not supported"),
    (struct.pack("<BHB", 0, 7, 0) + b"\x05\x00ABC\x00\x00", "malformed uwsgi packet"),
    (struct.pack("<BHB", 0, 3, 0) + b"\x01\x00A", "malformed uwsgi packet: truncated value size"),
    (packet([("REQUEST_URI", "/")]), "no REQUEST_METHOD in uwsgi packet"),
    (packet([("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/"), ("CONTENT_LENGTH", "x")]),
     "invalid CONTENT_LENGTH in uwsgi packet"),
])
def test_malformed_packets_close_the_connection(stack, data, reason):
    assert _raw(stack, data) == b""
    assert _wait_log(stack.portico_log, reason), _tail(stack.portico_log)
    assert stack.portico.poll() is None
    assert env_of(stack, "tcp", "/after")["PATH_INFO"] == "/after"


def test_a_raw_packet_gets_an_http_answer_and_a_close(stack):
    # What nginx would send, by hand: the response is HTTP/1.x, ended by the close.
    pairs = [("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/raw?a=1"), ("PATH_INFO", "/raw"),
             ("QUERY_STRING", "a=1"), ("SERVER_PROTOCOL", "HTTP/1.1"),
             ("REMOTE_ADDR", "198.51.100.4"), ("REMOTE_PORT", "4242"), ("HTTP_HOST", "h"),
             ("SERVER_NAME", "srv"), ("SERVER_PORT", "8080")]
    for unix in (False, True):
        reply = _raw(stack, packet(pairs), unix=unix)
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n"), reply[:200]
        assert b"transfer-encoding" not in head.lower()
        env = json.loads(body)
        assert env["REMOTE_ADDR"] == "198.51.100.4" and env["REMOTE_PORT"] == "4242"
        assert env["SERVER_NAME"] == "srv" and env["SERVER_PORT"] == "8080"
        assert env["QUERY_STRING"] == "a=1" and env["PATH_INFO"] == "/raw"
    # A packet split in many writes, its body too.
    body = b"0123456789" * 1000
    data = packet([("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/post"),
                   ("CONTENT_LENGTH", str(len(body)))]) + body
    with Connection.tcp("127.0.0.1", stack.portico_port, 5.0) as conn:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(data), 997):
            conn.send(data[i:i + 997])
            if i < 5000:
                time.sleep(0.002)
        reply = conn.read_to_close()
    assert json.loads(reply.partition(b"\r\n\r\n")[2])["sha256"] == hashlib.sha256(body).hexdigest()


def test_flags_and_conf_errors(tmp_path):
    def run(args):
        return subprocess.run([portico_binary()] + args, capture_output=True, text=True,
                              timeout=30, cwd=str(tmp_path))

    r = run(["--protocol", "spdy", "app:application"])
    assert r.returncode == 2 and "argument --protocol: invalid choice: 'spdy'" in r.stderr
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    r = run(["--protocol", "uwsgi", "--certfile", str(cert), "app:application"])
    assert r.returncode == 2 and "uwsgi cannot be combined with --certfile" in r.stderr
    conf = tmp_path / "p.conf"
    conf.write_text("events {}\nhttp { server { listen 127.0.0.1:%d uwsgi; }\n"
                    "server { listen 127.0.0.1:%d ssl; } }\n" % ((free_port(),) * 2))
    r = run(["-t", "-c", str(conf), "-p", str(tmp_path) + "/"])
    assert r.returncode != 0
    assert ('the "uwsgi" and "ssl" parameters of the "listen" directive cannot both apply'
            in r.stderr), r.stderr
