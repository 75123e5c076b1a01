"""Turns a DATABASE_URL into a Django DATABASES entry, standard library only (no dj-database-url).

Accepted forms:
    postgres://user:pass@host:5432/name          (also postgresql://, pgsql://)
    postgres://user@%2Frun%2Fpostgresql/name     (percent-encoded host: a unix-socket directory)
    postgres://user@/name?host=/run/postgresql   (socket directory as a query parameter)
    sqlite:////absolute/path/db.sqlite3          (sqlite:///relative.sqlite3 is relative to cwd)
Other query parameters (sslmode=require, connect_timeout=5, ...) become connection OPTIONS.
"""

from urllib.parse import parse_qsl, unquote, urlsplit

POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql")
SQLITE_SCHEMES = ("sqlite", "sqlite3")


class DatabaseUrlError(ValueError):
    """DATABASE_URL is present but not something this parser understands."""


def _split_host_port(hostport):
    # urlsplit().hostname lowercases the host, which would corrupt a socket path like %2FTmp,
    # so the authority is taken apart by hand.
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise DatabaseUrlError("unterminated IPv6 address in DATABASE_URL")
        host, rest = hostport[1:end], hostport[end + 1:]
        port = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise DatabaseUrlError("unexpected text after the IPv6 address in DATABASE_URL")
        return host, port
    host, colon, port = hostport.rpartition(":")
    if not colon:
        return hostport, ""
    return host, port


def parse(url):
    """Returns the DATABASES['default'] dict for `url`; raises DatabaseUrlError if it is unusable."""
    try:
        parts = urlsplit(url)
    except ValueError as error:  # e.g. an unbalanced "[" in the host
        raise DatabaseUrlError("DATABASE_URL is not a valid URL: %s" % error) from None
    scheme = parts.scheme.lower()
    if scheme in SQLITE_SCHEMES:
        # sqlite:///db.sqlite3 -> "db.sqlite3"; sqlite:////abs/db -> "/abs/db".
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if not path:
            raise DatabaseUrlError("sqlite DATABASE_URL needs a file name, e.g. sqlite:////tmp/db.sqlite3")
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path}
    if scheme not in POSTGRES_SCHEMES:
        raise DatabaseUrlError("unsupported DATABASE_URL scheme %r (use postgres:// or sqlite://)"
                               % parts.scheme)

    userinfo, _at, hostport = parts.netloc.rpartition("@")
    user, _colon, password = userinfo.partition(":")
    host, port = _split_host_port(hostport)
    if port and not port.isdigit():
        raise DatabaseUrlError("DATABASE_URL port %r is not a number" % port)
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise DatabaseUrlError("DATABASE_URL has no database name")

    options = {}
    host = unquote(host)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "host":
            host = value
        elif key == "port":
            port = value
        else:
            options[key] = value

    config = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(user),
        "PASSWORD": unquote(password),
        "HOST": host,
        "PORT": port,
    }
    if options:
        config["OPTIONS"] = options
    return config
