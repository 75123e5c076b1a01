"""A deliberately small raw-socket HTTP/1.x client for driving portico byte by byte.

It never normalises what the server sends: the tests need to see exact status lines, header
spellings, interim 1xx responses and where the connection was closed.
"""

import email.utils
import re
import socket
import time

DEFAULT_TIMEOUT = 5.0
MAX_HEAD_BYTES = 256 * 1024

IMF_FIXDATE_RE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$"
)


class ProtocolError(AssertionError):
    """The server sent bytes that are not a well-formed HTTP/1.x response."""


class Response:
    """One parsed response: status line, ordered headers and the framed body."""

    def __init__(self, version, status, reason, headers, body, raw_head, framing):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) in wire order
        self.body = body
        self.raw_head = raw_head
        self.framing = framing  # "none", "length", "chunked" or "close"
        self.interim = []  # 1xx responses that preceded this one

    def header(self, name, default=None):
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return default

    def header_all(self, name):
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]

    def has_header(self, name):
        return self.header(name) is not None

    def connection_tokens(self):
        tokens = set()
        for value in self.header_all("Connection"):
            tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
        return tokens

    def __repr__(self):
        return "<Response %s %s %s headers=%r body=%d bytes>" % (
            self.version, self.status, self.reason, self.headers, len(self.body))


class Connection:
    """A client socket with its own receive buffer so pipelined responses can be split."""

    def __init__(self, sock, timeout=DEFAULT_TIMEOUT):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""
        self.eof = False

    @classmethod
    def tcp(cls, host, port, timeout=DEFAULT_TIMEOUT, rcvbuf=None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
        except Exception:
            sock.close()
            raise
        return cls(sock, timeout)

    @classmethod
    def unix(cls, path, timeout=DEFAULT_TIMEOUT):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except Exception:
            sock.close()
            raise
        return cls(sock, timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def settimeout(self, timeout):
        self.sock.settimeout(timeout)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self, size=65536):
        """Reads more bytes into the buffer; returns False at EOF (a reset counts as EOF)."""
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(size)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_until(self, delimiter, limit=MAX_HEAD_BYTES):
        while True:
            index = self.buf.find(delimiter)
            if index >= 0:
                end = index + len(delimiter)
                data, self.buf = self.buf[:end], self.buf[end:]
                return data
            if len(self.buf) > limit:
                raise ProtocolError("no %r within %d bytes: %r" % (delimiter, limit, self.buf[:200]))
            if not self._fill():
                raise ProtocolError("connection closed before %r; got %r" % (delimiter, self.buf[:200]))

    def read_exact(self, count):
        while len(self.buf) < count:
            if not self._fill(max(65536, count - len(self.buf))):
                raise ProtocolError("connection closed after %d of %d body bytes" % (len(self.buf), count))
        data, self.buf = self.buf[:count], self.buf[count:]
        return data

    def read_to_close(self):
        while self._fill():
            pass
        data, self.buf = self.buf, b""
        return data

    def read_head(self):
        """Reads one status line plus header block and parses it (no body)."""
        raw = self.read_until(b"\r\n\r\n")
        lines = raw[:-4].split(b"\r\n")
        match = re.match(rb"^(HTTP/\d\.\d) (\d{3}) ?(.*)$", lines[0])
        if not match:
            raise ProtocolError("bad status line %r" % lines[0])
        headers = []
        for line in lines[1:]:
            if b":" not in line or line[:1] in (b" ", b"\t"):
                raise ProtocolError("bad header line %r" % line)
            name, value = line.split(b":", 1)
            if name != name.strip() or not name:
                raise ProtocolError("bad header name %r" % name)
            headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        return (match.group(1).decode(), int(match.group(2)), match.group(3).decode("latin-1"),
                headers, raw)

    def read_response(self, method="GET", return_interim=False):
        """Reads one final response (collecting any 1xx first) framed per RFC 9112 section 6.3.

        With return_interim=True a 1xx response is returned on its own, so a test can send a
        body only after it has seen "100 Continue".
        """
        interim = []
        while True:
            version, status, reason, headers, raw = self.read_head()
            response = Response(version, status, reason, headers, b"", raw, "none")
            if 100 <= status < 200:
                if return_interim:
                    return response
                interim.append(response)
                continue
            break
        response.interim = interim
        transfer_encoding = response.header("Transfer-Encoding")
        content_length = response.header_all("Content-Length")
        if method == "HEAD" or status in (204, 304):
            response.framing = "none"
        elif transfer_encoding is not None:
            if transfer_encoding.strip().lower() != "chunked":
                raise ProtocolError("unexpected Transfer-Encoding %r" % transfer_encoding)
            response.framing = "chunked"
            response.body = self._read_chunked()
        elif content_length:
            if len(set(content_length)) != 1 or not content_length[0].isdigit():
                raise ProtocolError("bad Content-Length %r" % content_length)
            response.framing = "length"
            response.body = self.read_exact(int(content_length[0]))
        else:
            response.framing = "close"
            response.body = self.read_to_close()
        return response

    def _read_chunked(self):
        body = b""
        while True:
            line = self.read_until(b"\r\n", limit=4096)
            size_text = line[:-2].split(b";", 1)[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]+", size_text):
                raise ProtocolError("bad chunk size line %r" % line)
            size = int(size_text, 16)
            if size == 0:
                while self.read_until(b"\r\n", limit=16384) != b"\r\n":
                    pass
                return body
            body += self.read_exact(size)
            if self.read_exact(2) != b"\r\n":
                raise ProtocolError("chunk not followed by CRLF")

    def is_closed(self, timeout=DEFAULT_TIMEOUT):
        """True when the peer closes (EOF or reset) within timeout with no further bytes sent.

        Raises if the server sends extra bytes instead: that means it wrote something after what
        should have been its last response.
        """
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            if self.buf:
                raise ProtocolError("unexpected extra bytes %r" % self.buf[:200])
            if not self._fill():
                return True
            raise ProtocolError("unexpected extra bytes %r" % self.buf[:200])
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(old)

    def wait_closed(self, timeout):
        """Waits up to timeout for the peer to close; returns (closed, seconds, bytes received)."""
        start = time.monotonic()
        deadline = start + timeout
        received = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False, time.monotonic() - start, received
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False, time.monotonic() - start, received
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
                return True, time.monotonic() - start, received
            received += chunk

    def request(self, method, target, headers=None, body=b"", version="HTTP/1.1", host="localhost"):
        self.send(build_request(method, target, headers, body, version, host))
        return self.read_response(method)


def build_request(method, target, headers=None, body=b"", version="HTTP/1.1", host="localhost"):
    lines = ["%s %s %s" % (method, target, version)]
    names = set()
    for name, value in (headers or []):
        names.add(name.lower())
    if host is not None and "host" not in names:
        lines.append("Host: %s" % host)
    for name, value in (headers or []):
        lines.append("%s: %s" % (name, value))
    if isinstance(body, str):
        body = body.encode("latin-1")
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_http_date(value):
    return email.utils.parsedate_to_datetime(value)


def parse_multipart_byteranges(content_type, body):
    """Returns [(content_range, content_type, bytes)] for a multipart/byteranges body."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise ProtocolError("no boundary in %r" % content_type)
    delimiter = b"--" + match.group(1).encode("latin-1")
    parts = []
    position = body.find(delimiter)
    if position < 0:
        raise ProtocolError("no first boundary in multipart body")
    while True:
        position += len(delimiter)
        if body[position:position + 2] == b"--":
            return parts
        if body[position:position + 2] != b"\r\n":
            raise ProtocolError("boundary not followed by CRLF at %d" % position)
        head_end = body.find(b"\r\n\r\n", position)
        if head_end < 0:
            raise ProtocolError("unterminated part header")
        part_headers = {}
        for line in body[position + 2:head_end].split(b"\r\n"):
            name, value = line.split(b":", 1)
            part_headers[name.strip().lower().decode()] = value.strip().decode("latin-1")
        range_match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", part_headers.get("content-range", ""))
        if not range_match:
            raise ProtocolError("bad part Content-Range %r" % part_headers.get("content-range"))
        first, last = int(range_match.group(1)), int(range_match.group(2))
        data_start = head_end + 4
        data_end = data_start + (last - first + 1)
        if body[data_end:data_end + 2 + len(delimiter)] != b"\r\n" + delimiter:
            raise ProtocolError("part data not followed by CRLF and boundary")
        parts.append((part_headers["content-range"], part_headers.get("content-type"),
                      body[data_start:data_end]))
        position = data_end + 2
