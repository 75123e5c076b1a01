"""End-to-end runs of real configurations from outside the repository: each tutorial config of
tests/integration/confs/ and the shipped conf/portico.conf serve a private copy of the example
Django site (migrated, static files collected), with only ports and paths substituted. Checked:
the app answers (HTML and its JSON API), the admin login page renders, static files come from
portico with their Content-Type, gzip is negotiated where the config enables it, the config's
error_page is used, and `-s reload` with an edited location takes effect without refusing a
connection. The tutorials' `user www-data` is applied when the tests run as root."""

import gzip
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from django_support import clean_env, copy_example, run_setup
from http_client import Connection
from nginx_diff import _can_connect
from servers import free_port, portico_binary, terminate

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# name → (config file inside the copied tree, JSON API path, Django home path)
CASES = {
    "digitalocean": ("digitalocean/nginx.conf", "/api/books/"),
    "uwsgi_docs": ("uwsgi_docs.conf", "/api/books/"),
    "testdriven_docker": ("testdriven_docker.conf", "/api/books/"),
    # the API is a second app mounted at /api/ (SCRIPT_NAME /api): the example's own /api/books/
    "production_hardened": ("production_hardened.conf", "/api/api/books/"),
    "portico_conf": ("portico.conf", "/api/books/"),
}


def _substitute(text, site, project, port):
    """Only what ties a tutorial to its machine: addresses, paths, module names."""
    rules = [
        (r"^\s*listen\s+\[::\]:\d+[^;]*;\s*$", ""),
        (r"listen\s+(?:127\.0\.0\.1:)?(?:80|8000)\b", "listen 127.0.0.1:%d" % port),
        (r"^(\s*pid\s+)\S+;", r"\g<1>%s/portico.pid;" % site),
        (r"^(\s*error_log\s+)[^\s;]+", r"\g<1>%s/error.log" % site),
        (r"(access_log\s+)/(?:var/log/nginx|dev/stdout)[^\s;]*", r"\g<1>%s/access.log" % site),
        (r"^\s*wsgi_virtualenv\s+[^;]*;\s*$", ""),
        (r"/srv/example/templates", "%s/templates" % site),
        (r"/srv/example/api|/srv/example|/home/sammy/myprojectdir|/home/app/web|"
         r"/path/to/your/mysite|\.\./examples/django", str(project)),
        (r"\b(?:api|example|myproject|hello_django)\.wsgi:application", "mysite.wsgi:application"),
        (r"DJANGO_SETTINGS_MODULE\s+\S+;", "DJANGO_SETTINGS_MODULE mysite.settings;"),
    ]
    for pattern, replacement in rules:
        text = re.sub(pattern, replacement, text, flags=re.MULTILINE)
    return text


class TutorialSite:
    def __init__(self, name):
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix="portico-tutorial-", dir="/tmp"))
        self.port = free_port()
        self.proc = None

    def prepare(self):
        # World-readable: the configs' `user www-data` workers import the app from here.
        os.chmod(self.dir, 0o755)
        project = copy_example(self.dir / "project")
        run_setup(project, clean_env(PYTHONDONTWRITEBYTECODE="1"))
        # DigitalOcean's and uWSGI's tutorials collect into static/ (STATIC_ROOT = static/).
        shutil.copytree(project / "staticfiles", project / "static", dirs_exist_ok=True)
        confs = self.dir / "conf"
        shutil.copytree(HERE / "confs", confs)
        shutil.copy(REPO / "conf" / "portico.conf", confs / "portico.conf")
        shutil.copytree(REPO / "conf" / "html", confs / "html")
        (confs / "logs").mkdir()  # nginx's prefix has logs/ (the default access_log path)
        for directory in (confs, confs / "digitalocean"):
            shutil.copy(REPO / "conf" / "mime.types", directory / "mime.types")
        (self.dir / "templates" / "errors").mkdir(parents=True)
        (self.dir / "templates" / "errors" / "404.html").write_text("tutorial 404 page\n")
        (self.dir / "templates" / "errors" / "50x.html").write_text("tutorial 50x page\n")
        for path in confs.rglob("*"):
            if path.is_file() and path.name != "mime.types":
                path.write_text(_substitute(path.read_text(), self.dir, project, self.port))
        for root, dirs, files in os.walk(self.dir):
            for entry in dirs + files:
                os.chmod(os.path.join(root, entry), 0o755 if entry in dirs else 0o644)
        self.conf = confs / CASES[self.name][0]
        self.confs = confs
        return self

    def start(self):
        self.stderr = self.dir / "stderr.log"
        with open(self.stderr, "ab") as err:
            self.proc = subprocess.Popen([portico_binary(), "-p", str(self.confs) + "/", "-c",
                                          str(self.conf)], stdout=subprocess.DEVNULL, stderr=err,
                                         stdin=subprocess.DEVNULL, cwd=str(self.confs),
                                         env=clean_env(PYTHONDONTWRITEBYTECODE="1"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.proc.poll() is None:
            if _can_connect(self.port) and self.get("/").status == 200:
                return self
            time.sleep(0.1)
        raise AssertionError("portico did not serve %s:\n%s" % (self.conf, self.log()))

    def get(self, target, headers=None):
        with Connection.tcp("127.0.0.1", self.port, 10.0) as conn:
            return conn.request("GET", target, headers=headers, host="localhost")

    def log(self):
        text = ""
        for name in ("stderr.log", "error.log"):
            path = self.dir / name
            if path.exists():
                text += path.read_text(errors="replace")[-4000:]
        return text

    def stop(self):
        terminate(self.proc, 15)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(params=sorted(CASES))
def tutorial(request):
    site = TutorialSite(request.param).prepare()
    try:
        yield site.start()
    finally:
        site.stop()


def _gzip_enabled(site):
    text = site.conf.read_text()
    if site.name == "digitalocean":
        text += (site.confs / "digitalocean" / "sites-enabled" / "myproject").read_text()
    return re.search(r"^\s*gzip\s+on;", text, re.MULTILINE) is not None


def test_tutorial_config_serves_the_django_site(tutorial):
    home = tutorial.get("/")
    assert home.status == 200 and b"<html" in home.body.lower(), home
    api = tutorial.get(CASES[tutorial.name][1])
    assert api.status == 200 and api.header("content-type").startswith("application/json"), api
    assert api.body.lstrip().startswith((b"{", b"["))

    login = tutorial.get("/admin/login/", headers=[("Accept-Encoding", "gzip")])
    assert login.status == 200, login
    body = login.body
    if _gzip_enabled(tutorial):
        assert login.header("content-encoding") == "gzip", (tutorial.name, login.headers)
        body = gzip.decompress(body)
    else:
        assert not login.has_header("content-encoding"), login.headers
    assert b"Django administration" in body or b"Log in" in body

    css = tutorial.get("/static/admin/css/base.css")
    assert css.status == 200, css
    assert css.header("content-type") == "text/css"
    with open(tutorial.dir / "project" / "staticfiles" / "admin" / "css" / "base.css",
              "rb") as handle:
        assert css.body == handle.read()
    if tutorial.name == "production_hardened":
        # The nested regex location (which inherits /static/'s alias, as in nginx) adds its
        # headers: `expires 1y` and `add_header Cache-Control` give two fields, as nginx sends.
        cache = [v for k, v in css.headers if k.lower() == "cache-control"]
        assert cache == ["max-age=31536000", "public, immutable"], css.headers


def test_tutorial_error_page(tutorial):
    missing = tutorial.get("/static/no-such-file.css")
    assert missing.status == 404, missing
    if tutorial.name == "production_hardened":
        assert missing.body == b"tutorial 404 page\n"
    elif tutorial.name == "portico_conf":
        # error_page 500 502 503 504 /50x.html: the page the config points at is nginx's.
        page = tutorial.get("/50x.html")
        assert page.status == 200 and b"error occurred" in page.body.lower(), page
    else:
        pytest.skip("%s defines no error_page" % tutorial.name)


def test_tutorial_reload_with_an_edited_location(tutorial):
    failures = []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                if tutorial.get(CASES[tutorial.name][1]).status != 200:
                    failures.append("status")
            except OSError as error:
                failures.append(repr(error))

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        text = tutorial.conf.read_text()
        if "location /static" not in text:  # DigitalOcean's server is in sites-enabled/
            target = tutorial.confs / "digitalocean" / "sites-enabled" / "myproject"
            text = target.read_text()
        else:
            target = tutorial.conf
        edited = text.replace("location /static", 'location = /reloaded { return 200 "yes"; }\n'
                              "        location /static", 1)
        assert edited != text
        target.write_text(edited)
        code = subprocess.run([portico_binary(), "-p", str(tutorial.confs) + "/", "-c",
                               str(tutorial.conf), "-s", "reload"], capture_output=True,
                              timeout=10)
        if b"needs a \"pid\" directive" in code.stderr:
            tutorial.proc.send_signal(signal.SIGHUP)  # no pid directive: nginx's default path
        else:
            assert code.returncode == 0, code.stderr
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and tutorial.get("/reloaded").status != 200:
            time.sleep(0.1)
        assert tutorial.get("/reloaded").body == b"yes", tutorial.log()
    finally:
        stop.set()
        thread.join(timeout=15)
    assert not failures, failures[:5]
