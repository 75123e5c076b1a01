"""App errors: a short 500 before the head is out, a truncated response after, tracebacks only in
the error log, and a server that keeps serving."""

import os

import pytest

from wsgi_support import read_log, start_wsgi, wait_for_log, wait_until

MAX_ERROR_BODY = 2048


@pytest.fixture(scope="module")
def app(module_launch):
    return start_wsgi(module_launch)


def _log_size(server):
    try:
        return os.path.getsize(server.error_log)
    except OSError:
        return 0


def _assert_short_500(response):
    assert response.status == 500, response
    assert len(response.body) <= MAX_ERROR_BODY, response.body
    lowered = response.body.lower()
    assert b"traceback" not in lowered, response.body
    assert b"marker-" not in lowered, response.body
    assert b"should never be sent" not in response.body
    assert b"x-injected" not in response.raw_head.lower()


def _assert_serving(server):
    with server.connect() as conn:
        response = conn.request("GET", "/hello?i=alive")
    assert response.status == 200
    assert response.body == b"hello alive\n"
    assert server.alive()


RAISING = [
    ("/raise-before", "marker-raise-before-5e1c"),
    ("/raise-after-start", "marker-raise-after-start-9b07"),
    ("/raise-first-next", "marker-raise-first-next-3a90"),
]


@pytest.mark.parametrize("route, marker", RAISING)
def test_exception_before_body_is_500_with_traceback_logged(app, route, marker):
    with app.connect() as conn:
        response = conn.request("GET", route)
        _assert_short_500(response)
    log = wait_for_log(app, marker)
    assert marker in log, log[-3000:]
    assert "Traceback" in log or "AppError" in log, log[-3000:]
    _assert_serving(app)


BAD = [
    "/bad-header?kind=crlf",
    "/bad-header?kind=lf",
    "/bad-header?kind=cr",
    "/bad-header?kind=nul",
    "/bad-header?kind=nonstr",
    "/bad-header?kind=nonlatin1",
    "/bad-status?kind=text",
    "/bad-status?kind=int",
    "/bad-status?kind=crlf",
    "/bad-status?kind=short",
    "/bad-status?kind=bytes",
    "/bad-header-name?kind=space",
    "/bad-header-name?kind=colon",
    "/bad-header-name?kind=crlf",
    "/bad-header-name?kind=empty",
    "/bad-header-name?kind=nonstr",
    "/non-bytes",
    "/start-response-twice",
    "/no-start-response",
]


@pytest.mark.parametrize("route", BAD)
def test_bad_app_output_is_500_never_sent(app, route):
    before = _log_size(app)
    with app.connect() as conn:
        response = conn.request("GET", route)
        _assert_short_500(response)
        # Never split: whatever the app tried to inject is not a header of its own.
        assert response.header("X-Injected") is None
        assert response.header("X-Bad") is None
    assert wait_until(lambda: _log_size(app) > before, 5), "nothing logged for " + route
    _assert_serving(app)


def test_exc_info_replaces_headers_before_body(app):
    with app.connect() as conn:
        response = conn.request("GET", "/exc-info")
        assert response.status == 500
        assert response.body == b"app-chosen error page\n"
        assert response.header("X-Replaced") == "yes"
        assert response.header("X-Original") is None
        # The replacement is an ordinary response: keep-alive still works.
        assert conn.request("GET", "/hello?i=1").body == b"hello 1\n"


def _read_until_closed(conn, timeout=5.0):
    closed, _seconds, received = conn.wait_closed(timeout)
    data, conn.buf = conn.buf + received, b""
    return closed, data


MID_STREAM = [
    ("/raise-mid-stream", b"first chunk before the failure", "marker-raise-mid-stream-77d2"),
    ("/exc-info?late=1", b"original body started", "marker-exc-info-late-c4d8"),
    ("/non-bytes?late=1", b"first bytes chunk", None),
]


def _failed_stream(server, route):
    """Everything the server sent for `route` until it closed: (closed, raw bytes)."""
    with server.connect() as conn:
        conn.send(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % route.encode())
        return _read_until_closed(conn)


@pytest.mark.parametrize("route, first, marker", MID_STREAM)
def test_exception_mid_stream_truncates(app, route, first, marker):
    closed, raw = _failed_stream(app, route)
    assert closed, "connection left open after a failed stream: %r" % raw[:300]
    # Nothing at all is a truncated response too; anything sent must be the 200 head, chunked,
    # and never a terminating 0-chunk or a 500 appended after it.
    if raw:
        head, _sep, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), raw[:300]
        assert b"\r\ntransfer-encoding: chunked" in head.lower(), head
        assert not body.endswith(b"0\r\n\r\n"), "a truncated response was terminated as if complete"
        assert b"must not be reached" not in body
        assert b"HTTP/1.1 500" not in body
    if marker:
        log = wait_for_log(app, marker)
        assert marker in log, log[-3000:]
    _assert_serving(app)


@pytest.mark.parametrize("route, first, marker", MID_STREAM)
def test_bytes_yielded_before_a_failure_reach_the_client(app, route, first, marker):
    # gunicorn behind nginx delivers the head and what the app produced before failing, then
    # closes: a partial export or log stream is worth having, and the missing terminator already
    # marks it broken.
    for _ in range(3):
        closed, raw = _failed_stream(app, route)
        assert closed
        assert raw.startswith(b"HTTP/1.1 200 "), "head dropped: %r" % raw[:300]
        assert first in raw, "bytes the app yielded before failing were dropped: %r" % raw[:300]


@pytest.mark.parametrize("kind", ["list", "generator"])
def test_content_length_shorter_than_body_sent(app, kind):
    # Declared 100, produced 10: the client must see a truncated response, never a complete one.
    with app.connect() as conn:
        conn.send(b"GET /content-length-mismatch?declared=100&actual=10&kind=%s HTTP/1.1\r\n"
                  b"Host: localhost\r\n\r\n" % kind.encode())
        _version, status, _reason, headers, _raw = conn.read_head()
        assert status == 200
        assert ("Content-Length", "100") in headers
        closed, body = _read_until_closed(conn)
    assert closed
    assert len(body) < 100
    _assert_serving(app)


@pytest.mark.parametrize("kind", ["list", "generator"])
def test_content_length_longer_body_is_cut(app, kind):
    # Declared 5, produced 10: at most 5 bytes may follow the head, or the next response is corrupt.
    with app.connect() as conn:
        response = conn.request("GET", "/content-length-mismatch?declared=5&actual=10&kind=%s" % kind)
        assert response.status == 200
        assert response.body == b"xxxxx"
        if not conn.is_closed(timeout=0.5):  # raises on extra bytes
            assert conn.request("GET", "/hello?i=2").body == b"hello 2\n"
    _assert_serving(app)


def test_wsgi_errors_reaches_error_log(app):
    marker = "marker-wsgi-errors-81f0"
    with app.connect() as conn:
        response = conn.request("GET", "/errors?marker=" + marker)
    assert response.status == 200
    log = wait_for_log(app, marker + " writelines-2")
    for suffix in (" write", " writelines-1", " writelines-2"):
        assert marker + suffix in log, log[-3000:]


def test_server_survives_error_burst(app):
    # A fresh connection each time: closing after a 500 is a server's right.
    for _ in range(20):
        with app.connect() as conn:
            assert conn.request("GET", "/raise-before").status == 500
    _assert_serving(app)
    assert "marker-raise-before-5e1c" in read_log(app)
