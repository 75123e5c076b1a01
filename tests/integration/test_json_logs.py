"""JSON logs for log collectors: `--log-format json` writes the error log as one JSON object per
line (time, level, pid, message) and, unless --access-logformat is given, the access log too
(the combined format's fields plus method, path, query, protocol, request time); in the file
`error_log_format json;` does it for the error log (access logs have nginx's `log_format ...
escape=json`). Every line must parse, whatever bytes the client sent."""

import json
import socket
import subprocess

from servers import conf_server, free_port, portico_binary
from wsgi_support import read_text, start_wsgi, wait_until


def lines(path):
    return [json.loads(line) for line in read_text(path).splitlines() if line]


def test_flags_json_error_and_access_logs(launch, tmp_path):
    access = str(tmp_path / "access.log")
    server = start_wsgi(launch, app="master_apps:application",
                        args=["--log-format", "json", "--access-logfile", access])
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b'GET /pid?q=%22x HTTP/1.1\r\nHost: h\r\nUser-Agent: a"b\\c\xe9\r\n'
                     b'Referer: http://r/\r\nConnection: close\r\n\r\n')
        while sock.recv(65536):
            pass
    wait_until(lambda: read_text(access).count("\n") >= 1, 5.0)
    [entry] = lines(access)
    assert entry["method"] == "GET" and entry["path"] == "/pid" and entry["query"] == "q=%22x"
    assert entry["status"] == 200 and entry["protocol"] == "HTTP/1.1"
    assert entry["user_agent"] == 'a"b\\c\u00e9'  # a raw byte is its Latin-1 code point
    assert entry["referer"] == "http://r/" and entry["remote_addr"] == "127.0.0.1"
    assert isinstance(entry["request_time"], float) and entry["body_bytes_sent"] > 0
    errors = lines(server.error_log)
    assert errors and all(set(e) == {"time", "level", "pid", "message"} for e in errors)
    assert any(e["message"].startswith("Listening at: ") and e["level"] == "info" for e in errors)


def test_access_logformat_wins_over_json(launch, tmp_path):
    access = str(tmp_path / "access.log")
    server = start_wsgi(launch, app="master_apps:application",
                        args=["--log-format", "json", "--access-logfile", access,
                              "--access-logformat", "%(m)s %(U)s %(s)s"])
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /pid HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        while sock.recv(65536):
            pass
    wait_until(lambda: read_text(access).count("\n") >= 1, 5.0)
    assert read_text(access) == "GET /pid 200\n"


def test_error_log_format_in_the_file(tmp_path):
    port = free_port()
    conf = tmp_path / "site.conf"
    conf.write_text("""
error_log_format json;
error_log %(dir)s/error.log info;
pid %(dir)s/portico.pid;
events {}
http {
    access_log off;
    server { listen 127.0.0.1:%(port)d; location / { return 404; } }
}
""" % {"dir": tmp_path, "port": port})
    with conf_server(conf):
        log = str(tmp_path / "error.log")
        wait_until(lambda: "worker" in read_text(log), 10.0)
    entries = lines(log)
    # nginx's level names in the nginx mode.
    assert entries and {e["level"] for e in entries} <= {"info", "notice", "warn", "error"}


def test_bad_values_are_refused(tmp_path):
    result = subprocess.run([portico_binary(), "--log-format", "xml", "x:app"], capture_output=True,
                            timeout=10)
    assert result.returncode == 2 and b"invalid choice: 'xml'" in result.stderr
    conf = tmp_path / "bad.conf"
    conf.write_text("error_log_format yaml;\nevents {}\nhttp {}\n")
    result = subprocess.run([portico_binary(), "-t", "-c", str(conf)], capture_output=True,
                            timeout=10)
    assert result.returncode == 1
    assert (b'"error_log_format" directive invalid value "yaml" (text or json) in %s:1'
            % str(conf).encode()) in result.stderr, result.stderr
