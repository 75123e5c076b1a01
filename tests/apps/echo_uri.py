"""Answers "app URI" in text/plain, URI = SCRIPT_NAME + PATH_INFO [+ ?QUERY_STRING]: the same
bytes an nginx `return 200 "app $request_uri"` backend gives behind proxy_pass, so a wsgi_app
location can be compared with nginx proxying (tests/integration/test_nginx_diff.py)."""


def application(environ, start_response):
    uri = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    if environ.get("QUERY_STRING"):
        uri += "?" + environ["QUERY_STRING"]
    body = ("app " + uri).encode("latin-1")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
