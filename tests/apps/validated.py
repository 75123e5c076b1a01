"""Well-behaved WSGI apps wrapped in wsgiref.validate, for portico's integration tests.

Warnings become errors at import, so any validator complaint about the server's side of the
contract (environ types, start_response, wsgi.input/errors behaviour) surfaces as an exception:
a 500 for the request plus a traceback in the error log. The apps themselves follow PEP 3333
strictly (e.g. wsgi.input.read always gets a size, as the validator demands).
"""

import os
import warnings
from urllib.parse import parse_qs
from wsgiref.validate import validator

warnings.simplefilter("error")


def _query(environ):
    parsed = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return {key: values[-1] for key, values in parsed.items()}


def hello(environ, start_response):
    body = b"validated hello\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def generate():
        for index in range(5):
            yield b"validated chunk %d\n" % index

    return generate()


def write(environ, start_response):
    writer = start_response("200 OK", [("Content-Type", "text/plain")])
    writer(b"validated write\n")
    return [b"validated iter\n"]


def echo(environ, start_response):
    stream = environ["wsgi.input"]
    mode = _query(environ).get("mode", "read")
    if mode == "readline":
        parts = []
        while True:
            line = stream.readline()
            if not line:
                break
            parts.append(line)
    elif mode == "readlines":
        parts = stream.readlines()
    elif mode == "iter":
        parts = list(stream)
    else:
        parts = []
        while True:
            chunk = stream.read(4096)
            if not chunk:
                break
            parts.append(chunk)
    body = b"".join(parts)
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(body)))])
    return [body]


def environ_check(environ, start_response):
    environ["wsgi.errors"].write("validated errors line\n")
    environ["wsgi.errors"].flush()
    body = ("%s %s %s\n" % (environ["REQUEST_METHOD"], environ["PATH_INFO"],
                            environ["SERVER_PROTOCOL"])).encode("latin-1")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def filewrapper(environ, start_response):
    path = _query(environ)["path"]
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(os.path.getsize(path)))])
    return environ["wsgi.file_wrapper"](open(path, "rb"), 32768)


def no_content(environ, start_response):
    start_response("204 No Content", [])
    return []


def error_page(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise ValueError("validated handled error")
    except ValueError:
        import sys
        body = b"validated error page\n"
        start_response("500 Internal Server Error",
                       [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
                       sys.exc_info())
        return [body]


ROUTES = {name: validator(app) for name, app in {
    "hello": hello,
    "stream": stream,
    "write": write,
    "echo": echo,
    "environ": environ_check,
    "filewrapper": filewrapper,
    "no-content": no_content,
    "error-page": error_page,
}.items()}


def application(environ, start_response):
    segment = environ.get("PATH_INFO", "").lstrip("/").split("/", 1)[0]
    app = ROUTES.get(segment)
    if app is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no route\n"]
    return app(environ, start_response)
