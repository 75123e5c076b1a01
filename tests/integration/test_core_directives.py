"""The core directives and variables of nginx's http core and log modules, against Debian's nginx.

Each case runs the same `http {}` body in nginx and in portico (nginx_diff.py), sends the same
raw bytes to both (pipelined, kept-alive, odd User-Agents) and compares what matters: the
answers' status lines and X-/Connection headers, and the access-log lines both servers wrote
(relative log paths land under each server's own -p prefix).
"""

import gzip
import os
import socket
import time

from nginx_diff import prepare_tree, start_nginx, start_portico


def raw_exchange(port, data, wait=3.0):
    """Sends `data` on one connection and reads until the server closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        out = b""
        s.settimeout(wait + 1.0)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
    return out


def heads(raw):
    """Status lines and the compared headers of every response in `raw` (bodies are empty)."""
    out = []
    for block in raw.split(b"\r\n\r\n"):
        lines = block.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/"):
            continue
        kept = [lines[0]] + sorted(l for l in lines[1:]
                                   if l.lower().startswith(("x-", "connection:", "keep-alive:")))
        out.append(kept)
    return out


def read_log(path, binary=False):
    for _ in range(50):  # written when the response is finalized
        if os.path.exists(path):
            break
        time.sleep(0.05)
    if not os.path.exists(path):
        return None
    with open(path, "rb") as handle:
        data = handle.read()
    return data if binary else data.decode("latin-1")


def wait_for_lines(path, count):
    """Waits (bounded) until the log at `path` holds `count` lines. nginx writes the line of a
    pipelined Connection: close request only when its lingering close ends, after the client has
    seen the response; stopping it sooner loses the line."""
    for _ in range(100):
        if os.path.exists(path):
            with open(path, "rb") as handle:
                if handle.read().count(b"\n") >= count:
                    return
        time.sleep(0.05)


def run_both(tmp_path, body, scripts, logs=(), files=None, lines=None):
    """Runs `body` in nginx then portico; sends each raw script on its own connection; returns
    ({server: [heads per script]}, {server: {log: text}}). `lines` ({log: count}) names logs
    whose lines must all be written before a server is stopped."""
    workdir = str(tmp_path)
    prepare_tree(workdir, files or {"www/index.html": "home\n", "www/f.txt": "file\n"})
    answers, written = {}, {}
    for name, start, prefix in (("nginx", start_nginx, workdir),
                                ("portico", start_portico, os.path.join(workdir, "portico"))):
        os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
        served = start(workdir, body, 1)
        try:
            answers[name] = [heads(raw_exchange(served.ports[0], script.replace(
                b"@HOST@", b"localhost"))) for script in scripts]
            for log, count in (lines or {}).items():
                wait_for_lines(os.path.join(prefix, "logs", log), count)
        finally:
            served.stop()
        written[name] = {log: read_log(os.path.join(prefix, "logs", log),
                                       binary=log.endswith(".gz")) for log in logs}
    return answers, written


def request(target, method="GET", extra=b"", close=False):
    head = b"%s %s HTTP/1.1\r\nHost: @HOST@\r\n" % (method.encode(), target.encode())
    if close:
        head += b"Connection: close\r\n"
    return head + extra + b"\r\n"


CONNECTION_VARIABLES = r"""
    log_format conn '$uri $status $request_length $connection_requests $pipe $body_bytes_sent';
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        server_tokens off;
        access_log logs/conn.log conn;
        location / { add_header X-Conn "$connection_requests $pipe"; return 204; }
    }
"""


def test_connection_variables_and_pipelining(tmp_path):
    scripts = [
        request("/one", close=True),
        # Pipelined: the second and third requests are read before the first ends.
        request("/a") + request("/b?x=1", extra=b"X-Pad: 12345\r\n") + request("/c", close=True),
    ]
    answers, logs = run_both(tmp_path, CONNECTION_VARIABLES, scripts, logs=["conn.log"],
                             lines={"conn.log": 4})
    assert answers["portico"] == answers["nginx"]
    assert logs["nginx"]["conn.log"] is not None
    assert logs["portico"]["conn.log"] == logs["nginx"]["conn.log"]
    assert "/b 204 " in logs["portico"]["conn.log"] and " 2 p 0" in logs["portico"]["conn.log"]


MERGE_SLASHES = r"""
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        merge_slashes off;
        location / { add_header X-URI "x $uri x"; return 204; }
    }
"""


def test_merge_slashes_off(tmp_path):
    scripts = [request(t, close=True) for t in
               ("/foo//../bar", "/foo///../bar", "//a//b/", "/a/./b//", "/x//y/..")]
    answers, _ = run_both(tmp_path, MERGE_SLASHES, scripts)
    assert answers["portico"] == answers["nginx"]
    assert "X-URI: x /foo//bar x" in answers["portico"][1][0]


ACCESS_LOG_PARAMETERS = r"""
    log_format test '$uri:$status';
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        location /filtered { access_log logs/filtered.log test if=$arg_logme$arg_too; return 200 OK; }
        location /zipped { access_log logs/zipped.log.gz test gzip=9 buffer=8k flush=1s; return 200 OK; }
        location /var { root @DIR@/www; access_log logs/var_$arg_name test; return 200 OK; }
        location /noroot { root @DIR@/nowhere; access_log logs/noroot_$arg_name test; return 200 OK; }
    }
"""


def test_access_log_if_gzip_and_variable_paths(tmp_path):
    targets = ["/filtered/none", "/filtered/empty?logme=", "/filtered/zero?logme=0",
               "/filtered/yes?logme=1", "/filtered/too?too=0", "/filtered/both?logme=0&too=0",
               "/zipped/1", "/zipped/2", "/var?name=a", "/var?name=b", "/var?name=a", "/noroot?name=a"]
    scripts = [request(t, close=True) for t in targets]
    logs = ["filtered.log", "zipped.log.gz", "var_a", "var_b", "noroot_a"]
    answers, written = run_both(tmp_path, ACCESS_LOG_PARAMETERS, scripts, logs=logs)
    assert answers["portico"] == answers["nginx"]
    for name in ("filtered.log", "var_a", "var_b", "noroot_a"):
        assert written["portico"][name] == written["nginx"][name], name
    assert written["portico"]["var_a"] == "/var:200\n/var:200\n"
    assert written["portico"]["noroot_a"] is None  # the root does not exist: nginx skips it
    # "" and "0" skip the line; "00" does not.
    assert written["portico"]["filtered.log"] == "/filtered/yes:200\n/filtered/both:200\n"
    # nginx flushes its gzip buffer at exit as one member; portico writes one per line: the
    # text inside is the same.
    assert gzip.decompress(written["portico"]["zipped.log.gz"]).decode() == \
        gzip.decompress(written["nginx"]["zipped.log.gz"]).decode() == "/zipped/1:200\n/zipped/2:200\n"


KEEPALIVE = r"""
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        keepalive_requests 100;
        keepalive_timeout 30s;
        location / { add_header X-Conn "$connection_requests"; return 204; }
        location /safari { keepalive_disable safari; return 204; }
        location /none { keepalive_disable none; return 204; }
        location /time { keepalive_time 1s; add_header X-Conn "$connection_requests"; return 204; }
    }
"""


def test_keepalive_disable_and_keepalive_time(tmp_path):
    msie5 = b"User-Agent: Mozilla/4.0 (compatible; MSIE 5.0; Windows 98)\r\n"
    safari = b"User-Agent: Mac OS X Safari/7534.48.3\r\n"
    post = b"Content-Length: 0\r\n"
    scripts = [
        request("/", "POST", msie5 + post) + request("/", close=True),
        request("/", "GET", msie5) + request("/", close=True),
        request("/safari", "GET", safari) + request("/", close=True),
        request("/", "GET", safari) + request("/", close=True),
        request("/none", "POST", msie5 + post) + request("/", close=True),
    ]
    answers, _ = run_both(tmp_path, KEEPALIVE, scripts)
    assert answers["portico"] == answers["nginx"]
    assert len(answers["portico"][0]) == 1 and "Connection: close" in answers["portico"][0][0]
    assert len(answers["portico"][1]) == 2


def test_keepalive_time_ends_an_old_connection(tmp_path):
    workdir = str(tmp_path)
    prepare_tree(workdir, {"www/index.html": "home\n"})
    results = {}
    for name, start in (("nginx", start_nginx), ("portico", start_portico)):
        served = start(workdir, KEEPALIVE, 1)
        try:
            with socket.create_connection(("127.0.0.1", served.ports[0]), timeout=5) as s:
                s.sendall(request("/time").replace(b"@HOST@", b"localhost"))
                first = s.recv(65536)
                time.sleep(1.2)
                s.sendall(request("/time").replace(b"@HOST@", b"localhost"))
                second = s.recv(65536)
            results[name] = heads(first) + heads(second)
        finally:
            served.stop()
    assert results["portico"] == results["nginx"]
    assert "Connection: keep-alive" in results["portico"][0]
    assert "Connection: close" in results["portico"][1]


IF_MODIFIED_SINCE = r"""
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        root @DIR@/www;
        location /exact/ { }
        location /before/ { if_modified_since before; }
        location /off/ { if_modified_since off; }
    }
"""


def test_if_modified_since_modes(tmp_path):
    files = {"www/%s/f.txt" % mode: "f\n" for mode in ("exact", "before", "off")}
    workdir = str(tmp_path)
    prepare_tree(workdir, files)
    for mode in ("exact", "before", "off"):
        os.utime(os.path.join(workdir, "www", mode, "f.txt"), (1600000000, 1600000000))
    dates = ["Sun, 13 Sep 2020 12:26:40 GMT",  # the file's own date
             "Sun, 13 Sep 2020 12:26:41 GMT",  # later
             "Sun, 13 Sep 2020 12:26:39 GMT",  # earlier
             "garbage"]
    scripts = [request("/%s/f.txt" % mode, extra=b"If-Modified-Since: %s\r\n" % d.encode(),
                       close=True)
               for mode in ("exact", "before", "off") for d in dates]
    answers = {}
    for name, start in (("nginx", start_nginx), ("portico", start_portico)):
        served = start(workdir, IF_MODIFIED_SINCE, 1)
        try:
            answers[name] = [raw_exchange(served.ports[0], s.replace(b"@HOST@", b"localhost"))
                             .split(b"\r\n")[0] for s in scripts]
        finally:
            served.stop()
    assert answers["portico"] == answers["nginx"]
    assert answers["portico"][0:4] == [b"HTTP/1.1 304 Not Modified", b"HTTP/1.1 200 OK",
                                       b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK"]


ERROR_LOGS = r"""
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        root @DIR@/www;
        location /a/ { error_log logs/a_error.log; error_log logs/a_crit.log crit; }
        location /quiet/ { error_log logs/quiet.log crit; }
    }
"""


def test_error_log_per_location(tmp_path):
    scripts = [request("/a/missing", close=True), request("/quiet/missing", close=True),
               request("/elsewhere/missing", close=True)]
    logs = ["a_error.log", "a_crit.log", "quiet.log"]
    answers, written = run_both(tmp_path, ERROR_LOGS, scripts, logs=logs)
    assert answers["portico"] == answers["nginx"]
    for server in ("nginx", "portico"):
        a = written[server]["a_error.log"] or ""
        assert 'open() "%s/www/a/missing" failed (2: No such file or directory)' % tmp_path in a
        assert "/quiet/" not in a and "/elsewhere/" not in a
        assert not written[server]["a_crit.log"]
        assert not written[server]["quiet.log"]


def test_access_log_to_syslog(tmp_path):
    """nginx's `access_log syslog:` datagrams, header included, against nginx's own."""
    received = {}
    for name, start in (("nginx", start_nginx), ("portico", start_portico)):
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(3)
        port = sink.getsockname()[1]
        body = r"""
    log_format t '$uri $status';
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        location /a { access_log syslog:server=127.0.0.1:%d t; return 204; }
        location /b { access_log syslog:server=127.0.0.1:%d,facility=user,severity=alert,tag=SEETHIS t; return 204; }
        location /c { access_log syslog:server=127.0.0.1:%d,nohostname t; return 204; }
    }
""" % (port, port, port)
        workdir = os.path.join(str(tmp_path), name)
        os.makedirs(workdir)
        prepare_tree(workdir, {"www/index.html": "home\n"})
        served = start(workdir, body, 1)
        try:
            messages = []
            for target in ("/a", "/b", "/c"):
                raw_exchange(served.ports[0], request(target, close=True).replace(
                    b"@HOST@", b"localhost"))
                messages.append(sink.recv(4096).decode())
        finally:
            served.stop()
            sink.close()
        # The time stamp differs by when each ran: compare "<PRI>" and what follows the time.
        received[name] = [(m.split(">", 1)[0], m[m.index(">") + 17:]) for m in messages]
    assert received["portico"] == received["nginx"]
    assert received["portico"][0][0] == "<190"
    assert received["portico"][1][0] == "<9"
    assert received["portico"][2][1] == "nginx: /c 204"


SHUTDOWN = r"""
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        root @DIR@/www;
        sendfile on;
    }
"""


def test_worker_shutdown_timeout_closes_busy_connections(tmp_path):
    """A client that stops reading a large response holds a graceful stop; after
    worker_shutdown_timeout its connection is closed and the server exits. (Not against nginx:
    the harness runs it with master_process off, where QUIT ends it at once.)"""
    import signal
    import subprocess
    workdir = str(tmp_path)
    prepare_tree(workdir, {"www/big.bin": b"x" * (32 << 20)})
    import nginx_diff
    original = nginx_diff.config_text

    def with_timeout(http_body, wd, ports, for_nginx, *rest):
        return "worker_shutdown_timeout 500ms;\n" + original(http_body, wd, ports, for_nginx, *rest)

    nginx_diff.config_text = with_timeout
    try:
        for name, start in (("portico", start_portico),):
            served = start(workdir, SHUTDOWN, 1)
            try:
                with socket.create_connection(("127.0.0.1", served.ports[0]), timeout=5) as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    time.sleep(0.3)  # the response is under way, the client reads nothing
                    began = time.monotonic()
                    served.proc.send_signal(signal.SIGQUIT)
                    try:
                        served.proc.wait(timeout=8)
                    except subprocess.TimeoutExpired:
                        pass
                    took = time.monotonic() - began
                    assert served.proc.poll() is not None, "%s still running" % name
                    assert 0.4 <= took < 5, (name, took)
            finally:
                served.stop()
    finally:
        nginx_diff.config_text = original
