"""Scaling past one machine, on this one: a small cluster in network namespaces, each a "host"
with its own address on one private bridge —

    client (.100) ──► lb (.10): portico -c lb.conf, upstream { app1 app2 app3 }, proxy_pass
                         ├──► app1 (.11) ┐
                         ├──► app2 (.12) ├ portico serving examples/django
                         ├──► app3 (.13) ┘   (app4 (.14) joins later)
                         └ db (.2): PostgreSQL (the data) and Redis (cache and sessions)

Under a steady load from the client (GETs of the JSON API, an admin page behind a login, and
POSTs that count visits in the shared cache):
- app2 is unplugged and every process on it killed: no idempotent request fails (the load
  balancer's proxy_next_upstream takes them to another host; a POST already sent to the dead
  host may fail, as with nginx, and is never sent twice);
- every app host is restarted in turn (SIGTERM, a graceful drain, a new portico): no request
  fails, POSTs included;
- app4 is started and added to the upstream by a reload of the load balancer: it takes traffic,
  and no request fails.
The session made by one login is honoured by every host (Redis); the visit counter equals the
POSTs that succeeded (no POST lost or counted twice)."""

import importlib.util
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from cluster_support import Network, enter, netns_available
from django_support import PostgresCluster, clean_env, copy_example, csrf_token
from servers import portico_binary

pytestmark = pytest.mark.time_budget(300)

SUBNET = "10.213.7"
APP_PORT = 8000
LB_PORT = 8080
REDIS_PORT = 6379
PG_PORT = 5432
CLIENTS = 6
HTTP_TIMEOUT = 20


def _skip_unless_possible():
    ok, why = netns_available()
    if not ok:
        pytest.skip(why)
    if not PostgresCluster.available():
        pytest.skip("PostgreSQL 15 is not installed")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    if importlib.util.find_spec("django_redis") is None:
        pytest.skip("python3-django-redis is not installed")


def _tail(path, limit=3000):
    try:
        return Path(path).read_bytes()[-limit:].decode("utf-8", "replace")
    except OSError:
        return "<unreadable>"


class App:
    """portico serving the example on one app host; restartable."""

    def __init__(self, host, site, env, logs):
        self.host = host
        self.site = site
        self.env = env
        self.logs = logs
        self.proc = None
        self.starts = 0
        self.access_log = logs / ("%s.access.log" % host.name)
        self.stderr = logs / ("%s.stderr.log" % host.name)

    def start(self, watcher):
        self.starts += 1
        with open(self.stderr, "ab") as err:
            self.proc = self.host.popen(
                [portico_binary(), "--bind", "%s:%d" % (self.host.address, APP_PORT),
                 "--chdir", str(self.site), "--static", "/static/=staticfiles/",
                 "--workers", "1", "--threads", "2", "--graceful-timeout", "20",
                 "--access-logfile", str(self.access_log), "mysite.wsgi:application"],
                env=self.env, stdout=subprocess.DEVNULL, stderr=err)
        watcher.wait_listening(self.host.address, APP_PORT, proc=self.proc,
                               what="portico (%s)" % self.host.name)
        return self

    def stop(self):
        """SIGTERM: the graceful stop; returns the exit code."""
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def served(self):
        try:
            return sum(1 for _ in open(self.access_log, "rb"))
        except OSError:
            return 0


def lb_conf(workdir, apps):
    servers = "".join("        server %s:%d max_fails=1 fail_timeout=3s;\n" % (app.host.address, APP_PORT)
                      for app in apps)
    return """worker_processes 2;
pid %(dir)s/lb.pid;
error_log %(dir)s/lb-error.log info;
events { worker_connections 1024; }
http {
    access_log %(dir)s/lb-access.log;
    upstream django {
%(servers)s        keepalive 16;
    }
    server {
        listen %(addr)s:%(port)d;
        location = /lb-status { portico_status; }
        location / {
            proxy_pass http://django;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_connect_timeout 1s;
            proxy_read_timeout 8s;
            proxy_next_upstream error timeout http_502 http_503;
        }
    }
}
""" % {"dir": workdir, "servers": servers, "addr": "%s.10" % SUBNET, "port": LB_PORT}


class Load:
    """CLIENTS threads in the client host, each with its own keep-alive session through the load
    balancer, recording every request under the phase it began in, with every phase it was in
    flight during (a POST begun in "steady" can still be on the host unplugged when "host-lost"
    begins)."""

    def __init__(self, client_host, base, cookies, books):
        self.client_host = client_host
        self.base = base
        self.cookies = cookies
        self.books = books
        self.phases = ["steady"]  # in the order they began
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.results = []  # (phase, method, path, ok, detail, phases in flight)
        self.threads = []

    def start(self):
        for index in range(CLIENTS):
            thread = threading.Thread(target=self._client, args=(index,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self):
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=HTTP_TIMEOUT + 10)
        assert not any(thread.is_alive() for thread in self.threads), "a load thread hung"

    def _one(self, session, n):
        kind = n % 4
        if kind in (0, 1):
            response = session.get(self.base + "/api/books/", timeout=HTTP_TIMEOUT)
            ok = response.status_code == 200 and len(response.json()) == self.books
            return "GET", "/api/books/", ok, response
        if kind == 2:
            response = session.get(self.base + "/admin/", timeout=HTTP_TIMEOUT,
                                   allow_redirects=False)
            ok = response.status_code == 200 and "Site administration" in response.text
            return "GET", "/admin/", ok, response
        response = session.post(self.base + "/api/visits/", timeout=HTTP_TIMEOUT)
        ok = response.status_code == 200 and response.json()["visits"] > 0
        return "POST", "/api/visits/", ok, response

    def _client(self, index):
        enter(self.client_host)
        session = requests.Session()
        session.cookies.update(self.cookies)
        n = index
        while not self.stop_event.is_set():
            n += 1
            began = len(self.phases) - 1
            phase = self.phases[began]
            try:
                method, path, ok, response = self._one(session, n)
                detail = "" if ok else "%d %s" % (response.status_code, response.text[:300])
            except (requests.RequestException, ValueError, KeyError) as error:
                kind = n % 4
                method = "POST" if kind == 3 else "GET"
                path = ("/api/books/", "/api/books/", "/admin/", "/api/visits/")[kind]
                ok, detail = False, repr(error)
                session.close()
                session = requests.Session()
                session.cookies.update(self.cookies)
            with self.lock:
                spanned = frozenset(self.phases[began:])
                self.results.append((phase, method, path, ok, detail, spanned))

    def count(self, phase, method=None, ok=None):
        with self.lock:
            return sum(1 for r in self.results if r[0] == phase and (method is None or r[1] == method)
                       and (ok is None or r[3] == ok))

    def failures(self, phase, method=None, unless_during=None):
        """The failed requests begun in phase, leaving out those in flight during unless_during."""
        with self.lock:
            return [r for r in self.results if r[0] == phase and not r[3]
                    and (method is None or r[1] == method)
                    and (unless_during is None or unless_during not in r[5])]

    def failures_during(self, phase, method):
        """The failed requests that were in flight at some time during phase."""
        with self.lock:
            return [r for r in self.results if phase in r[5] and not r[3] and r[1] == method]

    def run_phase(self, name, seconds=None, action=None):
        with self.lock:
            if self.phases[-1] != name:
                self.phases.append(name)
        began = time.monotonic()
        if action is not None:
            action()
        if seconds is not None:
            time.sleep(max(0.0, seconds - (time.monotonic() - began)))


def _login(client_host, base):
    """Logs into the admin through the load balancer; returns the session cookies."""
    def body():
        session = requests.Session()
        form = session.get(base + "/admin/login/?next=/admin/", timeout=HTTP_TIMEOUT)
        assert form.status_code == 200, form.text[:2000]
        response = session.post(base + "/admin/login/?next=/admin/", data={
            "username": "admin", "password": "admin", "next": "/admin/",
            "csrfmiddlewaretoken": csrf_token(form.text)}, allow_redirects=False,
            headers={"Referer": base + "/admin/login/"}, timeout=HTTP_TIMEOUT)
        assert response.status_code == 302, "login answered %d:\n%s" % (
            response.status_code, response.text[:2000])
        assert "sessionid" in session.cookies
        return session.cookies.get_dict()
    return client_host.call(body)


def _get_json(client_host, url):
    return client_host.call(lambda: requests.get(url, timeout=HTTP_TIMEOUT).json())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    _skip_unless_possible()
    work = tmp_path_factory.mktemp("cluster")
    logs = work / "logs"
    logs.mkdir()
    net = Network(SUBNET).create()
    state = {"net": net, "apps": {}, "work": work, "logs": logs}
    pg = None
    try:
        db = net.add("db", 2)
        lb = net.add("lb", 10)
        client = net.add("client", 100)
        app_hosts = [net.add("app%d" % i, 10 + i) for i in range(1, 5)]

        pg = PostgresCluster(prefix=db.prefix(), listen=db.address, port=PG_PORT,
                             clients="%s.0/24" % SUBNET).start()
        state["pg"] = pg
        with open(logs / "redis.log", "wb") as out:
            redis = db.popen(["redis-server", "--bind", db.address, "--port", str(REDIS_PORT),
                              "--save", "", "--appendonly", "no", "--protected-mode", "no"],
                             stdout=out, stderr=subprocess.STDOUT)
        lb.wait_listening(db.address, REDIS_PORT, proc=redis, what="redis-server")

        site = copy_example(work / "site")
        env = clean_env(DATABASE_URL=pg.tcp_url(), REDIS_URL="redis://%s:%d/0" % (db.address, REDIS_PORT),
                        DJANGO_LOG_LEVEL="ERROR")
        setup = app_hosts[0].run(["sh", str(site / "setup.sh")], env=env, timeout=120)
        assert setup.returncode == 0, "setup.sh failed:\n%s%s" % (
            setup.stdout.decode(errors="replace"), setup.stderr.decode(errors="replace"))

        apps = [App(host, site, env, logs) for host in app_hosts]
        state["apps"] = {app.host.name: app for app in apps}
        for app in apps[:3]:
            app.start(lb)

        conf = work / "lb.conf"
        conf.write_text(lb_conf(work, apps[:3]))
        with open(logs / "lb.stderr.log", "ab") as err:
            lb_proc = lb.popen([portico_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=err)
        client.wait_listening(lb.address, LB_PORT, proc=lb_proc, what="portico (load balancer)")
        state.update(db=db, lb=lb, client=client, lb_proc=lb_proc, conf=conf,
                     base="http://%s:%d" % (lb.address, LB_PORT))
        yield state
    finally:
        if "lb_proc" in state:
            state["lb_proc"].terminate()
            try:
                state["lb_proc"].wait(timeout=15)
            except subprocess.TimeoutExpired:
                state["lb_proc"].kill()
        for app in state["apps"].values():
            if app.proc is not None and app.proc.poll() is None:
                app.stop()
        if pg is not None:
            pg.stop()
        net.destroy()


def _logs(state):
    out = []
    for name in ("lb-error.log",):
        out.append("== %s\n%s" % (name, _tail(state["work"] / name)))
    for path in sorted(state["logs"].glob("*.stderr.log")):
        out.append("== %s\n%s" % (path.name, _tail(path)))
    return "\n".join(out)


def test_every_host_shares_sessions_and_cache(cluster):
    client, base, apps = cluster["client"], cluster["base"], cluster["apps"]
    books = _get_json(client, base + "/api/books/")
    assert len(books) > 0
    cookies = _login(client, base)

    # The same session on every host: each request goes to the next host in turn.
    before = {name: apps[name].served() for name in ("app1", "app2", "app3")}

    def admin_pages():
        session = requests.Session()
        session.cookies.update(cookies)
        return [session.get(base + "/admin/", timeout=HTTP_TIMEOUT, allow_redirects=False)
                for _ in range(9)]
    for response in client.call(admin_pages):
        assert response.status_code == 200 and "Site administration" in response.text, \
            (response.status_code, response.text[:500])
    time.sleep(0.2)  # access log lines are written after the response
    grown = [name for name, count in before.items() if apps[name].served() > count]
    assert sorted(grown) == ["app1", "app2", "app3"], "admin pages served by %s only" % grown

    # One counter in Redis for all: nine POSTs through the balancer count one to nine more.
    start = _get_json(client, base + "/api/visits/")["visits"]

    def posts():
        session = requests.Session()
        return [session.post(base + "/api/visits/", timeout=HTTP_TIMEOUT).json()["visits"]
                for _ in range(9)]
    assert client.call(posts) == list(range(start + 1, start + 10))

    # The session is in Redis (cached_db keeps it in PostgreSQL too).
    keys = cluster["db"].run(["redis-cli", "-h", cluster["db"].address, "-p", str(REDIS_PORT),
                              "--scan", "--pattern", "*sessions.cached_db*"])
    assert keys.returncode == 0 and keys.stdout.strip(), keys


def test_host_loss_rolling_restart_and_new_host(cluster):
    client, base, apps, lb = cluster["client"], cluster["base"], cluster["apps"], cluster["lb"]
    books = len(_get_json(client, base + "/api/books/"))
    cookies = _login(client, base)
    visits_before = _get_json(client, base + "/api/visits/")["visits"]
    load = Load(client, base, cookies, books)
    load.start()
    try:
        load.run_phase("steady", 3)

        # A host lost: its cable pulled, then every process on it killed.
        def lose_app2():
            apps["app2"].host.unplug()
            apps["app2"].host.kill_all()
            # The balancer's status page shows the lost host skipped (passive health).
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline and not health.get("seen"):
                doc = _get_json(client, base + "/lb-status?format=json")
                for upstream in doc["upstreams"]:
                    if upstream["server"] == "%s:%d" % (apps["app2"].host.address, APP_PORT):
                        health["seen"] = upstream["unavailable_workers"] >= 1
                        health["doc"] = upstream
                time.sleep(0.2)
        health = {}
        load.run_phase("host-lost", 10, lose_app2)
        assert health.get("seen"), health

        # It comes back (cable in, portico started) before the rolling restart.
        def bring_back():
            subprocess.run(["ip", "-n", cluster["net"].switch, "link", "set",
                            apps["app2"].host.link, "up"], check=True)
            apps["app2"].start(lb)
        load.run_phase("host-back", 4, bring_back)

        # Rolling restart: one host at a time, the next only when the last one listens again.
        exits = {}

        def rolling():
            for name in ("app1", "app2", "app3"):
                exits[name] = apps[name].stop()
                apps[name].start(lb)
                time.sleep(1.0)
        load.run_phase("rolling-restart", None, rolling)
        assert exits == {"app1": 0, "app2": 0, "app3": 0}, exits

        # A host added: started, then the balancer's upstream gains it by a reload.
        def grow():
            apps["app4"].start(lb)
            cluster["conf"].write_text(lb_conf(cluster["work"], [apps[n] for n in
                                                                 ("app1", "app2", "app3", "app4")]))
            cluster["lb_proc"].send_signal(1)  # SIGHUP: nginx's reload
        served_before = apps["app4"].served()
        load.run_phase("host-added", 6, grow)
    finally:
        load.stop()
    logs = _logs(cluster)

    for phase in ("steady", "host-lost", "host-back", "rolling-restart", "host-added"):
        assert load.count(phase) > 0, "no request completed during %s\n%s" % (phase, logs)
    # No idempotent request fails, whatever happens; a POST only when its host was lost under it.
    for phase in ("steady", "host-lost", "host-back", "rolling-restart", "host-added"):
        failed = load.failures(phase, "GET")
        assert not failed, "%d GETs failed during %s: %s\n%s" % (len(failed), phase, failed[:5], logs)
    for phase in ("steady", "host-back", "rolling-restart", "host-added"):
        failed = load.failures(phase, "POST", unless_during="host-lost")
        assert not failed, "%d POSTs failed during %s: %s\n%s" % (len(failed), phase, failed[:5], logs)
    lost = load.failures_during("host-lost", "POST")
    lost_posts = len(lost)
    assert lost_posts <= CLIENTS, lost

    # The new host took its share.
    assert apps["app4"].served() - served_before >= 5, "app4 served %d requests\n%s" % (
        apps["app4"].served() - served_before, logs)

    # Every POST that succeeded counted exactly once; one that failed at most once.
    ok_posts = sum(load.count(phase, "POST", ok=True) for phase in
                   ("steady", "host-lost", "host-back", "rolling-restart", "host-added"))
    visits = _get_json(client, base + "/api/visits/")["visits"] - visits_before
    assert ok_posts <= visits <= ok_posts + lost_posts, (ok_posts, lost_posts, visits)

    summary = {phase: {"requests": load.count(phase), "failed GET": len(load.failures(phase, "GET")),
                       "failed POST": len(load.failures(phase, "POST"))}
               for phase in ("steady", "host-lost", "host-back", "rolling-restart", "host-added")}
    summary["served by"] = {name: app.served() for name, app in apps.items()}
    summary["lost POSTs"] = [(r[0], r[4][:120]) for r in lost]
    print("cluster: " + json.dumps(summary))
