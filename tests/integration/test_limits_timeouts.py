"""Request size limits (414/431/413) and the header/body/keep-alive/send timeouts."""

import select
import socket
import time

import pytest

from http_client import build_request

LINE_LIMIT = 256
FIELDS_LIMIT = 10
FIELD_SIZE_LIMIT = 200
BODY_LIMIT = 1000

TIMEOUT = 1  # seconds, for every timeout flag of the timeout server
# A timeout may fire late by timer granularity plus scheduling; never before about half of it.
EARLIEST = 0.5
LATEST = TIMEOUT + 3


@pytest.fixture(scope="module")
def limited(module_launch):
    return module_launch.start([
        "--limit-request-line", str(LINE_LIMIT),
        "--limit-request-fields", str(FIELDS_LIMIT),
        "--limit-request-field_size", str(FIELD_SIZE_LIMIT),
        "--limit-request-body", str(BODY_LIMIT),
    ])


@pytest.fixture(scope="module")
def timed(module_launch):
    return module_launch.start([
        "--header-timeout", str(TIMEOUT),
        "--keep-alive", str(TIMEOUT),
        "--body-timeout", str(TIMEOUT),
        "--send-timeout", str(TIMEOUT),
    ])


def _send_and_read(server, raw):
    with server.connect() as conn:
        conn.send(raw)
        return conn.read_response()


# --- limits -----------------------------------------------------------------------------------

def test_request_line_within_limit(limited, site):
    target = "/static/a.txt?" + "q" * (LINE_LIMIT - 60)
    response = _send_and_read(limited, build_request("GET", target))
    assert response.status == 200
    assert response.body == site.files["a.txt"]


def test_request_line_too_long_is_414(limited):
    target = "/static/" + "a" * (LINE_LIMIT * 2)
    response = _send_and_read(limited, build_request("GET", target))
    assert response.status == 414, response


def test_request_line_far_too_long_is_414(limited):
    # Much longer than any read buffer: the server must not wait for the CRLF before refusing.
    with limited.connect() as conn:
        conn.send(b"GET /static/" + b"a" * 100000)
        response = conn.read_response()
    assert response.status == 414, response


def _headers(count):
    # Host counts as one of the fields.
    return [("X-Field-%d" % index, "v") for index in range(count - 1)]


def test_exactly_field_limit_is_accepted(limited, site):
    response = _send_and_read(limited, build_request("GET", "/static/a.txt", headers=_headers(FIELDS_LIMIT)))
    assert response.status == 200, response


def test_too_many_fields_is_431(limited):
    raw = build_request("GET", "/static/a.txt", headers=_headers(FIELDS_LIMIT + 1))
    response = _send_and_read(limited, raw)
    assert response.status == 431, response


def test_far_too_many_fields_is_431(limited):
    raw = build_request("GET", "/static/a.txt", headers=_headers(FIELDS_LIMIT * 20))
    response = _send_and_read(limited, raw)
    assert response.status == 431, response


def test_field_within_size_is_accepted(limited, site):
    raw = build_request("GET", "/static/a.txt", headers=[("X-Short", "s" * (FIELD_SIZE_LIMIT // 2))])
    response = _send_and_read(limited, raw)
    assert response.status == 200, response


def test_field_too_large_is_431(limited):
    raw = build_request("GET", "/static/a.txt", headers=[("X-Long", "l" * (FIELD_SIZE_LIMIT * 2))])
    response = _send_and_read(limited, raw)
    assert response.status == 431, response


def test_body_at_limit_is_accepted(limited, site):
    with limited.connect() as conn:
        response = conn.request("GET", "/static/a.txt", body=b"x" * BODY_LIMIT)
        assert response.status == 200
        follow = conn.request("GET", "/static/b.txt")
    assert follow.body == site.files["b.txt"]


def test_body_over_limit_is_413_before_body_is_sent(limited):
    with limited.connect() as conn:
        conn.send(build_request("GET", "/static/a.txt",
                                headers=[("Content-Length", str(BODY_LIMIT * 50))]))
        response = conn.read_response()
        assert response.status == 413, response
        assert conn.is_closed()


def test_post_body_over_limit_is_413_or_405(limited):
    # Either refusal is fine (both are final); what matters is no waiting for the body.
    with limited.connect() as conn:
        conn.send(build_request("POST", "/static/a.txt",
                                headers=[("Content-Length", str(BODY_LIMIT * 50))]))
        response = conn.read_response()
    assert response.status in (405, 413), response


def test_expect_continue_over_limit_gets_413_not_100(limited):
    with limited.connect() as conn:
        conn.send(build_request("GET", "/static/a.txt", headers=[
            ("Content-Length", str(BODY_LIMIT * 50)), ("Expect", "100-continue")]))
        response = conn.read_response(return_interim=True)
        assert response.status == 413, response
        assert conn.is_closed()


def test_chunked_body_over_limit_is_413(limited):
    chunk = b"x" * 500
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4)) + b"0\r\n\r\n"
    with limited.connect() as conn:
        conn.send(build_request("GET", "/static/a.txt", headers=[("Transfer-Encoding", "chunked")])
                  + body)
        response = conn.read_response()
    assert response.status == 413, response


# --- timeouts ---------------------------------------------------------------------------------

def _assert_408_or_silent(received):
    assert received == b"" or received.startswith(b"HTTP/1.1 408"), received[:200]


def test_stalled_partial_head_is_dropped(timed):
    with timed.connect() as conn:
        conn.send(b"GET /static/a.txt HTTP/1.1\r\nHost: localhost\r\n")
        closed, elapsed, received = conn.wait_closed(LATEST + 2)
    assert closed, "server kept a stalled header open for %.1f s" % elapsed
    assert EARLIEST <= elapsed <= LATEST, elapsed
    _assert_408_or_silent(received)


def test_silent_new_connection_is_dropped(timed):
    with timed.connect() as conn:
        closed, elapsed, received = conn.wait_closed(LATEST + 2)
    assert closed, "server kept a silent connection open for %.1f s" % elapsed
    assert elapsed <= LATEST
    _assert_408_or_silent(received)


def test_trickled_head_is_bounded_by_header_timeout(timed):
    # nginx's client_header_timeout covers the whole head, so trickling bytes must not extend it.
    # The server may drain input after answering (lingering close), so watch for its reply or EOF
    # rather than for send errors.
    head = b"GET /static/a.txt HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"s" * 200
    with timed.connect() as conn:
        start = time.monotonic()
        answered_at = None
        for byte in head:
            try:
                conn.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                answered_at = time.monotonic() - start
                break
            readable, _, _ = select.select([conn.sock], [], [], 0.1)
            if readable:
                answered_at = time.monotonic() - start
                received = conn.sock.recv(65536)
                _assert_408_or_silent(received)
                break
            if time.monotonic() - start > LATEST:
                break
    assert answered_at is not None, "slowloris head still being accepted after %.1f s" % LATEST
    assert EARLIEST <= answered_at <= LATEST, answered_at


def test_idle_keep_alive_is_closed(timed, site):
    with timed.connect() as conn:
        response = conn.request("GET", "/static/a.txt")
        assert response.status == 200
        closed, elapsed, received = conn.wait_closed(LATEST + 2)
    assert closed, "idle keep-alive connection still open after %.1f s" % elapsed
    assert EARLIEST <= elapsed <= LATEST, elapsed
    _assert_408_or_silent(received)


def test_keep_alive_timer_restarts_per_request(timed, site):
    with timed.connect() as conn:
        for name in ("a.txt", "b.txt", "a.txt", "b.txt"):
            response = conn.request("GET", "/static/" + name)
            assert response.status == 200
            assert response.body == site.files[name]
            time.sleep(TIMEOUT * 0.6)


def test_stalled_body_is_dropped(timed):
    with timed.connect() as conn:
        conn.send(build_request("GET", "/static/a.txt", headers=[("Content-Length", "100")])
                  + b"0123456789")
        closed, elapsed, received = conn.wait_closed(LATEST + 2)
    assert closed, "server kept a stalled body open for %.1f s" % elapsed
    assert EARLIEST <= elapsed <= LATEST, elapsed
    # A GET does not need its body, so answering before the body arrives is allowed; what counts
    # is that the connection is dropped once the body stalls.
    if not received.startswith(b"HTTP/1.1 200 "):
        _assert_408_or_silent(received)


def test_slow_but_steady_body_is_accepted(timed, site):
    # The body timeout is between two reads (nginx client_body_timeout), not for the whole body.
    body = b"abcdef"
    with timed.connect() as conn:
        conn.send(build_request("GET", "/static/a.txt", headers=[("Content-Length", str(len(body)))]))
        for byte in body:
            time.sleep(TIMEOUT * 0.5)
            conn.send(bytes([byte]))
        response = conn.read_response()
    assert response.status == 200
    assert response.body == site.files["a.txt"]


def test_stalled_header_does_not_block_other_clients(timed, site):
    with timed.connect() as stalled:
        stalled.send(b"GET /static/a.txt HTTP/1.1\r\nHo")
        start = time.monotonic()
        with timed.connect() as other:
            response = other.request("GET", "/static/b.txt")
        assert time.monotonic() - start < 0.5
        assert response.status == 200
        assert response.body == site.files["b.txt"]


@pytest.mark.time_budget(40)
def test_reader_that_stops_reading_is_dropped_after_send_timeout(timed, site):
    size = len(site.files["huge.bin"])
    with timed.connect(rcvbuf=4096) as conn:
        conn.send(build_request("GET", "/static/huge.bin"))
        time.sleep(TIMEOUT + 2.5)
        conn.settimeout(5)
        received = 0
        try:
            while True:
                chunk = conn.sock.recv(1 << 20)
                if not chunk:
                    break
                received += len(chunk)
        except ConnectionResetError:
            pass
        except socket.timeout:
            pytest.fail("connection still open after %d bytes; send timeout ignored" % received)
    assert received < size, "whole file arrived although the client never read during send timeout"
