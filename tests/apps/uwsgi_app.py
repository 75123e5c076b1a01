"""The app behind nginx's uwsgi_pass in tests/integration/test_uwsgi_server.py, served by portico
(`--protocol uwsgi`, `listen ... uwsgi`) and by the real uWSGI alike, so their answers compare.

  /env...      the CGI/WSGI environ keys that matter, as JSON (any path, any method)
  /post        the request body's length and sha256, as JSON
  /big?n=N     N bytes of a deterministic pattern, in 64 KiB pieces, without Content-Length
               (&length=1: with it)
  /status      a 404 with an X-App header and a short body
"""

import hashlib
import json

KEYS = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "REQUEST_URI", "SERVER_PROTOCOL",
        "CONTENT_TYPE", "CONTENT_LENGTH", "REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME",
        "SERVER_PORT", "SCRIPT_NAME", "HTTPS", "DOCUMENT_ROOT", "REQUEST_SCHEME",
        "HTTP_HOST", "HTTP_X_CUSTOM", "HTTP_USER_AGENT", "HTTP_COOKIE", "wsgi.url_scheme",
        "X_EXTRA_PARAM")

PIECE = bytes(range(256)) * 256  # 64 KiB


def pattern(n):
    full, rest = divmod(n, len(PIECE))
    for _ in range(full):
        yield PIECE
    if rest:
        yield PIECE[:rest]


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    query = dict(p.split("=", 1) for p in environ.get("QUERY_STRING", "").split("&") if "=" in p)
    if path == "/post" or path.endswith("/post"):
        stream = environ["wsgi.input"]
        digest = hashlib.sha256()
        size = 0
        while True:
            data = stream.read(65536)
            if not data:
                break
            digest.update(data)
            size += len(data)
        body = json.dumps({"length": size, "sha256": digest.hexdigest(),
                           "CONTENT_LENGTH": environ.get("CONTENT_LENGTH", "")}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path.endswith("/big"):
        n = int(query.get("n", "0"))
        headers = [("Content-Type", "application/octet-stream")]
        if query.get("length") == "1":
            headers.append(("Content-Length", str(n)))
        start_response("200 OK", headers)
        return pattern(n)
    if path.endswith("/status"):
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("X-App", "yes"),
                                         ("Set-Cookie", "a=1; Path=/")])
        return [b"not here\n"]
    env = {key: environ.get(key) for key in KEYS}
    body = json.dumps(env, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
