"""proxy_pass to an upstream of three backends, one of which is killed (SIGKILL) while clients
keep sending GETs: no client request fails. nginx's rules carry it: a connect() refused, or a
request already sent on a connection the dead backend's kernel resets or closes, is an `error`
of proxy_next_upstream (the default `error timeout`), so the idempotent request goes to the next
peer; the dead peer is then skipped for fail_timeout (max_fails=1 by default). Checked with the
keep-alive pool (stale cached connections to the dead backend) and without it."""

import os
import signal
import subprocess
import threading
import time

import pytest

from http_client import Connection
from nginx_diff import start_portico

# A backend in its own process (so SIGKILL drops every connection at once, as a crashed
# container does): HTTP/1.1 keep-alive, answers "NAME PATH".
BACKEND = r"""
import http.server, socketserver, sys
name = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        # Head and body in one write: a SIGKILL between two writes would cut a response whose
        # head has gone to the client already, which no proxy can retry (nginx neither).
        out = ("%s %s" % (name, self.path)).encode()
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(out), out))
    def log_message(self, *args):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
s = S(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""

CLIENTS = 8


def start_backend(tmp_path, name):
    script = tmp_path / "backend.py"
    script.write_text(BACKEND)
    proc = subprocess.Popen(["/usr/bin/python3", str(script), name], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    port = int(proc.stdout.readline())
    return proc, port


def hammer(port, target, stop, results, errors):
    """One client: keep-alive GETs until `stop`; a connection the server closes is replaced."""
    conn = None
    n = 0
    while not stop.is_set():
        n += 1
        path = "%s%d" % (target, n)
        try:
            if conn is None:
                conn = Connection.tcp("127.0.0.1", port, 10.0)
            r = conn.request("GET", path)
            results.append((time.monotonic(), r.status, r.body))
            if r.status != 200 or not r.body.endswith(path.encode()):
                errors.append((path, r.status, r.body[:200]))
            if "close" in r.connection_tokens():
                conn.close()
                conn = None
        except (OSError, AssertionError) as exc:
            errors.append((path, "exception", repr(exc)))
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()


@pytest.mark.time_budget(90)
@pytest.mark.parametrize("keepalive", [True, False])
def test_killing_one_of_three_backends_under_load_fails_no_request(tmp_path, keepalive):
    backends = [start_backend(tmp_path, name) for name in ("A", "B", "C")]
    pool = "keepalive 16;" if keepalive else ""
    headers = 'proxy_http_version 1.1; proxy_set_header Connection "";' if keepalive else ""
    servers_conf = "\n".join("server 127.0.0.1:%d;" % port for _, port in backends)
    server = start_portico(str(tmp_path), """
        upstream three { %s %s }
        server { listen 127.0.0.1:@PORT@;
                 location / { proxy_pass http://three; %s } }
        """ % (servers_conf, pool, headers), 1, mime=False)
    stop = threading.Event()
    results, errors = [], []
    threads = [threading.Thread(target=hammer, args=(server.ports[0], "/c%d/" % i, stop,
                                                     results, errors))
               for i in range(CLIENTS)]
    try:
        for t in threads:
            t.start()
        # Let every backend serve (and, with the pool, hold cached connections), then kill B.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if {body[:1] for _, _, body in list(results)} >= {b"A", b"B", b"C"} and \
                    len(results) >= 300:
                break
            time.sleep(0.05)
        before = len(results)
        assert {body[:1] for _, _, body in results[:before]} >= {b"A", b"B", b"C"}
        victim = backends[1][0]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        # Keep the load on until many more requests went through the two survivors.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(results) < before + 600:
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=20)
        server.stop()
        for proc, _ in backends:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            proc.stdout.close()
    assert not errors, errors[:10]
    assert len(results) >= before + 600
    # The last 300 answers came after the kill (600 were sent after it): the survivors share them.
    after = [body[:1] for _, _, body in results[-300:]]
    assert set(after) == {b"A", b"C"}, set(after)
    with open(os.path.join(str(tmp_path), "portico-error.log"), errors="replace") as handle:
        log = handle.read()
    # The failures were seen and logged as nginx words them, while no client saw one.
    assert "upstream" in log and ("Connection refused" in log or "prematurely closed" in log
                                  or "Connection reset" in log), log[-2000:]
