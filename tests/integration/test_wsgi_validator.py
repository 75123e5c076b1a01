"""tests/apps/validated.py runs its apps under wsgiref.validate with warnings as errors: any breach of
PEP 3333 on portico's side becomes a 500 plus an AssertionError/Warning in the log."""

import pytest

from http_client import build_request
from wsgi_support import read_log, start_wsgi, wait_for_log

COMPLAINTS = ("AssertionError", "Warning", "garbage collected without being closed", "Traceback")


@pytest.fixture(scope="module")
def app(module_launch):
    return start_wsgi(module_launch, app="validated:application")


def _assert_quiet_log(server):
    log = read_log(server)
    found = [word for word in COMPLAINTS if word in log]
    assert not found, "validator complaints %s in the log:\n%s" % (found, log[-4000:])


@pytest.mark.parametrize("target, body", [
    ("/hello", b"validated hello\n"),
    ("/stream", b"".join(b"validated chunk %d\n" % i for i in range(5))),
    ("/write", b"validated write\nvalidated iter\n"),
])
def test_get_routes(app, target, body):
    with app.connect() as conn:
        response = conn.request("GET", target)
        assert response.status == 200, response
        assert response.body == body
        head = conn.request("HEAD", target)
        assert head.status == 200
        assert head.body == b""
    _assert_quiet_log(app)


@pytest.mark.parametrize("mode", ["read", "readline", "readlines", "iter"])
def test_input_reading(app, mode):
    payload = b"line one\nline two\n" * 500 + b"tail"
    with app.connect() as conn:
        response = conn.request("POST", "/echo?mode=" + mode, body=payload)
        assert response.status == 200, response
        assert response.body == payload
        chunked = (b"POST /echo?mode=%s HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"9\r\nline one\n\r\n4\r\ntail\r\n0\r\n\r\n" % mode.encode())
        conn.send(chunked)
        response = conn.read_response()
        assert response.status == 200, response
        assert response.body == b"line one\ntail"
        assert conn.request("POST", "/echo?mode=" + mode, body=b"").body == b""
    _assert_quiet_log(app)


@pytest.mark.parametrize("target", ["/environ", "/environ/caf%C3%A9?x=%20", "/environ/"])
def test_environ(app, target):
    with app.connect() as conn:
        response = conn.request("GET", target, headers=[("Cookie", "a=1"), ("Cookie", "b=2"),
                                                        ("X-Thing", "1")])
        assert response.status == 200, response
    with app.connect() as conn:
        conn.send(b"GET /environ HTTP/1.0\r\n\r\n")
        response10 = conn.read_response()
    assert response10.status == 200, response10
    wait_for_log(app, "validated errors line")
    _assert_quiet_log(app)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_methods(app, method):
    with app.connect() as conn:
        response = conn.request(method, "/environ", body=b"x" if method in ("POST", "PUT", "PATCH") else b"")
    assert response.status == 200, response
    assert response.body.startswith(method.encode())
    _assert_quiet_log(app)


def test_file_wrapper(app, site):
    with app.connect(timeout=10) as conn:
        response = conn.request("GET", "/filewrapper?path=" + site.path("big.bin"))
    assert response.status == 200, response
    assert response.body == site.files["big.bin"]
    _assert_quiet_log(app)


def test_no_content_and_error_page(app):
    with app.connect() as conn:
        response = conn.request("GET", "/no-content")
        assert response.status == 204
        response = conn.request("GET", "/error-page")
        assert response.status == 500
        assert response.body == b"validated error page\n"
    _assert_quiet_log(app)


def test_pipelined(app):
    targets = ["/hello", "/stream", "/write", "/environ"] * 4
    with app.connect(timeout=10) as conn:
        conn.send(b"".join(build_request("GET", target) for target in targets))
        for target in targets:
            assert conn.read_response().status == 200, target
    _assert_quiet_log(app)


def test_validator_is_active(launch):
    # Checks the harness itself, on a server of its own (its log is meant to be noisy): an
    # unknown method makes the validator warn, which must surface as a 500 plus a logged warning,
    # so the quiet logs above mean something.
    server = start_wsgi(launch, app="validated:application")
    with server.connect() as conn:
        response = conn.request("PROPFIND", "/environ")
    assert response.status == 500
    log = wait_for_log(server, "Unknown REQUEST_METHOD")
    assert "Unknown REQUEST_METHOD" in log
