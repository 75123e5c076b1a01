"""Starting and stopping the real portico binary (and nginx as an oracle) for the tests."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time

from http_client import Connection

READY_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def portico_binary():
    return os.environ.get("PORTICO_BIN", "/work/main/build/portico")


def free_port(host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def conf_server(conf):
    """Runs `portico -c CONF` for a with-block (the caller waits for what it needs); at its end
    the server must stop on TERM with exit 0."""
    proc = subprocess.Popen([portico_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        assert proc.wait(15) == 0


def _can_connect(family, address):
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(address)
            return True
        except OSError:
            return False


def terminate(proc, timeout=10.0):
    """SIGTERM, wait up to `timeout`, SIGKILL as a last resort (for servers a test started)."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _tail(path, limit=4000):
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return "<unreadable>"
    return data[-limit:].decode("utf-8", "replace")


class PorticoServer:
    """One running portico process; stdout/stderr go to files in its work directory."""

    def __init__(self, workdir, args, host="127.0.0.1", port=None, unix_path=None,
                 extra_ready=(), env=None):
        self.workdir = workdir
        self.args = list(args)
        self.host = host
        self.port = port
        self.unix_path = unix_path
        self.extra_ready = list(extra_ready)  # [(family, address)] that must accept too
        self.env = env
        self.proc = None
        self.returncode = None
        self.stdout_path = os.path.join(workdir, "portico.stdout")
        self.stderr_path = os.path.join(workdir, "portico.stderr")

    # The listener list is rebuilt on every attempt so a port lost to a race can be re-picked.
    def _bind_args(self):
        binds = []
        if self.unix_path is not None:
            binds += ["--bind", "unix:" + self.unix_path]
        if self.port is not None or self.unix_path is None:
            host = "[%s]" % self.host if ":" in self.host else self.host
            binds += ["--bind", "%s:%d" % (host, self.port)]
        return binds

    def start(self):
        pick_port = self.port is None and self.unix_path is None
        last_error = ""
        for _attempt in range(5):
            if pick_port:
                self.port = free_port(self.host)
            command = [portico_binary()] + self._bind_args() + self.args
            self.command = command
            with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
                self.proc = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                             cwd=self.workdir, env=self.env)
            if self._wait_ready():
                return self
            self.returncode = self.proc.poll()
            last_error = _tail(self.stderr_path)
            if self.returncode is None:
                self._kill()
            if not pick_port or "in use" not in last_error.lower():
                break
        raise AssertionError("portico did not come up (%s), exit %r; stderr:\n%s" % (
            " ".join(self.command), self.returncode, last_error))

    def _wait_ready(self):
        targets = list(self.extra_ready)
        if self.unix_path is not None:
            targets.append((socket.AF_UNIX, self.unix_path))
        if self.port is not None:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            targets.append((family, (self.host, self.port)))
        deadline = time.monotonic() + READY_TIMEOUT
        pending = list(targets)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            pending = [t for t in pending if not _can_connect(*t)]
            if not pending:
                # A listener that answered could belong to someone who stole the port; a portico
                # that lost the race exits at once, so give it a moment to do so.
                time.sleep(0.05)
                return self.proc.poll() is None
            time.sleep(0.05)
        return False

    def connect(self, timeout=5.0, rcvbuf=None):
        if self.port is None:
            return Connection.unix(self.unix_path, timeout)
        return Connection.tcp(self.host, self.port, timeout, rcvbuf=rcvbuf)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self):
        return _tail(self.stderr_path)

    def stdout(self):
        return _tail(self.stdout_path, limit=1 << 20)

    def _kill(self):
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=STOP_TIMEOUT)

    def terminate(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, wait, SIGKILL as a last resort; returns the exit code (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill()
                self.returncode = None
                return None
        self.returncode = self.proc.returncode
        return self.returncode

    def stop_and_check(self):
        was_alive = self.alive()
        code = self.stop()
        assert was_alive, "portico died during the tests (exit %r); stderr:\n%s" % (
            self.proc.returncode, self.stderr())
        assert code == 0, "portico exit code after SIGTERM was %r (None = still running 10 s after SIGTERM, killed); stderr:\n%s" % (
            code, self.stderr())


class NginxServer:
    """Debian's nginx on a free port with a private prefix, used as a differential oracle."""

    def __init__(self, workdir, server_block):
        self.workdir = workdir
        self.server_block = server_block
        self.port = None
        self.proc = None

    @staticmethod
    def binary():
        for candidate in ("/usr/sbin/nginx", shutil.which("nginx")):
            if candidate and os.access(candidate, os.X_OK):
                return candidate
        return None

    def start(self):
        for _attempt in range(5):
            self.port = free_port()
            self._write_config()
            error_log = os.path.join(self.workdir, "error.log")
            self.proc = subprocess.Popen(
                [self.binary(), "-p", self.workdir + "/", "-c", self.conf_path, "-e", error_log,
                 "-g", "daemon off;"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _can_connect(socket.AF_INET, ("127.0.0.1", self.port)):
                    return self
                time.sleep(0.05)
            self.stop()
        raise AssertionError("nginx did not start; error log:\n%s" % _tail(
            os.path.join(self.workdir, "error.log")))

    def _write_config(self):
        temp = os.path.join(self.workdir, "temp")
        os.makedirs(temp, exist_ok=True)
        user = "user root;" if os.geteuid() == 0 else ""
        self.conf_path = os.path.join(self.workdir, "nginx.conf")
        with open(self.conf_path, "w") as conf:
            conf.write("""
%(user)s
worker_processes 1;
master_process off;
pid %(dir)s/nginx.pid;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path %(temp)s/body;
    proxy_temp_path %(temp)s/proxy;
    fastcgi_temp_path %(temp)s/fastcgi;
    uwsgi_temp_path %(temp)s/uwsgi;
    scgi_temp_path %(temp)s/scgi;
    server {
        listen 127.0.0.1:%(port)d;
        server_name localhost;
        %(block)s
    }
}
""" % {"user": user, "dir": self.workdir, "temp": temp, "port": self.port, "block": self.server_block})

    def connect(self, timeout=5.0):
        return Connection.tcp("127.0.0.1", self.port, timeout)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)


def close_listener(sock):
    """Stops a test backend's listening socket for good. close() alone leaves it listening while
    another thread is blocked in accept() (the kernel holds it until that accept returns), so a
    later test's connection to a reused port could reach a finished test's backend; shutdown()
    wakes the accept (EINVAL) and ends the listening at once."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
