#!/usr/bin/python3
"""portico's benchmark harness: portico (one worker, core 0) against gunicorn, uWSGI and nginx on the
same core, wrk on core 1, interleaved rounds; and the *-all scenarios, where every server runs N
workers (N = the cores the harness may use) and servers and wrk share all cores. Writes
bench/results/latest.json, docs/benchmarks.md and docs/benchmarks.png.

    /usr/bin/python3 bench/run.py [--quick] [--scenarios a,b] [--rounds N] [--duration S]
"""

import argparse
import datetime
import json
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
APPS = os.path.join(BENCH, "apps")
PORTICO = os.path.join(ROOT, "build", "portico")
PYTHON = "/usr/bin/python3"
HOST = "127.0.0.1"
SERVER_CORE = "0"
CLIENT_CORE = "1"
# The *-all scenarios: every core the harness started with, for servers (N workers) and wrk alike.
CORES = sorted(os.sched_getaffinity(0))
NCORES = len(CORES)
ALL_CORES = ",".join(str(c) for c in CORES)

# Packages the harness needs, by the binary that proves they are installed.
APT_PACKAGES = {
    "/usr/sbin/nginx": "nginx",
    "/usr/bin/gunicorn": "gunicorn",
    "/usr/bin/uwsgi": "uwsgi",
    "/usr/lib/uwsgi/plugins/python3_plugin.so": "uwsgi-plugin-python3",
    "/usr/bin/wrk": "wrk",
}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def raiseNofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run(cmd, timeout=600, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


# ---------------------------------------------------------------------------------------------
# Installation and environment


def install():
    missing = [pkg for path, pkg in APT_PACKAGES.items() if not os.path.exists(path)]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        missing.append("python3-matplotlib")
    if missing:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        log(f"installing {' '.join(missing)} with apt-get")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        r = run(sudo + ["apt-get", "install", "-y"] + missing, env=env)
        if r.returncode != 0:
            run(sudo + ["apt-get", "update"], env=env)
            r = run(sudo + ["apt-get", "install", "-y"] + missing, env=env)
        if r.returncode != 0:
            log(f"apt-get failed (continuing, missing servers are skipped): {r.stderr.strip()[-300:]}")
    if not os.access(PORTICO, os.X_OK):
        log("building portico (release)")
        build = os.path.join(ROOT, "build")
        subprocess.run(["cmake", "-S", ROOT, "-B", build, "-G", "Ninja",
                        "-DCMAKE_BUILD_TYPE=RelWithDebInfo"], check=True)
        subprocess.run(["ninja", "-C", build, "portico"], check=True)


def machineInfo():
    info = {"model": "?", "cores": os.cpu_count(), "kernel": os.uname().release}
    try:
        for line in run(["lscpu"]).stdout.splitlines():
            if line.startswith("Model name:"):
                info["model"] = line.split(":", 1)[1].strip()
    except Exception:
        pass
    return info


def versions():
    def first(cmd):
        try:
            r = run(cmd, timeout=20)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except Exception:
            return "not installed"
    return {
        "portico": first([PORTICO, "--version"]),
        "nginx": first(["nginx", "-v"]),
        "gunicorn": first(["gunicorn", "--version"]),
        "uwsgi": first(["uwsgi", "--version"]),
        "python": first([PYTHON, "--version"]),
        "wrk": first(["wrk", "--version"]),
    }


def freePort():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Memory: RSS and PSS summed over every process of a server


def childrenMap():
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            ppid = int(stat[stat.rfind(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return children


def processTree(roots):
    children = childrenMap()
    out, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def memory(roots):
    rss = pss = 0
    pids = processTree(roots)
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return {"rss_kb": rss, "pss_kb": pss, "processes": len(pids)}


def cpuTicks(pids):
    """pid -> utime + stime (clock ticks, every thread of the process) from /proc/PID/stat."""
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            fields = stat[stat.rfind(")") + 2:].split()  # fields[0] is field 3 (state)
            out[pid] = int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            continue
    return out


def balance(ticks):
    """Each worker's CPU ticks relative to the workers' mean (1.0 = an even share)."""
    pids = sorted(ticks)
    mean = sum(ticks.values()) / len(pids) if pids else 0
    if mean <= 0:
        return None
    shares = [ticks[p] / mean for p in pids]
    return {"workers": len(pids), "ticks": [ticks[p] for p in pids], "shares": shares,
            "min_share": min(shares), "shown": " / ".join(f"{v:.2f}" for v in shares)}


class MemorySampler:
    """Samples a server's process-tree memory on a harness thread while wrk runs; keeps the peak."""

    def __init__(self, roots, interval=0.25):
        self.roots_ = roots
        self.interval_ = interval
        self.peak_ = {"rss_kb": 0, "pss_kb": 0, "processes": 0}
        self.stop_ = threading.Event()
        self.thread_ = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop_.is_set():
            m = memory(self.roots_)
            for k in ("rss_kb", "pss_kb", "processes"):
                self.peak_[k] = max(self.peak_[k], m[k])
            self.stop_.wait(self.interval_)

    def __enter__(self):
        self.thread_.start()
        return self

    def __exit__(self, *exc):
        self.stop_.set()
        self.thread_.join()


# ---------------------------------------------------------------------------------------------
# Servers


# The TLS servers' certificates are self-signed: readiness is checked without verification.
UNVERIFIED = ssl.create_default_context()
UNVERIFIED.check_hostname = False
UNVERIFIED.verify_mode = ssl.CERT_NONE


def preexec():
    raiseNofile()
    os.setsid()


class Server:
    """One server under test (one or more processes, e.g. nginx and its backend); owned by the
    harness's main thread, started on `cores` (core 0, or all cores for the *-all scenarios) and
    always stopped."""

    def __init__(self, key, label, path, workdir, cores=SERVER_CORE):
        self.key = key
        self.label = label
        self.path = path
        self.scheme = "http"  # https for the TLS scenarios
        self.readyPath = path  # what start() polls for a 200 (a POST-only app answers GET otherwise)
        self.cores = cores
        self.port = freePort()
        self.workdir = os.path.join(workdir, key)
        os.makedirs(self.workdir, exist_ok=True)
        self.commands = []   # (argv, cwd, cores, measured) in start order
        self.configs = {}    # name -> text, for the report
        self.procs = []
        self.workerProc = None  # index in procs of the process whose children are the app workers

    @property
    def url(self):
        return f"{self.scheme}://{HOST}:{self.port}{self.path}"

    def add(self, argv, cwd=None, workers=False, cores=None, measured=True):
        """workers: this process's children are the workers that run the app (worker balance).
        cores: where this process runs when not the server's cores (a proxy scenario's backend).
        measured: False for a backend every contender shares, left out of CPU and memory."""
        if workers:
            self.workerProc = len(self.commands)
        self.commands.append((argv, cwd, cores or self.cores, measured))

    def start(self, timeout=60):
        for i, (argv, cwd, cores, _) in enumerate(self.commands):
            logf = open(os.path.join(self.workdir, f"proc{i}.log"), "ab")
            self.procs.append(subprocess.Popen(["taskset", "-c", cores] + argv, cwd=cwd,
                                               stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                               preexec_fn=preexec))
            logf.close()
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{self.label} exited with {p.returncode}; see {self.workdir}")
            try:
                req = urllib.request.Request(f"{self.scheme}://{HOST}:{self.port}{self.readyPath}", method="GET")
                with urllib.request.urlopen(req, timeout=5, context=UNVERIFIED) as r:
                    if r.status == 200:
                        return
            except Exception as e:  # not listening yet
                last = e
            time.sleep(0.2)
        raise RuntimeError(f"{self.label} not ready after {timeout}s ({last}); see {self.workdir}")

    def roots(self):
        """The measured processes (a shared backend is not)."""
        return [p.pid for p, (_, _, _, measured) in zip(self.procs, self.commands) if measured]

    def workerPids(self):
        """The app's worker processes: the children of the master (portico, gunicorn, uWSGI with
        --master; for nginx → backend, the backend's master)."""
        if self.workerProc is None or self.workerProc >= len(self.procs):
            return []
        return sorted(childrenMap().get(self.procs[self.workerProc].pid, []))

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # also reaps stray workers of the group
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.procs = []

    def describe(self):
        return {"commands": [" ".join(["taskset", "-c", cores] + a) for a, _, cores, _ in self.commands],
                "configs": self.configs}


class Context:
    """What server builders need: the temporary tree, the apps and the static files."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.django = None
        self.static = None
        self.certs = {}

    def staticDir(self):
        if self.static is None:
            self.static = os.path.join(self.workdir, "static")
            os.makedirs(self.static, exist_ok=True)
            with open(os.path.join(self.static, "13b.txt"), "wb") as f:
                f.write(b"Hello, world!")
            for name, size in (("100k.bin", 100 * 1024), ("1m.bin", 1024 * 1024)):
                with open(os.path.join(self.static, name), "wb") as f:
                    f.write(os.urandom(size))
        return self.static

    def certificate(self, alg):
        """(certificate, key) for alg "ecdsa" (P-256) or "rsa" (2048 bits): self-signed for
        localhost, made once per run with the openssl CLI; both servers load the same files."""
        if alg not in self.certs:
            d = os.path.join(self.workdir, "tls")
            os.makedirs(d, exist_ok=True)
            crt, key = os.path.join(d, f"{alg}.crt"), os.path.join(d, f"{alg}.key")
            newkey = {"ecdsa": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
                      "rsa": ["-newkey", "rsa:2048"]}[alg]
            r = run(["openssl", "req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=localhost",
                     "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"] + newkey
                    + ["-keyout", key, "-out", crt])
            if r.returncode != 0:
                raise RuntimeError(f"openssl req failed: {r.stderr[-300:]}")
            os.chmod(key, 0o644)  # nginx's worker (user root or not) and portico's read it
            self.certs[alg] = (crt, key)
        return self.certs[alg]

    def djangoDir(self):
        if self.django is None:
            target = os.path.join(self.workdir, "django")
            shutil.copytree(os.path.join(ROOT, "examples", "django"), target,
                            ignore=shutil.ignore_patterns("db.sqlite3", "staticfiles", "__pycache__"))
            log("setting up the example Django site (migrate, seed, collectstatic)")
            r = run(["sh", os.path.join(target, "setup.sh")], timeout=300,
                    env=dict(os.environ, PYTHON=PYTHON))
            if r.returncode != 0:
                raise RuntimeError(f"django setup failed: {r.stderr[-500:]}")
            self.django = target
        return self.django


# app: (chdir, wsgi module:callable, wsgi file for uWSGI, url path)
def appSpec(ctx, app):
    if app == "hello":
        return APPS, "hello:application", "hello.py", "/"
    if app == "upload":
        return APPS, "upload:application", "upload.py", "/"
    if app == "django":
        return ctx.djangoDir(), "mysite.wsgi:application", None, "/api/books/"
    if app == "admin":  # the admin's login form: a template render, a CSRF cookie, no login needed
        return ctx.djangoDir(), "mysite.wsgi:application", None, "/admin/login/"
    if app == "django-upload":  # multipart POST (catalog.views.upload); POST only
        return ctx.djangoDir(), "mysite.wsgi:application", None, "/upload/"
    raise ValueError(app)


def nginxConf(server, body, static_alias=None, workers=1, name="nginx.conf", **add):
    """An nginx process of `server` with `body` in http; `name` and `add` (Server.add's cores and
    measured) for a second nginx, such as a proxy scenario's backend."""
    w = server.workdir
    user = "user root;\n" if os.geteuid() == 0 else ""
    pid = f"{w}/nginx.pid" if name == "nginx.conf" else f"{w}/{name}.pid"
    conf = f"""{user}daemon off;
master_process on;
worker_processes {workers};
worker_rlimit_nofile 20000;
pid {pid};
error_log {w}/error.log warn;
events {{ worker_connections 20000; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75;
    keepalive_requests 1000000;
    client_max_body_size 0;
    client_body_temp_path {w}/client_body;
    proxy_temp_path {w}/proxy;
    fastcgi_temp_path {w}/fastcgi;
    uwsgi_temp_path {w}/uwsgi;
    scgi_temp_path {w}/scgi;
{body}
}}
"""
    path = os.path.join(w, name)
    with open(path, "w") as f:
        f.write(conf)
    server.configs[name] = conf
    server.add(["nginx", "-c", path, "-p", w + "/", "-e", f"{w}/error.log"], **add)


# The TLS scenarios: both servers get these lines, the same certificate and the same protocols,
# ciphers and curves (nginx 1.22's defaults, spelled out); sessions are each server's default.
TLS_SETTINGS = ["ssl_protocols TLSv1.2 TLSv1.3;", "ssl_ciphers HIGH:!aNULL:!MD5;", "ssl_ecdh_curve auto;"]


def listenLines(ctx, port, tls):
    """The server block's listen line, with the TLS lines when tls names a certificate."""
    if not tls:
        return f"listen {HOST}:{port} backlog=4096;"
    crt, key = ctx.certificate(tls)
    return "\n        ".join([f"listen {HOST}:{port} ssl backlog=4096;", f"ssl_certificate {crt};",
                               f"ssl_certificate_key {key};"] + TLS_SETTINGS)


def porticoConf(server, ctx, tls, location, workers=1, http_extra=""):
    """portico -c: the nginx.conf shape the TLS and proxy scenarios give nginx too (the gunicorn
    flags have no TLS and no proxy); http_extra goes into http (an upstream block)."""
    w = server.workdir
    conf = f"""worker_processes {workers};
pid {w}/portico.pid;
error_log {w}/error.log warn;
events {{ worker_connections 20000; }}
http {{
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75;
    keepalive_requests 1000000;
    client_max_body_size 0;
    {http_extra}
    server {{
        {listenLines(ctx, server.port, tls)}
        location / {{ {location} }}
    }}
}}
"""
    path = os.path.join(w, "portico.conf")
    with open(path, "w") as f:
        f.write(conf)
    server.configs["portico.conf"] = conf
    server.add([PORTICO, "-c", path], workers=True)


def makeServer(ctx, kind, app, workers=1, cores=SERVER_CORE, tls=None):
    """kind: portico, gunicorn-sync, gunicorn-gthread, uwsgi-http (--http11-socket), uwsgi-http10
    (--http-socket), nginx-gunicorn, nginx-uwsgi, nginx-static, nginx-return. app: hello, django,
    admin, upload, django-upload, or static:FILE. workers: worker processes of every server (nginx's
    and its backend's); with more than one, uWSGI runs with --master as a user would (its workers
    are then the master's children, as gunicorn's and portico's are)."""
    key = f"{kind}.{app.replace(':', '-')}" + (f".w{workers}" if workers != 1 else "") + \
        (f".tls-{tls}" if tls else "")
    workdir = ctx.workdir
    s = makeServerAt(ctx, kind, app, workers, cores, tls, key, workdir)
    if tls:
        s.scheme = "https"
    return s


def makeServerAt(ctx, kind, app, workers, cores, tls, key, workdir):
    """makeServer's body: tls (None, "ecdsa", "rsa") puts nginx on an ssl listener and portico on
    the same configuration (-c)."""
    w = str(workers)
    if kind in PROXY_KINDS:
        return proxyServer(ctx, kind, app, workers, cores, key, workdir)
    if app.startswith("static:"):
        path = "/" + app.split(":", 1)[1]
        s = Server(key, kind, path, workdir, cores)
        d = ctx.staticDir()
        if kind == "portico" and tls:
            porticoConf(s, ctx, tls, f"root {d};", workers)
        elif kind == "portico":
            s.add([PORTICO, "--bind", f"{HOST}:{s.port}", "-w", w, "--keep-alive", "75",
                   "--static", f"/={d}"], workers=True)
        elif kind == "nginx-static":
            nginxConf(s, f"    server {{\n        {listenLines(ctx, s.port, tls)}\n"
                         f"        location / {{ root {d}; }}\n    }}", workers=workers)
        else:
            raise ValueError(kind)
        return s
    if kind == "nginx-return":
        s = Server(key, kind, "/", workdir, cores)
        nginxConf(s, f"    server {{\n        {listenLines(ctx, s.port, tls)}\n"
                     f"        location / {{ default_type text/plain; return 200 \"Hello, world!\"; }}\n    }}",
                  workers=workers)
        return s
    chdir, module, wsgi_file, path = appSpec(ctx, app)
    s = Server(key, kind, path, workdir, cores)
    if app == "django-upload":
        s.readyPath = "/api/books/"
    uwsgi_app = ["--wsgi-file", wsgi_file] if wsgi_file else ["--module", module]
    # --die-on-term: with --master, uWSGI 2.0 takes SIGTERM for a reload, not a stop.
    uwsgi_procs = ["--processes", w] + (["--master", "--die-on-term"] if workers > 1 else [])
    django = app in ("django", "admin", "django-upload")
    static_extra = []
    if tls and kind not in ("portico", "nginx-gunicorn", "nginx-uwsgi"):
        raise ValueError(f"{kind} has no TLS set-up in the bench")
    if kind == "portico" and tls:
        if app != "hello":
            raise ValueError(f"TLS scenarios serve hello or static files, not {app}")
        porticoConf(s, ctx, tls, f"wsgi_app {module}; wsgi_chdir {chdir};", workers)
    elif kind in ("portico", "portico-metrics"):
        argv = [PORTICO, "--bind", f"{HOST}:{s.port}", "-w", w, "--keep-alive", "75",
                "--chdir", chdir]
        if django:
            argv += ["--static", "/static/=staticfiles/"]
        if app in ("upload", "django-upload"):
            argv += ["--limit-request-body", "0"]
        if kind == "portico-metrics":
            # The metrics listener, scraped every second (Prometheus' default is 15 s) by a
            # curl loop on the server's cores, measured with the server.
            metrics = freePort()
            argv += ["--metrics-bind", f"{HOST}:{metrics}"]
            s.add(["sh", "-c", f"while sleep 1; do curl -s -o /dev/null http://{HOST}:{metrics}/metrics; done"])
        s.add(argv + [module], workers=True)
    elif kind == "gunicorn-sync":
        s.add(["gunicorn", "-w", w, "--bind", f"{HOST}:{s.port}", "--chdir", chdir, module], workers=True)
    elif kind == "gunicorn-gthread":
        s.add(["gunicorn", "-w", w, "-k", "gthread", "--threads", "4", "--bind", f"{HOST}:{s.port}",
               "--chdir", chdir, module], workers=True)
    elif kind in ("uwsgi-http", "uwsgi-http10"):
        socket_flag = "--http11-socket" if kind == "uwsgi-http" else "--http-socket"
        s.add(["uwsgi", "--plugin", "python3", socket_flag, f"{HOST}:{s.port}", "--chdir", chdir]
              + uwsgi_app + uwsgi_procs + ["--disable-logging", "--listen", "1024"], workers=True)
    elif kind == "nginx-gunicorn":
        backend = freePort()
        s.add(["gunicorn", "-w", w, "--bind", f"{HOST}:{backend}", "--chdir", chdir, module], workers=True)
        if django:
            static_extra = [f"        location /static/ {{ alias {chdir}/staticfiles/; }}"]
        nginxConf(s, "\n".join([
            f"    upstream backend {{ server {HOST}:{backend}; keepalive 16; }}",
            f"    server {{\n        {listenLines(ctx, s.port, tls)}"] + static_extra + [
            "        location / {",
            "            proxy_pass http://backend;",
            "            proxy_http_version 1.1;",
            "            proxy_set_header Connection \"\";",
            "            proxy_set_header Host $host;",
            "        }\n    }"]), workers=workers)
    elif kind in ("nginx-uwsgi", "nginx-portico-uwsgi"):
        sock = os.path.join(s.workdir, "uwsgi.sock")
        if kind == "nginx-uwsgi":
            s.add(["uwsgi", "--plugin", "python3", "--socket", sock, "--chmod-socket=666", "--chdir", chdir]
                  + uwsgi_app + uwsgi_procs + ["--disable-logging", "--listen", "1024"], workers=True)
        else:  # portico in uWSGI's place, nginx unchanged
            s.add([PORTICO, "--protocol", "uwsgi", "--bind", f"unix:{sock}", "-w", w, "--chdir", chdir,
                   "--backlog", "1024", module], workers=True)
        if django:
            static_extra = [f"        location /static/ {{ alias {chdir}/staticfiles/; }}"]
        nginxConf(s, "\n".join([
            f"    upstream backend {{ server unix:{sock}; }}",
            f"    server {{\n        {listenLines(ctx, s.port, tls)}"] + static_extra + [
            "        location / {",
            "            include /etc/nginx/uwsgi_params;",
            "            uwsgi_pass backend;",
            "        }\n    }"]), workers=workers)
    else:
        raise ValueError(kind)
    return s


# The proxy scenarios' fronts: portico or nginx on the server's core, in front of a backend on the
# client's core that both share (nginx serving static:FILE over keep-alive HTTP/1.1, or uWSGI
# --socket serving hello over a unix socket); the backend is not measured (CPU, memory).
PROXY_KINDS = ("portico-proxy", "nginx-proxy", "portico-uwsgi-pass", "nginx-uwsgi-pass",
               "portico-proxy-resolved", "nginx-proxy-resolved")


class NameServer:
    """A one-answer DNS server for the -resolved proxy kinds: every A query is answered with
    127.0.0.1 (TTL one hour), every other with no records; a thread of the bench process."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            data, peer = self.sock.recvfrom(512)
            end = data.index(b"\0", 12) + 5
            qtype = int.from_bytes(data[end - 4:end - 2], "big")
            answers = (b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\x7f\x00\x00\x01"
                       if qtype == 1 else b"")
            head = data[:2] + b"\x81\x80\x00\x01" + (b"\x00\x01" if answers else b"\x00\x00")
            self.sock.sendto(head + b"\x00\x00\x00\x00" + data[12:end] + answers, peer)


NAME_SERVER = None


def proxyServer(ctx, kind, app, workers, cores, key, workdir):
    global NAME_SERVER
    if "-proxy" in kind:
        path = "/" + app.split(":", 1)[1]
        s = Server(key, kind, path, workdir, cores)
        backend = freePort()
        nginxConf(s, f"    server {{\n        listen {HOST}:{backend} backlog=4096;\n"
                     f"        location / {{ root {ctx.staticDir()}; }}\n    }}",
                  name="backend.conf", cores=CLIENT_CORE, measured=False)
        upstream = f"upstream backend {{ server {HOST}:{backend}; keepalive 32; }}"
        location = ("proxy_pass http://backend; proxy_http_version 1.1; "
                    "proxy_set_header Connection \"\";")
        if kind.endswith("-resolved"):
            # proxy_pass with variables to a name the resolver answers (cached after the first
            # request): no upstream block, so no kept-alive connections, on either front.
            NAME_SERVER = NAME_SERVER or NameServer()
            upstream = ""
            location = (f"resolver {HOST}:{NAME_SERVER.port}; set $backend backend.test; "
                        f"proxy_pass http://$backend:{backend};")
    else:
        chdir, _module, wsgi_file, path = appSpec(ctx, app)
        s = Server(key, kind, path, workdir, cores)
        sock = os.path.join(s.workdir, "uwsgi.sock")
        s.add(["uwsgi", "--plugin", "python3", "--socket", sock, "--chmod-socket=666", "--chdir", chdir,
               "--wsgi-file", wsgi_file, "--processes", "1", "--disable-logging", "--listen", "1024"],
              cores=CLIENT_CORE, measured=False)
        upstream = f"upstream backend {{ server unix:{sock}; }}"
        location = "include /etc/nginx/uwsgi_params; uwsgi_pass backend;"
    if kind.startswith("portico-"):
        porticoConf(s, ctx, None, location, workers, http_extra=upstream)
    else:
        nginxConf(s, f"    {upstream}\n    server {{\n        {listenLines(ctx, s.port, None)}\n"
                     f"        location / {{ {location} }}\n    }}", workers=workers)
    return s


def available(kind):
    need = {"portico": [PORTICO], "portico-metrics": [PORTICO, "curl"], "gunicorn-sync": ["gunicorn"], "gunicorn-gthread": ["gunicorn"],
            "uwsgi-http": ["uwsgi"], "uwsgi-http10": ["uwsgi"], "nginx-gunicorn": ["nginx", "gunicorn"],
            "nginx-uwsgi": ["nginx", "uwsgi"], "nginx-portico-uwsgi": ["nginx", PORTICO], "nginx-static": ["nginx"], "nginx-return": ["nginx"],
            "portico-proxy": [PORTICO, "nginx"], "nginx-proxy": ["nginx"],
            "portico-proxy-resolved": [PORTICO, "nginx"], "nginx-proxy-resolved": ["nginx"],
            "portico-uwsgi-pass": [PORTICO, "uwsgi"], "nginx-uwsgi-pass": ["nginx", "uwsgi"]}
    for b in need[kind]:
        if not (shutil.which(b) or os.access(b, os.X_OK)):
            return False
    if "uwsgi" in kind and not os.path.exists("/usr/lib/uwsgi/plugins/python3_plugin.so"):
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Scenarios: contenders are (kind, app, connections[, workers]); portico's contenders have kind
# "portico". A scenario with "allcore" runs every server with NCORES workers (unless a contender
# names its own count) on all cores, and wrk with NCORES threads on all cores as well.

APP_INCUMBENTS = ["gunicorn-sync", "gunicorn-gthread", "uwsgi-http", "nginx-gunicorn", "nginx-uwsgi"]
# On all cores uWSGI runs both ways a user would: --http11-socket (keep-alive; a non-threaded
# process serves one connection at a time) and --http-socket (one request per connection).
ALLCORE_INCUMBENTS = ["gunicorn-sync", "gunicorn-gthread", "uwsgi-http", "uwsgi-http10",
                      "nginx-gunicorn", "nginx-uwsgi"]
SCENARIOS = {
    "hello64": {"title": "hello (13 B WSGI app), 64 connections",
                "contenders": [("portico", "hello", 64)] + [(k, "hello", 64) for k in APP_INCUMBENTS]
                + [("nginx-return", "hello", 64)]},
    "hello1": {"title": "hello (13 B WSGI app), 1 connection",
               "contenders": [("portico", "hello", 1)] + [(k, "hello", 1) for k in APP_INCUMBENTS]
               + [("nginx-return", "hello", 1)]},
    "django": {"title": "Django JSON view /api/books/ (SQLite), 64 connections",
               "contenders": [("portico", "django", 64)] + [(k, "django", 64) for k in APP_INCUMBENTS]},
    "static13b": {"title": "static file, 13 B, 64 connections",
                  "contenders": [("portico", "static:13b.txt", 64), ("nginx-static", "static:13b.txt", 64)]},
    "static100k": {"title": "static file, 100 KB, 64 connections",
                   "contenders": [("portico", "static:100k.bin", 64), ("nginx-static", "static:100k.bin", 64)]},
    "static1m": {"title": "static file, 1 MB, 64 connections",
                 "contenders": [("portico", "static:1m.bin", 64), ("nginx-static", "static:1m.bin", 64)]},
    # portico as a uwsgi server: the same nginx (uwsgi_pass to a unix socket, Debian's uwsgi_params)
    # in front of portico --protocol uwsgi and of uWSGI --socket; the ratio's numerator is portico's.
    "uwsgi-server": {"title": "hello (13 B WSGI app) through nginx's uwsgi_pass: portico --protocol uwsgi "
                              "vs uWSGI --socket, 64 connections", "numerator": "nginx-portico-uwsgi",
                     "contenders": [("nginx-portico-uwsgi", "hello", 64), ("nginx-uwsgi", "hello", 64)]},
    # proxy_pass / uwsgi_pass: portico and nginx as the front on core 0, the same backend on core 1
    # (with wrk); the numerator is portico's front, the server CPU per request the front's alone.
    "proxy13b": {"title": "proxy_pass to a keep-alive nginx backend, 13 B file, 64 and 1,000 connections",
                 "numerator": "portico-proxy",
                 "contenders": [(k, "static:13b.txt", n) for n in (64, 1000)
                                for k in ("portico-proxy", "nginx-proxy")]},
    "proxy100k": {"title": "proxy_pass to a keep-alive nginx backend, 100 KB file, 64 and 1,000 connections",
                  "numerator": "portico-proxy",
                  "contenders": [(k, "static:100k.bin", n) for n in (64, 1000)
                                 for k in ("portico-proxy", "nginx-proxy")]},
    "proxy-resolved": {"title": "proxy_pass http://$backend:PORT (a name found by `resolver`, then cached) "
                                "to an nginx backend, 13 B file, 64 connections",
                       "numerator": "portico-proxy-resolved",
                       "contenders": [(k, "static:13b.txt", 64)
                                      for k in ("portico-proxy-resolved", "nginx-proxy-resolved")]},
    "uwsgi-pass": {"title": "uwsgi_pass to uWSGI --socket (hello, one process on core 1), 64 and 1,000 connections",
                   "numerator": "portico-uwsgi-pass",
                   "contenders": [(k, "hello", n) for n in (64, 1000)
                                  for k in ("portico-uwsgi-pass", "nginx-uwsgi-pass")]},
    # What the Prometheus metrics cost: portico with --metrics-bind, scraped every second, vs
    # portico without (the counters are always kept; the scrapes are the difference).
    "metrics-cost": {"title": "hello (13 B WSGI app), 64 connections: with --metrics-bind scraped each second "
                              "vs without", "numerator": "portico-metrics",
                     "contenders": [("portico-metrics", "hello", 64), ("portico", "hello", 64)]},
    "conns1000": {"title": "hello at 1,000 vs 64 keep-alive connections",
                  "contenders": [("portico", "hello", 64), ("portico", "hello", 1000),
                                 ("nginx-return", "hello", 64), ("nginx-return", "hello", 1000)]},
    "idle10k": {"title": "10,000 idle keep-alive connections (memory)", "idle": 10000,
                "contenders": [("portico", "hello", 0), ("nginx-return", "hello", 0)]},
    "upload": {"title": "10 MB POST read through wsgi.input, 8 connections", "script": "post10m.lua",
               "contenders": [("portico", "upload", 8), ("gunicorn-sync", "upload", 8),
                              ("uwsgi-http", "upload", 8), ("nginx-gunicorn", "upload", 8),
                              ("nginx-uwsgi", "upload", 8)]},
    "django-upload": {"title": "Django multipart upload /upload/ (one 10 MB file, streamed to a temporary "
                               "file), 8 connections", "script": "multipart10m.lua",
                      "contenders": [(k, "django-upload", 8) for k in
                                     ("portico", "gunicorn-sync", "uwsgi-http", "nginx-gunicorn", "nginx-uwsgi")]},
    "hello-all": {"title": f"hello (13 B WSGI app), {NCORES} workers, all cores, 64 connections",
                  "allcore": True,
                  "contenders": [("portico", "hello", 64)] + [(k, "hello", 64) for k in ALLCORE_INCUMBENTS]
                  + [("nginx-return", "hello", 64)]},
    "hello-scale": {"title": f"hello, portico -w {NCORES} vs -w 1, all cores, 64 connections",
                    "allcore": True,
                    "contenders": [("portico", "hello", 64), ("portico", "hello", 64, 1)]},
    "django-all": {"title": f"Django JSON view /api/books/ (SQLite), {NCORES} workers, all cores, 64 connections",
                   "allcore": True,
                   "contenders": [("portico", "django", 64)] + [(k, "django", 64) for k in ALLCORE_INCUMBENTS]},
    "admin-all": {"title": f"Django admin login page /admin/login/ (template render), {NCORES} workers, "
                           "all cores, 64 connections",
                  "allcore": True,
                  "contenders": [("portico", "admin", 64)] + [(k, "admin", 64) for k in ALLCORE_INCUMBENTS]},
    # TLS: one worker on core 0 each, the same certificate and ssl_* lines (TLS_SETTINGS); nginx
    # serves the files itself and proxies hello to uWSGI or gunicorn, as hello64 does.
    "tls-handshake-ecdsa": {"title": "full TLS handshakes/s, ECDSA P-256 certificate (a new connection and "
                                     "handshake per request, no resumption; 13 B file, Connection: close), "
                                     "32 connections",
                            "tls": "ecdsa", "handshakes": True,
                            "contenders": [("portico", "static:13b.txt", 32), ("nginx-static", "static:13b.txt", 32)]},
    "tls-handshake-rsa": {"title": "full TLS handshakes/s, RSA-2048 certificate (a new connection and "
                                   "handshake per request, no resumption; 13 B file, Connection: close), "
                                   "32 connections",
                          "tls": "rsa", "handshakes": True,
                          "contenders": [("portico", "static:13b.txt", 32), ("nginx-static", "static:13b.txt", 32)]},
    "tls-hello": {"title": "hello (13 B WSGI app) over TLS (ECDSA), 64 keep-alive connections", "tls": "ecdsa",
                  "contenders": [("portico", "hello", 64), ("nginx-uwsgi", "hello", 64),
                                 ("nginx-gunicorn", "hello", 64)]},
    "tls-static13b": {"title": "static file, 13 B, over TLS (ECDSA), 64 keep-alive connections", "tls": "ecdsa",
                      "contenders": [("portico", "static:13b.txt", 64), ("nginx-static", "static:13b.txt", 64)]},
    "tls-static100k": {"title": "static file, 100 KB, over TLS (ECDSA), 64 keep-alive connections", "tls": "ecdsa",
                       "contenders": [("portico", "static:100k.bin", 64), ("nginx-static", "static:100k.bin", 64)]},
    "tls-static1m": {"title": "static file, 1 MB, over TLS (ECDSA), 64 keep-alive connections", "tls": "ecdsa",
                     "contenders": [("portico", "static:1m.bin", 64), ("nginx-static", "static:1m.bin", 64)]},
}
QUICK_SCENARIOS = ["hello64", "static100k"]
# --scenarios tls: every TLS scenario.
TLS_SCENARIOS = [n for n in SCENARIOS if n.startswith("tls-")]


def scenarioWorkers(sc):
    return NCORES if sc.get("allcore") else 1


def contenderWorkers(sc, contender):
    return contender[3] if len(contender) > 3 else scenarioWorkers(sc)

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parseWrk(text):
    out = {"rps": None, "p50_ms": None, "p99_ms": None, "errors": 0, "non2xx": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        if m:
            out[key] = float(m.group(1)) * UNITS[m.group(2)]
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["errors"] = sum(int(x) for x in m.groups())
    m = re.search(r"^\s*(\d+) requests in ", text, re.M)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out["non2xx"] = int(m.group(1))
    return out


def wrk(url, conns, duration, script=None, allcore=False):
    cores, threads = (ALL_CORES, min(NCORES, max(conns, 1))) if allcore else (CLIENT_CORE, 1)
    cmd = ["taskset", "-c", cores, "wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency",
           "--timeout", "10s"]
    if script:
        cmd += ["-s", os.path.join(BENCH, script)]
    cmd.append(url)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, preexec_fn=raiseNofile)
    res = parseWrk(r.stdout)
    res["command"] = " ".join(cmd)
    if res["rps"] is None:
        res["stderr"] = (r.stderr or r.stdout)[-300:]
    return res


def handshakeClient(ctx):
    """bench/tls_handshakes.c compiled once per run into the temporary tree (cc, libssl-dev)."""
    exe = os.path.join(ctx.workdir, "tls_handshakes")
    if not os.path.exists(exe):
        r = run(["cc", "-O2", "-o", exe, os.path.join(BENCH, "tls_handshakes.c"), "-lssl", "-lcrypto"])
        if r.returncode != 0:
            raise RuntimeError(f"cannot build bench/tls_handshakes.c: {r.stderr[-400:]}")
    return exe


def handshakes(ctx, server, conns, duration):
    """Full handshakes (each with one request on a new connection) per second, as wrk() reports
    requests: the client on core 1, one thread."""
    cmd = ["taskset", "-c", CLIENT_CORE, handshakeClient(ctx), HOST, str(server.port), server.path,
           str(conns), str(duration)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, preexec_fn=raiseNofile)
    res = {"rps": None, "p50_ms": None, "p99_ms": None, "errors": 0, "non2xx": 0,
           "command": " ".join(cmd[:3] + [os.path.join("bench", "tls_handshakes")] + cmd[4:])}
    m = re.search(r"handshakes (\d+) errors (\d+) seconds ([\d.]+)", r.stdout)
    if m and int(m.group(1)) > 0:
        res.update(rps=int(m.group(1)) / float(m.group(3)), requests=int(m.group(1)), errors=int(m.group(2)))
    else:
        res["stderr"] = (r.stderr or r.stdout)[-300:]
    return res


def treeCpuSeconds(server):
    """On-CPU time of every thread of every process of the server (nginx and its backend alike),
    in seconds: /proc/PID/task/TID/schedstat counts nanoseconds, where /proc/PID/stat's utime +
    stime count 10 ms ticks (too coarse for a second-long round)."""
    total = 0
    for pid in processTree(server.roots()):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return total / 1e9


def contenderLabel(kind, conns, workers, scenario):
    label = kind
    if len({contenderWorkers(scenario, c) for c in scenario["contenders"] if c[0] == kind}) > 1:
        label += f" -w {workers}"
    if len({c[2] for c in scenario["contenders"]}) > 1:
        label += f" @{conns}"
    return label


def runIdle(server, count):
    base = memory(server.roots())
    helper = subprocess.Popen(["taskset", "-c", CLIENT_CORE, PYTHON, os.path.join(BENCH, "idle_conns.py"),
                               HOST, str(server.port), str(count), server.path],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              preexec_fn=raiseNofile)
    try:
        line = ""
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and not line:
            line = helper.stdout.readline().strip()
            if helper.poll() is not None:
                break
        opened = int(line.split()[1]) if line.startswith("open") else 0
        time.sleep(1)
        loaded = memory(server.roots())
        helper.stdin.write("close\n")
        helper.stdin.flush()
        helper.wait(timeout=60)
    finally:
        if helper.poll() is None:
            helper.kill()
            helper.wait()
    time.sleep(1)
    after = memory(server.roots())
    return {"connections": opened, "idle": base, "with_connections": loaded, "after_close": after,
            "rss_growth_kb": loaded["rss_kb"] - base["rss_kb"],
            "pss_growth_kb": loaded["pss_kb"] - base["pss_kb"]}


def loadAverage():
    """The 1-minute load average (the machine is shared: how busy it was around a scenario)."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def runScenario(name, ctx, rounds, duration, warmup, notes):
    sc = SCENARIOS[name]
    log(f"scenario {name}: {sc['title']}")
    allcore = bool(sc.get("allcore"))
    servers, contenders = {}, []
    result = {"title": sc["title"], "contenders": [], "servers": {}, "allcore": allcore,
              "tls": sc.get("tls"), "handshakes": bool(sc.get("handshakes"))}
    try:
        for contender in sc["contenders"]:
            kind, app, conns = contender[:3]
            workers = contenderWorkers(sc, contender)
            label = contenderLabel(kind, conns, workers, sc)
            sname = label.split(" @")[0]  # kind, with -w N when the scenario runs it with several counts
            if not available(kind):
                notes.append(f"{name}: {kind} skipped (not installed)")
                log(f"  skip {kind}: not installed")
                continue
            skey = (kind, app, workers)
            if skey not in servers:
                s = makeServer(ctx, kind, app, workers, ALL_CORES if allcore else SERVER_CORE, sc.get("tls"))
                log(f"  start {sname} on :{s.port}")
                try:
                    s.start()
                except Exception as e:
                    notes.append(f"{name}: {sname} failed to start: {e}")
                    log(f"  {sname} failed to start: {e}")
                    s.stop()
                    continue
                servers[skey] = s
                result["servers"][sname] = dict(s.describe(), idle_memory=memory(s.roots()), workers=workers)
            contenders.append({"kind": kind, "app": app, "conns": conns, "workers": workers,
                               "server": servers[skey], "server_name": sname, "label": label,
                               "rounds": [], "ticks": {}})
        if sc.get("idle"):
            for c in contenders:
                log(f"  {c['label']}: opening {sc['idle']} idle keep-alive connections")
                c["idle"] = runIdle(c["server"], sc["idle"])
                log(f"    {c['idle']['connections']} open; RSS +{c['idle']['rss_growth_kb'] / 1024:.1f} MB")
        else:
            def load(c, seconds, conns):
                if sc.get("handshakes"):
                    return handshakes(ctx, c["server"], conns, seconds)
                return wrk(c["server"].url, conns, seconds, sc.get("script"), allcore)

            for c in contenders:
                log(f"  warm-up {c['label']} ({warmup:g} s)")
                load(c, warmup, min(c["conns"], 64) or 1)
            for r in range(rounds):
                for c in contenders:
                    # Worker balance: each worker's CPU ticks over the measured run alone.
                    before = cpuTicks(c["server"].workerPids()) if c["workers"] > 1 else {}
                    cpu0 = treeCpuSeconds(c["server"])
                    with MemorySampler(c["server"].roots()) as sampler:
                        res = load(c, duration, c["conns"])
                    cpu = treeCpuSeconds(c["server"]) - cpu0
                    res["memory_peak"] = dict(sampler.peak_)
                    # Server CPU per request: every process of the server over this run ÷ requests.
                    if res.get("requests"):
                        res["cpu_s"] = cpu
                        res["cpu_us"] = cpu / res["requests"] * 1e6
                        res["busy"] = cpu / duration
                    if before:
                        after = cpuTicks(before)
                        delta = {pid: after[pid] - before[pid] for pid in before if pid in after}
                        for pid, t in delta.items():
                            c["ticks"][pid] = c["ticks"].get(pid, 0) + t
                        res["balance"] = balance(delta)
                    c["rounds"].append(res)
                    rps = f"{res['rps']:.0f}" if res["rps"] is not None else "FAILED"
                    log(f"  round {r + 1}/{rounds} {c['label']:<24} {rps:>9} req/s  "
                        f"p99 {fmtMs(res['p99_ms'])} ms  RSS {res['memory_peak']['rss_kb'] / 1024:.1f} MB"
                        + (f"  {res['cpu_us']:.1f} µs/req, core {res['busy']:.0%} busy" if res.get("cpu_us") else "")
                        + (f"  workers {res['balance']['shown']}" if res.get("balance") else "")
                        + (f"  errors {res['errors']}" if res["errors"] else "")
                        + (f"  non-2xx {res['non2xx']}" if res["non2xx"] else ""))
    finally:
        for s in servers.values():
            s.stop()
    for c in contenders:
        entry = {k: c[k] for k in ("kind", "app", "conns", "workers", "label", "server_name")}
        if c["ticks"]:
            entry["balance"] = balance(c["ticks"])
        if "idle" in c:
            entry["idle"] = c["idle"]
        else:
            ok = [r for r in c["rounds"] if r["rps"] is not None]
            entry["rounds"] = c["rounds"]
            if ok:
                rps = [r["rps"] for r in ok]
                lat = {k: [r[k] for r in ok if r[k] is not None] for k in ("p50_ms", "p99_ms")}
                entry.update(rps_median=statistics.median(rps), rps_min=min(rps), rps_max=max(rps),
                             p50_ms=statistics.median(lat["p50_ms"]) if lat["p50_ms"] else None,
                             p99_ms=statistics.median(lat["p99_ms"]) if lat["p99_ms"] else None,
                             rss_kb=max(r["memory_peak"]["rss_kb"] for r in ok),
                             pss_kb=max(r["memory_peak"]["pss_kb"] for r in ok),
                             processes=max(r["memory_peak"]["processes"] for r in ok),
                             errors=sum(r["errors"] for r in ok), non2xx=sum(r["non2xx"] for r in ok))
                cpu = [r for r in ok if r.get("cpu_us")]
                if cpu:  # over all rounds together: total CPU ÷ total requests
                    entry.update(cpu_us=sum(r["cpu_s"] for r in cpu) / sum(r["requests"] for r in cpu) * 1e6,
                                 busy=statistics.median(r["busy"] for r in cpu))
        result["contenders"].append(entry)
    if any(c["kind"] == "uwsgi-http" and c["conns"] > 1 and c["workers"] == 1 for c in contenders):
        notes.append(f"{name}: uWSGI --http11-socket with one non-threaded process serves one keep-alive "
                     "connection at a time (the others wait un-accepted in the listen queue: `ss -ltn` shows "
                     "Recv-Q = conns − 1), and wrk's latency counts only answered requests, so uWSGI's p50/p99 "
                     "describe a single client; its req/s is that one connection's.")
    if any(c["kind"] == "uwsgi-http" and c["conns"] > c["workers"] > 1 for c in contenders):
        notes.append(f"{name}: uWSGI --http11-socket with N non-threaded processes serves N keep-alive "
                     "connections at a time (the rest wait un-accepted), so its p50/p99 describe N clients; "
                     "uwsgi-http10 (--http-socket, one request per connection) is the form that serves every "
                     "connection in turn.")
    if any(c["kind"] == "uwsgi-http10" for c in contenders):
        notes.append(f"{name}: uWSGI --http-socket closes the connection after every response without saying "
                     "so (HTTP/1.1, no `Connection: close`): wrk counts each close as a read socket error and "
                     "reconnects, so uwsgi-http10's socket errors are about one per request, not failures.")
    # portico / incumbent, pairing contenders by connection count; portico with the scenario's worker
    # count is the numerator, and any other portico (hello-scale's -w 1) is an incumbent.
    ratios = []
    main = scenarioWorkers(sc)

    def isMain(c):
        return c["kind"] == sc.get("numerator", "portico") and c["workers"] == main

    for inc in result["contenders"]:
        if isMain(inc) or "rps_median" not in inc:
            continue
        for p in result["contenders"]:
            if isMain(p) and p["conns"] == inc["conns"] and "rps_median" in p:
                ratios.append({"incumbent": inc["label"], "conns": inc["conns"],
                               "ratio": p["rps_median"] / inc["rps_median"]})
                if p.get("cpu_us") and inc.get("cpu_us"):  # > 1: portico spends less CPU per request
                    ratios[-1]["cpu_ratio"] = inc["cpu_us"] / p["cpu_us"]
    result["ratios"] = ratios
    return result


# ---------------------------------------------------------------------------------------------
# Targets


def find(results, scenario, kind, conns=None, workers=None):
    for c in results.get(scenario, {}).get("contenders", []):
        if c["kind"] == kind and (conns is None or c["conns"] == conns) and \
                (workers is None or c.get("workers", 1) == workers):
            return c
    return None


def mainPortico(results, scenario):
    """The portico contender ratios are taken for: the one with the most workers (hello-scale's -w N)."""
    ps = [c for c in results.get(scenario, {}).get("contenders", []) if c["kind"] == "portico"]
    return max(ps, key=lambda c: c.get("workers", 1)) if ps else None


def targets(results):
    out = []

    def ratioTarget(scenario, incumbent, goal, label, conns=None, numerator="portico"):
        p, i = find(results, scenario, numerator, conns), find(results, scenario, incumbent, conns)
        if p and i and "rps_median" in p and "rps_median" in i:
            v = p["rps_median"] / i["rps_median"]
            out.append({"target": label, "scenario": scenario, "incumbent": incumbent, "goal": goal,
                        "value": v, "shown": f"{v:.2f}×", "met": v >= goal})

    def allcoreTarget(scenario, incumbents, goal, label):
        """portico -w N ÷ the fastest of `incumbents` (all run with N workers) in an all-core scenario."""
        p = mainPortico(results, scenario)
        best = [c for c in (find(results, scenario, k) for k in incumbents)
                if c and "rps_median" in c and c.get("workers", 1) == (p or {}).get("workers")]
        if p and "rps_median" in p and best:
            i = max(best, key=lambda c: c["rps_median"])
            v = p["rps_median"] / i["rps_median"]
            n = p["workers"]
            out.append({"target": label.format(n=n), "scenario": scenario, "incumbent": i["label"],
                        "goal": goal, "value": v, "met": v >= goal,
                        "shown": f"{v:.2f}×" + (f" (vs {i['label']})" if len(incumbents) > 1 else "")})

    ratioTarget("hello64", "uwsgi-http", 2.0, "hello @64 ≥ 2.0× uWSGI --http11-socket")
    ratioTarget("hello64", "gunicorn-sync", 6.0, "hello @64 ≥ 6× gunicorn sync")
    p, u = find(results, "hello64", "portico"), find(results, "hello64", "uwsgi-http")
    if p and u and "p99_ms" in p and "p99_ms" in u:
        out.append({"target": "hello @64 p99 ≤ uWSGI's p99", "scenario": "hello64", "goal": None,
                    "value": p["p99_ms"], "shown": f"{p['p99_ms']:.2f} ms vs {u['p99_ms']:.2f} ms",
                    "met": p["p99_ms"] <= u["p99_ms"]})
    ratioTarget("metrics-cost", "portico", 0.97, "hello with --metrics-bind scraped ≥ 0.97× without",
                numerator="portico-metrics")
    ratioTarget("django", "nginx-uwsgi", 1.15, "Django JSON ≥ 1.15× nginx→uWSGI")
    ratioTarget("django", "nginx-gunicorn", 1.25, "Django JSON ≥ 1.25× nginx→gunicorn")
    for sc, size in (("static13b", "13 B"), ("static100k", "100 KB"), ("static1m", "1 MB")):
        ratioTarget(sc, "nginx-static", 1.0, f"static {size} ≥ 1.0× nginx")
    p = find(results, "idle10k", "portico")
    if p and "idle" in p:
        g = p["idle"]["rss_growth_kb"] / 1024
        n = p["idle"]["connections"]
        out.append({"target": "10k idle keep-alive: ≤ 64 MB more RSS than idle", "scenario": "idle10k",
                    "goal": 64, "value": g, "shown": f"+{g:.1f} MB ({n} connections)",
                    "met": g <= 64 and n >= 10000})
    p64, p1k = find(results, "conns1000", "portico", 64), find(results, "conns1000", "portico", 1000)
    if p64 and p1k and "rps_median" in p64 and "rps_median" in p1k:
        v = p1k["rps_median"] / p64["rps_median"]
        out.append({"target": "req/s at 1,000 conns ≥ 0.8× at 64", "scenario": "conns1000", "goal": 0.8,
                    "value": v, "shown": f"{v:.2f}×", "met": v >= 0.8})
    p, n = find(results, "django", "portico"), find(results, "django", "nginx-uwsgi")
    if p and n and "pss_kb" in p and "pss_kb" in n:
        out.append({"target": "example site: portico PSS < nginx + uWSGI PSS", "scenario": "django",
                    "goal": None, "value": p["pss_kb"] / 1024,
                    "shown": f"{p['pss_kb'] / 1024:.1f} MB vs {n['pss_kb'] / 1024:.1f} MB",
                    "met": p["pss_kb"] < n["pss_kb"]})
    ratioTarget("upload", "uwsgi-http", 1.0, "10 MB upload ≥ 1.0× uWSGI --http11-socket")
    ratioTarget("uwsgi-server", "nginx-uwsgi", 1.2,
                "nginx → portico --protocol uwsgi ≥ 1.2× nginx → uWSGI (hello)",
                numerator="nginx-portico-uwsgi")
    # proxy_pass / uwsgi_pass (issue 14): the front's req/s ≥ nginx's at no more CPU per request.
    for sc, incumbent, what in (("proxy13b", "nginx-proxy", "proxy_pass 13 B"),
                                ("proxy100k", "nginx-proxy", "proxy_pass 100 KB"),
                                ("uwsgi-pass", "nginx-uwsgi-pass", "uwsgi_pass hello")):
        numerator = SCENARIOS[sc]["numerator"]
        for n in (64, 1000):
            before = len(out)
            ratioTarget(sc, incumbent, 1.0, f"{what} @{n} ≥ 1.0× nginx", conns=n, numerator=numerator)
            p, i = find(results, sc, numerator, n), find(results, sc, incumbent, n)
            if len(out) > before and p.get("cpu_us") and i.get("cpu_us"):
                out[-1]["shown"] += f" (front CPU {p['cpu_us']:.1f} vs {i['cpu_us']:.1f} µs/req)"
                out[-1]["met"] = out[-1]["met"] and p["cpu_us"] <= i["cpu_us"]
    # TLS (one worker, one core, same certificate and ssl_* lines): req/s (or handshakes/s) ≥ nginx,
    # with the server's CPU per request beside it (what decides when the client is the limit).
    for sc, incumbent, what in (("tls-handshake-ecdsa", "nginx-static", "full handshakes/s, ECDSA P-256"),
                                ("tls-handshake-rsa", "nginx-static", "full handshakes/s, RSA-2048"),
                                ("tls-hello", "nginx-uwsgi", "TLS hello WSGI (nginx → uWSGI)"),
                                ("tls-static13b", "nginx-static", "TLS static 13 B"),
                                ("tls-static100k", "nginx-static", "TLS static 100 KB"),
                                ("tls-static1m", "nginx-static", "TLS static 1 MB")):
        before = len(out)
        ratioTarget(sc, incumbent, 1.0, f"{what} ≥ 1.0× nginx")
        p, i = find(results, sc, "portico"), find(results, sc, incumbent)
        if len(out) > before and p.get("cpu_us") and i.get("cpu_us"):
            out[-1]["shown"] += (f" (server CPU {p['cpu_us']:.1f} vs {i['cpu_us']:.1f} µs/req, "
                                 f"core {p['busy']:.0%} vs {i['busy']:.0%} busy)")
    # All cores: every server with N workers, servers and wrk sharing every core.
    allcoreTarget("django-all", ["gunicorn-sync"], 1.2, "all cores: Django JSON -w {n} ≥ 1.2× gunicorn -w {n} (sync)")
    allcoreTarget("django-all", ["uwsgi-http", "uwsgi-http10"], 1.1,
                  "all cores: Django JSON -w {n} ≥ 1.1× uWSGI --processes {n} (the faster of --http11-socket "
                  "and --http-socket)")
    allcoreTarget("django-all", ["nginx-uwsgi"], 1.25, "all cores: Django JSON -w {n} ≥ 1.25× nginx → uWSGI --processes {n}")
    p, one = mainPortico(results, "hello-scale"), find(results, "hello-scale", "portico", workers=1)
    if p and one and p is not one and "rps_median" in p and "rps_median" in one:
        v = p["rps_median"] / one["rps_median"]
        out.append({"target": f"all cores: hello -w {p['workers']} ≥ 1.5× portico -w 1", "scenario": "hello-scale",
                    "incumbent": one["label"], "goal": 1.5, "value": v, "shown": f"{v:.2f}×", "met": v >= 1.5})
    shares = [(sc, c) for sc, r in results.items() for c in r.get("contenders", [])
              if r.get("allcore") and c["kind"] == "portico" and c.get("balance")]
    if shares:
        low_sc, low = min(shares, key=lambda x: x[1]["balance"]["min_share"])
        v = low["balance"]["min_share"]
        out.append({"target": "all cores: no portico worker's CPU share < 0.8× the workers' mean",
                    "scenario": low_sc, "goal": 0.8, "value": v,
                    "shown": f"lowest {v:.2f}× ({low_sc}: {low['balance']['shown']})", "met": v >= 0.8})
    return out


# ---------------------------------------------------------------------------------------------
# Reports


TARGET_GOALS = {("hello64", "uwsgi-http"): 2.0, ("hello64", "gunicorn-sync"): 6.0,
                ("django", "nginx-uwsgi"): 1.15, ("django", "nginx-gunicorn"): 1.25,
                ("static13b", "nginx-static"): 1.0, ("static100k", "nginx-static"): 1.0,
                ("static1m", "nginx-static"): 1.0, ("upload", "uwsgi-http"): 1.0,
                ("django-all", "gunicorn-sync"): 1.2, ("django-all", "uwsgi-http"): 1.1,
                ("django-all", "uwsgi-http10"): 1.1, ("django-all", "nginx-uwsgi"): 1.25,
                ("hello-scale", "portico -w 1"): 1.5,
                ("tls-handshake-ecdsa", "nginx-static"): 1.0, ("tls-handshake-rsa", "nginx-static"): 1.0,
                ("tls-hello", "nginx-uwsgi"): 1.0, ("tls-static13b", "nginx-static"): 1.0,
                ("uwsgi-server", "nginx-uwsgi"): 1.2,
                ("proxy13b", "nginx-proxy"): 1.0, ("proxy100k", "nginx-proxy"): 1.0,
                ("uwsgi-pass", "nginx-uwsgi-pass"): 1.0,
                ("tls-static100k", "nginx-static"): 1.0, ("tls-static1m", "nginx-static"): 1.0}


def chart(data, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401
    bars = []
    for name, sc in data["scenarios"].items():
        for r in sc.get("ratios", []):
            bars.append((f"{name}: vs {r['incumbent']}", r["ratio"],
                         TARGET_GOALS.get((name, r["incumbent"].split(" @")[0]))))
    if not bars:
        return
    bars.reverse()
    fig, ax = plt.subplots(figsize=(10, 0.38 * len(bars) + 1.6))
    ys = range(len(bars))
    colors = []
    for _, v, goal in bars:
        colors.append("#2a9d8f" if (v >= (goal or 1.0)) else "#e76f51")
    ax.barh(list(ys), [b[1] for b in bars], color=colors, height=0.7)
    ax.axvline(1.0, color="black", linewidth=1)
    for y, (_, v, goal) in zip(ys, bars):
        ax.text(v, y, f" {v:.2f}×", va="center", fontsize=8)
        if goal is not None:
            ax.plot([goal, goal], [y - 0.45, y + 0.45], color="#264653", linestyle="--", linewidth=1.5)
    ax.set_yticks(list(ys))
    ax.set_yticklabels([b[0] for b in bars], fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks([0.25, 0.5, 1, 2, 4, 6, 10, 20, 40])
    ax.set_xlabel("portico req/s ÷ incumbent req/s (log scale; black line = 1.0, dashed = target)")
    ax.set_title("portico vs incumbents (1 worker on 1 core; *-all: N workers on all cores) — "
                 "green: target met / ≥ 1.0", fontsize=10)
    ax.set_xlim(left=min(0.5, min(b[1] for b in bars) * 0.8), right=max(b[1] for b in bars) * 1.6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


TLS_INTRO = (
    "The tls-* scenarios put portico and nginx 1.22 on the same certificate (made per run with the openssl "
    "CLI: ECDSA P-256, or RSA-2048 for tls-handshake-rsa) and the same lines (`ssl_protocols TLSv1.2 TLSv1.3; "
    "ssl_ciphers HIGH:!aNULL:!MD5; ssl_ecdh_curve auto;`: nginx's defaults spelled out; sessions and tickets "
    "are each server's default), one worker on core 0, portico with `-c` on an `ssl` listener (the gunicorn "
    "flags have no TLS here). The clients negotiate TLS 1.3, TLS_AES_256_GCM_SHA384, X25519. Keep-alive "
    "scenarios use `wrk https://…`. Full handshakes use `bench/tls_handshakes.c` (one thread, epoll, on core "
    "1): each connection connects, runs a full handshake with a fresh SSL object (no session offered, so "
    "never a resumption), sends one GET with `Connection: close`, reads to the server's close and starts "
    "over — wrk would resume sessions on reconnect (SSL_clear keeps the session), `openssl s_time` runs one "
    "connection at a time and measures its own latency. Server CPU µs/req is the on-CPU time of every "
    "thread of every server process (nginx and its backend together; `/proc/PID/task/TID/schedstat`, "
    "nanoseconds) over the round ÷ the requests (or handshakes) completed; core busy is that time ÷ the "
    "round's length. A TLS client does about as much cryptography per request as the server (it decrypts "
    "what the server encrypts; a handshake's client verifies the signature the server made and does the "
    "same key exchange), so one client core often cannot load the server's core: when core busy is well "
    "under 100 %, req/s is the client's limit and CPU µs per request is the figure that compares the servers.")

# What limits each TLS scenario, from perf profiles of the worker (bench/README usage in README.md).
TLS_LIMITS = {
    "tls-handshake-ecdsa": "OpenSSL's work: libcrypto is about half of either worker's perf samples (X25519, the "
                           "ECDSA signature, HKDF, two session tickets), the kernel's TCP set-up and tear-down most of "
                           "the rest. Both servers make the same OpenSSL calls with the same settings (records read "
                           "ahead, no chain built per handshake, buffers released) and the same syscalls per "
                           "connection (strace -c on the worker: 5 writes, 4 reads of which 2 EAGAIN, 9 getpid from "
                           "OpenSSL, one accept4, recv peek, setsockopt, open, fstat, pread; close_notify then close), "
                           "portico one epoll_ctl more (EPOLL_CTL_DEL before close: an embedded Python may fork and "
                           "hold the socket) and an ioctl or two (SIOCOUTQ, SIOCOUTQNSD: a tail still untransmitted, "
                           "a slow reader's, is drained before close): 30.7 syscalls per connection against nginx's "
                           "28.5. Until 2026-12-03 portico took 32.4: a GET answered before the parser reported the "
                           "request's end was closed by lingering (shutdown, wait for the client's EOF, a read more, "
                           "an epoll wake-up more), and any unacknowledged tail by waiting for the kernel's queue; "
                           "both now close at once as nginx does (ngx_http_finalize_connection lingers only for "
                           "unread input). Measured on 2026-12-03 on a loaded machine (load average 6–9 from other "
                           "builds and tests), as server CPU µs per handshake with every server on core 0 at the same "
                           "time, each with its own client on core 1, so all see the same load (median of 6 rounds × "
                           "5 s): portico before 742.1, after 701.4, nginx 691.1 (nginx ÷ portico 0.931 → 0.985); this "
                           "harness: 460.8 against 410.9 before (0.892, 3 rounds at 06:37), 444.4 against 446.0 after "
                           "(1.004, 5 rounds). handshakes/s follows the one-core client and the machine's load (its rounds "
                           "spread by more than a third), not the server, whose core stays under a quarter busy. The "
                           "client does a handshake too (it verifies the ECDSA signature the server makes, which costs "
                           "more than making it).",
    "tls-handshake-rsa": "The RSA-2048 signature (most of the server's CPU per handshake; the client's verify is "
                         "cheap) makes the server the side that should saturate, unless other work on the machine "
                         "takes its core; the rest is as for ECDSA. Measured on 2026-12-03 as there (all servers at "
                         "once, loaded machine, median of 6 rounds × 5 s): portico before 1167.7, after 1120.9, nginx "
                         "1102.6 µs per handshake (0.944 → 0.984); this harness: 763.2 against 719.4 before (0.943), "
                         "640.4 against 631.1 after (0.985).",
    "tls-hello": "nginx pays the proxy hop (a second process on the same core, uwsgi or HTTP to gunicorn) on top "
                 "of TLS; portico runs the app in-process: one read and one write per request over TLS.",
    "tls-static13b": "Head and body leave in one record and one write; portico makes one read per request, "
                     "nginx two (the second returns EAGAIN). wrk's one thread (decrypting as much as the server "
                     "encrypts) is the limit.",
    "tls-static100k": "Seven 16 KiB records, seven writes per response for both (portico's head rides in the "
                      "first record with the first file bytes); portico reads the file in 64 KiB pieces into a "
                      "buffer kept per connection and corks the socket while a response's records are written, so "
                      "they leave in full-sized segments.",
    "tls-static1m": "AES-256-GCM and copies: the server encrypts what the client decrypts, so one wrk thread is "
                    "the limit and both servers spend about the same CPU per megabyte. Kernel TLS (`SSL_sendfile`) "
                    "is not available on this kernel (no `tls` in /proc/sys/net/ipv4/tcp_available_ulp): the "
                    "issue's 1.2× with kernel TLS cannot be measured here.",
}


def fmtMs(v):
    return "—" if v is None else (f"{v:.3f}" if v < 1 else f"{v:.2f}")


def markdown(data):
    m = data["machine"]
    L = ["# portico benchmarks", "",
         f"Generated by `{data['command']}` on {data['date']} (do not edit; re-run the harness).", "",
         "Every server runs on core 0 (`taskset -c 0`; a proxy shares core 0 with its backend), wrk "
         "on core 1 (`taskset -c 1 wrk -t1 -cN -dS --latency`). Rounds are interleaved (A B C A B C …) "
         f"after a warm-up; {data['rounds']} rounds × {data['duration']} s. req/s is the median "
         "(min–max) over rounds, latency the median of the rounds' p50/p99, RSS/PSS the peak sum over "
         "the server's whole process tree (`/proc/PID/smaps_rollup`, sampled every 0.25 s during the "
         "rounds). Access logs are off everywhere. ratio = portico req/s ÷ incumbent req/s in the same run. "
         "gunicorn's sync worker closes every connection (no keep-alive): wrk reconnects, and its latency "
         "excludes connect and accept-queue time, as it does for connections uWSGI leaves un-accepted.",
         "",
         f"The *-all scenarios run every server with N worker processes, N = the cores the harness may use "
         f"({data.get('allcore_workers', NCORES)} here), and nothing is pinned apart: servers (nginx with `worker_processes N` "
         "and its backend alike) and wrk (`-tN`) both get every core (`taskset -c` with all of them). "
         "uWSGI then runs with `--master`, as a user running N processes would. Worker balance: each "
         "worker process's CPU time (utime + stime from `/proc/PID/stat`, every thread) over the measured "
         "rounds only (sampled before and after each wrk run), as a share of the workers' mean (1.00 = "
         "an even share); the workers are the master's children (portico, gunicorn, uWSGI) or, behind "
         "nginx, the backend's. hello-scale compares portico -w N with -w 1 on the same cores.",
         "", "## Machine", "",
         f"- CPU: {m['model']}, {m['cores']} cores; kernel {m['kernel']}", ""]
    L += ["## Versions", ""] + [f"- {k}: `{v}`" for k, v in data["versions"].items()] + [""]
    tg = data["targets"]
    L += ["## Targets (portico: one worker on one core, unless the target says all cores)", "",
          "| target | result | met |", "|---|---|---|"]
    for t in tg:
        L.append(f"| {t['target']} | {t['shown']} | {'✅ met' if t['met'] else '❌ missed'} |")
    if not tg:
        L.append("| (no target scenario in this run) | | |")
    L += ["", "![portico / incumbent](benchmarks.png)", ""]
    tlsShown = False
    for name, sc in data["scenarios"].items():
        if sc.get("tls") and not tlsShown:
            L += ["## TLS (tls-* scenarios)", "", TLS_INTRO, ""]
            tlsShown = True
        L += [f"## {name}: {sc['title']}", ""]
        run_ = sc.get("run")
        if run_ and (run_["command"] != data["command"] or sc.get("tls")):
            L += [f"Run by `{run_['command']}` on {run_['date']}: {run_['rounds']} rounds × {run_['duration']} s"
                  + (f"; load average {run_['load'][0]:.2f} before, {run_['load'][1]:.2f} after." if run_.get("load")
                     else "."), ""]
        if any("idle" in c for c in sc["contenders"]):
            L += ["| server | connections held | RSS idle | RSS with connections | growth | PSS growth |",
                  "|---|---|---|---|---|---|"]
            for c in sc["contenders"]:
                i = c["idle"]
                L.append(f"| {c['label']} | {i['connections']} | {i['idle']['rss_kb'] / 1024:.1f} MB | "
                         f"{i['with_connections']['rss_kb'] / 1024:.1f} MB | +{i['rss_growth_kb'] / 1024:.1f} MB | "
                         f"+{i['pss_growth_kb'] / 1024:.1f} MB |")
        else:
            ratios = {r["incumbent"]: r["ratio"] for r in sc.get("ratios", [])}
            cpuRatios = {r["incumbent"]: r["cpu_ratio"] for r in sc.get("ratios", []) if "cpu_ratio" in r}
            withCpu = any(c.get("cpu_us") for c in sc["contenders"])
            unit = "handshakes/s" if sc.get("handshakes") else "req/s"
            L += [f"| server | conns | {unit} median (min–max) | p50 ms | p99 ms | RSS idle → peak | PSS peak | procs | portico ÷ this |"
                  + (" server CPU µs/req | core busy | CPU: this ÷ portico |" if withCpu else ""),
                  "|---|---|---|---|---|---|---|---|---|" + ("---|---|---|" if withCpu else "")]
            for c in sc["contenders"]:
                if "rps_median" not in c:
                    L.append(f"| {c['label']} | {c['conns']} | failed | | | | | | |" + (" | | |" if withCpu else ""))
                    continue
                idle = sc["servers"].get(c.get("server_name", c["kind"]), {}).get(
                    "idle_memory", {}).get("rss_kb", 0) / 1024
                err = f" ({c['errors']} socket errors)" if c["errors"] else ""
                err += f" ({c['non2xx']} non-2xx)" if c["non2xx"] else ""
                r = ratios.get(c["label"])
                cr = cpuRatios.get(c["label"])
                L.append(f"| {c['label']} | {c['conns']} | {c['rps_median']:,.0f} ({c['rps_min']:,.0f}–{c['rps_max']:,.0f}){err} | "
                         f"{fmtMs(c['p50_ms'])} | {fmtMs(c['p99_ms'])} | {idle:.1f} → {c['rss_kb'] / 1024:.1f} MB | "
                         f"{c['pss_kb'] / 1024:.1f} MB | {c['processes']} | {'' if r is None else f'{r:.2f}×'} |"
                         + (f" {c['cpu_us']:.1f} | {c['busy']:.0%} | {'' if cr is None else f'{cr:.2f}×'} |"
                            if c.get("cpu_us") else (" | | |" if withCpu else "")))
            balanced = [c for c in sc["contenders"] if c.get("balance")]
            if balanced:
                L += ["", "Worker balance (each worker's CPU time over the measured rounds ÷ the workers' mean):", "",
                      "| server | workers | share per worker | lowest share |", "|---|---|---|---|"]
                for c in balanced:
                    b = c["balance"]
                    L.append(f"| {c['label']} | {b['workers']} | {b['shown']} | {b['min_share']:.2f}× |")
            busy = [c["busy"] for c in sc["contenders"] if c.get("busy") is not None]
            if sc.get("tls") and busy:
                L += ["", f"What limited it: the busiest server's core was {max(busy):.0%} busy"
                      + (" — the server was not the limit (the one-core client was, or other work on the machine: see "
                         "the load average), so compare CPU µs per request. " if max(busy) < 0.9 else ". ")
                      + TLS_LIMITS.get(name, "")]
        L.append("")
    notes = {}  # identical notes from several scenarios are shown once, with the scenario names
    for n in data["notes"]:
        scen, _, text = n.partition(": ")
        if scen in data["scenarios"] or scen in SCENARIOS:
            notes.setdefault(text, []).append(scen)
        else:
            notes.setdefault(n, [])
    for name, sc in data["scenarios"].items():
        for c in sc["contenders"]:
            if c.get("rps_median") and (c["rps_max"] - c["rps_min"]) > 0.25 * c["rps_median"]:
                notes.setdefault("rounds spread by more than 25 % of the median (a noisy machine: "
                                 "compare ratios, not absolute figures, and prefer more rounds)", []).append(
                                     f"{name}/{c['label']}")
    if notes:
        L += ["## Notes", ""] + [f"- {t}" + (f" ({', '.join(w)})" if w else "") for t, w in notes.items()] + [""]
    L += ["## Exact commands", "",
          "Ports are picked free at start; paths are the run's temporary directory "
          "(the Django site is a copy of `examples/django` set up with its `setup.sh`).", ""]
    shown = set()  # each nginx.conf shape once: later ones differ only in ports, paths and the app
    for name, sc in data["scenarios"].items():
        for kind, desc in sc["servers"].items():
            L += [f"### {name} / {kind}", "", "```sh"] + desc["commands"] + ["```", ""]
            for cname, text in desc["configs"].items():
                if kind in shown:
                    L += [f"({cname}: as for {kind} above, with this run's port and paths.)", ""]
                    continue
                shown.add(kind)
                L += ["<details><summary>" + cname + "</summary>", "", "```nginx", text.rstrip(), "```",
                      "", "</details>", ""]
        cmds = sorted({r.get("command", "") for c in sc["contenders"] for r in c.get("rounds", [])})
        if cmds:
            L += [f"Load for {name}:", "", "```sh"] + cmds + ["```", ""]
    return "\n".join(L)


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="seconds-long smoke: 1 round, 1 s, two scenarios")
    ap.add_argument("--scenarios", help="comma-separated subset of: " + ",".join(SCENARIOS)
                    + " (tls: every tls-* scenario)")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=float)
    ap.add_argument("--no-install", action="store_true", help="do not apt-get missing incumbents")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other scenarios of bench/results/latest.json in the results and report")
    ap.add_argument("--report-only", action="store_true",
                    help="regenerate docs/benchmarks.md and .png from bench/results/latest.json")
    args = ap.parse_args()
    if args.report_only:
        with open(os.path.join(BENCH, "results", "latest.json")) as f:
            data = json.load(f)
        data["targets"] = targets(data["scenarios"])
        writeReports(data)
        return 0
    names = args.scenarios.split(",") if args.scenarios else (QUICK_SCENARIOS if args.quick else list(SCENARIOS))
    names = [m for n in names for m in (TLS_SCENARIOS if n == "tls" else [n])]
    for n in names:
        if n not in SCENARIOS:
            ap.error(f"unknown scenario {n!r}; known: {', '.join(SCENARIOS)}")
    rounds = args.rounds or (1 if args.quick else 3)
    duration = args.duration or (1 if args.quick else 5)
    duration = max(1, int(round(duration)))
    warmup = 1 if args.quick else 2

    # Started in the background by a shell, SIGINT arrives ignored: restore Ctrl-C, and make TERM act alike.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    raiseNofile()
    notes = []
    if not args.no_install:
        install()
    if (os.cpu_count() or 1) < 2:
        global CLIENT_CORE
        CLIENT_CORE = "0"
        notes.append("only one CPU: wrk shares core 0 with the servers")
    else:
        os.sched_setaffinity(0, {int(CLIENT_CORE)})  # the harness's own sampling stays off core 0
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 12000 and any(n in ("idle10k", "conns1000") for n in names):
        notes.append(f"RLIMIT_NOFILE is only {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}")

    data = {"command": " ".join(["/usr/bin/python3", "bench/run.py"] + sys.argv[1:]),
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": machineInfo(), "versions": versions(), "rounds": rounds, "duration": duration,
            "allcore_workers": NCORES, "allcore_cpus": ALL_CORES,
            "scenarios": {}, "notes": notes}
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="portico-bench-")
    os.chmod(workdir, 0o755)
    ctx = Context(workdir)
    interrupted = False
    try:
        for n in names:
            try:
                load0 = loadAverage()
                data["scenarios"][n] = runScenario(n, ctx, rounds, duration, warmup, notes)
                data["scenarios"][n]["run"] = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
                                               "command": data["command"], "rounds": rounds,
                                               "duration": duration, "load": [load0, loadAverage()]}
            except KeyboardInterrupt:
                raise
            except Exception as e:
                notes.append(f"{n}: failed: {e}")
                log(f"scenario {n} failed: {e!r}")
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: servers stopped, writing partial results")
        notes.append("run interrupted; partial results")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    data["elapsed_s"] = round(time.monotonic() - started, 1)
    os.makedirs(os.path.join(BENCH, "results"), exist_ok=True)
    out_json = os.path.join(BENCH, "results", "latest.json")
    if args.merge and os.path.exists(out_json):
        data = mergeInto(out_json, data)
    data["targets"] = targets(data["scenarios"])

    with open(out_json, "w") as f:
        json.dump(data, f, indent=1, default=str)
    md = writeReports(data)
    log(f"done in {data['elapsed_s']} s: {out_json}, {md}")
    for t in data["targets"]:
        log(f"  {'MET   ' if t['met'] else 'MISSED'} {t['target']}: {t['shown']}")
    return 130 if interrupted else 0


def mergeInto(path, new):
    """--merge: the previous results with this run's scenarios added or replaced; the header
    (machine, versions, command) is this run's, and each scenario keeps the run it came from."""
    with open(path) as f:
        old = json.load(f)
    for name, sc in old["scenarios"].items():
        sc.setdefault("run", {"date": old["date"], "command": old["command"], "rounds": old["rounds"],
                              "duration": old["duration"], "load": None})
    merged = dict(new)
    merged["scenarios"] = {**old["scenarios"], **new["scenarios"]}
    kept = [n for n in old["notes"] if n.partition(": ")[0] not in new["scenarios"]
            and n.partition(": ")[0] in old["scenarios"]]
    merged["notes"] = kept + new["notes"]
    return merged


def writeReports(data):
    md = os.path.join(ROOT, "docs", "benchmarks.md")
    with open(md, "w") as f:
        f.write(markdown(data))
    try:
        chart(data, os.path.join(ROOT, "docs", "benchmarks.png"))
    except ImportError:
        log("matplotlib missing: no chart")
    return md


if __name__ == "__main__":
    sys.exit(main())
