"""add_trailer and chunked_transfer_encoding against Debian's nginx 1.22, compared on the wire:
a response with a trailer that applies is chunked on HTTP/1.1 even when its length is known
(no Content-Length), the trailer fields follow the last chunk (empty values left out,
$sent_http_* and $sent_trailer_* as nginx evaluates them), and nothing of that on HTTP/1.0, for
HEAD, or where chunked_transfer_encoding is off (which makes an unknown length close-delimited
instead)."""

import re

import pytest

from nginx_diff import answers_of_both, prepare_tree, refusals, start_portico
from test_proxy_parity import raw

CONF = r"""
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        root @DIR@/www;
        add_trailer X-Host $host;
        add_trailer X-Always "always $status" always;
        add_trailer X-Empty '';
        add_trailer X-Type $sent_http_content_type;
        add_trailer X-Again "again $sent_trailer_x_host";
        location /t/ { error_page 404 /e404.txt; }  # a page unsigned by the server's name
        location /header/ { add_header X-Host header; }
        location /own/ { add_trailer X-Own $uri; }
        location /off/ { chunked_transfer_encoding off; }
        location /text/ { return 200 "text body"; }
        location /proxy/ {
            proxy_pass http://127.0.0.1:@PORT2@/t/;
            add_trailer X-Length $upstream_response_length;
        }
        location /gz/ {
            gzip on; gzip_min_length 0; gzip_types text/plain;
            chunked_transfer_encoding off;
            add_trailer X-Gz gz;
        }
        location /gzchunked/ {
            gzip on; gzip_min_length 0; gzip_types text/plain;
        }
    }
    server {
        listen 127.0.0.1:@PORT2@;
        root @DIR@/www;
    }
"""

FILES = {"www/t/a.txt": "SEE-THIS", "www/e404.txt": "not here\n", "www/header/a.txt": "h", "www/own/a.txt": "own",
         "www/off/a.txt": "off", "www/gz/a.txt": "zip " * 50, "www/gzchunked/a.txt": "zip " * 50}

REQUESTS = [
    b"GET /t/a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    b"GET /t/missing HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    b"GET /t/a.txt HTTP/1.0\r\nHost: localhost\r\n\r\n",
    b"HEAD /t/a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    b"GET /header/a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    b"GET /own/a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    b"GET /off/a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    b"GET /text/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    b"GET /proxy/a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    b"GET /gz/a.txt HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n\r\n",
    b"GET /gzchunked/a.txt HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n"
    b"Connection: close\r\n\r\n",
]

# What is compared of the head: the status line and the framing (the rest is covered by the
# other differential tests).
FRAMING = re.compile(rb"^(HTTP/1\.1 \d+|Content-Length|Transfer-Encoding|Connection)", re.I)


def dechunk(body):
    """(data, trailer section) of a chunked body; chunk boundaries are the server's own."""
    data = b""
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return data, body
        data += body[:size]
        assert body[size:size + 2] == b"\r\n"
        body = body[size + 2:]


def summarize(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if FRAMING.match(line)]
    if b"Transfer-Encoding: chunked" in lines:
        return lines, dechunk(body)
    return lines, body


def answers(served):
    return [summarize(raw(served.ports[0], data)) for data in REQUESTS]


def test_add_trailer_and_chunked_transfer_encoding_as_nginx(tmp_path):
    prepare_tree(str(tmp_path), FILES)
    ours, theirs = answers_of_both(str(tmp_path), CONF, 2, answers)
    for data, mine, expected in zip(REQUESTS, ours, theirs):
        assert mine == expected, data
    # The first answer, spelled out: chunked, then the trailers after the last chunk.
    assert ours[0][1] == (b"SEE-THIS", b"X-Host: localhost\r\nX-Always: always 200\r\n"
                          b"X-Type: text/plain\r\nX-Again: again localhost\r\n\r\n")


@pytest.mark.parametrize("text", ["add_trailer X;", "add_trailer X y sometimes;",
                                  "chunked_transfer_encoding maybe;"])
def test_bad_add_trailer_is_refused_as_nginx(tmp_path, text):
    ours, nginx = refusals(tmp_path, text)
    assert ours == nginx


SPLIT = r"""
    server {
        listen 127.0.0.1:@PORT@;
        location / {
            add_header X-Uri "u $uri";
            add_trailer X-Uri "t $uri";
            return 302 "http://example.com$uri";
        }
        location /ok/ { add_header X-Uri "u $uri"; add_trailer X-Uri "t $uri"; return 200 "ok"; }
    }
"""


def test_a_decoded_line_break_never_splits_the_response(tmp_path):
    # nginx 1.22 writes `$uri` with its decoded CR LF as they are (a header of the client's
    # choosing); portico writes them as spaces, in the head and in the trailers.
    prepare_tree(str(tmp_path), {})
    portico = start_portico(str(tmp_path), SPLIT, 1)
    try:
        for target in (b"/a%0d%0aSet-Cookie:%20x=1", b"/ok/%0aSet-Cookie:%20x=1",
                       b"/ok/%00Set-Cookie:%20x=1"):
            answer = raw(portico.ports[0], b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\n"
                                                b"Connection: close\r\n\r\n")
            assert b"\nSet-Cookie" not in answer and b"\rSet-Cookie" not in answer, answer
            assert b"\0" not in answer, answer
            assert answer.startswith((b"HTTP/1.1 302 ", b"HTTP/1.1 200 ")), answer
        answer = raw(portico.ports[0], b"GET /ok/plain HTTP/1.1\r\nHost: localhost\r\n"
                                        b"Connection: close\r\n\r\n")
        assert b"\r\nX-Uri: u /ok/plain\r\n" in answer and b"\r\nX-Uri: t /ok/plain\r\n" in answer
    finally:
        portico.stop()
