"""Shared fixtures: the static site on disk, portico launchers, the nginx oracle, a per-test alarm
and, when the session ends, the removal of any process a test left behind.

Run with Debian's python: `/usr/bin/python3 -m pytest tests/integration` (PORTICO_BIN overrides the
binary, default /work/main/build/portico). nginx-based differential tests skip when nginx is absent.
"""

import gzip
import os
import random
import signal
import sys
import uuid

import pytest

from servers import NginxServer, PorticoServer, portico_binary

# Every process the tests start inherits this mark (the environment is copied down), so the
# session can find what a failed or interrupted test left running (an orphaned worker, a backend)
# wherever it was re-parented, and stop it before it slows the rest or holds the output open.
SESSION_MARK = "PORTICO_TEST_SESSION"
os.environ[SESSION_MARK] = uuid.uuid4().hex


def _marked_processes():
    needle = ("%s=%s" % (SESSION_MARK, os.environ[SESSION_MARK])).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as handle:
                if needle not in handle.read().split(b"\0"):
                    continue
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
            with open("/proc/%s/stat" % entry, "rb") as handle:
                state = handle.read().decode("latin-1")
        except OSError:
            continue
        if state[state.rfind(")") + 2:].split()[0] != "Z":
            found.append((int(entry), command))
    return found


def pytest_sessionfinish(session, exitstatus):
    leftovers = _marked_processes()
    for pid, _command in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if leftovers:
        sys.stderr.write("\nprocesses left running by the tests, killed:\n%s\n" % "\n".join(
            "  %d %s" % (pid, command[:200]) for pid, command in leftovers))

DEFAULT_TEST_SECONDS = 30

SECRET = b"TOP-SECRET-do-not-serve-7f3a9c\n"
SECRET2 = b"ANOTHER-SECRET-outside-dir-41d2\n"

# Name -> content for every plain file under static/; tests compare against these bytes.
MIME_FILES = {
    "page.html": (b"<!doctype html><title>page</title>\n", "text/html"),
    "style.css": (b"body { color: red; }\n", "text/css"),
    "app.js": (b"console.log('portico');\n" * 40, "application/javascript"),
    "image.png": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "image/png"),
    "data.json": (b'{"portico": true}\n', "application/json"),
    "icon.svg": (b'<svg xmlns="http://www.w3.org/2000/svg"/>\n', "image/svg+xml"),
    "font.woff2": (b"wOF2" + bytes(60), "font/woff2"),
    "blob.unknownext": (b"unknown type\n", "application/octet-stream"),
    "a.txt": (b"alpha\n", "text/plain"),
}


class Site:
    """The on-disk tree served under /static/, plus secrets placed outside it."""

    def __init__(self, root):
        self.root = str(root)
        self.static = os.path.join(self.root, "static")
        self.outside = os.path.join(self.root, "outside")
        self.secret_path = os.path.join(self.root, "secret.txt")
        self.files = {}

    def write(self, relative, data):
        path = os.path.join(self.static, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
        self.files[relative] = data
        return path

    def path(self, relative):
        return os.path.join(self.static, relative)

    def etag(self, relative):
        st = os.stat(self.path(relative))
        return '"%x-%x"' % (int(st.st_mtime), st.st_size)

    def build(self):
        os.makedirs(self.static)
        os.makedirs(self.outside)
        with open(self.secret_path, "wb") as handle:
            handle.write(SECRET)
        with open(os.path.join(self.outside, "secret2.txt"), "wb") as handle:
            handle.write(SECRET2)
        for name, (data, _type) in MIME_FILES.items():
            self.write(name, data)
        self.write("b.txt", b"bravo\n")
        self.write("noext", b"no extension\n")
        self.write("UPPER.HTML", b"<p>upper</p>\n")
        self.write("hello world.txt", b"hello world file\n")
        for index in range(16):
            self.write("p%02d.txt" % index, b"pipeline response %02d\n" % index)
        self.write("digits.txt", b"0123456789abcdefghijklmnopqrstuvwxyz")
        self.write("sub/index.html", b"<p>sub index</p>\n")
        self.write("sub/inner.txt", b"inner\n")
        os.makedirs(os.path.join(self.static, "emptydir"))
        gz_plain = b"var precompressed = 'plain';\n" * 50
        self.write("pre.js", gz_plain)
        self.write("pre.js.gz", gzip.compress(gz_plain, mtime=0))
        rng = random.Random(20240601)
        self.write("big.bin", rng.randbytes(1024 * 1024))
        self.write("huge.bin", rng.randbytes(16 * 1024 * 1024))
        os.symlink(self.secret_path, os.path.join(self.static, "link-secret.txt"))
        os.symlink(self.outside, os.path.join(self.static, "linkdir"))
        os.symlink("../secret.txt", os.path.join(self.static, "rel-link-secret.txt"))
        # Fixed mtimes make Last-Modified/ETag deterministic and old enough to be "in the past".
        stamp = 1700000000
        for dirpath, _dirs, names in os.walk(self.static):
            for name in names:
                full = os.path.join(dirpath, name)
                if not os.path.islink(full):
                    os.utime(full, (stamp, stamp))
        return self


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    return Site(tmp_path_factory.mktemp("site")).build()


class Launcher:
    """Starts portico processes for one fixture scope and checks each exits 0 on SIGTERM."""

    def __init__(self, tmp_path_factory, site):
        self.tmp_path_factory = tmp_path_factory
        self.site = site
        self.servers = []

    def start(self, args=None, static=True, **kwargs):
        binary = portico_binary()
        if not os.access(binary, os.X_OK):
            pytest.fail("portico binary %s is missing (set PORTICO_BIN)" % binary)
        workdir = str(self.tmp_path_factory.mktemp("portico"))
        full_args = []
        if static:
            full_args += ["--static", "/static/=" + self.site.static]
        full_args += list(args or [])
        server = PorticoServer(workdir, full_args, **kwargs)
        self.servers.append(server)
        return server.start()

    def finish(self):
        failures = []
        for server in self.servers:
            if server.proc is None or server.returncode is not None:
                continue
            try:
                server.stop_and_check()
            except AssertionError as error:
                failures.append(str(error))
        if failures:
            pytest.fail("\n".join(failures), pytrace=False)


@pytest.fixture
def launch(tmp_path_factory, site):
    launcher = Launcher(tmp_path_factory, site)
    yield launcher
    launcher.finish()


@pytest.fixture(scope="module")
def module_launch(tmp_path_factory, site):
    launcher = Launcher(tmp_path_factory, site)
    yield launcher
    launcher.finish()


@pytest.fixture(scope="module")
def server(module_launch):
    """The default portico for a test module: /static/ mounted, stock limits and timeouts."""
    return module_launch.start(["--keep-alive", "5"])


@pytest.fixture(scope="module")
def nginx(tmp_path_factory, site):
    if NginxServer.binary() is None:
        pytest.skip("nginx is not installed")
    oracle = NginxServer(str(tmp_path_factory.mktemp("nginx")),
                         "location /static/ { alias %s/; gzip_static on; gzip_vary on; }" % site.static)
    oracle.start()
    yield oracle
    oracle.stop()


@pytest.fixture(autouse=True)
def _bounded_test_time(request):
    """Fails any single test that runs longer than its budget instead of hanging the suite."""
    marker = request.node.get_closest_marker("time_budget")
    seconds = marker.args[0] if marker else DEFAULT_TEST_SECONDS

    def on_alarm(_signum, _frame):
        pytest.fail("test exceeded its %s s time budget" % seconds, pytrace=True)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)
