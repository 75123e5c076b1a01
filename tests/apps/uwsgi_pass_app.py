"""The app behind portico's (and nginx's) uwsgi_pass in tests/integration/test_uwsgi_pass.py,
run by the real uWSGI from apt, so the environ nginx and portico make can be compared.

  /env...      every string entry of the environ, as JSON (uWSGI's own uwsgi.* keys left out)
  /post        the request body's length and sha256, and CONTENT_LENGTH, as JSON
  /big?n=N     N bytes of a deterministic pattern, in 64 KiB pieces (&length=1: with
               Content-Length)
  /slow?s=S    answers after S seconds
  /status      a 404 with an X-App header and a short body
"""

import hashlib
import json
import time

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
    if path.endswith("/post"):
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
    if path.endswith("/slow"):
        time.sleep(float(query.get("s", "1")))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slow\n"]
    if path.endswith("/status"):
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("X-App", "yes"),
                                         ("Set-Cookie", "a=1; Path=/")])
        return [b"not here\n"]
    env = {k: v for k, v in environ.items()
           if isinstance(v, str) and not k.startswith("uwsgi.")}
    env["wsgi.url_scheme"] = environ.get("wsgi.url_scheme")
    body = json.dumps(env, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
