"""Helpers for test_django.py: a private copy of examples/django, its setup, a throwaway PostgreSQL
cluster, portico serving the site, and the admin's login/form dance over HTTP."""

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import requests

from servers import PorticoServer, free_port

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "django"
PYTHON = "/usr/bin/python3"
PG_BIN = Path("/usr/lib/postgresql/15/bin")

SETUP_TIMEOUT = 30
PG_TIMEOUT = 30
HTTP_TIMEOUT = 10

ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin"

# Variables that would make the copy talk to some other database or behave unlike a fresh checkout.
_SCRUBBED_ENV = ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY", "DJANGO_DEBUG",
                 "DJANGO_ALLOWED_HOSTS", "DJANGO_CONN_MAX_AGE", "PGHOST", "PGPORT", "PGUSER",
                 "PGPASSWORD", "PGDATABASE", "PYTHONPATH", "VIRTUAL_ENV")


def clean_env(**extra):
    env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED_ENV}
    env.update(extra)
    return env


def _tail(path, limit=4000):
    try:
        return Path(path).read_bytes()[-limit:].decode("utf-8", "replace")
    except OSError:
        return "<unreadable>"


def copy_example(destination):
    """Copies the example without anything a local setup.sh run may have left in the repository."""
    shutil.copytree(EXAMPLE, destination, ignore=shutil.ignore_patterns(
        "staticfiles", "db.sqlite3*", "__pycache__", "*.pyc"))
    return Path(destination)


def run_setup(project, env):
    try:
        result = subprocess.run(["sh", str(Path(project) / "setup.sh")], env=env, cwd="/",
                                capture_output=True, timeout=SETUP_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as error:
        raise AssertionError("setup.sh took longer than %d s:\n%s" % (
            SETUP_TIMEOUT, (error.stderr or b"").decode("utf-8", "replace")))
    output = (result.stdout + result.stderr).decode("utf-8", "replace")
    assert result.returncode == 0, "setup.sh failed (exit %d):\n%s" % (result.returncode, output)
    return output


def start_site(workdir, chdir, extra_args=(), env=None, static="/static/=staticfiles/"):
    """portico serving mysite.wsgi:application; the caller stops it with stop_and_check()."""
    args = ["--chdir", str(chdir), "--static", static] + list(extra_args) + ["mysite.wsgi:application"]
    return PorticoServer(str(workdir), args, env=env if env is not None else clean_env()).start()


def base_url(server):
    return "http://127.0.0.1:%d" % server.port


class AdminClient:
    """A requests.Session that logs into Django's admin and submits its forms with CSRF tokens."""

    def __init__(self, base):
        self.base = base
        self.session = requests.Session()

    def get(self, path, **kwargs):
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        return self.session.get(self.base + path, **kwargs)

    def post_form(self, path, fields, page=None):
        """Fetches `page` (default: `path`) for a fresh csrfmiddlewaretoken, then posts `fields`."""
        form = self.get(page or path)
        assert form.status_code == 200, "GET %s: %d\n%s" % (page or path, form.status_code, form.text[:2000])
        data = dict(fields)
        data["csrfmiddlewaretoken"] = csrf_token(form.text)
        return self.session.post(self.base + path, data=data, allow_redirects=False,
                                 headers={"Referer": self.base + (page or path)}, timeout=HTTP_TIMEOUT)

    def login(self, username=ADMIN_USER, password=ADMIN_PASSWORD):
        response = self.post_form("/admin/login/?next=/admin/",
                                  {"username": username, "password": password, "next": "/admin/"})
        assert response.status_code == 302, "login answered %d:\n%s" % (
            response.status_code, response.text[:2000])
        assert response.headers["Location"] == "/admin/"
        assert "sessionid" in self.session.cookies
        return response


def csrf_token(html):
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no csrfmiddlewaretoken in the form:\n%s" % html[:2000]
    return match.group(1)


class PostgresCluster:
    """A private PostgreSQL 15 cluster in a temporary directory, on a free port and a socket there.

    PostgreSQL refuses to run as root, so under root every server-side command runs as the
    `postgres` system user (runuser) and the directory is handed to that user; /tmp is used rather
    than pytest's tmp_path because pytest's per-user directory is not traversable by others.
    """

    USER = "portico"
    PASSWORD = "p@ss:w/rd"  # characters that must survive percent-encoding in DATABASE_URL
    DATABASE = "catalog"

    @staticmethod
    def available():
        return all((PG_BIN / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres", "createdb"))

    def __init__(self, prefix=(), listen="127.0.0.1", port=None, clients=None):
        """`prefix` runs every command elsewhere (e.g. nsenter into a network namespace); the
        server listens on `listen`:`port` (a free port when None) and, when `clients` (a CIDR)
        is given, takes password logins from there too."""
        self.prefix = list(prefix)
        self.listen = listen
        self.fixed_port = port
        self.clients = clients
        self.base = Path(tempfile.mkdtemp(prefix="portico-pg-"))
        self.data = self.base / "data"
        self.socket_dir = self.base / "sock"
        self.log = self.base / "postgres.log"
        self.port = None
        self.started = False
        self.as_postgres = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
            os.chown(self.base, account.pw_uid, account.pw_gid)
        self.socket_dir.mkdir()
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.PASSWORD + "\n")
        if self.as_postgres:
            for path in (self.socket_dir, pwfile):
                os.chown(path, account.pw_uid, account.pw_gid)

    def _run(self, args, timeout=PG_TIMEOUT):
        try:
            result = subprocess.run(self.prefix + self.as_postgres + args, capture_output=True,
                                    timeout=timeout,
                                    stdin=subprocess.DEVNULL, cwd=str(self.base), env=clean_env())
        except subprocess.TimeoutExpired:
            raise AssertionError("%s took longer than %d s; log:\n%s" % (
                " ".join(args), timeout, _tail(self.log)))
        return result

    def _check(self, args, timeout=PG_TIMEOUT):
        result = self._run(args, timeout)
        assert result.returncode == 0, "%s failed (exit %d):\n%s%s\nserver log:\n%s" % (
            " ".join(args), result.returncode, result.stdout.decode("utf-8", "replace"),
            result.stderr.decode("utf-8", "replace"), _tail(self.log))
        return result

    def start(self):
        # Sockets are trusted (setup and createdb use them); TCP needs the password, so the
        # URL portico gets proves user:password decoding works.
        self._check([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", self.USER,
                     "--pwfile", str(self.base / "pwfile"), "--auth-local=trust",
                     "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"])
        if self.clients:
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.write("host all all %s scram-sha-256\n" % self.clients)
        last = ""
        for _attempt in range(3):
            self.port = self.fixed_port or free_port()
            options = "-h %s -p %d -k %s -c fsync=off -c synchronous_commit=off " \
                      "-c full_page_writes=off" % (self.listen, self.port, self.socket_dir)
            result = self._run([str(PG_BIN / "pg_ctl"), "start", "-w", "-t", str(PG_TIMEOUT),
                                "-D", str(self.data), "-l", str(self.log), "-o", options],
                               timeout=PG_TIMEOUT + 5)
            if result.returncode == 0:
                self.started = True
                break
            last = result.stderr.decode("utf-8", "replace") + _tail(self.log)
            if "in use" not in last or self.fixed_port:
                break
        assert self.started, "PostgreSQL did not start:\n%s" % last
        self._check([str(PG_BIN / "createdb"), "-h", str(self.socket_dir), "-p", str(self.port),
                     "-U", self.USER, self.DATABASE])
        return self

    def socket_url(self):
        """The unix-socket form: the socket directory percent-encoded as the host."""
        return "postgres://%s@%s:%d/%s" % (self.USER, quote(str(self.socket_dir), safe=""),
                                            self.port, self.DATABASE)

    def tcp_url(self):
        return "postgresql://%s:%s@%s:%d/%s" % (self.USER, quote(self.PASSWORD, safe=""),
                                                 self.listen, self.port, self.DATABASE)

    def stop(self):
        if self.started:
            result = self._run([str(PG_BIN / "pg_ctl"), "stop", "-m", "fast", "-w", "-t", "20",
                                "-D", str(self.data)], timeout=25)
            if result.returncode != 0:
                self._kill_postmaster()
            self.started = False
        shutil.rmtree(self.base, ignore_errors=True)

    def _kill_postmaster(self):
        # pg_ctl gave up: an immediate shutdown of our own postmaster (its pid is in the data dir).
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
            os.kill(pid, signal.SIGQUIT)
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.1)
