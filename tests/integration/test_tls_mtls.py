"""Mutual TLS as nginx 1.22 does it: ssl_verify_client (on, optional, optional_no_ca),
ssl_verify_depth, ssl_client_certificate / ssl_trusted_certificate, ssl_crl, the 495/496 pages
and error_page for them, the $ssl_client_* variables, and OCSP stapling from ssl_stapling_file.

Certificates are made once per session with the openssl CLI (an `openssl ca` database, so a
client can be revoked into a CRL and the server's certificate answered by `openssl ocsp`).
"""

import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.parse

import pytest

from servers import free_port, portico_binary

DAY = 86400


def _run(args, cwd):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


CA_CONF = """
[ca]
default_ca = ca_default
[ca_default]
dir = {dir}
database = {dir}/index.txt
serial = {dir}/serial
crlnumber = {dir}/crlnumber
new_certs_dir = {dir}/issued
default_md = sha256
default_days = 30
default_crl_days = 30
policy = policy_any
copy_extensions = copy
unique_subject = no
[policy_any]
organizationName = optional
commonName = supplied
[leaf]
basicConstraints = CA:false
[intermediate]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
[server]
basicConstraints = CA:false
subjectAltName = DNS:localhost
[ocsp]
basicConstraints = CA:false
extendedKeyUsage = OCSPSigning
"""


class Pki:
    """The session's certificates, under one directory (paths as attributes)."""

    def __init__(self, root):
        self.dir = str(root)
        d = self.dir
        os.makedirs(os.path.join(d, "issued"))
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(d, "crlnumber"), "w") as f:
            f.write("01\n")
        with open(os.path.join(d, "ca.cnf"), "w") as f:
            f.write(CA_CONF.format(dir=d))
        self._self_signed("ca", "/O=Portico Test/CN=Portico Test CA")
        self._self_signed("other-ca", "/CN=Other CA")
        self.issue("int", "/O=Portico Test/CN=Portico Intermediate", "intermediate")
        self.issue("server", "/CN=localhost", "server")
        self.issue("good", "/O=Portico Test/CN=client good", "leaf")
        self.issue("revoked", "/CN=client revoked", "leaf")
        self.issue("expired", "/CN=client expired", "leaf",
                   dates=("20200101000000Z", "20210101000000Z"))
        self.issue("chained", "/CN=client chained", "leaf", ca="int")
        self.issue("other", "/CN=client other", "leaf", ca="other-ca")
        _run(["openssl", "ca", "-batch", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.crt",
              "-revoke", "revoked.crt"], d)
        _run(["openssl", "ca", "-batch", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.crt",
              "-gencrl", "-out", "ca.crl"], d)
        with open(os.path.join(d, "ca-int.crt"), "w") as f:
            f.write(self.read("ca.crt") + self.read("int.crt"))
        # An OCSP response for the server's certificate, signed by the CA itself.
        _run(["openssl", "ocsp", "-issuer", "ca.crt", "-cert", "server.crt", "-no_nonce",
              "-reqout", "ocsp-req.der"], d)
        _run(["openssl", "ocsp", "-index", "index.txt", "-rsigner", "ca.crt", "-rkey", "ca.key",
              "-CA", "ca.crt", "-reqin", "ocsp-req.der", "-respout", "ocsp.der", "-ndays", "1"], d)

    def read(self, name):
        with open(os.path.join(self.dir, name)) as f:
            return f.read()

    def path(self, name):
        return os.path.join(self.dir, name)

    def _self_signed(self, name, subject):
        _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
              "-out", name + ".crt", "-days", "30", "-subj", subject,
              "-addext", "basicConstraints=critical,CA:true",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], self.dir)

    def issue(self, name, subject, extensions, ca="ca", dates=None):
        _run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
              "-out", name + ".csr", "-subj", subject], self.dir)
        if ca == "ca":
            args = ["openssl", "ca", "-batch", "-config", "ca.cnf", "-keyfile", "ca.key",
                    "-cert", "ca.crt", "-extensions", extensions, "-in", name + ".csr",
                    "-out", name + ".crt", "-notext"]
            if dates:
                args += ["-startdate", dates[0], "-enddate", dates[1]]
        else:
            args = ["openssl", "x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt",
                    "-CAkey", ca + ".key", "-CAcreateserial", "-days", "30", "-out", name + ".crt",
                    "-extfile", "ca.cnf", "-extensions", extensions]
        _run(args, self.dir)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("mtls-pki"))


class Server:
    """portico on an nginx configuration with one TLS port (master + `workers` workers)."""

    def __init__(self, workdir, pki, body, expect_start=True, workers=1):
        self.workdir = str(workdir)
        self.port = free_port()
        self.conf = os.path.join(self.workdir, "nginx.conf")
        text = body.replace("@PORT@", str(self.port)).replace("@PKI@", pki.dir)
        with open(self.conf, "w") as f:
            f.write("""worker_processes %d;
pid %s/portico.pid;
error_log %s/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    ssl_certificate @PKI@/server.crt;
    ssl_certificate_key @PKI@/server.key;
%s
}
""".replace("@PKI@", pki.dir) % (workers, self.workdir, self.workdir, text))
        self.proc = None
        if expect_start:
            self.start()

    def check(self):
        """`portico -t`: (exit status, output)."""
        done = subprocess.run([portico_binary(), "-p", self.workdir + "/", "-c", self.conf, "-t"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self.workdir)
        return done.returncode, done.stdout.decode("utf-8", "replace")

    def start(self):
        with open(os.path.join(self.workdir, "stderr"), "wb") as err:
            self.proc = subprocess.Popen([portico_binary(), "-p", self.workdir + "/", "-c",
                                          self.conf], stdout=subprocess.DEVNULL, stderr=err,
                                         stdin=subprocess.DEVNULL, cwd=self.workdir)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "portico exited: " + self.error_log() + self._stderr()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("portico did not listen: " + self.error_log())

    def _stderr(self):
        with open(os.path.join(self.workdir, "stderr"), errors="replace") as f:
            return f.read()

    def error_log(self):
        try:
            with open(os.path.join(self.workdir, "error.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def get(self, path="/", cert=None, host="localhost", chain=None, sni=None):
        """(status, headers text, body) of one HTTPS request with an optional client cert."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        if cert:
            context.load_cert_chain(chain or self._pki.path(cert + ".crt"),
                                    self._pki.path(cert + ".key"))
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=sni or host) as tls:
                tls.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                             % (path, host)).encode())
                data = b""
                while True:
                    try:
                        chunk = tls.recv(65536)
                    except (ssl.SSLEOFError, ConnectionResetError):
                        break
                    if not chunk:
                        break
                    data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        return status, head.decode("latin-1"), body.decode("utf-8", "replace")


def _mk(tmp_path, name):
    d = tmp_path / name
    d.mkdir()
    return d


def server_block(verify, extra="", location='return 200 "$ssl_client_verify|$ssl_client_s_dn";'):
    return """
    server {
        listen 127.0.0.1:@PORT@ ssl;
        server_name localhost;
        ssl_verify_client %s;
        %s
        location / { %s }
    }
""" % (verify, extra, location)


@pytest.fixture
def make_server(tmp_path, pki):
    made = []

    def make(body):
        d = tmp_path / ("s%d" % len(made))
        d.mkdir()
        server = Server(d, pki, body, expect_start=False)
        server._pki = pki
        server.start()
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


def test_on_accepts_a_good_certificate_and_refuses_none(make_server, pki):
    s = make_server(server_block("on", "ssl_client_certificate @PKI@/ca.crt;"))
    status, _, body = s.get(cert="good")
    assert status == 200
    assert body == "SUCCESS|CN=client good,O=Portico Test"
    status, head, body = s.get()
    assert status == 400
    assert "<title>400 No required SSL certificate was sent</title>" in body
    assert "Connection: close" in head
    log = s.error_log()
    assert "client sent no required SSL certificate while reading client request headers" in log


def test_on_refuses_a_certificate_of_another_ca_with_the_495_page(make_server, pki):
    s = make_server(server_block("on", "ssl_client_certificate @PKI@/ca.crt;"))
    status, _, body = s.get(cert="other")
    assert status == 400
    assert "<title>400 The SSL certificate error</title>" in body
    # the callback lets verification go on: the last error is what stays (nginx's too)
    assert ("client SSL certificate verify error: (21:unable to verify the first certificate)"
            " while reading client request headers, client: 127.0.0.1, server: localhost,"
            ' request: "GET / HTTP/1.1", host: "localhost"') in s.error_log()
    status, _, _ = s.get(cert="expired")
    assert status == 400
    assert "(10:certificate has expired)" in s.error_log()


def test_optional_lets_both_through_and_says_which(make_server, pki):
    s = make_server(server_block("optional", "ssl_client_certificate @PKI@/ca.crt;"))
    assert s.get()[2] == "NONE|"
    assert s.get(cert="good")[2] == "SUCCESS|CN=client good,O=Portico Test"
    # optional still refuses a certificate that does not verify
    assert s.get(cert="other")[0] == 400


def test_optional_no_ca_lets_an_unknown_issuer_through(make_server, pki):
    s = make_server(server_block("optional_no_ca", ""))
    status, _, body = s.get(cert="other")
    assert status == 200
    assert body == "FAILED:unable to verify the first certificate|CN=client other"
    assert s.get()[2] == "NONE|"
    # an expired certificate is not an unknown CA: refused
    s2 = make_server(server_block("optional_no_ca", "ssl_client_certificate @PKI@/ca.crt;"))
    assert s2.get(cert="expired")[0] == 400
    assert s2.get(cert="good")[2].startswith("SUCCESS|")


def test_verify_depth_with_an_intermediate(make_server, pki):
    # both CAs trusted: depth 0 refuses the leaf of the intermediate (nginx's "verify depth 0 -
    # no end"), depth 2 lets it through
    shallow = make_server(server_block("on", "ssl_client_certificate @PKI@/ca-int.crt;"
                                       " ssl_verify_depth 0;"))
    status, _, _ = shallow.get(cert="chained")
    assert status == 400
    assert "client SSL certificate verify error: (" in shallow.error_log()
    deep = make_server(server_block("on", "ssl_client_certificate @PKI@/ca-int.crt;"
                                    " ssl_verify_depth 2;"))
    status, _, body = deep.get(cert="chained")
    assert (status, body) == (200, "SUCCESS|CN=client chained")
    # the root alone trusted: the client must send the intermediate
    sent = make_server(server_block("on", "ssl_client_certificate @PKI@/ca.crt;"
                                    " ssl_verify_depth 2;"))
    chain = os.path.join(str(sent.workdir), "chained-bundle.crt")
    with open(chain, "w") as f:
        f.write(pki.read("chained.crt") + pki.read("int.crt"))
    assert sent.get(cert="chained")[0] == 400
    assert sent.get(cert="chained", chain=chain)[2] == "SUCCESS|CN=client chained"


def test_crl_marks_a_revoked_certificate_failed(make_server, pki):
    s = make_server(server_block("optional", "ssl_client_certificate @PKI@/ca.crt;"
                                 " ssl_crl @PKI@/ca.crl;"))
    assert s.get(cert="good")[2].startswith("SUCCESS|")
    status, _, body = s.get(cert="revoked")
    assert status == 400
    assert "(23:certificate revoked)" in s.error_log()
    # with error_page the variable says why
    s2 = make_server(server_block(
        "optional", "ssl_client_certificate @PKI@/ca.crt; ssl_crl @PKI@/ca.crl;"
        " error_page 495 =403 @cert;",
        location='return 200 "ok";} location @cert { return 403 "$ssl_client_verify";'))
    status, _, body = s2.get(cert="revoked")
    assert (status, body) == (403, "FAILED:certificate revoked")


def test_error_page_answers_495_and_496(make_server, pki):
    s = make_server(server_block(
        "on", "ssl_client_certificate @PKI@/ca.crt; error_page 495 496 /why;",
        location='return 200 "in";} location = /why { return 200 "why:$ssl_client_verify";'))
    status, _, body = s.get()
    # nginx answers error_page for 494-497 with 400 unless `=CODE` says otherwise
    assert (status, body) == (400, "why:NONE")
    status, _, body = s.get(cert="other")
    assert (status, body) == (400, "why:FAILED:unable to verify the first certificate")
    assert s.get(cert="good")[2] == "in"


def test_ca_names_are_sent_from_client_certificate_not_trusted(make_server, pki):
    s = make_server(server_block("optional", "ssl_client_certificate @PKI@/ca.crt;"
                                 " ssl_trusted_certificate @PKI@/other-ca.crt;"))
    out = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % s.port,
                          "-servername", "localhost"], input=b"", stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=20).stdout.decode("latin-1")
    names = out.split("Acceptable client certificate CA names", 1)[1].split("---")[0]
    assert "Portico Test CA" in names
    assert "Other CA" not in names
    # ...but the trusted CA verifies
    assert s.get(cert="other")[2] == "SUCCESS|CN=client other"


def test_client_certificate_variables(make_server, pki):
    names = ["s_dn", "i_dn", "s_dn_legacy", "i_dn_legacy", "serial", "fingerprint",
             "raw_cert", "escaped_cert", "cert", "v_start", "v_end", "v_remain", "verify"]
    location = "".join('location = /%s { return 200 "$ssl_client_%s"; } ' % (n, n) for n in names)
    s = make_server(server_block("optional", "ssl_client_certificate @PKI@/ca.crt;",
                                 location='return 404;} ' + location[:-2]))
    get = lambda n: s.get("/" + n, cert="good")[2]
    assert get("s_dn") == "CN=client good,O=Portico Test"
    assert get("i_dn") == "CN=Portico Test CA,O=Portico Test"
    assert get("s_dn_legacy") == "/O=Portico Test/CN=client good"
    assert get("i_dn_legacy") == "/O=Portico Test/CN=Portico Test CA"
    pem = pki.read("good.crt")
    der_serial = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", pki.path("good.crt")],
                                stdout=subprocess.PIPE).stdout.decode().strip().split("=")[1]
    assert get("serial") == der_serial
    fingerprint = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha1", "-in",
                                  pki.path("good.crt")], stdout=subprocess.PIPE).stdout.decode()
    assert get("fingerprint") == fingerprint.strip().split("=")[1].replace(":", "").lower()
    assert get("raw_cert") == pem
    assert get("escaped_cert") == urllib.parse.quote(pem, safe="")
    assert get("cert") == pem[:-1].replace("\n", "\n\t")
    enddate = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", pki.path("good.crt")],
                             stdout=subprocess.PIPE).stdout.decode().strip().split("=")[1]
    assert get("v_end") == enddate
    assert get("v_start").endswith("GMT")
    assert get("v_remain") in ("29", "30")
    # without a certificate every one is empty, $ssl_client_verify NONE
    assert s.get("/s_dn")[2] == ""
    assert s.get("/raw_cert")[2] == ""
    assert s.get("/v_remain")[2] == ""
    assert s.get("/verify")[2] == "NONE"


def test_host_other_than_sni_on_a_verifying_server_is_misdirected(make_server, pki):
    s = make_server(server_block("on", "ssl_client_certificate @PKI@/ca.crt;") + """
    server {
        listen 127.0.0.1:@PORT@ ssl;
        server_name other;
        location / { return 200 "other"; }
    }
""")
    status, _, body = s.get(cert="good", sni="other", host="localhost")
    assert status == 421
    assert "client attempted to request the server name different from the one that was" \
        " negotiated" in s.error_log()
    # the other way round: the Host's server does not verify
    assert s.get(sni="localhost", host="other")[2] == "other"
    assert s.get(cert="good")[0] == 200


def test_config_checks_as_nginx(tmp_path, pki):
    d = _mk(tmp_path, "t1")
    server = Server(d, pki, server_block("on", ""), expect_start=False)
    code, out = server.check()
    assert code != 0
    assert "no ssl_client_certificate for ssl_verify_client" in out
    d = _mk(tmp_path, "t2")
    server = Server(d, pki, server_block("sometimes", "ssl_client_certificate @PKI@/ca.crt;"),
                    expect_start=False)
    code, out = server.check()
    assert code != 0
    assert 'invalid value "sometimes"' in out
    d = _mk(tmp_path, "t3")
    server = Server(d, pki, server_block("on", "ssl_client_certificate @PKI@/ca.crt;"
                                         " ssl_crl @PKI@/missing.crl;"), expect_start=False)
    code, out = server.check()
    assert code != 0
    assert 'cannot load CRL "%s/missing.crl"' % pki.dir in out
    # relative to the configuration's directory
    d = _mk(tmp_path, "t4")
    with open(os.path.join(str(d), "clients.pem"), "w") as f:
        f.write(pki.read("ca.crt"))
    server = Server(d, pki, server_block("on", "ssl_client_certificate clients.pem;"),
                    expect_start=False)
    assert server.check()[0] == 0


def _s_client_status(port):
    return subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                           "-servername", "localhost", "-status"], input=b"",
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=20).stdout.decode("latin-1")


def test_stapling_file_is_sent_to_a_client_that_asks(make_server, pki):
    s = make_server(server_block("off", "ssl_stapling on; ssl_stapling_file @PKI@/ocsp.der;",
                                 location='return 200 "ok";'))
    out = _s_client_status(s.port)
    assert "OCSP Response Status: successful (0x0)" in out
    assert "Cert Status: good" in out
    without = make_server(server_block("off", "ssl_stapling_file @PKI@/ocsp.der;",
                                       location='return 200 "ok";'))
    assert "OCSP response: no response sent" in _s_client_status(without.port)


def test_stapling_without_a_responder_is_ignored_with_nginx_warning(make_server, pki):
    s = make_server(server_block("off", "ssl_stapling on; ssl_trusted_certificate @PKI@/ca.crt;",
                                 location='return 200 "ok";'))
    assert ('"ssl_stapling" ignored, no OCSP responder URL in the certificate "%s/server.crt"'
            % pki.dir) in s.error_log()
    assert "OCSP response: no response sent" in _s_client_status(s.port)
    s2 = make_server(server_block("off", "ssl_stapling on;", location='return 200 "ok";'))
    assert ('"ssl_stapling" ignored, issuer certificate not found for certificate "%s/server.crt"'
            % pki.dir) in s2.error_log()


def _worker_pids(master_pid):
    with open("/proc/%d/task/%d/children" % (master_pid, master_pid)) as f:
        return [int(pid) for pid in f.read().split()]


def _wait_for(predicate, what, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def _serve_on_each(s, workers):
    """One request answered by each worker in turn (the others stopped meanwhile): each has
    booted, its TLS contexts built."""
    for worker in workers:
        others = [pid for pid in workers if pid != worker]
        for pid in others:
            os.kill(pid, signal.SIGSTOP)
        try:
            assert s.get()[0] == 200  # only `worker` can have accepted it
        finally:
            for pid in others:
                os.kill(pid, signal.SIGCONT)


def test_stapling_warning_is_logged_once_per_load_not_per_worker(tmp_path, pki):
    # nginx warns while it loads the configuration (once, in the master); the workers that
    # build the same contexts stay quiet, at start and after a reload.
    warning = ('"ssl_stapling" ignored, no OCSP responder URL in the certificate "%s/server.crt"'
               % pki.dir)
    s = Server(_mk(tmp_path, "s"), pki,
               server_block("off", "ssl_stapling on; ssl_trusted_certificate @PKI@/ca.crt;",
                            location='return 200 "ok";'),
               expect_start=False, workers=2)
    s._pki = pki
    s.start()
    try:
        _wait_for(lambda: len(_worker_pids(s.proc.pid)) == 2, "2 workers")
        workers = _worker_pids(s.proc.pid)
        _serve_on_each(s, workers)
        assert s.error_log().count(warning) == 1, s.error_log()
        s.proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: len(_worker_pids(s.proc.pid)) == 2 and
                  not set(_worker_pids(s.proc.pid)) & set(workers), "the reload")
        _serve_on_each(s, _worker_pids(s.proc.pid))
        assert s.error_log().count(warning) == 2, s.error_log()
    finally:
        s.stop()


def test_the_start_up_log_names_an_ssl_listener_https(make_server, pki):
    # gunicorn's "Listening at: https://..." for a TLS socket, in the error log at info.
    s = make_server(server_block("off", location='return 200 "ok";'))
    # The master logs the line after listen(): a connect may win the race to it.
    line = "Listening at: https://127.0.0.1:%d (" % s.port
    _wait_for(lambda: line in s.error_log(), "the Listening at line")
    assert "Listening at: http://" not in s.error_log()
