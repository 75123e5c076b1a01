#!/usr/bin/python3
"""Instructions per request for one portico worker, measured with callgrind: repeatable on a busy
machine where wall-clock benchmarks are not. Starts portico (one worker) under valgrind, warms up,
zeroes the worker's counters, sends exactly --requests keep-alive requests over --conns
connections (a bounded client, no pipelining, wrk's request line and Host), dumps, and prints the
worker's total instructions ÷ requests plus the top inclusive functions.

    /usr/bin/python3 bench/callgrind.py [--app hello|django|static:100k.bin] [--conns 64]
                                        [--requests 20000] [--top 25] [--out DIR]

Not part of the test suite; bench/run.py measures wall-clock throughput.
"""

import argparse
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import run as harness  # noqa: E402  (the same apps, static files and Django setup as bench/run.py)

HOST = "127.0.0.1"


class Client:
    """One keep-alive connection that sends a request, reads the whole response, repeats."""

    def __init__(self, port, request):
        self.sock = socket.create_connection((HOST, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.request = request
        self.buf = b""
        self.need = None

    def send(self):
        self.sock.sendall(self.request)
        self.buf, self.need = b"", None

    def feed(self):
        """Reads what is there; True when a whole response has arrived."""
        data = self.sock.recv(1 << 20)
        if not data:
            raise RuntimeError("server closed a keep-alive connection")
        self.buf += data
        if self.need is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            head = self.buf[:end].decode("latin-1")
            if not head.startswith("HTTP/1.1 200"):
                raise RuntimeError("unexpected response: " + head.splitlines()[0])
            m = re.search(r"(?im)^content-length:\s*(\d+)", head)
            if not m:
                raise RuntimeError("response without Content-Length")
            self.need = end + 4 + int(m.group(1))
        return len(self.buf) >= self.need


def load(port, path, conns, requests):
    """Sends exactly `requests` requests over `conns` connections; returns the seconds taken."""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    clients = [Client(port, request) for _ in range(conns)]
    sent = done = 0
    start = time.monotonic()
    for c in clients:
        if sent < requests:
            c.send()
            sent += 1
            sel.register(c.sock, selectors.EVENT_READ, c)
    while done < requests:
        events = sel.select(timeout=120)
        if not events:
            raise RuntimeError(f"no response for 120 s ({done}/{requests} done)")
        for key, _ in events:
            c = key.data
            if c.feed():
                done += 1
                if sent < requests:
                    c.send()
                    sent += 1
                else:
                    sel.unregister(c.sock)
    elapsed = time.monotonic() - start
    for c in clients:
        c.sock.close()
    return elapsed


def waitPort(port, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("portico exited during start-up")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("portico did not start listening")


def workerPid(master):
    for _ in range(100):
        out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
        if out:
            return int(out[0])
        time.sleep(0.1)
    raise RuntimeError("no worker process")


def profile(args, ctx, requests, out):
    """Runs portico under callgrind for warm-up + `requests` requests; returns (total Ir of the
    worker, {function: inclusive Ir}, seconds of the measured load)."""
    port = harness.freePort()
    argv = [args.bin, "--bind", f"{HOST}:{port}", "-w", "1", "--keep-alive", "75"]
    backend = None
    if args.app.startswith("proxy:"):
        # proxy_pass to a keep-alive nginx serving the file (not profiled), as bench/run.py's
        # proxy scenarios: portico -c with the same upstream block and location.
        path = "/" + args.app.split(":", 1)[1]
        bport = harness.freePort()
        conf = os.path.join(out, "backend.conf")
        with open(conf, "w") as f:
            f.write(f"daemon off; master_process off; pid {out}/backend.pid; error_log {out}/backend.err;\n"
                    f"events {{ worker_connections 4096; }}\n"
                    f"http {{ access_log off; keepalive_requests 1000000;\n"
                    f"  server {{ listen {HOST}:{bport}; location / {{ root {ctx.staticDir()}; }} }} }}\n")
        backend = subprocess.Popen(["nginx", "-c", conf, "-p", out + "/", "-e", f"{out}/backend.err"])
        pconf = os.path.join(out, "portico.conf")
        with open(pconf, "w") as f:
            f.write(f"worker_processes 1; pid {out}/portico.pid; error_log {out}/portico.err;\n"
                    f"events {{ worker_connections 4096; }}\n"
                    f"http {{ access_log off; keepalive_timeout 75; keepalive_requests 1000000;\n"
                    f"  upstream backend {{ server {HOST}:{bport}; keepalive 32; }}\n"
                    f"  server {{ listen {HOST}:{port}; location / {{ proxy_pass http://backend; "
                    f"proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }} }}\n")
        argv = [args.bin, "-c", pconf]
    elif args.app.startswith("static:"):
        path = "/" + args.app.split(":", 1)[1]
        argv += ["--static", f"/={ctx.staticDir()}"]
    else:
        chdir, module, _wsgi_file, path = harness.appSpec(ctx, args.app)
        argv += ["--chdir", chdir]
        if args.app == "django":
            argv += ["--static", "/static/=staticfiles/"]
        argv.append(module)
    run = os.path.join(out, f"n{requests}")
    os.makedirs(run, exist_ok=True)
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={run}/callgrind.out.%p",
           "--dump-instr=no", "--vgdb=no"] + (["--cache-sim=yes"] if args.cache_sim else []) + args.valgrind_arg + argv
    with open(os.path.join(run, "valgrind.log"), "w") as log:
        master = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        waitPort(port, master)
        worker = workerPid(master.pid)
        load(port, path, min(args.conns, 64), args.warmup)
        seconds = load(port, path, args.conns, requests)
    finally:
        if backend:
            backend.terminate()
            backend.wait(timeout=30)
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(timeout=120)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()
    dump = os.path.join(run, f"callgrind.out.{worker}")
    total = None
    events = []
    with open(dump) as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            if line.startswith(("summary:", "totals:")):
                total = dict(zip(events, (int(x) for x in line.split()[1:])))
    return total, annotate(dump, True), annotate(dump, False), seconds, dump


def annotate(dump, inclusive):
    """{function: Ir} from callgrind_annotate, inclusive or self."""
    ann = subprocess.run(["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}",
                          "--threshold=100", "--auto=no", dump], capture_output=True, text=True).stdout
    functions = {}
    for line in ann.splitlines():
        m = re.match(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(?!=>)(?:[^:\s]*:)?(.*?)(?: \[.*\])?$", line)
        if m:
            # The same function may be listed under two file names (inlined code): keep the larger.
            functions[m.group(2)] = max(functions.get(m.group(2), 0), int(m.group(1).replace(",", "")))
    return functions


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--app", default="hello", help="hello, django, static:FILE or proxy:FILE (bench/run.py's apps; proxy: proxy_pass to an nginx serving FILE)")
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--warmup", type=int, default=2000)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--out", help="directory for the callgrind files (default: a temporary one)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "portico"))
    ap.add_argument("--cache-sim", action="store_true",
                    help="also simulate the caches: L1/last-level misses per request (user space only)")
    ap.add_argument("--valgrind-arg", action="append", default=[],
                    help="extra valgrind option, e.g. --valgrind-arg=--LL=1048576,16,64 (an L2-sized last level)")
    args = ap.parse_args()
    for tool, package in (("valgrind", "valgrind"), ("callgrind_annotate", "valgrind")):
        if not harness.shutil.which(tool):
            sys.exit(f"{tool} not found: apt-get install {package}")
    harness.raiseNofile()
    out = args.out or tempfile.mkdtemp(prefix="portico-callgrind-")
    os.makedirs(out, exist_ok=True)
    ctx = harness.Context(out)

    # Two runs that differ only in the number of measured requests: start-up, warm-up and
    # shutdown cancel out in the difference.
    small = max(args.requests // 4, 1)
    t1, i1, s1, _, _ = profile(args, ctx, small, out)
    t2, i2, s2, seconds, dump = profile(args, ctx, small + args.requests, out)
    n = args.requests
    print(f"app {args.app}, {args.conns} connections, {n} requests measured "
          f"({n / seconds:,.0f} req/s under valgrind)")
    print(f"worker: {(t2['Ir'] - t1['Ir']) / n:,.0f} Ir/request")
    if args.cache_sim:
        print("per request: " + ", ".join(f"{e} {(t2[e] - t1[e]) / n:,.1f}" for e in t2 if e != "Ir"))
    print(f"dump of the larger run: {dump}")
    for title, a, b in (("inclusive", i1, i2), ("self", s1, s2)):
        if not args.top:
            break
        rows = sorted(((b.get(k, 0) - a.get(k, 0), k) for k in b), reverse=True)
        print(f"{title} Ir/request  function")
        for ir, name in rows[: args.top]:
            print(f"{ir / n:>10,.0f}  {name[:140]}")

if __name__ == "__main__":
    main()
