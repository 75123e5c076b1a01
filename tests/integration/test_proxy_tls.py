"""proxy_pass https://: portico as a TLS client of its upstream (nginx 1.22's proxy_ssl_*).

The backend is written here: Python's ssl module over a threaded HTTP/1.1 server, which records
for every connection it accepted the SNI it was sent, whether the session was resumed and the
client certificate's subject, and answers a request with what it knows of its connection.
Certificates come from tls_support (a CA and leaf certificates for localhost / a.test / b.test);
a second CA, made here, is the wrong one. Debian's nginx is the oracle for the 502 cases."""

import hashlib
import http.server
import os
import shutil
import socket
import socketserver
import ssl
import threading
import time

import pytest

from http_client import Connection
from nginx_diff import start_nginx, start_portico
from tls_support import OPENSSL, Certs, _run, certs  # noqa: F401 (the fixture)


def pattern(size):
    block = bytes(range(256)) * 256
    return (block * (size // len(block) + 1))[:size]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        info = self.server.backend.info_of(self.request)
        if self.path.startswith("/big/"):
            out = pattern(int(self.path.split("/")[2]))
        elif self.path.startswith("/host"):
            out = (self.headers.get("Host") or "").encode()
        else:
            out = ("conn=%d sni=%s reused=%d cert=%s" % (
                info["id"], info["sni"] or "-", 1 if info["reused"] else 0,
                info["cert"] or "-")).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        out = hashlib.sha256(body).hexdigest().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def finish_request(self, request, client_address):
        self.backend.serve(request, client_address, self)


class TlsBackend:
    """An HTTPS/1.1 server on 127.0.0.1 (its own thread); `accepted` lists one dict per TLS
    connection that completed its handshake (id, sni, reused, cert), `failed` counts the others."""

    def __init__(self, chain, key, client_ca=None):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(chain, key)
        if client_ca:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(client_ca)
        self.context.sni_callback = self._sni
        self._local = threading.local()
        self.lock = threading.Lock()
        self.accepted = []
        self.failed = 0
        self._by_socket = {}
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.backend = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _sni(self, sslobj, name, context):
        self._local.sni = name

    def serve(self, request, client_address, server):
        self._local.sni = None
        request.settimeout(10)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            with self.lock:
                self.failed += 1
            return
        cert = None
        peer = tls.getpeercert()
        if peer:
            for rdn in peer.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        cert = value
        with self.lock:
            info = {"id": len(self.accepted) + 1, "sni": self._local.sni,
                    "reused": tls.session_reused, "cert": cert}
            self.accepted.append(info)
            self._by_socket[id(tls)] = info
        try:
            _Handler(tls, client_address, server)
        except (ssl.SSLError, OSError):
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def info_of(self, sock):
        with self.lock:
            return self._by_socket[id(sock)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class PlainBackend:
    """A TCP server that answers anything with a plain HTTP response (not TLS)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.settimeout(5)
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
            except OSError:
                pass
            finally:
                conn.close()

    def close(self):
        self.sock.close()


@pytest.fixture()
def backend(certs):
    server = TlsBackend(certs.chain("localhost", "rsa"), certs.key("localhost", "rsa"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    """A second CA (and a client certificate it issued): not the one the backends' chains use."""
    directory = tmp_path_factory.mktemp("other-ca")
    other = Certs(directory)
    other.make_ca()
    return other


@pytest.fixture(scope="module")
def client_cert(certs, tmp_path_factory):
    """A client certificate (CN=a.test) issued by the session's CA."""
    directory = str(tmp_path_factory.mktemp("client"))
    key = os.path.join(directory, "client.key")
    csr = os.path.join(directory, "client.csr")
    leaf = os.path.join(directory, "client.pem")
    ext = os.path.join(directory, "client.ext")
    with open(ext, "w") as handle:
        handle.write("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    _run([OPENSSL, "req", "-new", "-nodes", "-newkey", "rsa:2048", "-keyout", key, "-out", csr,
          "-subj", "/CN=portico client"], directory)
    _run([OPENSSL, "x509", "-req", "-in", csr, "-CA", certs.ca, "-CAkey", certs.ca_key,
          "-set_serial", "4242", "-days", "30", "-out", leaf, "-extfile", ext], directory)
    return leaf, key


def serve(tmp_path, body):
    return start_portico(str(tmp_path), body, 1, mime=False)


def error_log(tmp_path):
    path = os.path.join(str(tmp_path), "portico-error.log")
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def get(server, target, headers=None):
    return server.request("GET", target, headers=headers)


def location(backend_port, extra="", upstream_block="", target=None):
    target = target or "https://127.0.0.1:%d" % backend_port
    return """
    %s
    server {
        listen 127.0.0.1:@PORT@;
        location / {
            proxy_pass %s;
            %s
        }
    }
""" % (upstream_block, target, extra)


def test_body_and_post_through_tls(tmp_path, backend):
    p = serve(tmp_path, location(backend.port))
    try:
        big = get(p, "/big/300000")
        assert big.status == 200
        assert hashlib.sha256(big.body).hexdigest() == hashlib.sha256(pattern(300000)).hexdigest()
        data = os.urandom(200000)
        posted = p.request("POST", "/post", body=data)
        assert posted.status == 200
        assert posted.body.decode() == hashlib.sha256(data).hexdigest()
    finally:
        p.stop()
    assert backend.accepted, "the backend saw no TLS connection"


def test_sni_follows_proxy_ssl_server_name(tmp_path, backend):
    body = location(backend.port, target="https://localhost:%d" % backend.port) + """
    server {
        listen 127.0.0.1:@PORT2@;
        location / {
            proxy_pass https://localhost:%d;
            proxy_ssl_server_name on;
        }
        location /named/ {
            proxy_pass https://localhost:%d/;
            proxy_ssl_server_name on;
            proxy_ssl_name a.test:8443;
        }
        location /ip/ {
            proxy_pass https://127.0.0.1:%d/;
            proxy_ssl_server_name on;
        }
    }
""" % (backend.port, backend.port, backend.port)
    p = start_portico(str(tmp_path), body, 2, mime=False)
    try:
        off = get(p, "/")
        assert off.status == 200 and b" sni=- " in off.body, off.body
        on = p.request("GET", "/", port_index=1)
        assert on.status == 200 and b" sni=localhost " in on.body, on.body
        named = p.request("GET", "/named/", port_index=1)
        assert b" sni=a.test " in named.body, named.body  # the port is stripped
        ip = p.request("GET", "/ip/", port_index=1)
        assert b" sni=- " in ip.body, ip.body  # RFC 6066: no IP literal as SNI
        host = p.request("GET", "/host", port_index=1)
        assert host.body == b"localhost:%d" % backend.port  # $proxy_host keeps a non-443 port
    finally:
        p.stop()


def test_https_in_a_proxy_pass_with_variables(tmp_path, backend):
    # The scheme is known per request: https:// speaks TLS (the location's proxy_ssl_* apply,
    # the name for SNI is the URL's host, an upstream block's name), http:// does not.
    body = """
    upstream tls.up { server 127.0.0.1:%d; }
    server {
        listen 127.0.0.1:@PORT@;
        location / {
            proxy_pass $arg_s://$arg_h;
            proxy_ssl_server_name on;
        }
        location /host { return 200 "unused"; }
    }
""" % backend.port
    p = serve(tmp_path, body)
    try:
        direct = get(p, "/?s=https&h=127.0.0.1:%d" % backend.port)
        assert direct.status == 200 and b" sni=- " in direct.body, direct.body
        named = get(p, "/?s=https&h=tls.up")
        assert named.status == 200 and b" sni=tls.up " in named.body, named.body
        plain = get(p, "/?s=http&h=127.0.0.1:%d" % backend.port)  # HTTP to a TLS port
        assert plain.status in (400, 502), plain.status
        assert get(p, "/?s=ftp&h=x").status == 500  # nginx's "invalid URL prefix"
    finally:
        p.stop()
    assert 'invalid URL prefix in "ftp://x"' in error_log(tmp_path)


def test_verify_with_the_right_ca(tmp_path, backend, certs):
    extra = """proxy_ssl_verify on; proxy_ssl_trusted_certificate %s;
               proxy_ssl_name localhost;""" % certs.ca
    p = serve(tmp_path, location(backend.port, extra))
    try:
        answer = get(p, "/")
        assert answer.status == 200, error_log(tmp_path)
    finally:
        p.stop()


def test_verify_with_a_wrong_ca_is_502(tmp_path, backend, other_ca):
    extra = "proxy_ssl_verify on; proxy_ssl_trusted_certificate %s;" % other_ca.ca
    p = serve(tmp_path, location(backend.port, extra))
    try:
        answer = get(p, "/")
        assert answer.status == 502
    finally:
        p.stop()
    log = error_log(tmp_path)
    assert ("upstream SSL certificate verify error: (19:self-signed certificate in certificate chain) "
            "while SSL handshaking to upstream") in log, log


def test_verify_name_mismatch_is_502(tmp_path, backend, certs):
    extra = """proxy_ssl_verify on; proxy_ssl_trusted_certificate %s;
               proxy_ssl_name b.test;""" % certs.ca
    p = serve(tmp_path, location(backend.port, extra))
    try:
        assert get(p, "/").status == 502
    finally:
        p.stop()
    log = error_log(tmp_path)
    assert ('upstream SSL certificate does not match "b.test" while SSL handshaking to upstream'
            in log), log


def test_client_certificate(tmp_path, certs, client_cert):
    strict = TlsBackend(certs.chain("localhost", "rsa"), certs.key("localhost", "rsa"),
                        client_ca=certs.ca)
    chain, key = client_cert
    body = location(strict.port, "proxy_ssl_certificate %s; proxy_ssl_certificate_key %s;"
                    % (chain, key))
    body += """
    server {
        listen 127.0.0.1:@PORT2@;
        location / { proxy_pass https://127.0.0.1:%d; }
    }
""" % strict.port
    p = start_portico(str(tmp_path), body, 2, mime=False)
    try:
        answer = get(p, "/")
        assert answer.status == 200, error_log(tmp_path)
        assert b" cert=portico client" in answer.body, answer.body
        without = p.request("GET", "/", port_index=1)
        assert without.status == 502  # the backend refused the handshake
    finally:
        p.stop()
        strict.close()
    # TLS 1.3: the client's handshake is over before the server judges its certificate, so
    # the refusal comes after it: the alert read with the response, as nginx logs it — or,
    # when the server's close overtakes the request (a slow run), a reset of the write.
    log = error_log(tmp_path)
    assert ("SSL_read() failed (SSL: " in log and "alert certificate required" in log) or \
        "SSL_write() failed (104: Connection reset by peer) while sending request to upstream" \
        in log, log


def test_client_certificate_with_variables_is_loaded_per_request(tmp_path, certs, client_cert):
    # nginx 1.21+: proxy_ssl_certificate with variables names a file per request (relative to
    # the configuration's directory); an empty name sends none; one that cannot be loaded is
    # a 500 with nginx's "cannot load certificate" in the log.
    strict = TlsBackend(certs.chain("localhost", "rsa"), certs.key("localhost", "rsa"),
                        client_ca=certs.ca)
    chain, key = client_cert
    conf_dir = os.path.join(str(tmp_path), "portico")
    os.makedirs(conf_dir, exist_ok=True)
    shutil.copy(chain, os.path.join(conf_dir, "c1.pem"))
    shutil.copy(key, os.path.join(conf_dir, "c1.key"))
    body = location(strict.port, "proxy_ssl_certificate $arg_c; "
                                 "proxy_ssl_certificate_key $arg_k; "
                                 "proxy_ssl_session_reuse off;")
    p = start_portico(str(tmp_path), body, 1, mime=False)
    try:
        relative = get(p, "/?c=c1.pem&k=c1.key")
        assert relative.status == 200, error_log(tmp_path)
        assert b" cert=portico client" in relative.body, relative.body
        absolute = get(p, "/?c=%s&k=%s" % (chain, key))
        assert absolute.status == 200 and b" cert=portico client" in absolute.body
        assert get(p, "/?c=").status == 502  # no certificate: the backend refuses the handshake
        assert get(p, "/?c=missing.pem&k=c1.key").status == 500
    finally:
        p.stop()
        strict.close()
    log = error_log(tmp_path)
    assert 'cannot load certificate "%s/missing.pem"' % conf_dir in log, log


def test_keepalive_reuses_one_tls_connection(tmp_path, backend):
    upstream = "upstream tls { server 127.0.0.1:%d; keepalive 4; }" % backend.port
    extra = 'proxy_http_version 1.1; proxy_set_header Connection "";'
    p = serve(tmp_path, location(backend.port, extra, upstream, target="https://tls"))
    try:
        ids = set()
        for _ in range(5):
            answer = get(p, "/")
            assert answer.status == 200
            ids.add(answer.body.split(b" ")[0])
        assert len(ids) == 1, ids
    finally:
        p.stop()
    assert len(backend.accepted) == 1, backend.accepted


def test_session_reuse_on_a_new_connection(tmp_path, backend):
    # Without keep-alive every request is a new connection: the second resumes the first's
    # session (proxy_ssl_session_reuse on, the default), unless it is off.
    body = location(backend.port) + """
    server {
        listen 127.0.0.1:@PORT2@;
        location / { proxy_pass https://127.0.0.1:%d; proxy_ssl_session_reuse off; }
    }
""" % backend.port
    p = start_portico(str(tmp_path), body, 2, mime=False)
    try:
        first = get(p, "/")
        second = get(p, "/")
        third = get(p, "/")
        assert b" reused=0 " in first.body, first.body
        assert b" reused=1 " in second.body, second.body
        assert b" reused=1 " in third.body, third.body
        off = [p.request("GET", "/", port_index=1) for _ in range(2)]
        assert all(b" reused=0 " in a.body for a in off), [a.body for a in off]
    finally:
        p.stop()


def test_plain_backend_is_502_quickly(tmp_path):
    plain = PlainBackend()
    p = serve(tmp_path, location(plain.port, "proxy_connect_timeout 20s;"))
    try:
        started = time.monotonic()
        answer = get(p, "/")
        assert answer.status == 502
        assert time.monotonic() - started < 10  # an error, not the 20 s timeout
    finally:
        p.stop()
        plain.close()
    log = error_log(tmp_path)
    assert "SSL_do_handshake() failed" in log and "while SSL handshaking to upstream" in log, log


def test_next_upstream_after_a_handshake_failure(tmp_path, backend):
    plain = PlainBackend()
    upstream = "upstream mixed { server 127.0.0.1:%d; server 127.0.0.1:%d; }" % (
        plain.port, backend.port)
    p = serve(tmp_path, location(backend.port, "", upstream, target="https://mixed"))
    try:
        for _ in range(4):
            assert get(p, "/").status == 200  # the failed peer is passed over
    finally:
        p.stop()
        plain.close()


def test_bad_directives_are_refused(tmp_path, certs):
    cases = [
        ("proxy_ssl_verify on;", "no proxy_ssl_trusted_certificate for proxy_ssl_verify"),
        ("proxy_ssl_certificate %s;" % certs.chain("a", "rsa"),
         'no "proxy_ssl_certificate_key" is defined for certificate'),
        ("proxy_ssl_protocols TLSv9;", 'invalid value "TLSv9"'),
        ("proxy_ssl_verify_depth x;", 'invalid number'),
    ]
    for directive, message in cases:
        conf = os.path.join(str(tmp_path), "bad.conf")
        with open(conf, "w") as handle:
            handle.write("events {}\nhttp { server { listen 127.0.0.1:1; location / {\n"
                         "proxy_pass https://127.0.0.1:9; %s } } }\n" % directive)
        import subprocess
        from servers import portico_binary
        result = subprocess.run([portico_binary(), "-t", "-c", conf], capture_output=True,
                                timeout=20)
        assert result.returncode != 0, directive
        assert message in result.stderr.decode(), (directive, result.stderr)


@pytest.mark.parametrize("case", ["wrong_ca", "plain"])
def test_502_cases_match_nginx(tmp_path, other_ca, certs, case):
    """Debian's nginx answers the same 502 and logs the same line."""
    if case == "wrong_ca":
        up = TlsBackend(certs.chain("localhost", "rsa"), certs.key("localhost", "rsa"))
        extra = "proxy_ssl_verify on; proxy_ssl_trusted_certificate %s;" % other_ca.ca
        line = "upstream SSL certificate verify error: (19:self-signed certificate in certificate chain)"
    else:
        up = PlainBackend()
        extra = ""
        line = "while SSL handshaking to upstream"
    body = location(up.port, extra)
    results = {}
    try:
        for name, start in (("nginx", start_nginx), ("portico", start_portico)):
            workdir = os.path.join(str(tmp_path), name)
            os.makedirs(workdir)
            server = start(workdir, body, 1, mime=False)
            try:
                answer = get(server, "/")
            finally:
                server.stop()
            log_path = os.path.join(workdir, "%s-error.log" % name)
            with open(log_path, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
            print(name, text)
            results[name] = (answer.status, line in text)
    finally:
        up.close()
    assert results["portico"] == results["nginx"] == (502, True), results


def test_suwsgi_to_real_uwsgi(tmp_path, certs):
    """uwsgi_pass suwsgi://: the uwsgi packet over TLS to uWSGI's --suwsgi-socket, with SNI
    and verification by uwsgi_ssl_* (the proxy_ssl_* rows under uwsgi_ names)."""
    import subprocess
    from servers import free_port
    from uwsgi_support import APPS, UWSGI, UWSGI_PARAMS, needs_nginx_and_uwsgi  # noqa: F401
    from uwsgi_support import stop as uwsgi_stop, wait_listening
    if not (os.access(UWSGI, os.X_OK) and os.path.exists(UWSGI_PARAMS)):
        pytest.skip("needs uwsgi (+ uwsgi-plugin-python3) and nginx's uwsgi_params")
    port = free_port()
    log = os.path.join(str(tmp_path), "uwsgi.log")
    proc = subprocess.Popen(
        [UWSGI, "--plugin", "python3", "--suwsgi-socket",
         "127.0.0.1:%d,%s,%s" % (port, certs.chain("localhost", "rsa"),
                                 certs.key("localhost", "rsa")),
         "--wsgi-file", os.path.join(APPS, "uwsgi_pass_app.py"), "--master", "--processes", "1",
         "--need-app", "--die-on-term", "--logto", log],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        cwd=str(tmp_path))
    try:
        wait_listening(proc, [(socket.AF_INET, ("127.0.0.1", port))], log)
        body = """
    server {
        listen 127.0.0.1:@PORT@;
        location / {
            include %s;
            uwsgi_pass suwsgi://127.0.0.1:%d;
            uwsgi_ssl_verify on;
            uwsgi_ssl_trusted_certificate %s;
            uwsgi_ssl_name localhost;
        }
        location /var/ {
            include %s;
            uwsgi_pass suwsgi://$arg_b;
            uwsgi_ssl_verify on;
            uwsgi_ssl_trusted_certificate %s;
            uwsgi_ssl_name localhost;
        }
        location /value/ {
            include %s;
            uwsgi_pass $arg_b;
            uwsgi_ssl_verify on;
            uwsgi_ssl_trusted_certificate %s;
            uwsgi_ssl_name localhost;
        }
    }
    server {
        listen 127.0.0.1:@PORT2@;
        location / {
            include %s;
            uwsgi_pass suwsgi://127.0.0.1:%d;
            uwsgi_ssl_verify on;
            uwsgi_ssl_trusted_certificate %s;
            uwsgi_ssl_name b.test;
        }
    }
""" % (UWSGI_PARAMS, port, certs.ca, UWSGI_PARAMS, certs.ca, UWSGI_PARAMS, certs.ca,
       UWSGI_PARAMS, port, certs.ca)
        p = start_portico(str(tmp_path), body, 2, mime=False)
        try:
            answer = get(p, "/hello")
            assert answer.status == 200, error_log(tmp_path)
            # With variables: the scheme written, or carried by the value.
            for target in ("/var/x?b=127.0.0.1:%d" % port,
                           "/value/x?b=suwsgi://127.0.0.1:%d" % port):
                answer = get(p, target)
                assert answer.status == 200, (target, error_log(tmp_path))
            refused = p.request("GET", "/hello", port_index=1)
            assert refused.status == 502
        finally:
            p.stop()
    finally:
        uwsgi_stop(proc)
    log_text = error_log(tmp_path)
    assert 'upstream SSL certificate does not match "b.test"' in log_text, log_text
    assert 'upstream: "suwsgi://127.0.0.1:%d"' % port in log_text, log_text
