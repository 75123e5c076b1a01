"""proxy_cookie_flags against Debian's nginx 1.22: the Set-Cookie an upstream sends (here a
second server of the same file, which echoes ?c= as its cookie) gets Secure, HttpOnly and
SameSite set, replaced or cleared by the first line naming the cookie (by name, variable or
regex; flags from variables; `off` in a nested location)."""

import pytest

from nginx_diff import refusals, run_case

CONF = r"""
    server {
        listen 127.0.0.1:@PORT@;
        location / {
            proxy_pass http://127.0.0.1:@PORT2@/;
            proxy_cookie_flags a secure httponly samesite=none;
            proxy_cookie_flags b nosecure nohttponly nosamesite;
            proxy_cookie_flags c samesite=strict;
            proxy_cookie_flags $arg_name secure;
            proxy_cookie_flags ~^re httponly samesite=lax;
            proxy_cookie_domain backend.local front.example;
            location /off/ {
                proxy_pass http://127.0.0.1:@PORT2@/;
                proxy_cookie_flags off;
            }
        }
        location /var/ {
            proxy_pass http://127.0.0.1:@PORT2@/;
            proxy_cookie_flags $arg_v $arg_f1 $arg_f2 $arg_f3;
        }
    }
    server {
        listen 127.0.0.1:@PORT2@;
        location / { add_header Set-Cookie $arg_c; return 200 "ok"; }
    }
"""

# Raw in the query ($arg_c is not decoded), so without spaces.
COOKIES = ["a=1", "a=1;Path=/;secure;SameSite=Lax", "A=1;HttpOnly",
           "b=2;Secure;HTTPONLY;samesite=strict;Domain=backend.local",
           "c=3;SameSite=none", "c=3", "nx=4;samesite=none", "rest=5;httponly",
           "broken;secure", "v=6"]


def test_cookie_flags_as_nginx(tmp_path):
    requests = [("GET", "/?c=" + c) for c in COOKIES]
    requests += [("GET", "/?name=v&c=" + c) for c in ("v=1", "V=1;Secure")]
    requests += [("GET", "/off/?c=" + c) for c in COOKIES[:3]]
    requests += [("GET", "/var/?v=v&f1=nosecure&f2=httponly&f3=samesite=none&c=v=1;secure"),
                 ("GET", "/var/?v=v&f1=bogus&f2=&f3=secure&c=v=1"),
                 ("GET", "/var/?v=w&f1=secure&c=v=1")]
    run_case(tmp_path, CONF, {}, requests, nports=2, extra_headers=("set-cookie",))


@pytest.mark.parametrize("text", [
    "proxy_cookie_flags on;",
    "proxy_cookie_flags a b c d e;",
    "proxy_cookie_flags off; proxy_cookie_flags off;",
    "proxy_cookie_flags a secure; proxy_cookie_flags off;",
    "proxy_cookie_flags off; proxy_cookie_flags a secure;",
    "proxy_cookie_flags ~( secure;",
])
def test_bad_cookie_flags_are_refused_as_nginx(tmp_path, text):
    ours, nginx = refusals(tmp_path, text)
    assert ours == nginx
