"""Worker recycling: --max-requests (+ jitter) and --max-worker-memory replace a worker after
its current request, without failing any request."""

import json

import pytest

from master_support import (fetch, pid_of, served_pid, start_master, wait_for_workers, workers)
from wsgi_support import wait_until

MAX_REQUESTS = 10
JITTER = 3
MEMORY_LIMIT_MB = 120


@pytest.mark.time_budget(20)
def test_max_requests_recycles_workers_without_failing_a_request(launch):
    server = start_master(launch, workers=2, args=["--max-requests", str(MAX_REQUESTS),
                                                   "--max-requests-jitter", str(JITTER)])
    assert len(wait_for_workers(server, 2)) == 2
    counts = {}
    retries = 0
    conn = None
    for index in range(70):
        # Alternate runs of keep-alive reuse and fresh connections.
        if index % 10 == 0 and conn is not None:
            conn.close()
            conn = None
        response, conn, retried = fetch(server, "/pid", conn)
        retries += retried
        assert response.status == 200, "request %d failed during recycling: %r" % (index, response)
        pid = pid_of(response)
        counts[pid] = counts.get(pid, 0) + 1
    if conn is not None:
        conn.close()
    too_many = {pid: n for pid, n in counts.items() if n > MAX_REQUESTS + JITTER}
    assert not too_many, "workers served more than --max-requests %d + jitter %d: %r" % (
        MAX_REQUESTS, JITTER, too_many)
    assert len(counts) >= 6, "only %d distinct workers served 70 requests: %r" % (len(counts), counts)
    assert len(wait_for_workers(server, 2, timeout=3.0)) == 2, workers(server)


@pytest.mark.time_budget(20)
def test_memory_limit_recycles_worker_after_the_request_that_crossed_it(launch):
    server = start_master(launch, workers=2, args=["--max-worker-memory", str(MEMORY_LIMIT_MB)])
    assert len(wait_for_workers(server, 2)) == 2
    conn = server.connect()
    first = conn.request("GET", "/grow?mb=1")
    assert first.status == 200, first
    grower = json.loads(first.body)["pid"]
    crossed = None
    for _ in range(12):
        response, conn, _retried = fetch(server, "/grow?mb=20", conn)
        assert response.status == 200, "a /grow request failed: %r" % response
        data = json.loads(response.body)
        if data["pid"] != grower:
            break  # recycled already, and a new connection reached another worker
        if data["rss_mb"] > MEMORY_LIMIT_MB:
            crossed = data
            break
        if conn is None:
            break  # the worker closed the connection: it is going away
    if conn is not None:
        conn.close()
    assert wait_until(lambda: grower not in workers(server), 6.0), (
        "worker %d grew past --max-worker-memory %d MB (last seen %r) and was not recycled" % (
            grower, MEMORY_LIMIT_MB, crossed))
    after = wait_for_workers(server, 2, timeout=3.0)
    assert len(after) == 2 and grower not in after, after
    served = wait_until(lambda: served_pid(server) not in (None, grower), 3.0)
    assert served, "no worker serves after the recycling"
