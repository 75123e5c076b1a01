"""wsgi.file_wrapper: real files (where portico may use sendfile) and file-likes such as BytesIO."""

import os
import sys

import pytest

from wsgi_support import APPS_DIR, start_wsgi, wait_until

sys.path.insert(0, APPS_DIR)
from introspect import bytesio_payload  # noqa: E402  (the app's own payload, to compare)


@pytest.fixture(scope="module")
def app(module_launch):
    return start_wsgi(module_launch)


def _get(server, target, method="GET", version="HTTP/1.1"):
    with server.connect(timeout=10) as conn:
        return conn.request(method, target, version=version)


@pytest.mark.parametrize("name", ["big.bin", "a.txt", "huge.bin"])
def test_real_file_with_content_length(app, site, name):
    response = _get(app, "/filewrapper?length=&path=" + site.path(name))
    assert response.status == 200
    assert response.header("Content-Length") == str(len(site.files[name]))
    assert response.framing == "length"
    assert response.body == site.files[name]


def test_real_file_without_content_length(app, site):
    response = _get(app, "/filewrapper?path=" + site.path("big.bin"))
    assert response.status == 200
    assert response.body == site.files["big.bin"]


def test_real_file_without_content_length_http10(app, site):
    response = _get(app, "/filewrapper?path=" + site.path("big.bin"), version="HTTP/1.0")
    assert response.status == 200
    assert response.body == site.files["big.bin"]


def test_real_file_custom_block_size(app, site):
    response = _get(app, "/filewrapper?length=&blksize=1000&path=" + site.path("big.bin"))
    assert response.body == site.files["big.bin"]


def test_empty_file(app, tmp_path):
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    response = _get(app, "/filewrapper?length=&path=%s" % path)
    assert response.status == 200
    assert response.body == b""


def test_content_length_shorter_than_file_sends_only_that_much(app, site):
    # PEP 3333: the server must not send more than Content-Length.
    with app.connect(timeout=10) as conn:
        response = conn.request("GET", "/filewrapper?length=1000&path=" + site.path("big.bin"))
        assert response.body == site.files["big.bin"][:1000]
        if not conn.is_closed(timeout=0.5):  # raises on extra bytes
            assert conn.request("GET", "/hello?i=1").body == b"hello 1\n"


def test_head_with_file_wrapper(app, site):
    with app.connect(timeout=10) as conn:
        response = conn.request("HEAD", "/filewrapper?length=&path=" + site.path("big.bin"))
        assert response.status == 200
        assert response.header("Content-Length") == str(len(site.files["big.bin"]))
        assert conn.request("GET", "/hello?i=2").body == b"hello 2\n"


def test_keep_alive_after_file_wrapper(app, site):
    with app.connect(timeout=10) as conn:
        for name in ("a.txt", "big.bin", "b.txt"):
            response = conn.request("GET", "/filewrapper?length=&path=" + site.path(name))
            assert response.body == site.files[name]


@pytest.mark.parametrize("size", [0, 10, 300 * 1024, 2 * 1024 * 1024 + 3])
def test_bytesio(app, size):
    response = _get(app, "/filewrapper-bytesio?size=%d" % size)
    assert response.status == 200
    assert len(response.body) == size
    assert response.body == bytesio_payload(size)


def test_file_is_closed_after_response(app, site, tmp_path):
    # A file the app opened must be released: the server calls the wrapper's close().
    path = tmp_path / "tracked.bin"
    path.write_bytes(b"tracked" * 1000)
    for _ in range(3):
        assert _get(app, "/filewrapper?length=&path=%s" % path).body == b"tracked" * 1000
    assert wait_until(lambda: str(path) not in _open_files(app.proc.pid), 3), _open_files(app.proc.pid)


def _open_files(pid):
    proc_fd = "/proc/%d/fd" % pid
    targets = []
    for fd in os.listdir(proc_fd):
        try:
            targets.append(os.readlink(os.path.join(proc_fd, fd)))
        except OSError:
            pass
    return targets
