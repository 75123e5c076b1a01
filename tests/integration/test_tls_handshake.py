"""TLS handshakes against portico run with `-c`: SNI picks the server (certificate and
$server_name), ECDSA and RSA certificates in one server chosen by what the client allows, ALPN
(http/1.1 only, as nginx 1.22 without HTTP/2), `listen unix:... ssl` and `[::1]`, and handshakes
that stall, break or reset: closed after client_header_timeout (nginx times the handshake with
it), and never in the way of other clients."""

import os
import socket
import ssl
import struct
import threading

import pytest

from http_client import Connection
from tls_support import (TlsPortico, certs, client_context, curl, peer_fingerprint,  # noqa: F401
                         s_client, s_client_fingerprint)

SERVERS = r"""
    server {
        listen 127.0.0.1:@PORT@ ssl default_server;
        listen unix:@DIR@/tls.sock ssl;
        server_name localhost;
        client_header_timeout 1s;
        ssl_certificate @CERTS@/localhost-ecdsa.pem;
        ssl_certificate_key @CERTS@/localhost-ecdsa.key;
        location / { return 200 "server=$server_name https=$https scheme=$scheme\n"; }
    }
    server {
        listen 127.0.0.1:@PORT@ ssl;
        server_name a.test www.a.test;
        ssl_certificate @CERTS@/a-ecdsa.pem;
        ssl_certificate_key @CERTS@/a-ecdsa.key;
        ssl_certificate @CERTS@/a-rsa.pem;
        ssl_certificate_key @CERTS@/a-rsa.key;
        location / { return 200 "server=$server_name https=$https scheme=$scheme\n"; }
    }
    server {
        listen 127.0.0.1:@PORT@ ssl;
        server_name b.test;
        ssl_certificate @CERTS@/b-rsa.pem;
        ssl_certificate_key @CERTS@/b-rsa.key;
        location / { return 200 "server=$server_name https=$https scheme=$scheme\n"; }
    }
"""


@pytest.fixture(scope="module")
def tls(tmp_path_factory, certs):  # noqa: F811
    workdir = tmp_path_factory.mktemp("tls-handshake")
    server = TlsPortico(workdir, certs, SERVERS, ready_unix=[str(workdir / "tls.sock")])
    server.start()
    yield server
    server.stop_and_check()


def _served_by(server, sni, host=None, context=None):
    """(certificate fingerprint, body) of GET / with SNI `sni` and Host `host` (default: sni)."""
    with server.tls_socket(sni, context=context) as sock:
        fingerprint = peer_fingerprint(sock)
        conn = Connection(sock)
        response = conn.request("GET", "/", host=host or sni or "localhost")
        assert response.status == 200, response
        return fingerprint, response.body.decode()


# --- SNI ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("sni, cert, name", [
    ("localhost", ("localhost", "ecdsa"), "localhost"),
    ("a.test", ("a", "ecdsa"), "a.test"),
    ("www.a.test", ("a", "ecdsa"), "a.test"),
    ("b.test", ("b", "rsa"), "b.test"),
])
def test_sni_picks_the_server_and_its_certificate(tls, certs, sni, cert, name):  # noqa: F811
    fingerprint, body = _served_by(tls, sni)
    assert fingerprint == certs.fingerprint(*cert)
    assert body == "server=%s https=on scheme=https\n" % name


def test_no_sni_or_an_unknown_name_gets_the_default_servers_certificate(tls, certs):  # noqa: F811
    context = client_context(certs)
    context.check_hostname = False
    fingerprint, body = _served_by(tls, None, host="localhost", context=context)
    assert fingerprint == certs.fingerprint("localhost", "ecdsa")
    assert body.startswith("server=localhost ")
    context = client_context(certs)
    context.check_hostname = False
    fingerprint, body = _served_by(tls, "unknown.test", host="unknown.test", context=context)
    assert fingerprint == certs.fingerprint("localhost", "ecdsa")
    assert body.startswith("server=localhost ")


def test_the_host_header_picks_the_server_of_the_request(tls, certs):  # noqa: F811
    # As nginx without client certificates: the handshake's name chose the certificate, the
    # request's Host chooses the server that answers.
    fingerprint, body = _served_by(tls, "a.test", host="b.test")
    assert fingerprint == certs.fingerprint("a", "ecdsa")
    assert body.startswith("server=b.test ")


def test_curl_verifies_each_name_against_the_ca(tls, certs):  # noqa: F811
    for name in ("a.test", "b.test", "localhost"):
        code, out, err = curl(["--cacert", certs.ca, "--resolve", "%s:%d:127.0.0.1" % (name, tls.port),
                               "https://%s:%d/" % (name, tls.port)])
        assert code == 0, err
        expected = "a.test" if name == "a.test" else name
        assert out.decode() == "server=%s https=on scheme=https\n" % expected


# --- ECDSA and RSA in one server ----------------------------------------------------------------

def test_an_ecdsa_capable_client_gets_ecdsa(tls, certs):  # noqa: F811
    fingerprint, _ = _served_by(tls, "a.test")
    assert fingerprint == certs.fingerprint("a", "ecdsa")
    context = client_context(certs, max_version=ssl.TLSVersion.TLSv1_2,
                             ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    fingerprint, _ = _served_by(tls, "a.test", context=context)
    assert fingerprint == certs.fingerprint("a", "ecdsa")


def test_a_tls12_client_with_only_rsa_ciphers_gets_rsa(tls, certs):  # noqa: F811
    context = client_context(certs, max_version=ssl.TLSVersion.TLSv1_2,
                             ciphers="ECDHE-RSA-AES128-GCM-SHA256")
    with tls.tls_socket("a.test", context=context) as sock:
        assert sock.cipher()[0] == "ECDHE-RSA-AES128-GCM-SHA256"
        assert peer_fingerprint(sock) == certs.fingerprint("a", "rsa")
        assert Connection(sock).request("GET", "/", host="a.test").status == 200


@pytest.mark.parametrize("sigalgs, kind", [
    ("RSA-PSS+SHA256:rsa_pss_rsae_sha384", "rsa"),
    ("ECDSA+SHA256", "ecdsa"),
])
def test_tls13_signature_algorithms_choose_the_certificate(tls, certs, sigalgs, kind):  # noqa: F811
    code, out = s_client(tls.port, ["-servername", "a.test", "-tls1_3", "-sigalgs", sigalgs,
                                    "-CAfile", certs.ca, "-verify_return_error", "-ign_eof"],
                         stdin=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
    assert code == 0, out
    assert s_client_fingerprint(out) == certs.fingerprint("a", kind)
    assert "server=a.test https=on" in out


def test_an_rsa_only_server_refuses_an_ecdsa_only_client(tls, certs):  # noqa: F811
    code, out = s_client(tls.port, ["-servername", "b.test", "-tls1_3", "-sigalgs",
                                    "ECDSA+SHA256"], stdin=b"")
    assert code != 0
    assert "BEGIN CERTIFICATE" not in out
    # ... and the worker serves on.
    assert _served_by(tls, "b.test")[1].startswith("server=b.test ")


# --- ALPN ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("offer", [["h2", "http/1.1"], ["http/1.1"], ["http/1.1", "h2"]])
def test_alpn_selects_http11_never_h2(tls, certs, offer):  # noqa: F811
    with tls.tls_socket("localhost", context=client_context(certs, alpn=offer)) as sock:
        assert sock.selected_alpn_protocol() == "http/1.1"
        response = Connection(sock).request("GET", "/", host="localhost")
        assert response.status == 200 and response.version == "HTTP/1.1"


def test_alpn_http10_is_spoken_too(tls, certs):  # noqa: F811
    with tls.tls_socket("localhost", context=client_context(certs, alpn=["http/1.0"])) as sock:
        assert sock.selected_alpn_protocol() == "http/1.0"


def test_without_alpn_none_is_selected(tls, certs):  # noqa: F811
    with tls.tls_socket("localhost") as sock:
        assert sock.selected_alpn_protocol() is None
        assert Connection(sock).request("GET", "/", host="localhost").status == 200


def test_alpn_offering_only_unknown_protocols_is_a_fatal_alert(tls, certs):  # noqa: F811
    # nginx 1.22 (ngx_http_ssl_alpn_select): SSL_TLSEXT_ERR_ALERT_FATAL, no_application_protocol.
    with pytest.raises(ssl.SSLError) as caught:
        tls.tls_socket("localhost", context=client_context(certs, alpn=["h2", "spdy/3.1"]))
    assert "no application protocol" in str(caught.value).lower().replace("_", " ")
    assert _served_by(tls, "localhost")[1].startswith("server=localhost ")


def test_curl_negotiates_http11(tls, certs):  # noqa: F811
    code, out, err = curl(["-v", "--cacert", certs.ca, "--resolve",
                           "localhost:%d:127.0.0.1" % tls.port,
                           "https://localhost:%d/" % tls.port, "-w", "%{http_version}"])
    assert code == 0, err
    assert out.decode().endswith("\n1.1")
    assert "ALPN: server accepted http/1.1" in err or "ALPN, server accepted to use http/1.1" in err


# --- unix sockets and IPv6 ----------------------------------------------------------------------

def test_tls_over_a_unix_socket(tls, certs):  # noqa: F811
    path = os.path.join(tls.workdir, "tls.sock")
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.settimeout(5)
    raw.connect(path)
    with client_context(certs).wrap_socket(raw, server_hostname="localhost") as sock:
        assert peer_fingerprint(sock) == certs.fingerprint("localhost", "ecdsa")
        response = Connection(sock).request("GET", "/", host="localhost")
        assert (response.status, response.body) == (200, b"server=localhost https=on scheme=https\n")
    code, out, err = curl(["--cacert", certs.ca, "--unix-socket", path, "https://localhost/"])
    assert code == 0, err
    assert out == b"server=localhost https=on scheme=https\n"


def _ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


IPV6 = r"""
    server {
        listen [::1]:@PORT@ ssl;
        server_name localhost;
        ssl_certificate @CERTS@/localhost-rsa.pem;
        ssl_certificate_key @CERTS@/localhost-rsa.key;
        location / { return 200 "v6 $server_addr https=$https\n"; }
    }
"""


def test_tls_over_ipv6(tmp_path, certs):  # noqa: F811
    if not _ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    server = TlsPortico(tmp_path, certs, IPV6, ready_hosts=["::1"])
    server.start()
    try:
        with server.tls_socket("localhost", host="::1") as sock:
            assert peer_fingerprint(sock) == certs.fingerprint("localhost", "rsa")
            response = Connection(sock).request("GET", "/", host="localhost")
            assert (response.status, response.body) == (200, b"v6 ::1 https=on\n")
        code, out, err = curl(["--cacert", certs.ca, "https://[::1]:%d/" % server.port])
        assert code == 0, err
        assert out == b"v6 ::1 https=on\n"
    finally:
        server.stop_and_check()


# --- stalled, broken and reset handshakes -------------------------------------------------------

def _client_hello(certs, sni="localhost"):  # noqa: F811
    """The bytes of a real ClientHello (made by Python's ssl into memory, never sent)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls_object = client_context(certs).wrap_bio(incoming, outgoing, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        tls_object.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16" and len(hello) > 100
    return hello


def _closed_within(sock, seconds):
    """True when the server closes (EOF or reset) before `seconds` pass with no byte sent."""
    sock.settimeout(seconds)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def _raw(server):
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def _serves(server):
    return _served_by(server, "localhost")[1].startswith("server=localhost ")


def test_a_silent_client_is_closed_after_the_handshake_timeout(tls):
    with _raw(tls) as sock:
        # client_header_timeout is 1s: a close well within the 6s bound shows it applies.
        assert _closed_within(sock, 6.0)
    assert _serves(tls)


def test_a_partial_client_hello_is_closed_after_the_handshake_timeout(tls, certs):  # noqa: F811
    hello = _client_hello(certs)
    with _raw(tls) as sock:
        sock.sendall(hello[:len(hello) // 2])
        assert _closed_within(sock, 6.0)
    with _raw(tls) as sock:
        sock.sendall(hello[:3])  # not even a whole record header
        assert _closed_within(sock, 6.0)
    assert _serves(tls)


@pytest.mark.parametrize("garbage", [
    b"\x16\x03\x01\x00\x10" + b"\x00" * 16,         # a handshake record that is no ClientHello
    b"\x16\xff\xff\xff\xff" + os.urandom(64),        # a record header gone wrong
    b"\x80\x05garbage-after-an-sslv2-looking-byte",  # the SSLv2 hello bit, then noise
])
def test_garbage_that_looks_like_tls_is_closed_at_once(tls, garbage):
    with _raw(tls) as sock:
        sock.sendall(garbage)
        # Closed on the bytes themselves, not by the timeout: well before it, in practice
        # (the bound is generous; no timing is asserted).
        assert _closed_within(sock, 6.0)
    assert _serves(tls)


def test_garbage_that_is_not_http_gets_400_and_a_close(tls):
    with _raw(tls) as sock:
        sock.sendall(b"\x01\x02\x03 not http at all\r\n\r\n")
        data = b""
        sock.settimeout(5)
        try:
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    assert data.startswith(b"HTTP/1.1 400 "), data[:200]
    assert _serves(tls)


def _reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_client_that_resets_mid_handshake_costs_nothing(tls, certs):  # noqa: F811
    hello = _client_hello(certs)
    for _ in range(20):
        sock = _raw(tls)
        sock.sendall(hello)
        sock.recv(1)  # the ServerHello has started: the server is mid-handshake
        _reset(sock)
    for _ in range(20):
        sock = _raw(tls)
        sock.sendall(hello[:40])
        _reset(sock)
    assert _serves(tls)
    assert tls.alive()


def test_many_half_open_handshakes_do_not_block_other_clients(tls, certs):  # noqa: F811
    hello = _client_hello(certs)
    stalled = []
    try:
        for index in range(150):
            sock = _raw(tls)
            if index % 3 == 1:
                sock.sendall(hello[:50])
            elif index % 3 == 2:
                sock.sendall(b"\x16\x03")
            stalled.append(sock)
        # Clients that complete their handshakes are served while all those stall.
        results = []

        def client():
            try:
                results.append(_serves(tls))
            except Exception as error:  # noqa: BLE001 - the assertion below reports it
                results.append(error)

        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert results == [True] * 8
        # The stalled ones are all closed by the handshake timeout.
        for sock in stalled:
            assert _closed_within(sock, 6.0)
    finally:
        for sock in stalled:
            sock.close()
