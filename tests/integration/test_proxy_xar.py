"""X-Accel-Redirect through proxy_pass (Django's protected downloads): the upstream's answer
names a URI, its body is discarded, and the request goes on there as an internal redirect
(GET unless HEAD; "?args"; "@name" for a named location), usually to an `internal` location
that a client cannot reach itself (404). The upstream's Content-Type, Content-Disposition,
Set-Cookie, Cache-Control, Expires and Accept-Ranges stay on the new response, as nginx 1.22
copies them (ngx_http_upstream_process_headers); everything else of the upstream's is gone."""

import hashlib
import http.server
import os
import socket
import socketserver
import subprocess
import threading
import time
import urllib.parse

import pytest

from http_client import Connection
from nginx_diff import portico_binary, start_portico
from servers import close_listener

SECRET = os.urandom(3 << 20)


class DjangoLike(http.server.BaseHTTPRequestHandler):
    """A Django view's answers: /download/NAME checks the session cookie and hands the file to
    the front server; other paths name the redirect in the query (?to=...)."""

    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path, _, query = self.path.partition("?")
        if path.startswith("/download/"):
            if "sessionid=ok" not in (self.headers.get("Cookie") or ""):
                body = b"login first\n"
                self.send_response(403)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            name = path[len("/download/"):]
            target = "/protected/" + name
        else:
            target = (urllib.parse.unquote(query[len("to="):]) if query.startswith("to=")
                      else "/protected/none")
        body = b"the app's own body, never shown\n" * 1000
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Content-Disposition", 'attachment; filename="report.pdf"')
        self.send_header("Set-Cookie", "downloaded=1; Path=/")
        self.send_header("Cache-Control", "private")
        self.send_header("X-Accel-Redirect", target)
        self.send_header("X-Backend-Only", "dropped")
        self.send_header("ETag", '"from-the-app"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, *args):
        pass


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def django_backend():
    server = ThreadingServer(("127.0.0.1", 0), DjangoLike)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def site(backend_port, extra=""):
    return """
        server {
            listen 127.0.0.1:@PORT@;
            location / { proxy_pass http://127.0.0.1:%d; }
            location /protected/ {
                internal;
                alias @DIR@/private/;
                types { text/plain txt; }
            }
            location /inner/ {
                internal;
                return 200 "uri=$uri args=$args method=$request_method\\n";
            }
            location @named { return 200 "named uri=$uri method=$request_method\\n"; }
            %s
        }""" % (backend_port, extra)


def serve(tmp_path, backend_port, extra=""):
    workdir = str(tmp_path)
    os.makedirs(os.path.join(workdir, "private"), exist_ok=True)
    with open(os.path.join(workdir, "private", "report.pdf"), "wb") as handle:
        handle.write(SECRET)
    with open(os.path.join(workdir, "private", "note.txt"), "wb") as handle:
        handle.write(b"a note\n")
    return start_portico(workdir, site(backend_port, extra), 1, mime=False)


def get(server, target, method="GET", headers=None, body=b""):
    return server.request(method, target, headers=headers, body=body)


COOKIE = [("Cookie", "sessionid=ok")]


def error_log(tmp_path):
    with open(os.path.join(str(tmp_path), "portico-error.log"), errors="replace") as handle:
        return handle.read()


def test_protected_download_serves_the_file_with_the_apps_headers(tmp_path, django_backend):
    server = serve(tmp_path, django_backend)
    try:
        r = get(server, "/download/report.pdf", headers=COOKIE)
        assert r.status == 200
        assert hashlib.sha256(r.body).digest() == hashlib.sha256(SECRET).digest()
        assert r.header("Content-Length") == str(len(SECRET))
        assert r.header("Content-Type") == "application/pdf"
        assert r.header("Content-Disposition") == 'attachment; filename="report.pdf"'
        assert r.header("Set-Cookie") == "downloaded=1; Path=/"
        assert r.header("Cache-Control") == "private"
        assert r.header("X-Accel-Redirect") is None
        assert r.header("X-Backend-Only") is None
        assert r.header("ETag") != '"from-the-app"'  # the file's own validators
        assert r.header("Last-Modified") is not None
        # The app's refusal is passed on as it is.
        r = get(server, "/download/report.pdf")
        assert r.status == 403 and r.body == b"login first\n"
    finally:
        server.stop()


def test_internal_location_is_404_to_clients(tmp_path, django_backend):
    server = serve(tmp_path, django_backend)
    try:
        assert get(server, "/protected/report.pdf").status == 404
        assert get(server, "/inner/x").status == 404
        assert get(server, "/protected/").status == 404
    finally:
        server.stop()


def test_method_becomes_get_unless_head_and_args_pass(tmp_path, django_backend):
    server = serve(tmp_path, django_backend)
    try:
        r = get(server, "/download/report.pdf", method="POST", headers=COOKIE, body=b"x=1")
        assert r.status == 200
        assert hashlib.sha256(r.body).digest() == hashlib.sha256(SECRET).digest()
        r = get(server, "/download/report.pdf", method="HEAD", headers=COOKIE)
        assert r.status == 200 and r.body == b""
        assert r.header("Content-Length") == str(len(SECRET))
        r = get(server, "/app?to=/inner/page%3Fa=1", method="POST", body=b"y")
        assert r.status == 200
        assert r.body == b"uri=/inner/page args=a=1 method=GET\n"
    finally:
        server.stop()


def test_named_location_and_quoted_uri(tmp_path, django_backend):
    server = serve(tmp_path, django_backend)
    try:
        r = get(server, "/app/x?to=@named", method="POST", body=b"z")
        assert r.status == 200
        # A named location keeps the URI and the method (ngx_http_named_location).
        assert r.body == b"named uri=/app/x method=POST\n"
        r = get(server, "/app?to=/protected/note%252Etxt")  # the header says note%2Etxt
        assert r.status == 200 and r.body == b"a note\n"
        # The app's Content-Type stands over the file's own type.
        assert r.header("Content-Type") == "application/pdf"
    finally:
        server.stop()


def test_unsafe_or_missing_targets_are_404(tmp_path, django_backend):
    server = serve(tmp_path, django_backend)
    try:
        r = get(server, "/app?to=/protected/../private/report.pdf")
        assert r.status == 404 and SECRET[:100] not in r.body
        assert 'unsafe URI "/protected/../private/report.pdf" was detected' in error_log(tmp_path)
        assert get(server, "/download/missing.pdf", headers=COOKIE).status == 404
    finally:
        server.stop()


def test_range_and_keep_alive_after_redirects(tmp_path, django_backend):
    server = serve(tmp_path, django_backend)
    try:
        with Connection.tcp("127.0.0.1", server.ports[0], 10.0) as conn:
            for i in range(3):
                r = conn.request("GET", "/download/report.pdf",
                                 headers=COOKIE + [("Range", "bytes=%d-%d" % (i * 1000, i * 1000 + 99))])
                assert r.status == 206
                assert r.body == SECRET[i * 1000:i * 1000 + 100]
    finally:
        server.stop()


def test_upstream_body_is_not_waited_for(tmp_path):
    """The app announces a large body and sends none of it: the redirect does not wait."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    port = sock.getsockname()[1]
    held = []

    def run():
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(65536)
                if not more:
                    break
                data += more
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Accel-Redirect: /protected/note.txt\r\n"
                         b"Content-Length: 100000000\r\n\r\npartial")
            held.append(conn)  # kept open: the body never ends

    threading.Thread(target=run, daemon=True).start()
    server = serve(tmp_path, port)
    try:
        started = time.monotonic()
        r = get(server, "/anything")
        assert r.status == 200 and r.body == b"a note\n"
        assert time.monotonic() - started < 5
    finally:
        server.stop()
        close_listener(sock)
        for conn in held:
            conn.close()


@pytest.mark.parametrize("conf, message", [
    ("location /a/ { internal; internal; }", '"internal" directive is duplicate'),
    ("internal;", '"internal" directive is not allowed here'),
])
def test_internal_directive_errors(tmp_path, conf, message):
    path = os.path.join(str(tmp_path), "bad.conf")
    with open(path, "w") as handle:
        handle.write("events {}\nhttp { server { listen 127.0.0.1:1; %s } }\n" % conf)
    proc = subprocess.run([portico_binary(), "-t", "-c", path], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode != 0
    assert message in proc.stderr
