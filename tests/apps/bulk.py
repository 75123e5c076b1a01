"""Large responses for the slow-reader tests: /single/N returns one bytes object (as Django's
HttpResponse does), /gen/N a generator of uneven pieces, /wrap/N a wsgi.file_wrapper over a file in
$BULK_DIR, /list/N a list of many small pieces. N bytes each, the same bytes as payload(N)."""

import os
import random

_cache = {}


def payload(size):
    """size pseudo-random bytes, the same for a given size (tests hash them)."""
    data = _cache.get(size)
    if data is None:
        data = random.Random(size).randbytes(size)
        _cache[size] = data
    return data


def _pieces(data, step):
    for offset in range(0, len(data), step):
        yield data[offset:offset + step]


def application(environ, start_response):
    parts = environ["PATH_INFO"].strip("/").split("/")
    kind, size = parts[0], int(parts[1]) if len(parts) > 1 else 0
    headers = [("Content-Type", "application/octet-stream")]
    if kind == "single":
        start_response("200 OK", headers)
        return [payload(size)]
    if kind == "list":
        start_response("200 OK", headers)
        return list(_pieces(payload(size), 4000))
    if kind == "gen":
        start_response("200 OK", headers)
        return _pieces(payload(size), 100003)  # uneven: no piece lines up with a buffer
    if kind == "wrap":
        start_response("200 OK", headers)
        path = os.path.join(os.environ["BULK_DIR"], "%d.bin" % size)
        return environ["wsgi.file_wrapper"](open(path, "rb"), 65536)
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such kind\n"]
