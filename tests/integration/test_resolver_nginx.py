"""resolver and resolver_timeout against Debian's nginx 1.22: a proxy_pass with variables whose
host no upstream names is looked up per request with the location's resolver. Both servers ask
the same scripted name server (UDP and TCP on one port, below) and must give the same answers
and send it the same queries: A and AAAA (AAAA left out with ipv6=off), CNAME chains followed,
a CNAME loop given up, errors (NXDOMAIN, SERVFAIL, no answer within resolver_timeout) not
cached, a truncated UDP answer asked again over TCP, answers cached by lower-case name for
their TTL or valid=."""

import time

import pytest

from dns_support import AAAA, A, NameServer
from nginx_diff import answers_of_both, prepare_tree, refusals


@pytest.fixture
def name_server():
    server = NameServer()
    yield server
    server.close()


SITE = """
    server {
        listen 127.0.0.1:@PORT@;
        location / {
            resolver 127.0.0.1:%(dns)d;
            resolver_timeout 1s;
            proxy_pass http://$arg_h:@PORT2@/backend;
        }
        location /valid/ {
            resolver 127.0.0.1:%(dns)d valid=30s ipv6=off;
            proxy_pass http://$arg_h:@PORT2@/backend;
        }
        location /none/ {
            proxy_pass http://$arg_h:@PORT2@/backend;
        }
    }
    server {
        listen 127.0.0.1:@PORT2@;
        location /backend { return 200 "backend $host\\n"; }
    }
"""


def test_names_resolved_as_nginx(tmp_path, name_server):
    prepare_tree(str(tmp_path), {})

    def collect(served):
        name_server.queries()
        answers = []

        def get(target):
            response = served.request("GET", target)
            answers.append((target, response.status, response.body))

        for host in ("a.test", "A.TEST", "a.test", "alias.test", "chain.test", "chain.test",
                     "multi.test", "nx.test", "nx.test", "fail.test", "fail.test",
                     "silent.test", "loop.test", "trunc.test", "trunc.test", "short1.test"):
            get("/?h=" + host)
        get("/none/?h=a.test")
        get("/valid/?h=short2.test")
        # short1's and short2's TTL of 1 s has passed (nginx counts whole seconds: an answer
        # stays up to 2 s), valid=30s holds.
        time.sleep(2.2)
        get("/?h=short1.test")
        get("/valid/?h=short2.test")
        return answers, name_server.queries()

    ours, theirs = answers_of_both(str(tmp_path), SITE % {"dns": name_server.port}, 2, collect)
    for mine, expected in zip(ours[0], theirs[0]):
        # The 502 pages name their server; everything else is compared whole.
        assert mine[1] == expected[1], (mine, expected)
        if mine[1] == 200:
            assert mine == expected
    assert [a[1] for a in ours[0]].count(200) == 13
    assert ours[1] == theirs[1]
    # What the counts say, spelled out: the cache, case-insensitive; TCP after truncation;
    # errors asked again; valid= overriding the TTL; no AAAA with ipv6=off.
    assert ours[1][("a.test", A, "udp")] == 1
    assert ours[1][("trunc.test", A, "tcp")] == 1
    assert ours[1][("nx.test", A, "udp")] == 2
    assert ours[1][("short1.test", A, "udp")] == 2
    assert ours[1][("short2.test", A, "udp")] == 1
    assert ("short2.test", AAAA, "udp") not in ours[1]


@pytest.mark.parametrize("text", [
    "resolver 127.0.0.1 valid=x;",
    "resolver 127.0.0.1 ipv6=maybe;",
    "resolver 127.0.0.1:99999;",
    "resolver 127.0.0.1; resolver 127.0.0.2;",
    "resolver;",
    "resolver_timeout x;",
    "server { listen 127.0.0.1:1; location / { resolver 127.0.0.1; resolver [::1]:53; } }",
])
def test_bad_resolver_lines_are_refused_as_nginx(tmp_path, text):
    ours, nginx = refusals(tmp_path, text)
    assert ours == nginx
