"""A location without `root` serves nginx's default `html` directory (relative to the prefix).
When it is missing, nginx says nothing at start: only a request that reaches it is answered 404
with an `open() ".../html/x" failed (2: No such file or directory)` line at level error, and a
directory created after start is served. portico is compared with Debian's nginx on each point."""

import os
import time

from nginx_diff import prepare_tree, start_nginx, start_portico, summary

NO_ROOT = """
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        location / { }
        location /other/ { index index.html; }
    }
"""


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def _wait_for(path, needle, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = _read(path)
        if needle in text:
            return text
        time.sleep(0.05)
    return _read(path)


def _run(server, prefix, error_log):
    """(start-up log, answers, log after the missing-root request, answer once html exists)."""
    time.sleep(0.3)  # let the worker finish starting before its log is read
    startup = _read(error_log)
    missing = summary(server.request("GET", "/x.txt"), server)
    line = 'open() "%s/html/x.txt" failed (2: No such file or directory)' % prefix
    after = _wait_for(error_log, line)
    os.makedirs(os.path.join(prefix, "html"), exist_ok=True)
    with open(os.path.join(prefix, "html", "x.txt"), "w") as handle:
        handle.write("late\n")
    found = summary(server.request("GET", "/x.txt"), server)
    return startup, missing, after, line, found


def test_missing_default_root_is_reported_per_request_as_nginx(tmp_path):
    workdir = str(tmp_path)
    prepare_tree(workdir, {})
    results = {}
    nginx = start_nginx(workdir, NO_ROOT, 1)
    try:
        results["nginx"] = _run(nginx, workdir, os.path.join(workdir, "nginx-error.log"))
    finally:
        nginx.stop()
    pdir = os.path.join(workdir, "portico")
    portico = start_portico(workdir, NO_ROOT, 1)
    try:
        results["portico"] = _run(portico, pdir, os.path.join(workdir, "portico-error.log"))
    finally:
        portico.stop()
    for name, (startup, missing, after, line, found) in results.items():
        # Nothing about the root at start, neither nginx nor portico.
        assert "html" not in startup and "[error]" not in startup, (name, startup)
        assert "cannot open directory" not in startup, (name, startup)
        # The request that reaches it: 404 and nginx's open() line at level error.
        assert missing["status"] == 404, (name, missing)
        assert any(line in entry and "[error]" in entry for entry in after.splitlines()), (
            name, after)
        # A root created after start is served (nginx opens per request).
        assert found["status"] == 200 and found["body"] == "late\n", (name, found)
    assert results["portico"][1] == results["nginx"][1]
    assert results["portico"][4] == results["nginx"][4]
    stderr = _read(os.path.join(pdir, "stderr.log"))
    assert "cannot open directory" not in stderr and "[ERROR]" not in stderr, stderr
