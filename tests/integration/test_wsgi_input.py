"""wsgi.input: request bodies framed by Content-Length or chunked, read every PEP 3333 way."""

import hashlib
import json
import random
import time

import pytest

from http_client import build_request
from wsgi_support import start_wsgi

LIMIT = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def app(module_launch):
    return start_wsgi(module_launch, args=["--limit-request-body", "16m"])


def _post(server, target, body, headers=None, timeout=10.0):
    with server.connect(timeout=timeout) as conn:
        return conn.request("POST", target, headers=headers, body=body)


def test_content_length_body_is_echoed(app):
    response = _post(app, "/echo", b"hello body", headers=[("Content-Type", "text/x-test")])
    assert response.status == 200
    assert response.body == b"hello body"
    assert response.header("Content-Type") == "text/x-test"


def test_chunked_body_with_trailers(app):
    raw = (b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
           b"Content-Type: text/plain\r\n\r\n"
           b"5\r\nhello\r\n"
           b"6;ext=1\r\n world\r\n"
           b"0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n")
    with app.connect() as conn:
        conn.send(raw)
        response = conn.read_response()
        assert response.status == 200, response
        assert response.body == b"hello world"
        # The connection stays usable: the trailers were consumed, not taken for a request.
        follow = conn.request("GET", "/hello?i=after-trailers")
    assert follow.status == 200
    assert follow.body == b"hello after-trailers\n"


def test_chunked_body_read_in_chunks(app):
    payload = bytes(range(256)) * 40
    pieces = [payload[i:i + 777] for i in range(0, len(payload), 777)]
    raw = b"POST /echo-chunks?size=1000 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
    raw += b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    with app.connect() as conn:
        conn.send(raw)
        response = conn.read_response()
    assert response.status == 200, response
    assert response.body == payload
    assert int(response.header("X-Max-Chunk")) <= 1000


def test_one_megabyte_upload_is_byte_exact(app):
    payload = random.Random(7).randbytes(1024 * 1024)
    response = _post(app, "/echo", payload)
    assert response.status == 200
    assert len(response.body) == len(payload)
    assert response.body == payload


@pytest.mark.time_budget(20)
def test_five_megabyte_upload_streamed(app):
    payload = random.Random(5).randbytes(5 * 1024 * 1024)
    with app.connect(timeout=10.0) as conn:
        conn.send(b"POST /digest HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % len(payload))
        for offset in range(0, len(payload), 256 * 1024):
            conn.send(payload[offset:offset + 256 * 1024])
        response = conn.read_response()
    assert response.status == 200, response
    result = json.loads(response.body)
    assert result["length"] == len(payload)
    assert result["sha256"] == hashlib.sha256(payload).hexdigest()
    assert result["content_length"] == str(len(payload))


def test_body_over_limit_is_413_without_running_app(app):
    with app.connect() as conn:
        conn.send(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % (LIMIT + 1))
        response = conn.read_response()
    assert response.status == 413


LINES = b"first line\nsecond\r\n\nfourth after an empty line\nno newline at the end"


@pytest.mark.parametrize("route", ["/echo-lines", "/echo-readlines", "/echo-iter"])
def test_line_reading(app, route):
    response = _post(app, route, LINES)
    assert response.status == 200
    assert response.body == LINES
    assert response.header("X-Lines") == "5"
    if route == "/echo-lines":
        assert response.header("X-Unterminated") == "0"


def test_readline_over_a_large_body(app):
    payload = b"".join(b"line %06d %s\n" % (i, b"z" * (i % 300)) for i in range(5000))
    response = _post(app, "/echo-lines", payload)
    assert response.status == 200
    assert response.body == payload
    assert response.header("X-Lines") == "5000"
    assert response.header("X-Unterminated") == "0"


@pytest.mark.parametrize("size", [1, 7, 1000, 65536])
def test_read_n_chunks(app, size):
    payload = random.Random(size).randbytes(20000)
    response = _post(app, "/echo-chunks?size=%d" % size, payload)
    assert response.status == 200
    assert response.body == payload
    assert 0 < int(response.header("X-Max-Chunk")) <= size
    assert response.header("X-Read-After-End") == "0"
    if size == 1:
        assert response.header("X-Chunks") == "20000"


def test_empty_body_read_returns_empty(app):
    response = _post(app, "/echo", b"", headers=[("Content-Length", "0")])
    assert response.status == 200
    assert response.body == b""
    with app.connect() as conn:
        response = conn.request("GET", "/echo")
    assert response.status == 200
    assert response.body == b""


@pytest.mark.parametrize("route", ["/echo-lines", "/echo-iter", "/echo-chunks?size=10"])
def test_empty_body_other_readers(app, route):
    with app.connect() as conn:
        response = conn.request("GET", route)
    assert response.status == 200
    assert response.body == b""


def test_expect_continue_then_body(app):
    with app.connect() as conn:
        conn.send(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        interim = conn.read_response(return_interim=True)
        assert interim.status == 100
        conn.send(b"abcde")
        response = conn.read_response()
    assert response.status == 200
    assert response.body == b"abcde"


def test_body_sent_slowly_in_pieces(app):
    payload = b"slow-body-" * 100
    with app.connect() as conn:
        conn.send(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % len(payload))
        for offset in range(0, len(payload), 250):
            conn.send(payload[offset:offset + 250])
            time.sleep(0.05)
        response = conn.read_response()
    assert response.status == 200
    assert response.body == payload


def test_unread_body_does_not_corrupt_next_request(app):
    # The app ignores the body (/hello never reads wsgi.input); the next request must still parse.
    with app.connect() as conn:
        conn.send(build_request("POST", "/hello?i=1", body=b"ignored " * 1000)
                  + build_request("GET", "/hello?i=2"))
        first = conn.read_response()
        second = conn.read_response()
    assert (first.status, first.body) == (200, b"hello 1\n")
    assert (second.status, second.body) == (200, b"hello 2\n")
