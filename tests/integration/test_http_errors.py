"""Strict request parsing: malformed or ambiguous messages get 400 (or 505) and the connection closes."""

import pytest

OK_LINE = b"GET /static/a.txt HTTP/1.1\r\n"
HOST = b"Host: localhost\r\n"


def _exchange(server, raw):
    with server.connect() as conn:
        conn.send(raw)
        response = conn.read_response()
        closed = conn.is_closed()
    return response, closed


# Each case is a complete request that a strict HTTP/1.1 server must refuse with 400 and then close
# (request smuggling and header injection hide in exactly these spots).
BAD_REQUESTS = {
    "obs_fold": OK_LINE + HOST + b"X-Folded: first\r\n  continued\r\n\r\n",
    "obs_fold_tab": OK_LINE + HOST + b"X-Folded: first\r\n\tcontinued\r\n\r\n",
    "space_in_header_name": OK_LINE + HOST + b"Bad Header: x\r\n\r\n",
    "paren_in_header_name": OK_LINE + HOST + b"X(y): 1\r\n\r\n",
    "space_before_colon": OK_LINE + HOST + b"X-Space : 1\r\n\r\n",
    "empty_header_name": OK_LINE + HOST + b": value\r\n\r\n",
    "header_without_colon": OK_LINE + HOST + b"NoColonHere\r\n\r\n",
    "nul_in_value": OK_LINE + HOST + b"X-Nul: a\x00b\r\n\r\n",
    "bare_cr_in_value": OK_LINE + HOST + b"X-Cr: a\rb\r\n\r\n",
    "content_length_and_chunked": (OK_LINE + HOST + b"Content-Length: 5\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "chunked_and_content_length": (OK_LINE + HOST + b"Transfer-Encoding: chunked\r\n"
                                   b"Content-Length: 5\r\n\r\n0\r\n\r\n"),
    "two_different_content_lengths": (OK_LINE + HOST + b"Content-Length: 5\r\n"
                                      b"Content-Length: 6\r\n\r\nhello!"),
    "content_length_list": OK_LINE + HOST + b"Content-Length: 5, 6\r\n\r\nhello!",
    "content_length_not_a_number": OK_LINE + HOST + b"Content-Length: abc\r\n\r\n",
    "content_length_negative": OK_LINE + HOST + b"Content-Length: -1\r\n\r\n",
    "content_length_plus_sign": OK_LINE + HOST + b"Content-Length: +5\r\n\r\nhello",
    "two_equal_content_lengths": (OK_LINE + HOST + b"Content-Length: 5\r\n"
                                  b"Content-Length: 5\r\n\r\nhello"),
    "bad_chunk_size": OK_LINE + HOST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk_size_with_garbage": (OK_LINE + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
                                b"5x\r\nhello\r\n0\r\n\r\n"),
    "chunk_data_without_crlf": (OK_LINE + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
                                b"5\r\nhelloXX0\r\n\r\n"),
    "missing_host_http11": OK_LINE + b"User-Agent: t\r\n\r\n",
    "two_host_headers": OK_LINE + HOST + b"Host: other\r\n\r\n",
    "bad_method_token": b"G(T /static/a.txt HTTP/1.1\r\n" + HOST + b"\r\n",
    "method_with_slash": b"GE/T /static/a.txt HTTP/1.1\r\n" + HOST + b"\r\n",
    "lowercase_version": b"GET /static/a.txt http/1.1\r\n" + HOST + b"\r\n",
    "garbage_version": b"GET /static/a.txt HTTX/1.1\r\n" + HOST + b"\r\n",
    "version_without_minor": b"GET /static/a.txt HTTP/1\r\n" + HOST + b"\r\n",
    "version_trailing_junk": b"GET /static/a.txt HTTP/1.1x\r\n" + HOST + b"\r\n",
    "extra_request_line_token": b"GET /static/a.txt HTTP/1.1 extra\r\n" + HOST + b"\r\n",
    "missing_target": b"GET HTTP/1.1\r\n" + HOST + b"\r\n",
    "relative_target": b"GET static/a.txt HTTP/1.1\r\n" + HOST + b"\r\n",
    "space_inside_target": b"GET /static/a b.txt HTTP/1.1\r\n" + HOST + b"\r\n",
    "plain_garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_malformed_request_is_400_and_closed(server, name):
    response, closed = _exchange(server, BAD_REQUESTS[name])
    assert response.status == 400, "%s: got %r" % (name, response)
    assert closed, "%s: connection left open after 400" % name


def test_unknown_transfer_coding_is_501_and_closed(server):
    raw = OK_LINE + HOST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    response, closed = _exchange(server, raw)
    assert response.status == 501, response  # nginx: "client sent unknown Transfer-Encoding"
    assert closed


def test_chunked_applied_twice_is_rejected(server):
    raw = OK_LINE + HOST + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"
    response, closed = _exchange(server, raw)
    # RFC 9112 forbids chunked more than once; 501 (nginx: unknown coding) is also a refusal.
    assert response.status in (400, 501), response
    assert closed


def test_400_does_not_leak_following_pipelined_request(server):
    raw = BAD_REQUESTS["content_length_and_chunked"] + b"GET /static/b.txt HTTP/1.1\r\n" + HOST + b"\r\n"
    response, closed = _exchange(server, raw)
    assert response.status == 400
    assert closed


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/3.0", b"HTTP/9.9"])
def test_unsupported_major_version_is_505(server, version):
    response, closed = _exchange(server, b"GET /static/a.txt " + version + b"\r\n" + HOST + b"\r\n")
    assert response.status == 505, response
    assert closed


def test_higher_minor_version(server, site):
    # RFC 9110 2.5 says treat HTTP/1.2 as HTTP/1.1; rejecting with 505 is the conservative choice.
    with server.connect() as conn:
        conn.send(b"GET /static/a.txt HTTP/1.2\r\n" + HOST + b"\r\n")
        response = conn.read_response()
    assert response.status in (200, 505), response
    if response.status == 200:
        assert response.body == site.files["a.txt"]


def test_http10_without_host_is_fine(server, site):
    with server.connect() as conn:
        conn.send(b"GET /static/a.txt HTTP/1.0\r\n\r\n")
        response = conn.read_response()
    assert response.status == 200
    assert response.body == site.files["a.txt"]


def test_unknown_but_valid_method(server):
    with server.connect() as conn:
        conn.send(b"BREW /static/a.txt HTTP/1.1\r\n" + HOST + b"\r\n")
        response = conn.read_response()
    assert response.status in (405, 501), response


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_non_get_methods_on_static_are_405(server, method):
    with server.connect() as conn:
        conn.send(method.encode() + b" /static/a.txt HTTP/1.1\r\n" + HOST
                  + b"Content-Length: 3\r\n\r\nabc")
        response = conn.read_response()
    assert response.status == 405, response
    assert response.header("Allow") == "GET, HEAD"
    assert response.header("Date")


def test_server_survives_after_all_errors(server, site):
    with server.connect() as conn:
        response = conn.request("GET", "/static/a.txt")
    assert response.status == 200
    assert response.body == site.files["a.txt"]
    assert server.alive()
