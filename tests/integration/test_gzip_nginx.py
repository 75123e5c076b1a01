"""The gzip negotiation table (tests/data/gzip_nginx_cases.tsv) checked against Debian's nginx.

The same table drives portico's decision in tests/unit/gzip_filter_test.cpp, so the two together
say: portico decides as nginx 1.22 does. This file keeps the table honest (a row nginx no longer
answers so fails here). Files and locations must match the unit test's mirror of them.
"""

import gzip
import http.server
import os
import threading
import urllib.parse

import pytest

from http_client import Connection
from servers import NginxServer, free_port

TABLE = os.path.join(os.path.dirname(__file__), "..", "data", "gzip_nginx_cases.tsv")
TEXT = b"hello portico gzip " * 200  # 3800 bytes, as the unit test's mirror

FILES = {
    "a.txt": TEXT, "a.html": TEXT, "a.css": TEXT, "a.bin": TEXT,
    "small.txt": b"tiny", "empty.txt": b"",
}


def read_table():
    rows = []
    with open(TABLE) as table:
        for line in table:
            if not line.strip() or line.startswith("#"):
                continue
            method, target, version, headers, expected = line.rstrip("\n").split("\t")
            pairs = [] if headers == "-" else [tuple(h.split(": ", 1)) for h in headers.split(" | ")]
            rows.append((method, target, version, pairs, expected.split()))
    return rows


ROWS = read_table()


class Backend(http.server.BaseHTTPRequestHandler):
    """Answers 3800 bytes with the status and headers named in the query string."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        query = urllib.parse.parse_qsl(urllib.parse.urlparse(self.path).query,
                                       keep_blank_values=True)
        status = int(dict(query).get("status", "200"))
        self.send_response_only(status)
        for name, value in query:
            if name != "status":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(TEXT)))
        self.end_headers()
        self.wfile.write(TEXT)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def gzip_nginx(tmp_path_factory):
    if NginxServer.binary() is None:
        pytest.skip("nginx is not installed")
    work = str(tmp_path_factory.mktemp("gzip-nginx"))
    html = os.path.join(work, "html")
    os.makedirs(html)
    for name, data in FILES.items():
        with open(os.path.join(html, name), "wb") as handle:
            handle.write(data)
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Backend)
    thread = threading.Thread(target=backend.serve_forever, daemon=True)
    thread.start()
    up = "http://127.0.0.1:%d/" % backend.server_address[1]
    block = """
        root %(html)s;
        gzip on;
        gzip_types text/plain text/css;
        gzip_min_length 100;
        gzip_vary on;
        location /dis/ { alias %(html)s/; gzip_disable "curl" msie6; }
        location /v10/ { alias %(html)s/; gzip_http_version 1.0; }
        location /nlm/ { alias %(html)s/; gzip_proxied no_last_modified; }
        location /netag/ { alias %(html)s/; gzip_proxied no_etag; }
        location /up-any/ { gzip_proxied any; proxy_pass %(up)s; }
        location /up-off/ { proxy_pass %(up)s; }
        location /up-exp/ { gzip_proxied expired; proxy_pass %(up)s; }
        location /up-cache/ { gzip_proxied no-cache no-store private; proxy_pass %(up)s; }
        location /up-nlm/ { gzip_proxied no_last_modified; proxy_pass %(up)s; }
        location /up-netag/ { gzip_proxied no_etag; proxy_pass %(up)s; }
        location /up-auth/ { gzip_proxied auth; proxy_pass %(up)s; }
    """ % {"html": html, "up": up}
    server = NginxServer(work, block).start()
    yield server
    server.stop()
    backend.shutdown()
    backend.server_close()


def ask(server, method, target, version, headers):
    conn = Connection.tcp("127.0.0.1", server.port, 5.0)
    try:
        lines = ["%s %s HTTP/%s" % (method, target, version), "Host: localhost",
                 "Connection: close"]
        lines += ["%s: %s" % pair for pair in headers]
        conn.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        return conn.read_response(method)
    finally:
        conn.close()


def etag_form(response):
    value = response.header("ETag")
    if value is None:
        return "none"
    return "weak" if value.startswith("W/") else "strong"


@pytest.mark.parametrize("method,target,version,headers,expected", ROWS,
                         ids=["%s %s %s %s" % (r[0], r[1], r[2], r[3]) for r in ROWS])
def test_nginx_answers_as_recorded(gzip_nginx, method, target, version, headers, expected):
    response = ask(gzip_nginx, method, target, version, headers)
    got = [
        str(response.status),
        "gzip" if response.header("Content-Encoding") == "gzip" else "-",
        "vary" if "Accept-Encoding" in response.header_all("Vary") else "-",
        etag_form(response),
        "length" if response.has_header("Content-Length") else "-",
        "ranges" if response.has_header("Accept-Ranges") else "-",
    ]
    assert got == expected
    if got[1] == "gzip" and method == "GET" and response.status == 200:
        assert gzip.decompress(response.body) == TEXT
