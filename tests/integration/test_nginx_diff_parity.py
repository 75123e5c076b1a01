"""Differential cases for parity bugs found by nginx-tests: alias mapping, index with variables,
regex server names, add_header over the validators, error_page statuses, built-in types,
keepalive_disable, server_tokens, methods and ranges on static files. Each request is answered
by Debian's nginx and by portico (see nginx_diff.py)."""

import os
import subprocess

from nginx_diff import PROXY, run_case
from servers import portico_binary


FILES = {
    "www/index.html": "<h1>home</h1>\n",
    "www/a.txt": "alpha\n",
    "www/p.gif": "GIF89a",
    "www/p.jpg": "jpeg",
    "www/p.png": "png",
    "www/p.css": "css",
    "www/p.html": "<p>html</p>",
    "www/404.html": "custom not found\n",
    "www/dir/index.html": "dir index\n",
    "www/dir/page.html": "dir page\n",
    "www/dirf.txt": "concatenated\n",
    "www/dir/f.txt": "in dir\n",
    "www/directory/alias-re.html": "alias re\n",
    "www/localhost.html": "by server name\n",
    "www/nine.txt": "0123456789",
}


def server(body, names="localhost"):
    return """
    server {
        listen 127.0.0.1:@PORT@;
        server_name %s;
        root @DIR@/www;
        %s
    }
""" % (names, body)


# ngx_http_map_uri_to_path: the alias and the rest of the URI are concatenated as they are.
ALIASES = server(r"""
        location /b { alias @DIR@/www/dir; }
        location /c/ { alias @DIR@/www/dir/; }
        location /x.html { alias @DIR@/www/dir/page.html; }
        location ~ /alias-re.html { alias @DIR@/www/directory; try_files $uri =404; }
        location ~ ^/rex/(.*)$ { alias @DIR@/www/dir/$1; }
        location /nested/ {
            alias @DIR@/www/;
            location ~ html { try_files $uri =404; }
        }
""")


def test_alias_mapping(tmp_path):
    run_case(tmp_path, ALIASES, FILES, [
        ("GET", "/bf.txt"), ("GET", "/b/f.txt"), ("GET", "/b"), ("GET", "/b/"),
        ("GET", "/c/f.txt"), ("GET", "/x.html"), ("GET", "/alias-re.html"),
        ("GET", "/rex/page.html"), ("GET", "/rex/"), ("GET", "/nested/p.html"),
        ("GET", "/nested/dir/page.html"), ("GET", "/nested/none.html"),
    ])


INDEXES = server(r"""
        add_header X-URI $uri;
        location / { }
        location /var/ { alias @DIR@/www/; index $server_name.html; }
        location /va2/ { alias @DIR@/www/; index ${server_name}.html; }
        location /var_redirect/ { index /$server_name.html; }
        location /many/ { alias @DIR@/www/; index none.html $arg_i.html; }
""")


def test_index_with_variables(tmp_path):
    run_case(tmp_path, INDEXES, FILES, [
        ("GET", "/var/"), ("GET", "/va2/"), ("GET", "/var_redirect/"), ("GET", "/many/?i=a"),
        ("GET", "/many/?i=p"), ("GET", "/many/"),
    ])


def test_index_with_an_unknown_variable_fails_the_test(tmp_path):
    os.makedirs(str(tmp_path / "logs"))
    conf = tmp_path / "site.conf"
    conf.write_text("events {}\nhttp { server { listen 127.0.0.1:8081;\n"
                    "location / { index $nosuch.html; } } }\n")
    proc = subprocess.run([portico_binary(), "-t", "-p", str(tmp_path) + "/", "-c", str(conf)],
                          capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert '[emerg] unknown "nosuch" variable' in proc.stderr


REGEX_NAMES = r"""
    server { listen 127.0.0.1:@PORT@; server_name localhost; return 200 "default"; }
    server { listen 127.0.0.1:@PORT@; server_name ~^EXAMPLE\.com$;
             return 200 "re $server_name"; }
    server { listen 127.0.0.1:@PORT@; server_name ~^(?P<name>.+)\Q.example.com\E$;
             return 200 "named $name $server_name"; }
    server { listen 127.0.0.1:@PORT@; server_name .dot.example.com;
             return 200 "dot $server_name"; }
    server { listen 127.0.0.1:@PORT@; server_name ~^(?<sub>[a-z]+)\.idx\.test$;
             root @DIR@/www; add_header X-Sub "$sub"; index $sub.html; }
"""


def test_regex_server_names(tmp_path):
    run_case(tmp_path, REGEX_NAMES, FILES, [
        ("GET", "/", {"host": "example.com"}), ("GET", "/", {"host": "EXAMPLE.COM"}),
        ("GET", "/", {"host": "Foo.example.com"}), ("GET", "/", {"host": "dot.example.com"}),
        ("GET", "/", {"host": "a.dot.example.com"}), ("GET", "/", {"host": "localhost"}),
        ("GET", "/", {"host": "p.idx.test"}), ("GET", "/", {"host": "dir.idx.test"}),
    ])


VALIDATORS = server(r"""
        location /t1/ { alias @DIR@/www/; }
        location /t2/ { alias @DIR@/www/; add_header Last-Modified ""; }
        location /t3/ { alias @DIR@/www/; add_header Last-Modified "Mon, 28 Sep 1970 06:00:00 GMT"; }
        location /t4/ { alias @DIR@/www/; add_header ETag '"fixed"'; }
        location /t5/ { alias @DIR@/www/; add_header ETag ""; }
        location /t6/ { alias @DIR@/www/; add_header etag '"low"'; add_header X-E $sent_http_etag; }
        location /s/ {
            add_header Cache-Control foo;
            add_header Cache-Control bar;
            add_header Foo foo;
            add_header Foo bar;
            add_header X-Sent-CC $sent_http_cache_control;
            add_header X-Sent-Foo $sent_http_foo;
            return 204;
        }
""")


def test_add_header_validators(tmp_path):
    rng = [("Range", "bytes=0-3")]
    run_case(tmp_path, VALIDATORS, FILES, [
        ("GET", "/t1/nine.txt"), ("GET", "/t2/nine.txt"), ("GET", "/t3/nine.txt"),
        ("GET", "/t2/nine.txt", {"headers": rng + [("If-Range", "wrong")]}),
        ("GET", "/t3/nine.txt", {"headers": rng + [("If-Range", "wrong")]}),
        ("GET", "/t3/nine.txt",
         {"headers": rng + [("If-Range", "Mon, 28 Sep 1970 06:00:00 GMT")]}),
        ("GET", "/t4/nine.txt"), ("GET", "/t4/nine.txt", {"headers": rng + [("If-Range", '"fixed"')]}),
        ("GET", "/t4/nine.txt", {"headers": [("If-None-Match", '"fixed"')]}),
        ("GET", "/t5/nine.txt"), ("GET", "/t5/nine.txt", {"headers": rng + [("If-Range", '"x"')]}),
        ("GET", "/t6/nine.txt"), ("GET", "/s/"),
    ], extra_headers=("etag", "last-modified"))


ERROR_STATUSES = server(r"""
        location /ep/ { error_page 404 /redir; }
        location /eq/ { error_page 404 = /redir; }
        location = /redir { return 302 http://elsewhere.test/x; }
        location /er/ { error_page 404 = /teapot; }
        location = /teapot { return 418 "short and stout"; }
        location /text/ { error_page 403 /404.html; return 403 "own text"; }
        location /code/ { error_page 403 /404.html; return 403; }
        location /r200 { return 200; }
        location /r200.html { return 200; }
        location /r404 { return 404; }
        location /r204 { return 204; }
        location /es/ { error_page 404 = /r200; }
        # http_error_page.t: redirects taken over by error_page, and the pages' own redirects.
        location /redirect200 { error_page 404 =200 http://example.com/; return 404; }
        location /redirect497 { error_page 497 https://example.com/; return 497; }
        location /error302redirect { error_page 302 http://example.com/; return 302 "first"; }
        location /error302text { error_page 302 /return302text; return 302 "first"; }
        location /return302text { return 302 "http://example.com/"; }
        location /error302args { error_page 302 /return302args?$arg_a; return 302 "first"; }
        location /return302args { return 302 "http://example.com/$args"; }
        location /error302directory { error_page 302 /dir; return 302 "first"; }
""")


def test_error_page_statuses(tmp_path):
    run_case(tmp_path, ERROR_STATUSES, FILES, [
        ("GET", "/ep/x"), ("GET", "/eq/x"), ("GET", "/er/x"), ("GET", "/text/"),
        ("GET", "/code/"), ("GET", "/r200"), ("GET", "/r200.html"), ("GET", "/r404"),
        ("GET", "/r204"), ("GET", "/es/x"), ("GET", "/redirect200"), ("GET", "/redirect497"),
        ("GET", "/error302redirect"), ("GET", "/error302text"), ("GET", "/error302args?a=2"),
        ("GET", "/error302directory"),
    ])


BUILTIN_TYPES = server(r"""
        location / { }
        location /dt/ { default_type text/x-mine; alias @DIR@/www/; }
""")


def test_builtin_types_without_a_types_block(tmp_path):
    run_case(tmp_path, BUILTIN_TYPES, FILES, [
        ("GET", "/p.gif"), ("GET", "/p.jpg"), ("GET", "/p.html"), ("GET", "/p.png"),
        ("GET", "/p.css"), ("GET", "/a.txt"), ("GET", "/dt/p.css"), ("GET", "/dt/p.gif"),
    ], mime=False)


MSIE6 = "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)"
SAFARI = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15) AppleWebKit/600 Safari/600"
CHROME = "Mozilla/5.0 (X11; Linux) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Safari/537"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
TOKENS = server(r"""
        location / { }
        location /off/ { server_tokens off; alias @DIR@/www/; }
        location /on/ { server_tokens on; alias @DIR@/www/; }
        location /kd/ { keepalive_disable none; alias @DIR@/www/; }
        location /ks/ { keepalive_disable safari; alias @DIR@/www/; }
        location /kb/ { keepalive_disable msie6 safari; alias @DIR@/www/; }
""")


def test_keepalive_disable_and_server_tokens(tmp_path):
    run_case(tmp_path, TOKENS, FILES, [
        ("GET", "/a.txt"), ("GET", "/missing"), ("GET", "/off/a.txt"), ("GET", "/off/missing"),
        ("GET", "/on/missing"), ("GET", "/a.txt", {"headers": [("User-Agent", MSIE6)]}),
        ("POST", "/a.txt", {"headers": [("User-Agent", MSIE6)]}),
        ("GET", "/kd/a.txt", {"headers": [("User-Agent", MSIE6)]}),
        ("GET", "/ks/a.txt", {"headers": [("User-Agent", SAFARI)]}),
        ("GET", "/a.txt", {"headers": [("User-Agent", SAFARI)]}),
        ("GET", "/kb/a.txt", {"headers": [("User-Agent", MSIE6)]}),
        ("POST", "/kb/a.txt", {"headers": [("User-Agent", MSIE6)]}),
        ("GET", "/kb/a.txt", {"headers": [("User-Agent", SAFARI)]}),
        # Error pages are padded for MSIE and Chrome (msie_padding), not for others.
        ("GET", "/missing", {"headers": [("User-Agent", CHROME)]}),
        ("GET", "/missing", {"headers": [("User-Agent", FIREFOX)]}),
        ("GET", "/dir", {"headers": [("User-Agent", CHROME)]}),
        ("GET", "/nine.txt", {"headers": [("User-Agent", CHROME), ("Range", "bytes=x")]}),
    ], extra_headers=("server",))


def test_methods_and_ranges_on_static_files(tmp_path):
    run_case(tmp_path, server("location / { }"), FILES, [
        ("PUT", "/a.txt", {"body": b"x"}), ("DELETE", "/a.txt"), ("POST", "/a.txt"),
        ("OPTIONS", "/a.txt"), ("PATCH", "/a.txt"), ("PUT", "/missing"), ("DELETE", "/dir/"),
        ("GET", "/nine.txt", {"headers": [("Range", "bytes=5-1")]}),
        ("GET", "/nine.txt", {"headers": [("Range", "bytes=-")]}),
        ("GET", "/nine.txt", {"headers": [("Range", "bytes=a-b")]}),
        ("GET", "/nine.txt", {"headers": [("Range", "bytes=1-2,x")]}),
        ("GET", "/nine.txt", {"headers": [("Range", "bytes=20-")]}),
        ("GET", "/nine.txt", {"headers": [("Range", "bytes=-0")]}),
        ("GET", "/nine.txt", {"headers": [("Range", "bytes 1-2")]}),
        ("GET", "/nine.txt", {"headers": [("Range", "chars=1-2")]}),
    ])


# http_location_auto.t: "/a" is redirected to the app location "/a/" although "/a-a" and "/a-b"
# sort between them ('-' < '/'); nginx proxies where portico runs the app.
AUTO_REDIRECT = server(r"""
        add_header X-Location unset;
        location /a/ { %s }
        location /a-a { add_header X-Location a-a; return 204; }
        location /a-b { add_header X-Location a-b; return 204; }
""" % PROXY)


def test_auto_redirect_beside_sibling_prefixes(tmp_path):
    run_case(tmp_path, AUTO_REDIRECT, FILES, [
        ("GET", "/a"), ("GET", "/a?x=1"), ("GET", "/a/"), ("GET", "/a-a"), ("GET", "/a-b"),
    ])
