"""limit_rate, limit_rate_after (with variables), $limit_rate (set and read), X-Accel-Limit-Rate
and proxy_limit_rate, as
nginx paces them: the bytes past limit_rate_after leave at the rate, so a response of N bytes
takes at least (N - after) / rate - 1 seconds (nginx allows one second's worth at once); every
byte arrives (hashed). Only lower bounds on time are asserted: a slow machine only makes them
hold more surely. Bad values get nginx's messages (compared with nginx -t)."""

import hashlib
import http.server
import os
import re
import threading
import time

import pytest

from http_client import Connection
from nginx_diff import refusals, start_portico
from test_proxy import ThreadingServer

BODY = os.urandom(40000)


class RatedHandler(http.server.BaseHTTPRequestHandler):
    """Answers BODY; ?xal=N adds X-Accel-Limit-Rate: N."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        match = re.search(r"xal=(\d+)", self.path)
        if match:
            self.send_header("X-Accel-Limit-Rate", match.group(1))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def backend():
    server = ThreadingServer(("127.0.0.1", 0), RatedHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


CONF = """
    server {
        listen 127.0.0.1:@PORT@;
        root %(root)s;
        location /static/ { limit_rate 16k; limit_rate_after 8k; }
        location /var/ {
            alias %(root)s/static/;
            limit_rate $arg_l;
            limit_rate_after $arg_a;
        }
        location /set/ {
            alias %(root)s/static/;
            set $limit_rate $arg_l;
            add_header X-Rate $limit_rate;
        }
        location /up/ { proxy_pass http://127.0.0.1:%(port)d; }
        location /up-ignore/ {
            proxy_pass http://127.0.0.1:%(port)d;
            proxy_ignore_headers X-Accel-Limit-Rate;
        }
        location /read/ {
            proxy_pass http://127.0.0.1:%(port)d;
            proxy_buffer_size 4k;
            proxy_limit_rate 16000;
        }
    }
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory, backend):
    root = tmp_path_factory.mktemp("rate")
    (root / "static").mkdir()
    (root / "static" / "data").write_bytes(BODY)
    server = start_portico(str(root), CONF % {"root": root, "port": backend}, 1, mime=False)
    yield server
    server.stop()


def timed_get(server, target):
    started = time.monotonic()
    with Connection.tcp("127.0.0.1", server.ports[0], 30.0) as conn:
        r = conn.request("GET", target, host="localhost")
    return r, time.monotonic() - started


def intact(response):
    return response.status == 200 and hashlib.sha256(response.body).digest() == \
        hashlib.sha256(BODY).digest()


@pytest.mark.time_budget(60)
def test_limit_rate_paces_a_static_file(served):
    r, took = timed_get(served, "/static/data")
    assert intact(r), r.status
    # 40000 bytes, 8k at once, then 16k/s with a second's worth ahead: >= ~0.95 s.
    assert took >= 0.9, took


@pytest.mark.time_budget(60)
def test_limit_rate_with_variables(served):
    r, took = timed_get(served, "/var/data?l=16k&a=8k")
    assert intact(r), r.status
    assert took >= 0.9, took
    # No rate (an empty value: nginx's 0) and an `after` past the size: no pacing to assert,
    # the body is whole.
    for target in ("/var/data", "/var/data?l=16k&a=40k"):
        r, _took = timed_get(served, target)
        assert intact(r), (target, r.status)


@pytest.mark.time_budget(60)
def test_set_limit_rate_and_read_it(served):
    r, took = timed_get(served, "/set/data?l=16k")
    assert intact(r), r.status
    assert r.header("X-Rate") == "16384"
    assert took >= 1.9, took
    # An invalid size changes nothing (nginx logs it): no rate.
    r, _took = timed_get(served, "/set/data?l=fast")
    assert intact(r), r.status
    assert r.header("X-Rate") == "0"


@pytest.mark.time_budget(60)
def test_x_accel_limit_rate_from_the_upstream(served):
    r, took = timed_get(served, "/up/data?xal=12000")
    assert intact(r), r.status
    assert r.header("X-Accel-Limit-Rate") is None  # nginx hides it
    assert took >= 1.9, took
    r, _took = timed_get(served, "/up-ignore/data?xal=12000")
    assert intact(r), r.status
    assert r.header("X-Accel-Limit-Rate") is None


@pytest.mark.time_budget(60)
def test_proxy_limit_rate_paces_the_upstream_read(served):
    r, took = timed_get(served, "/read/data")
    assert intact(r), r.status
    # 40000 bytes read at 16000/s with a second's worth ahead: >= ~1.5 s.
    assert took >= 1.4, took


@pytest.mark.parametrize("directive", ["limit_rate x", "limit_rate_after x", "limit_rate -1",
                                       "limit_rate 1k 2", "proxy_limit_rate x",
                                       "uwsgi_limit_rate 1z"])
def test_bad_values_are_refused_as_nginx(tmp_path, directive):
    ours, nginx = refusals(tmp_path, directive + ";")
    assert ours == nginx
