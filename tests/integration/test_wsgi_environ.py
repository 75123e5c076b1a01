"""The WSGI environ portico builds (PEP 3333 section "environ Variables"), seen by tests/apps/introspect.py."""

import json
import re

import pytest

from wsgi_support import environ_of, start_wsgi


@pytest.fixture(scope="module")
def app(module_launch):
    return start_wsgi(module_launch, threads=1)


@pytest.fixture(scope="module")
def threaded_app(module_launch):
    return start_wsgi(module_launch, threads=4)


def _environ_raw(server, raw):
    with server.connect() as conn:
        conn.send(raw)
        response = conn.read_response()
    assert response.status == 200, response
    return json.loads(response.body)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_request_method(app, method):
    body = b"x" if method in ("POST", "PUT", "PATCH") else b""
    environ = environ_of(app, method=method, body=body)
    assert environ["REQUEST_METHOD"] == method


@pytest.mark.parametrize("target, script_name, path_info", [
    ("/environ", "", "/environ"),
    ("/environ/", "", "/environ/"),
    ("/environ/a/b", "", "/environ/a/b"),
    ("/environ/a%20b", "", "/environ/a b"),
    # Percent-decoded bytes reach the app as a latin-1 str (the WSGI "bytes as str" rule).
    ("/environ/caf%C3%A9", "", "/environ/caf\u00c3\u00a9"),
    ("/environ/caf%c3%a9", "", "/environ/caf\u00c3\u00a9"),
    ("/environ/%FF", "", "/environ/\u00ff"),
])
def test_script_name_and_path_info(app, target, script_name, path_info):
    environ = environ_of(app, target)
    assert environ["SCRIPT_NAME"] == script_name
    assert environ["PATH_INFO"] == path_info


@pytest.mark.parametrize("target, query", [
    ("/environ", ""),
    ("/environ?", ""),
    ("/environ?a=1&b=2", "a=1&b=2"),
    ("/environ?x=%20y&z=caf%C3%A9&e=", "x=%20y&z=caf%C3%A9&e="),
    ("/environ?q=a+b&q=c", "q=a+b&q=c"),
])
def test_query_string_is_raw(app, target, query):
    environ = environ_of(app, target)
    assert "QUERY_STRING" in environ
    assert environ["QUERY_STRING"] == query


def test_request_uri_and_raw_uri_are_raw(app):
    target = "/environ/caf%C3%A9/a%20b?x=%20y&z=%2F"
    environ = environ_of(app, target)
    assert environ.get("REQUEST_URI") == target
    assert environ.get("RAW_URI") == target


def test_content_type_and_length(app):
    environ = environ_of(app, method="POST", body=b"0123456789",
                         headers=[("Content-Type", "application/x-www-form-urlencoded")])
    assert environ["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert environ["CONTENT_LENGTH"] == "10"
    assert "HTTP_CONTENT_TYPE" not in environ
    assert "HTTP_CONTENT_LENGTH" not in environ


def test_no_body_has_no_content_length(app):
    environ = environ_of(app)
    assert environ.get("CONTENT_LENGTH", "") in ("", "0")
    assert environ.get("CONTENT_TYPE", "") == ""
    assert "HTTP_CONTENT_LENGTH" not in environ


def test_server_protocol(app):
    assert environ_of(app)["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ_of(app, version="HTTP/1.0")["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_server_name_and_port_from_host(app):
    environ = environ_of(app, headers=[("Host", "example.com:8080")])
    assert environ["HTTP_HOST"] == "example.com:8080"
    assert environ["SERVER_NAME"] == "example.com"
    # gunicorn takes the port from Host; the bound port is also defensible.
    assert environ["SERVER_PORT"] in ("8080", str(app.port))


def test_server_name_and_port_without_host(app):
    environ = _environ_raw(app, b"GET /environ HTTP/1.0\r\n\r\n")
    assert "HTTP_HOST" not in environ
    assert environ["SERVER_NAME"], environ
    assert environ["SERVER_PORT"] == str(app.port)


def test_remote_addr_and_port(app):
    with app.connect() as conn:
        local_port = conn.sock.getsockname()[1]
        response = conn.request("GET", "/environ")
    environ = json.loads(response.body)
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["REMOTE_PORT"] == str(local_port)


def test_http_headers_become_http_keys(app):
    environ = environ_of(app, headers=[
        ("User-Agent", "portico-tests/1"),
        ("X-Request-Id", "abc-123"),
        ("Accept", "text/html"),
        ("Accept", "application/json"),
        ("Cookie", "a=1"),
        ("Cookie", "b=2"),
    ])
    assert environ["HTTP_USER_AGENT"] == "portico-tests/1"
    assert environ["HTTP_X_REQUEST_ID"] == "abc-123"
    assert environ["HTTP_HOST"] == "localhost"
    assert environ["HTTP_ACCEPT"] == "text/html, application/json"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"


def test_header_with_underscore_is_dropped(app):
    # X_Forwarded_For would be indistinguishable from X-Forwarded-For once mapped to
    # HTTP_X_FORWARDED_FOR: a client could spoof what a proxy set (CVE-2015-0219 class).
    environ = environ_of(app, headers=[("X_Forwarded_For", "6.6.6.6")])
    assert "HTTP_X_FORWARDED_FOR" not in environ
    assert not any("6.6.6.6" in str(value) for value in environ.values()), environ


def test_underscore_header_does_not_merge_into_dashed_one(app):
    environ = environ_of(app, headers=[("X-Forwarded-For", "10.0.0.1"),
                                       ("X_Forwarded_For", "6.6.6.6")])
    assert environ["HTTP_X_FORWARDED_FOR"] == "10.0.0.1"


def test_latin1_header_value(app):
    raw = b"GET /environ HTTP/1.1\r\nHost: localhost\r\nX-Latin: caf\xe9\r\n\r\n"
    environ = _environ_raw(app, raw)
    assert environ["HTTP_X_LATIN"] == "caf\u00e9"


def test_cgi_keys_are_native_strings(app):
    environ = environ_of(app, "/environ?a=1", headers=[("X-Thing", "v")])
    wrong = {key: kind for key, kind in environ["_types"].items() if "." not in key and kind != "str"}
    assert not wrong, wrong


def test_wsgi_keys(app):
    environ = environ_of(app)
    assert environ["wsgi.version"] == [1, 0]
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["wsgi.multithread"] is False
    assert environ["wsgi.multiprocess"] is False
    assert environ["wsgi.run_once"] is False
    assert environ.get("wsgi.input_terminated") is True
    assert environ["wsgi.input.methods"] == ["__iter__", "read", "readline", "readlines"]
    assert environ["wsgi.errors.methods"] == ["flush", "write", "writelines"]
    assert environ.get("wsgi.file_wrapper.callable") is True


def test_multithread_true_with_threads(threaded_app):
    environ = environ_of(threaded_app)
    assert environ["wsgi.multithread"] is True
    assert environ["wsgi.multiprocess"] is False


def test_environ_is_fresh_per_request(app):
    # One request's headers must not leak into the next on the same connection.
    with app.connect() as conn:
        first = json.loads(conn.request("GET", "/environ?one", headers=[("X-Only-First", "1")]).body)
        second = json.loads(conn.request("GET", "/environ?two").body)
    assert first["HTTP_X_ONLY_FIRST"] == "1"
    assert "HTTP_X_ONLY_FIRST" not in second
    assert second["QUERY_STRING"] == "two"
    assert re.fullmatch(r"\d+", second["REMOTE_PORT"])
