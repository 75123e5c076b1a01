"""Differential cases: the same nginx configuration served by nginx and by portico.

Every case runs nginx first (its answers are always checked to come back), then portico with
`-c`; see nginx_diff.py. Set NGINX_DIFF_SHOW=1 (with -s) to print nginx's answers.
"""

import os
import time

import pytest

from http_client import parse_http_date
from nginx_diff import PROXY, prepare_tree, run_case, start_portico


FILES = {
    "www/index.html": "<h1>home</h1>\n",
    "www/a.txt": "alpha\n",
    "www/404.html": "custom not found\n",
    "www/403.html": "custom forbidden\n",
    "www/fallback.html": "fallback\n",
    "www/dir/index.html": "dir index\n",
    "www/dir/page.html": "dir page\n",
    "www/empty/": None,
    "www/rel/sub/index.html": "rel sub\n",
    "www/named/sub/index.html": "named sub\n",
    "www/noport/sub/index.html": "noport sub\n",
    "www/epoch/f.txt": "epoch\n",
    "www/max/f.txt": "max\n",
    "www/neg/f.txt": "neg\n",
    "www/style.css": "body{}\n",
    "www/upload/f.txt": "upload\n",
    "assets/logo.png": b"\x89PNG-ish",
    "assets/img/x.gif": b"GIF89a-ish",
    "assets/img/readme.txt": "img readme\n",
    "r/rooted/f.txt": "rooted\n",
}
FILES = {k: (v if v is not None else b"") for k, v in FILES.items() if v is not None}
FILES["www/empty/"] = b""


def server(body, extra_listen=""):
    return """
    server {
        listen 127.0.0.1:@PORT@;
        %s
        server_name localhost;
        root @DIR@/www;
        %s
    }
""" % (extra_listen, body)


LOCATION_ORDER = server(r"""
        location = / { return 200 "exact root"; }
        location / { return 200 "prefix root $uri"; }
        location /documents/ { return 200 "documents"; }
        location ^~ /images/ { return 200 "images"; }
        location ~* \.(gif|jpg|jpeg)$ { return 200 "regex caseless $1"; }
        location ~ \.PNG$ { return 200 "regex sensitive"; }
        location /nested/ {
            location ~ \.css$ { return 200 "nested css"; }
            location /nested/deeper/ { return 200 "deeper"; }
            return 200 "nested";
        }
        location ~ \.css$ { return 200 "outer css"; }
        location ^~ /stop/ {
            location ~ \.txt$ { return 200 "stop nested txt"; }
            return 200 "stop";
        }
""")


def test_location_order(tmp_path):
    run_case(tmp_path, LOCATION_ORDER, FILES, [
        ("GET", "/"), ("GET", "/index.html"), ("GET", "/documents/a.html"),
        ("GET", "/documents/a.jpg"), ("GET", "/images/a.gif"), ("GET", "/x/A.JPG"),
        ("GET", "/x/a.png"), ("GET", "/x/a.PNG"), ("GET", "/nested/a.css"),
        ("GET", "/nested/a.txt"), ("GET", "/nested/deeper/x.css"), ("GET", "/y/a.css"),
        ("GET", "/stop/a.txt"), ("GET", "/stop/a.css"), ("GET", "/%64ocuments/x"),
        ("GET", "/a/../documents/x"),
    ])


ROOT_ALIAS = server(r"""
        location / { }
        location /static/ { alias @DIR@/assets/; }
        location /rooted/ { root @DIR@/r; }
""")

REGEX_ALIAS = server(r"""
        location ~ ^/pics/(.+\.gif)$ { alias @DIR@/assets/img/$1; }
        location ~ ^/byname/(?<file>[a-z]+)$ { root @DIR@/www; try_files /$file.txt =404; }
""")


def test_regex_alias_with_captures(tmp_path):
    run_case(tmp_path, REGEX_ALIAS, FILES, [
        ("GET", "/pics/x.gif"), ("GET", "/pics/no.gif"), ("GET", "/byname/a"),
        ("GET", "/byname/zz"),
    ])


# A location nested in an alias location (and setting neither root nor alias) inherits the
# alias, which keeps replacing the enclosing prefix (ngx_http_core_merge_loc_conf); one that sets
# root does not. The common hardened-Django pattern: cache headers for assets under /static/.
NESTED_ALIAS = server(r"""
        location /static/ {
            alias @DIR@/assets/;
            location ~* \.(gif|png)$ { add_header X-Nested asset; }
            location /static/img/ { add_header X-Nested img; }
            location /static/rooted/ { root @DIR@/r; }
        }
        location ~ ^/re/(\w+)/ {
            alias @DIR@/assets/img/readme.txt;
            location ~ \.txt$ { add_header X-Nested re; }
        }
""")


def test_nested_locations_inherit_alias(tmp_path):
    run_case(tmp_path, NESTED_ALIAS, FILES, [
        ("GET", "/static/logo.png"), ("GET", "/static/img/readme.txt"), ("GET", "/static/img/x.gif"),
        ("GET", "/static/missing.png"), ("GET", "/static/rooted/f.txt"), ("GET", "/re/a/b.txt"),
    ])


# Variables in root and alias (nginx compiles them into scripts; so does portico).
VARIABLE_ROOTS = server(r"""
        location /byhost/ { root @DIR@/$host; }
        location /al/ { alias @DIR@/assets/$arg_d/; }
""")


def test_variables_in_root_and_alias(tmp_path):
    files = dict(FILES)
    files["localhost/byhost/f.txt"] = "by host\n"
    files["other.test/byhost/f.txt"] = "other host\n"
    run_case(tmp_path, VARIABLE_ROOTS, files, [
        ("GET", "/byhost/f.txt"), ("GET", "/byhost/f.txt", {"host": "other.test"}),
        ("GET", "/byhost/f.txt", {"host": "nowhere.test"}), ("GET", "/al/x.gif?d=img"),
        ("GET", "/al/x.gif"), ("GET", "/al/readme.txt?d=img"),
    ])


def test_root_and_alias(tmp_path):
    run_case(tmp_path, ROOT_ALIAS, FILES, [
        ("GET", "/a.txt"), ("HEAD", "/a.txt"), ("GET", "/static/logo.png"),
        ("GET", "/static/img"), ("GET", "/static/img/"), ("GET", "/static/img/readme.txt"),
        ("GET", "/rooted/f.txt"), ("POST", "/missing"), ("DELETE", "/a.txt"),
        ("GET", "/missing"), ("GET", "/static/../a.txt"), ("POST", "/a.txt"),
        ("GET", "/empty/"), ("GET", "/nodir/"),
    ])


INDEX_TRY_FILES = server(r"""
        location / {
            index index.htm index.html;
            try_files $uri $uri/ /fallback.html;
        }
        location /strict/ { try_files $uri =404; }
        location /teapot/ { try_files $uri =418; }
        location /named/ { try_files $uri @back; }
        location @back { return 200 "back $uri $args"; }
        location = /first/ { index nothere.html /a.txt; }
        location /withargs/ { try_files $uri /a.txt?from=$uri; }
        location = /a.txt { add_header X-Args "$args"; }
""")


def test_index_and_try_files(tmp_path):
    run_case(tmp_path, INDEX_TRY_FILES, FILES, [
        ("GET", "/"), ("GET", "/dir/"), ("GET", "/dir"), ("GET", "/dir/page.html"),
        ("GET", "/nowhere?x=1"), ("GET", "/strict/x"), ("GET", "/teapot/x"),
        ("GET", "/named/x?y=1"), ("GET", "/first/"), ("GET", "/withargs/zz?q=1"),
    ])


DIR_REDIRECTS = """
    server {
        listen 127.0.0.1:@PORT@;
        server_name canon.test;
        root @DIR@/www;
        location /rel/ { absolute_redirect off; }
        location /named/ { server_name_in_redirect on; }
        location /noport/ { port_in_redirect off; }
    }
"""


def test_directory_redirects(tmp_path):
    run_case(tmp_path, DIR_REDIRECTS, FILES, [
        ("GET", "/dir"), ("GET", "/dir?a=1&b=2"), ("GET", "/rel/sub"), ("GET", "/named/sub"),
        ("GET", "/noport/sub"), ("GET", "/dir", {"host": "Other.Test:9999"}),
        ("GET", "/dir", {"host": None, "version": "HTTP/1.0"}), ("HEAD", "/dir"),
    ])


ERROR_PAGES = server(r"""
        error_page 404 /404.html;
        location / { }
        location /code/ { error_page 404 =200 /404.html; }
        location /named/ { error_page 404 = @fb; }
        location @fb { return 202 "fb $uri"; }
        location /ext/ { error_page 404 https://elsewhere.test/; }
        location /ext301/ { error_page 404 =301 https://elsewhere.test/moved; }
        location /ret/ { error_page 403 /403.html; return 403; }
        location /loop/ { error_page 404 /loop/again; }
        location /multi/ { error_page 403 404 500 /404.html; }
""")


def test_error_pages(tmp_path):
    run_case(tmp_path, ERROR_PAGES, FILES, [
        ("GET", "/nothing"), ("GET", "/code/x"), ("GET", "/named/x"), ("GET", "/ext/x"),
        ("GET", "/ext301/x"), ("GET", "/ret/x"), ("GET", "/loop/x"), ("GET", "/multi/x"),
        ("HEAD", "/nothing"), ("POST", "/nothing"),
    ])


SERVER_NAMES = r"""
    server { listen 127.0.0.1:@PORT@; server_name first.test; return 200 "first $host"; }
    server { listen 127.0.0.1:@PORT@ default_server; server_name *.wild.test;
             return 200 "wild $host $server_name"; }
    server { listen 127.0.0.1:@PORT@; server_name *.deep.wild.test; return 200 "deep"; }
    server { listen 127.0.0.1:@PORT@; server_name www.tail.*; return 200 "tail"; }
    server { listen 127.0.0.1:@PORT@; server_name .dot.test; return 200 "dot"; }
    server { listen 127.0.0.1:@PORT@; server_name ~^(?<user>[a-z]+)\.re\.test$;
             return 200 "re $user"; }
    server { listen 127.0.0.1:@PORT2@; server_name first.test; return 200 "port2"; }
    server { listen 127.0.0.1:@PORT2@; return 200 "unnamed"; }
"""


def test_server_name_selection(tmp_path):
    run_case(tmp_path, SERVER_NAMES, FILES, [
        ("GET", "/", {"host": "first.test"}), ("GET", "/", {"host": "FIRST.TEST."}),
        ("GET", "/", {"host": "first.test:1234"}), ("GET", "/", {"host": "a.wild.test"}),
        ("GET", "/", {"host": "a.deep.wild.test"}), ("GET", "/", {"host": "www.tail.com"}),
        ("GET", "/", {"host": "dot.test"}), ("GET", "/", {"host": "x.dot.test"}),
        ("GET", "/", {"host": "bob.re.test"}), ("GET", "/", {"host": "other.test"}),
        ("GET", "/", {"host": "a..b"}), ("GET", "/", {"host": None, "version": "HTTP/1.0"}),
        ("GET", "/", {"headers": [("Host", "")], "host": None}),
        ("GET", "http://first.test/abs", {"host": "other.test"}),
        ("GET", "/", {"host": "other.test", "port_index": 1}),
        ("GET", "/", {"host": None, "version": "HTTP/1.0", "port_index": 1}),
    ], nports=2)


RETURNS = server(r"""
        location /r301/ { return 301 https://$host$request_uri; }
        location /r302 { return 302 /target; }
        location /url { return https://example.com/x; }
        location /text { return 200 "hello $arg_name"; }
        location /code { return 418; }
        location /empty { return 204; }
        location /typed { default_type text/plain; return 200 "typed"; }
        location /r307 { return 307 $scheme://$host:$server_port/t?$args; }
""")


def test_return(tmp_path):
    run_case(tmp_path, RETURNS, FILES, [
        ("GET", "/r301/a?b=c"), ("GET", "/r302"), ("GET", "/url"), ("GET", "/text?name=x"),
        ("GET", "/code"), ("GET", "/empty"), ("GET", "/typed"), ("GET", "/r307?k=v"),
        ("HEAD", "/text"),
    ])


HEADERS = server(r"""
        location / { add_header X-A "a $uri"; add_header X-B b always; expires 1h; }
        location /epoch/ { expires epoch; }
        location /max/ { expires max; }
        location /neg/ { expires -1; }
        location /none/ { add_header X-Only only; }
""")


def test_add_header_and_expires(tmp_path):
    run_case(tmp_path, HEADERS, FILES, [
        ("GET", "/a.txt"), ("GET", "/missing"), ("GET", "/dir"), ("GET", "/epoch/f.txt"),
        ("GET", "/max/f.txt"), ("GET", "/neg/f.txt"), ("GET", "/none/x"),
    ])


EXPIRES = server(r"""
        location /var/ { expires $arg_e; }
        location /modified/ { expires modified 1h; }
        location /modvar/ { expires modified $arg_e; }
        location /zero/ { expires 0; }
""")


def test_expires_with_variables_and_modified(tmp_path):
    # A file last modified in 2000: `modified` times land in the past (Expires compared as a
    # date, Cache-Control no-cache), so nothing depends on when either server answers.
    files = {"www/var/f.txt": "v\n", "www/modified/f.txt": "m\n", "www/modvar/f.txt": "mv\n",
             "www/zero/f.txt": "z\n"}
    old = 946684800  # 2000-01-01T00:00:00Z

    requests = [("GET", "/var/f.txt?e=" + e) for e in
                ("epoch", "max", "off", "1h", "%2B1h", "-1h", "0", "soon", "", "@25h")]
    requests += [("GET", "/modified/f.txt")]
    requests += [("GET", "/modvar/f.txt?e=" + e) for e in ("1h", "-1h", "epoch", "@1h", "x")]
    requests += [("GET", "/zero/f.txt")]
    workdir = str(tmp_path)
    prepare_tree(workdir, files)
    for relative in files:
        os.utime(os.path.join(workdir, relative), (old, old))
    run_case(tmp_path, EXPIRES, {}, requests)  # no files: the tree stays as aged here


def test_expires_daily_is_the_next_local_time_of_day(tmp_path):
    prepare_tree(str(tmp_path), {"www/a.txt": "a\n"})
    portico = start_portico(str(tmp_path), server("expires @15h30m33s;"), 1)
    try:
        r = portico.request("GET", "/a.txt")
    finally:
        portico.stop()
    date = parse_http_date(r.header("Date")).timestamp()
    expires = parse_http_date(r.header("Expires")).timestamp()
    local = time.localtime(date)
    today = time.mktime((local.tm_year, local.tm_mon, local.tm_mday, 15, 30, 33, 0, 0, -1))
    tomorrow = time.mktime((local.tm_year, local.tm_mon, local.tm_mday + 1, 15, 30, 33, 0, 0,
                            -1))
    assert expires in (today, tomorrow), r.headers
    assert date < expires <= date + 86400
    max_age = int(r.header("Cache-Control").split("=")[1])
    assert abs(max_age - (expires - date)) <= 1, r.headers


BODY_LIMITS = server(r"""
        client_max_body_size 10;
        location / { }
        location /upload/ { client_max_body_size 0; }
        location /paged/ { error_page 413 /404.html; }
        location /paged413/ { error_page 413 =200 /a.txt; }
""")


def test_body_limits(tmp_path):
    run_case(tmp_path, BODY_LIMITS, FILES, [
        ("POST", "/a.txt", {"body": b"x" * 11}), ("POST", "/a.txt", {"body": b"x" * 5}),
        ("POST", "/upload/f.txt", {"body": b"x" * 100}), ("POST", "/paged/x", {"body": b"x" * 11}),
        ("POST", "/paged413/x", {"body": b"x" * 11}),
    ])


TYPES_KEEPALIVE = server(r"""
        keepalive_timeout 30 25;
        location / { }
        location /typed/ {
            types { text/x-special txt; }
            default_type text/x-unknown;
            alias @DIR@/www/;
        }
        location /once/ { keepalive_requests 1; alias @DIR@/www/; }
        location /nokeep/ { keepalive_timeout 0; alias @DIR@/www/; }
""")


def test_types_and_keepalive(tmp_path):
    run_case(tmp_path, TYPES_KEEPALIVE, FILES, [
        ("GET", "/a.txt"), ("GET", "/typed/a.txt"), ("GET", "/typed/style.css"),
        ("GET", "/once/a.txt"), ("GET", "/nokeep/a.txt"),
        ("GET", "/a.txt", {"version": "HTTP/1.0", "headers": [("Connection", "keep-alive")]}),
    ])


HEADER_LIMITS = server(r"""
        large_client_header_buffers 2 1k;
        location / { }
""")


def test_large_client_header_buffers(tmp_path):
    run_case(tmp_path, HEADER_LIMITS, FILES, [
        ("GET", "/a.txt"), ("GET", "/" + "x" * 1100),
        ("GET", "/a.txt", {"headers": [("X-Long", "y" * 1100)]}),
        ("GET", "/a.txt", {"headers": [("X-%d" % i, "z" * 600) for i in range(4)]}),
    ])


# The shape of the common Django deployment tutorials, with the app's proxy_pass left out.
DJANGO_TUTORIAL = server(r"""
        charset_placeholder_removed_by_the_test;
        location = /favicon.ico { access_log off; log_not_found off; }
        location /static/ { alias @DIR@/assets/; expires 30d; }
        error_page 500 502 503 504 /50x.html;
        location = /50x.html { root @DIR@/www; }
        location / { try_files $uri $uri/ =404; }
""").replace("        charset_placeholder_removed_by_the_test;\n", "")


def test_django_tutorial_shape(tmp_path):
    files = dict(FILES)
    files["www/50x.html"] = "sorry\n"
    run_case(tmp_path, DJANGO_TUTORIAL, files, [
        ("GET", "/favicon.ico"), ("GET", "/static/logo.png"), ("GET", "/static/img/"),
        ("GET", "/"), ("GET", "/a.txt"), ("GET", "/dir"), ("GET", "/nothing"),
        ("GET", "/50x.html"),
    ])


# An app location where nginx would proxy: auto_redirect of "/app", the URI the app sees.
APP_MOUNTS = server(r"""
        location / { }
        location /app/ { %(proxy)s }
        location /exact/ { %(proxy)s }
        location = /exact { return 200 "exact wins"; }
""" % {"proxy": PROXY})


def test_app_locations_against_proxy_pass(tmp_path):
    run_case(tmp_path, APP_MOUNTS, FILES, [
        ("GET", "/app"), ("GET", "/app?x=1"), ("GET", "/app/"), ("GET", "/app/a/b?c=d"),
        ("GET", "/exact"), ("GET", "/exact/x"), ("GET", "/a.txt"),
    ])


GZIP = server(r"""
        gzip on;
        gzip_vary on;
        gzip_min_length 20;
        gzip_types text/plain text/css application/json;
        location / { }
        location /off/ { gzip off; alias @DIR@/www/; }
        location /ret/ { return 200 "a returned text long enough to be compressed, twice over"; }
        location /static/ { alias @DIR@/assets/; gzip_static on; }
""")


def test_gzip_through_locations(tmp_path):
    files = dict(FILES)
    files["www/long.txt"] = "portico and nginx compress the same bytes\n" * 50
    files["www/long.css"] = "body { color: red; }\n" * 40
    files["assets/pre.css"] = "plain\n" * 10
    files["assets/pre.css.gz"] = b"\x1f\x8b-not-really-gzip"
    gz = [("Accept-Encoding", "gzip")]
    run_case(tmp_path, GZIP, files, [
        ("GET", "/long.txt", {"headers": gz}), ("GET", "/long.txt"),
        ("GET", "/long.css", {"headers": gz}), ("GET", "/a.txt", {"headers": gz}),
        ("GET", "/index.html", {"headers": gz}), ("GET", "/off/long.txt", {"headers": gz}),
        ("HEAD", "/long.txt", {"headers": gz}), ("GET", "/ret/x.txt", {"headers": gz}),
        ("GET", "/static/pre.css", {"headers": gz}), ("GET", "/static/pre.css"),
        ("GET", "/missing", {"headers": gz}),
    ])


GZIP_APP = server(r"""
        gzip on;
        gzip_min_length 1;
        gzip_types text/plain;
        location /app/ { %(proxy)s }
""" % {"proxy": PROXY})


def test_gzip_of_an_app_response(tmp_path):
    gz = [("Accept-Encoding", "gzip")]
    run_case(tmp_path, GZIP_APP, FILES, [
        ("GET", "/app/some/where?x=1", {"headers": gz}), ("GET", "/app/plain"),
        ("HEAD", "/app/head", {"headers": gz}),
    ])


# The most common tutorial shape: files first, the app for the rest (`try_files $uri @django`,
# the app in a named location sees the whole URI, as proxy_pass there passes it).
NAMED_APP = server(r"""
        location / { try_files $uri @django; }
        location @django { %(proxy)s }
""" % {"proxy": PROXY})


def test_app_in_a_named_location(tmp_path):
    run_case(tmp_path, NAMED_APP, FILES, [
        ("GET", "/a.txt"), ("GET", "/missing/page?x=1&y=%2F"), ("GET", "/dir/"),
        ("GET", "/"), ("HEAD", "/nothing"), ("POST", "/form?a=1", {"body": b"field=1"}),
        ("GET", "/static/../a.txt"),
    ])


# gzip_static asks ngx_http_gzip_ok (gzip_http_version, gzip_disable); `always` serves the
# sibling to every client, without Vary.
GZIP_STATIC_CLIENTS = server(r"""
        gzip_vary on;
        location /s/ { alias @DIR@/assets/; gzip_static on; gzip_disable "curl"; }
        location /v/ { alias @DIR@/assets/; gzip_static on; gzip_http_version 1.1; }
        location /v10/ { alias @DIR@/assets/; gzip_static on; gzip_http_version 1.0; }
        location /a/ { alias @DIR@/assets/; gzip_static always; }
        location /m/ { alias @DIR@/assets/; gzip_static on; gzip_disable msie6; }
""")


def test_gzip_static_client_checks(tmp_path):
    files = dict(FILES)
    files["assets/pre.css"] = "plain\n" * 10
    files["assets/pre.css.gz"] = b"\x1f\x8b-not-really-gzip"
    gz = [("Accept-Encoding", "gzip")]
    curl = gz + [("User-Agent", "curl/7.88")]
    firefox = gz + [("User-Agent", "Mozilla/5.0 Firefox/120.0")]
    msie = gz + [("User-Agent", "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.0)")]
    old = {"headers": gz, "version": "HTTP/1.0", "host": None}
    run_case(tmp_path, GZIP_STATIC_CLIENTS, files, [
        ("GET", "/s/pre.css", {"headers": curl}), ("GET", "/s/pre.css", {"headers": firefox}),
        ("GET", "/s/pre.css"), ("GET", "/v/pre.css", old), ("GET", "/v/pre.css", {"headers": gz}),
        ("GET", "/v10/pre.css", old), ("GET", "/a/pre.css"), ("GET", "/a/pre.css", {"headers": gz}),
        ("GET", "/m/pre.css", {"headers": msie}), ("GET", "/m/pre.css", {"headers": firefox}),
        ("GET", "/a/x.gif"),
    ])


# nginx's gzip header filter runs before its range filter: a gzip client asking for a range of
# a file the filter compresses gets 200 with the whole file compressed; other clients get the
# 206 (or 416) with the filter's Vary.
GZIP_RANGES = server(r"""
        gzip on;
        gzip_vary on;
        gzip_min_length 20;
        gzip_types text/plain;
        location / { }
        location /novary/ { alias @DIR@/www/; gzip_vary off; }
""")


def test_ranges_with_gzip_on(tmp_path):
    files = dict(FILES)
    files["www/long.txt"] = "ranges of a long text file, compressed or not\n" * 40
    gz = [("Accept-Encoding", "gzip")]

    def rng(value, gzip=False):
        return {"headers": [("Range", value)] + (gz if gzip else [])}
    run_case(tmp_path, GZIP_RANGES, files, [
        ("GET", "/long.txt", rng("bytes=0-9", True)), ("GET", "/long.txt", rng("bytes=0-9")),
        ("GET", "/long.txt", rng("bytes=5-9,20-29", True)),  # (the 206's boundary is random)
        ("GET", "/long.txt", rng("bytes=99999-", True)), ("GET", "/long.txt", rng("bytes=99999-")),
        ("GET", "/a.txt", rng("bytes=0-1", True)), ("GET", "/a.txt", rng("bytes=0-1")),
        ("GET", "/index.html", rng("bytes=0-3", True)),
        ("GET", "/novary/long.txt", rng("bytes=0-9")),
        ("GET", "/novary/long.txt", rng("bytes=0-9", True)),
        ("HEAD", "/long.txt", rng("bytes=0-9", True)),
    ])
