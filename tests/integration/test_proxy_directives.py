"""proxy_redirect, proxy_intercept_errors, proxy_ignore_headers, proxy_cookie_domain and
proxy_cookie_path, differential: the same configuration in Debian's nginx and in portico in
front of one backend written here, which answers what the query asks for (a Location, a
Refresh, a Set-Cookie, a status); the status, the rewritten headers and the bodies must be the
same. Then the load-time messages of the bad forms, compared with `nginx -t`'s."""

import http.server
import os
import re
import subprocess
import threading
import urllib.parse

import pytest

from http_client import Connection
from nginx_diff import NGINX, run_case, start_portico
from test_proxy import ThreadingServer, echo_backend  # noqa: F401 (a fixture)
from servers import close_listener, free_port, portico_binary


class AskingHandler(http.server.BaseHTTPRequestHandler):
    """?loc=URL answers 302 with that Location, ?refresh=V a Refresh header, ?cookie=V a
    Set-Cookie, ?status=N that status (with WWW-Authenticate for 401); the body names the
    request."""

    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = self.headers.get("Content-Length")
        if length:
            self.rfile.read(int(length))
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        status = int(query.get("status", ["302" if "loc" in query else "200"])[0])
        body = ("upstream %d %s from %s\n" % (status, self.path, self.client_address[0])).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        if "loc" in query:
            self.send_header("Location", query["loc"][0])
        if "refresh" in query:
            self.send_header("Refresh", query["refresh"][0])
        if "cookie" in query:
            self.send_header("Set-Cookie", query["cookie"][0])
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="up"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def asking_backend():
    server = ThreadingServer(("127.0.0.1", 0), AskingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def q(**values):
    return "?" + urllib.parse.urlencode(values, quote_via=urllib.parse.quote)


CONF = r"""
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        root @DIR@/www;
        location /def/ { proxy_pass http://127.0.0.1:%(b)d/inner/; }
        location /plain/ { proxy_pass http://127.0.0.1:%(b)d; }
        location = /exact { proxy_pass http://127.0.0.1:%(b)d/inner/e; }
        location /off/ { proxy_pass http://127.0.0.1:%(b)d; proxy_redirect off; }
        location /explicit/ {
            proxy_pass http://127.0.0.1:%(b)d;
            proxy_redirect http://other.example/ http://$host/o/;
            proxy_redirect default;
        }
        location /regex/ {
            proxy_pass http://127.0.0.1:%(b)d;
            proxy_redirect ~^http://[^/]+:(\d+)/(.*)$ /p$1/$2;
            proxy_redirect ~*^HTTPS://(?<h>[a-z.]+)/ http://$h/;
        }
        location /relative/ {
            proxy_pass http://127.0.0.1:%(b)d;
            proxy_redirect /old/ /new/;
            absolute_redirect off;
        }
        location /srv/ {
            proxy_redirect http://127.0.0.1:%(b)d/ /from-server/;
            location /srv/in/ { proxy_pass http://127.0.0.1:%(b)d; }
        }
        location /cookie/ {
            proxy_pass http://127.0.0.1:%(b)d;
            proxy_cookie_domain .backend.local front.example;
            proxy_cookie_domain ~\.internal$ public.example;
            proxy_cookie_path /inner/ /;
            proxy_cookie_path ~*^/X(.*)$ /y$1;
        }
        location /cookieoff/ {
            proxy_pass http://127.0.0.1:%(b)d;
            proxy_cookie_domain off;
            proxy_cookie_path off;
        }
        location /err/ {
            proxy_pass http://127.0.0.1:%(b)d;
            proxy_intercept_errors on;
            error_page 404 /nf.html;
            error_page 500 =200 /ok.html;
            error_page 401 /nf.html;
            error_page 503 @fallback;
        }
        location @fallback { return 200 "fallback $upstream_status\n"; }
        location /noint/ { proxy_pass http://127.0.0.1:%(b)d; error_page 404 /nf.html; }
        location /ign/ {
            proxy_pass http://127.0.0.1:%(b)d;
            proxy_ignore_headers X-Accel-Expires Expires Cache-Control Set-Cookie Vary;
            proxy_ignore_headers x-accel-charset;
        }
    }
"""


def test_redirects_cookies_and_intercepted_errors_match_nginx(tmp_path, asking_backend):
    b = asking_backend
    up = "http://127.0.0.1:%d" % b
    requests = [
        ("GET", "/def/x" + q(loc=up + "/inner/a/b?c=d")),
        ("GET", "/def/x" + q(loc=up + "/other")),
        ("GET", "/def/x" + q(loc="/inner/rel")),
        ("GET", "/plain/x" + q(loc=up + "/a")),
        ("GET", "/plain/x" + q(loc=up)),
        ("GET", "/exact" + q(loc=up + "/inner/e/more")),
        ("GET", "/off/x" + q(loc=up + "/a")),
        ("GET", "/explicit/x" + q(loc="http://other.example/z")),
        ("GET", "/explicit/x" + q(loc=up + "/q")),
        ("GET", "/regex/x" + q(loc="http://a.b:81/c/d")),
        ("GET", "/regex/x" + q(loc="HTTPS://Sub.Example/rest")),
        ("GET", "/regex/x" + q(loc="/relative")),
        ("GET", "/relative/x" + q(loc="/old/p")),
        ("GET", "/srv/in/x" + q(loc=up + "/y")),
        ("GET", "/plain/x" + q(refresh="5; url=" + up + "/r")),
        ("GET", "/plain/x" + q(refresh="5; URL=" + up + "/r", status="200")),
        ("GET", "/plain/x" + q(refresh="5")),
        ("GET", "/off/x" + q(refresh="0; url=" + up + "/r")),
        ("GET", "/cookie/x" + q(cookie="id=1;  Domain=.BACKEND.local ; Path=/inner/a")),
        ("GET", "/cookie/x" + q(cookie="id=1;  path=/other")),
        ("GET", "/cookie/x" + q(cookie="a=b; domain=db.internal; path=/xyz; HttpOnly")),
        ("GET", "/cookie/x" + q(cookie="flag; path=/inner/")),
        ("GET", "/cookieoff/x" + q(cookie="id=1; Domain=backend.local")),
        ("GET", "/err/x" + q(status="404")),
        ("GET", "/err/x" + q(status="500")),
        ("GET", "/err/x" + q(status="403")),
        ("GET", "/err/x" + q(status="401")),
        ("GET", "/err/x" + q(status="503")),
        ("HEAD", "/err/x" + q(status="404")),
        ("GET", "/err/x" + q(status="200")),
        ("GET", "/noint/x" + q(status="404")),
        ("GET", "/ign/x" + q(cookie="a=b")),
    ]
    files = {"www/nf.html": "not found page\n", "www/ok.html": "ok page\n"}
    run_case(tmp_path, CONF % {"b": b}, files, requests, mime=False,
             extra_headers=("set-cookie", "refresh"))


def test_intercepted_errors_release_keepalive_connections(tmp_path, asking_backend):
    """An intercepted response's connection is closed, never cached half-read: the answers
    that follow on the same upstream are whole."""
    body = """
        upstream up { server 127.0.0.1:%d; keepalive 4; }
        server {
            listen 127.0.0.1:@PORT@;
            root @DIR@/www;
            location / {
                proxy_pass http://up;
                proxy_http_version 1.1;
                proxy_set_header Connection "";
                proxy_intercept_errors on;
                error_page 404 /nf.html;
            }
            location = /nf.html { }
        }
    """ % asking_backend
    os.makedirs(tmp_path / "www")
    (tmp_path / "www" / "nf.html").write_text("not found page\n")
    server = start_portico(str(tmp_path), body, 1, mime=False)
    try:
        for i in range(6):
            status = "404" if i % 2 == 0 else "200"
            with Connection.tcp("127.0.0.1", server.ports[0], 5.0) as conn:
                r = conn.request("GET", "/a" + q(status=status), host="localhost")
            if status == "404":
                assert r.status == 404 and r.body == b"not found page\n"
            else:
                assert r.status == 200 and r.body.startswith(b"upstream 200 /a")
    finally:
        server.stop()


def _check(tmp_path, program, http_body):
    """`-t` of the file: the exit code and the [emerg] message without its place (nginx's
    "PID#TID: " dropped)."""
    conf = tmp_path / ("%s.conf" % os.path.basename(program[0]))
    conf.write_text("events {} http { access_log off; %s }" % http_body)
    (tmp_path / "logs").mkdir(exist_ok=True)
    out = subprocess.run(program + ["-p", str(tmp_path) + "/", "-t", "-c", str(conf)],
                         capture_output=True, text=True, timeout=10)
    text = out.stderr + out.stdout
    match = re.search(r"\[emerg\] (?:\d+#\d+: )?(.*) in [^ ]*:\d+", text)
    return out.returncode, match.group(1) if match else text


BAD = [
    "server { location / { proxy_redirect default; proxy_pass http://127.0.0.1:1; } }",
    "server { proxy_redirect default; }",
    "server { location / { proxy_pass http://127.0.0.1:1; proxy_redirect nonsense; } }",
    "server { location / { proxy_redirect off; proxy_redirect / /x; } }",
    "server { location / { proxy_redirect / /x; proxy_redirect off; } }",
    "server { location / { proxy_redirect a b c; } }",
    "server { location / { proxy_redirect ~(unclosed /x; } }",
    "server { location / { proxy_cookie_domain off; proxy_cookie_domain a b; } }",
    "server { location / { proxy_cookie_domain a b; proxy_cookie_domain off; } }",
    "server { location / { proxy_cookie_path nonsense; } }",
    "server { location / { proxy_intercept_errors maybe; } }",
    "server { location / { proxy_intercept_errors on; proxy_intercept_errors on; } }",
]


@pytest.mark.parametrize("http_body", BAD)
def test_bad_forms_are_refused_as_nginx(tmp_path, http_body):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx is not installed")
    nginx_rc, nginx_text = _check(tmp_path, [NGINX, "-e", "/dev/stderr"], http_body)
    rc, text = _check(tmp_path, [portico_binary()], http_body)
    assert nginx_rc != 0 and rc != 0
    assert text == nginx_text


def test_ignore_headers_invalid_value_is_refused(tmp_path):
    rc, text = _check(tmp_path, [portico_binary()],
                      "server { location / { proxy_ignore_headers X-Nonsense; } }")
    assert rc != 0 and text == 'invalid value "X-Nonsense"'
    port = free_port()
    rc, text = _check(tmp_path, [portico_binary()],
                      "server { listen 127.0.0.1:%d; location / { proxy_pass http://127.0.0.1:1;"
                      " proxy_ignore_headers X-Accel-Redirect Vary; } }" % port)
    assert rc == 0, text


VARS_CONF = r"""
    upstream named { server 127.0.0.1:%(e)d; }
    log_format vars '$request_uri|$upstream_addr|$upstream_status|$upstream_bytes_sent|'
                    '$upstream_bytes_received|$upstream_cookie_id|$upstream_cookie_path|'
                    '"$request_body"';
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        access_log @DIR@/vars.log vars;
        location /v1/ { proxy_pass http://127.0.0.1:$arg_p; }
        location /v2/ { proxy_pass http://127.0.0.1:%(e)d$uri; }
        location /v3/ { proxy_pass http://named$request_uri; }
        location /v4/ { proxy_pass http://$arg_h:%(e)d/fixed; }
        location /v5/ { proxy_pass $arg_u; }
        location /v6/ { set $b 127.0.0.1:%(a)d; proxy_pass http://$b; }
        location ~ ^/re/(.*)$ { proxy_pass http://127.0.0.1:%(e)d/r/$1?x=$arg_x; }
        location /post/ { proxy_pass http://127.0.0.1:%(a)d; }
    }
"""


def test_variables_in_proxy_pass_match_nginx(tmp_path, echo_backend, asking_backend):
    e, a = echo_backend, asking_backend
    requests = [
        ("GET", "/v1/x?p=%d&y=1" % e),
        ("GET", "/v2/a%%20b?q=1"),
        ("GET", "/v3/n?k=v"),
        ("GET", "/v4/x?h=127.0.0.1"),
        ("GET", "/v4/x?h=localhost"),
        ("GET", "/v5/x?u=ftp://x"),
        ("GET", "/v6/x" + q(loc="http://127.0.0.1:%d/a" % a)),
        ("GET", "/re/deep/er?x=7"),
    ]
    run_case(tmp_path, VARS_CONF % {"e": e, "a": a}, {}, requests, mime=False)


def _logged(server_start, tmp_path, conf, requests):
    log = tmp_path / "vars.log"
    if log.exists():
        log.unlink()
    server = server_start(str(tmp_path), conf, 1, mime=False)
    try:
        for method, target, body in requests:
            with Connection.tcp("127.0.0.1", server.ports[0], 5.0) as conn:
                conn.request(method, target, body=body, host="localhost")
    finally:
        server.stop()
    return log.read_text().splitlines()


def test_upstream_byte_cookie_and_body_variables_match_nginx(tmp_path, echo_backend,
                                                             asking_backend):
    from nginx_diff import prepare_tree, start_nginx
    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx is not installed")
    prepare_tree(str(tmp_path), {})
    conf = VARS_CONF % {"e": echo_backend, "a": asking_backend}
    requests = [
        ("GET", "/post/c" + q(cookie="id=42; path=/p"), b""),
        ("POST", "/post/b", b"hello body"),
        ("GET", "/v3/plain", b""),
        ("GET", "/v4/x?h=localhost", b""),
    ]
    theirs = _logged(start_nginx, tmp_path, conf, requests)
    ours = _logged(start_portico, tmp_path, conf, requests)
    assert len(theirs) == len(requests)
    assert ours == theirs


def test_no_resolver_is_logged_as_nginx(tmp_path):
    body = """
        server {
            listen 127.0.0.1:@PORT@;
            location / { proxy_pass http://$arg_h:1; }
        }
    """
    server = start_portico(str(tmp_path), body, 1, mime=False)
    try:
        with Connection.tcp("127.0.0.1", server.ports[0], 5.0) as conn:
            r = conn.request("GET", "/x?h=nowhere.example", host="localhost")
        assert r.status == 502
    finally:
        server.stop()
    text = (tmp_path / "portico-error.log").read_text()
    assert "no resolver defined to resolve nowhere.example" in text


def test_proxy_bind(tmp_path, asking_backend):
    """The upstream sees the connection from the bound address; an unusable one is a 500."""
    body = """
        server {
            listen 127.0.0.1:@PORT@;
            location /b/ { proxy_pass http://127.0.0.1:%d; proxy_bind 127.0.0.2; }
            location /v/ { proxy_pass http://127.0.0.1:%d; proxy_bind $arg_a; }
            location /bad/ { proxy_pass http://127.0.0.1:%d; proxy_bind 192.0.2.77; }
        }
    """ % (asking_backend, asking_backend, asking_backend)
    server = start_portico(str(tmp_path), body, 1, mime=False)
    try:
        def get(target):
            with Connection.tcp("127.0.0.1", server.ports[0], 5.0) as conn:
                return conn.request("GET", target, host="localhost")
        r = get("/b/x")
        assert r.status == 200 and r.body.endswith(b" from 127.0.0.2\n")
        r = get("/v/x?a=127.0.0.3")
        assert r.status == 200 and r.body.endswith(b" from 127.0.0.3\n")
        r = get("/v/x")  # empty: nothing bound
        assert r.status == 200 and r.body.endswith(b" from 127.0.0.1\n")
        assert get("/bad/x").status == 500
    finally:
        server.stop()


@pytest.mark.parametrize("http_body", [
    "server { location / { proxy_pass http://$host; proxy_redirect default; } }",
    "server { location / { proxy_bind nonsense; } }",
    "server { location / { proxy_bind 127.0.0.1 other; } }",
    "server { location / { proxy_bind off; proxy_bind off; } }",
])
def test_more_bad_forms_are_refused_as_nginx(tmp_path, http_body):
    test_bad_forms_are_refused_as_nginx(tmp_path, http_body)


STREAM_CONF = """
    client_max_body_size 1m;
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        location /off/ { proxy_pass http://127.0.0.1:%(e)d; proxy_request_buffering off; }
        location /off11/ {
            proxy_pass http://127.0.0.1:%(e)d;
            proxy_request_buffering off;
            proxy_http_version 1.1;
        }
    }
"""


def _chunked(body, piece=1000):
    out = b""
    for i in range(0, len(body), piece):
        part = body[i:i + piece]
        out += b"%x\r\n%s\r\n" % (len(part), part)
    return out + b"0\r\n\r\n"


def test_request_buffering_off_matches_nginx(tmp_path, echo_backend):
    """What the upstream receives: the client's length, chunked to an HTTP/1.1 upstream when
    the length is unknown, read whole (with its length) for an HTTP/1.0 one."""
    body = bytes(range(256)) * 40
    chunked = [("Transfer-Encoding", "chunked")]
    requests = [
        ("POST", "/off/a", {"body": body}),
        ("PUT", "/off11/b", {"body": body}),
        ("POST", "/off/c", {"body": _chunked(body), "headers": chunked}),
        ("POST", "/off11/d", {"body": _chunked(body), "headers": chunked}),
        ("GET", "/off/e"),
    ]
    run_case(tmp_path, STREAM_CONF % {"e": echo_backend}, {}, requests, mime=False)


class StreamingBackend:
    """Reads a request head and `first` body bytes, then sets `seen`; reads the rest of a
    Content-Length body and answers 200 with the body's length. `cut` closes the connection
    after the first bytes instead (a failure once the body began to go)."""

    def __init__(self, first, cut=False):
        import socket
        self.first, self.cut = first, cut
        self.seen = threading.Event()
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536) or b"!"
                if data.endswith(b"!"):
                    return
            head, _, rest = data.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(rest) < self.first:
                more = conn.recv(65536)
                if not more:
                    return
                rest += more
            self.seen.set()
            if self.cut:
                return
            while len(rest) < length:
                more = conn.recv(65536)
                if not more:
                    return
                rest += more
            out = b"got %d" % len(rest)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                         % (len(out), out))
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        close_listener(self.sock)


@pytest.mark.parametrize("buffering", ["on", "off"])
def test_request_body_streams_to_the_upstream(tmp_path, buffering):
    """With proxy_request_buffering off, the upstream has the first half of the body before the
    client sends the second; with on, it has nothing until the whole body came."""
    backend = StreamingBackend(first=1000)
    body = """
        server {
            listen 127.0.0.1:@PORT@;
            location / { proxy_pass http://127.0.0.1:%d; proxy_request_buffering %s; }
        }
    """ % (backend.port, buffering)
    server = start_portico(str(tmp_path), body, 1, mime=False)
    try:
        with Connection.tcp("127.0.0.1", server.ports[0], 10.0) as conn:
            conn.send(b"PUT /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2000\r\n\r\n" +
                      b"a" * 1000)
            early = backend.seen.wait(10 if buffering == "off" else 1)
            conn.send(b"b" * 1000)
            r = conn.read_response("PUT")
        assert early == (buffering == "off")
        assert r.status == 200 and r.body == b"got 2000"
    finally:
        server.stop()
        backend.close()


@pytest.mark.parametrize("buffering", ["on", "off"])
def test_no_retry_once_the_streamed_body_began(tmp_path, buffering):
    """A peer that fails after body bytes arrived: buffered, the PUT goes to the next peer;
    streamed, it is not sent again (502)."""
    cutting = StreamingBackend(first=10, cut=True)
    good = StreamingBackend(first=0)
    body = """
        upstream two { server 127.0.0.1:%d; server 127.0.0.1:%d; }
        server {
            listen 127.0.0.1:@PORT@;
            location / { proxy_pass http://two; proxy_request_buffering %s; }
        }
    """ % (cutting.port, good.port, buffering)
    server = start_portico(str(tmp_path), body, 1, mime=False)
    try:
        with Connection.tcp("127.0.0.1", server.ports[0], 10.0) as conn:
            r = conn.request("PUT", "/x", body=b"z" * 3000, host="localhost")
        if buffering == "on":
            assert r.status == 200 and r.body == b"got 3000"
        else:
            assert r.status == 502 and good.accepted == 0
    finally:
        server.stop()
        cutting.close()
        good.close()
