"""Certificates and keys that cannot be used are nginx's messages at `-t` (compared with nginx
1.22's own when it is installed) and at a HUP reload, where the running configuration stays and
keeps serving; and certificate rotation: a HUP with new files at the same paths gives new
connections the new certificate while established ones finish, with a client loop running
through the reload seeing no failed request."""

import os
import re
import shutil
import subprocess
import threading
import time

import pytest

from http_client import Connection, ProtocolError
from tls_support import TlsPortico, certs, peer_fingerprint, der_fingerprint  # noqa: F401

NGINX = "/usr/sbin/nginx"


def _conf(cert, key, listen_ssl=True, certificate_lines=True):
    lines = ""
    if certificate_lines:
        lines = "ssl_certificate %s;\n        ssl_certificate_key %s;" % (cert, key)
    return """
    server {
        listen 127.0.0.1:@PORT@%s;
        server_name localhost;
        %s
        location / { return 200 "ok\\n"; }
    }
""" % (" ssl" if listen_ssl else "", lines)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, certs):  # noqa: F811
    directory = tmp_path_factory.mktemp("bad-tls-files")
    garbage = directory / "garbage.pem"
    garbage.write_text("this is not PEM at all\n")
    bad_base64 = directory / "bad-base64.pem"
    bad_base64.write_text("-----BEGIN CERTIFICATE-----\nnot!base64!\n-----END CERTIFICATE-----\n")
    keydir = directory / "a-directory.key"
    keydir.mkdir()
    return {"garbage": str(garbage), "bad_base64": str(bad_base64), "dir": str(keydir)}


def _cases(certs, bad):  # noqa: F811
    """(id, cert, key, the message's stable prefix, a part of OpenSSL's reason)"""
    cert, key = certs.chain("localhost", "ecdsa"), certs.key("localhost", "ecdsa")
    missing = os.path.join(certs.dir, "missing.pem")
    return [
        ("missing-certificate", missing, key,
         'cannot load certificate "%s": BIO_new_file() failed (SSL: ' % missing,
         "No such file or directory"),
        ("missing-key", cert, missing,
         'cannot load certificate key "%s": BIO_new_file() failed (SSL: ' % missing,
         "No such file or directory"),
        ("unreadable-key", cert, bad["dir"],
         'cannot load certificate key "%s": PEM_read_bio_PrivateKey() failed (SSL: ' % bad["dir"],
         ""),
        ("key-of-another-certificate", cert, certs.key("a", "ecdsa"),
         'SSL_CTX_use_PrivateKey("%s") failed (SSL: ' % certs.key("a", "ecdsa"),
         "key values mismatch"),
        ("garbage-certificate", bad["garbage"], key,
         'cannot load certificate "%s": PEM_read_bio_X509_AUX() failed (SSL: ' % bad["garbage"],
         "no start line"),
        ("bad-base64-certificate", bad["bad_base64"], key,
         'cannot load certificate "%s": PEM_read_bio_X509_AUX() failed (SSL: ' % bad["bad_base64"],
         "bad base64 decode"),
        ("garbage-key", cert, bad["garbage"],
         'cannot load certificate key "%s": PEM_read_bio_PrivateKey() failed (SSL: ' % bad["garbage"],
         ""),
    ]


CASE_IDS = ["missing-certificate", "missing-key", "unreadable-key", "key-of-another-certificate",
            "garbage-certificate", "bad-base64-certificate", "garbage-key", "no-certificate"]


def _emerg(text):
    """The first [emerg] message of a -t run, without nginx's "PID#TID: "."""
    match = re.search(r"\[emerg\] (?:\d+#\d+: )?(.*)", text)
    return match.group(1).strip() if match else None


@pytest.mark.parametrize("case", CASE_IDS)
def test_t_reports_nginxs_message(tmp_path, certs, bad_files, case):  # noqa: F811
    if case == "no-certificate":
        body, prefix, reason = _conf("", "", certificate_lines=False), \
            'no "ssl_certificate" is defined for the "listen ... ssl" directive in ', ""
    else:
        _, cert, key, prefix, reason = [c for c in _cases(certs, bad_files) if c[0] == case][0]
        body = _conf(cert, key)
    server = TlsPortico(tmp_path, certs, body)
    server.ports = [18080]
    server.write()
    result = subprocess.run(server.command("-t"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=30)
    err = result.stderr.decode()
    assert result.returncode == 1, err
    message = _emerg(err)
    assert message is not None and message.startswith(prefix), err
    assert reason in message
    assert "test failed" in err
    if os.access(NGINX, os.X_OK):
        # The same file through nginx -t: the same message, OpenSSL's reasons included.
        nginx = subprocess.run([NGINX, "-t", "-p", str(tmp_path) + "/", "-c", server.conf],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        assert nginx.returncode == 1
        assert _emerg(nginx.stderr.decode()) == message


def test_an_unreadable_key_file(tmp_path, certs):  # noqa: F811
    if os.geteuid() == 0:
        pytest.skip("root reads a file whatever its mode (the directory case covers the message)")
    key = tmp_path / "key.pem"
    shutil.copy(certs.key("localhost", "ecdsa"), key)
    os.chmod(key, 0)
    server = TlsPortico(tmp_path, certs, _conf(certs.chain("localhost", "ecdsa"), str(key)))
    server.ports = [18080]
    server.write()
    result = subprocess.run(server.command("-t"), stderr=subprocess.PIPE, timeout=30)
    assert result.returncode == 1
    assert _emerg(result.stderr.decode()).startswith(
        'cannot load certificate key "%s": BIO_new_file() failed (SSL: ' % key)
    assert "Permission denied" in result.stderr.decode()


# --- reload -------------------------------------------------------------------------------------

SITE = r"""
    server {
        listen 127.0.0.1:@PORT@ ssl;
        server_name localhost;
        ssl_certificate @DIR@/cert.pem;
        ssl_certificate_key @DIR@/key.pem;
        location = /ok { return 200 "ok\n"; }
        location /app/ { wsgi_app introspect:application; wsgi_pythonpath @APPS@; }
    }
"""


@pytest.fixture(scope="module")
def running(tmp_path_factory, certs):  # noqa: F811
    workdir = tmp_path_factory.mktemp("tls-reload")
    shutil.copy(certs.chain("localhost", "ecdsa"), workdir / "cert.pem")
    shutil.copy(certs.key("localhost", "ecdsa"), workdir / "key.pem")
    server = TlsPortico(workdir, certs, SITE)
    server.start()
    yield server
    server.stop_and_check()


def _fingerprint(server):
    with server.tls_socket("localhost") as sock:
        fingerprint = peer_fingerprint(sock)
        response = Connection(sock).request("GET", "/ok", host="localhost")
        assert (response.status, response.body) == (200, b"ok\n")
        return fingerprint


def _refused_reload(server, body=None):
    """HUP; returns the text logged after it once the refusal is there."""
    before = server.workers()
    since = server.reload(body, wait_new_workers=False)
    match = server.wait_log(r"reload failed, keeping the running configuration: [^\n]*", since)
    assert match, "no refusal logged:\n%s" % server.logs()[since:]
    time.sleep(0.2)  # a worker that would (wrongly) be started shows by now
    assert server.workers() == before
    assert server.alive()
    return match.group(0)


def test_a_broken_certificate_at_reload_keeps_the_running_configuration(
        running, certs, bad_files):  # noqa: F811
    good = certs.fingerprint("localhost", "ecdsa")
    assert _fingerprint(running) == good
    for case, cert, key, prefix, reason in _cases(certs, bad_files):
        line = _refused_reload(running, SITE.replace("@DIR@/cert.pem", cert)
                               .replace("@DIR@/key.pem", key))
        assert prefix in line, (case, line)
        assert reason in line, (case, line)
        assert _fingerprint(running) == good
    line = _refused_reload(running, _conf("", "", certificate_lines=False))
    assert 'no "ssl_certificate" is defined for the "listen ... ssl" directive' in line
    # Garbage written over the running certificate's own file: the loaded one serves on.
    with open(os.path.join(running.workdir, "cert.pem"), "rb") as handle:
        saved = handle.read()
    try:
        with open(os.path.join(running.workdir, "cert.pem"), "w") as handle:
            handle.write("garbage\n")
        line = _refused_reload(running, SITE)
        assert 'cannot load certificate "%s/cert.pem": PEM_read_bio_X509_AUX() failed' % (
            running.workdir) in line
        assert _fingerprint(running) == good
    finally:
        with open(os.path.join(running.workdir, "cert.pem"), "wb") as handle:
            handle.write(saved)
    running.write(SITE)


class Loop:
    """A client loop through the reload: new connections and keep-alive reuse alternating, at
    most `limit` requests or `seconds`. A reused connection closed with no byte of the answer is
    the benign keep-alive race (RFC 9112 9.3.1): retried once on a new connection, as clients do.
    Anything else is a failure."""

    def __init__(self, server, limit=300, seconds=8.0):
        self.server = server
        self.limit = limit
        self.seconds = seconds
        self.done = 0
        self.failures = []
        self.stop = threading.Event()
        self.fingerprints = set()
        self.thread = threading.Thread(target=self._run)

    def _new(self):
        sock = self.server.tls_socket("localhost")
        self.fingerprints.add(peer_fingerprint(sock))
        return Connection(sock)

    def _one(self, conn):
        response = conn.request("GET", "/ok", host="localhost")
        if (response.status, response.body) != (200, b"ok\n"):
            raise AssertionError("bad answer %r" % response)
        if "close" in response.connection_tokens():
            conn.close()
            return None
        return conn

    def _run(self):
        deadline = time.monotonic() + self.seconds
        conn = None
        while self.done < self.limit and time.monotonic() < deadline and not self.stop.is_set():
            reuse = conn is not None and self.done % 2 == 1
            try:
                if not reuse:
                    if conn is not None:
                        conn.close()
                    conn = self._new()
                try:
                    conn = self._one(conn)
                except (ProtocolError, OSError) as error:
                    benign = reuse and not conn.buf and (
                        "closed before" in str(error) or
                        isinstance(error, (ConnectionResetError, BrokenPipeError)))
                    if not benign:
                        raise
                    conn.close()
                    conn = self._one(self._new())
                self.done += 1
            except Exception as error:  # noqa: BLE001 - every failure is reported
                self.failures.append(repr(error))
                conn = None
            time.sleep(0.005)
        if conn is not None:
            conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(20)


@pytest.mark.time_budget(60)
def test_certificate_rotation_on_hup(running, certs, tmp_path):  # noqa: F811
    old = certs.fingerprint("localhost", "ecdsa")
    assert _fingerprint(running) == old
    new_chain, new_key = certs.issue("localhost", "ecdsa", out_dir=tmp_path, stem="rotated")
    new = der_fingerprint(new_chain)
    assert new != old
    kept = running.connect("localhost")
    assert kept.request("GET", "/ok", host="localhost").status == 200
    slow = running.connect("localhost")
    # A response in flight through the reload: 8 pieces 0.25 s apart.
    slow.send(b"GET /app/drip?n=8&s=0.25 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    with Loop(running) as loop:
        time.sleep(0.3)
        # New files at the same paths (renamed into place: never half-written).
        for source, name in ((new_chain, "cert.pem"), (new_key, "key.pem")):
            shutil.copy(source, os.path.join(running.workdir, name + ".tmp"))
            os.replace(os.path.join(running.workdir, name + ".tmp"),
                       os.path.join(running.workdir, name))
        before = running.workers()
        os.kill(running.proc.pid, 1)  # SIGHUP
        # The established keep-alive connection is answered on after the HUP (its worker
        # drains it: one more response, then a close).
        response = kept.request("GET", "/ok", host="localhost")
        assert (response.status, response.body) == (200, b"ok\n")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (running.workers() & before or
                                               not running.workers()):
            time.sleep(0.05)
        assert not (running.workers() & before), "the old worker is still running"
        time.sleep(0.3)
    dripped = slow.read_response()
    assert dripped.status == 200
    assert dripped.body == b"".join(b"drip %d\n" % i for i in range(8))
    slow.close()
    kept.close()
    print("rotation: %d requests through the reload, %d failed" % (loop.done, len(loop.failures)))
    assert loop.failures == [], loop.failures[:5]
    assert loop.done >= 20
    assert old in loop.fingerprints and new in loop.fingerprints
    assert _fingerprint(running) == new
    assert running.alive()
