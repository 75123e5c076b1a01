"""client_body_in_file_only, client_body_in_single_buffer and $request_body_file, as nginx:
a body larger than client_body_buffer_size goes to a named temp file ($request_body_file names
it) that is removed when the request ends; `client_body_in_file_only on` writes every body to
one and keeps it afterwards, `clean` removes it; the upstream and a WSGI app get the body intact
either way. Bad values get nginx's messages (compared with nginx -t)."""

import hashlib
import json
import os
import re
import time

import pytest

from http_client import Connection
from nginx_diff import refusals, start_portico
from test_proxy import echo_backend  # noqa: F401 (a fixture)

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "apps")

CONF = """
    server {
        listen 127.0.0.1:@PORT@;
        client_body_temp_path %(temp)s;
        client_body_buffer_size 2k;
        location / {
            add_header X-Body-File $request_body_file;
            add_header X-Body-Length $content_length;
            proxy_pass http://127.0.0.1:%(port)d;
        }
        location /on/ {
            client_body_in_file_only on;
            add_header X-Body-File $request_body_file;
            proxy_pass http://127.0.0.1:%(port)d;
        }
        location /clean/ {
            client_body_in_file_only clean;
            add_header X-Body-File $request_body_file;
            proxy_pass http://127.0.0.1:%(port)d;
        }
        location /single/ {
            client_body_in_single_buffer on;
            add_header X-Body $request_body;
            proxy_pass http://127.0.0.1:%(port)d;
        }
        location /app/ {
            client_body_in_file_only on;
            wsgi_app introspect:application;
            wsgi_pythonpath %(apps)s;
        }
    }
"""


@pytest.fixture
def served(tmp_path, echo_backend):  # noqa: F811
    temp = tmp_path / "body_temp"
    temp.mkdir()
    server = start_portico(str(tmp_path), CONF % {"temp": temp, "port": echo_backend,
                                                  "apps": APPS}, 1, mime=False)
    yield server, temp
    server.stop()


def post(server, target, body):
    with Connection.tcp("127.0.0.1", server.ports[0], 10.0) as conn:
        return conn.request("POST", target, body=body, host="localhost")


def gone(path):
    """The file is removed once the request ends, which may be a moment after the client has
    the response's last byte (nginx too: at the request's cleanup)."""
    deadline = time.monotonic() + 5.0
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not os.path.exists(path)


def upstream_saw(response, body):
    line = "body %d %s" % (len(body), hashlib.sha256(body).hexdigest())
    return line in response.body.decode("latin-1")


def test_small_body_stays_in_memory(served):
    server, temp = served
    body = b"0123456789"
    r = post(server, "/small", body)
    assert r.status == 200 and upstream_saw(r, body), r.body[:300]
    assert r.header("X-Body-File") is None
    assert os.listdir(temp) == []


def test_large_body_goes_to_a_named_file_removed_after(served):
    server, temp = served
    body = os.urandom(50000)
    r = post(server, "/large", body)
    assert r.status == 200 and upstream_saw(r, body), r.body[:300]
    name = r.header("X-Body-File")
    assert name and os.path.dirname(name) == str(temp), name
    assert re.fullmatch(r"\d{10}", os.path.basename(name)), name
    assert gone(name)
    assert os.listdir(temp) == []


def test_in_file_only_on_keeps_the_file(served):
    server, temp = served
    for body in (b"x", b"0123456789" * 512):
        r = post(server, "/on/keep", body)
        assert r.status == 200 and upstream_saw(r, body), r.body[:300]
        name = r.header("X-Body-File")
        assert name and os.path.dirname(name) == str(temp), name
        with open(name, "rb") as handle:
            assert handle.read() == body


def test_in_file_only_clean_removes_the_file(served):
    server, temp = served
    body = b"abc" * 10
    r = post(server, "/clean/x", body)
    assert r.status == 200 and upstream_saw(r, body), r.body[:300]
    name = r.header("X-Body-File")
    assert name and os.path.dirname(name) == str(temp), name
    assert gone(name)
    assert os.listdir(temp) == []


def test_single_buffer_gives_the_body(served):
    server, _temp = served
    body = b"0123456789" * 128
    r = post(server, "/single/x", body)
    assert r.status == 200 and upstream_saw(r, body), r.body[:300]
    assert r.header("X-Body") == body.decode()


def test_wsgi_app_reads_a_body_kept_in_a_file(served):
    server, temp = served
    body = os.urandom(3000)
    r = post(server, "/app/digest", body)
    assert r.status == 200, r.body[:300]
    seen = json.loads(r.body)
    assert seen["length"] == len(body) and seen["sha256"] == hashlib.sha256(body).hexdigest()
    kept = [os.path.join(temp, name) for name in os.listdir(temp)]
    assert len(kept) == 1, kept
    with open(kept[0], "rb") as handle:
        assert handle.read() == body


@pytest.mark.parametrize("directive", ["client_body_in_file_only x",
                                       "client_body_in_single_buffer x",
                                       "client_body_in_file_only on on"])
def test_bad_values_are_refused_as_nginx(tmp_path, directive):
    ours, nginx = refusals(tmp_path, directive + ";")
    assert ours == nginx
