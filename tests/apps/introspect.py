"""An introspection WSGI app for portico's integration tests (PEP 3333 edge cases by route).

Every route is reached by its first path segment, so /environ/anything/else still dumps the
environ. Nothing here depends on portico: the same app can be served by gunicorn to compare.
Error routes raise with a unique marker so a test can find its traceback in the error log.
"""

import hashlib
import io
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs

CHUNK_64K = 64 * 1024

# key -> number of times an iterable's close() ran; one process, so a module global suffices.
_close_counts = {}
_close_lock = threading.Lock()

NOT_CALLABLE = 42  # for the startup test: an attribute that is not a WSGI callable


def _query(environ):
    parsed = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return {key: values[-1] for key, values in parsed.items()}


def _text(start_response, body, status="200 OK", extra=()):
    if isinstance(body, str):
        body = body.encode("utf-8")
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    start_response(status, headers + list(extra))
    return [body]


def _jsonable(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return [_jsonable(item) for item in value]
    return "<%s>" % type(value).__name__


def environ_route(environ, start_response):
    dump = {key: _jsonable(value) for key, value in environ.items()}
    dump["wsgi.version"] = list(environ.get("wsgi.version", ()))
    for key in ("wsgi.input", "wsgi.errors", "wsgi.file_wrapper"):
        if key in environ:
            dump[key + ".type"] = type(environ[key]).__name__
            dump[key + ".callable"] = callable(environ[key])
    dump["wsgi.input.methods"] = sorted(
        name for name in ("read", "readline", "readlines", "__iter__")
        if hasattr(environ.get("wsgi.input"), name))
    dump["wsgi.errors.methods"] = sorted(
        name for name in ("write", "writelines", "flush")
        if hasattr(environ.get("wsgi.errors"), name))
    # Which keys hold str (the PEP requires native strings for CGI keys).
    dump["_types"] = {key: type(value).__name__ for key, value in environ.items()}
    body = json.dumps(dump, ensure_ascii=True, sort_keys=True).encode("ascii")
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _echo_response(environ, start_response, body, extra=()):
    headers = [("Content-Type", environ.get("CONTENT_TYPE") or "application/octet-stream"),
               ("Content-Length", str(len(body)))]
    start_response("200 OK", headers + list(extra))
    return [body]


def echo(environ, start_response):
    return _echo_response(environ, start_response, environ["wsgi.input"].read())


def echo_lines(environ, start_response):
    stream = environ["wsgi.input"]
    lines = []
    while True:
        line = stream.readline()
        if not line:
            break
        lines.append(line)
    bad = [line for line in lines[:-1] if not line.endswith(b"\n")]
    return _echo_response(environ, start_response, b"".join(lines),
                          [("X-Lines", str(len(lines))), ("X-Unterminated", str(len(bad)))])


def echo_readlines(environ, start_response):
    lines = environ["wsgi.input"].readlines()
    return _echo_response(environ, start_response, b"".join(lines), [("X-Lines", str(len(lines)))])


def echo_iter(environ, start_response):
    lines = [line for line in environ["wsgi.input"]]
    return _echo_response(environ, start_response, b"".join(lines), [("X-Lines", str(len(lines)))])


def echo_chunks(environ, start_response):
    size = int(_query(environ).get("size", "1024"))
    stream = environ["wsgi.input"]
    chunks = []
    while True:
        chunk = stream.read(size)
        if not chunk:
            break
        chunks.append(chunk)
    biggest = max((len(chunk) for chunk in chunks), default=0)
    # A read past the end must keep returning b"" rather than block or raise.
    again = stream.read(size)
    return _echo_response(environ, start_response, b"".join(chunks),
                          [("X-Chunks", str(len(chunks))), ("X-Max-Chunk", str(biggest)),
                           ("X-Read-After-End", str(len(again)))])


def digest(environ, start_response):
    stream = environ["wsgi.input"]
    hasher = hashlib.sha256()
    total = 0
    while True:
        chunk = stream.read(CHUNK_64K)
        if not chunk:
            break
        hasher.update(chunk)
        total += len(chunk)
    body = json.dumps({"length": total, "sha256": hasher.hexdigest(),
                       "content_length": environ.get("CONTENT_LENGTH")})
    return _text(start_response, body)


def _sockets_open():
    """How many sockets this process has open now."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink("/proc/self/fd/" + name).startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


def digest_part(environ, start_response):
    """Hashes the first `read` bytes of the body (all of it without `read`), in `step`-byte
    reads (64 KiB), or line by line with lines=1; answers length and sha256, and the sockets
    the process had open when the app began (a body's tail lent from the connection's socket
    is one more: a duplicate)."""
    query = _query(environ)
    sockets = _sockets_open()
    stream = environ["wsgi.input"]
    want = int(query.get("read", "-1"))
    step = int(query.get("step", str(CHUNK_64K)))
    hasher = hashlib.sha256()
    total = 0
    partial_lines = 0  # lines=1: lines returned without their '\n' before the body's end
    while want < 0 or total < want:
        if query.get("lines"):
            piece = stream.readline()
            if piece and not piece.endswith(b"\n") and total + len(piece) < int(environ["CONTENT_LENGTH"]):
                partial_lines += 1
        else:
            piece = stream.read(step if want < 0 else min(step, want - total))
        if not piece:
            break
        hasher.update(piece)
        total += len(piece)
    body = json.dumps({"length": total, "sha256": hasher.hexdigest(), "sockets": sockets,
                       "pid": os.getpid(), "partial_lines": partial_lines})
    return _text(start_response, body)


def digest_read_modes(environ, start_response):
    """Hashes the body read a way the query names: mode=whole (read() without a size),
    mode=lines&limit=N (readline(N) until b""), or mode=mixed (readline, then read(n) and
    readline alternating). Answers length, sha256, reads made and the longest piece."""
    query = _query(environ)
    mode = query.get("mode", "whole")
    stream = environ["wsgi.input"]
    hasher = hashlib.sha256()
    pieces = []
    if mode == "whole":
        pieces.append(stream.read())
    elif mode == "lines":
        limit = int(query.get("limit", "-1"))
        while True:
            line = stream.readline(limit)
            if not line:
                break
            pieces.append(line)
    else:
        turn = 0
        while True:
            piece = stream.readline() if turn % 2 == 0 else stream.read(100003)
            if not piece:
                break
            pieces.append(piece)
            turn += 1
    for piece in pieces:
        hasher.update(piece)
    again = stream.read()
    body = json.dumps({"length": sum(len(p) for p in pieces), "sha256": hasher.hexdigest(),
                       "pieces": len(pieces), "longest": max((len(p) for p in pieces), default=0),
                       "after_end": len(again)})
    return _text(start_response, body)


def hello(environ, start_response):
    index = _query(environ).get("i", "")
    return _text(start_response, "hello %s\n" % index)


def stream(environ, start_response):
    count = int(_query(environ).get("n", "5"))

    def generate():
        # start_response only when the first chunk is produced: PEP 3333 allows it.
        start_response("200 OK", [("Content-Type", "text/plain")])
        for index in range(count):
            yield b"chunk %d\n" % index

    return generate()


def write_route(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written-1\n")
    write(b"written-2\n")
    return []


def write_and_iter(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"from-write\n")
    return [b"from-iter-1\n", b"from-iter-2\n"]


def filewrapper(environ, start_response):
    query = _query(environ)
    path = query["path"]
    headers = [("Content-Type", "application/octet-stream")]
    if "length" in query:
        length = os.path.getsize(path) if query["length"] == "" else int(query["length"])
        headers.append(("Content-Length", str(length)))
    start_response("200 OK", headers)
    handle = open(path, "rb")
    wrapper = environ["wsgi.file_wrapper"]
    if "blksize" in query:
        return wrapper(handle, int(query["blksize"]))
    return wrapper(handle)


def bytesio_payload(size):
    pattern = bytes(range(251))  # a prime length, so misplaced blocks show up
    return (pattern * (size // len(pattern) + 1))[:size]


def filewrapper_bytesio(environ, start_response):
    size = int(_query(environ).get("size", str(300 * 1024)))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](io.BytesIO(bytesio_payload(size)), 8192)


def empty(environ, start_response):
    query = _query(environ)
    code = query.get("code", "200")
    reason = {"200": "OK", "204": "No Content"}.get(code, "Whatever")
    start_response("%s %s" % (code, reason), [("X-Empty", "yes")])
    if query.get("kind") == "empty-bytes":
        return [b""]
    if query.get("kind") == "generator":
        return iter(())
    return []


def head_check(environ, start_response):
    body = b"head-check body: 0123456789\n"
    return _text(start_response, body, extra=[("X-Request-Method", environ["REQUEST_METHOD"])])


def status(environ, start_response):
    query = _query(environ)
    code = int(query.get("code", "200"))
    start_response("%d Custom Reason" % code, [("Content-Type", "text/plain")])
    if query.get("body") == "0":
        return []
    # Even for 204/304 the app returns a body: the server must not put it on the wire.
    return [b"status body %d\n" % code]


def headers(environ, start_response):
    start_response("200 OK", [
        ("Content-Type", "text/plain"),
        ("X-Custom", "custom value"),
        ("X-Multi", "one"),
        ("X-Multi", "two"),
        ("Set-Cookie", "a=1; Path=/"),
        ("Set-Cookie", "b=2; HttpOnly"),
        ("X-Empty-Value", ""),
    ])
    return [b"headers\n"]


def bad_header(environ, start_response):
    kind = _query(environ).get("kind", "crlf")
    value = {
        "crlf": "ok\r\nX-Injected: yes",
        "lf": "ok\nX-Injected: yes",
        "cr": "ok\rX-Injected: yes",
        "nul": "ok\x00bad",
        "nonstr": 12345,
        "nonlatin1": "snow \u2603",
    }[kind]
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Bad", value)])
    return [b"should never be sent\n"]


def bad_status(environ, start_response):
    kind = _query(environ).get("kind", "text")
    value = {
        "text": "OK 200",
        "int": 200,
        "crlf": "200 OK\r\nX-Injected: yes",
        "short": "20 OK",
        "bytes": b"200 OK",
    }[kind]
    start_response(value, [("Content-Type", "text/plain")])
    return [b"should never be sent\n"]


def bad_header_name(environ, start_response):
    kind = _query(environ).get("kind", "space")
    name = {
        "space": "Bad Name",
        "colon": "X-Bad:Name",
        "crlf": "X-Bad\r\nX-Injected",
        "empty": "",
        "nonstr": 7,
    }[kind]
    start_response("200 OK", [("Content-Type", "text/plain"), (name, "value")])
    return [b"should never be sent\n"]


def non_bytes(environ, start_response):
    late = _query(environ).get("late") == "1"
    start_response("200 OK", [("Content-Type", "text/plain")])

    def generate():
        if late:
            yield b"first bytes chunk\n"
        yield "a str is not bytes"

    return generate()


class AppError(Exception):
    """The one exception type the error routes raise, with a marker the tests grep for."""


def raise_before(environ, start_response):
    raise AppError("marker-raise-before-5e1c")


def raise_after_start(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    raise AppError("marker-raise-after-start-9b07")


def raise_mid_stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def generate():
        yield b"first chunk before the failure\n"
        time.sleep(0.2)
        raise AppError("marker-raise-mid-stream-77d2")

    return generate()


def raise_in_first_next(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def generate():
        raise AppError("marker-raise-first-next-3a90")
        yield b"never"  # pragma: no cover

    return generate()


def exc_info(environ, start_response):
    late = _query(environ).get("late") == "1"
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Original", "yes")])
    if late:
        def generate():
            yield b"original body started\n"
            try:
                raise AppError("marker-exc-info-late-c4d8")
            except AppError:
                # The head is out: PEP 3333 says start_response must re-raise.
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")],
                               sys.exc_info())
            yield b"must not be reached\n"
        return generate()
    try:
        raise AppError("marker-exc-info-6f11")
    except AppError:
        body = b"app-chosen error page\n"
        start_response("500 Internal Server Error",
                       [("Content-Type", "text/plain"), ("X-Replaced", "yes"),
                        ("Content-Length", str(len(body)))],
                       sys.exc_info())
        return [body]


def start_response_twice(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    # A second call without exc_info is an app error (PEP 3333).
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"should never be sent\n"]


def no_start_response(environ, start_response):
    return [b"start_response was never called\n"]


class ClosingIterable:
    """A response iterable whose close() counts into _close_counts[key]."""

    def __init__(self, key, mode):
        self.key = key
        self.mode = mode
        self.index = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.index += 1
        if self.mode == "ok":
            if self.index > 3:
                raise StopIteration
            return b"part %d\n" % self.index
        if self.mode == "raise":
            if self.index == 1:
                return b"part 1\n"
            raise AppError("marker-close-raise-%s" % self.key)
        if self.mode == "stream":
            # Bounded so a server that never notices the disconnect cannot spin forever.
            if self.index > 3000:
                raise StopIteration
            if self.index > 1:
                time.sleep(0.005)
            return b"s" * CHUNK_64K
        raise StopIteration

    def close(self):
        with _close_lock:
            _close_counts[self.key] = _close_counts.get(self.key, 0) + 1


def close_counter(environ, start_response):
    query = _query(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ClosingIterable(query.get("key", "default"), query.get("mode", "ok"))


def close_count(environ, start_response):
    key = _query(environ).get("key", "default")
    with _close_lock:
        count = _close_counts.get(key, 0)
    return _text(start_response, str(count))


def slow(environ, start_response):
    seconds = float(_query(environ).get("s", "1"))
    time.sleep(seconds)
    return _text(start_response, "slept %s\n" % seconds)


def drip(environ, start_response):
    query = _query(environ)
    count = int(query.get("n", "5"))
    pause = float(query.get("s", "0.3"))
    start_response("200 OK", [("Content-Type", "text/plain")])

    def generate():
        for index in range(count):
            if index:
                time.sleep(pause)
            yield b"drip %d\n" % index

    return generate()


def large(environ, start_response):
    megabytes = int(_query(environ).get("mb", "1"))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def generate():
        block = b"L" * CHUNK_64K
        for _ in range(megabytes * 16):
            yield block

    return generate()


def errors(environ, start_response):
    marker = _query(environ).get("marker", "marker-wsgi-errors")
    stream = environ["wsgi.errors"]
    stream.write("%s write\n" % marker)
    stream.writelines(["%s writelines-1\n" % marker, "%s writelines-2\n" % marker])
    stream.flush()
    return _text(start_response, "logged\n")


def content_length_mismatch(environ, start_response):
    query = _query(environ)
    declared = int(query.get("declared", "100"))
    actual = int(query.get("actual", "10"))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(declared))])
    if query.get("kind") == "generator":
        return (b"x" for _ in range(actual))
    return [b"x" * actual]


def osenv(environ, start_response):
    key = _query(environ).get("key", "")
    value = os.environ.get(key)
    return _text(start_response, json.dumps({"key": key, "value": value, "cwd": os.getcwd(),
                                             "module_file": os.path.abspath(__file__)}))


def thread_info(environ, start_response):
    return _text(start_response, json.dumps({"thread": threading.get_ident(),
                                             "main": threading.current_thread() is threading.main_thread(),
                                             "pid": os.getpid()}))


ROUTES = {
    "environ": environ_route,
    "echo": echo,
    "echo-lines": echo_lines,
    "echo-readlines": echo_readlines,
    "echo-iter": echo_iter,
    "echo-chunks": echo_chunks,
    "digest": digest,
    "digest-modes": digest_read_modes,
    "digest-part": digest_part,
    "hello": hello,
    "stream": stream,
    "write": write_route,
    "write-and-iter": write_and_iter,
    "filewrapper": filewrapper,
    "filewrapper-bytesio": filewrapper_bytesio,
    "empty": empty,
    "head-check": head_check,
    "status": status,
    "headers": headers,
    "bad-header": bad_header,
    "bad-status": bad_status,
    "bad-header-name": bad_header_name,
    "non-bytes": non_bytes,
    "raise-before": raise_before,
    "raise-after-start": raise_after_start,
    "raise-mid-stream": raise_mid_stream,
    "raise-first-next": raise_in_first_next,
    "exc-info": exc_info,
    "start-response-twice": start_response_twice,
    "no-start-response": no_start_response,
    "close-counter": close_counter,
    "close-count": close_count,
    "slow": slow,
    "drip": drip,
    "large": large,
    "errors": errors,
    "content-length-mismatch": content_length_mismatch,
    "osenv": osenv,
    "thread": thread_info,
}


def application(environ, start_response):
    segment = environ.get("PATH_INFO", "").lstrip("/").split("/", 1)[0]
    route = ROUTES.get(segment)
    if route is None:
        return _text(start_response, "no route %r\n" % segment, status="404 Not Found")
    return route(environ, start_response)


def alt_application(environ, start_response):
    """A second callable, to check MODULE:CALLABLE picks the named one."""
    return _text(start_response, "alt app\n")
