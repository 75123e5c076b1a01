"""gunicorn's environment and habits, each compared with Debian's gunicorn on the same input:
GUNICORN_CMD_ARGS (read before the command line, which wins), WEB_CONCURRENCY and PORT as
defaults, `--print-config` (the same settings, the same values), `--check-config` (0 when the
app loads, 1 when not), -k sync/gthread accepted and other worker classes refused, a mistyped
flag reported as one (never as a bad APP_MODULE), and bare `portico` saying what it serves."""

import os
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from master_support import children, print_config_settings
from servers import free_port, portico_binary

GUNICORN = shutil.which("gunicorn")

APP = '''
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from app"]
'''


@pytest.fixture
def appdir(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


def env_with(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("GUNICORN_CMD_ARGS", "WEB_CONCURRENCY", "PORT", "FORWARDED_ALLOW_IPS")}
    env.update(extra)
    return env


def run(binary, args, cwd, env, timeout=30):
    done = subprocess.run([binary] + list(args), cwd=str(cwd), env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def accepts(port):
    with socket.socket() as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(("127.0.0.1", port))
            return True
        except OSError:
            return False


def serve_and_count(binary, args, cwd, env, port, workers):
    """Starts the server, waits for `port` and `workers` children, fetches /; returns
    (children seen, body). The server is stopped with TERM."""
    proc = subprocess.Popen([binary] + list(args), cwd=str(cwd), env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        seen = set()
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            seen = children(proc.pid)
            if accepts(port) and len(seen) >= workers:
                break
            time.sleep(0.1)
        body = urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10).read()
        return len(children(proc.pid)), body
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def servers():
    found = [("portico", portico_binary())]
    if GUNICORN:
        found.append(("gunicorn", GUNICORN))
    return found


def test_gunicorn_cmd_args_give_the_bind_and_the_workers(appdir):
    # The example: GUNICORN_CMD_ARGS="--bind=... --workers=3" with only the app given.
    port = free_port()
    env = env_with(GUNICORN_CMD_ARGS="--bind=127.0.0.1:%d --workers=3" % port)
    for name, binary in servers():
        count, body = serve_and_count(binary, ["app:application"], appdir, env, port, 3)
        assert (name, count, body) == (name, 3, b"hello from app")


def test_port_and_web_concurrency_are_the_defaults(appdir):
    port = free_port("0.0.0.0")
    env = env_with(PORT=str(port), WEB_CONCURRENCY="2")
    for name, binary in servers():
        count, body = serve_and_count(binary, ["app:application"], appdir, env, port, 2)
        assert (name, count, body) == (name, 2, b"hello from app")


@pytest.mark.skipif(GUNICORN is None, reason="gunicorn (Debian's package) is not installed")
def test_print_config_matches_gunicorn(appdir):
    env = env_with(GUNICORN_CMD_ARGS="--workers=3 --threads 2 --timeout 45 -b 127.0.0.1:1 -e X=0",
                   PORT="5123", FORWARDED_ALLOW_IPS="10.0.0.1, 10.0.0.2")
    args = ["--print-config", "--keep-alive", "5", "-e", "A=1", "-e", "B=2", "--max-requests", "7",
            "--chdir", str(appdir), "-k", "gthread", "--log-level", "warning", "app:application"]
    code, theirs, err = run(GUNICORN, args, appdir, env)
    assert code == 0, err
    code, ours, err = run(portico_binary(), args, appdir, env)
    assert code == 0, err
    theirs, ours = print_config_settings(theirs), print_config_settings(ours)
    assert len(ours) >= 30
    differ = {key: (theirs.get(key), value) for key, value in ours.items() if theirs.get(key) != value}
    assert differ == {}
    assert ours["bind"] == "['127.0.0.1:1']" and ours["raw_env"] == "['A=1', 'B=2']"
    assert ours["workers"] == "3" and ours["worker_class"] == "gthread"


@pytest.mark.skipif(GUNICORN is None, reason="gunicorn (Debian's package) is not installed")
def test_check_config_exit_codes_match_gunicorn(appdir):
    (appdir / "broken.py").write_text("import nosuchmodule_portico\n")
    for app, expected in (("app:application", 0), ("broken:application", 1)):
        ours = run(portico_binary(), ["--check-config", app], appdir, env_with())
        theirs = run(GUNICORN, ["--check-config", app], appdir, env_with())
        assert (ours[0], theirs[0]) == (expected, expected), (ours, theirs)
        if expected:
            assert "nosuchmodule_portico" in ours[2]


def test_worker_classes(appdir):
    port = free_port()
    count, body = serve_and_count(portico_binary(), ["-k", "gthread", "--threads", "2", "-b",
                                                     "127.0.0.1:%d" % port, "app:application"],
                                  appdir, env_with(), port, 1)
    assert (count, body) == (1, b"hello from app")
    code, _, err = run(portico_binary(), ["-k", "gevent", "app:application"], appdir, env_with())
    assert code == 2
    assert "use -k gthread (or sync) with --threads N" in err


def test_mistyped_flag_is_reported_as_one(appdir):
    code, _, err = run(portico_binary(), ["--bnd", "0.0.0.0:8030", "app:application"], appdir,
                       env_with())
    assert code == 2
    assert err.strip() == ("portico: error: unrecognized arguments: --bnd "
                           "(--bnd is not an option; did you mean --bind?)")
    if GUNICORN:
        # gunicorn's argparse names the same argument.
        code, _, theirs = run(GUNICORN, ["--bnd", "0.0.0.0:8030", "app:application"], appdir,
                              env_with())
        assert code == 2 and theirs.endswith("gunicorn: error: unrecognized arguments: --bnd\n")


def test_bare_portico_says_what_it_serves(tmp_path):
    port = free_port()
    proc = subprocess.Popen([portico_binary(), "-b", "127.0.0.1:%d" % port], cwd=str(tmp_path),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not accepts(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=5)
        assert answer.value.code == 404
    finally:
        proc.terminate()
        err = proc.communicate(timeout=15)[1].decode()
    assert "no APP_MODULE given: nothing to serve, every request is answered 404" in err
    assert "portico -c site.conf" in err


CONF = '''
import multiprocessing  # not a setting: ignored, as gunicorn does

bind = ["127.0.0.1:%(port)d"]
workers = 2
threads = 2
timeout = 40
keepalive = 7
raw_env = ["FROM_CONF=1"]
accesslog = "-"
loglevel = "warning"
forwarded_allow_ips = "10.1.1.1, 10.1.1.2"
max_requests = 1000
preload_app = False
daemon = False          # gunicorn's default: accepted
helper = multiprocessing.cpu_count()
'''


@pytest.mark.skipif(GUNICORN is None, reason="gunicorn (Debian's package) is not installed")
def test_config_file_print_config_matches_gunicorn(appdir):
    # ./gunicorn.conf.py read by default; GUNICORN_CMD_ARGS and the command line over it.
    (appdir / "gunicorn.conf.py").write_text(CONF % {"port": 1})
    env = env_with(GUNICORN_CMD_ARGS="--workers=3")
    args = ["--print-config", "--timeout", "50", "app:application"]
    code, theirs, err = run(GUNICORN, args, appdir, env)
    assert code == 0, err
    code, ours, err = run(portico_binary(), args, appdir, env)
    assert code == 0, err
    theirs, ours = print_config_settings(theirs), print_config_settings(ours)
    differ = {key: (theirs.get(key), value) for key, value in ours.items() if theirs.get(key) != value}
    assert differ == {}
    assert (ours["workers"], ours["timeout"], ours["keepalive"]) == ("3", "50", "7")
    assert ours["forwarded_allow_ips"] == "['10.1.1.1', '10.1.1.2']"


def test_config_file_serves_as_gunicorn(appdir):
    port = free_port()
    (appdir / "site_conf.py").write_text(CONF % {"port": port} + 'wsgi_app = "app:application"\n')
    for name, binary in servers():
        count, body = serve_and_count(binary, ["-c", "site_conf.py"], appdir, env_with(), port, 2)
        assert (name, count, body) == (name, 2, b"hello from app")


def test_config_file_refusals_name_file_and_line(appdir):
    (appdir / "hooks.py").write_text(
        "workers = 2\n"
        "logconfig = 'logging.ini'\n"
        "\n"
        "def post_fork(server, worker):\n"
        "    pass\n"
        "spew = True\n")
    code, _, err = run(portico_binary(), ["-c", "hooks.py", "app:application"], appdir, env_with())
    assert code == 1
    assert err.splitlines() == [
        "portico: error: hooks.py:2: the setting 'logconfig' is not supported by portico yet "
        "(logconfig = 'logging.ini')",
        "hooks.py:4: 'post_fork' is a gunicorn server hook; portico does not run server hooks "
        "yet (remove it, or do its work in the app's module)",
        "hooks.py:6: the setting 'spew' is not supported by portico yet (spew = True)"]
    (appdir / "typo.py").write_text("workers = 'four'\n")
    code, _, err = run(portico_binary(), ["-c", "typo.py", "app:application"], appdir, env_with())
    assert (code, err.strip()) == (2, "portico: error: typo.py:1: argument -w/--workers: invalid "
                                      "int value: 'four'")


def test_config_file_that_fails_shows_its_traceback(appdir):
    (appdir / "broken_conf.py").write_text("workers = 2\nimport nosuchmodule_conf\n")
    code, _, err = run(portico_binary(), ["-c", "broken_conf.py", "app:application"], appdir,
                       env_with())
    assert code == 1
    assert "Failed to read the configuration file broken_conf.py" in err
    assert 'broken_conf.py", line 2, in <module>' in err and "nosuchmodule_conf" in err
    code, _, err = run(portico_binary(), ["-c", "missing.py", "app:application"], appdir,
                       env_with())
    assert (code, err.strip()) == (1, "portico: error: the configuration file missing.py does not "
                                      "exist")
    if GUNICORN:
        assert run(GUNICORN, ["-c", "broken_conf.py", "app:application"], appdir, env_with())[0] == 1


GREETER = '''
import os

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [os.environ.get("GREETING", "none").encode()]
'''


@pytest.mark.parametrize("preload", [False, True], ids=["fork", "preload"])
def test_hup_reads_the_config_file_again(tmp_path, preload):
    # gunicorn re-reads its configuration file on HUP; with --preload the master runs Python
    # already and reads it with that interpreter. The file is found from where portico started,
    # though --chdir moved the master elsewhere.
    (tmp_path / "greeter.py").write_text(GREETER)
    port = free_port()
    site = tmp_path / "elsewhere"
    site.mkdir()
    conf = tmp_path / "gunicorn.conf.py"
    text = ('bind = "127.0.0.1:%d"\nworkers = 1\nraw_env = ["GREETING=%%s"]\nwsgi_app = "greeter:application"\n'
            'pythonpath = "%s"\nchdir = "%s"\n' % (port, tmp_path, site))
    conf.write_text(text % "one")
    args = [portico_binary()] + (["--preload"] if preload else [])
    proc = subprocess.Popen(args, cwd=str(tmp_path), env=env_with(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def greeting():
        try:
            return urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=5).read()
        except OSError:
            return None
    try:
        deadline = time.monotonic() + 20
        while greeting() != b"one" and time.monotonic() < deadline:
            assert proc.poll() is None
            time.sleep(0.1)
        assert greeting() == b"one"
        conf.write_text(text % "two")
        proc.send_signal(1)  # SIGHUP
        deadline = time.monotonic() + 20
        while greeting() != b"two" and time.monotonic() < deadline:
            assert proc.poll() is None
            time.sleep(0.1)
        # With --preload too (the app imported once, in the master), the new workers see the
        # reloaded raw_env in os.environ, as gunicorn's.
        assert greeting() == b"two"
    finally:
        proc.terminate()
        err = proc.communicate(timeout=30)[1].decode()
    assert "reload failed" not in err, err
    assert proc.returncode == 0, err
