"""Path traversal: nothing outside the mapped directory is ever served, however the path is spelled."""

import pytest

from conftest import SECRET, SECRET2
from http_client import ProtocolError

REFUSED = (400, 403, 404)

TRAVERSAL_TARGETS = [
    "/static/../secret.txt",
    "/static/%2e%2e/secret.txt",
    "/static/%2E%2E/secret.txt",
    "/static/..%2fsecret.txt",
    "/static/..%2Fsecret.txt",
    "/static/%2e%2e%2fsecret.txt",
    "/static/%2e%2e%2Fsecret.txt",
    "/static/a/../../secret.txt",
    "/static/sub/../../secret.txt",
    "/static/sub/%2e%2e/%2e%2e/secret.txt",
    "/static//../secret.txt",
    "/static/.%2e/secret.txt",
    "/static/%2e./secret.txt",
    "/static/./../secret.txt",
    "/static/secret.txt%00.html",
    "/static/%00",
    "/static/a.txt%00",
    "/static/..\\secret.txt",
    "/static/..%5csecret.txt",
    "/static/..%5Csecret.txt",
    "/static/..;/secret.txt",
    "/static/%252e%252e/secret.txt",
    "/static/%2e%2e%5csecret.txt",
    "/static/....//secret.txt",
    "/static/..",
    "/static/../",
    "/static/%2e%2e",
    "/static/%c0%ae%c0%ae/secret.txt",
    "/static/%%32%65%%32%65/secret.txt",
    "/static/../../../../../../../../etc/passwd",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/link-secret.txt",
    "/static/rel-link-secret.txt",
    "/static/linkdir/secret2.txt",
    "/static/linkdir/",
    "http://localhost/static/../secret.txt",
    "http://localhost/static/%2e%2e/secret.txt",
    "http://localhost/static/..%2fsecret.txt",
]


def _assert_refused(server, target, method="GET"):
    with server.connect() as conn:
        conn.send(("%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % (method, target)).encode("latin-1"))
        try:
            response = conn.read_response(method)
        except ProtocolError:
            # Closing without any response is also a refusal, provided nothing leaked.
            assert SECRET not in conn.buf and SECRET2 not in conn.buf
            return None
    assert response.status in REFUSED, "%s -> %r" % (target, response)
    for secret in (SECRET, SECRET2, b"root:x:0:0"):
        assert secret not in response.body, "%s leaked a file outside the mount" % target
    return response


@pytest.mark.parametrize("target", TRAVERSAL_TARGETS)
def test_traversal_is_refused(server, target):
    _assert_refused(server, target)


@pytest.mark.parametrize("target", ["/static/link-secret.txt", "/static/linkdir/secret2.txt"])
def test_symlinks_escaping_the_mount_are_refused(server, target):
    response = _assert_refused(server, target)
    assert response is not None and response.status in (403, 404)


@pytest.mark.parametrize("target", ["/static/../secret.txt", "/static/link-secret.txt"])
def test_head_traversal_is_refused(server, target):
    response = _assert_refused(server, target, method="HEAD")
    if response is not None:
        assert response.header("Content-Length") != str(len(SECRET))


def test_symlinked_directory_without_slash(server):
    # A redirect to the slash form reveals nothing; serving or listing the target would.
    with server.connect() as conn:
        response = conn.request("GET", "/static/linkdir")
    assert response.status in (301,) + REFUSED
    assert SECRET2 not in response.body


def test_dot_segments_inside_the_mount_still_resolve(server, site):
    # Normalisation must not be so blunt that harmless dot segments break legitimate paths.
    with server.connect() as conn:
        response = conn.request("GET", "/static/sub/../a.txt")
    assert response.status in (200,) + REFUSED
    if response.status == 200:
        assert response.body == site.files["a.txt"]


def test_traversal_with_a_second_mount(launch, site):
    # With two mounts side by side, a path under one must never reach into the other's parent.
    other = launch.start(["--static", "/assets/=" + site.static + "/sub"])
    for target in ("/assets/../a.txt", "/assets/%2e%2e/a.txt", "/assets/..%2fa.txt",
                   "/assets/../../secret.txt"):
        with other.connect() as conn:
            response = conn.request("GET", target)
        assert response.status in REFUSED, (target, response)
        assert SECRET not in response.body
    with other.connect() as conn:
        assert conn.request("GET", "/assets/inner.txt").body == site.files["sub/inner.txt"]
        assert conn.request("GET", "/static/a.txt").body == site.files["a.txt"]
