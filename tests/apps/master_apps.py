"""A WSGI app for portico's master/worker fault tests: every route says which worker served it,
and some routes crash, hang, exit or grow the worker on purpose.

When PORTICO_TEST_BOOT_LOG names a file, the import appends this process's pid to it, so a test
can count how many processes imported the app (one per worker, or only the master with
--preload). The first path segment picks the route; unknown paths answer the pid.
"""

import ctypes
import hashlib
import json
import os
import random
import signal
import time
from urllib.parse import parse_qs

BOOT_LOG = os.environ.get("PORTICO_TEST_BOOT_LOG")
if BOOT_LOG:
    # O_APPEND keeps concurrent workers' lines whole.
    _fd = os.open(BOOT_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, b"%d\n" % os.getpid())
    os.close(_fd)

# pid -> the first draws from `random` in that process; a preloaded app that was not reseeded
# after fork would give every worker the same list.
_first_draws = {}

# Memory the /grow route keeps alive, to push the worker past --max-worker-memory.
_ballast = []


def _query(environ):
    parsed = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return {key: values[-1] for key, values in parsed.items()}


def _reply(start_response, body, content_type="text/plain"):
    if isinstance(body, str):
        body = body.encode("utf-8")
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def _json(start_response, value):
    return _reply(start_response, json.dumps(value), "application/json")


def _rss_mb():
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)


def stuck_forever_7f():
    """Never returns; a Python-level sleep loop, so the stack dump shows this frame."""
    while True:
        time.sleep(0.05)


def spin_forever_9c():
    """Never returns and never releases the GIL voluntarily: a CPU-bound loop."""
    count = 0
    while True:
        count += 1


def sleep_in_c_5e():
    """Never returns and runs no bytecode meanwhile: one long sleep in C, which an asynchronous
    exception cannot interrupt."""
    time.sleep(100000)


def route_pid(environ, start_response):
    return _reply(start_response, str(os.getpid()))


def route_sleep(environ, start_response):
    query = _query(environ)
    milliseconds = int(query.get("ms", "500"))
    if query.get("mark"):
        # Tells the test the request is running (its worker's thread is busy from now on).
        with open(query["mark"], "w") as handle:
            handle.write(str(os.getpid()))
    time.sleep(milliseconds / 1000.0)
    return _reply(start_response, str(os.getpid()))


def route_random(environ, start_response):
    pid = os.getpid()
    if pid not in _first_draws:
        _first_draws[pid] = [random.random() for _ in range(4)]
    return _json(start_response, {"pid": pid, "draws": _first_draws[pid]})


def route_segv_signal(environ, start_response):
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(5)  # the signal is delivered before this returns
    return _reply(start_response, "survived SIGSEGV?!")


def route_segv_null(environ, start_response):
    ctypes.string_at(0)
    return _reply(start_response, "survived a NULL read?!")


def route_sigkill(environ, start_response):
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(5)
    return _reply(start_response, "survived SIGKILL?!")


def route_exit(environ, start_response):
    os._exit(int(_query(environ).get("code", "7")))


def route_stuck(environ, start_response):
    stuck_forever_7f()
    return _reply(start_response, "unreachable")


def route_spin(environ, start_response):
    spin_forever_9c()
    return _reply(start_response, "unreachable")


def route_csleep(environ, start_response):
    sleep_in_c_5e()
    return _reply(start_response, "unreachable")


def route_grow(environ, start_response):
    megabytes = int(_query(environ).get("mb", "20"))
    # b"x" * n writes every page, so the RSS really grows (a zeroed bytearray might not).
    _ballast.append(b"x" * (megabytes * 1024 * 1024))
    return _json(start_response, {"pid": os.getpid(), "rss_mb": _rss_mb(), "chunks": len(_ballast)})


def route_body(environ, start_response):
    """The request body's length and SHA-256, with the pid that read it."""
    data = environ["wsgi.input"].read()
    return _json(start_response, {"pid": os.getpid(), "length": len(data),
                                  "sha256": hashlib.sha256(data).hexdigest(),
                                  "requests": environ.get("HTTP_X_SEQ", "")})


def route_orphan(environ, start_response):
    # A child that leaves a grandchild behind: the grandchild is reparented to the pid
    # namespace's init (portico's master, when it runs as PID 1), which must reap it.
    child = os.fork()
    if child == 0:
        if os.fork() == 0:
            time.sleep(0.2)
            os._exit(0)
        os._exit(0)
    os.waitpid(child, 0)
    return _reply(start_response, "orphaned")


ROUTES = {
    "orphan": route_orphan,
    "pid": route_pid,
    "body": route_body,
    "sleep": route_sleep,
    "random": route_random,
    "segv-signal": route_segv_signal,
    "segv-null": route_segv_null,
    "sigkill": route_sigkill,
    "exit": route_exit,
    "stuck": route_stuck,
    "spin": route_spin,
    "csleep": route_csleep,
    "grow": route_grow,
}


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    first = path.lstrip("/").split("/", 1)[0]
    return ROUTES.get(first, route_pid)(environ, start_response)
