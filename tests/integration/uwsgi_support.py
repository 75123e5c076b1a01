"""What the uwsgi tests share (test_uwsgi_server: portico behind nginx's uwsgi_pass;
test_uwsgi_pass: portico's uwsgi_pass in front of uWSGI): the tools from apt, the test apps,
and starting and stopping their processes."""

import os
import shutil
import subprocess
import time

import pytest

from servers import _can_connect, _tail

NGINX = "/usr/sbin/nginx"
UWSGI = shutil.which("uwsgi") or "/usr/bin/uwsgi"
UWSGI_PARAMS = "/etc/nginx/uwsgi_params"
APPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps")
READY = 10.0

needs_nginx_and_uwsgi = pytest.mark.skipif(
    not (os.access(NGINX, os.X_OK) and os.access(UWSGI, os.X_OK) and os.path.exists(UWSGI_PARAMS)),
    reason="needs Debian's nginx and uwsgi (+ uwsgi-plugin-python3)")


def wait_listening(proc, targets, log):
    """Until every (host, port) or unix path in `targets` accepts; fails if `proc` exits."""
    deadline = time.monotonic() + READY
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("exited %r:\n%s" % (proc.returncode, _tail(log)))
        if all(_can_connect(*t) for t in targets):
            return
        time.sleep(0.05)
    raise AssertionError("not listening after %s s:\n%s" % (READY, _tail(log)))


def stop(proc, sig=15):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
