"""The 13-byte hello app every hello scenario serves (Content-Length set: uWSGI's http11-socket keeps
the connection alive only when the length is known)."""

BODY = b"Hello, world!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
