"""uWSGI's ini files: `portico --ini uwsgi.ini` (and `portico uwsgi.ini`) reads a Django
tutorial's configuration as uWSGI does, each option with its uWSGI meaning. The real uWSGI from
apt reads the very same file behind the same nginx (`uwsgi_pass` + Debian's `uwsgi_params`), and
both must answer alike; then the HTTP sockets, touch-reload, daemonize/logto, the command line
over the file, and the errors (FILE:LINE naming the option)."""

import json
import os
import signal
import socket
import stat
import subprocess
import time

import pytest

from http_client import Connection, build_request
from master_support import children, print_config_settings
from servers import NginxServer, free_port, portico_binary
from uwsgi_support import UWSGI, UWSGI_PARAMS, needs_nginx_and_uwsgi, stop, wait_listening
from wsgi_support import wait_until

APP = '''
import json, os, threading
def application(environ, start_response):
    keys = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "SCRIPT_NAME", "SERVER_PROTOCOL",
            "wsgi.multithread", "wsgi.multiprocess")
    doc = {k: environ.get(k) for k in keys}
    # PEP 3333 lets a server omit an empty SCRIPT_NAME (uWSGI does, portico sends "").
    doc["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "")
    doc["GREETING"] = os.environ.get("GREETING")
    doc["pid"] = os.getpid()
    doc["version"] = VERSION
    body = json.dumps(doc, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
VERSION = 1
'''

TUTORIAL = '''# a Django tutorial's uwsgi.ini, with uWSGI's magic variables and placeholders
[uwsgi]
project = site
base = %d
chdir = %(base)
module = %(project)_app:application
plugins = python3
master = true
processes = 2
threads = 2
enable-threads = true
socket = %dapp.sock
chmod-socket = 660
vacuum = true
die-on-term = true
env = GREETING=hello-%(project)
static-map = /static=%(base)static
buffer-size = 32768
logto = %dapp.log
'''


def write_site(directory, ini=TUTORIAL, version=1):
    os.makedirs(os.path.join(directory, "static"), exist_ok=True)
    with open(os.path.join(directory, "site_app.py"), "w") as f:
        f.write(APP.replace("VERSION = 1", "VERSION = %d" % version))
    with open(os.path.join(directory, "static", "note.txt"), "w") as f:
        f.write("a static file\n" * 100)
    path = os.path.join(directory, "uwsgi.ini")
    with open(path, "w") as f:
        f.write(ini)
    return path


def start_portico(args, cwd, log):
    err = open(log, "wb")
    proc = subprocess.Popen([portico_binary()] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=err, stderr=err)
    err.close()
    return proc


def get(port, path):
    conn = Connection.tcp("127.0.0.1", port, 5.0)
    try:
        conn.send(build_request("GET", path, headers=[("Host", "localhost")]))
        return conn.read_response()
    finally:
        conn.close()


def run_portico(args, cwd):
    return subprocess.run([portico_binary()] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30)


@needs_nginx_and_uwsgi
def test_a_tutorial_ini_behind_nginx_answers_as_uwsgi_does(tmp_path):
    # The same file, copied to two directories (its %d differs): uWSGI reads one, portico the
    # other; an nginx in front of each with the tutorial's `uwsgi_pass unix:...sock`.
    answers = {}
    procs = []
    try:
        for name in ("uwsgi", "portico"):
            directory = str(tmp_path / name)
            os.makedirs(directory)
            ini = write_site(directory)
            log = os.path.join(directory, "server.log")
            if name == "uwsgi":
                proc = subprocess.Popen([UWSGI, "--ini", ini], cwd=directory,
                                        stdin=subprocess.DEVNULL, stdout=open(log, "wb"),
                                        stderr=subprocess.STDOUT)
            else:
                proc = start_portico(["--ini", ini], directory, log)
            procs.append(proc)
            sock = os.path.join(directory, "app.sock")
            wait_listening(proc, [(socket.AF_UNIX, sock)], log)
            # chmod-socket = 660, for both; processes = 2: two workers under the master.
            assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660, name
            wait_until(lambda: len(children(proc.pid)) == 2, 10.0)
            nginx = NginxServer(directory, "location / { include %s; uwsgi_pass unix:%s; }\n"
                                           "location = /big { include %s; uwsgi_pass unix:%s; }"
                                % (UWSGI_PARAMS, sock, UWSGI_PARAMS, sock)).start()
            procs.append(nginx)
            seen = {}
            for path in ("/", "/a/b?x=1&y=2", "/static/note.txt", "/static/missing.txt"):
                response = get(nginx.port, path)
                seen[path] = (response.status, response.body)
            # A 6 KB header: past uWSGI's default 4 KB buffer, within nginx's 8 KB.
            conn = Connection.tcp("127.0.0.1", nginx.port, 5.0)
            conn.send(build_request("GET", "/big", headers=[("Host", "localhost"),
                                                             ("X-Big", "b" * 6000)]))
            seen["big"] = (conn.read_response().status, b"")
            conn.close()
            answers[name] = seen
            # logto: the log, the requests among it, goes to the file for both.
            app_log = os.path.join(directory, "app.log")
            wait_until(lambda: "GET /a/b?x=1&y=2" in open(app_log, errors="replace").read(),
                       10.0)
            assert len(children(proc.pid)) == 2, name
    finally:
        for p in reversed(procs):
            if isinstance(p, NginxServer):
                p.stop()
            else:
                stop(p, signal.SIGTERM)
    for path in ("/", "/a/b?x=1&y=2"):
        u_status, u_body = answers["uwsgi"][path]
        p_status, p_body = answers["portico"][path]
        assert u_status == p_status == 200
        u_doc, p_doc = json.loads(u_body), json.loads(p_body)
        u_doc.pop("pid")
        p_doc.pop("pid")
        assert p_doc == u_doc, (p_doc, u_doc)
        assert p_doc["GREETING"] == "hello-site"
    assert answers["portico"]["/static/note.txt"] == answers["uwsgi"]["/static/note.txt"]
    assert answers["portico"]["/static/note.txt"][1] == b"a static file\n" * 100
    assert answers["portico"]["/static/missing.txt"][0] == 404
    assert answers["portico"]["big"][0] == answers["uwsgi"]["big"][0] == 200
    # vacuum: both remove the socket when they stop.
    for name in ("uwsgi", "portico"):
        assert not os.path.exists(str(tmp_path / name / "app.sock")), name


def test_http_socket_section_and_positional_file(tmp_path):
    # `portico FILE.ini` reads it as --ini does; FILE:SECTION picks a section; `http = :PORT`
    # listens on every IPv4 interface; `print` lines are logged.
    port, other = free_port(), free_port()
    ini = write_site(str(tmp_path), ini='''[uwsgi]
module = site_app
http = :%d
processes = 1
print = read from %%c as %%n
[staging]
module = site_app
http-socket = 127.0.0.1:%d
env = GREETING=staging
''' % (port, other))
    log = str(tmp_path / "a.log")
    proc = start_portico([os.path.basename(ini)], str(tmp_path), log)
    try:
        wait_listening(proc, [(socket.AF_INET, ("127.0.0.1", port))], log)
        response = get(port, "/x?q=1")
        assert response.status == 200
        doc = json.loads(response.body)
        assert doc["PATH_INFO"] == "/x" and doc["QUERY_STRING"] == "q=1"
        assert doc["GREETING"] is None
        assert "read from %s as uwsgi" % tmp_path.name in open(log).read()
        assert "Listening at: http://0.0.0.0:%d" % port in open(log).read()
    finally:
        stop(proc)
    log2 = str(tmp_path / "b.log")
    proc = start_portico(["--ini", ini + ":staging"], str(tmp_path), log2)
    try:
        wait_listening(proc, [(socket.AF_INET, ("127.0.0.1", other))], log2)
        assert json.loads(get(other, "/").body)["GREETING"] == "staging"
    finally:
        stop(proc)


def test_the_command_line_overrides_the_file(tmp_path):
    ini = write_site(str(tmp_path))
    out = run_portico(["--ini", ini, "--workers", "5", "--bind", "127.0.0.1:9",
                       "--print-config"], str(tmp_path))
    assert out.returncode == 0, out.stderr
    settings = print_config_settings(out.stdout)
    assert settings["workers"] == "5"               # the command line's, not processes = 2
    assert settings["bind"] == "['127.0.0.1:9']"    # its --bind replaces the file's socket
    assert settings["threads"] == "2"               # the file's
    assert settings["raw_env"] == "['GREETING=hello-site']"
    assert settings["chdir"] == str(tmp_path)
    assert settings["limit_request_field_size"] == "32768"


@pytest.mark.parametrize("line, message", [
    ("frobnicate = 1", "uwsgi.ini:3: frobnicate: unknown uWSGI option"),
    ("processes = many", "uwsgi.ini:3: processes: invalid value \"many\" (a whole number)"),
    ("socket = @abstract", "uwsgi.ini:3: socket: abstract unix sockets"),
    ("plugins = python3,php", "uwsgi.ini:3: plugins: the \"php\" plugin is not available"),
    ("just a line", "uwsgi.ini:3: expected KEY = VALUE"),
    ("env = NOVALUE", "uwsgi.ini:3: env: expected KEY=VALUE"),
    ("wsgi-file = app.wsgi", "uwsgi.ini:3: wsgi-file: portico imports the file as a Python module"),
    ("threads = 0", "uwsgi.ini:3: argument --threads"),
])
def test_errors_name_the_file_line_and_option(tmp_path, line, message):
    ini = tmp_path / "uwsgi.ini"
    ini.write_text("[uwsgi]\nmodule = site_app\n%s\n" % line)
    out = run_portico(["--ini", "uwsgi.ini"], str(tmp_path))
    assert out.returncode != 0
    assert message in out.stderr, out.stderr


def test_missing_file_or_section_and_two_files(tmp_path):
    out = run_portico(["--ini", "nope.ini"], str(tmp_path))
    assert out.returncode == 1 and "cannot read the ini file nope.ini" in out.stderr
    (tmp_path / "u.ini").write_text("[other]\nmodule = x\n")
    out = run_portico(["--ini", "u.ini"], str(tmp_path))
    assert out.returncode == 1 and "u.ini: no [uwsgi] section" in out.stderr
    (tmp_path / "g.py").write_text("workers = 2\n")
    out = run_portico(["-c", "g.py", "--ini", "u.ini:other"], str(tmp_path))
    assert out.returncode != 0 and "give one configuration file" in out.stderr


def test_touch_reload_brings_new_code(tmp_path):
    # touch-reload: touching the file reloads gracefully; the workers import the app afresh
    # (portico imports it in each worker, uWSGI's lazy-apps), so the new code answers.
    port = free_port()
    ini = write_site(str(tmp_path), ini='''[uwsgi]
module = site_app
http-socket = 127.0.0.1:%d
touch-reload = %%dreload.touch
master = true
''' % port)
    touch = tmp_path / "reload.touch"
    touch.write_text("")
    log = str(tmp_path / "p.log")
    proc = start_portico(["--ini", ini], str(tmp_path), log)
    try:
        wait_listening(proc, [(socket.AF_INET, ("127.0.0.1", port))], log)
        first = json.loads(get(port, "/").body)
        assert first["version"] == 1
        write_site(str(tmp_path), ini=open(ini).read(), version=2)
        time.sleep(1.1)  # a new mtime second, whatever the file system's granularity
        assert json.loads(get(port, "/").body)["version"] == 1  # not before the touch
        os.utime(touch)
        wait_until(lambda: json.loads(get(port, "/").body)["version"] == 2, 15.0)
        assert json.loads(get(port, "/").body)["pid"] != first["pid"]
        assert proc.poll() is None
        assert "touch-reload: %s modified; reloading" % (tmp_path / "reload.touch") in \
            open(log).read()
    finally:
        stop(proc)


def test_daemonize_logs_to_the_file_and_pidfile_stops_it(tmp_path):
    # daemonize = FILE: detached (the command returns at once), every log line, the requests
    # and the app's prints in FILE; pidfile names the master, `-s stop` stops it.
    port = free_port()
    ini = write_site(str(tmp_path), ini='''[uwsgi]
module = site_app
http-socket = 127.0.0.1:%d
daemonize = %%dserver.log
pidfile = %%dserver.pid
''' % port)
    out = run_portico(["--ini", ini], str(tmp_path))
    assert out.returncode == 0, out.stderr
    pidfile = tmp_path / "server.pid"
    try:
        wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 10.0)
        wait_until(lambda: _can_get(port), 10.0)
        assert get(port, "/logged").status == 200
        wait_until(lambda: "GET /logged" in (tmp_path / "server.log").read_text(), 5.0)
        assert "Listening at: http://127.0.0.1:%d" % port in (tmp_path / "server.log").read_text()
    finally:
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not os.path.exists("/proc/%d" % pid) or
                   "zombie" in open("/proc/%d/status" % pid).read().lower(), 15.0)
    assert not pidfile.exists()


def _can_get(port):
    try:
        return get(port, "/").status == 200
    except OSError:
        return False


def test_notes_for_options_whose_false_differs(tmp_path):
    write_site(str(tmp_path), ini='''[uwsgi]
module = site_app
http-socket = 127.0.0.1:%d
master = false
lazy-apps = false
disable-logging = true
''' % free_port())
    log = str(tmp_path / "n.log")
    proc = start_portico(["--ini", "uwsgi.ini"], str(tmp_path), log)
    try:
        wait_until(lambda: "Booting worker" in open(log).read(), 10.0)
        text = open(log).read()
        assert "uwsgi.ini:4: master: set to false, but portico always runs a master" in text
        assert "uwsgi.ini:5: lazy-apps: portico imports the app in each worker" in text
    finally:
        stop(proc)
    assert "GET" not in open(log).read()  # disable-logging: no request lines
