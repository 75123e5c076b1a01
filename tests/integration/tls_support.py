"""Helpers shared by the test_tls_*.py modules: certificates made with the openssl CLI (a CA, and
ECDSA P-256 and RSA-2048 server certificates for a.test, b.test and localhost, each file the leaf
followed by the CA), portico started with `-c` on an nginx-style configuration that uses them, and
TLS clients (Python's ssl, curl, openssl s_client).

No key is committed: everything is generated once per session into a temporary directory.
"""

import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

from http_client import Connection
from servers import _tail, free_port, portico_binary

APPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps")
READY_TIMEOUT = 10.0
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
CURL = shutil.which("curl") or "/usr/bin/curl"

NAMES = {
    "a": ["a.test", "www.a.test"],
    "b": ["b.test"],
    "localhost": ["localhost", "IP:127.0.0.1", "IP:::1"],
}


def _run(args, cwd, stdin=None):
    result = subprocess.run(args, cwd=cwd, input=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=60)
    if result.returncode != 0:
        raise AssertionError("%s failed: %s" % (" ".join(args), result.stderr.decode()))
    return result.stdout


def der_fingerprint(pem_path):
    """sha256 of the first certificate in a PEM file, in DER (what a client's getpeercert(True) is)."""
    with open(pem_path) as handle:
        text = handle.read()
    first = text[:text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


class Certs:
    """The CA and the server certificates in one directory: chain(name, kind) is the PEM chain
    (leaf + CA), key(name, kind) its key, fingerprint(name, kind) the leaf's DER sha256."""

    def __init__(self, directory):
        self.dir = str(directory)
        self.ca = os.path.join(self.dir, "ca.pem")
        self.ca_key = os.path.join(self.dir, "ca.key")
        self._serial = 1000

    def chain(self, name, kind):
        return os.path.join(self.dir, "%s-%s.pem" % (name, kind))

    def key(self, name, kind):
        return os.path.join(self.dir, "%s-%s.key" % (name, kind))

    def fingerprint(self, name, kind):
        return der_fingerprint(self.chain(name, kind))

    def make_ca(self):
        _run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.ca_key,
              "-out", self.ca, "-days", "30", "-subj", "/CN=portico test CA",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], self.dir)

    def issue(self, name, kind, out_dir=None, stem=None):
        """A new key and certificate for NAMES[name]; written as <stem>.pem (leaf + CA) and
        <stem>.key in out_dir (default: this directory, stem NAME-KIND). Returns (chain, key)."""
        out_dir = str(out_dir or self.dir)
        stem = stem or "%s-%s" % (name, kind)
        key = os.path.join(out_dir, stem + ".key")
        csr = os.path.join(out_dir, stem + ".csr")
        leaf = os.path.join(out_dir, stem + ".crt")
        chain = os.path.join(out_dir, stem + ".pem")
        newkey = ["-newkey", "rsa:2048"] if kind == "rsa" else [
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        hosts = NAMES[name]
        _run([OPENSSL, "req", "-new", "-nodes", "-keyout", key, "-out", csr,
              "-subj", "/CN=%s" % hosts[0]] + newkey, out_dir)
        ext = os.path.join(out_dir, stem + ".ext")
        alt = ",".join(h if h.startswith("IP:") else "DNS:" + h for h in hosts)
        with open(ext, "w") as handle:
            handle.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                         "extendedKeyUsage=serverAuth\n" % alt)
        self._serial += 1
        _run([OPENSSL, "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
              "-set_serial", str(self._serial), "-days", "30", "-out", leaf,
              "-extfile", ext], out_dir)
        with open(chain, "w") as out, open(leaf) as first, open(self.ca) as second:
            out.write(first.read() + second.read())
        for path in (csr, leaf, ext):
            os.unlink(path)
        return chain, key


def make_certs(directory):
    certs = Certs(directory)
    certs.make_ca()
    for name in NAMES:
        for kind in ("ecdsa", "rsa"):
            certs.issue(name, kind)
    return certs


_made = {}


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """The session's certificates, made once however many modules import this fixture."""
    if not os.access(OPENSSL, os.X_OK):
        pytest.skip("the openssl command is not installed")
    if "certs" not in _made:
        _made["certs"] = make_certs(tmp_path_factory.mktemp("certs"))
    return _made["certs"]


# --- portico with -c ------------------------------------------------------------------------------

def _can_connect(port, host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _can_connect_unix(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(path) == 0


class TlsPortico:
    """portico run with `-p DIR -c DIR/portico.conf` on an http{} body with placeholders:
    @PORT@ @PORT2@ @PORT3@ (free ports on 127.0.0.1), @DIR@ (the work directory), @CERTS@ (the
    certificate directory), @APPS@ (tests/apps). `main` goes before the events block."""

    def __init__(self, workdir, certs, http_body, main="", nports=1, ready_unix=(),
                 ready_hosts=()):
        self.workdir = str(workdir)
        self.certs = certs
        self.http_body = http_body
        self.main = main
        self.nports = nports
        self.ready_unix = list(ready_unix)
        self.ready_hosts = list(ready_hosts)  # the address of each port (default 127.0.0.1)
        self.ports = []
        self.proc = None
        self.conf = os.path.join(self.workdir, "portico.conf")
        self.error_log = os.path.join(self.workdir, "error.log")
        self.stderr_path = os.path.join(self.workdir, "stderr.log")

    @property
    def port(self):
        return self.ports[0]

    def render(self, body=None):
        text = """%(main)s
worker_processes 1;
pid %(dir)s/portico.pid;
error_log %(dir)s/error.log info;
events { worker_connections 1024; }
http {
    default_type application/octet-stream;
    access_log off;
%(body)s
}
""" % {"main": self.main, "dir": self.workdir, "body": body or self.http_body}
        text = text.replace("@DIR@", self.workdir).replace("@CERTS@", self.certs.dir)
        text = text.replace("@APPS@", APPS)
        for index in range(3, 0, -1):
            token = "@PORT%d@" % index if index > 1 else "@PORT@"
            if index <= len(self.ports):
                text = text.replace(token, str(self.ports[index - 1]))
        return text

    def write(self, body=None):
        with open(self.conf, "w") as handle:
            handle.write(self.render(body))

    def command(self, *extra):
        return [portico_binary(), "-p", self.workdir + "/", "-c", self.conf] + list(extra)

    def start(self):
        for _attempt in range(5):
            self.ports = [free_port(self._host(i)) for i in range(self.nports)]
            self.write()
            with open(self.stderr_path, "ab") as err:
                self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                             stderr=err, stdin=subprocess.DEVNULL,
                                             cwd=self.workdir)
            if self._wait_ready():
                return self
            self.stop()
            if "in use" not in self.logs():
                break
        raise AssertionError("portico did not start:\n%s" % self.logs())

    def _host(self, index):
        return self.ready_hosts[index] if index < len(self.ready_hosts) else "127.0.0.1"

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            if all(_can_connect(p, self._host(i)) for i, p in enumerate(self.ports)) and all(
                    _can_connect_unix(p) for p in self.ready_unix):
                time.sleep(0.05)
                return self.proc.poll() is None
            time.sleep(0.05)
        return False

    def logs(self):
        return _tail(self.stderr_path, 20000) + _tail(self.error_log, 20000)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def workers(self):
        """The master's live worker pids."""
        found = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry, "rb") as handle:
                    data = handle.read().decode("latin-1")
            except OSError:
                continue
            rest = data[data.rfind(")") + 2:].split()
            if int(rest[1]) == self.proc.pid and rest[0] != "Z":
                found.add(int(entry))
        return found

    def reload(self, body=None, wait_new_workers=True, timeout=10.0):
        """Rewrites the file (when `body` is given), sends HUP and, unless told not to, waits
        until the workers running before are gone and a new one runs."""
        if body is not None:
            self.write(body)
        before = self.workers()
        log_before = len(self.logs())
        os.kill(self.proc.pid, signal.SIGHUP)
        if not wait_new_workers:
            return log_before
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.workers()
            if now and not (now & before):
                return log_before
            time.sleep(0.05)
        raise AssertionError("no new workers after HUP (before %r, now %r):\n%s" % (
            before, self.workers(), self.logs()))

    def wait_log(self, pattern, since=0, timeout=5.0):
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = regex.search(self.logs()[since:])
            if match:
                return match
            time.sleep(0.05)
        return None

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def stop_and_check(self):
        assert self.alive(), "portico died (exit %r):\n%s" % (self.proc.returncode, self.logs())
        code = self.stop()
        assert code == 0, "portico exit %r after SIGTERM:\n%s" % (code, self.logs())

    # --- clients ---

    def tls_socket(self, sni="localhost", port=None, context=None, timeout=5.0, host="127.0.0.1"):
        return tls_socket(port or self.port, sni, context or client_context(self.certs),
                          timeout=timeout, host=host)

    def connect(self, sni="localhost", port=None, context=None, timeout=5.0):
        """An http_client.Connection over TLS (a handshake done)."""
        return Connection(self.tls_socket(sni, port, context, timeout), timeout)

    def request(self, target, sni="localhost", host=None, port=None, method="GET", body=b"",
                headers=None, context=None):
        with self.connect(sni, port, context) as conn:
            return conn.request(method, target, host=host or sni or "localhost", body=body,
                                headers=headers)


def client_context(certs, alpn=None, ciphers=None, max_version=None):
    """A verifying client context that trusts the test CA."""
    context = ssl.create_default_context(cafile=certs.ca)
    if alpn is not None:
        context.set_alpn_protocols(alpn)
    if max_version is not None:
        context.maximum_version = max_version
    if ciphers is not None:
        context.set_ciphers(ciphers)
    return context


def tls_socket(port, sni, context, timeout=5.0, host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    raw = socket.socket(family, socket.SOCK_STREAM)
    raw.settimeout(timeout)
    try:
        raw.connect((host, port))
        if sni is None:
            # No SNI: Python sends none for an IP address; verification by the CA only.
            context.check_hostname = False
        return context.wrap_socket(raw, server_hostname=sni)
    except Exception:
        raw.close()
        raise


def peer_fingerprint(sock):
    return hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest()


def curl(args, timeout=20):
    """Runs curl; returns (exit code, stdout bytes, stderr text)."""
    if not os.access(CURL, os.X_OK):
        pytest.skip("curl is not installed")
    result = subprocess.run([CURL, "-sS"] + list(args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=timeout)
    return result.returncode, result.stdout, result.stderr.decode("utf-8", "replace")


def s_client(port, args, stdin=b"", timeout=20, host="127.0.0.1"):
    """Runs `openssl s_client -connect HOST:PORT ARGS`; returns (exit code, stdout+stderr text)."""
    target = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
    result = subprocess.run([OPENSSL, "s_client", "-connect", target] + list(args),
                            input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            timeout=timeout)
    return result.returncode, result.stdout.decode("utf-8", "replace")


def s_client_fingerprint(output):
    """sha256 (DER) of the server certificate s_client printed (needs no -showcerts)."""
    match = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", output, re.S)
    assert match, "s_client printed no certificate:\n%s" % output[-3000:]
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(match.group(0))).hexdigest()


def sha256(data):
    return hashlib.sha256(data).hexdigest()
