"""How portico frames what a WSGI app returns: lengths, chunking, HEAD, 204/304, headers, keep-alive."""

import pytest

from http_client import build_request
from wsgi_support import start_wsgi


@pytest.fixture(scope="module")
def app(module_launch):
    return start_wsgi(module_launch, args=["--keep-alive", "5"])


def test_one_item_list_gets_content_length(app):
    # /status returns [body] without a Content-Length of its own.
    with app.connect() as conn:
        response = conn.request("GET", "/status?code=200")
    assert response.status == 200
    assert response.body == b"status body 200\n"
    assert response.framing == "length"
    assert response.header("Content-Length") == str(len(response.body))
    assert response.header("Transfer-Encoding") is None


def test_app_content_length_is_kept(app):
    with app.connect() as conn:
        response = conn.request("GET", "/hello?i=7")
    assert response.header_all("Content-Length") == [str(len(b"hello 7\n"))]
    assert response.body == b"hello 7\n"


def test_reason_phrase_and_date(app):
    with app.connect() as conn:
        response = conn.request("GET", "/status?code=299")
    assert response.status == 299
    assert response.reason == "Custom Reason"
    assert response.header("Date")


def test_generator_is_chunked_on_http11(app):
    with app.connect() as conn:
        response = conn.request("GET", "/stream?n=5")
        assert response.status == 200
        assert response.framing == "chunked"
        assert response.header("Content-Length") is None
        assert response.body == b"".join(b"chunk %d\n" % i for i in range(5))
        # Still keep-alive after a chunked response.
        assert conn.request("GET", "/hello?i=next").body == b"hello next\n"


def test_generator_is_close_delimited_on_http10(app):
    with app.connect() as conn:
        response = conn.request("GET", "/stream?n=5", version="HTTP/1.0")
        assert response.status == 200
        assert response.framing == "close"
        assert response.header("Transfer-Encoding") is None
        assert response.body == b"".join(b"chunk %d\n" % i for i in range(5))


def test_empty_generator(app):
    with app.connect() as conn:
        response = conn.request("GET", "/stream?n=0")
        assert response.status == 200
        assert response.body == b""
        assert conn.request("GET", "/hello?i=after-empty").body == b"hello after-empty\n"


def test_large_generator_is_exact(app):
    with app.connect(timeout=10) as conn:
        response = conn.request("GET", "/large?mb=4")
    assert response.status == 200
    assert len(response.body) == 4 * 1024 * 1024
    assert response.body == b"L" * (4 * 1024 * 1024)


@pytest.mark.parametrize("route, body", [
    ("/write", b"written-1\nwritten-2\n"),
    ("/write-and-iter", b"from-write\nfrom-iter-1\nfrom-iter-2\n"),
])
def test_write_callable(app, route, body):
    with app.connect() as conn:
        response = conn.request("GET", route)
        assert response.status == 200
        assert response.body == body
        assert conn.request("GET", "/hello?i=w").body == b"hello w\n"


def test_head_runs_app_and_sends_no_body(app):
    with app.connect() as conn:
        got = conn.request("GET", "/head-check")
        head = conn.request("HEAD", "/head-check")
        assert head.status == 200
        assert head.header("X-Request-Method") == "HEAD"  # the app ran and saw HEAD
        assert head.body == b""
        assert head.header("Content-Length") == str(len(got.body))
        # No stray body bytes: the next response parses cleanly.
        assert conn.request("GET", "/hello?i=h").body == b"hello h\n"


@pytest.mark.parametrize("route", ["/stream?n=3", "/status?code=200", "/write-and-iter", "/large?mb=1"])
def test_head_on_streaming_and_list_routes(app, route):
    with app.connect() as conn:
        head = conn.request("HEAD", route)
        assert head.status == 200
        assert conn.request("GET", "/hello?i=after-head").body == b"hello after-head\n"


@pytest.mark.parametrize("code", [204, 304])
def test_no_body_statuses(app, code):
    with app.connect() as conn:
        # The app returns a body anyway: it must not reach the wire.
        response = conn.request("GET", "/status?code=%d" % code)
        assert response.status == code
        assert response.header("Transfer-Encoding") is None
        if code == 204:
            assert response.header("Content-Length") is None
        follow = conn.request("GET", "/hello?i=%d" % code)
        assert follow.status == 200
        assert follow.body == b"hello %d\n" % code
        assert conn.is_closed(timeout=0.2) is False


@pytest.mark.parametrize("query", ["code=200", "code=200&kind=empty-bytes", "code=200&kind=generator",
                                   "code=204", "code=204&kind=generator"])
def test_empty_bodies(app, query):
    with app.connect() as conn:
        response = conn.request("GET", "/empty?" + query)
        assert response.status == int(query[5:8])
        assert response.body == b""
        assert response.header("X-Empty") == "yes"
        if response.status == 200 and response.header("Transfer-Encoding") is None:
            assert response.header("Content-Length") == "0"
        assert conn.request("GET", "/hello?i=e").body == b"hello e\n"


def test_custom_and_repeated_headers(app):
    with app.connect() as conn:
        response = conn.request("GET", "/headers")
    assert response.status == 200
    assert response.header("X-Custom") == "custom value"
    assert response.header_all("X-Multi") == ["one", "two"]
    assert response.header_all("Set-Cookie") == ["a=1; Path=/", "b=2; HttpOnly"]
    assert response.header_all("X-Empty-Value") == [""]
    assert response.header("Content-Type") == "text/plain"


def test_keep_alive_across_requests(app):
    with app.connect() as conn:
        for index in range(10):
            route = ["/hello?i=%d" % index, "/stream?n=2", "/status?code=200"][index % 3]
            response = conn.request("GET", route)
            assert response.status == 200, (index, response)
            assert "close" not in response.connection_tokens()
    # A request with Connection: close is answered and then the connection closes.
    with app.connect() as conn:
        response = conn.request("GET", "/hello?i=last", headers=[("Connection", "close")])
        assert response.body == b"hello last\n"
        assert conn.is_closed(timeout=3)


def test_pipelined_requests_answered_in_order(app):
    routes = []
    for index in range(16):
        routes.append(["/hello?i=%d" % index, "/stream?n=%d" % (index % 4 + 1)][index % 2])
    with app.connect(timeout=10) as conn:
        conn.send(b"".join(build_request("GET", route) for route in routes))
        for index, route in enumerate(routes):
            response = conn.read_response()
            assert response.status == 200, (index, response)
            if index % 2 == 0:
                assert response.body == b"hello %d\n" % index
            else:
                assert response.body == b"".join(b"chunk %d\n" % i for i in range(index % 4 + 1))


def test_pipelined_wsgi_and_static_interleaved(app, site):
    raw = b"".join(build_request("GET", target) for target in
                   ["/hello?i=1", "/static/a.txt", "/stream?n=2", "/static/b.txt", "/hello?i=2"])
    with app.connect(timeout=10) as conn:
        conn.send(raw)
        bodies = [conn.read_response().body for _ in range(5)]
    assert bodies == [b"hello 1\n", site.files["a.txt"], b"chunk 0\nchunk 1\n", site.files["b.txt"],
                      b"hello 2\n"]


def test_unknown_route_is_app_404(app):
    with app.connect() as conn:
        response = conn.request("GET", "/no-such-route")
    assert response.status == 404
    assert b"no route" in response.body
