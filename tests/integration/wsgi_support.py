"""Helpers shared by the test_wsgi_*.py modules: starting portico with a test app from tests/apps,
reading its error log with a bounded wait, and a few request shorthands."""

import json
import time
from pathlib import Path

APPS_DIR = str(Path(__file__).resolve().parents[1] / "apps")

LOG_WAIT = 5.0  # seconds to wait for a line to reach the error log


def start_wsgi(launcher, app="introspect:application", args=(), threads=None, pythonpath=True,
               static=True, **kwargs):
    """Starts portico serving `app` from tests/apps; the returned server has .error_log (a path)."""
    log_dir = launcher.tmp_path_factory.mktemp("wsgilog")
    error_log = str(log_dir / "error.log")
    full = ["--error-logfile", error_log]
    if pythonpath:
        full += ["--pythonpath", APPS_DIR]
    if threads is not None:
        full += ["--threads", str(threads)]
    full += list(args)
    full.append(app)
    server = launcher.start(full, static=static, **kwargs)
    server.error_log = error_log
    return server


def read_text(path):
    """A text file's content ("" when it does not exist yet), undecodable bytes replaced."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def read_log(server):
    """The error log plus stderr: Python may write to either, depending on where sys.stderr goes."""
    text = ""
    try:
        with open(server.error_log, "rb") as handle:
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        pass
    return text + "\n" + server.stderr()


def wait_for_log(server, needle, timeout=LOG_WAIT):
    """Polls the logs until `needle` shows up; returns the log text (the caller asserts)."""
    deadline = time.monotonic() + timeout
    while True:
        text = read_log(server)
        if needle in text or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def get(server, target, headers=None, method="GET", body=b"", version="HTTP/1.1", timeout=5.0):
    with server.connect(timeout=timeout) as conn:
        return conn.request(method, target, headers=headers, body=body, version=version)


def get_json(server, target, **kwargs):
    response = get(server, target, **kwargs)
    assert response.status == 200, response
    return json.loads(response.body)


def environ_of(server, target="/environ", **kwargs):
    return get_json(server, target, **kwargs)


def wait_until(predicate, timeout, interval=0.05):
    """Polls predicate() until it is truthy or timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
