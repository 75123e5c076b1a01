"""access, auth_basic, realip and autoindex against Debian's nginx (same configuration, same
requests, the answers compared: see nginx_diff.py), plus what a differential cannot see: the
error-log lines, auth_delay's wait, the WSGI environ's REMOTE_ADDR after realip.
"""

import base64
import os
import time
import warnings

from nginx_diff import run_case, start_portico, prepare_tree

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt
    CRYPT_DES = crypt.crypt("secret", "ab")
    CRYPT_SHA512 = crypt.crypt("secret", "$6$saltsalt$")

HTPASSWD = "\n".join([
    "# comment line",
    "des:" + CRYPT_DES,
    "sha512:" + CRYPT_SHA512,
    "apr1:$apr1$salt$Xxd1irWT9ycqoYxGFn4cb.",   # "password"
    "plain:{PLAIN}secret:a comment",
    "sha:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",     # "password"
    "ssha:{SSHA}yI6cZwQadOA1e+/f+T+H3eCQQhRzYWx0",  # "password"
    "crlf:{PLAIN}crlf\r",
]) + "\n"


def basic(user, password):
    return [("Authorization", "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode())]


def server(body):
    return """
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        root @DIR@/www;
        %s
    }
""" % body


FILES = {
    "www/index.html": "home\n",
    "www/private/index.html": "private\n",
    "www/open/index.html": "open\n",
    "www/any/index.html": "any\n",
    "htpasswd": HTPASSWD,
}


def test_allow_deny_in_order(tmp_path):
    body = server("""
        location / { allow 127.0.0.1; deny all; }
        location /private/ { deny 127.0.0.0/8; allow all; }
        location /open/ { deny 10.0.0.0/8; deny 192.0.2.1; }
        location /v6/ { deny ::1; allow all; return 200 "v6 rule only"; }
        location /ret/ { deny all; return 200 "rewrite phase first"; }
        location /nested/ { deny all; location /nested/inner/ { allow all; return 200 "own rules"; } }
        location /inherit/ { deny all; location /inherit/inner/ { return 200 "inherited"; } }
        location /unix/ { deny unix:; allow 127.0.0.1; return 200 "tcp client"; }
        location /err/ { deny all; error_page 403 /index.html; }
    """)
    run_case(tmp_path, body, FILES, [
        ("GET", "/"),
        ("GET", "/private/"),
        ("GET", "/open/"),
        ("GET", "/v6/"),
        ("GET", "/ret/"),
        ("GET", "/nested/inner/"),
        ("GET", "/inherit/inner/"),
        ("GET", "/unix/"),
        ("GET", "/err/"),
        ("HEAD", "/private/"),
    ])


def test_auth_basic_schemes_and_answers(tmp_path):
    body = server("""
        auth_basic "Restricted $host";
        auth_basic_user_file @DIR@/htpasswd;
        location /open/ { auth_basic off; }
        location /missing/ { auth_basic_user_file @DIR@/nothere; }
        location /var/ { auth_basic_user_file @DIR@/$arg_f; }
        location /off/ { auth_basic "off"; }
    """)
    requests = [("GET", "/"), ("GET", "/open/"), ("GET", "/", {"headers": [("Authorization", "Bearer x")]}),
                ("GET", "/", {"headers": [("Authorization", "Basic %%%")]}),
                ("GET", "/", {"headers": basic("nobody", "x")}),
                ("GET", "/missing/", {"headers": basic("plain", "secret")}),
                ("GET", "/var/?f=htpasswd", {"headers": basic("plain", "secret")}),
                ("GET", "/off/")]
    for user, good in (("des", "secret"), ("sha512", "secret"), ("apr1", "password"),
                       ("plain", "secret"), ("sha", "password"), ("ssha", "password"),
                       ("crlf", "crlf")):
        requests.append(("GET", "/", {"headers": basic(user, good)}))
        requests.append(("GET", "/", {"headers": basic(user, good + "x")}))
    run_case(tmp_path, body, FILES, requests)


def test_satisfy_any_and_all(tmp_path):
    body = server("""
        auth_basic "zone";
        auth_basic_user_file @DIR@/htpasswd;
        location /all/ { deny all; return 200 "unreachable"; }
        location /any/ { satisfy any; deny all; }
        location /anyallow/ { satisfy any; allow 127.0.0.1; deny all; return 200 "allowed"; }
        location /anynoauth/ { satisfy any; auth_basic off; deny all; }
    """)
    run_case(tmp_path, body, FILES, [
        ("GET", "/all/"),
        ("GET", "/all/", {"headers": basic("plain", "secret")}),
        ("GET", "/any/"),
        ("GET", "/any/", {"headers": basic("plain", "secret")}),
        ("GET", "/any/", {"headers": basic("plain", "wrong")}),
        ("GET", "/anyallow/"),
        ("GET", "/anynoauth/"),
    ])


def test_realip(tmp_path):
    body = """
    set_real_ip_from 127.0.0.1;
    set_real_ip_from 10.0.0.0/8;
    add_header X-IP $remote_addr always;
    add_header X-Real $realip_remote_addr always;
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        root @DIR@/www;
        location /xff/ { real_ip_header X-Forwarded-For; return 200 "xff"; }
        location /rec/ { real_ip_header X-Forwarded-For; real_ip_recursive on; return 200 "rec"; }
        location /custom/ { real_ip_header X-Client; return 200 "custom"; }
        location /acl/ { real_ip_header X-Forwarded-For; allow 192.0.2.7; deny all; return 200 "acl"; }
        location /untrusted/ { set_real_ip_from 192.0.2.0/24; return 200 "untrusted"; }
        location / { return 200 "x-real-ip"; }
    }
"""
    run_case(tmp_path, body, FILES, [
        ("GET", "/", {"headers": [("X-Real-IP", "192.0.2.1")]}),
        ("GET", "/", {"headers": [("X-Real-IP", "not an address")]}),
        ("GET", "/xff/", {"headers": [("X-Forwarded-For", "192.0.2.1, 10.1.1.1")]}),
        ("GET", "/xff/", {"headers": [("X-Forwarded-For", "192.0.2.1:8080")]}),
        ("GET", "/rec/", {"headers": [("X-Forwarded-For", "192.0.2.5, 10.1.1.1, 10.2.2.2")]}),
        ("GET", "/rec/", {"headers": [("X-Forwarded-For", "[2001:db8::1]:99")]}),
        ("GET", "/custom/", {"headers": [("X-Client", "198.51.100.3")]}),
        ("GET", "/acl/", {"headers": [("X-Forwarded-For", "192.0.2.7")]}),
        ("GET", "/acl/", {"headers": [("X-Forwarded-For", "192.0.2.8")]}),
        ("GET", "/untrusted/", {"headers": [("X-Real-IP", "192.0.2.1")]}),
    ])


AUTOINDEX_FILES = {
    "www/list/a.txt": "alpha\n",
    "www/list/B.txt": "b" * 12345,
    "www/list/big.bin": b"\0" * (3 * 1024 * 1024 + 700 * 1024),
    "www/list/with space & <tag> \"q\".txt": "x",
    "www/list/" + "long-name-" * 7 + ".txt": "long",
    "www/list/" + "long&name-" * 7 + ".txt": "long escaped",
    "www/list/exactly-fifty-characters-long-name-000000000.t": "50",
    "www/list/sub/x": "x",
    "www/list/zdir/": b"",
    "www/list/.hidden": "h",
    "www/list/ctl\x01.txt": "ctl",
    "www/list/utf8-" + "\u0444" * 3: "short utf-8",
    "www/list/utf8-" + "\u0444" * 45: "long utf-8 (counted in bytes without charset)",
    "www/empty/": b"",
}


def test_autoindex_formats(tmp_path):
    body = server("""
        autoindex on;
        location /list/ { }
        location /approx/ { alias @DIR@/www/list/; autoindex_exact_size off; }
        location /local/ { alias @DIR@/www/list/; autoindex_localtime on; }
        location /xml/ { alias @DIR@/www/list/; autoindex_format xml; }
        location /json/ { alias @DIR@/www/list/; autoindex_format json; }
        location /jsonp/ { alias @DIR@/www/list/; autoindex_format jsonp; }
        location /off/ { alias @DIR@/www/list/; autoindex off; }
        location /empty/ { }
    """)
    run_case(tmp_path, body, AUTOINDEX_FILES, [
        ("GET", "/list/"),
        ("HEAD", "/list/"),
        ("POST", "/list/"),
        ("GET", "/list/sub"),
        ("GET", "/list/nothere/"),
        ("GET", "/approx/"),
        ("GET", "/local/"),
        ("GET", "/xml/"),
        ("GET", "/json/"),
        ("GET", "/jsonp/?callback=cb_1.x"),
        ("GET", "/jsonp/"),
        ("GET", "/jsonp/?callback=bad-name"),
        ("GET", "/off/"),
        ("GET", "/empty/"),
    ])


def _portico(tmp_path, body, files):
    workdir = str(tmp_path)
    prepare_tree(workdir, files)
    return start_portico(workdir, body, 1), workdir


def test_error_log_lines_and_auth_delay(tmp_path):
    body = server("""
        location /deny/ { deny all; }
        location /auth/ {
            auth_basic "zone";
            auth_basic_user_file @DIR@/htpasswd;
            auth_delay 1s;
        }
        location /nofile/ { auth_basic "zone"; auth_basic_user_file @DIR@/missing; }
    """)
    files = dict(FILES)
    files["www/auth/index.html"] = "auth\n"
    files["www/deny/index.html"] = "deny\n"
    files["www/nofile/index.html"] = "nofile\n"
    served, workdir = _portico(tmp_path, body, files)
    try:
        assert served.request("GET", "/deny/").status == 403
        started = time.monotonic()
        r = served.request("GET", "/auth/", headers=basic("plain", "bad"))
        assert r.status == 401
        assert r.header("www-authenticate") == 'Basic realm="zone"'
        assert time.monotonic() - started >= 0.9
        started = time.monotonic()
        assert served.request("GET", "/auth/", headers=basic("plain", "secret")).status == 200
        assert time.monotonic() - started < 0.9
        assert served.request("GET", "/auth/", headers=basic("ghost", "x")).status == 401
        assert served.request("GET", "/nofile/", headers=basic("plain", "x")).status == 403
    finally:
        served.stop()
    log = open(os.path.join(workdir, "portico-error.log"), encoding="utf-8",
               errors="replace").read()
    assert "access forbidden by rule" in log
    assert 'user "plain": password mismatch' in log
    assert 'user "ghost" was not found in "%s/htpasswd"' % workdir in log
    assert 'open() "%s/missing" failed (2: No such file or directory)' % workdir in log


def test_realip_reaches_the_app_and_the_access_log(tmp_path):
    import json
    from nginx_diff import APPS
    body = """
    log_format ip "$remote_addr [$remote_port] $realip_remote_addr";
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        access_log @DIR@/ip.log ip;
        location / { wsgi_app introspect:application; wsgi_pythonpath %s; }
        location = /port { return 200 "[$remote_port]"; }
    }
""" % APPS
    served, workdir = _portico(tmp_path, body, {"www/x": "x"})
    try:
        r = served.request("GET", "/environ/", headers=[("X-Forwarded-For", "192.0.2.9:4242")])
        assert r.status == 200, r.body
        environ = json.loads(r.body)
        assert environ["REMOTE_ADDR"] == "192.0.2.9"
        assert environ["REMOTE_PORT"] == "4242"
        r = served.request("GET", "/port", headers=[("X-Forwarded-For", "192.0.2.9")])
        assert r.body == b"[]"  # an address without a port: nginx's $remote_port is empty
        r = served.request("GET", "/port")
        assert r.body != b"[]"
    finally:
        served.stop()
    lines = open(os.path.join(workdir, "ip.log")).read().splitlines()
    assert lines[0] == "192.0.2.9 [4242] 127.0.0.1"
    assert lines[1] == "192.0.2.9 [-] 127.0.0.1"  # an empty variable logs as "-"
    assert lines[2].startswith("127.0.0.1 [")


def _status(served):
    import re
    r = served.request("GET", "/stub")
    assert r.status == 200 and r.header("content-type") == "text/plain"
    m = re.fullmatch(rb"Active connections: (\d+) \nserver accepts handled requests\n"
                     rb" (\d+) (\d+) (\d+) \nReading: (\d+) Writing: (\d+) Waiting: (\d+) \n",
                     r.body)
    assert m, r.body
    keys = ("active", "accepts", "handled", "requests", "reading", "writing", "waiting")
    return dict(zip(keys, (int(v) for v in m.groups()))), r


def test_stub_status_counts_every_worker(tmp_path, monkeypatch):
    import socket
    import nginx_diff
    # Two workers: the connections below may land in either, the page sums both.
    original = nginx_diff.config_text
    monkeypatch.setattr(nginx_diff, "config_text", lambda *a: original(*a).replace(
        "worker_processes 1;", "worker_processes 2;"))
    body = server("""
        add_header X-Active $connections_active;
        add_header X-Writing $connections_writing;
        location /stub { stub_status; }
    """).replace("server {", "server {\n        listen 127.0.0.1:@PORT2@;", 1)
    workdir = str(tmp_path)
    prepare_tree(workdir, FILES)
    served = start_portico(workdir, body, 2)
    try:
        # The readiness probes' connections close in either worker on their own time; the page
        # and the variables are read in two moments, so start once only this client is counted.
        def settled(wanted):
            # The page sums two workers that count on their own time: poll until it settles.
            deadline = time.monotonic() + 10
            while True:
                page, response = _status(served)
                if wanted(page) or time.monotonic() > deadline:
                    return page, response
                time.sleep(0.05)

        first, r = settled(lambda page: page["active"] == 1)
        assert first["active"] == 1 and first["writing"] == 1 and first["reading"] == 0, first
        assert r.header("x-active") == str(first["active"])
        assert r.header("x-writing") == str(first["writing"])
        # An idle connection waits, a partial head reads.
        idle = socket.create_connection(("127.0.0.1", served.ports[0]))
        partial = socket.create_connection(("127.0.0.1", served.ports[1]))
        partial.sendall(b"GET / HTTP/1.1\r\n")
        now, _ = settled(lambda page: page["active"] == 3 and page["reading"] == 1)
        assert now["active"] == first["active"] + 2, now
        assert now["waiting"] >= 1 and now["reading"] == 1
        assert now["accepts"] == now["handled"]
        assert now["accepts"] >= first["accepts"] + 3
        assert now["requests"] >= first["requests"] + 2  # the partial one counts
        idle.close()
        partial.close()
        assert served.request("POST", "/stub").status == 405
        assert served.request("HEAD", "/stub").body == b""
    finally:
        served.stop()
