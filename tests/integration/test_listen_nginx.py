"""`listen` port ranges (`ADDR:FIRST-LAST`, bare `FIRST-LAST`) against Debian's nginx 1.22: one
listening address per port of the range, `$server_port` naming the one a request came in on,
and nginx's messages for a range that is not one."""

import socket

import pytest

from http_client import Connection
from nginx_diff import answers_of_both, prepare_tree, refusals, start_portico

RANGE = r"""
    server {
        listen 127.0.0.1:@PORT@-@PORT+1@;
        location / { return 200 "range $server_addr:$server_port"; }
    }
    server {
        listen 127.0.0.1:@PORT2@;
        location / { return 200 "other $server_port"; }
    }
"""

BARE_RANGE = r"""
    server {
        listen @PORT@-@PORT+1@;
        location / { return 200 "bare $server_addr:$server_port"; }
    }
    server {
        listen 127.0.0.1:@PORT2@;
        location / { return 200 "other $server_port"; }
    }
"""


def _answers(served):
    """The body each port answers, with the ports named by their role."""
    first, other = served.ports
    names = {str(first): "FIRST", str(first + 1): "SECOND", str(other): "OTHER"}
    out = []
    for port in (first, first + 1, other):
        with Connection.tcp("127.0.0.1", port, 5.0) as conn:
            r = conn.request("GET", "/", host="localhost")
        body = r.body.decode()
        for number, name in names.items():
            body = body.replace(number, name)
        out.append((r.status, body))
    return out


@pytest.mark.parametrize("body", [RANGE, BARE_RANGE], ids=["address", "bare"])
def test_a_port_range_listens_on_every_port_of_it_as_nginx(tmp_path, body):
    prepare_tree(str(tmp_path), {})
    ours, theirs = answers_of_both(str(tmp_path), body, 2, _answers)
    assert ours == theirs
    assert ours[1][1].endswith(":SECOND"), ours  # the second port is served, and named


def test_an_ipv6_port_range(tmp_path):
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    body = RANGE.replace("listen 127.0.0.1:@PORT@-@PORT+1@;",
                         "listen 127.0.0.1:@PORT@; listen [::1]:@PORT@-@PORT+1@;")
    prepare_tree(str(tmp_path), {})
    portico = start_portico(str(tmp_path), body, 2)
    try:
        port = portico.ports[0] + 1
        with socket.create_connection(("::1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data
        assert data.endswith(("range ::1:%d" % port).encode()), data
    finally:
        portico.stop()


@pytest.mark.parametrize("listen", [
    "127.0.0.1:9-8",         # first above last
    "9-8",
    "127.0.0.1:0-5",         # a port out of 1..65535
    "127.0.0.1:5-70000",
    "70000-70001",
    "[::1]:9-8",
    "127.0.0.1:8-x",         # not a number
    "127.0.0.1:-8",
])
def test_a_bad_range_is_refused_as_nginx(tmp_path, listen):
    ours, nginx = refusals(tmp_path, "server { listen %s; }" % listen)
    assert ours == nginx


def test_a_port_of_a_range_written_twice_is_a_duplicate_as_nginx(tmp_path):
    ours, nginx = refusals(tmp_path, "server { listen 127.0.0.1:9100-9102; "
                                     "listen 127.0.0.1:9101; }")
    assert ours == nginx
    assert "a duplicate listen 127.0.0.1:9101" in ours
