"""Large uploads through wsgi.input: bodies kept in memory (received straight into the worker's
body blocks), bodies past the in-memory limit in a temporary file (Content-Length bodies go
there at once, chunked ones move there when they outgrow memory), and every way of reading
them, byte-exact (sha256 on both sides)."""

import hashlib
import json
import os
import random

import pytest

from wsgi_support import read_log, start_wsgi, wait_for_log

MIB = 1024 * 1024
IN_MEMORY = 12 * MIB   # under WsgiHandler::kMemoryBodyLimit (32 MiB)
IN_FILE = 40 * MIB     # over it: a temporary file


@pytest.fixture(scope="module")
def app(module_launch):
    return start_wsgi(module_launch, args=["--limit-request-body", "100m"])


@pytest.fixture(scope="module")
def payloads():
    rng = random.Random(11)
    return {IN_MEMORY: rng.randbytes(IN_MEMORY), IN_FILE: rng.randbytes(IN_FILE)}


def _head(target, length=None, extra=b""):
    framing = b"Content-Length: %d\r\n" % length if length is not None else b"Transfer-Encoding: chunked\r\n"
    return b"POST " + target.encode() + b" HTTP/1.1\r\nHost: localhost\r\n" + framing + extra + b"\r\n"


def _chunked(payload, sizes):
    """`payload` as chunked framing, the chunk sizes cycling through `sizes`."""
    out = []
    at = 0
    turn = 0
    while at < len(payload):
        size = sizes[turn % len(sizes)]
        piece = payload[at:at + size]
        out.append(b"%x\r\n%s\r\n" % (len(piece), piece))
        at += size
        turn += 1
    out.append(b"0\r\n\r\n")
    return b"".join(out)


def _post_raw(server, raw, timeout=30.0):
    with server.connect(timeout=timeout) as conn:
        conn.send(raw)
        return conn.read_response()


def _check_digest(response, payload):
    assert response.status == 200, response
    result = json.loads(response.body)
    assert result["length"] == len(payload)
    assert result["sha256"] == hashlib.sha256(payload).hexdigest()
    return result


@pytest.mark.time_budget(30)
@pytest.mark.parametrize("size", [IN_MEMORY, IN_FILE])
def test_content_length_upload_read_in_64k_steps(app, payloads, size):
    payload = payloads[size]
    result = _check_digest(_post_raw(app, _head("/digest", len(payload)) + payload), payload)
    assert result["content_length"] == str(size)


@pytest.mark.time_budget(30)
@pytest.mark.parametrize("size", [IN_MEMORY, IN_FILE])
def test_read_without_size_returns_the_whole_body(app, payloads, size):
    payload = payloads[size]
    result = _check_digest(_post_raw(app, _head("/digest-modes?mode=whole", len(payload)) + payload),
                           payload)
    assert result["pieces"] == 1
    assert result["after_end"] == 0


@pytest.mark.time_budget(30)
@pytest.mark.parametrize("size", [IN_MEMORY, IN_FILE])
@pytest.mark.parametrize("sizes", [[300000], [1000, 70000, 17, 262144]], ids=["large-chunks", "mixed-chunks"])
def test_chunked_upload_is_byte_exact(app, payloads, size, sizes):
    # The 40 MiB chunked body starts in memory and moves to a file past the in-memory limit;
    # chunks of 16 KiB and more are received straight into the body's memory.
    payload = payloads[size]
    _check_digest(_post_raw(app, _head("/digest") + _chunked(payload, sizes)), payload)


def _lines_payload():
    # Lines far longer than any buffer or block (3 MiB, 1 MiB + 1), short ones between them,
    # an empty line, and an unterminated last line.
    rng = random.Random(3)
    parts = [b"a" * (3 * MIB) + b"\n", b"short\n", b"\n", rng.randbytes(MIB).replace(b"\n", b"n") + b"x\n"]
    parts += [b"line %d\n" % i for i in range(2000)]
    parts.append(b"z" * (300 * 1024))
    return b"".join(parts), len(parts)


@pytest.mark.time_budget(30)
@pytest.mark.parametrize("length_framing", [True, False], ids=["content-length", "chunked"])
def test_readline_over_long_lines(app, length_framing):
    payload, count = _lines_payload()
    head = _head("/digest-modes?mode=lines", len(payload) if length_framing else None)
    body = payload if length_framing else _chunked(payload, [65536])
    result = _check_digest(_post_raw(app, head + body), payload)
    assert result["pieces"] == count
    assert result["longest"] == 3 * MIB + 1


@pytest.mark.time_budget(30)
def test_readline_with_a_limit_splits_long_lines(app):
    payload, _ = _lines_payload()
    result = _check_digest(_post_raw(app, _head("/digest-modes?mode=lines&limit=100000", len(payload))
                                     + payload), payload)
    assert result["longest"] == 100000


@pytest.mark.time_budget(30)
@pytest.mark.parametrize("size", [IN_MEMORY, IN_FILE])
def test_readline_and_read_mixed(app, size):
    payload, _ = _lines_payload()
    payload = (payload * (size // len(payload) + 1))[:size]
    _check_digest(_post_raw(app, _head("/digest-modes?mode=mixed", len(payload)) + payload), payload)


@pytest.mark.time_budget(30)
def test_request_after_a_large_body_on_the_same_connection(app, payloads):
    # The body is received straight into memory up to its last byte and not one byte more: the
    # pipelined request behind it is parsed from the connection's own buffer.
    payload = payloads[IN_MEMORY]
    with app.connect(timeout=30.0) as conn:
        conn.send(_head("/digest", len(payload)) + payload
                  + b"GET /hello?i=next HTTP/1.1\r\nHost: localhost\r\n\r\n")
        first = conn.read_response()
        second = conn.read_response()
    _check_digest(first, payload)
    assert (second.status, second.body) == (200, b"hello next\n")


@pytest.mark.time_budget(30)
def test_expect_continue_with_a_large_body(app, payloads):
    payload = payloads[IN_MEMORY]
    with app.connect(timeout=30.0) as conn:
        conn.send(_head("/digest", len(payload), b"Expect: 100-continue\r\n"))
        interim = conn.read_response(return_interim=True)
        assert interim.status == 100
        conn.send(payload)
        response = conn.read_response()
    _check_digest(response, payload)


@pytest.mark.time_budget(30)
def test_many_uploads_in_a_row_reuse_memory(app, payloads):
    # More bodies than the worker's memory budget holds at once, one after the other on one
    # connection: the blocks of each body go back to the worker when its request is done.
    payload = payloads[IN_MEMORY]
    with app.connect(timeout=30.0) as conn:
        for _ in range(15):
            conn.send(_head("/digest", len(payload)) + payload)
            _check_digest(conn.read_response(), payload)


@pytest.mark.time_budget(30)
def test_body_temp_files_go_to_tmpdir(module_launch, tmp_path, payloads):
    # TMPDIR names where bodies past the in-memory limit go (nginx's client_body_temp_path): a
    # directory that cannot hold them is a 500 with the reason in the error log, and a body
    # that fits in memory never needs it.
    missing = tmp_path / "no-such-dir"
    server = start_wsgi(module_launch, args=["--limit-request-body", "100m"],
                        env=dict(os.environ, TMPDIR=str(missing)))
    small = payloads[IN_MEMORY]
    _check_digest(_post_raw(server, _head("/digest", len(small)) + small), small)
    big = payloads[IN_FILE]
    response = _post_raw(server, _head("/digest", len(big)) + big)
    assert response.status == 500
    log = wait_for_log(server, "cannot create a temporary file for a request body in " + str(missing))
    assert "cannot create a temporary file for a request body in " + str(missing) in log, read_log(server)
    # A chunked body starts in memory and needs the directory once it outgrows the limit.
    response = _post_raw(server, _head("/digest") + _chunked(big, [262144]))
    assert response.status == 500
    _check_digest(_post_raw(server, _head("/digest") + _chunked(small, [262144])), small)
