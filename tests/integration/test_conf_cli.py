"""nginx's command line and configuration file, driven through the real binary.

`portico -t/-T/-q/-v/-V/-g/-p/-e/-s` against their nginx meanings, a differential run of Debian's
`nginx -t` on the same files (accepted and rejected alike, the same message and line), the
configurations of common Django deployment tutorials, and a HUP with a broken file.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conf_cases import ACCEPTED, REJECTED
from servers import NginxServer, free_port, portico_binary

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MIME_TYPES = os.path.join(REPO, "conf", "mime.types")
NGINX = NginxServer.binary()


def run(args, cwd=None, timeout=20):
    proc = subprocess.run([portico_binary()] + args, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout, proc.stderr


def write(directory, name, text):
    path = os.path.join(str(directory), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)
    return path


# ---- -t, -T, -q ----

def test_t_reports_success_like_nginx(tmp_path):
    os.makedirs(str(tmp_path / "logs"))  # the default access log is opened, as nginx -t does
    conf = write(tmp_path, "site.conf", "events {}\nhttp { server { listen 127.0.0.1:8081; } }\n")
    code, out, err = run(["-t", "-c", conf])
    assert code == 0, err
    assert out == ""
    assert err == ("portico: the configuration file %s syntax is ok\n"
                   "portico: configuration file %s test is successful\n" % (conf, conf))


def test_t_reports_failure_with_file_and_line(tmp_path):
    conf = write(tmp_path, "site.conf", "events {}\nhttp {\n  server {\n    frobnicate on;\n  }\n}\n")
    code, out, err = run(["-t", "-c", conf])
    assert code == 1
    assert err == ("portico: [emerg] unknown directive \"frobnicate\" in %s:4\n"
                   "portico: configuration file %s test failed\n" % (conf, conf))


def test_t_names_the_root_or_alias_line_of_an_unknown_variable(tmp_path):
    # nginx says `unknown "x" variable` (without a place); portico adds where it was written.
    conf = write(tmp_path, "site.conf", "events {}\nhttp {\n  server {\n    root /srv/$host;\n"
                 "    location ~ ^/p/(.+)$ {\n      alias /data/$1/$nosuch;\n    }\n  }\n}\n")
    code, _out, err = run(["-t", "-c", conf])
    assert code == 1
    assert err == ("portico: [emerg] unknown \"nosuch\" variable in %s:6\n"
                   "portico: configuration file %s test failed\n" % (conf, conf))


def test_relative_c_is_resolved_and_reported_absolute(tmp_path):
    write(tmp_path, "site.conf", "events {}\n")
    code, _out, err = run(["-t", "-c", "site.conf"], cwd=str(tmp_path))
    assert code == 0, err
    assert "the configuration file %s/site.conf syntax is ok" % tmp_path in err


def test_q_silences_success_but_not_errors(tmp_path):
    good = write(tmp_path, "good.conf", "events {}\n")
    code, out, err = run(["-t", "-q", "-c", good])
    assert (code, out, err) == (0, "", "")
    bad = write(tmp_path, "bad.conf", "events {\n")
    code, _out, err = run(["-tq", "-c", bad])
    assert code == 1
    assert err.splitlines() == [
        "portico: [emerg] unexpected end of file, expecting \"}\" in %s:2" % bad,
        "portico: configuration file %s test failed" % bad]


def test_T_dumps_every_file_read(tmp_path):
    os.makedirs(str(tmp_path / "logs"))
    main = write(tmp_path, "site.conf",
                 "events {}\nhttp {\n  include conf.d/*.conf;\n  include mime.types;\n}\n")
    first = write(tmp_path, "conf.d/a.conf", "server { listen 127.0.0.1:8081; }")
    second = write(tmp_path, "conf.d/b.conf", "server { listen 127.0.0.1:8082; }\n")
    shutil.copy(MIME_TYPES, str(tmp_path / "mime.types"))
    code, out, err = run(["-T", "-c", main])
    assert code == 0, err
    assert "test is successful" in err
    with open(MIME_TYPES) as handle:
        mime = handle.read()
    expected = ""
    for path, text in [(main, open(main).read()), (first, "server { listen 127.0.0.1:8081; }"),
                       (second, "server { listen 127.0.0.1:8082; }\n"),
                       (str(tmp_path / "mime.types"), mime)]:
        expected += "# configuration file %s:\n%s\n" % (path, text)
    assert out == expected


def test_T_dumps_nothing_when_the_test_fails(tmp_path):
    conf = write(tmp_path, "site.conf", "events {}\nbogus;\n")
    code, out, _err = run(["-T", "-c", conf])
    assert code == 1
    assert out == ""


def test_warnings_are_printed_and_do_not_fail(tmp_path):
    conf = write(tmp_path, "site.conf", "events {}\nhttp {\n gzip_types text/html;\n}\n")
    code, _out, err = run(["-t", "-c", conf])
    assert code == 0
    assert err.splitlines()[0] == "portico: [warn] duplicate MIME type \"text/html\" in %s:3" % conf


# ---- -v, -V, -h ----

def test_v_and_V_print_the_version_to_stderr():
    code, out, err = run(["-c", "/nonexistent.conf", "-v"])
    assert (code, out) == (0, "")
    assert re.fullmatch(r"portico version: portico/\d+\.\d+\.\d+\n", err), err
    code, out, err = run(["-V"])
    assert (code, out) == (0, "")
    lines = err.splitlines()
    assert re.fullmatch(r"portico version: portico/\d+\.\d+\.\d+", lines[0])
    assert lines[1].startswith("built by ")
    # As nginx built with OpenSSL: the library, SNI, then the configure arguments.
    assert re.fullmatch(r"built with OpenSSL \d+\.\d+\.\d+.*", lines[2]), lines[2]
    assert lines[3] == "TLS SNI support enabled"
    assert lines[4].startswith("configure arguments: ")
    assert "PREFIX/conf/portico.conf" in lines[4]


def test_gunicorn_version_flag_is_unchanged():
    code, out, _err = run(["-v"])
    assert code == 0
    assert re.fullmatch(r"portico \d+\.\d+\.\d+\n", out)


def test_nginx_help():
    code, _out, err = run(["-?"])
    assert code == 0
    assert "Usage: portico [-?hvVtTq] [-s signal] [-p prefix]" in err
    assert "-g directives" in err


# ---- -g, -p, -e ----

def test_g_directives_are_read_before_the_file(tmp_path):
    conf = write(tmp_path, "site.conf", "events {}\npid %s/b.pid;\n" % tmp_path)
    code, _out, err = run(["-t", "-c", conf, "-g", "worker_processes 2;"])
    assert code == 0, err
    code, _out, err = run(["-t", "-c", conf, "-g", "pid /tmp/a.pid;"])
    assert code == 1
    assert "portico: [emerg] \"pid\" directive is duplicate in %s:2" % conf in err
    code, _out, err = run(["-t", "-c", conf, "-g", "frob;"])
    assert code == 1
    assert "portico: [emerg] unknown directive \"frob\" in command line\n" in err
    code, _out, err = run(["-t", "-c", conf, "-g", "daemon off"])
    assert "unexpected end of parameter, expecting \";\" in command line" in err


def test_p_prefix_and_default_conf(tmp_path):
    # -p alone: PREFIX/conf/portico.conf; include is relative to the file's directory.
    os.makedirs(str(tmp_path / "logs"))
    write(tmp_path, "conf/portico.conf", "events {}\nhttp { include extra.conf; }\n")
    write(tmp_path, "conf/extra.conf", "server { listen 127.0.0.1:8081; }\n")
    code, _out, err = run(["-t", "-p", str(tmp_path)])
    assert code == 0, err
    assert "%s/conf/portico.conf syntax is ok" % tmp_path in err
    # relative -c is under -p, as nginx
    code, _out, err = run(["-t", "-p", str(tmp_path) + "/", "-c", "conf/portico.conf"])
    assert code == 0, err
    code, _out, err = run(["-t", "-p", str(tmp_path / "nowhere")])
    assert code == 1
    assert ("portico: [emerg] open() \"%s/nowhere/conf/portico.conf\" failed "
            "(2: No such file or directory)\n" % tmp_path) in err


# ---- choosing between nginx's and gunicorn's command lines ----

@pytest.mark.parametrize("args,needle", [
    (["-c", "site.conf", "--bind", "127.0.0.1:1"], "cannot be combined with the gunicorn-style --bind"),
    (["-c", "site.conf", "app:application"], "cannot be combined with the gunicorn-style app:application"),
    (["-t", "-w", "2"], "cannot be combined with the gunicorn-style -w"),
    (["-c", "gunicorn.conf.py", "-T"], "cannot be combined with the gunicorn-style -c gunicorn.conf.py"),
])
def test_mixing_is_a_one_line_error(args, needle):
    code, out, err = run(args)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("portico: error: ")
    assert needle in err


@pytest.mark.parametrize("args,message", [
    (["-c"], "portico: option \"-c\" requires file name"),
    (["-t", "-p"], "portico: option \"-p\" requires directory name"),
    (["-c", "x.conf", "-s", "restart"], "portico: invalid option: \"-s\" \"restart\""),
    (["-t", "-x"], "portico: invalid option: \"x\""),
])
def test_nginx_option_errors(args, message):
    code, _out, err = run(args)
    assert code == 2
    assert err == message + "\n"


# ---- -s and reload ----

def test_s_needs_a_pid_directive(tmp_path):
    conf = write(tmp_path, "site.conf", "events {}\n")
    code, _out, err = run(["-c", conf, "-s", "reload"])
    assert code == 1
    assert err == ("portico: error: -s reload needs a \"pid\" directive in %s to find the master\n"
                   % conf)


def test_s_signals_the_pid_in_the_file(tmp_path):
    marker = tmp_path / "got-hup"
    child = subprocess.Popen([sys.executable, "-c",
                              "import signal, sys, time\n"
                              "signal.signal(signal.SIGHUP, lambda *a: (open(sys.argv[1], 'w').close(), sys.exit(0)))\n"
                              "print('ready', flush=True)\n"
                              "time.sleep(30)\n", str(marker)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        pid_file = write(tmp_path, "p.pid", "%d\n" % child.pid)
        conf = write(tmp_path, "site.conf", "pid %s;\nevents {}\n" % pid_file)
        code, _out, err = run(["-c", conf, "-s", "reload"])
        assert code == 0, err
        assert child.wait(timeout=10) == 0
        assert marker.exists()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _wait_for(predicate, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_hup_with_a_broken_file_keeps_the_running_configuration(tmp_path):
    port = free_port()
    pid_file = str(tmp_path / "portico.pid")
    text = ("pid %s;\nerror_log %s/error.log info;\nevents {}\n"
            "http { access_log off; server { listen 127.0.0.1:%d; } }\n" % (pid_file, tmp_path, port))
    conf = write(tmp_path, "site.conf", text)
    proc = subprocess.Popen([portico_binary(), "-c", conf], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "error.log"
    try:
        assert _wait_for(lambda: os.path.exists(pid_file) and log.exists() and
                         "Booting worker" in log.read_text())
        write(tmp_path, "site.conf", text + "bogus_directive;\n")
        # -s re-reads the file first, as nginx: a broken file is reported and nothing is sent.
        code, _out, err = run(["-c", conf, "-s", "reload"])
        assert code == 1
        assert "unknown directive \"bogus_directive\" in %s:5" % conf in err
        os.kill(proc.pid, signal.SIGHUP)
        assert _wait_for(lambda: "reload failed" in log.read_text())
        assert ("reload failed, keeping the running configuration: [emerg] unknown directive "
                "\"bogus_directive\" in %s:5" % conf) in log.read_text()
        assert proc.poll() is None
        write(tmp_path, "site.conf", text)
        code, _out, err = run(["-c", conf, "-s", "reload"])
        assert code == 0, err
        assert _wait_for(lambda: log.read_text().count("Booting worker") >= 2)
        code, _out, err = run(["-c", conf, "-s", "quit"])
        assert code == 0, err
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---- the shipped example and the tutorials ----

def test_shipped_example_passes_t():
    conf = os.path.join(REPO, "conf", "portico.conf")
    code, _out, err = run(["-t", "-c", conf])
    assert code == 0, err
    assert err.endswith("configuration file %s test is successful\n" % conf)


TUTORIALS = ["digitalocean/nginx.conf", "uwsgi_docs.conf", "testdriven_docker.conf",
             "production_hardened.conf"]


def _copy_confs(tmp_path):
    target = tmp_path / "confs"
    shutil.copytree(os.path.join(HERE, "confs"), str(target))
    # The default access log under the prefix (Debian's nginx has /var/log/nginx/ built in).
    os.makedirs(str(target / "logs"))
    for directory in (target, target / "digitalocean"):
        shutil.copy(MIME_TYPES, str(directory / "mime.types"))
    return target


@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_configurations_fail_t_only_for_their_missing_app(tmp_path, name):
    # -t imports the app as start-up would; outside their deployment (no project directory, no
    # module) the one thing -t refuses in a tutorial's file is that, in one [emerg] line.
    confs = _copy_confs(tmp_path)
    code, _out, err = run(["-t", "-c", name], cwd=str(confs))
    assert code == 1, err
    emerg = [line for line in err.splitlines() if "[emerg]" in line]
    assert len(emerg) == 1 and emerg[0].startswith("portico: [emerg] Failed to load the WSGI app "), err
    assert "test failed" in err


@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorials_with_their_proxy_line_pass_the_test(tmp_path, name):
    confs = _copy_confs(tmp_path)
    # the file holding the app (DigitalOcean's is in sites-enabled/, included by a glob)
    path = confs / {"digitalocean/nginx.conf": "digitalocean/sites-enabled/myproject"}.get(name, name)
    lines = path.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip().startswith("wsgi_app"))
    lines[index] = "proxy_pass http://127.0.0.1:8000;"
    # The app's companions go with it: the location proxies, as the tutorial's nginx did.
    lines = [line for i, line in enumerate(lines)
             if i == index or not line.strip().startswith("wsgi_")]
    path.write_text("\n".join(lines) + "\n")
    code, _out, err = run(["-t", "-c", str(confs / name)])
    assert code == 0, err
    assert "test is successful" in err


# ---- differential: Debian's nginx -t on the same files ----

def _nginx_t(directory, conf):
    proc = subprocess.run([NGINX, "-t", "-q", "-e", os.path.join(directory, "nginx-error.log"),
                           "-p", directory + "/", "-c", conf],
                          capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    return proc.returncode, [line[len("nginx: "):] for line in proc.stderr.splitlines()
                             if line.startswith("nginx: [")]


def _portico_t(directory, conf):
    code, _out, err = run(["-t", "-q", "-p", directory + "/", "-c", conf])
    return code, [line[len("portico: "):] for line in err.splitlines()
                  if line.startswith("portico: [")]


@pytest.mark.skipif(NGINX is None or os.geteuid() != 0,
                    reason="needs Debian's nginx, run as root (user, log files)")
@pytest.mark.parametrize("name,text", ACCEPTED + REJECTED, ids=[c[0] for c in ACCEPTED + REJECTED])
def test_nginx_and_portico_agree(tmp_path, name, text):
    directory = str(tmp_path)
    os.makedirs(os.path.join(directory, "logs"))
    conf = write(directory, "site.conf", text)
    nginx_code, nginx_lines = _nginx_t(directory, conf)
    portico_code, portico_lines = _portico_t(directory, conf)
    assert portico_code == nginx_code, (nginx_lines, portico_lines)
    # the same [emerg]/[warn] lines: message, file and line number
    assert portico_lines == nginx_lines
    if (name, text) in REJECTED:
        assert nginx_code == 1 and nginx_lines


@pytest.mark.skipif(NGINX is None or os.geteuid() != 0,
                    reason="needs Debian's nginx, run as root (user, log files)")
@pytest.mark.parametrize("name", TUTORIALS)
def test_nginx_accepts_the_tutorials_without_the_wsgi_lines(tmp_path, name):
    # With portico's wsgi_* lines taken out, every tutorial is a configuration nginx accepts
    # too, so they exercise nginx's grammar, not portico's idea of it.
    confs = _copy_confs(tmp_path)
    for root, _dirs, files in os.walk(str(confs)):
        for filename in files:
            path = os.path.join(root, filename)
            with open(path) as handle:
                kept = [line for line in handle if not line.strip().startswith("wsgi_")]
            with open(path, "w") as handle:
                handle.writelines(kept)
    conf = str(confs / name)
    nginx_code, nginx_lines = _nginx_t(str(confs), conf)
    portico_code, portico_lines = _portico_t(str(confs), conf)
    assert nginx_code == 0, nginx_lines
    assert portico_code == 0, portico_lines


@pytest.mark.skipif(NGINX is None or os.geteuid() != 0,
                    reason="needs Debian's nginx, run as root (user, log files)")
@pytest.mark.parametrize("directives", ["frob;", "daemon off", "events {}", "pid /a;",
                                        "worker_processes x;", "worker_connections 1;",
                                        "worker_processes 2;"])
def test_g_messages_match_nginx(tmp_path, directives):
    conf = write(tmp_path, "site.conf", "events {}\npid %s/b.pid;\n" % tmp_path)
    nginx = subprocess.run([NGINX, "-t", "-q", "-e", str(tmp_path / "e.log"), "-p", str(tmp_path) + "/",
                            "-c", conf, "-g", directives], capture_output=True, text=True, timeout=20)
    code, _out, err = run(["-t", "-q", "-p", str(tmp_path) + "/", "-c", conf, "-g", directives])
    assert code == nginx.returncode
    assert err.replace("portico: ", "nginx: ") == nginx.stderr


@pytest.mark.skipif(NGINX is None or os.geteuid() != 0,
                    reason="needs Debian's nginx, run as root (user, log files)")
def test_T_output_matches_nginx(tmp_path):
    os.makedirs(str(tmp_path / "logs"))
    main = write(tmp_path, "main.conf", "events {}\nhttp {\n include conf.d/*.conf;\n"
                                        " include conf.d/*.conf;\n include mime.types;\n}")
    write(tmp_path, "conf.d/a.conf", "server { listen 8081; }\n")
    write(tmp_path, "conf.d/b.conf", "# no newline at the end")
    shutil.copy(MIME_TYPES, str(tmp_path / "mime.types"))
    nginx = subprocess.run([NGINX, "-T", "-e", str(tmp_path / "e.log"), "-p", str(tmp_path) + "/",
                            "-c", main], capture_output=True, text=True, timeout=20)
    code, out, err = run(["-T", "-p", str(tmp_path) + "/", "-c", main])
    assert (code, nginx.returncode) == (0, 0)
    assert out == nginx.stdout
    assert err.replace("portico: ", "nginx: ") == nginx.stderr
