"""Certificates made at test time with the openssl CLI (no key is committed), and a small HTTPS
client over Python's ssl that reports a refused handshake as an outcome, not an exception.

One CA signs an ECDSA P-256 and an RSA-2048 server certificate (for localhost and 127.0.0.1)
and a client certificate; a self-signed client certificate stands for one no CA vouches for.
"""

import os
import socket
import ssl
import subprocess


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class TlsFiles:
    """Paths of the PEM files made in one directory."""

    def __init__(self, directory):
        self.dir = str(directory)

    def path(self, name):
        return os.path.join(self.dir, name)

    def build(self):
        d = self.dir
        with open(self.path("server.ext"), "w") as handle:
            handle.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                         "extendedKeyUsage=serverAuth\n")
        with open(self.path("client.ext"), "w") as handle:
            handle.write("extendedKeyUsage=clientAuth\n")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", "ca.key", "-out", "ca.pem", "-days", "3", "-subj", "/CN=portico test CA",
                 cwd=d)
        for name, algorithm in (("server-ec", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                                ("server-rsa", ["rsa:2048"]),
                                ("client", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"])):
            subject = "/CN=localhost" if name.startswith("server") else "/CN=portico test client"
            _openssl("req", "-newkey", *algorithm, "-nodes", "-keyout", name + ".key",
                     "-out", name + ".csr", "-subj", subject, cwd=d)
            ext = "server.ext" if name.startswith("server") else "client.ext"
            _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                     "-CAcreateserial", "-out", name + ".pem", "-days", "3", "-extfile", ext,
                     cwd=d)
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", "stranger.key", "-out", "stranger.pem", "-days", "3",
                 "-subj", "/CN=stranger", cwd=d)
        # Python's load_cert_chain(certfile) with no keyfile: the key follows the certificate.
        with open(self.path("server-ec-combined.pem"), "wb") as out:
            for part in ("server-ec.pem", "server-ec.key"):
                with open(self.path(part), "rb") as handle:
                    out.write(handle.read())
        return self


def client_context(files, cert=None, minimum=None, maximum=None, ciphers=None):
    """A verifying client context trusting the test CA, optionally with a client certificate."""
    context = ssl.create_default_context(cafile=files.path("ca.pem"))
    if cert is not None:
        context.load_cert_chain(files.path(cert + ".pem"), files.path(cert + ".key"))
    if minimum is not None:
        context.minimum_version = minimum
    if maximum is not None:
        context.maximum_version = maximum
    if ciphers is not None:
        context.set_ciphers(ciphers)
    return context


class Exchange:
    """What one HTTPS request came to: `refused` (the handshake or the first read failed) or a
    response with `status`, `headers` (lowercase names) and `body`, and the TLS parameters."""

    def __init__(self):
        self.refused = None  # the exception that refused it, or None
        self.status = None
        self.headers = {}
        self.body = b""
        self.cipher = None
        self.version = None


def https_request(port, context, target="/", host="localhost", timeout=5.0):
    """GET `target` with Connection: close over TLS to 127.0.0.1:`port`, SNI `host`."""
    result = Exchange()
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        tls = context.wrap_socket(raw, server_hostname=host)
    except (ssl.SSLError, ConnectionError, OSError) as error:
        raw.close()
        result.refused = error
        return result
    with tls:
        result.cipher = tls.cipher()[0]
        result.version = tls.version()
        data = b""
        try:
            tls.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                         % (target, host)).encode())
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ssl.SSLError, ConnectionError, OSError) as error:
            # TLS 1.3: the server judges the client's certificate after the client's Finished,
            # so a refusal shows on the first read.
            if not data:
                result.refused = error
                return result
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/1."):
        result.refused = AssertionError("no HTTP response: %r" % data[:200])
        return result
    result.status = int(lines[0].split()[1])
    for line in lines[1:]:
        name, _, value = line.partition(":")
        result.headers[name.strip().lower()] = value.strip()
    result.body = body
    return result
