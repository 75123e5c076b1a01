"""gunicorn's process flags, each beside Debian's gunicorn doing the same: --user/--group (the
workers switch, the master stays), --umask (a unix socket's mode), -n/--name (the process
titles), -D/--daemon (detached, found through --pid), --capture-output (the app's prints in the
error log file) and --worker-tmp-dir (checked)."""

import grp
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import urllib.request

import pytest

from master_support import children, process_ids
from servers import free_port, portico_binary

GUNICORN = shutil.which("gunicorn")

APP = '''
import os, sys
print("imported-%d" % os.getpid(), flush=True)

def application(environ, start_response):
    print("printed-by-the-app", flush=True)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d %d" % (os.getuid(), os.getgid())]
'''


@pytest.fixture
def appdir():
    # World-readable: workers that switch to `nobody` import the app after switching.
    path = tempfile.mkdtemp(prefix="portico-procflags-")
    os.chmod(path, 0o755)
    with open(os.path.join(path, "app.py"), "w") as handle:
        handle.write(APP)
    os.chmod(os.path.join(path, "app.py"), 0o644)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def env():
    return {k: v for k, v in os.environ.items()
            if k not in ("GUNICORN_CMD_ARGS", "WEB_CONCURRENCY", "PORT")}


def servers():
    found = [("portico", portico_binary())]
    if GUNICORN:
        found.append(("gunicorn", GUNICORN))
    return found


def fetch(port):
    return urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=5).read()


class Running:
    """A server started for a with-block; stopped with TERM at its end."""

    def __init__(self, binary, args, cwd):
        self.proc = subprocess.Popen([binary] + list(args), cwd=cwd, env=env(),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)

    def __enter__(self):
        return self

    def wait(self, ready, what, seconds=20):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("exited %r before %s:\n%s" % (
                    self.proc.returncode, what, self.proc.stderr.read().decode()[-2000:]))
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("timed out waiting for " + what)

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
@pytest.mark.parametrize("group", [True, False], ids=["user-and-group", "user-only"])
def test_user_and_group_switch_the_workers(appdir, group):
    nobody = pwd.getpwnam("nobody").pw_uid
    nogroup = grp.getgrnam("nogroup").gr_gid
    # gunicorn's --user without --group keeps the master's group (0 here).
    want = (nobody, nogroup if group else 0)
    for name, binary in servers():
        port = free_port()
        args = ["-b", "127.0.0.1:%d" % port, "--user", "nobody"]
        args += ["--group", "nogroup"] if group else []
        with Running(binary, args + ["app:application"], appdir) as server:
            server.wait(lambda: fetch(port), "%s to answer" % name)
            assert fetch(port) == b"%d %d" % want, name
            [worker] = children(server.proc.pid)
            assert (name, process_ids(worker)) == (name, want)
            assert (name, process_ids(server.proc.pid)) == (name, (0, 0))


@pytest.mark.skipif(GUNICORN is None, reason="gunicorn (Debian's package) is not installed")
def test_umask_sets_the_unix_socket_mode_as_gunicorn(appdir):
    modes = {}
    for name, binary in servers():
        path = os.path.join(appdir, "%s.sock" % name)
        with Running(binary, ["-b", "unix:" + path, "--umask", "0o077", "app:application"],
                     appdir) as server:
            server.wait(lambda: os.path.exists(path), "%s's socket" % name)
            modes[name] = stat.S_IMODE(os.stat(path).st_mode)
    assert modes["portico"] == modes["gunicorn"] == 0o700, {k: oct(v) for k, v in modes.items()}


def test_name_is_in_the_process_titles(appdir):
    port = free_port()
    with Running(portico_binary(), ["-b", "127.0.0.1:%d" % port, "-n", "shop-api", "-w", "2",
                                    "app:application"], appdir) as server:
        server.wait(lambda: len(children(server.proc.pid)) == 2 and fetch(port), "the workers")

        def title(pid):
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                return handle.read().replace(b"\0", b" ").strip().decode()
        assert title(server.proc.pid).startswith("portico: master [shop-api]")
        for worker in children(server.proc.pid):
            assert title(worker).startswith("portico: worker [shop-api]")


@pytest.mark.parametrize("name,binary", servers(), ids=[n for n, _ in servers()])
def test_daemon_detaches_and_is_found_through_its_pid_file(appdir, name, binary):
    port = free_port()
    pidfile = os.path.join(appdir, "%s.pid" % name)
    started = subprocess.run([binary, "-D", "--pid", pidfile, "-b", "127.0.0.1:%d" % port,
                              "app:application"], cwd=appdir, env=env(), timeout=20,
                             stdin=subprocess.DEVNULL, capture_output=True)
    assert started.returncode == 0, started.stderr.decode()
    pid = None
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                pid = int(open(pidfile).read())
                if fetch(port):
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        assert pid and fetch(port)
        # Detached: in a session of its own (started by the fork before it, gone since).
        assert os.getsid(pid) != os.getsid(0)
    finally:
        if pid:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and os.path.exists("/proc/%d" % pid):
                time.sleep(0.1)
    assert not os.path.exists("/proc/%d" % pid)


@pytest.mark.parametrize("name,binary", servers(), ids=[n for n, _ in servers()])
def test_capture_output_puts_the_apps_prints_in_the_error_log(appdir, name, binary):
    port = free_port()
    log = os.path.join(appdir, "%s-error.log" % name)
    with Running(binary, ["-b", "127.0.0.1:%d" % port, "--capture-output", "--error-logfile", log,
                          "app:application"], appdir) as server:
        server.wait(lambda: fetch(port), "%s to answer" % name)
        server.wait(lambda: "printed-by-the-app" in open(log).read(), "the print in " + log)
        assert "imported-" in open(log).read()


def test_worker_tmp_dir_is_checked(appdir):
    done = subprocess.run([portico_binary(), "--worker-tmp-dir", "/nonexistent-portico",
                           "app:application"], cwd=appdir, env=env(), timeout=20,
                          stdin=subprocess.DEVNULL, capture_output=True)
    assert done.returncode == 1
    assert b"--worker-tmp-dir /nonexistent-portico: not a directory" in done.stderr
    port = free_port()
    with Running(portico_binary(), ["-b", "127.0.0.1:%d" % port, "--worker-tmp-dir", "/dev/shm",
                                    "app:application"], appdir) as server:
        server.wait(lambda: fetch(port), "portico to answer")
    err = server.proc.stderr.read().decode()
    assert "--worker-tmp-dir /dev/shm: portico's workers report through shared memory" in err
