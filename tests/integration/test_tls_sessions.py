"""TLS session resumption across worker processes: the shared session cache
(ssl_session_cache shared:NAME:SIZE), session tickets (the master's random keys, or
ssl_session_ticket_key files), ssl_session_timeout, `off`, and the related ssl_* directives
(ssl_reject_handshake, ssl_password_file, ssl_conf_command, ssl_dhparam), with nginx's
messages at -t. Certificates are made with the openssl CLI at test time.

Which worker served a connection is read from /proc (the server side of the TCP connection
belongs to one worker's fd table), so "resumed on both workers" is checked, not assumed.
"""

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest

from servers import free_port, portico_binary

SESSION_ID_BODY = 'return 200 "$ssl_session_reused $ssl_session_id $ssl_protocol";'


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls-sessions-certs")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost", "-days", "2",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True)
    # The same key, encrypted with a passphrase (for ssl_password_file).
    subprocess.run(["openssl", "pkey", "-in", str(d / "key.pem"), "-aes256", "-passout",
                    "pass:secret2", "-out", str(d / "enc.pem")], check=True, capture_output=True)
    for name in ("a", "b"):
        with open(d / ("ticket-%s.key" % name), "wb") as f:
            f.write(os.urandom(80))
    with open(d / "ticket-48.key", "wb") as f:
        f.write(os.urandom(48))
    with open(d / "ticket-bad.key", "wb") as f:
        f.write(os.urandom(50))
    subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt",
                    "group:ffdhe2048", "-out", str(d / "dh.pem")], check=True, capture_output=True)
    return d


class Tls:
    """portico -c with one TLS server on 127.0.0.1; `worker_processes` workers."""

    def __init__(self, root, certs, server_lines, http_lines="", workers=2, body=SESSION_ID_BODY,
                 key="key.pem"):
        self.workdir = str(root)
        os.makedirs(self.workdir, exist_ok=True)
        self.port = free_port()
        self.conf = os.path.join(self.workdir, "tls.conf")
        with open(self.conf, "w") as f:
            f.write(conf_text(self.workdir, self.port, certs, server_lines, http_lines, workers,
                              body, key))
        self.proc = subprocess.Popen([portico_binary(), "-p", self.workdir + "/", "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir)
        deadline = time.monotonic() + 10
        while True:
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "portico did not listen"
                time.sleep(0.05)
        self.workers = set()
        while len(self.workers) < workers and time.monotonic() < deadline:
            self.workers = set(children(self.proc.pid))
            time.sleep(0.05)
        assert len(self.workers) == workers

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def conf_text(workdir, port, certs, server_lines, http_lines="", workers=2,
              body=SESSION_ID_BODY, key="key.pem"):
    return """worker_processes %d;
pid %s/portico.pid;
error_log %s/error.log info;
events { worker_connections 256; }
http {
    access_log off;
%s
    server {
        listen 127.0.0.1:%d ssl;
        server_name localhost;
        ssl_certificate %s/cert.pem;
        ssl_certificate_key %s/%s;
%s
        location / { %s }
    }
}
""" % (workers, workdir, workdir, http_lines, port, certs, certs, key, server_lines, body)


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def serving_pid(sock, pids):
    """The worker among `pids` holding the server side of the TCP connection `sock`."""
    local_port = sock.getsockname()[1]
    server_port = sock.getpeername()[1]
    want_local = "0100007F:%04X" % server_port
    want_remote = "0100007F:%04X" % local_port
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want_local and fields[2] == want_remote:
                inode = fields[9]
    if inode is None:
        return None
    target = "socket:[%s]" % inode
    for pid in pids:
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == target:
                        return pid
                except OSError:
                    pass
        except OSError:
            pass
    return None


def client_context(version=None, tickets=True, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
    if not tickets:
        ctx.options |= ssl.OP_NO_TICKET
    return ctx


class Result:
    def __init__(self, reused, body, session, pid, session_id):
        self.reused = reused
        self.body = body
        self.session = session
        self.pid = pid
        self.session_id = session_id


def fetch(server, ctx, session=None, port=None, server_name="localhost"):
    raw = socket.create_connection(("127.0.0.1", port or server.port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=server_name, session=session) as s:
        pid = serving_pid(s, server.workers) if server is not None else None
        s.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        body = data.split(b"\r\n\r\n", 1)[1].decode()
        session_id = s.session.id.hex() if s.session is not None else ""
        return Result(s.session_reused, body, s.session, pid, session_id)


@contextlib.contextmanager
def only_worker(server, pid):
    """Stops (SIGSTOP) every worker but `pid` so that the next connection can only be accepted
    by `pid`: which worker wins the accept race is the kernel's choice, and an idle server may
    let one worker win every time."""
    others = sorted(server.workers - {pid})
    try:
        for other in others:
            os.kill(other, signal.SIGSTOP)
        yield
    finally:
        for other in others:
            os.kill(other, signal.SIGCONT)


def resume_everywhere(server, ctx):
    """A first full handshake, then one resumption on each worker in turn (the others stopped
    meanwhile); returns the first result and the set of pids that resumed."""
    first = fetch(server, ctx)
    assert not first.reused and first.body.startswith(". "), first.body
    resumed_on = set()
    for pid in sorted(server.workers):
        with only_worker(server, pid):
            r = fetch(server, ctx, session=first.session)
        assert r.pid == pid, (r.pid, pid)
        assert r.reused, "not resumed on worker %s (first on %s): %s" % (r.pid, first.pid, r.body)
        assert r.body.startswith("r "), r.body
        resumed_on.add(r.pid)
    return first, resumed_on


@pytest.fixture
def running():
    started = []

    def start(*args, **kwargs):
        server = Tls(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# ---- the shared cache: session IDs (TLS 1.2) and stateful TLS 1.3 tickets ----

@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_shared_cache_resumes_on_every_worker(tmp_path, certs, running, version):
    server = running(tmp_path, certs, "ssl_session_cache shared:SSL:1m;\nssl_session_tickets off;")
    ctx = client_context(version, tickets=False)
    first, resumed_on = resume_everywhere(server, ctx)
    assert resumed_on == server.workers
    if version == ssl.TLSVersion.TLSv1_2:
        # $ssl_session_id is the ID the client resumes with.
        again = fetch(server, ctx, session=first.session)
        assert again.body.split()[1] == first.session_id
        assert first.body.split()[1] == first.session_id


def test_builtin_cache_resumes_within_one_worker(tmp_path, certs, running):
    server = running(tmp_path, certs, "ssl_session_cache builtin:1000;\nssl_session_tickets off;",
                     workers=1)
    ctx = client_context(ssl.TLSVersion.TLSv1_2, tickets=False)
    first, resumed_on = resume_everywhere(server, ctx)
    assert resumed_on == server.workers


@pytest.mark.parametrize("cache", ["off", "none"])
def test_without_a_cache_or_tickets_nothing_resumes(tmp_path, certs, running, cache):
    server = running(tmp_path, certs,
                     "ssl_session_cache %s;\nssl_session_tickets off;" % cache)
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_context(version, tickets=False)
        first = fetch(server, ctx)
        for _ in range(6):
            r = fetch(server, ctx, session=first.session)
            assert not r.reused and r.body.startswith(". "), r.body


def test_session_timeout_expires_cached_sessions(tmp_path, certs, running):
    server = running(tmp_path, certs, "ssl_session_cache shared:SSL:1m;\n"
                     "ssl_session_tickets off;\nssl_session_timeout 1s;")
    ctx = client_context(ssl.TLSVersion.TLSv1_2, tickets=False)
    first = fetch(server, ctx)
    # Within the second it resumes (a slow machine may take longer: then it simply is not
    # asserted), after it never does.
    start = time.monotonic()
    r = fetch(server, ctx, session=first.session)
    if time.monotonic() - start < 0.5:
        assert r.reused
    time.sleep(2.2)
    for _ in range(4):
        assert not fetch(server, ctx, session=first.session).reused


# ---- tickets ----

@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tickets_without_key_files_resume_on_every_worker(tmp_path, certs, running, version):
    # No session cache at all (nginx's default `none`): only the tickets can resume, and the
    # master's keys are every worker's.
    server = running(tmp_path, certs, "")
    ctx = client_context(version)
    first, resumed_on = resume_everywhere(server, ctx)
    assert resumed_on == server.workers


def test_ticket_key_files_shared_and_not(tmp_path, certs, running):
    a = running(tmp_path / "a", certs, "ssl_session_ticket_key %s/ticket-a.key;" % certs)
    same = running(tmp_path / "same", certs, "ssl_session_ticket_key %s/ticket-a.key;" % certs)
    other = running(tmp_path / "other", certs, "ssl_session_ticket_key %s/ticket-b.key;" % certs)
    # A server decrypting with an older key (the second) still resumes its tickets.
    rotated = running(tmp_path / "rotated", certs,
                      "ssl_session_ticket_key %s/ticket-b.key;\n"
                      "ssl_session_ticket_key %s/ticket-a.key;" % (certs, certs))
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_context(version)
        first = fetch(a, ctx)
        assert not first.reused
        assert fetch(same, ctx, session=first.session).reused
        assert fetch(rotated, ctx, session=first.session).reused
        assert not fetch(other, ctx, session=first.session).reused
        # Tickets from separate portico processes without key files never cross.
        assert not fetch(other, ctx, session=fetch(same, ctx).session).reused


def test_48_byte_ticket_key(tmp_path, certs, running):
    one = running(tmp_path / "one", certs, "ssl_session_ticket_key %s/ticket-48.key;" % certs)
    two = running(tmp_path / "two", certs, "ssl_session_ticket_key %s/ticket-48.key;" % certs)
    ctx = client_context(ssl.TLSVersion.TLSv1_2)
    first = fetch(one, ctx)
    assert fetch(two, ctx, session=first.session).reused


def test_tickets_off_and_no_cache_means_full_handshakes(tmp_path, certs, running):
    server = running(tmp_path, certs, "ssl_session_tickets off;")
    ctx = client_context(ssl.TLSVersion.TLSv1_3)
    first = fetch(server, ctx)
    assert not fetch(server, ctx, session=first.session).reused


# ---- other directives ----

def test_reject_handshake_for_unknown_names(tmp_path, certs):
    workdir = str(tmp_path)
    port = free_port()
    conf = os.path.join(workdir, "tls.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 1;
pid %s/portico.pid;
error_log %s/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    server { listen 127.0.0.1:%d ssl default_server; ssl_reject_handshake on; }
    server {
        listen 127.0.0.1:%d ssl;
        server_name localhost;
        ssl_certificate %s/cert.pem;
        ssl_certificate_key %s/key.pem;
        location / { return 200 "ok $ssl_server_name"; }
    }
}
""" % (workdir, workdir, port, port, certs, certs))
    proc = subprocess.Popen([portico_binary(), "-p", workdir + "/", "-c", conf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=workdir)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert fetch(None, client_context(), port=port).body == "ok localhost"
        for name in ("unknown.example", None):
            with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME|unrecognized name"):
                fetch(None, client_context(), port=port, server_name=name)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_password_file_opens_an_encrypted_key(tmp_path, certs, running):
    with open(tmp_path / "passwords", "w") as f:
        f.write("wrong1\n\nsecret2\r\n")
    server = running(tmp_path / "s", certs, "ssl_password_file %s/passwords;" % tmp_path,
                     workers=1, key="enc.pem")
    assert fetch(server, client_context()).body.startswith(". ")


def test_conf_command_applies_to_the_context(tmp_path, certs, running):
    server = running(tmp_path, certs,
                     "ssl_conf_command Ciphersuites TLS_CHACHA20_POLY1305_SHA256;", workers=1)
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    with client_context(ssl.TLSVersion.TLSv1_3).wrap_socket(raw, server_hostname="localhost") as s:
        assert s.cipher()[0] == "TLS_CHACHA20_POLY1305_SHA256"


def test_curve_variables(tmp_path, certs, running):
    server = running(tmp_path, certs, "", workers=1, body='return 200 "$ssl_curve|$ssl_curves";')
    ctx = client_context(ssl.TLSVersion.TLSv1_3)
    ctx.set_ecdh_curve("prime256v1")
    curve, curves = fetch(server, ctx).body.split("|")
    assert curve == "prime256v1"
    assert "prime256v1" in curves.split(":")


def test_ciphers_variable_lists_what_the_client_offered(tmp_path, certs, running):
    # $ssl_ciphers: the client's list in its order, by OpenSSL's names (nginx's
    # ngx_ssl_get_ciphers); a TLS 1.2 client offering exactly two ciphers.
    server = running(tmp_path, certs, "", workers=1, body='return 200 "$ssl_ciphers";')
    ctx = client_context(ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384")
    # Python's client adds the renegotiation SCSV after them.
    assert fetch(server, ctx).body.split(":") == [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"]


# ---- -t: nginx's messages ----

def check(tmp_path, certs, server_lines, http_lines="", key="key.pem"):
    conf = tmp_path / "t.conf"
    conf.write_text(conf_text(str(tmp_path), free_port(), certs, server_lines, http_lines,
                              key=key))
    r = subprocess.run([portico_binary(), "-p", str(tmp_path) + "/", "-t", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stderr


@pytest.mark.parametrize("lines,http_lines,message", [
    ("ssl_session_cache shared:SSL;", "", 'invalid session cache "shared:SSL"'),
    ("ssl_session_cache shared::1m;", "", 'invalid session cache "shared::1m"'),
    ("ssl_session_cache bogus;", "", 'invalid session cache "bogus"'),
    ("ssl_session_cache builtin:x;", "", 'invalid session cache "builtin:x"'),
    ("ssl_session_cache shared:SSL:10k;", "", 'session cache "shared:SSL:10k" is too small'),
    ("ssl_session_cache shared:one:1m;",
     "limit_req_zone $binary_remote_addr zone=one:1m rate=1r/s;",
     'the shared memory zone "one" is already declared for a different use'),
    ("ssl_session_cache shared:SSL:2m;", "ssl_session_cache shared:SSL:1m;\n"
     "server { listen 127.0.0.1:1 ssl; ssl_certificate C/cert.pem; "
     "ssl_certificate_key C/key.pem; }",
     'the size 2097152 of shared memory zone "SSL" conflicts with already declared size 1048576'),
    ("ssl_session_timeout 5x;", "", 'invalid value'),
    ("ssl_session_tickets maybe;", "", 'it must be "on" or "off"'),
    ("ssl_session_ticket_key T/ticket-bad.key;", "", 'ticket-bad.key" must be 48 or 80 bytes'),
    ("ssl_session_ticket_key T/missing.key;", "", 'open() "'),
    ("ssl_early_data on;", "", None),
    ("ssl_early_data x;", "", 'invalid value "x" in "ssl_early_data" directive, it must be "on" or "off" in '),
    ("ssl_dhparam T/cert.pem;", "", 'PEM_read_bio_Parameters("'),
    ("ssl_conf_command NoSuchCommand x;", "", 'SSL_CONF_cmd("NoSuchCommand", "x") failed'),
    ("ssl_dhparam T/dh.pem;", "", None),
    ("ssl_session_cache builtin:100 shared:SSL:1m;\nssl_session_timeout 10m;", "", None),
])
def test_messages_at_t(tmp_path, certs, lines, http_lines, message):
    lines = lines.replace("T/", str(certs) + "/")
    http_lines = http_lines.replace("C/", str(certs) + "/")
    code, err = check(tmp_path, certs, lines, http_lines)
    if message is None:
        assert code == 0, err
    else:
        assert code == 1, err
        assert message in err, err


def test_encrypted_key_needs_the_password(tmp_path, certs):
    (tmp_path / "wrong").write_text("nope\nalso-wrong\n")
    code, err = check(tmp_path, certs, "", key="enc.pem")
    assert code == 1 and 'cannot load certificate key "%s/enc.pem"' % certs in err, err
    code, err = check(tmp_path, certs, "ssl_password_file %s/wrong;" % tmp_path, key="enc.pem")
    assert code == 1 and "cannot load certificate key" in err, err
