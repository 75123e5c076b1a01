"""The smallest WSGI app: `application` only, for the MODULE-without-callable startup test."""


def application(environ, start_response):
    body = b"tiny app\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
