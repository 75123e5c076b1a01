"""portico-only behaviour of the HTTP model that nginx cannot be compared on: WSGI locations
(several apps, SCRIPT_NAME, auto_redirect, per-location body limits), access_log with
log_format, and listeners changed by a reload. Runs portico with `-c` (skipped while this build
has no parser), and the flags path (siteFromFlags) for the Host rules every build has."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from http_client import Connection
from nginx_diff import config_text, prepare_tree, start_nginx, start_portico
from servers import free_port, portico_binary

APPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps")

TWO_APPS = r"""
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        root @DIR@/www;
        location /one/ {
            wsgi_app introspect:application;
            wsgi_pythonpath %(apps)s;
            client_max_body_size 10;
        }
        location /two/ { wsgi_app tiny:application; wsgi_pythonpath %(apps)s; }
        location /again/ {
            wsgi_app introspect:application;
            wsgi_pythonpath %(apps)s;
            wsgi_env PORTICO_SITE_GREETING hello;
            wsgi_chdir @DIR@/www;
        }
        location / { try_files $uri $uri/ =404; }
    }
""" % {"apps": APPS}


def _environ(server, target):
    response = server.request("GET", target)
    assert response.status == 200, response
    return json.loads(response.body)


def test_several_apps_with_their_script_names(tmp_path):
    prepare_tree(str(tmp_path), {"www/a.txt": "alpha\n"})
    server = start_portico(str(tmp_path), TWO_APPS, 1)
    try:
        env = _environ(server, "/one/environ/x?q=1")
        assert (env["SCRIPT_NAME"], env["PATH_INFO"], env["QUERY_STRING"]) == (
            "/one", "/environ/x", "q=1")
        env = _environ(server, "/again/environ/y")
        assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/again", "/environ/y")
        osenv = json.loads(server.request("GET", "/again/osenv?key=PORTICO_SITE_GREETING").body)
        assert osenv["value"] == "hello"
        assert osenv["cwd"] == os.path.join(str(tmp_path), "www")
        tiny = server.request("GET", "/two/anything")
        assert (tiny.status, tiny.body) == (200, b"tiny app\n")
        static = server.request("GET", "/a.txt")
        assert (static.status, static.body) == (200, b"alpha\n")
        # nginx's auto_redirect for a location whose content is an app.
        moved = server.request("GET", "/one?x=1")
        assert moved.status == 301
        assert moved.header("Location") == "http://localhost:%d/one/?x=1" % server.ports[0]
    finally:
        server.stop()


def test_body_limit_per_app_location(tmp_path):
    prepare_tree(str(tmp_path), {"www/a.txt": "alpha\n"})  # www/ is /again/'s wsgi_chdir
    server = start_portico(str(tmp_path), TWO_APPS, 1)
    try:
        small = server.request("POST", "/one/echo", body=b"0123456789")
        assert (small.status, small.body) == (200, b"0123456789")
        big = server.request("POST", "/one/echo", body=b"0123456789X")
        assert big.status == 413
        other = server.request("POST", "/again/echo", body=b"x" * 5000)
        assert (other.status, other.body) == (200, b"x" * 5000)
    finally:
        server.stop()


LOGGED = r"""
    log_format mine '$request_method $uri $status $arg_a "$http_x_test" $body_bytes_sent';
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        root @DIR@/www;
        location / { access_log @DIR@/access.log mine; }
        location /quiet/ { access_log off; }
    }
"""


def test_access_log_with_log_format(tmp_path):
    prepare_tree(str(tmp_path), {"www/a.txt": "alpha\n", "www/quiet/q.txt": "q\n"})
    server = start_portico(str(tmp_path), LOGGED, 1)
    try:
        assert server.request("GET", "/a.txt?a=7", headers=[("X-Test", 'say "hi"')]).status == 200
        assert server.request("GET", "/nope").status == 404
        assert server.request("GET", "/quiet/q.txt").status == 200
    finally:
        server.stop()
    with open(os.path.join(str(tmp_path), "access.log")) as handle:
        lines = handle.read().splitlines()
    assert lines[0] == 'GET /a.txt 200 7 "say \\x22hi\\x22" 6'
    assert lines[1].startswith('GET /nope 404 - "-" ')
    assert len(lines) == 2


def _listen_conf(port_token):
    return r"""
    server {
        listen 127.0.0.1:%s;
        server_name localhost;
        location / { return 200 "served"; }
    }
""" % port_token


def _refused(port):
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_reload_opens_and_closes_listeners(tmp_path):
    workdir = str(tmp_path)
    prepare_tree(workdir, {})
    server = start_portico(workdir, _listen_conf("@PORT@"), 1)
    try:
        first, second = server.ports
        assert server.request("GET", "/").body == b"served"
        conf = os.path.join(workdir, "portico", "portico.conf")
        with open(conf) as handle:
            text = handle.read()
        with open(conf, "w") as handle:
            handle.write(text.replace("127.0.0.1:%d;" % first, "127.0.0.1:%d;" % second))
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (_refused(first) is True and
                                                    not _refused(second)):
            time.sleep(0.1)
        assert not _refused(second), "the new listen address is not served after HUP"
        assert _refused(first), "the old listen address is still open after HUP"
        assert server.request("GET", "/", port_index=1).body == b"served"
    finally:
        server.stop()


# --- the flags path (every build) --------------------------------------------------------------

def test_invalid_host_is_400_and_closes(launch, site):
    server = launch.start()
    with server.connect() as conn:
        response = conn.request("GET", "/static/a.txt", host="a..b")
        assert response.status == 400
        assert "close" in response.connection_tokens()
    with server.connect() as conn:
        response = conn.request("GET", "/static/a.txt", host="LOCALHOST.:%d" % server.port)
        assert response.status == 200


def test_directory_redirect_uses_the_host_without_its_port_and_the_local_port(launch, site):
    server = launch.start()
    with server.connect() as conn:
        response = conn.request("GET", "/static/sub", host="Example.COM:1234")
    assert response.status == 301
    assert response.header("Location") == "http://example.com:%d/static/sub/" % server.port


PIPELINED = r"""
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        root @DIR@/www;
        error_page 404 /404.html;
        location / { try_files $uri $uri/ =404; }
        location /r/ { return 302 /a.txt; }
        location /big/ { client_max_body_size 4; error_page 413 /404.html; }
    }
"""


def test_pipelined_requests_through_redirects_and_error_pages(tmp_path):
    prepare_tree(str(tmp_path), {"www/a.txt": "alpha\n", "www/404.html": "nf\n",
                                 "www/d/index.html": "idx\n"})
    server = start_portico(str(tmp_path), PIPELINED, 1)
    try:
        with Connection.tcp("127.0.0.1", server.ports[0], 5.0) as conn:
            conn.send(b"".join(
                b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % target
                for target in (b"/a.txt", b"/missing", b"/d/", b"/r/x", b"/d")))
            answers = [conn.read_response() for _ in range(5)]
            assert [(r.status, r.body) for r in answers[:3]] == [
                (200, b"alpha\n"), (404, b"nf\n"), (200, b"idx\n")]
            assert answers[3].status == 302 and answers[3].header("Location").endswith("/a.txt")
            assert answers[4].status == 301 and answers[4].header("Location").endswith("/d/")
            conn.send(b"POST /big/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n")
            too_big = conn.read_response()
            assert (too_big.status, too_big.body) == (413, b"nf\n")
            assert "close" in too_big.connection_tokens()
    finally:
        server.stop()


NOT_FOUND = r"""
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        root @DIR@/www;
        location / { }
        location /quiet/ { log_not_found off; }
    }
"""


def test_log_not_found(tmp_path):
    prepare_tree(str(tmp_path), {"www/a.txt": "alpha\n"})
    server = start_portico(str(tmp_path), NOT_FOUND, 1)
    try:
        assert server.request("GET", "/loud-missing").status == 404
        assert server.request("GET", "/quiet/silent-missing").status == 404
    finally:
        server.stop()
    with open(os.path.join(str(tmp_path), "portico-error.log")) as handle:
        log = handle.read()
    assert 'open() "%s/www/loud-missing" failed (2: No such file or directory)' % tmp_path in log
    assert "silent-missing" not in log


NAMED_APP = r"""
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        root @DIR@/www;
        location / { try_files $uri @django; }
        location @django { wsgi_app introspect:application; wsgi_pythonpath %(apps)s; }
    }
""" % {"apps": APPS}


def test_app_in_a_named_location_gets_the_whole_uri_and_the_body(tmp_path):
    prepare_tree(str(tmp_path), {"www/a.txt": "alpha\n", "www/echo/real.txt": "a file\n"})
    server = start_portico(str(tmp_path), NAMED_APP, 1)
    try:
        static = server.request("GET", "/a.txt")
        assert (static.status, static.body) == (200, b"alpha\n")
        env = _environ(server, "/environ/deep/x?q=1&r=%2F")
        assert (env["SCRIPT_NAME"], env["PATH_INFO"], env["QUERY_STRING"]) == (
            "", "/environ/deep/x", "q=1&r=%2F")
        posted = server.request("POST", "/echo/form", body=b"name=value&x=1")
        assert (posted.status, posted.body) == (200, b"name=value&x=1")
        # A file the try_files finds is served, even under the app's own prefixes; POST to it
        # is nginx's static 405.
        assert server.request("GET", "/echo/real.txt").body == b"a file\n"
        assert server.request("POST", "/echo/real.txt", body=b"x").status == 405
    finally:
        server.stop()


RELATIVE_VARIABLE_ROOT = r"""
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        location / { root $arg_r; }
    }
"""


def test_a_variable_root_that_expands_relative_is_under_the_prefix(tmp_path):
    # start_portico runs with -p DIR/portico/: "$arg_r" = "site" names DIR/portico/site.
    prepare_tree(str(tmp_path), {"portico/site/f.txt": "under the prefix\n"})
    server = start_portico(str(tmp_path), RELATIVE_VARIABLE_ROOT, 1)
    try:
        found = server.request("GET", "/f.txt?r=site")
        assert (found.status, found.body) == (200, b"under the prefix\n")
        assert server.request("GET", "/f.txt?r=elsewhere").status == 404
    finally:
        server.stop()


REJECTED_LOGGED = r"""
    log_format brief '$status $server_name';
    server {
        listen 127.0.0.1:@PORT@ default_server;
        server_name first;
        client_header_timeout 1s;
        large_client_header_buffers 2 1k;
        access_log @DIR@/default.log brief;
        location / { return 200 "first"; }
    }
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        client_header_timeout 1s;
        access_log @DIR@/other.log brief;
        location / { access_log @DIR@/location.log brief; return 200 "other"; }
    }
"""


def _rejected(port, raw):
    """The status line of the answer to `raw` (b"" when the server just closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        for _ in range(1000):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0]


def _read_logs(workdir):
    logs = {}
    for name in ("default", "other", "location"):
        path = os.path.join(workdir, name + ".log")
        logs[name] = open(path).read().splitlines() if os.path.exists(path) else []
        if os.path.exists(path):
            os.unlink(path)
    return logs


def _refuse_and_log(server):
    port = server.ports[0]
    assert _rejected(port, b"NOT A REQUEST\r\n\r\n") == b"HTTP/1.1 400 Bad Request"
    long_line = b"GET /" + b"a" * 4096 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
    assert _rejected(port, long_line).startswith(b"HTTP/1.1 414")
    big_header = b"GET / HTTP/1.1\r\nX-Big: " + b"b" * 4096 + b"\r\nHost: localhost\r\n\r\n"
    assert _rejected(port, big_header).startswith(b"HTTP/1.1 400")
    # Heads that stop half way: client_header_timeout (1s) ends them with a 408 (nginx closes
    # without an answer; portico answers 408), logged by the server the Host chose if it arrived.
    _rejected(port, b"GET / HTTP/1.1\r\nHost: loc")
    _rejected(port, b"GET / HTTP/1.1\r\nHost: localhost\r\nX-A: 1")
    ok = server.request("GET", "/", host="localhost")
    assert (ok.status, ok.body) == (200, b"other")


def test_requests_refused_before_routing_are_logged_as_nginx_logs_them(tmp_path):
    workdir = str(tmp_path)
    prepare_tree(workdir, {})
    nginx = start_nginx(workdir, REJECTED_LOGGED, 1)
    try:
        _refuse_and_log(nginx)
    finally:
        nginx.stop()
    theirs = _read_logs(workdir)
    assert theirs == {"default": ["400 first", "414 first", "400 first", "408 first"],
                      "other": ["408 localhost"], "location": ["200 localhost"]}
    server = start_portico(workdir, REJECTED_LOGGED, 1)
    try:
        _refuse_and_log(server)
    finally:
        server.stop()
    assert _read_logs(workdir) == theirs


BODY_FAILURES_LOGGED = r"""
    log_format brief '$status $request_method $uri';
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        client_body_timeout 1s;
        access_log @DIR@/server.log brief;
        location /app/ {
            wsgi_app introspect:application;
            wsgi_pythonpath %(apps)s;
            access_log @DIR@/app.log brief;
        }
    }
""" % {"apps": APPS}


def test_a_body_the_connection_refuses_is_logged_by_the_location(tmp_path):
    # After routing, a body that times out (408) or breaks its chunked framing (400) is answered
    # by the connection; the location's access_log still has the line, as nginx's would.
    prepare_tree(str(tmp_path), {})
    server = start_portico(str(tmp_path), BODY_FAILURES_LOGGED, 1)
    port = server.ports[0]
    try:
        slow = (b"POST /app/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc")
        assert _rejected(port, slow).startswith(b"HTTP/1.1 408")
        broken = (b"POST /app/echo HTTP/1.1\r\nHost: localhost\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")
        assert _rejected(port, broken).startswith(b"HTTP/1.1 400")
        ok = server.request("POST", "/app/echo", body=b"fine")
        assert (ok.status, ok.body) == (200, b"fine")
    finally:
        server.stop()
    with open(os.path.join(str(tmp_path), "app.log")) as handle:
        assert handle.read().splitlines() == [
            "408 POST /app/echo", "400 POST /app/echo", "200 POST /app/echo"]
    with open(os.path.join(str(tmp_path), "server.log")) as handle:
        assert handle.read() == ""


BOUND = r"""
    server {
        listen 127.0.0.1:@PORT@ bind;
        location / { return 200 "one"; }
    }
    server {
        listen 127.0.0.2:@PORT@ bind;
        location / { return 200 "two"; }
    }
"""


def _get(host, port):
    with Connection.tcp(host, port, 5.0) as conn:
        return conn.request("GET", "/", host="localhost")


def test_listen_bind_gives_each_address_its_socket(tmp_path):
    prepare_tree(str(tmp_path), {})
    server = start_portico(str(tmp_path), BOUND, 1)
    try:
        assert _get("127.0.0.1", server.ports[0]).body == b"one"
        assert _get("127.0.0.2", server.ports[0]).body == b"two"
    finally:
        server.stop()


BOUND_WITH_WILDCARD = r"""
    server {
        listen @PORT@;
        location / { return 200 "any"; }
    }
    server {
        listen 127.0.0.2:@PORT@;
        location / { return 200 "two"; }
    }
    server {
        listen 127.0.0.3:@PORT@ bind;
        location / { return 200 "three"; }
    }
"""


def test_bind_next_to_a_wildcard_is_refused_by_the_kernel_as_for_nginx(tmp_path):
    # Without `bind`, 127.0.0.2 is served through the wildcard's socket; with it, 127.0.0.3
    # gets its own bind(), which Linux refuses next to 0.0.0.0:PORT ("Address already in use"),
    # exactly as nginx fails on the same file.
    # portico is run to its exit rather than waited for: the wildcard socket is listening for
    # the moment before the second bind fails, and a readiness probe could catch it open.
    workdir = str(tmp_path)
    prepare_tree(workdir, {})
    pdir = os.path.join(workdir, "portico")
    os.makedirs(pdir)
    conf = os.path.join(pdir, "portico.conf")
    with open(conf, "w") as handle:
        handle.write(config_text(BOUND_WITH_WILDCARD, workdir, [free_port(), free_port()], False))
    proc = subprocess.run([portico_binary(), "-p", pdir + "/", "-c", conf], cwd=pdir,
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, timeout=20)
    assert proc.returncode != 0
    with open(os.path.join(workdir, "portico-error.log")) as handle:
        log = handle.read()
    assert "cannot bind 127.0.0.3:" in log and "Address already in use" in log, log
    assert "127.0.0.2" not in log  # served through the wildcard's socket, never bound


NAMES_APP = r"""
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        location / { wsgi_app introspect:application; wsgi_pythonpath %(apps)s; }
    }
    server {
        listen 127.0.0.1:@PORT2@;
        server_name localhost;
        underscores_in_headers on;
        ignore_invalid_headers off;
        location / { wsgi_app introspect:application; wsgi_pythonpath %(apps)s; }
    }
""" % {"apps": APPS}


def test_header_names_reach_the_app_by_the_servers_rules(tmp_path):
    # nginx's defaults drop "X_Spoof" (it would be HTTP_X_SPOOF, as "X-Spoof") and "X.Dot";
    # underscores_in_headers on / ignore_invalid_headers off let them through, as nginx passes
    # them to uwsgi_pass (HTTP_X_SPOOF, HTTP_X.DOT).
    prepare_tree(str(tmp_path), {})
    server = start_portico(str(tmp_path), NAMES_APP, 2)
    headers = [("X_Spoof", "under"), ("X.Dot", "dot"), ("X-Plain", "plain")]
    try:
        envs = []
        for index in (0, 1):
            response = server.request("GET", "/environ", headers=headers, port_index=index)
            assert response.status == 200, response
            envs.append(json.loads(response.body))
        strict, lenient = envs
        assert strict["HTTP_X_PLAIN"] == "plain"
        assert "HTTP_X_SPOOF" not in strict and "HTTP_X.DOT" not in strict
        assert (lenient["HTTP_X_SPOOF"], lenient["HTTP_X.DOT"], lenient["HTTP_X_PLAIN"]) == (
            "under", "dot", "plain")
    finally:
        server.stop()
