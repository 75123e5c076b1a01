"""testssl.sh (Debian's package) against portico's default TLS configuration: one server with an
ECDSA and an RSA certificate and no other ssl_* directive. Its JSON must show no protocol below
TLS 1.2, forward secrecy for every cipher offered, and no HIGH/CRITICAL finding.

testssl is slow on small machines (it forks an openssl or a bash socket per probe: 2-5 minutes
here for protocols, ciphers per protocol, forward secrecy and vulnerabilities), so the test runs
only when PORTICO_TESTSSL=1 (CI sets it in its own step) and is bounded by a timeout.
"""

import json
import os
import shutil
import subprocess

import pytest

from servers import PorticoServer, free_port
from tls_ops_support import TlsFiles

TESTSSL_SECONDS = 540

pytestmark = [
    pytest.mark.time_budget(TESTSSL_SECONDS + 60),
    pytest.mark.skipif(os.environ.get("PORTICO_TESTSSL") != "1",
                       reason="slow (minutes): set PORTICO_TESTSSL=1 to run testssl.sh"),
    pytest.mark.skipif(shutil.which("testssl") is None,
                       reason="testssl.sh is not installed (scripts/install-deps.sh)"),
]

OLD_PROTOCOLS = ("SSLv2", "SSLv3", "TLS1", "TLS1_1")


@pytest.fixture(scope="module")
def default_tls_server(tmp_path_factory):
    files = TlsFiles(tmp_path_factory.mktemp("testssl-certs")).build()
    work = str(tmp_path_factory.mktemp("testssl-portico"))
    os.makedirs(os.path.join(work, "html"))
    with open(os.path.join(work, "html", "index.html"), "w") as handle:
        handle.write("hello\n")
    port = free_port()
    conf = os.path.join(work, "portico.conf")
    with open(conf, "w") as handle:
        handle.write("""
worker_processes 1;
error_log %(work)s/error.log notice;
pid %(work)s/portico.pid;
events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:%(port)d ssl;
        server_name localhost;
        ssl_certificate %(ec)s.pem;
        ssl_certificate_key %(ec)s.key;
        ssl_certificate %(rsa)s.pem;
        ssl_certificate_key %(rsa)s.key;
        root %(work)s/html;
    }
}
""" % {"work": work, "port": port, "ec": files.path("server-ec"), "rsa": files.path("server-rsa")})
    server = PorticoServer(work, ["-c", conf, "-g", "daemon off;"], port=port)
    # The bind comes from the file, not from --bind.
    server._bind_args = lambda: []
    server.start()
    yield server
    server.stop_and_check()


def run_testssl(port, json_path):
    command = [
        "testssl", "--warnings", "off", "--color", "0", "--quiet",
        "--nodns", "none",  # no DNS: lookups time out on machines without a resolver
        "--connect-timeout", "5", "--openssl-timeout", "5",
        "--jsonfile", json_path,
        "-p",  # protocols
        "-f",  # forward secrecy (-E, every cipher one by one, takes over 10 minutes here: the
               # test above checks the static key exchanges directly)
        "-U",  # vulnerabilities
        "127.0.0.1:%d" % port,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TESTSSL_SECONDS)
    with open(json_path) as handle:
        return json.load(handle), done


def test_no_cipher_without_forward_secrecy(default_tls_server):
    # What testssl's -E would list one by one (too slow here): a TLS 1.2 client offering only
    # static key exchanges (RSA, PSK, SRP) or no authentication is refused by both certificates.
    import ssl
    import socket
    for ciphers in ("kRSA", "aNULL", "kPSK:kRSAPSK", "kSRP"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.set_ciphers(ciphers + ":@SECLEVEL=0")
        except ssl.SSLError:
            continue  # the local OpenSSL has none of them: nothing to offer
        with socket.create_connection(("127.0.0.1", default_tls_server.port), timeout=5) as raw:
            with pytest.raises((ssl.SSLError, ConnectionError)):
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.cipher()


def test_testssl_finds_nothing_in_the_default_configuration(default_tls_server, tmp_path):
    findings, done = run_testssl(default_tls_server.port, str(tmp_path / "testssl.json"))
    by_id = {f["id"]: f for f in findings}
    assert by_id, done.stdout[-3000:]
    # Protocols: TLS 1.2 and 1.3 offered, nothing older.
    for protocol in OLD_PROTOCOLS:
        assert protocol in by_id, (protocol, done.stdout[-3000:])
        assert by_id[protocol]["finding"].startswith("not offered"), by_id[protocol]
    assert by_id["TLS1_2"]["finding"].startswith("offered"), by_id["TLS1_2"]
    assert by_id["TLS1_3"]["finding"].startswith("offered"), by_id["TLS1_3"]
    # Forward secrecy offered, and every cipher it lists exchanges keys ephemerally.
    fs = by_id.get("PFS") or by_id.get("FS")
    assert fs is not None and fs["severity"] in ("OK", "INFO"), fs
    listed = (by_id.get("PFS_ciphers") or by_id.get("FS_ciphers") or {}).get("finding", "")
    for name in listed.split():
        assert name.startswith(("TLS_", "ECDHE-", "DHE-")), name
    # Vulnerabilities: nothing HIGH or CRITICAL (testssl reports LOW for LUCKY13 on any CBC
    # cipher, as it does against nginx's defaults).
    bad = [f for f in findings if f["severity"] in ("HIGH", "CRITICAL")]
    assert not bad, bad
