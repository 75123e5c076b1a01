"""Differential: raw request heads that nginx 1.22 accepts or refuses in its own way — bare LF
line endings, a #fragment, TRACE and CONNECT, nginx's unique header lines, an unknown
Transfer-Encoding — sent byte for byte to Debian's nginx and to portico; the status of each
answer, the URI and arguments the location saw, and whether the connection closed must agree.
"""

import socket
from concurrent.futures import ThreadPoolExecutor

from nginx_diff import prepare_tree, start_nginx, start_portico

HTTP = r"""
    server {
        listen 127.0.0.1:@PORT@;
        root @DIR@/www;
        location / { return 200 "uri=$uri args=$args request_uri=$request_uri\n"; }
    }
"""

H = b"Host: localhost\r\n"
CASES = {
    "bare_lf_head": b"GET /a?b=1 HTTP/1.1\nHost: localhost\n\n",
    "bare_lf_http10": b"GET /lf HTTP/1.0\n\n",
    "mixed_line_endings": b"GET /m HTTP/1.1\r\nHost: localhost\nX-A: 1\r\n\n",
    "bare_lf_chunked_body": (b"POST /c HTTP/1.1\nHost: localhost\nTransfer-Encoding: chunked\n\n"
                             b"3\nabc\n0\n\n"),
    "fragment": b"GET /f?x=1#frag HTTP/1.1\r\n" + H + b"\r\n",
    "fragment_in_path": b"GET /p/#frag HTTP/1.1\r\n" + H + b"\r\n",
    "fragment_dot_dot": b"GET /foo/bar/..#frag HTTP/1.1\r\n" + H + b"\r\n",
    "trace": b"TRACE / HTTP/1.1\r\n" + H + b"\r\n",
    "connect": b"CONNECT / HTTP/1.1\r\n" + H + b"\r\n",
    "two_content_lengths_same": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1\r\n"
                                 b"Content-Length: 1\r\n\r\nx"),
    "content_length_list": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1, 1\r\n\r\nx",
    "two_authorizations": b"GET / HTTP/1.1\r\n" + H + b"Authorization: a\r\nAuthorization: a\r\n\r\n",
    "two_if_modified_since": (b"GET / HTTP/1.1\r\n" + H + b"If-Modified-Since: x\r\n"
                              b"If-Modified-Since: x\r\n\r\n"),
    "two_if_none_match": b"GET / HTTP/1.1\r\n" + H + b"If-None-Match: a\r\nIf-None-Match: a\r\n\r\n",
    "two_if_match": b"GET / HTTP/1.1\r\n" + H + b"If-Match: a\r\nIf-Match: a\r\n\r\n",
    "two_if_range": b"GET / HTTP/1.1\r\n" + H + b"If-Range: a\r\nIf-Range: a\r\n\r\n",
    "two_expects": b"GET / HTTP/1.1\r\n" + H + b"Expect: a\r\nExpect: a\r\n\r\n",
    "two_content_ranges": b"GET / HTTP/1.1\r\n" + H + b"Content-Range: a\r\nContent-Range: a\r\n\r\n",
    "te_gzip": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n",
    "te_gzip_chunked": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "te_http10": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
}


def _exchange(port, raw):
    """The status line and body of the first answer, and whether the server then closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw + b"GET /next HTTP/1.1\r\n" + H + b"\r\n")
        data = b""
        sock.settimeout(1.5)
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
    head, _, rest = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split(b" ", 2)[1] if head else b""
    body = rest.split(b"HTTP/1.1 ", 1)[0] if status == b"200" else b""
    # A second answer (to /next) means the connection stayed open after the first.
    return status.decode(), body.decode("latin-1"), data.count(b"HTTP/1.") > 1


def _answers(server):
    # Concurrently: a case whose connection stays open costs its 1.5 s read timeout, and one
    # after another they took 18 s of the test's 30 s budget.
    with ThreadPoolExecutor(max_workers=len(CASES)) as pool:
        futures = {name: pool.submit(_exchange, server.ports[0], raw) for name, raw in CASES.items()}
        return {name: future.result() for name, future in futures.items()}


def test_raw_request_heads_as_nginx(tmp_path):
    workdir = str(tmp_path)
    prepare_tree(workdir, {"www/x": "x\n"})
    nginx = start_nginx(workdir, HTTP, 1)
    try:
        theirs = _answers(nginx)
    finally:
        nginx.stop()
    portico = start_portico(workdir, HTTP, 1)
    try:
        ours = _answers(portico)
    finally:
        portico.stop()
    # The cases mean something: nginx accepts some and refuses others with 400, 405 and 501.
    assert {theirs[n][0] for n in CASES} >= {"200", "400", "405", "501"}, theirs
    for name in CASES:
        assert ours[name] == theirs[name], "%s:\n  portico %r\n  nginx   %r" % (
            name, ours[name], theirs[name])


ALWAYS = r"""
    server {
        listen 127.0.0.1:@PORT@;
        add_header X-Always "$status from $remote_addr" always;
        add_header X-Never never;
        location / { return 200 "ok\n"; }
    }
    server {
        listen 127.0.0.1:@PORT@;
        server_name b.test;
        add_header X-Server b always;
        location / { add_header X-Location l always; return 200 "ok\n"; }
    }
"""

REFUSED = {
    "bad_request_line": b"GARBAGE\r\n\r\n",
    "bad_version": b"GET / HTTP/9.1\r\n" + H + b"\r\n",
    "space_in_header_name": b"GET / HTTP/1.1\r\n" + H + b"Bad Name: x\r\n\r\n",
    "host_chose_b": b"GET / HTTP/1.1\r\nHost: b.test\r\nBad Name: x\r\n\r\n",
    "bad_host": b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
}


def _refused_answer(port, raw):
    """The status and the X- header lines of the answer to one refused head."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    lines = data.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    return lines[0].split(" ")[1], sorted(l for l in lines[1:] if l.lower().startswith("x-"))


def test_refused_heads_pass_the_servers_always_headers_as_nginx(tmp_path):
    # A head refused before any location (nginx's ngx_http_finalize_request with 400 on the
    # server level's settings) still goes through the server's add_header ... always, of the
    # server a complete Host line chose, else the default one.
    workdir = str(tmp_path)
    prepare_tree(workdir, {})
    answers = []
    for start in (start_nginx, start_portico):
        server = start(workdir, ALWAYS, 1)
        try:
            answers.append({n: _refused_answer(server.ports[0], raw) for n, raw in REFUSED.items()})
        finally:
            server.stop()
    theirs, ours = answers
    assert theirs["bad_request_line"] == ("400", ["X-Always: 400 from 127.0.0.1"]), theirs
    assert theirs["host_chose_b"] == ("400", ["X-Server: b"]), theirs
    for name in REFUSED:
        assert ours[name] == theirs[name], "%s:\n  portico %r\n  nginx   %r" % (
            name, ours[name], theirs[name])
