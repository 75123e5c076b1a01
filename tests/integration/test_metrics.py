"""Prometheus metrics and health endpoints: `--metrics-bind` on the flags path and
`prometheus_metrics;` / `health_live;` / `health_ready;` in the file. The counters are summed over
every worker from the master's shared status board (whichever worker answers the scrape), keep
the counts of workers that are gone (a reload never sends a counter back), count restarts by
cause, pass `promtool check metrics`, and are scraped by a real Prometheus (Debian's)."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import urllib.request

import pytest

from master_support import send_signal, start_master, wait_exit, wait_for_workers
from servers import conf_server, free_port, portico_binary
from wsgi_support import get, wait_until

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def scrape(port, path="/metrics"):
    """(status, body text) of GET path on the metrics listener (a new connection each time)."""
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as response:
        return response.status, response.read().decode(), response.headers


def fetch(port, path):
    try:
        status, body, _headers = scrape(port, path)
        return status, body
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def samples(text):
    """{(name, labels string): value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, "not a sample line: %r" % line
        out[(match.group(1), match.group(2) or "")] = float(match.group(3))
    return out


def value(text, name, labels=""):
    return samples(text).get((name, labels))


def metrics(port):
    return scrape(port)[1]


def start(launch, workers=2, args=(), threads=None):
    port = free_port()
    server = start_master(launch, workers=workers, threads=threads, static=True,
                          args=["--metrics-bind", "127.0.0.1:%d" % port] + list(args))
    server.metrics_port = port
    wait_until(lambda: _ready(port), 10.0)
    wait_for_workers(server, workers)
    return server


def _ready(port):
    try:
        return fetch(port, "/health/ready")[0] == 200
    except OSError:
        return False


def hit(server, path, count):
    for _ in range(count):
        assert get(server, path).status in (200, 404)


def test_counts_every_worker_and_passes_promtool(launch):
    server = start(launch, workers=2)
    port = server.metrics_port
    app = '{server="127.0.0.1:%d",location=' % server.port
    wait_until(lambda: value(metrics(port), "portico_master_state", '{state="running"}') == 1,
               5.0)
    before = metrics(port)
    hit(server, "/pid", 30)
    hit(server, "/static/missing.txt", 7)
    text, headers = scrape(port)[1:]
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")

    def delta(name, labels=""):
        return value(text, name, labels) - (value(before, name, labels) or 0)
    # The app's 30 answers and the 7 missing files, whichever worker served them; plus the
    # scrape before them (a request is counted once its response is written).
    assert delta("portico_http_requests_total", '{status="2xx"}') == 31
    assert delta("portico_http_requests_total", '{status="4xx"}') == 7
    assert delta("portico_http_request_duration_seconds_count") == 38
    assert delta("portico_http_request_duration_seconds_bucket", '{le="+Inf"}') == 38
    assert value(text, "portico_http_location_requests_total", app + '"/",status="2xx"}') == 30
    assert value(text, "portico_http_location_requests_total",
                 app + '"/static/",status="4xx"}') == 7
    assert value(text, "portico_http_location_requests_total",
                 '{server="127.0.0.1:%d",location="= /metrics",status="2xx"}' % port) >= 1
    assert delta("portico_http_received_bytes_total") > 37 * 20
    assert delta("portico_http_sent_bytes_total") > 37 * 60
    assert value(text, "portico_workers", '{state="idle"}') == 2
    assert value(text, "portico_workers_target") == 2
    # Both workers report their memory (a worker's heartbeat writes it within a second).
    wait_until(lambda: len([k for k, v in samples(metrics(port)).items()
                            if k[0] == "portico_worker_resident_memory_bytes" and v > 1e6]) == 2,
               5.0)
    per_worker = [v for (name, _), v in samples(metrics(port)).items()
                  if name == "portico_worker_requests_total"]
    assert len(per_worker) == 2
    assert sum(per_worker) >= 37
    # The listener's accept queue and its backlog, from the kernel.
    queues = [v for (name, _), v in samples(text).items() if name == "portico_listen_queue_limit"]
    assert 2048 in queues
    if PROMTOOL is None:
        pytest.skip("promtool (Debian's prometheus package) is not installed")
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


def test_counters_survive_reload_and_count_restarts(launch):
    server = start(launch, workers=2, args=["--max-requests", "10"])
    port = server.metrics_port
    before = set(wait_for_workers(server, 2))
    app = '{server="127.0.0.1:%d",location="/",status="2xx"}' % server.port
    hit(server, "/pid", 12)
    assert value(metrics(port), "portico_http_location_requests_total", app) == 12
    # 12 requests over two workers with --max-requests 10: each recycles at its 10th, which
    # happens once at least; the master counts it as max_requests.
    hit(server, "/pid", 12)
    wait_until(lambda: value(metrics(port), "portico_worker_restarts_total",
                             '{cause="max_requests"}') >= 1, 10.0)
    send_signal(server, signal.SIGHUP)
    wait_until(lambda: value(metrics(port), "portico_reloads_total") == 1, 10.0)
    wait_until(lambda: value(metrics(port), "portico_worker_restarts_total",
                             '{cause="reload"}') >= 2, 10.0)
    after = metrics(port)
    # The replaced workers' counts stay in: nothing goes back.
    assert value(after, "portico_http_requests_total", '{status="2xx"}') >= 24
    assert value(after, "portico_http_location_requests_total", app) == 24
    assert value(after, "portico_connections_accepted_total") >= 24
    assert value(after, "portico_worker_restarts_total", '{cause="crash"}') == 0
    # A worker killed from outside is a crash.
    victim = next(iter(wait_for_workers(server, 2, exclude=before)))
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: value(metrics(port), "portico_worker_restarts_total",
                             '{cause="crash"}') == 1, 10.0)


def test_busy_python_threads_and_gil_waits(launch, tmp_path):
    server = start(launch, workers=1, threads=2)
    port = server.metrics_port
    mark = str(tmp_path / "running")
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(("GET /sleep?ms=3000&mark=%s HTTP/1.1\r\nHost: x\r\n\r\n" % mark).encode())
    wait_until(lambda: os.path.exists(mark), 5.0)
    # The worker's heartbeat publishes its threads each second.
    wait_until(lambda: value(metrics(port), "portico_python_threads", '{state="busy"}') == 1, 5.0)
    text = metrics(port)
    assert value(text, "portico_python_threads", '{state="idle"}') == 1
    assert value(text, "portico_workers", '{state="busy"}') == 1
    assert value(text, "portico_connections", '{state="writing"}') >= 1
    sock.settimeout(10)
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    sock.close()
    assert value(metrics(port), "portico_python_gil_waits_total") >= 1


def test_health_endpoints(launch):
    server = start(launch, workers=1)
    port = server.metrics_port
    assert fetch(port, "/health/live") == (200, "live\n")
    assert fetch(port, "/health/ready") == (200, "ready\n")
    assert fetch(port, "/nothing")[0] == 404
    # The app's listener does not serve them.
    assert get(server, "/health/ready").status != 503
    # A master that stops ticking (frozen) makes the workers say so after 5 s.
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: fetch(port, "/health/live")[0] == 503, 10.0)
        status, body = fetch(port, "/health/ready")
        assert status == 503 and "master" in body
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    wait_until(lambda: fetch(port, "/health/live")[0] == 200, 5.0)
    # After TERM nothing is ready: the listeners are closed (refused) or a worker says 503.
    send_signal(server, signal.SIGTERM)

    def not_ready():
        try:
            return fetch(port, "/health/ready")[0] == 503
        except OSError:
            return True
    wait_until(not_ready, 5.0)
    assert wait_exit(server, 10.0) == 0


def test_metrics_bind_must_differ_from_bind(launch):
    port = free_port()
    proc = subprocess.run([portico_binary(), "--bind", "127.0.0.1:%d" % port,
                           "--metrics-bind", "127.0.0.1:%d" % port, "x:app"],
                          capture_output=True, timeout=10)
    assert proc.returncode == 2
    assert b"--metrics-bind" in proc.stderr and b"listener of their own" in proc.stderr


# ---- the file's directives ---------------------------------------------------------------------

CONF = """
worker_processes 2;
error_log %(dir)s/error.log info;
pid %(dir)s/portico.pid;
events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:%(port)d;
        server_name metrics.test;
        location = /metrics { prometheus_metrics; allow 127.0.0.1; deny all; }
        location = /closed { prometheus_metrics; deny all; }
        location = /live { health_live; }
        location = /ready { health_ready; }
        location / { return 200 "hi\\n"; }
        location ~ "\\.(?:png|\\"q)$" { return 204; }
    }
}
"""


def run_conf(tmp_path, text):
    conf = tmp_path / "site.conf"
    conf.write_text(text)
    return subprocess.run([portico_binary(), "-t", "-c", str(conf)], capture_output=True,
                          timeout=20)


def test_directives_in_the_file_and_a_real_prometheus(tmp_path):
    port = free_port()
    conf = tmp_path / "site.conf"
    conf.write_text(CONF % {"dir": tmp_path, "port": port})
    with conf_server(conf):
        wait_until(lambda: _ready_at(port, "/ready"), 10.0)
        for _ in range(5):
            assert fetch(port, "/")[0] == 200
        assert fetch(port, "/a.png")[0] == 204
        assert fetch(port, "/closed")[0] == 403
        assert fetch(port, "/live") == (200, "live\n")
        text = scrape(port)[1]
        assert value(text, "portico_http_location_requests_total",
                     '{server="metrics.test",location="/",status="2xx"}') == 5
        # A label value with a quote and a backslash is escaped.
        assert value(text, "portico_http_location_requests_total",
                     '{server="metrics.test",location="~ \\\\.(?:png|\\"q)$",status="2xx"}') == 1
        if PROMTOOL:
            check = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                                   capture_output=True, timeout=30)
            assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
        if PROMETHEUS is None:
            pytest.skip("prometheus (Debian's package) is not installed")
        prometheus, api = start_prometheus(tmp_path, port)
        try:
            def scraped():
                try:
                    query = urllib.parse.quote('portico_http_requests_total{status="2xx"}')
                    with urllib.request.urlopen(api + "/api/v1/query?query=" + query,
                                                timeout=2) as response:
                        data = json.loads(response.read())
                except OSError:
                    return False
                results = data.get("data", {}).get("result", [])
                return bool(results) and float(results[0]["value"][1]) >= 7
            wait_until(scraped, 30.0, interval=0.5)
            with urllib.request.urlopen(api + "/api/v1/targets", timeout=2) as response:
                targets = json.loads(response.read())["data"]["activeTargets"]
            assert targets and targets[0]["health"] == "up", targets
        finally:
            prometheus.terminate()
            prometheus.wait(10)


def _ready_at(port, path):
    try:
        return fetch(port, path)[0] == 200
    except OSError:
        return False


def start_prometheus(tmp_path, port):
    web = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text("""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: portico
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:%d']
""" % port)
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen([PROMETHEUS, "--config.file=%s" % config,
                             "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                             "--web.listen-address=127.0.0.1:%d" % web],
                            stdout=log, stderr=subprocess.STDOUT)
    return proc, "http://127.0.0.1:%d" % web


def test_upstream_servers_are_counted(tmp_path):
    port, backend, dead, brief = free_port(), free_port(), free_port(), free_port()
    conf = tmp_path / "site.conf"
    conf.write_text("""
worker_processes 1;
error_log %(dir)s/error.log;
pid %(dir)s/portico.pid;
events {}
http {
    access_log off;
    upstream app {
        server 127.0.0.1:%(dead)d fail_timeout=60s;
        server 127.0.0.1:%(brief)d fail_timeout=1s;
        server 127.0.0.1:%(backend)d;
    }
    server {
        listen 127.0.0.1:%(port)d;
        location = /metrics { prometheus_metrics; }
        location = /status { portico_status; }
        location / { proxy_pass http://app; }
    }
    server {
        listen 127.0.0.1:%(backend)d;
        location / { return 200 "backend\\n"; }
    }
}
""" % {"dir": tmp_path, "port": port, "backend": backend, "dead": dead, "brief": brief})
    with conf_server(conf):
        wait_until(lambda: _ready_at(port, "/metrics"), 10.0)
        for _ in range(6):
            assert fetch(port, "/x") == (200, "backend\n")
        text = scrape(port)[1]
        good = '{upstream="app",server="127.0.0.1:%d"}' % backend
        bad = '{upstream="app",server="127.0.0.1:%d"}' % dead
        # The refused server was tried once and failed (then skipped for fail_timeout); the
        # other answered every request.
        assert value(text, "portico_upstream_tries_total", good) == 6
        assert value(text, "portico_upstream_failures_total", good) == 0
        assert value(text, "portico_upstream_tries_total", bad) == 1
        assert value(text, "portico_upstream_failures_total", bad) == 1
        assert value(text, "portico_upstream_response_seconds_total", good) > 0
        # Passive health: the worker skips the refused servers for their fail_timeout.
        assert value(text, "portico_upstream_unavailable_workers", bad) == 1
        assert value(text, "portico_upstream_unavailable_workers", good) == 0
        status = json.loads(fetch(port, "/status?format=json")[1])
        by_server = {u["server"]: u for u in status["upstreams"]}
        assert by_server["127.0.0.1:%d" % dead]["failures"] == 1
        assert by_server["127.0.0.1:%d" % dead]["unavailable_workers"] == 1
        assert by_server["127.0.0.1:%d" % backend]["tries"] == 6
        assert by_server["127.0.0.1:%d" % backend]["unavailable_workers"] == 0
        # fail_timeout=1s runs out: tried again (and failed again) on the next request, not before.
        brief_label = '{upstream="app",server="127.0.0.1:%d"}' % brief
        assert value(text, "portico_upstream_failures_total", brief_label) == 1

        def brief_back():
            return value(scrape(port)[1], "portico_upstream_unavailable_workers", brief_label) == 0
        wait_until(brief_back, 10.0)
        assert value(scrape(port)[1], "portico_upstream_tries_total", brief_label) == 1
        assert value(scrape(port)[1], "portico_upstream_unavailable_workers", bad) == 1


def test_directive_errors(tmp_path):
    base = "events {}\nhttp { server { listen 127.0.0.1:%d; %%s } }\n" % free_port()
    result = run_conf(tmp_path, base % "location /m { prometheus_metrics on; }")
    assert result.returncode == 1
    assert b'invalid number of arguments in "prometheus_metrics" directive' in result.stderr
    result = run_conf(tmp_path, base % "prometheus_metrics;")
    assert result.returncode == 1
    assert b'"prometheus_metrics" directive is not allowed here' in result.stderr
    result = run_conf(tmp_path, base % "location /h { health_live; health_ready; }")
    assert result.returncode == 1
    assert b'"health_ready" conflicts with another service endpoint' in result.stderr
    assert b"site.conf:2" in result.stderr
