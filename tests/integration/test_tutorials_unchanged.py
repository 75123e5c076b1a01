"""Tutorial configurations run exactly as published (tests/integration/confs/unchanged/): each
in its own network, mount and PID namespace (unshare, as root) where what the tutorial assumes
exists — the `web` host name (an /etc/hosts bound over the namespace's), port 80, the image's
/etc/nginx/conf.d/, /home/app/web holding the example Django site — and nothing leaks to the
machine: the namespace's processes die with it.

testdriven.io's Docker tutorial: portico reads the official nginx image's main file (user and
paths as Debian has them) which includes the tutorial's conf.d file unchanged: `upstream
hello_django { server web:8000; }` (the name resolved at load) and proxy_pass with its
proxy_set_header and proxy_redirect lines, in front of gunicorn from apt on web:8000."""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from django_support import clean_env, copy_example, run_setup
from servers import portico_binary

HERE = Path(__file__).resolve().parent
UNCHANGED = HERE / "confs" / "unchanged"

# The official nginx image's /etc/nginx/nginx.conf, with `user www-data` (the image's `nginx`
# account does not exist on Debian).
IMAGE_MAIN = """user  www-data;
worker_processes  auto;

error_log  /var/log/nginx/error.log notice;
pid        /var/run/nginx.pid;

events {
    worker_connections  1024;
}

http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;

    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';

    access_log  /var/log/nginx/access.log  main;

    sendfile        on;
    #tcp_nopush     on;

    keepalive_timeout  65;

    #gzip  on;

    include /etc/nginx/conf.d/*.conf;
}
"""

# Runs inside the namespaces (sh is PID 1 there: when it exits every process it started dies).
SCRIPT = r"""
set -e
ip link set lo up
mount -t tmpfs tmpfs /home
mkdir -p /home/app/web
mount --bind "$WORK/project" /home/app/web
mount -t tmpfs tmpfs /var/log/nginx
mount -t tmpfs tmpfs /run
printf '127.0.0.1 localhost\n127.0.0.1 web\n' > "$WORK/hosts"
mount --bind "$WORK/hosts" /etc/hosts
mount --bind "$WORK/conf.d" /etc/nginx/conf.d
cd /home/app/web
/usr/bin/gunicorn -b 0.0.0.0:8000 -w 1 mysite.wsgi:application >"$WORK/gunicorn.log" 2>&1 &
"$PORTICO" -c "$WORK/nginx.conf" >"$WORK/portico.log" 2>&1 &
/usr/bin/python3 "$WORK/client.py" >"$WORK/client.json"
cp /var/log/nginx/access.log /var/log/nginx/error.log "$WORK/" 2>/dev/null || true
"""

# The client, inside the namespace: waits for both servers, then asks what the tests check.
CLIENT = r"""
import http.client, json, socket, time
def ready(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False
deadline = time.monotonic() + 40
while time.monotonic() < deadline and not (ready(8000) and ready(80)):
    time.sleep(0.1)
out = {}
for name, path, headers in (("api", "/api/books/", {}),
                            ("home", "/", {"X-Forwarded-For": "203.0.113.9"}),
                            ("static", "/static/admin/css/base.css", {}),
                            ("redirect", "/admin", {})):
    c = http.client.HTTPConnection("127.0.0.1", 80, timeout=20)
    c.request("GET", path, headers=dict(headers, Host="example.test"))
    r = c.getresponse()
    body = r.read()
    out[name] = {"status": r.status, "headers": {k.lower(): v for k, v in r.getheaders()},
                 "length": len(body), "head": body[:200].decode("latin-1")}
    c.close()
print(json.dumps(out))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"),
                    reason="needs root, unshare and ip for the namespaces")
@pytest.mark.skipif(not os.path.exists("/usr/bin/gunicorn"), reason="gunicorn is not installed")
def test_testdriven_docker_tutorial_unchanged():
    work = Path(tempfile.mkdtemp(prefix="portico-unchanged-", dir="/tmp"))
    try:
        os.chmod(work, 0o755)
        project = copy_example(work / "project")
        run_setup(project, clean_env(PYTHONDONTWRITEBYTECODE="1"))
        (project / "mediafiles").mkdir()
        (work / "conf.d").mkdir()
        shutil.copy(UNCHANGED / "testdriven_docker_nginx.conf", work / "conf.d" / "nginx.conf")
        (work / "nginx.conf").write_text(IMAGE_MAIN)
        (work / "client.py").write_text(CLIENT)
        for root, dirs, files in os.walk(work):
            for entry in dirs + files:
                os.chmod(os.path.join(root, entry), 0o755 if entry in dirs else 0o644)
        env = clean_env(WORK=str(work), PORTICO=portico_binary(), PYTHONDONTWRITEBYTECODE="1")
        run = subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc",
                              "sh", "-c", SCRIPT], env=env, capture_output=True, text=True,
                             timeout=120)
        logs = "\n".join("%s:\n%s" % (name, (work / name).read_text(errors="replace")[-3000:])
                         for name in ("portico.log", "gunicorn.log", "error.log")
                         if (work / name).exists())
        assert run.returncode == 0, run.stderr + logs
        answers = json.loads((work / "client.json").read_text())
        # Django answered through the upstream (its JSON), with the client's Host passed on.
        assert answers["api"]["status"] == 200, (answers, logs)
        assert answers["api"]["headers"]["content-type"] == "application/json"
        assert answers["home"]["status"] == 200
        # The static file came from portico itself (alias), not from gunicorn.
        assert answers["static"]["status"] == 200
        assert answers["static"]["headers"]["content-type"] == "text/css"
        assert answers["static"]["headers"]["server"].startswith("portico")
        # Django's redirect (APPEND_SLASH) is passed as it is (proxy_redirect off).
        assert answers["redirect"]["status"] == 301
        assert answers["redirect"]["headers"]["location"] == "/admin/"
        access = (work / "access.log").read_text()
        assert '"GET /api/books/ HTTP/1.1" 200' in access
        assert '"203.0.113.9"' in access  # $http_x_forwarded_for in the image's log format
    finally:
        shutil.rmtree(work, ignore_errors=True)
