"""nginx behaviours around proxy_pass that nginx-tests exercise, checked here against Debian's
nginx where both can run the same configuration:

- a client that closes its side while the upstream is still working: the upstream connection
  is closed at once, the request logged 499 (limit_conn.t's "passed");
- `rewrite ... break` inside a proxied location: the whole changed URI goes to the upstream,
  not proxy_pass's URI part (rewrite.t's "valid_location reset");
- error_page taking over `return 302 URL` keeps the Location (rewrite.t);
- `listen ... rcvbuf= sndbuf=` set on the listening socket (proxy_max_temp_file_size.t uses
  them), and their error messages;
- `$arg_` with an empty name (http_variables.t)."""

import os
import re
import socket
import subprocess
import threading
import time

import pytest

from nginx_diff import start_nginx, start_portico, prepare_tree
from servers import close_listener, free_port


class HoldingBackend:
    """Accepts connections, reads a request head, records it, and never answers; records when
    each connection is closed by the proxy."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.heads, self.closed = [], []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(20)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                more = conn.recv(65536)
                if not more:
                    return
                data += more
            self.heads.append(data.split(b"\r\n")[0])
            while conn.recv(65536):  # until the proxy closes its side
                pass
            self.closed.append(time.monotonic())
        except OSError:
            self.closed.append(time.monotonic())
        finally:
            conn.close()

    def close(self):
        close_listener(self.sock)


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def raw(port, data, read=True):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        if not read:
            return b""
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


@pytest.mark.parametrize("server_kind", ["nginx", "portico"])
def test_client_close_lets_the_upstream_go_and_logs_499(tmp_path, server_kind):
    backend = HoldingBackend()
    workdir = str(tmp_path)
    prepare_tree(workdir, {"www/index.html": "x"})
    prefix = workdir if server_kind == "nginx" else os.path.join(workdir, "portico")
    os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
    start = start_nginx if server_kind == "nginx" else start_portico
    served = start(workdir, """
        limit_conn_zone $binary_remote_addr zone=one:1m;
        log_format st "$status $request";
        server { listen 127.0.0.1:@PORT@;
                 access_log logs/st.log st;
                 location / { proxy_pass http://127.0.0.1:%d; limit_conn one 1; } }
        """ % backend.port, 1)
    try:
        port = served.ports[0]
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /held HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert wait_until(lambda: len(backend.heads) == 1)
        # While the first request holds the zone's only slot, a second is refused.
        assert raw(port, b"GET /other HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 503")
        s.shutdown(socket.SHUT_WR)  # the client closes its side, still able to read
        assert wait_until(lambda: len(backend.closed) == 1), "the upstream was kept"
        # The proxy closed the client's connection without an answer...
        s.settimeout(10)
        assert s.recv(65536) == b""
        s.close()
        # ...and the zone's slot is free again: the next request reaches the upstream.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as again:
            again.sendall(b"GET /again HTTP/1.0\r\n\r\n")
            assert wait_until(lambda: len(backend.heads) == 2)
    finally:
        served.stop()
        backend.close()
    with open(os.path.join(prefix, "logs", "st.log")) as handle:
        lines = handle.read().splitlines()
    assert "499 GET /held HTTP/1.1" in lines, lines


def test_rewrite_break_passes_the_whole_changed_uri(tmp_path):
    seen = []

    def backend_thread(sock):
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    more = conn.recv(65536)
                    if not more:
                        break
                    data += more
                seen.append(data.split(b"\r\n")[0].decode())
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    results = {}
    for kind, start in (("nginx", start_nginx), ("portico", start_portico)):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        threading.Thread(target=backend_thread, args=(sock,), daemon=True).start()
        seen.clear()
        workdir = str(tmp_path / kind)
        os.makedirs(workdir)
        prepare_tree(workdir, {"www/index.html": "x"})
        served = start(workdir, """
            server { listen 127.0.0.1:@PORT@;
                     location /break { rewrite ^ /changed?a=1; break;
                                       proxy_pass http://127.0.0.1:%d/part; }
                     location /flag { rewrite ^/flag(.*) /new$1 break;
                                      proxy_pass http://127.0.0.1:%d/part/; }
                     location /kept { proxy_pass http://127.0.0.1:%d/part; } }
            """ % ((sock.getsockname()[1],) * 3), 1)
        try:
            for target in ("/break/x", "/flag/y", "/kept/z"):
                assert raw(served.ports[0], b"GET %s HTTP/1.0\r\n\r\n" % target.encode()).endswith(b"ok")
        finally:
            served.stop()
            close_listener(sock)
        results[kind] = list(seen)
    assert results["portico"] == results["nginx"]
    assert results["portico"] == ["GET /changed?a=1 HTTP/1.0", "GET /new/y HTTP/1.0",
                                  "GET /part/z HTTP/1.0"]


def test_error_page_over_a_return_302_keeps_its_location(tmp_path):
    heads = {}
    for kind, start in (("nginx", start_nginx), ("portico", start_portico)):
        workdir = str(tmp_path / kind)
        os.makedirs(workdir)
        prepare_tree(workdir, {"www/index.html": "x"})
        served = start(workdir, """
            server { listen 127.0.0.1:@PORT@;
                     location /text { return 200 "text"; }
                     location /e302 { error_page 302 /text; return 302 "http://example.com/to"; } }
            """, 1)
        try:
            out = raw(served.ports[0], b"GET /e302 HTTP/1.0\r\n\r\n")
        finally:
            served.stop()
        head, _, body = out.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        heads[kind] = (lines[0], [l for l in lines if l.lower().startswith(b"location:")], body)
    assert heads["portico"][1:] == heads["nginx"][1:]
    assert heads["portico"][0].startswith(b"HTTP/1.1 302 ")
    assert heads["portico"][1:] == ([b"Location: http://example.com/to"], b"text")


def test_listen_rcvbuf_and_sndbuf(tmp_path):
    workdir = str(tmp_path)
    prepare_tree(workdir, {"www/index.html": "x"})
    served = start_portico(workdir, """
        server { listen 127.0.0.1:@PORT@ rcvbuf=64k sndbuf=32k; location / { } }
        """, 1)
    try:
        port = served.ports[0]
        out = subprocess.run(["ss", "-ltmn", "sport = :%d" % port], capture_output=True,
                             text=True, timeout=10).stdout
    finally:
        served.stop()
    # The kernel doubles what setsockopt asks (socket(7)): rb and tb are 2 × the sizes.
    m = re.search(r"skmem:\(r\d+,rb(\d+),t\d+,tb(\d+)", out)
    assert m, out
    assert (int(m.group(1)), int(m.group(2))) == (2 * 65536, 2 * 32768)
    conf = tmp_path / "bad.conf"
    for param, message in (("rcvbuf=x", 'invalid rcvbuf "rcvbuf=x"'),
                           ("sndbuf=", 'invalid sndbuf "sndbuf="')):
        conf.write_text("events {} http { server { listen 127.0.0.1:%d %s; } }"
                        % (free_port(), param))
        for binary in (os.environ.get("PORTICO_BIN", "portico"), "/usr/sbin/nginx"):
            if binary.endswith("nginx") and not os.access(binary, os.X_OK):
                continue
            run = subprocess.run([binary, "-t", "-c", str(conf)], capture_output=True,
                                 text=True, timeout=10)
            assert run.returncode != 0
            assert message in run.stderr, (binary, run.stderr)


def test_empty_arg_variable(tmp_path):
    bodies = {}
    for kind, start in (("nginx", start_nginx), ("portico", start_portico)):
        workdir = str(tmp_path / kind)
        os.makedirs(workdir)
        prepare_tree(workdir, {"www/index.html": "x"})
        served = start(workdir, """
            server { listen 127.0.0.1:@PORT@;
                     location / { return 200 "$arg_l:$arg_:"; } }
            """, 1)
        try:
            bodies[kind] = raw(served.ports[0], b"GET /?l=1&=e HTTP/1.0\r\n\r\n").partition(
                b"\r\n\r\n")[2]
        finally:
            served.stop()
    assert bodies["portico"] == bodies["nginx"] == b"1::"
