"""The issue's fault tests under continuous load: SIGKILL of a worker fails only its in-flight
requests, HUP fails none, TERM completes every request that was accepted; and the workers of a
master killed with SIGKILL stop."""

import os
import signal
import time

import pytest

from master_support import (Load, log_text, process_state, send_signal, start_master, wait_exit,
                            wait_for_workers, wait_served_by)


@pytest.mark.time_budget(20)
def test_sigkill_of_a_worker_under_load_fails_only_its_in_flight_requests(launch):
    server = start_master(launch, workers=2, threads=2)
    before = wait_for_workers(server, 2)
    assert len(before) == 2
    load = Load(server, "/sleep?ms=5", keepalive=3, new=3, max_seconds=8.0).start()
    try:
        time.sleep(0.8)
        victim = min(before)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        after = wait_for_workers(server, 2, timeout=1.0, exclude={victim})
        spawned = time.monotonic() - killed_at
        new = (after - before).pop() if len(after - before) == 1 else None
        serving = None
        if new is not None and wait_served_by(server, new, 2.0) is not None:
            serving = time.monotonic() - killed_at
        time.sleep(0.5)
    finally:
        load.stop()
    assert len(after) == 2 and victim not in after, (
        "1 s after SIGKILL of worker %d the workers are %r" % (victim, after))
    late = [r for r in load.failures() if r[0] >= killed_at + 0.02]
    assert not late, "requests started after the kill failed: %s" % load.summary()
    assert len(load.failures()) <= len(load.threads), load.summary()
    assert serving is not None and serving < 1.5, (
        "the replacement worker %d (spawned %.2f s after the kill) first served after %r s" % (
            new, spawned, serving))


@pytest.mark.time_budget(20)
def test_hup_under_load_fails_no_request(launch):
    server = start_master(launch, workers=2, args=["--graceful-timeout", "5"])
    before = wait_for_workers(server, 2)
    assert len(before) == 2
    load = Load(server, "/pid", keepalive=3, new=3, max_seconds=8.0).start()
    try:
        for _ in range(3):
            time.sleep(0.9)
            send_signal(server, signal.SIGHUP)
        time.sleep(0.9)
    finally:
        load.stop()
    assert server.alive(), server.stderr()
    assert not load.failures(), "requests failed while the master reloaded: %s" % load.summary()
    assert len(load.records) > 100, load.summary()
    after = wait_for_workers(server, 2, timeout=5.0)
    assert len(after) == 2 and not (after & before), (
        "after three HUPs the workers are %r (initially %r)" % (after, before))
    generations = {r[4] for r in load.records}
    assert len(generations) >= 4, "only %d distinct workers served during 3 reloads" % len(generations)


@pytest.mark.time_budget(20)
def test_term_under_load_completes_every_accepted_request(launch):
    server = start_master(launch, workers=2, threads=2)
    assert len(wait_for_workers(server, 2)) == 2
    load = Load(server, "/sleep?ms=250", keepalive=2, new=4, max_seconds=8.0).start()
    try:
        time.sleep(0.8)
        term_at = time.monotonic()
        send_signal(server, signal.SIGTERM)
        code = wait_exit(server, 8.0)
    finally:
        load.stop()
    early = [r for r in load.records if r[0] < term_at - 0.05]
    assert early, load.summary()
    lost = [r for r in early if not r[2]]
    assert not lost, "requests sent before SIGTERM did not complete: %r (%s)" % (lost[:5], load.summary())
    assert code == 0, "exit code %r after SIGTERM under load; stderr:\n%s" % (code, server.stderr())


@pytest.mark.time_budget(20)
def test_workers_stop_when_the_master_is_killed(launch):
    """SIGKILL of the master (an OOM kill, a `kill -9` by hand): its workers, re-parented, see
    it and stop (gunicorn's "Parent changed, shutting down") instead of serving on unmanaged."""
    server = start_master(launch, workers=2)
    pids = wait_for_workers(server, 2)
    assert len(pids) == 2
    os.kill(server.proc.pid, signal.SIGKILL)
    server.returncode = server.proc.wait(timeout=5)
    deadline = time.monotonic() + 8.0
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if (process_state(pid) or (0, "Z"))[1] != "Z"}
        time.sleep(0.05)
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, "workers %r still run 8 s after their master was killed" % alive
    assert "Parent changed, shutting down" in log_text(server), log_text(server)[-2000:]
