"""Differential harness: one nginx configuration text, served by Debian's nginx and by portico.

A case is the text of an `http { ... }` body (servers, locations) with placeholders, the files of
its document tree, and the requests to send. Both servers get the same text; only the ports and
the nginx-only temp paths differ. The answers are compared: status, the headers that matter
(Location, Content-Type, Content-Length, Cache-Control, Expires as an offset from Date, Vary,
Content-Encoding and every X-* header) and bodies.

Placeholders: @DIR@ (the case's private directory, where the files live under www/), @PORT@ and
@PORT2@ (two free ports; both servers listen on 127.0.0.1 and on the second port when used),
@PORT+1@ (the port after @PORT@, for port ranges: when it is taken the server fails to start and
another pair is drawn).

portico runs with `-c FILE -p DIR`; a configuration it refuses fails the case (every case uses
only what portico implements), as does one nginx refuses.
"""

import gzip
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from http_client import Connection, parse_http_date
import servers
from servers import free_port, portico_binary

READY_TIMEOUT = 10.0
NGINX = "/usr/sbin/nginx"

COMPARED_HEADERS = ("location", "content-type", "content-length", "cache-control", "vary",
                    "content-encoding", "keep-alive", "connection", "www-authenticate")


def _can_connect(port):
    return servers._can_connect(socket.AF_INET, ("127.0.0.1", port))


_tail = servers._tail


def render(text, workdir, ports):
    text = text.replace("@DIR@", workdir)
    text = text.replace("@PORT+1@", str(ports[0] + 1))
    text = text.replace("@PORT2@", str(ports[1])).replace("@PORT@", str(ports[0]))
    return text


APPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps")

# Where nginx proxies to its backend (an nginx server on @PORT2@ answering "app $request_uri"),
# portico runs tests/apps/echo_uri.py, which answers the same bytes.
PROXY = "proxy_pass http://127.0.0.1:@PORT2@;"
APP = "wsgi_app echo_uri:application; wsgi_pythonpath %s;" % APPS
BACKEND = """
    server {
        listen 127.0.0.1:@PORT2@;
        location / { default_type text/plain; return 200 "app $request_uri"; }
    }
"""


def config_text(http_body, workdir, ports, for_nginx, mime=True):
    """The whole file: main and events contexts, then http with the case's body (without the
    `include mime.types` line when `mime` is false: the servers' built-in types then apply)."""
    if PROXY in http_body:
        http_body = http_body + BACKEND if for_nginx else http_body.replace(PROXY, APP)
    nginx_only = ""
    main_only = ""
    if for_nginx:
        temp = os.path.join(workdir, "temp")
        os.makedirs(temp, exist_ok=True)
        nginx_only = "".join("    %s_temp_path %s/%s;\n" % (kind, temp, kind)
                             for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        if os.geteuid() == 0:
            main_only = "user root;\n"
    return """%(main)sworker_processes 1;
pid %(dir)s/%(who)s.pid;
error_log %(dir)s/%(who)s-error.log;
events { worker_connections 256; }
http {
%(mime)s    default_type application/octet-stream;
    access_log off;
%(nginx_only)s%(body)s
}
""" % {"main": main_only, "dir": workdir, "who": "nginx" if for_nginx else "portico",
       "nginx_only": nginx_only, "body": render(http_body, workdir, ports),
       "mime": "    include %s/mime.types;\n" % workdir if mime else ""}


class Served:
    """One server (nginx or portico) running a rendered configuration."""

    def __init__(self, name, proc, ports, log_path):
        self.name = name
        self.proc = proc
        self.ports = ports
        self.log_path = log_path

    def request(self, method, target, headers=None, host="", port_index=0, body=b"",
                version="HTTP/1.1"):
        """host "" sends "localhost:PORT"; None sends no Host header (use with HTTP/1.0)."""
        port = self.ports[port_index]
        if host == "":
            host = "localhost:%d" % port
        with Connection.tcp("127.0.0.1", port, 5.0) as conn:
            return conn.request(method, target, headers=headers, body=body, host=host,
                                version=version)

    # Graceful (QUIT), then killed past the timeout: the oracle's own stop.
    stop = servers.NginxServer.stop


def _bindable(port):
    """Whether nothing holds 127.0.0.1:PORT (a listener, or a connection's local end)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _wait(proc, ports):
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        if all(_can_connect(p) for p in ports):
            return True
        time.sleep(0.05)
    return False


def _start(name, conf, log, launch, http_body, workdir, nports, for_nginx, mime=True):
    """Writes the configuration on two free ports, starts the server with `launch(conf)` (a
    Popen) and waits until it listens; another pair of ports is tried when one was taken
    meanwhile (at most five times). Any other failure to start fails the case."""
    for _attempt in range(5):
        ports = [free_port() for _ in range(2)]
        if ports[1] == ports[0] + 1 or not _bindable(ports[0] + 1):
            continue  # @PORT+1@ must be free, and not @PORT2@
        with open(conf, "w") as handle:
            handle.write(config_text(http_body, workdir, ports, for_nginx, mime))
        proc = launch(conf)
        if _wait(proc, ports[:nports]):
            return Served(name, proc, ports, log)
        Served(name, proc, ports, log).stop()
        err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        if "in use" not in err + _tail(log):
            raise AssertionError("%s did not start:\n%s\n%s" % (name, err, _tail(log)))
    raise AssertionError("%s did not start (ports in use)" % name)


def start_nginx(workdir, http_body, nports, mime=True):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx is not installed")
    log = os.path.join(workdir, "nginx-error.log")

    def launch(conf):
        return subprocess.Popen([NGINX, "-p", workdir + "/", "-c", conf, "-e", log,
                                 "-g", "daemon off; master_process off;"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)

    return _start("nginx", os.path.join(workdir, "nginx.conf"), log, launch, http_body,
                  workdir, nports, True, mime)


def start_portico(workdir, http_body, nports, mime=True):
    pdir = os.path.join(workdir, "portico")
    os.makedirs(pdir, exist_ok=True)
    log = os.path.join(pdir, "stderr.log")

    def launch(conf):
        with open(log, "ab") as err:
            return subprocess.Popen([portico_binary(), "-p", pdir + "/", "-c", conf],
                                    stdout=subprocess.DEVNULL, stderr=err,
                                    stdin=subprocess.DEVNULL, cwd=pdir)

    return _start("portico", os.path.join(pdir, "portico.conf"), log, launch, http_body,
                  workdir, nports, False, mime)


def prepare_tree(workdir, files):
    """Writes the case's files under workdir (paths relative to it) and the mime table."""
    shutil.copy("/etc/nginx/mime.types", os.path.join(workdir, "mime.types"))
    for relative, data in files.items():
        path = os.path.join(workdir, relative)
        if relative.endswith("/"):
            os.makedirs(path, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data if isinstance(data, bytes) else data.encode())


def _normalize(value, server):
    # The two servers listen on different ports: compare "PORT" for either.
    for index, port in enumerate(server.ports):
        value = value.replace(":%d" % port, ":PORT%d" % index)
    return value


# The product's name and version where the servers sign (Server header, error-page footer):
# compared as NAME or NAME/VERSION, so that server_tokens is compared and the names are not.
_SIGNATURE = re.compile(r"^(?:nginx|portico)(/[0-9][0-9.]*)?$")


def _signature(value):
    match = _SIGNATURE.match(value)
    if not match:
        return value
    return "NAME/VERSION" if match.group(1) else "NAME"


def summary(response, server, extra_headers=()):
    """What is compared of one response (COMPARED_HEADERS, X-*, and `extra_headers`)."""
    out = {"status": response.status}
    for name in tuple(COMPARED_HEADERS) + tuple(extra_headers):
        if response.has_header(name):
            out[name] = _normalize(response.header(name), server)
    if "server" in out:
        out["server"] = _signature(out["server"])
    for name, value in response.headers:
        if name.lower().startswith("x-"):
            out[name.lower()] = _normalize(value, server)
    if response.has_header("expires"):
        try:
            delta = (parse_http_date(response.header("expires")) -
                     parse_http_date(response.header("date"))).total_seconds()
            # Fixed dates (epoch, max) compare as themselves, relative ones as offsets.
            out["expires"] = response.header("expires") if abs(delta) > 10 ** 8 else round(delta)
        except (TypeError, ValueError):
            out["expires"] = "unparsable: " + response.header("expires")
    raw = response.body
    if out.get("content-encoding") == "gzip" and raw:
        # The compressed bytes are compared as they are, unless the page inside is signed with
        # the server's name (error pages): then the decompressed text is compared.
        try:
            plain = gzip.decompress(raw)
        except (OSError, EOFError):  # a precompressed sibling need not be valid gzip
            plain = b""
        if b"<hr><center>" in plain:
            raw = b"gunzipped: " + plain
    body = _normalize(raw.decode("latin-1"), server)
    # Error pages sign with the server's name ("nginx/1.22.1", "portico/0.1.0"): compare
    # whether a version is shown (server_tokens), not the name.
    signed = re.sub(r"<hr><center>([^<]*)</center>",
                    lambda m: "<hr><center>%s</center>" % _signature(m.group(1)), body)
    if signed != body and "content-length" in out:
        out["content-length"] = "(error page)"
    out["body"] = signed
    if (not response.body and response.status >= 300 and "content-length" in out and
            int(out["content-length"]) > 100 and out.get("content-type") == "text/html"):
        out["content-length"] = "(error page, HEAD)"
    return out


def ask(server, requests, extra_headers=()):
    """The summaries of every request's answer from one server."""
    answers = []
    for req in requests:
        method, target = req[0], req[1]
        options = dict(req[2]) if len(req) > 2 else {}
        answers.append(summary(server.request(method, target, **options), server, extra_headers))
    return answers


def answers_of_both(workdir, http_body, nports, collect):
    """`collect(served)` from nginx, then from portico, on the same configuration (the files
    already prepared): (portico's, nginx's)."""
    nginx = start_nginx(workdir, http_body, nports)
    try:
        theirs = collect(nginx)
    finally:
        nginx.stop()
    portico = start_portico(workdir, http_body, nports)
    try:
        ours = collect(portico)
    finally:
        portico.stop()
    return ours, theirs


def run_case(tmp_path, http_body, files, requests, nports=1, mime=True, extra_headers=()):
    """The whole differential: nginx answers first (so every case is checked against the real
    thing even while portico cannot read the file yet), then portico, then the comparison.
    `mime=False` leaves out `include mime.types`; `extra_headers` are compared too (lower case;
    "server" compares NAME or NAME/VERSION)."""
    workdir = str(tmp_path)
    prepare_tree(workdir, files)
    nginx = start_nginx(workdir, http_body, nports, mime)
    try:
        theirs = ask(nginx, requests, extra_headers)
    finally:
        nginx.stop()
    if os.environ.get("NGINX_DIFF_SHOW"):
        for req, answer in zip(requests, theirs):
            print("nginx", req[:2], answer)
    portico = start_portico(workdir, http_body, nports, mime)
    try:
        ours = ask(portico, requests, extra_headers)
    finally:
        portico.stop()
    for req, mine, expected in zip(requests, ours, theirs):
        assert mine == expected, "%s %s %r:\n  portico %r\n  nginx   %r" % (
            req[0], req[1], req[2] if len(req) > 2 else {}, mine, expected)


def refusals(tmp_path, http_text):
    """`portico -t` and `nginx -t` of a file whose http block holds `http_text`: both must
    refuse it; returns their [emerg] messages (without nginx's pid#tid), to compare."""
    conf = os.path.join(str(tmp_path), "refused.conf")
    with open(conf, "w") as handle:
        handle.write("events {}\nhttp {\n    %s\n}\n" % http_text)
    messages = []
    for binary in (portico_binary(), NGINX):
        proc = subprocess.run([binary, "-t", "-c", conf], capture_output=True, text=True,
                              timeout=30)
        assert proc.returncode != 0, (binary, proc.stderr)
        found = re.search(r"\[emerg\] (?:\d+#\d+: )?(.*)", proc.stderr)
        messages.append(found.group(1) if found else proc.stderr)
    return messages[0], messages[1]
