"""The live status page (`portico_status;`, `--metrics-bind`'s /status and /status.json): the
JSON shows every worker and what each Python thread runs now, marks a request past --timeout as
stuck, and the self-contained HTML page renders it in headless Chromium (a screenshot is kept
and the DOM is checked)."""

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from master_support import start_master, wait_for_workers
from servers import conf_server, free_port
from wsgi_support import wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def fetch(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as response:
        return response.status, response.headers, response.read().decode()


def status_json(port, path="/status.json"):
    status, headers, body = fetch(port, path)
    assert status == 200 and headers["Content-Type"] == "application/json"
    return json.loads(body)


def start(launch, workers=2, threads=2, args=()):
    port = free_port()
    server = start_master(launch, workers=workers, threads=threads,
                          args=["--metrics-bind", "127.0.0.1:%d" % port] + list(args))
    server.metrics_port = port

    def ready():
        try:
            return len(status_json(port)["workers"]) == workers
        except OSError:
            return False
    wait_until(ready, 10.0)
    wait_for_workers(server, workers)
    return server


def slow_request(server, target, mark):
    """Sends `target` on its own connection; returns the socket (the response is not read)."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(("GET %s%smark=%s HTTP/1.1\r\nHost: x\r\n\r\n"
                  % (target, "&" if "?" in target else "?", mark)).encode())
    wait_until(lambda: os.path.exists(mark), 5.0)
    return sock


def running(document):
    return [(w["pid"], t) for w in document["workers"] for t in w["running"]]


def test_json_shows_workers_and_running_requests(launch, tmp_path):
    server = start(launch, workers=2, threads=2)
    port = server.metrics_port
    sock = slow_request(server, "/sleep?ms=4000", str(tmp_path / "mark"))
    pid = int(open(tmp_path / "mark").read())
    doc = status_json(port)
    # The same document from the page's own URL with ?format=json.
    assert status_json(port, "/status?format=json")["master"]["pid"] == server.proc.pid
    assert doc["master"]["state"] in ("running", "starting")
    assert sorted(w["pid"] for w in doc["workers"]) == sorted(wait_for_workers(server, 2))
    [(busy_pid, thread)] = running(doc)
    assert busy_pid == pid
    assert thread["method"] == "GET" and thread["path"] == "/sleep"  # no query string
    assert 0 <= thread["running_ms"] < 5000 and thread["stuck"] is False
    later = running(status_json(port))[0][1]
    assert later["running_ms"] >= thread["running_ms"]
    sock.settimeout(10)
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    sock.close()
    wait_until(lambda: running(status_json(port)) == [], 5.0)


def test_a_request_past_timeout_is_shown_stuck(launch, tmp_path):
    # --timeout 1: the worker answers 504 at 1 s but its thread sleeps in C; the status shows it
    # stuck until the master kills the worker (timeout + 2 s grace), counted as a timeout.
    server = start(launch, workers=1, threads=2, args=["--timeout", "1"])
    port = server.metrics_port
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"GET /csleep HTTP/1.1\r\nHost: x\r\n\r\n")
    seen = {}

    def stuck():
        threads = running(status_json(port))
        seen["threads"] = threads
        return any(t["stuck"] for _, t in threads)
    wait_until(stuck, 5.0)
    assert [t["path"] for _, t in seen["threads"]] == ["/csleep"]

    def restarted():
        # The status listener is served by the workers, and the only one is being killed: a poll
        # that lands on it just before SIGKILL loses its connection, as any request there would.
        try:
            return status_json(port)["restarts"]["timeout"] == 1
        except (ConnectionError, OSError):
            return False
    wait_until(restarted, 10.0)
    sock.close()


def worker_doc(port, pid, path="/status.json"):
    [worker] = [w for w in status_json(port, path)["workers"] if w["pid"] == pid]
    return worker


def test_python_stacks_on_demand(launch, tmp_path):
    # ?stacks=PID asks that worker for its Python threads' stacks; its heartbeat answers within
    # a second and the JSON carries them: the sleeping view's frame, headed by the thread ident
    # the "running" row shows. The other worker is not asked and shows none.
    server = start(launch, workers=2, threads=2)
    port = server.metrics_port
    sock = slow_request(server, "/sleep?ms=8000", str(tmp_path / "mark"))
    try:
        pid = int(open(tmp_path / "mark").read())
        other = [p for p in wait_for_workers(server, 2) if p != pid][0]
        assert "stacks" not in worker_doc(port, pid)
        asked = worker_doc(port, pid, "/status.json?stacks=%d" % pid)
        seen = {}

        def answered():
            seen["worker"] = worker = worker_doc(port, pid)
            return worker.get("stacks", {}).get("unix_ms", 0) > 0 and not worker["stacks"]["pending"]
        wait_until(answered, 5.0)
        worker = seen["worker"]
        text = worker["stacks"]["text"]
        [thread] = worker["running"]
        assert "Thread %s" % thread["ident"] in text, (thread, text)
        assert "master_apps.py\", line 85, in route_sleep" in text, text
        assert "time.sleep(milliseconds / 1000.0)" in text
        assert "stacks" not in worker_doc(port, other)
        # Asked again: a newer dump, still the same frame.
        first = worker["stacks"]["unix_ms"]
        time.sleep(0.01)
        worker_doc(port, pid, "/status?format=json&stacks=%d" % pid)
        wait_until(lambda: worker_doc(port, pid)["stacks"]["unix_ms"] > first and
                   not worker_doc(port, pid)["stacks"]["pending"], 5.0)
        assert "in route_sleep" in worker_doc(port, pid)["stacks"]["text"]
        # A pid that is no worker, or no number, changes nothing.
        for query in ("stacks=1", "stacks=abc", "stacks=", "stacks=%d0" % pid):
            assert fetch(port, "/status.json?" + query)[0] == 200
        assert asked["pid"] == pid
    finally:
        sock.close()


def test_page_renders_in_chromium(launch, tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium (Debian's package) is not installed")
    # A short graceful timeout: the sleeping request does not hold up the stop at teardown.
    server = start(launch, workers=2, threads=2, args=["--graceful-timeout", "1"])
    port = server.metrics_port
    status, headers, page = fetch(port, "/status")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    # Self-contained: no external script, style or image.
    assert "src=" not in page and "href=" not in page
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    for _ in range(20):
        urllib.request.urlopen("http://127.0.0.1:%d/pid" % server.port, timeout=5).read()
    sock = slow_request(server, "/sleep?ms=15000", str(tmp_path / "mark"))
    try:
        # The sleeping worker's stacks, asked for as the page's button does.
        busy = int(open(tmp_path / "mark").read())
        fetch(port, "/status?format=json&stacks=%d" % busy)
        wait_until(lambda: worker_doc(port, busy).get("stacks", {}).get("unix_ms", 0) > 0, 5.0)
        url = "http://127.0.0.1:%d/status" % port
        profile = str(tmp_path / "profile")
        common = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-dev-shm-usage", "--user-data-dir=" + profile,
                  "--virtual-time-budget=4000", "--window-size=1280,1000"]
        shot = str(tmp_path / "status.png")
        subprocess.run(common + ["--screenshot=" + shot, url], capture_output=True, timeout=60)
        assert os.path.getsize(shot) > 10000
        print("status page screenshot: %s" % shot)
        dom = subprocess.run(common + ["--dump-dom", url], capture_output=True, timeout=60)
        html = dom.stdout.decode()
        assert 'data-loaded="1"' in html, dom.stderr.decode()[-2000:]
        # One row per worker, with its pid; the sleeping request on one of them.
        pids = wait_for_workers(server, 2)
        rows = html.split('<tr class="worker')[1:]
        assert len(rows) == 2
        for pid in pids:
            assert ">%d</td>" % pid in html
        assert "GET /sleep (" in html
        assert "master %d running" % server.proc.pid in html
        # A "take" button per worker; the stacks block of the asked worker, with its frame.
        assert html.count('<button class="stacks"') == 2
        assert '<div class="stack" data-pid="%d">' % busy in html
        stack_block = html.split('<div class="stack" data-pid="%d">' % busy, 1)[1]
        assert "in route_sleep" in stack_block.split("</pre>", 1)[0]
        # The charts: the interval since the master's first history point, up to now.
        assert html.count('class="series"') == 3  # requests/s; mean and p99 latency
    finally:
        sock.close()


def test_directive_in_the_file(tmp_path):
    port = free_port()
    conf = tmp_path / "site.conf"
    conf.write_text("""
worker_processes 1;
error_log %(dir)s/error.log;
pid %(dir)s/portico.pid;
events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:%(port)d;
        location = /status { portico_status; allow 127.0.0.1; deny all; }
        location = /status-closed { portico_status; deny all; }
        location / { return 200 "ok\\n"; }
    }
}
""" % {"dir": tmp_path, "port": port})
    with conf_server(conf):
        def up():
            try:
                return fetch(port, "/status?format=json")[0] == 200
            except OSError:
                return False
        wait_until(up, 10.0)
        doc = json.loads(fetch(port, "/status?format=json")[2])
        assert len(doc["workers"]) == 1 and doc["workers"][0]["state"] == "ready"
        assert fetch(port, "/status")[1]["Content-Type"].startswith("text/html")
        with pytest.raises(urllib.error.HTTPError) as refused:
            fetch(port, "/status-closed")
        assert refused.value.code == 403
