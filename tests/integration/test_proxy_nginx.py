"""proxy_pass, differential: the same configuration in Debian's nginx and in portico, in front
of one echo backend (which answers the request line and headers it received, and the body's
hash): what the backend sees and what the client gets must be the same.

Left out on purpose: a duplicate Content-Length from the upstream (nginx 1.22 passes it on,
portico answers 502, as nginx 1.23+), and proxy_pass_request_body off with a POST body (nginx
1.22 leaves the client waiting; test_proxy.py checks portico's answer)."""

import hashlib

import pytest

from nginx_diff import run_case
from test_proxy import RawBackend, echo_backend  # noqa: F401 (echo_backend is a fixture)


CONF = """
    client_max_body_size 1m;
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        location / { proxy_pass http://127.0.0.1:%(b)d; }
        location /app/ { proxy_pass http://127.0.0.1:%(b)d/inner/; }
        location /root/ { proxy_pass http://127.0.0.1:%(b)d/; }
        location /h/ {
            proxy_pass http://127.0.0.1:%(b)d;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Proxy "$proxy_host|$proxy_port";
        }
        location /nohdr/ { proxy_pass http://127.0.0.1:%(b)d; proxy_pass_request_headers off; }
        location /setbody/ {
            proxy_pass http://127.0.0.1:%(b)d;
            proxy_method PUT;
            proxy_set_body "a=$arg_a";
        }
        location /hide/ {
            proxy_pass http://127.0.0.1:%(b)d;
            proxy_hide_header X-Backend;
            proxy_pass_header X-Accel-Buffering;
        }
        location /rw/ { rewrite ^/rw/(.*)$ /moved/$1 break; proxy_pass http://127.0.0.1:%(b)d; }
        location /dead/ { proxy_pass http://127.0.0.1:%(dead)d; }
    }
"""


def test_proxy_matches_nginx(tmp_path, echo_backend):
    dead = RawBackend(lambda conn: None)
    dead_port = dead.port
    dead.close()  # nothing listens there any more: connection refused
    body = b"x" * 3000
    requests = [
        ("GET", "/plain?a=1&b=%20", {"headers": [("X-Forwarded-For", "1.2.3.4"),
                                                ("Keep-Alive", "10"), ("X-Custom", "v")]}),
        ("GET", "/a/./b/../c%41"),
        ("HEAD", "/plain"),
        ("POST", "/post", {"body": body}),
        ("GET", "/app/x%20y/z?q"),
        ("GET", "/app/"),
        ("GET", "/app"),
        ("GET", "/root/deep/path"),
        ("GET", "/h/keep?x", {"headers": [("X-Forwarded-For", "9.9.9.9")]}),
        ("GET", "/nohdr/a", {"headers": [("X-Custom", "dropped")]}),
        ("GET", "/setbody/x?a=42"),
        ("GET", "/hide/x"),
        ("GET", "/rw/some%20where?k=v"),
        ("GET", "/dead/x"),
        ("GET", "/plain", {"version": "HTTP/1.0", "host": None}),
    ]
    run_case(tmp_path, CONF % {"b": echo_backend, "dead": dead_port}, {}, requests)


NAMES_CONF = """
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        %(first)s
        location / { proxy_pass http://127.0.0.1:%(b)d; }
    }
    server {
        listen 127.0.0.1:@PORT2@;
        server_name localhost;
        %(second)s
        location / { proxy_pass http://127.0.0.1:%(b)d; }
    }
"""

ODD_NAMES = [("x_foo", "under"), ("_lead", "under first"), ("x.foo", "dot"), ("</kie>", "odd"),
             ("X-Ok", "plain"), ("X-\xe9t\xe9", "latin-1")]


@pytest.mark.parametrize("first, second", [
    ("", "underscores_in_headers on;"),
    ("ignore_invalid_headers off;", "ignore_invalid_headers off; underscores_in_headers on;"),
])
def test_header_names_as_nginx_judges_them(tmp_path, echo_backend, first, second):
    # ignore_invalid_headers (on: names with anything but letters, digits and '-' are dropped)
    # and underscores_in_headers: the backend sees the same headers behind both servers.
    requests = [("GET", "/names", {"headers": ODD_NAMES, "port_index": index}) for index in (0, 1)]
    requests.append(("GET", "/bad", {"headers": [(":colon", "x")]}))  # a 400 under every rule
    run_case(tmp_path, NAMES_CONF % {"b": echo_backend, "first": first, "second": second}, {},
             requests, nports=2)
