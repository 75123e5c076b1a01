"""The rewrite and map modules against Debian's nginx: rewrite (flags, captures, args, redirects,
cycles), if (every condition, the implicit location), set, return in file order, and map
(exact, hostnames wildcards, regexes with captures, volatile, variables in values). Both
servers get the same configuration; see nginx_diff.py.
"""

import os
import re
import subprocess

import pytest

from nginx_diff import NGINX, PROXY, config_text, run_case
from servers import free_port, portico_binary


FILES = {
    "www/index.html": "home\n",
    "www/a.txt": "alpha\n",
    "www/new/page.txt": "new page\n",
    "www/dir/index.html": "dir index\n",
    "www/dir/page.html": "dir page\n",
    "www/fn/here.txt": "here\n",
    "www/exec.sh": "#!/bin/sh\n",
    "www/implicit/x.txt": "location root\n",
    "www/other/implicit/x.txt": "if root\n",
}


def server(body, http=""):
    return """
    %s
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        root @DIR@/www;
        %s
    }
""" % (http, body)


REWRITES = server(r"""
        rewrite ^/old/(.*)$ /new/$1 last;
        rewrite ^/srv-redirect$ http://example.com/moved;
        location /new/ { add_header X-Uri "$uri $args"; }
        location /r/ {
            rewrite ^/r/(\w+)/(\w+)$ /echo/$2/$1?x=$1;
            rewrite ^/r/keep/(.*)$ /echo/$1;
        }
        location /drop/ { rewrite ^ /echo/dropped?; }
        location /echo/ { return 200 "echo uri=$uri args=$args 1=$1"; }
        location /brk/ { rewrite ^/brk/(.*)$ /new/$1 break; return 200 "after break"; }
        location /brk2/ { rewrite ^ /a.txt break; }
        location /redir/ { rewrite ^/redir/(.*)$ /target/$1 redirect; }
        location /perm/ { rewrite ^/perm/(.*)$ /target/$1?p=1 permanent; }
        location /abs/ { rewrite ^ https://example.com/x?y=1; }
        location /nomatch/ { rewrite ^/zzz /a.txt; return 200 "no match $uri"; }
        location /loop/ { rewrite ^ /loop/again; }
        location /set/ {
            set $a "first";
            set $b "$a-$uri";
            set $a "second";
            return 200 "a=$a b=$b";
        }
        location /order/ {
            return 200 "return first";
            rewrite ^ /echo/never;
        }
        location /args/ { set $args "x=1&y=2"; return 200 "args=$args arg_y=$arg_y"; }
        location /unset/ { return 200 "[$never_set]"; }
        location /late/ { set $never_set "late"; return 200 "late"; }
        location /escape/ { rewrite ^/escape/(.*)$ /echo/x?q=$1; }
        location ~ ^/cap/(\w+)/(\w+)$ { rewrite ^ /echo/$2$10; }
        location /body/ { if ($arg_s) { set $s "set:$arg_s"; } return 200 "[$s]"; }
        location /ru/ { rewrite ^ /show/x?n=1; }
        location /show/ { return 200 "$request_uri $request $uri $args"; }
""")


def test_rewrite(tmp_path):
    run_case(tmp_path, REWRITES, FILES, [
        ("GET", "/old/page.txt"), ("GET", "/old/page.txt?k=v"), ("GET", "/srv-redirect?a=b"),
        ("GET", "/r/one/two"), ("GET", "/r/one/two?orig=1"), ("GET", "/r/keep/z?k=v"),
        ("GET", "/drop/x?gone=1"), ("GET", "/brk/page.txt"), ("GET", "/brk2/q"),
        ("GET", "/redir/a?b=c"), ("GET", "/perm/a?b=c"), ("GET", "/abs/?z=2"),
        ("GET", "/nomatch/q"), ("GET", "/loop/x"), ("GET", "/set/"), ("GET", "/order/"),
        ("GET", "/args/?old=1"), ("GET", "/unset/"), ("GET", "/escape/a%20b+c"),
        ("GET", "/escape/plain"), ("GET", "/ru/a?o=2"), ("GET", "/cap/ab/cd"),
        ("GET", "/body/?s=1"), ("GET", "/body/"),
    ])


IFS = server(r"""
        location /var/ { if ($arg_c) { return 200 "true"; } return 200 "false"; }
        location /eq/ { if ($arg_c = "yes") { return 200 "eq"; } if ($arg_c != "yes") { return 200 "ne"; } }
        location /re/ {
            if ($arg_c ~ ^(\d+)-(?<word>\w+)$) { return 200 "match $1 $word"; }
            if ($arg_c ~* ^ABC$) { return 200 "caseless"; }
            if ($arg_c !~ ^x) { return 200 "not x"; }
            return 200 "x";
        }
        location /file/ {
            if (-f @DIR@/www/$arg_c) { return 200 "file"; }
            if (-d @DIR@/www/$arg_c) { return 200 "dir"; }
            if (!-e @DIR@/www/$arg_c) { return 200 "missing"; }
            return 200 "other";
        }
        location /implicit/ {
            if ($arg_h) { add_header X-If "in if"; root @DIR@/www/other; }
            add_header X-Loc "location";
        }
        location /sp/ { if ( $arg_c ) { return 204; } }
        location /fn/ {
            if (!-f $request_filename) { return 200 "no file $request_filename"; }
            return 200 "file $request_filename";
        }
        location /al/ {
            alias @DIR@/www/dir/;
            if (-f $request_filename) { return 200 "alias file $request_filename"; }
            return 200 "alias none $request_filename";
        }
        location ~ ^/rx/(.*)$ {
            alias @DIR@/www/$1;
            if (-e $request_filename) { return 200 "rx $request_filename"; }
            return 200 "rx none $request_filename";
        }
""")


def test_if(tmp_path):
    run_case(tmp_path, IFS, FILES, [
        ("GET", "/var/?c=1"), ("GET", "/var/?c=0"), ("GET", "/var/"), ("GET", "/eq/?c=yes"),
        ("GET", "/eq/?c=no"), ("GET", "/re/?c=12-ab"), ("GET", "/re/?c=abc"), ("GET", "/re/?c=q"),
        ("GET", "/re/?c=xq"), ("GET", "/file/?c=a.txt"), ("GET", "/file/?c=dir"),
        ("GET", "/file/?c=nope"), ("GET", "/implicit/x.txt?h=1"), ("GET", "/implicit/x.txt"),
        ("GET", "/sp/?c=1"), ("GET", "/sp/"), ("GET", "/fn/missing"), ("GET", "/fn/here.txt"), ("GET", "/al/page.html"),
        ("GET", "/al/nope"), ("GET", "/rx/a.txt"), ("GET", "/rx/zz"),
    ])


MAPS = server(r"""
        location / { return 200 "x=$x h=$h r=$r c=$c\n"; }
""", http=r"""
    map $arg_k $x { default none; foo bar; Mixed case; \default literal-default; }
    map $arg_h $h {
        hostnames;
        default -;
        example.com exact;
        *.example.com head;
        .dot.example.com dot;
        www.example.* tail;
    }
    map $arg_r $r { ~^(?<pre>\w+)-(\d+)$ "re:$pre:$2"; ~*^UP up; default "none:$arg_r"; }
    map $x $c { bar "chained-$x"; default "d"; }
""")


def test_map(tmp_path):
    run_case(tmp_path, MAPS, FILES, [
        ("GET", "/?k=foo"), ("GET", "/?k=FOO"), ("GET", "/?k=mixed"), ("GET", "/?k=default"),
        ("GET", "/?k=zzz"), ("GET", "/?h=example.com"), ("GET", "/?h=a.example.com"),
        ("GET", "/?h=dot.example.com"), ("GET", "/?h=a.dot.example.com"),
        ("GET", "/?h=www.example.org"), ("GET", "/?h=example.com."), ("GET", "/?h=other"),
        ("GET", "/?r=ab-12"), ("GET", "/?r=up"), ("GET", "/?r=q"),
    ])


SERVER_LEVEL = server(r"""
        if ($arg_deny) { return 403; }
        set $who "server";
        rewrite ^/first$ /second;
        location /second { return 200 "second who=$who"; }
        location / { set $who "location"; return 200 "who=$who uri=$uri"; }
        location /inner { error_page 404 = /second; }
""")


def test_server_level_then_location(tmp_path):
    run_case(tmp_path, SERVER_LEVEL, FILES, [
        ("GET", "/first"), ("GET", "/x"), ("GET", "/x?deny=1"), ("GET", "/inner/missing"),
    ])


# rewrite.t's configuration without its proxy_pass location and its error_page cases (error
# pages are the parity work's: an error page's own error or redirect status wins there): return
# codes and texts, rewrite redirects and their args, captures in new arguments of an escaped URI.
RETURNS = server(r"""
        location / { rewrite ^ http://example.com/ redirect; }
        location /add { rewrite ^ http://example.com/?c=d redirect; }
        location /no { rewrite ^ http://example.com/?c=d? redirect; }
        location /return204 { return 204; }
        location /return200 { return 200; }
        location /return306 { return 306; }
        location /return405 { return 405; }
        location /return200text { return 200 "text"; }
        location /return404text { return 404 "text"; }
        location /return302text { return 302 "text"; }
        location /capture { rewrite ^(.*) $1?c=d; return 200 "uri:$uri args:$args"; }
        location /capturedup { rewrite ^(.*) $1?c=$1; return 200 "uri:$uri args:$args"; }
""")


def test_returns_and_rewrite_redirects(tmp_path):
    run_case(tmp_path, RETURNS, FILES, [
        ("GET", "/"), ("GET", "/?a=b"), ("GET", "/add"), ("GET", "/add?a=b"), ("GET", "/no?a=b"),
        ("GET", "/return204"), ("GET", "/return200"), ("GET", "/return306"),
        ("GET", "/return405"), ("GET", "/return200text"), ("GET", "/return404text"),
        ("GET", "/return302text"), ("GET", "/capture/%25?a=b"), ("GET", "/capturedup/%25?a=b"),
    ])


UNESCAPE = server(r"""
        location /t1 { rewrite ^ $arg_r? redirect; }
        location /t2 { rewrite ^ http://example.com$request_uri? redirect; }
        location /t3 { rewrite ^ http://example.com$uri redirect; }
        location /t4 { rewrite ^(.*) http://example.com$1 redirect; }
        location /t5 { rewrite ^ http://example.com/blah%20%3Fblah redirect; }
""")


def test_redirect_unescaping(tmp_path):
    run_case(tmp_path, UNESCAPE, FILES, [
        ("GET", "/t1?r=http%3A%2F%2Fexample.com%2F%3Ffrom"),
        ("GET", "/t1?r=http%3A%2F%2Fexample.com%0D%0Asplit"),
        ("GET", "/t1?r=http%3A%2F%2Fexample.com%2F%3Ffrom%3Dblah"),
        ("GET", "/t2/blah%20%3Fblah"), ("GET", "/t3/blah%20%3Fblah"),
        ("GET", "/t4/blah%20%3Fblah"), ("GET", "/t5"), ("GET", "/t5?arg=blah"),
    ])


LOOP = server(r"""
        location /loop/ { rewrite ^ /loop/again; }
        location /last/ { rewrite ^/last/(.*)$ /echo/$1 last; }
        location /echo/ { return 200 "$uri"; }
""")


def test_rewrite_cycle_is_logged_as_nginx_logs_it(tmp_path):
    run_case(tmp_path, LOOP, FILES, [("GET", "/loop/x"), ("GET", "/last/y")])
    message = 'rewrite or internal redirection cycle while processing "/loop/again"'
    for name in ("nginx-error.log", "portico-error.log"):
        with open(os.path.join(str(tmp_path), name)) as handle:
            assert message in handle.read(), name


# Configurations both refuse at -t, with the same words (nginx adds "[emerg] PID#TID: ").
BAD_CONFIGS = [
    server('if ($host = x { return 404; }'),
    server('if ($host x) { return 404; }'),
    server('if (-q /x) { }'),
    server('if ($a ~ "(") { }'),
    server('if ($a) { if ($b) { } }'),
    server('location / { if ($a) { index a; } }'),
    server('location / { if ($a) { location /x { } } }'),
    server('rewrite ^ "";'),
    server('rewrite ^ /x foo;'),
    server('rewrite ( /x;'),
    server('set x 1;'),
    server('set $uri 1;'),
    server('set $a;'),
    server('break 1;'),
    server('', http='map $a $b { default 1; default 2; }'),
    server('', http='map $a $b { a 1; A 2; }'),
    server('', http='map $a $b { hostnames; *.a.* 1; }'),
    server('', http='map $a $b { hostnames; .a.com 1; *.a.com 2; }'),
    server('', http='map $a $b { a 1 2; }'),
    server('', http='map $a b { a 1; }'),
    server('', http='map $a $uri { a 1; }'),
    server('', http='map $a $b { ~( 1; }'),
    server('', http='map $a $b { a { } }'),
    server('location / { rewrite_log maybe; }'),
    server('', http='map_hash_bucket_size 32; map $a $b { %s 1; }' % ("k" * 70)),
    server('', http='map_hash_max_size 0; map $a $b { a 1; }'),
]


def _emerg(binary, conf, workdir):
    proc = subprocess.run([binary, "-p", workdir + "/", "-c", conf, "-t"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    for line in (proc.stderr + proc.stdout).splitlines():
        m = re.search(r"\[emerg\] (?:\d+#\d+: )?(.*)", line)
        if m:
            return m.group(1)
    raise AssertionError("no [emerg] line:\n" + proc.stderr)


@pytest.mark.parametrize("body", BAD_CONFIGS)
def test_config_errors_match_nginx(tmp_path, body):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx is not installed")
    workdir = str(tmp_path)
    text = config_text(body, workdir, [free_port(), free_port()], False).replace("@DIR@", workdir)
    conf = os.path.join(workdir, "bad.conf")
    with open(conf, "w") as handle:
        handle.write(text)
    assert _emerg(portico_binary(), conf, workdir) == _emerg(NGINX, conf, workdir)


APP_BEHIND_REWRITE = server(r"""
        location /old/ { rewrite ^/old/(.*)$ /app/$1?from=old last; }
        location /app/ { %s }
        location /cond/ { if ($arg_go) { rewrite ^ /app/cond break; } return 200 "no"; }
""" % PROXY)


def test_app_sees_the_rewritten_uri(tmp_path):
    # nginx proxies the rewritten URI; the app (echo_uri) answers with its PATH_INFO and args.
    run_case(tmp_path, APP_BEHIND_REWRITE, FILES, [
        ("GET", "/old/x"), ("GET", "/old/y?k=v"), ("GET", "/app/z"), ("GET", "/cond/?go=1"),
        ("GET", "/cond/"),
    ])
