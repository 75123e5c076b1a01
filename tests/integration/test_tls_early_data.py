"""ssl_early_data (TLS 1.3 0-RTT), as nginx 1.22 with OpenSSL: with `on` a client resuming a
session may send its request before the handshake ends; portico reads it (SSL_read_early_data),
answers it, and $ssl_early_data is "1" for it ("" for any request after the handshake). With
`off` (the default) the early data is refused and the request sent after the handshake is
answered. openssl s_client sends the early data (-sess_out, then -sess_in with -early_data).

One worker (TlsPortico's default), so the resumed connection meets the worker that issued the
ticket (the ticket keys are the master's, shared by every worker, in any case)."""

import hashlib
import os
import re
import ssl
import subprocess

import pytest

from servers import free_port, portico_binary
from tls_support import OPENSSL, TlsPortico, certs, client_context, s_client  # noqa: F401

BODY = 'return 200 "%s early=[$ssl_early_data] reused=$ssl_session_reused uri=$uri\\n";'

SERVERS = r"""
    ssl_early_data on;
    server {
        listen 127.0.0.1:@PORT@ ssl;
        server_name localhost;
        ssl_certificate @CERTS@/localhost-ecdsa.pem;
        ssl_certificate_key @CERTS@/localhost-ecdsa.key;
        add_header X-Early-Data $ssl_early_data;
        location / { %(on)s }
        location /files/ { root @DIR@; }
        location /unsafe {
            if ($ssl_early_data) { return 425; }
            return 200 "unsafe done\n";
        }
    }
    server {
        listen 127.0.0.1:@PORT2@ ssl;
        server_name localhost;
        ssl_early_data off;
        ssl_certificate @CERTS@/localhost-ecdsa.pem;
        ssl_certificate_key @CERTS@/localhost-ecdsa.key;
        location / { %(off)s }
    }
""" % {"on": BODY % "on", "off": BODY % "off"}

CLOSE = b"GET /after HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
EARLY = b"GET /early HTTP/1.1\r\nHost: localhost\r\n\r\n"


@pytest.fixture(scope="module")
def tls(tmp_path_factory, certs):  # noqa: F811
    workdir = tmp_path_factory.mktemp("tls-early")
    server = TlsPortico(workdir, certs, SERVERS, nports=2)
    server.start()
    yield server
    server.stop_and_check()


def _client(port, args, stdin):
    """s_client on `port` sending `stdin` after the handshake (it waits for the server's close:
    the last request says Connection: close); returns its output."""
    _code, out = s_client(port, ["-tls1_3", "-ign_eof"] + list(args), stdin=stdin)
    return out


def _bodies(out):
    return re.findall(r"^(on|off) early=\[(1?)\] reused=(.) uri=(\S+)$", out, re.M)


def _session(tls, tmp_path):
    """A TLS 1.3 session of the `on` server, saved by s_client (a full handshake: no early data
    can be sent on it, so none is marked)."""
    path = str(tmp_path / "session.pem")
    out = _client(tls.port, ["-sess_out", path], CLOSE)
    assert "Early data was not sent" in out, out
    assert _bodies(out) == [("on", "", ".", "/after")], out
    assert "Max Early Data: 16384" in out, out  # the ticket allows 0-RTT, nginx's NGX_SSL_BUFSIZE
    assert os.path.getsize(path) > 0
    return path


def test_request_in_early_data_is_answered_and_marked(tls, tmp_path):
    session = _session(tls, tmp_path)
    early = tmp_path / "early.txt"
    early.write_bytes(EARLY)
    out = _client(tls.port, ["-sess_in", session, "-early_data", str(early)], CLOSE)
    assert "Reused, TLSv1.3" in out, out
    assert "Early data was accepted" in out, out
    # The request that came in early data is answered before the handshake ends ("1"); the
    # one sent after it on the same connection is not marked.
    assert _bodies(out) == [("on", "1", "r", "/early"), ("on", "", "r", "/after")], out
    assert out.count("X-Early-Data: 1") == 1, out  # add_header omits the empty value
    assert tls.alive()


def test_a_location_can_refuse_early_data_with_425(tls, tmp_path):
    # What the README suggests for requests that must not be replayed.
    session = _session(tls, tmp_path)
    early = tmp_path / "early.txt"
    early.write_bytes(b"POST /unsafe HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
    after = b"POST /unsafe HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    out = _client(tls.port, ["-sess_in", session, "-early_data", str(early)], after)
    assert "Early data was accepted" in out, out
    statuses = re.findall(r"^HTTP/1.1 (\d+)", out, re.M)
    assert statuses == ["425", "200"], out
    assert "unsafe done" in out, out


def test_a_large_response_to_early_data_arrives_whole(tls, tmp_path):
    # The response starts as 0.5-RTT data (SSL_write_early_data) through a socket that fills, and
    # ends after the handshake did; every byte is compared.
    os.makedirs(os.path.join(tls.workdir, "files"), exist_ok=True)
    data = bytes((i * 131 >> 3) & 0xFF for i in range(3 * 1024 * 1024))
    with open(os.path.join(tls.workdir, "files", "big.bin"), "wb") as handle:
        handle.write(data)
    session = _session(tls, tmp_path)
    early = tmp_path / "early.txt"
    early.write_bytes(b"GET /files/big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
    result = subprocess.run(
        [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % tls.port, "-tls1_3", "-ign_eof",
         "-sess_in", session, "-early_data", str(early)],
        input=CLOSE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = result.stdout
    assert b"Early data was accepted" in out, out[-3000:]
    start = out.index(b"HTTP/1.1 200 OK\r\n")
    head_end = out.index(b"\r\n\r\n", start) + 4
    head = out[start:head_end].decode("latin-1")
    assert "Content-Length: %d\r\n" % len(data) in head, head
    assert "X-Early-Data: 1\r\n" in head, head
    body = out[head_end:head_end + len(data)]
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest()
    rest = out[head_end + len(data):].decode("latin-1")
    assert re.search(r"^on early=\[\] reused=r uri=/after$", rest, re.M), rest[-2000:]


def test_early_data_may_be_sent_again(tls, tmp_path):
    # nginx's way: OpenSSL's anti-replay is off, so a session's 0-RTT is accepted each time it
    # is offered (the replay risk the README describes).
    session = _session(tls, tmp_path)
    early = tmp_path / "early.txt"
    early.write_bytes(EARLY)
    for _ in range(2):
        out = _client(tls.port, ["-sess_in", session, "-early_data", str(early)], CLOSE)
        assert "Early data was accepted" in out, out
        assert _bodies(out)[0] == ("on", "1", "r", "/early"), out


def test_resumed_without_early_data_is_not_marked(tls, tmp_path):
    session = _session(tls, tmp_path)
    out = _client(tls.port, ["-sess_in", session], CLOSE)
    assert "Reused, TLSv1.3" in out, out
    assert "Early data was not sent" in out, out
    assert _bodies(out) == [("on", "", "r", "/after")], out
    assert "X-Early-Data" not in out, out


def test_off_refuses_early_data_and_answers_after_the_handshake(tls, tmp_path):
    # The `on` server's ticket (the same certificate, the master's ticket keys) resumes on the
    # `off` server, which refuses the 0-RTT request; the request sent after the handshake is the
    # only one answered.
    session = _session(tls, tmp_path)
    early = tmp_path / "early.txt"
    early.write_bytes(EARLY)
    out = _client(tls.ports[1], ["-sess_in", session, "-early_data", str(early)], CLOSE)
    assert "Reused, TLSv1.3" in out, out
    assert "Early data was rejected" in out, out
    assert _bodies(out) == [("off", "", "r", "/after")], out
    assert tls.alive()


def test_off_issues_tickets_without_early_data(tls, tmp_path):
    path = str(tmp_path / "off.pem")
    out = _client(tls.ports[1], ["-sess_out", path], CLOSE)
    assert _bodies(out) == [("off", "", ".", "/after")], out
    assert "Max Early Data: 16384" not in out and "Max Early Data: 0" in out, out
    early = tmp_path / "early.txt"
    early.write_bytes(EARLY)
    # s_client sends no early data on a session that does not allow it: the request goes after
    # the handshake.
    out = _client(tls.ports[1], ["-sess_in", path, "-early_data", str(early)], CLOSE)
    assert "Early data was not sent" in out, out
    assert _bodies(out) == [("off", "", "r", "/after")], out


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_clients_without_early_data_are_served(tls, version):
    # With early data on, every handshake starts with SSL_read_early_data: a TLS 1.2 client, and
    # a TLS 1.3 one that sends none, are served as before.
    context = client_context(tls.certs, max_version=version)
    with tls.connect("localhost", context=context) as conn:
        for _ in range(2):  # keep-alive: the second read is an ordinary one
            response = conn.request("GET", "/plain", host="localhost")
            assert response.status == 200
            assert response.body == b"on early=[] reused=. uri=/plain\n"
            assert "x-early-data" not in {k.lower() for k, _ in response.headers}


def _check(tmp_path, certs, line):  # noqa: F811
    conf = tmp_path / "t.conf"
    conf.write_text("""events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:%d ssl;
        ssl_certificate %s;
        ssl_certificate_key %s;
        %s
    }
}
""" % (free_port(), certs.chain("localhost", "ecdsa"), certs.key("localhost", "ecdsa"), line))
    result = subprocess.run([portico_binary(), "-p", str(tmp_path) + "/", "-t", "-c", str(conf)],
                            capture_output=True, text=True, timeout=30)
    return result.returncode, result.stderr, str(conf)


@pytest.mark.parametrize("line,message", [
    ("ssl_early_data x;",
     'invalid value "x" in "ssl_early_data" directive, it must be "on" or "off" in %s:8'),
    ("ssl_early_data on; ssl_early_data off;", '"ssl_early_data" directive is duplicate in %s:8'),
    ("ssl_early_data;", 'invalid number of arguments in "ssl_early_data" directive in %s:8'),
    ("ssl_early_data on;", None),
])
def test_messages_at_t(tmp_path, certs, line, message):  # noqa: F811
    code, err, conf = _check(tmp_path, certs, line)
    if message is None:
        assert code == 0, err
    else:
        assert code == 1, err
        assert "[emerg] " + message % conf in err, err


SNI_SERVERS = r"""
    server {
        listen 127.0.0.1:@PORT@ ssl default_server;
        server_name localhost;
        ssl_early_data %(default)s;
        ssl_certificate @CERTS@/localhost-ecdsa.pem;
        ssl_certificate_key @CERTS@/localhost-ecdsa.key;
        location / { return 200 "localhost early=[$ssl_early_data]\n"; }
    }
    server {
        listen 127.0.0.1:@PORT@ ssl;
        server_name b.test;
        ssl_early_data %(named)s;
        ssl_certificate @CERTS@/b-ecdsa.pem;
        ssl_certificate_key @CERTS@/b-ecdsa.key;
        location / { return 200 "b early=[$ssl_early_data]\n"; }
    }
"""


@pytest.mark.parametrize("default,named,verdict", [
    ("on", "off", "accepted"),
    ("off", "on", "not sent"),  # the ticket itself allows none
])
def test_the_address_default_server_decides(tmp_path, certs, default, named, verdict):  # noqa: F811
    # As nginx (and OpenSSL: the SSL takes its early data limit from the context it starts
    # with), SNI choosing another server does not change whether 0-RTT is accepted.
    server = TlsPortico(tmp_path, certs, SNI_SERVERS % {"default": default, "named": named})
    server.start()
    try:
        session = str(tmp_path / "b.pem")
        request = b"GET / HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n"
        out = _client(server.port, ["-servername", "b.test", "-sess_out", session], request)
        assert "b early=[]" in out, out
        early = tmp_path / "early.txt"
        early.write_bytes(b"GET / HTTP/1.1\r\nHost: b.test\r\n\r\n")
        out = _client(server.port, ["-servername", "b.test", "-sess_in", session,
                                    "-early_data", str(early)], request)
        assert "Reused, TLSv1.3" in out, out
        assert "Early data was %s" % verdict in out, out
        expected = ["1", ""] if verdict == "accepted" else [""]
        assert re.findall(r"^b early=\[(1?)\]$", out, re.M) == expected, out
    finally:
        server.stop_and_check()
