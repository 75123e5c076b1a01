"""limit_except, and proxy_pass inside `if`, against Debian's nginx 1.22: both make an implicit
location (nginx's noname location) merged under the enclosing one. A method limit_except does
not let through is served by its block (access rules, auth_basic, a proxy_pass of its own or
the location's, and no rewrite directives: the block has none); an `if` that holds is served
with its own proxy_pass, or with the location's. The backend is a second server of the same
file on @PORT2@, so both servers proxy to themselves (`proxy_pass  http://127.0.0.1:@PORT2@;`
has two spaces: with one, nginx_diff would give portico its echo app instead)."""

import base64

import pytest

from nginx_diff import refusals, run_case

BACKEND = """
    server {
        listen 127.0.0.1:@PORT2@;
        location / { return 200 "backend $request_method $uri $args\\n"; }
    }
"""

LIMIT_EXCEPT = r"""
    server {
        listen 127.0.0.1:@PORT@;
        root @DIR@/www;
        location /deny/ {
            limit_except GET { deny all; }
            return 200 "deny $request_method\n";
        }
        location /files/ {
            limit_except GET POST { allow 10.0.0.1; deny all; }
        }
        location /px/ {
            proxy_pass http://127.0.0.1:@PORT2@/replaced/;
            limit_except GET { }
        }
        location /px2/ {
            proxy_pass http://127.0.0.1:@PORT2@/replaced/;
            limit_except GET { proxy_pass  http://127.0.0.1:@PORT2@; }
        }
        location /own/ {
            limit_except PUT { proxy_pass  http://127.0.0.1:@PORT2@; }
        }
        location /outer/ {
            limit_except GET { deny all; }
            location /outer/inner/ { return 200 "inner $request_method\n"; }
        }
        location /auth/ {
            limit_except GET HEAD {
                auth_basic "private";
                auth_basic_user_file @DIR@/htpasswd;
            }
            return 200 "auth $request_method $remote_user\n";
        }
        location /lower/ {
            limit_except get { deny all; }
            return 200 "lower $request_method\n";
        }
    }
""" + BACKEND

FILES = {
    "www/files/a.txt": "file a\n",
    "www/own/a.txt": "own a\n",
    "www/deny/a.txt": "deny a\n",
    "htpasswd": "user:{PLAIN}secret\n",
}

CREDENTIALS = [("Authorization", "Basic " + base64.b64encode(b"user:secret").decode())]


def test_limit_except_as_nginx(tmp_path):
    requests = []
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "FOO"):
        requests += [
            (method, "/deny/a.txt"),
            (method, "/files/a.txt"),
            (method, "/px/x?q=1"),
            (method, "/px2/x?q=1"),
            (method, "/own/a.txt"),
            (method, "/outer/a"),
            (method, "/outer/inner/a"),
            (method, "/auth/x"),
            (method, "/auth/x", {"headers": CREDENTIALS}),
            (method, "/lower/x"),
        ]
    run_case(tmp_path, LIMIT_EXCEPT, FILES, requests, nports=2,
             extra_headers=("www-authenticate",))


PASS_IN_IF = r"""
    server {
        listen 127.0.0.1:@PORT@;
        root @DIR@/www;
        location /if/ {
            proxy_pass http://127.0.0.1:@PORT2@/replaced/;
            if ($arg_own) { proxy_pass  http://127.0.0.1:@PORT2@; }
            if ($arg_nothing) { }
        }
        location /static/ {
            if ($arg_px) { proxy_pass  http://127.0.0.1:@PORT2@; }
        }
        location /two/ {
            set $t 1;
            if ($t) { proxy_pass  http://127.0.0.1:@PORT2@; }
            if ($arg_second) { }
        }
        location /vars/ {
            proxy_pass http://127.0.0.1:@PORT2@/v/$arg_v;
            if ($arg_plain) { proxy_pass  http://127.0.0.1:@PORT2@; }
        }
    }
""" + BACKEND


def test_proxy_pass_inside_if_as_nginx(tmp_path):
    # /two/?second=1: the first `if` set the handler, the second holds with no pass of its own
    # and none to inherit: nginx's 500 ("no upstream configuration").
    requests = [("GET", t) for t in (
        "/if/a", "/if/a?own=1", "/if/a?nothing=1", "/if/a?own=1&nothing=1",
        "/static/a.txt", "/static/a.txt?px=1", "/static/none?px=1",
        "/two/a", "/two/a?second=1", "/vars/a?v=x", "/vars/a?v=x&plain=1")]
    requests.append(("POST", "/if/a?own=1"))
    run_case(tmp_path, PASS_IN_IF, {"www/static/a.txt": "static a\n"}, requests, nports=2)


@pytest.mark.parametrize("text", [
    "location / { limit_except FOO { } }",
    "location / { limit_except GET { } limit_except POST { } }",
    "location / { limit_except GET { root /x; } }",
    "location / { limit_except GET { return 403; } }",
    "location / { limit_except GET { proxy_pass http://127.0.0.1:1/uri; } }",
    "location / { if ($arg_a) { proxy_pass http://127.0.0.1:1/uri; } }",
    "location / { limit_except GET; }",
    "limit_except GET { }",
    "location / { limit_except { } }",
])
def test_bad_limit_except_and_pass_in_if_are_refused_as_nginx(tmp_path, text):
    ours, nginx = refusals(tmp_path, "server { listen 127.0.0.1:1; %s }" % text)
    assert ours == nginx
