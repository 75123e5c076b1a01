"""systemd socket activation, with systemd-socket-activate (from systemd) as the .socket unit: it
binds the address and, at the first connection, runs portico with the listening socket as
descriptor 3 (LISTEN_FDS=1, LISTEN_PID its own; blocking, as systemd passes it). With the flags portico serves the passed sockets in place of --bind (as
gunicorn does); with -c a passed socket serves the listen address it is, and one that matches
no listen is an error at start. A passed unix socket's file is systemd's: portico leaves it."""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from http_client import Connection
from servers import free_port, portico_binary
from wsgi_support import APPS_DIR, wait_until

ACTIVATE = shutil.which("systemd-socket-activate")
pytestmark = pytest.mark.skipif(ACTIVATE is None, reason="systemd-socket-activate is not installed")


def _listening(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Activated:
    """portico under systemd-socket-activate -l ADDRESS; stderr in a file."""

    def __init__(self, tmp_path, address, args):
        self.stderr_path = tmp_path / "stderr.log"
        self.err = open(self.stderr_path, "wb")
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        self.proc = subprocess.Popen([ACTIVATE, "-l", address, portico_binary()] + args,
                                     stdout=subprocess.DEVNULL, stderr=self.err,
                                     stdin=subprocess.DEVNULL, cwd=str(tmp_path), env=env)

    def log(self):
        return self.stderr_path.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        return self.proc.returncode


def _get(connect, path="/"):
    conn = Connection(connect(), timeout=5.0)
    try:
        return conn.request("GET", path)
    finally:
        conn.close()


def _answer(connect):
    """A response, or None while nothing serves yet."""
    try:
        return _get(connect)
    except OSError:
        return None


def _tcp(port):
    return lambda: socket.create_connection(("127.0.0.1", port), 2)


def _site_conf(tmp_path, port, location):
    conf = tmp_path / "site.conf"
    conf.write_text("daemon off;\nerror_log stderr info;\nevents {}\n"
                    "http { access_log off; server { listen 127.0.0.1:%d; "
                    "location / { %s } } }\n" % (port, location))
    return str(conf)


def test_the_flags_serve_the_passed_socket_in_place_of_bind(tmp_path):
    port, unused = free_port(), free_port()
    server = Activated(tmp_path, "127.0.0.1:%d" % port,
                       ["--bind", "127.0.0.1:%d" % unused, "--pythonpath", APPS_DIR,
                        "tiny:application"])
    try:
        assert wait_until(lambda: _answer(_tcp(port)) is not None, 10.0), server.log()
        response = _answer(_tcp(port))
        assert response is not None and response.status == 200, server.log()
        assert response.body == b"tiny app\n"
        assert "Listening at: http://127.0.0.1:%d" % port in server.log(), server.log()
        assert not _listening(unused), "--bind was used besides the passed socket"
        assert server.proc.poll() is None
    finally:
        assert server.stop() == 0, server.log()


def test_a_conf_listen_takes_the_passed_socket(tmp_path):
    port = free_port()
    conf = _site_conf(tmp_path, port, 'return 200 "activated\\n";')
    server = Activated(tmp_path, "127.0.0.1:%d" % port, ["-c", conf])
    try:
        assert wait_until(lambda: _answer(_tcp(port)) is not None, 10.0), server.log()
        response = _answer(_tcp(port))
        assert response.status == 200 and response.body == b"activated\n", response
        # Bound by systemd-socket-activate, not by portico: binding it again would have failed.
        assert "Address already in use" not in server.log()
        # A reload keeps systemd's socket.
        server.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        response = _answer(_tcp(port))
        assert response is not None and response.status == 200, server.log()
    finally:
        assert server.stop() == 0, server.log()


def test_a_passed_socket_that_matches_no_listen_is_an_error(tmp_path):
    port, other = free_port(), free_port()
    conf = _site_conf(tmp_path, other, "return 200;")
    server = Activated(tmp_path, "127.0.0.1:%d" % port, ["-c", conf])
    try:
        # systemd-socket-activate runs its command at the first connection.
        assert wait_until(lambda: _listening(port), 5.0)
        server.proc.wait(10)
    finally:
        server.stop()
    assert server.proc.returncode == 1, server.log()
    assert "the socket systemd passed for 127.0.0.1:%d matches no listen address" % port in \
        server.log(), server.log()


def test_a_passed_unix_socket_is_served_and_left_to_systemd(tmp_path):
    path = str(tmp_path / "app.sock")
    server = Activated(tmp_path, path, ["--pythonpath", APPS_DIR, "tiny:application"])
    try:
        def connect():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect(path)
            return s

        assert wait_until(lambda: _answer(connect) is not None, 10.0), server.log()
        assert _answer(connect).body == b"tiny app\n"
    finally:
        assert server.stop() == 0, server.log()
    assert os.path.exists(path), "portico removed the socket file systemd made"
