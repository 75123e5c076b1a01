"""testssl.sh (Debian's package) against portico's default TLS configuration: one server with an
ECDSA and an RSA certificate and no other ssl_* directive. Its JSON must show no protocol below
TLS 1.2, forward secrecy for every cipher the server accepts, and no vulnerability.

One testssl run, bounded: protocols (-p), every cipher one by one over its own sockets (-e, which
lists each accepted cipher with its key exchange: what -f would say, for all of them) and every
vulnerability check (-U). About two minutes of one core (most of it testssl's bash forking
openssl and awk, a third of it its start-up), so the suite runs it only when PORTICO_TESTSSL=1:
scripts/test.sh (CI) does, in its own step beside the fuzzers, which use the other core.
"""

import json
import os
import shutil
import socket
import ssl
import subprocess

import pytest

from servers import PorticoServer, free_port
from tls_ops_support import TlsFiles

# A hang guard, not a target: 115 s of CPU (2 min on a 2-core machine with a core free), 4-7
# minutes here when other builds load the machine (load 6-9).
TESTSSL_SECONDS = 600

OLD_PROTOCOLS = ("SSLv2", "SSLv3", "TLS1", "TLS1_1")
# What -U reports on (testssl 3.0): each must be there, so a check that silently did not run fails.
VULNERABILITY_IDS = (
    "heartbleed", "CCS", "ticketbleed", "ROBOT", "secure_renego", "secure_client_renego",
    "CRIME_TLS", "BREACH", "POODLE_SSL", "fallback_SCSV", "SWEET32", "FREAK", "DROWN", "LOGJAM",
    "LOGJAM-common_primes", "BEAST", "LUCKY13", "RC4",
)
# LOW is allowed: testssl reports LUCKY13 as LOW for any CBC cipher (ECDHE-…-AES…-SHA in nginx's
# default HIGH:!aNULL:!MD5, as it does against nginx).
BAD_SEVERITIES = ("MEDIUM", "HIGH", "CRITICAL")


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
        "-p",  # protocols, over sockets
        "-e",  # each cipher over sockets (all of testssl's ~370, not just the local OpenSSL's)
        "-U",  # every vulnerability check
        "127.0.0.1:%d" % port,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TESTSSL_SECONDS)
    with open(json_path) as handle:
        return json.load(handle), done


def test_no_cipher_without_forward_secrecy(default_tls_server):
    # The quick, always-run half of what testssl's -e checks: a TLS 1.2 client offering only
    # static key exchanges (RSA, PSK, SRP) or no authentication is refused by both certificates.
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


def accepted_ciphers(findings):
    """(hexcode, IANA name, key exchange) of each cipher -e found the server accepts."""
    ciphers = []
    for f in findings:
        if not f["id"].startswith("cipher_x"):
            continue
        # "xc02b   ECDHE-ECDSA-AES128-GCM-SHA256   ECDH 253   AESGCM   128   TLS_ECDHE_ECDSA_..."
        words = f["finding"].split()
        ciphers.append((words[0], words[-1], words[2]))
    return ciphers


def forward_secret(iana_name):
    # TLS 1.3 suites (TLS_AES_…, TLS_CHACHA20_…) always exchange keys ephemerally; before 1.3,
    # only (EC)DHE does (not static RSA, ECDH, DH, PSK or SRP).
    if "_WITH_" not in iana_name:
        return iana_name.startswith("TLS_")
    return iana_name.startswith(("TLS_ECDHE_", "TLS_DHE_"))


@pytest.mark.time_budget(TESTSSL_SECONDS + 60)
@pytest.mark.skipif(os.environ.get("PORTICO_TESTSSL") != "1",
                    reason="slow (2-4 minutes): set PORTICO_TESTSSL=1 (scripts/test.sh does)")
@pytest.mark.skipif(shutil.which("testssl") is None,
                    reason="testssl.sh is not installed (scripts/install-deps.sh)")
def test_testssl_finds_nothing_in_the_default_configuration(default_tls_server, tmp_path):
    findings, done = run_testssl(default_tls_server.port, str(tmp_path / "testssl.json"))
    by_id = {f["id"]: f for f in findings}
    context = done.stdout[-3000:] + done.stderr[-2000:]
    assert "scanTime" in by_id, context  # the scan ran to its end
    # Protocols: TLS 1.2 and 1.3 offered, nothing older.
    for protocol in OLD_PROTOCOLS:
        assert protocol in by_id, (protocol, context)
        assert by_id[protocol]["finding"].startswith("not offered"), by_id[protocol]
    assert by_id["TLS1_2"]["finding"].startswith("offered"), by_id["TLS1_2"]
    assert by_id["TLS1_3"]["finding"].startswith("offered"), by_id["TLS1_3"]
    # Ciphers: every one the server accepts exchanges keys ephemerally; both certificates serve.
    ciphers = accepted_ciphers(findings)
    names = [name for _hexcode, name, _kx in ciphers]
    assert any(name.startswith("TLS_AES_") for name in names), names
    assert any(name.startswith("TLS_ECDHE_ECDSA_") for name in names), names
    assert any(name.startswith("TLS_ECDHE_RSA_") for name in names), names
    assert not [c for c in ciphers if not forward_secret(c[1])], ciphers
    # Vulnerabilities: every check reported, none above LOW; no testing problem either (WARN),
    # bar the local OpenSSL's missing GOST engine.
    for vulnerability in VULNERABILITY_IDS:
        assert vulnerability in by_id, (vulnerability, context)
    bad = [f for f in findings if f["severity"] in BAD_SEVERITIES]
    assert not bad, bad
    problems = [f for f in findings if f["severity"] == "WARN" and f["id"] != "engine_problem"]
    assert not problems, problems
