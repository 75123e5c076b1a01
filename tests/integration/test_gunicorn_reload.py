"""gunicorn's --reload, --reload-engine and --reload-extra-file, beside Debian's gunicorn where it
is cheap: a worker replaced by a fresh one (the app imported again, the master the same) when a
source file of a module it imported changes, or an extra file; a module edited into a syntax
error keeps the last good code serving (the error logged) until it is fixed, and a worker that
starts with one follows gunicorn's SyntaxError rule (it stays and answers 500 with the traceback);
nothing without --reload; the settings from gunicorn.conf.py and in --print-config; the refusals."""

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from master_support import children, print_config_settings
from servers import free_port, portico_binary
from wsgi_support import read_text, wait_until

GUNICORN = shutil.which("gunicorn")

# Each version answers its name and the worker's pid: "v1 1234".
APP = '''import os

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%s %%d" %% os.getpid()]
'''

# The app imports `helper` only when asked: a module imported after the worker started.
LAZY_APP = '''import os

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["PATH_INFO"] == "/lazy":
        import helper
        return [helper.WORD.encode()]
    return [b"main %d" % os.getpid()]
'''

# The app serves what a data file said when it was imported.
DATA_APP = '''import os

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data.txt")) as f:
    DATA = f.read().strip()

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%s %d" % (DATA, os.getpid())).encode()]
'''

BROKEN = '''import os

def application(environ, start_response):
    start_response("200 OK", [])
    return [b"never" 
'''

WAIT = 15.0  # generous: a change is seen within about a second


def binaries(portico_engines=("auto",)):
    found = [("portico-" + engine, portico_binary(), ["--reload-engine", engine])
             for engine in portico_engines]
    if GUNICORN:
        found.append(("gunicorn", GUNICORN, []))
    return found


def params(portico_engines=("auto",), with_extra=True):
    """binaries() as pytest parameters named after the server."""
    return [pytest.param(*((name, binary, extra) if with_extra else (name, binary)), id=name)
            for name, binary, extra in binaries(portico_engines)]


def clean_env():
    return {k: v for k, v in os.environ.items()
            if k not in ("GUNICORN_CMD_ARGS", "WEB_CONCURRENCY", "PORT")}


def write_source(path, text):
    """Writes a module at least a second after its last change, so Python's bytecode cache
    (which keys on whole seconds) cannot take the new source for the old one."""
    if os.path.exists(path):
        time.sleep(max(0.0, os.stat(path).st_mtime + 1.05 - time.time()))
    with open(path, "w") as handle:
        handle.write(text)


def let_gunicorn_look(name):
    """gunicorn's poll reloader starts after the worker boots and takes each file's first mtime
    in its first round: a change made before that round is never seen (portico's watcher has
    its watches before the worker serves). Give it that round."""
    if name == "gunicorn":
        time.sleep(1.5)


class Running:
    """A server (portico or gunicorn) started in `cwd` on a free port, its output in files."""

    def __init__(self, binary, args, cwd):
        self.port = free_port()
        self.cwd = str(cwd)
        self.log_path = os.path.join(self.cwd, "server-%d.log" % self.port)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, "--bind", "127.0.0.1:%d" % self.port] + list(args), cwd=self.cwd,
                env=clean_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def log(self):
        return read_text(self.log_path)

    def get(self, path="/"):
        """(status, body), or None when nothing answers (a worker not up yet)."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path),
                                        timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return None

    def wait_answer(self, predicate, path="/"):
        """Polls until an answer satisfies predicate((status, body)); returns the last answer."""
        last = []

        def check():
            assert self.proc.poll() is None, "the server exited %r:\n%s" % (
                self.proc.returncode, self.log()[-3000:])
            answer = self.get(path)
            last[:] = [answer]
            return answer is not None and predicate(answer)

        wait_until(check, WAIT, interval=0.1)
        return last[0]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def running():
    started = []

    def start(binary, args, cwd):
        server = Running(binary, args, cwd)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def body_word(answer):
    return answer[1].split()[0] if answer and answer[1] else b""


def worker_pid(answer):
    return int(answer[1].split()[1])


@pytest.mark.time_budget(60)
@pytest.mark.parametrize("name,binary,extra", params(("auto", "poll", "inotify")))
def test_a_changed_module_brings_a_fresh_worker(tmp_path, running, name, binary, extra):
    app = tmp_path / "app.py"
    write_source(str(app), APP % "v1")
    server = running(binary, ["--reload"] + extra + ["app:application"], tmp_path)
    first = server.wait_answer(lambda a: a[0] == 200)
    assert body_word(first) == b"v1", (name, first, server.log()[-2000:])
    master = server.proc.pid
    let_gunicorn_look(name)
    write_source(str(app), APP % "v2")
    second = server.wait_answer(lambda a: body_word(a) == b"v2")
    assert (name, second[0], body_word(second)) == (name, 200, b"v2"), server.log()[-3000:]
    # A fresh worker under the same master.
    assert worker_pid(second) != worker_pid(first)
    assert server.proc.poll() is None and server.proc.pid == master
    assert worker_pid(second) in children(master)
    log = server.log()
    assert "Worker reloading: %s modified" % app in log, log[-3000:]
    if name.startswith("portico"):
        # A normal respawn: the master logs the exit as gunicorn does, no crash, no boot error.
        # (The old worker drains first: its exit may follow the new worker's first answer.)
        exiting = "Worker exiting (pid: %d)" % worker_pid(first)
        wait_until(lambda: exiting in server.log(), 15.0)
        log = server.log()
        assert exiting in log, log[-3000:]
        assert "exited with code" not in log and "failed to boot" not in log, log[-3000:]
    assert server.stop() == 0


@pytest.mark.time_budget(60)
def test_the_reload_counts_as_a_reload_not_a_crash(tmp_path, running):
    app = tmp_path / "app.py"
    write_source(str(app), APP % "v1")
    metrics_port = free_port()
    server = running(portico_binary(), ["--reload", "--metrics-bind",
                                        "127.0.0.1:%d" % metrics_port, "app:application"], tmp_path)
    server.wait_answer(lambda a: a[0] == 200)
    write_source(str(app), APP % "v2")
    server.wait_answer(lambda a: body_word(a) == b"v2")

    def restarts():
        try:
            text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port,
                                          timeout=5).read().decode()
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            if line.startswith("portico_worker_restarts_total{"):
                cause = line.split('cause="', 1)[1].split('"', 1)[0]
                out[cause] = float(line.rsplit(" ", 1)[1])
        return out

    counted = wait_until(lambda: restarts().get("reload", 0) >= 1 and restarts(), WAIT)
    assert counted and counted["reload"] == 1 and counted.get("crash", 0) == 0, counted


@pytest.mark.time_budget(60)
@pytest.mark.parametrize("name,binary,extra", params())
def test_a_module_imported_later_is_watched_too(tmp_path, running, name, binary, extra):
    (tmp_path / "app.py").write_text(LAZY_APP)
    helper = tmp_path / "helper.py"
    write_source(str(helper), 'WORD = "one"\n')
    server = running(binary, ["--reload"] + extra + ["app:application"], tmp_path)
    first = server.wait_answer(lambda a: a[0] == 200)
    assert server.get("/lazy") == (200, b"one")
    # The watcher reads sys.modules again about every second: give it that before the change.
    time.sleep(2.5)
    write_source(str(helper), 'WORD = "two"\n')
    second = server.wait_answer(lambda a: a == (200, b"two"), path="/lazy")
    assert (name, second) == (name, (200, b"two")), server.log()[-3000:]
    assert worker_pid(server.get("/")) != worker_pid(first)


@pytest.mark.time_budget(60)
@pytest.mark.parametrize("name,binary,extra", params(("auto", "poll")))
def test_an_extra_file_is_watched(tmp_path, running, name, binary, extra):
    (tmp_path / "app.py").write_text(DATA_APP)
    data = tmp_path / "data.txt"
    write_source(str(data), "first\n")
    args = ["--reload", "--reload-extra-file", str(data)] + extra + ["app:application"]
    server = running(binary, args, tmp_path)
    first = server.wait_answer(lambda a: a[0] == 200)
    assert body_word(first) == b"first"
    let_gunicorn_look(name)
    write_source(str(data), "second\n")
    second = server.wait_answer(lambda a: body_word(a) == b"second")
    assert (name, body_word(second)) == (name, b"second"), server.log()[-3000:]
    assert "Worker reloading: %s modified" % data in server.log()


@pytest.mark.time_budget(60)
def test_an_extra_file_alone_without_reload_does_nothing(tmp_path, running):
    # gunicorn's reload_extra_files extends --reload; alone it watches nothing.
    (tmp_path / "app.py").write_text(DATA_APP)
    data = tmp_path / "data.txt"
    write_source(str(data), "first\n")
    server = running(portico_binary(), ["--reload-extra-file", str(data), "app:application"],
                     tmp_path)
    first = server.wait_answer(lambda a: a[0] == 200)
    write_source(str(data), "second\n")
    time.sleep(3)
    assert server.get() == first


@pytest.mark.time_budget(60)
@pytest.mark.parametrize("name,binary", params(with_extra=False))
def test_without_reload_a_change_does_nothing(tmp_path, running, name, binary):
    app = tmp_path / "app.py"
    write_source(str(app), APP % "v1")
    server = running(binary, ["app:application"], tmp_path)
    first = server.wait_answer(lambda a: a[0] == 200)
    write_source(str(app), APP % "v2")
    time.sleep(3)  # three rounds of gunicorn's poll; inotify would have seen it at once
    assert (name, server.get()) == (name, first)
    assert "Worker reloading" not in server.log()


@pytest.mark.time_budget(90)
@pytest.mark.parametrize("engine", ["auto", "poll"])
def test_a_syntax_error_keeps_the_last_good_code_serving(tmp_path, running, engine):
    # A module edited into a syntax error is not worth a fresh worker: the running one logs the
    # error (file, line, caret, message) and goes on serving the last good code; the fix brings
    # the new code. (gunicorn replaces the worker, which then answers every request 500.)
    app = tmp_path / "app.py"
    write_source(str(app), APP % "v1")
    server = running(portico_binary(), ["--reload", "--reload-engine", engine,
                                        "app:application"], tmp_path)
    first = server.wait_answer(lambda a: a[0] == 200)
    write_source(str(app), BROKEN)
    wait_until(lambda: "does not compile" in server.log(), 15.0)
    log = server.log()
    assert "--reload: %s changed but does not compile; the last good code keeps serving" % app \
        in log, log[-3000:]
    assert "SyntaxError: '[' was never closed" in log and 'File "%s", line 5' % app in log, \
        log[-3000:]
    assert "Worker reloading" not in log
    for _ in range(3):
        answer = server.get()
        assert (answer[0], body_word(answer)) == (200, b"v1"), answer
        assert worker_pid(answer) == worker_pid(first)  # the same worker, not replaced
    write_source(str(app), APP % "v2")
    fixed = server.wait_answer(lambda a: body_word(a) == b"v2")
    assert (fixed[0], body_word(fixed)) == (200, b"v2"), server.log()[-3000:]
    assert worker_pid(fixed) != worker_pid(first)
    assert "Worker reloading: %s modified" % app in server.log()
    assert server.stop() == 0


@pytest.mark.time_budget(60)
@pytest.mark.parametrize("name,binary,extra", params())
def test_starting_with_a_syntax_error(tmp_path, running, name, binary, extra):
    app = tmp_path / "app.py"
    write_source(str(app), BROKEN)
    server = running(binary, ["--reload"] + extra + ["app:application"], tmp_path)
    broken = server.wait_answer(lambda a: a[0] == 500)
    assert (name, broken[0]) == (name, 500), server.log()[-3000:]
    let_gunicorn_look(name)
    write_source(str(app), APP % "v1")
    fixed = server.wait_answer(lambda a: a[0] == 200)
    assert (name, body_word(fixed)) == (name, b"v1"), server.log()[-3000:]


def test_a_syntax_error_without_reload_stops_the_start(tmp_path):
    (tmp_path / "app.py").write_text(BROKEN)
    done = subprocess.run([portico_binary(), "--bind", "127.0.0.1:%d" % free_port(),
                           "app:application"], cwd=str(tmp_path), env=clean_env(),
                          capture_output=True, timeout=30)
    assert done.returncode == 1, done
    assert b"SyntaxError" in done.stderr


def test_check_config_fails_on_a_syntax_error_even_with_reload(tmp_path):
    # gunicorn's --check-config loads the app itself: the SyntaxError rule is a worker's.
    (tmp_path / "app.py").write_text(BROKEN)
    for name, binary, _ in binaries():
        done = subprocess.run([binary, "--check-config", "--reload", "app:application"],
                              cwd=str(tmp_path), env=clean_env(), capture_output=True, timeout=30)
        assert (name, done.returncode) == (name, 1), done


def test_a_bogus_engine_is_refused(tmp_path):
    for name, binary, _ in binaries():
        done = subprocess.run([binary, "--reload-engine", "bogus", "app:application"],
                              cwd=str(tmp_path), env=clean_env(), capture_output=True, timeout=30)
        assert done.returncode != 0, (name, done)
        assert b"Invalid reload_engine: 'bogus'" in done.stderr, (name, done.stderr)
    done = subprocess.run([portico_binary(), "--reload-engine", "bogus", "app:application"],
                          cwd=str(tmp_path), env=clean_env(), capture_output=True, timeout=30)
    assert done.returncode == 2
    assert b"(choose from 'auto', 'poll', 'inotify')" in done.stderr


def test_a_missing_extra_file_is_refused(tmp_path):
    (tmp_path / "app.py").write_text(APP % "v1")
    missing = str(tmp_path / "nope.txt")
    for name, binary, _ in binaries():
        done = subprocess.run([binary, "--bind", "127.0.0.1:%d" % free_port(), "--reload",
                               "--reload-extra-file", missing, "app:application"],
                              cwd=str(tmp_path), env=clean_env(), capture_output=True, timeout=30)
        assert (name, done.returncode) == (name, 1), done
        assert ("File %s does not exist" % missing).encode() in done.stderr, (name, done.stderr)


def test_reload_with_preload_is_refused(tmp_path):
    (tmp_path / "app.py").write_text(APP % "v1")
    done = subprocess.run([portico_binary(), "--reload", "--preload", "app:application"],
                          cwd=str(tmp_path), env=clean_env(), capture_output=True, timeout=30)
    assert done.returncode == 2
    assert b"argument --reload: cannot be combined with --preload" in done.stderr, done.stderr


RELOAD_KEYS = ("reload", "reload_engine", "reload_extra_files")


def test_print_config_shows_the_reload_settings(tmp_path):
    (tmp_path / "app.py").write_text(APP % "v1")
    extra = tmp_path / "extra.txt"
    extra.write_text("x\n")
    seen = {}
    for name, binary, _ in binaries():
        done = subprocess.run([binary, "--print-config", "--reload", "--reload-engine", "poll",
                               "--reload-extra-file", str(extra), "app:application"],
                              cwd=str(tmp_path), env=clean_env(), capture_output=True, timeout=30)
        assert done.returncode == 0, (name, done)
        found = print_config_settings(done.stdout.decode())
        seen[name] = {key: found.get(key) for key in RELOAD_KEYS}
    assert seen["portico-auto"] == {"reload": "True", "reload_engine": "poll",
                                    "reload_extra_files": "['%s']" % extra}
    if GUNICORN:
        assert seen["gunicorn"] == seen["portico-auto"]


def test_the_settings_come_from_gunicorn_conf_py(tmp_path):
    (tmp_path / "app.py").write_text(APP % "v1")
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "b.txt").write_text("b\n")
    (tmp_path / "gunicorn.conf.py").write_text(
        "reload = True\n"
        "reload_engine = 'inotify'\n"
        "reload_extra_files = ['%s', '%s']\n" % (tmp_path / "a.txt", tmp_path / "b.txt"))
    done = subprocess.run([portico_binary(), "--print-config", "app:application"],
                          cwd=str(tmp_path), env=clean_env(), capture_output=True, timeout=30)
    assert done.returncode == 0, done
    found = print_config_settings(done.stdout.decode())
    assert {key: found.get(key) for key in RELOAD_KEYS} == {
        "reload": "True", "reload_engine": "inotify",
        "reload_extra_files": "['%s', '%s']" % (tmp_path / "a.txt", tmp_path / "b.txt")}
    (tmp_path / "gunicorn.conf.py").write_text("reload_engine = 'fsevents'\n")
    done = subprocess.run([portico_binary(), "app:application"], cwd=str(tmp_path),
                          env=clean_env(), capture_output=True, timeout=30)
    assert done.returncode == 2
    assert b"Invalid reload_engine: 'fsevents'" in done.stderr, done.stderr


@pytest.mark.time_budget(60)
def test_gunicorn_conf_py_reload_works(tmp_path, running):
    app = tmp_path / "app.py"
    write_source(str(app), APP % "v1")
    (tmp_path / "gunicorn.conf.py").write_text("reload = True\n")
    server = running(portico_binary(), ["app:application"], tmp_path)
    first = server.wait_answer(lambda a: a[0] == 200)
    write_source(str(app), APP % "v2")
    second = server.wait_answer(lambda a: body_word(a) == b"v2")
    assert body_word(second) == b"v2", server.log()[-3000:]
    assert worker_pid(second) != worker_pid(first)


@pytest.mark.time_budget(60)
def test_every_worker_is_replaced(tmp_path, running):
    app = tmp_path / "app.py"
    write_source(str(app), APP % "v1")
    server = running(portico_binary(), ["--reload", "-w", "2", "app:application"], tmp_path)
    server.wait_answer(lambda a: a[0] == 200)
    master = server.proc.pid
    before = wait_until(lambda: len(children(master)) == 2 and set(children(master)), WAIT)
    assert before, children(master)
    write_source(str(app), APP % "v2")
    # Each worker watches for itself: both go, two fresh ones serve v2.
    after = wait_until(lambda: (len(children(master)) == 2 and not children(master) & before
                                and set(children(master))), WAIT)
    assert after, (before, children(master), server.log()[-3000:])
    for _ in range(6):
        assert body_word(server.get()) == b"v2"
    assert server.log().count("Worker reloading: %s modified" % app) == 2


# An app whose import takes a while (as a Django project's does) and says when it began.
SLOW_APP = '''import os, time

os.makedirs("marks", exist_ok=True)
open(os.path.join("marks", str(os.getpid())), "w").close()
time.sleep(2)

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%s %%d" %% os.getpid()]
'''


@pytest.mark.time_budget(60)
def test_a_change_saved_while_the_worker_imports_is_not_lost(tmp_path, running):
    # The watches can only be set once the import has said which modules there are; a file
    # saved meanwhile is newer than the import's start, and the worker goes at once.
    app = tmp_path / "app.py"
    write_source(str(app), SLOW_APP % "v1")
    server = running(portico_binary(), ["--reload", "app:application"], tmp_path)
    booted = wait_until(lambda: re.search(r"Booting worker with pid: (\d+)", server.log()), WAIT)
    assert booted, server.log()
    mark = tmp_path / "marks" / booted.group(1)
    assert wait_until(mark.exists, WAIT), server.log()
    write_source(str(app), SLOW_APP % "v2")  # the worker is inside the import of v1
    answer = server.wait_answer(lambda a: body_word(a) == b"v2")
    assert body_word(answer) == b"v2", (answer, server.log()[-3000:])
    assert "Worker reloading: %s modified" % app in server.log()
