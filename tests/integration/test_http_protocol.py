"""HTTP/1.x connection semantics: keep-alive, pipelining, HEAD, 100-continue, chunked bodies."""

import datetime
import re

import pytest

from http_client import IMF_FIXDATE_RE, build_request, parse_http_date


def get(conn, target, headers=None, version="HTTP/1.1", method="GET"):
    return conn.request(method, target, headers=headers, version=version)


# --- keep-alive -------------------------------------------------------------------------------

def test_http11_keeps_connection_open_by_default(server, site):
    with server.connect() as conn:
        for name in ("a.txt", "b.txt", "a.txt"):
            response = get(conn, "/static/" + name)
            assert response.status == 200
            assert response.body == site.files[name]
            assert "close" not in response.connection_tokens()
        assert not conn.is_closed(timeout=0.3)


def test_http10_with_keep_alive_stays_open(server, site):
    with server.connect() as conn:
        for name in ("a.txt", "b.txt"):
            response = get(conn, "/static/" + name, headers=[("Connection", "keep-alive")],
                           version="HTTP/1.0")
            assert response.status == 200
            assert response.body == site.files[name]
            assert "keep-alive" in response.connection_tokens(), response.headers
            assert response.framing == "length"
        assert not conn.is_closed(timeout=0.3)


def test_http10_without_keep_alive_is_closed(server, site):
    with server.connect() as conn:
        conn.send(build_request("GET", "/static/a.txt", version="HTTP/1.0", host=None))
        response = conn.read_response()
        assert response.status == 200
        assert response.body == site.files["a.txt"]
        assert "keep-alive" not in response.connection_tokens()
        assert conn.is_closed()


def test_connection_close_is_honoured(server, site):
    with server.connect() as conn:
        response = get(conn, "/static/a.txt", headers=[("Connection", "close")])
        assert response.status == 200
        assert response.body == site.files["a.txt"]
        assert "close" in response.connection_tokens()
        assert conn.is_closed()


def test_connection_close_token_in_list(server, site):
    with server.connect() as conn:
        response = get(conn, "/static/a.txt", headers=[("Connection", "TE, Close")])
        assert response.status == 200
        assert "close" in response.connection_tokens()
        assert conn.is_closed()


# --- pipelining -------------------------------------------------------------------------------

def test_pipelined_requests_answered_in_order(server, site):
    names = ["p%02d.txt" % index for index in range(16)]
    with server.connect() as conn:
        conn.send(b"".join(build_request("GET", "/static/" + name) for name in names))
        for name in names:
            response = conn.read_response()
            assert response.status == 200, name
            assert response.body == site.files[name], "out of order at %s" % name
        response = get(conn, "/static/b.txt")
        assert response.status == 200
        assert response.body == site.files["b.txt"]


def test_pipelined_mixed_methods_and_statuses(server, site):
    requests = [("GET", "/static/a.txt"), ("HEAD", "/static/b.txt"), ("GET", "/static/missing.txt"),
                ("GET", "/static/p03.txt")]
    with server.connect() as conn:
        conn.send(b"".join(build_request(m, t) for m, t in requests))
        first = conn.read_response("GET")
        head = conn.read_response("HEAD")
        missing = conn.read_response("GET")
        last = conn.read_response("GET")
    assert (first.status, first.body) == (200, site.files["a.txt"])
    assert head.status == 200 and head.body == b""
    assert missing.status == 404
    assert (last.status, last.body) == (200, site.files["p03.txt"])


def test_request_split_across_many_writes(server, site):
    data = build_request("GET", "/static/a.txt", headers=[("User-Agent", "slow")])
    with server.connect() as conn:
        for offset in range(0, len(data), 3):
            conn.send(data[offset:offset + 3])
        response = conn.read_response()
    assert response.status == 200
    assert response.body == site.files["a.txt"]


# --- HEAD -------------------------------------------------------------------------------------

def test_head_has_get_headers_and_no_body(server, site):
    with server.connect() as conn:
        get_response = get(conn, "/static/app.js")
        conn.send(build_request("HEAD", "/static/app.js"))
        head = conn.read_response("HEAD")
        # If HEAD wrongly carried a body, these bytes would corrupt the next response.
        follow = get(conn, "/static/a.txt")
    assert head.status == 200
    assert head.header("Content-Length") == str(len(site.files["app.js"]))
    for name in ("Content-Type", "Content-Length", "ETag", "Last-Modified"):
        assert head.header(name) == get_response.header(name), name
    assert follow.status == 200
    assert follow.body == site.files["a.txt"]


# --- Expect: 100-continue ---------------------------------------------------------------------

def _expect_continue(conn, method, target, body):
    head = build_request(method, target, headers=[("Expect", "100-continue"),
                                                  ("Content-Length", str(len(body)))])
    conn.send(head)
    interim = conn.read_response(return_interim=True)
    assert interim.status == 100, "expected 100 Continue before the body, got %r" % interim
    assert interim.raw_head.startswith(b"HTTP/1.1 100 Continue\r\n")
    conn.send(body)
    return conn.read_response(method)


def test_expect_continue_on_get(server, site):
    with server.connect() as conn:
        response = _expect_continue(conn, "GET", "/static/a.txt", b"hello")
        assert response.status == 200
        assert response.body == site.files["a.txt"]
        follow = get(conn, "/static/b.txt")
        assert follow.status == 200
        assert follow.body == site.files["b.txt"]


def test_expect_continue_on_post_gets_405(server, site):
    with server.connect() as conn:
        response = _expect_continue(conn, "POST", "/static/a.txt", b"x=1&y=2")
        assert response.status == 405
        assert response.header("Allow") == "GET, HEAD"
        if "close" not in response.connection_tokens():
            follow = get(conn, "/static/b.txt")
            assert follow.status == 200
            assert follow.body == site.files["b.txt"]


def test_no_100_continue_for_http10(server, site):
    # RFC 9110 10.1.1: a server must not send 100 Continue to an HTTP/1.0 client.
    with server.connect() as conn:
        conn.send(build_request("GET", "/static/a.txt", version="HTTP/1.0",
                                headers=[("Expect", "100-continue")], body=b"hello"))
        response = conn.read_response(return_interim=True)
    assert response.status == 200, response
    assert response.body == site.files["a.txt"]


# --- request bodies on GET --------------------------------------------------------------------

def test_chunked_body_with_extensions_and_trailers_is_discarded(server, site):
    body = (b"5;name=value\r\nhello\r\n"
            b"a;x;y=\"quoted\"\r\n0123456789\r\n"
            b"0\r\nX-Trailer: one\r\nX-Other: two\r\n\r\n")
    head = build_request("GET", "/static/a.txt", headers=[("Transfer-Encoding", "chunked")])
    follow = build_request("GET", "/static/b.txt")
    with server.connect() as conn:
        conn.send(head + body + follow)
        first = conn.read_response()
        second = conn.read_response()
        third = get(conn, "/static/p01.txt")
    assert (first.status, first.body) == (200, site.files["a.txt"])
    assert (second.status, second.body) == (200, site.files["b.txt"])
    assert (third.status, third.body) == (200, site.files["p01.txt"])


def test_content_length_body_on_get_is_discarded(server, site):
    with server.connect() as conn:
        conn.send(build_request("GET", "/static/a.txt", body=b"GET /static/secret HTTP/1.1\r\n\r\n")
                  + build_request("GET", "/static/b.txt"))
        first = conn.read_response()
        second = conn.read_response()
    assert (first.status, first.body) == (200, site.files["a.txt"])
    assert (second.status, second.body) == (200, site.files["b.txt"])


# --- request targets ---------------------------------------------------------------------------

def test_absolute_form_target(server, site):
    with server.connect() as conn:
        response = get(conn, "http://localhost/static/a.txt")
    assert response.status == 200
    assert response.body == site.files["a.txt"]


def test_percent_encoded_path(server, site):
    with server.connect() as conn:
        response = get(conn, "/static/hello%20world.txt")
    assert response.status == 200
    assert response.body == site.files["hello world.txt"]


def test_query_string_is_ignored_for_static_files(server, site):
    with server.connect() as conn:
        response = get(conn, "/static/a.txt?v=123&x=%20")
    assert response.status == 200
    assert response.body == site.files["a.txt"]


def test_missing_file_is_404_and_connection_survives(server, site):
    with server.connect() as conn:
        response = get(conn, "/static/does-not-exist.txt")
        assert response.status == 404
        follow = get(conn, "/static/a.txt")
    assert follow.status == 200


def test_unmapped_prefix_is_404(server):
    with server.connect() as conn:
        response = get(conn, "/nothing-here")
    assert response.status == 404


# --- standard response headers -----------------------------------------------------------------

@pytest.mark.parametrize("method,target,headers,expected", [
    ("GET", "/static/a.txt", [], 200),
    ("GET", "/static/missing", [], 404),
    ("POST", "/static/a.txt", [("Content-Length", "0")], 405),
    ("GET", "/static/a.txt", [("Range", "bytes=0-1")], 206),
    ("GET", "/static/a.txt", [("Range", "bytes=100-")], 416),
    ("GET", "/static/a.txt", [("If-Modified-Since", "Tue, 14 Nov 2023 22:13:20 GMT")], 304),
    ("GET", "/static/sub", [], 301),
])
def test_date_and_server_header_on_every_response(server, method, target, headers, expected):
    with server.connect() as conn:
        response = conn.request(method, target, headers=headers)
    assert response.status == expected
    date = response.header("Date")
    assert date is not None and IMF_FIXDATE_RE.match(date), "bad Date %r" % date
    skew = abs((parse_http_date(date) - datetime.datetime.now(datetime.timezone.utc)).total_seconds())
    assert skew < 5
    assert len(response.header_all("Date")) == 1
    assert re.fullmatch(r"portico(/\S+)?", response.header("Server", "")), response.header("Server")


def test_date_and_server_on_400(server):
    with server.connect() as conn:
        conn.send(b"GARBAGE\r\n\r\n")
        response = conn.read_response()
    assert response.status == 400
    assert IMF_FIXDATE_RE.match(response.header("Date", ""))
    assert re.fullmatch(r"portico(/\S+)?", response.header("Server", ""))


def test_no_server_header_flag(launch, site):
    quiet = launch.start(["--no-server-header"])
    with quiet.connect() as conn:
        response = get(conn, "/static/a.txt")
        missing = get(conn, "/static/missing")
    assert response.status == 200
    assert not response.has_header("Server")
    assert not missing.has_header("Server")
    assert IMF_FIXDATE_RE.match(response.header("Date", ""))
