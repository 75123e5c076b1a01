"""A module that fails at import, for portico's startup tests."""

raise RuntimeError("marker-broken-import-0d4e: this module refuses to import")


def application(environ, start_response):  # pragma: no cover - never reached
    start_response("200 OK", [])
    return [b""]
