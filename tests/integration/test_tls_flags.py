"""gunicorn's TLS flags (--certfile, --keyfile, --ca-certs, --cert-reqs, --ciphers, --ssl-version,
--do-handshake-on-connect, --suppress-ragged-eofs) against the real binary, with certificates made
by the openssl CLI at test time and Python's ssl as the client."""

import json
import socket
import ssl
import subprocess

import pytest

from servers import PorticoServer, portico_binary
from tls_ops_support import TlsFiles, client_context, https_request
from wsgi_support import APPS_DIR

APP = "introspect:application"


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    return TlsFiles(tmp_path_factory.mktemp("tls-flags")).build()


def start_tls(launch, files, *flags, app=True):
    args = ["--pythonpath", APPS_DIR] + list(flags)
    if app:
        args.append(APP)
    return launch.start(args)


def server_flags(files, cert="server-ec"):
    return ["--certfile", files.path(cert + ".pem"), "--keyfile", files.path(cert + ".key")]


def test_https_is_served_and_the_app_sees_https(launch, tls_files, site):
    server = start_tls(launch, tls_files, *server_flags(tls_files))
    context = client_context(tls_files)
    result = https_request(server.port, context, "/environ")
    assert result.refused is None, result.refused
    assert result.status == 200
    environ = json.loads(result.body)
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["HTTPS"] == "on"
    # Static files come over TLS too (read and encrypted in user space here).
    result = https_request(server.port, context, "/static/app.js")
    assert result.status == 200
    assert result.body == site.files["app.js"]
    # Without TLS the port does not answer as a plain HTTP server would (nginx's 497 → 400).
    with server.connect() as plain:
        plain.send(b"GET /environ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        reply = plain.read_to_close()
    assert reply.startswith(b"HTTP/1.1 400")
    assert b"The plain HTTP request was sent to HTTPS port" in reply
    assert "Listening at: https://127.0.0.1:%d" % server.port in server.stderr()


def test_the_kernel_tls_choice_is_logged_once(launch, tls_files):
    server = start_tls(launch, tls_files, "-w", "2", *server_flags(tls_files))
    assert https_request(server.port, client_context(tls_files), "/static/a.txt").body == b"alpha\n"
    log = server.stderr()
    assert log.count("TLS: kernel TLS ") == 1, log
    assert ("TLS: kernel TLS not available (" in log
            and "static files are read and encrypted in user space" in log) or \
        "TLS: kernel TLS available" in log


def test_rsa_certificate_and_key_inside_the_certificate_file(launch, tls_files):
    server = start_tls(launch, tls_files, *server_flags(tls_files, "server-rsa"))
    result = https_request(server.port, client_context(tls_files), "/environ")
    assert result.status == 200
    # No --keyfile: the key is read from the --certfile, as Python's load_cert_chain does.
    combined = start_tls(launch, tls_files, "--certfile", tls_files.path("server-ec-combined.pem"))
    result = https_request(combined.port, client_context(tls_files), "/environ")
    assert result.refused is None, result.refused
    assert json.loads(result.body)["wsgi.url_scheme"] == "https"


def test_every_bind_speaks_tls(launch, tls_files, tmp_path):
    unix_path = str(tmp_path / "tls.sock")
    server = start_tls(launch, tls_files, "--bind", "unix:" + unix_path, *server_flags(tls_files))
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.settimeout(5)
    raw.connect(unix_path)
    context = client_context(tls_files)
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET /environ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert json.loads(data.partition(b"\r\n\r\n")[2])["wsgi.url_scheme"] == "https"
    assert https_request(server.port, context, "/environ").status == 200


def test_cert_reqs_2_requires_a_certificate_the_ca_signed(launch, tls_files):
    server = start_tls(launch, tls_files, *server_flags(tls_files),
                       "--ca-certs", tls_files.path("ca.pem"), "--cert-reqs", "2")
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        # No certificate: refused in the handshake, as gunicorn (Python's CERT_REQUIRED).
        none = https_request(server.port, client_context(tls_files, maximum=version), "/environ")
        assert none.refused is not None, (version, none.status)
        # A certificate no configured CA signed: refused too.
        stranger = https_request(server.port,
                                 client_context(tls_files, cert="stranger", maximum=version),
                                 "/environ")
        assert stranger.refused is not None, (version, stranger.status)
        # The CA's client: served.
        good = https_request(server.port, client_context(tls_files, cert="client", maximum=version),
                             "/environ")
        assert good.refused is None, (version, good.refused)
        assert good.status == 200
        assert json.loads(good.body)["wsgi.url_scheme"] == "https"
    assert server.alive()


def test_cert_reqs_1_verifies_a_certificate_only_when_one_is_sent(launch, tls_files):
    server = start_tls(launch, tls_files, *server_flags(tls_files),
                       "--ca-certs", tls_files.path("ca.pem"), "--cert-reqs", "1")
    assert https_request(server.port, client_context(tls_files), "/environ").status == 200
    good = https_request(server.port, client_context(tls_files, cert="client"), "/environ")
    assert good.status == 200
    stranger = https_request(server.port, client_context(tls_files, cert="stranger"), "/environ")
    assert stranger.refused is not None, stranger.status


def test_cert_reqs_0_ignores_client_certificates(launch, tls_files):
    # --ca-certs alone asks for nothing (Python's CERT_NONE): a stranger's certificate is never
    # even requested.
    server = start_tls(launch, tls_files, *server_flags(tls_files),
                       "--ca-certs", tls_files.path("ca.pem"))
    stranger = https_request(server.port, client_context(tls_files, cert="stranger"), "/environ")
    assert stranger.refused is None, stranger.refused
    assert stranger.status == 200


def test_ciphers_restrict_what_tls12_negotiates(launch, tls_files):
    server = start_tls(launch, tls_files, *server_flags(tls_files),
                       "--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256")
    tls12 = ssl.TLSVersion.TLSv1_2
    offered = https_request(server.port, client_context(tls_files, maximum=tls12), "/environ")
    assert offered.status == 200
    assert offered.cipher == "ECDHE-ECDSA-AES128-GCM-SHA256"
    assert offered.version == "TLSv1.2"
    other = https_request(server.port,
                          client_context(tls_files, maximum=tls12,
                                         ciphers="ECDHE-ECDSA-AES256-GCM-SHA384"), "/environ")
    assert other.refused is not None, other.cipher
    # TLS 1.3's suites are not OpenSSL cipher-list words (as with Python's set_ciphers).
    tls13 = https_request(server.port, client_context(tls_files), "/environ")
    assert tls13.status == 200 and tls13.version == "TLSv1.3"


def test_default_ciphers_have_forward_secrecy(launch, tls_files):
    server = start_tls(launch, tls_files, *server_flags(tls_files, "server-rsa"))
    tls12 = ssl.TLSVersion.TLSv1_2
    # RSA key exchange (no forward secrecy) is not among Python's default ciphers.
    rsa_kx = https_request(server.port,
                           client_context(tls_files, maximum=tls12, ciphers="AES128-GCM-SHA256"),
                           "/environ")
    assert rsa_kx.refused is not None, rsa_kx.cipher
    fs = https_request(server.port, client_context(tls_files, maximum=tls12), "/environ")
    assert fs.status == 200 and fs.cipher.startswith("ECDHE-")


def test_ssl_version_limits_the_protocol(launch, tls_files):
    server = start_tls(launch, tls_files, *server_flags(tls_files), "--ssl-version", "TLSv1_2",
                       "--do-handshake-on-connect", "--suppress-ragged-eofs")
    only13 = https_request(server.port,
                           client_context(tls_files, minimum=ssl.TLSVersion.TLSv1_3), "/environ")
    assert only13.refused is not None, only13.version
    result = https_request(server.port, client_context(tls_files), "/environ")
    assert result.status == 200 and result.version == "TLSv1.2"


def run_portico(args, cwd):
    return subprocess.run([portico_binary()] + args, cwd=cwd, capture_output=True, text=True,
                          timeout=30)


@pytest.mark.parametrize("case", ["missing", "mismatched", "no-key", "missing-ca"])
def test_a_bad_certificate_stops_the_start(tls_files, tmp_path, case):
    # gunicorn exits 1 at start ('certfile "x" does not exist'); portico exits 1 with nginx's
    # message for the file that fails, before anything listens.
    f = tls_files.path
    if case == "missing":
        flags, needle = ["--certfile", str(tmp_path / "nope.pem")], 'cannot load certificate "%s"' % (
            tmp_path / "nope.pem")
    elif case == "mismatched":
        flags = ["--certfile", f("server-ec.pem"), "--keyfile", f("server-rsa.key")]
        needle = 'and key "%s" do not match' % f("server-rsa.key")
    elif case == "no-key":
        flags = ["--certfile", f("server-ec.pem")]
        needle = 'cannot load certificate key "%s"' % f("server-ec.pem")
    else:
        flags = server_flags(tls_files) + ["--ca-certs", str(tmp_path / "ca.pem"), "--cert-reqs", "2"]
        needle = 'cannot load certificate "%s": BIO_new_file() failed' % (tmp_path / "ca.pem")
    port = str(0)
    done = run_portico(["--bind", "127.0.0.1:" + port, "--pythonpath", APPS_DIR] + flags + [APP],
                       str(tmp_path))
    assert done.returncode == 1, done.stderr
    assert needle in done.stderr
    assert "Listening at" not in done.stderr


def test_relative_paths_follow_chdir(launch, tls_files):
    server = start_tls(launch, tls_files, "--chdir", tls_files.dir, "--certfile", "server-ec.pem",
                       "--keyfile", "server-ec.key")
    assert https_request(server.port, client_context(tls_files), "/environ").status == 200


def test_help_lists_the_tls_flags_and_bad_values_are_errors(tmp_path):
    done = run_portico(["--help"], str(tmp_path))
    assert done.returncode == 0
    text = done.stdout + done.stderr
    assert "\nssl:\n" in text
    for flag in ("--certfile FILE", "--keyfile FILE", "--ca-certs FILE", "--cert-reqs CERT_REQS",
                 "--ciphers CIPHERS", "--ssl-version SSL_VERSION", "--do-handshake-on-connect",
                 "--suppress-ragged-eofs"):
        assert flag in text, flag
    for args, message in ((["--cert-reqs", "5"], "argument --cert-reqs: invalid value"),
                          (["--ssl-version", "SSLv3"], "Invalid ssl_version: SSLv3"),
                          (["--keyfile", "k.pem"], "argument --keyfile: needs --certfile")):
        done = run_portico(args, str(tmp_path))
        assert done.returncode == 2, args
        assert message in done.stderr
