"""Workers that die: each death is logged with its cause and the worker replaced at once; a
crash loop backs off instead of spinning; a worker that cannot load the app stops the master."""

import os
import signal
import subprocess
import threading
import time

import pytest

from http_client import ProtocolError
from master_support import (boot_pids, cpu_seconds, pid_of, pin_connections, port_is_free,
                            start_master, wait_served_by, wait_for_log_match, wait_for_workers)
from servers import free_port, portico_binary
from wsgi_support import APPS_DIR, wait_until

SIGNAL_WORDS = {
    "SIGKILL": r"(SIGKILL|signal 9\b|killed)",
    "SIGSEGV": r"(SIGSEGV|signal 11\b|segmentation)",
}


def _crash_answer(conn, target):
    """Sends a request that kills the worker; returns the status or None for a closed connection."""
    conn.send("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % target)
    try:
        return conn.read_response().status
    except (ProtocolError, OSError):
        return None


def test_sigkilled_worker_is_logged_and_replaced_within_a_second(launch):
    server = start_master(launch, workers=2)
    pids = wait_for_workers(server, 2)
    assert len(pids) == 2, pids
    victim = min(pids)
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    after = wait_for_workers(server, 2, timeout=1.0, exclude={victim})
    spawned = time.monotonic() - killed_at
    assert len(after) == 2 and victim not in after, (
        "1 s after SIGKILL of worker %d the master's workers are %r" % (victim, after))
    new = (after - pids).pop()
    took = wait_served_by(server, new, 3.0)
    serving = time.monotonic() - killed_at
    assert took is not None, "the replacement worker %d served nothing within 3 s" % new
    assert serving < 1.5, "the replacement worker %d first served %.2f s after the kill (spawned after %.2f s)" % (
        new, serving, spawned)
    match, text = wait_for_log_match(server, r"\b%d\b.*%s" % (victim, SIGNAL_WORDS["SIGKILL"]))
    assert match, "the error log does not say worker %d was killed by SIGKILL:\n%s" % (victim, text[-3000:])


@pytest.mark.parametrize("route, cause", [
    ("/segv-signal", "SIGSEGV"),
    ("/segv-null", "SIGSEGV"),
    ("/sigkill", "SIGKILL"),
])
def test_app_crash_kills_only_its_worker(launch, route, cause):
    server = start_master(launch, workers=2)
    assert len(wait_for_workers(server, 2)) == 2
    pinned = pin_connections(server, 2)
    (victim, doomed), (survivor, healthy) = pinned.items()
    try:
        status = _crash_answer(doomed, route)
        assert status is None or status >= 500, "a crashed worker's client got status %r" % status
        # The other worker's connection is untouched.
        for _ in range(3):
            response = healthy.request("GET", "/pid")
            assert response.status == 200 and pid_of(response) == survivor, response
    finally:
        doomed.close()
        healthy.close()
    after = wait_for_workers(server, 2, timeout=2.0, exclude={victim})
    assert len(after) == 2 and victim not in after and survivor in after, (victim, survivor, after)
    words = SIGNAL_WORDS[cause]
    if cause == "SIGSEGV" and os.environ.get("PORTICO_SANITIZED"):
        # Under AddressSanitizer the segfault is caught and reported by ASan, which then aborts
        # (abort_on_error=1): the worker dies of SIGABRT, after ASan's own report.
        words = "(?:%s|SIGABRT)" % words
    match, text = wait_for_log_match(server, r"\b%d\b.*%s" % (victim, words))
    assert match, "the error log does not name %s as worker %d's cause of death:\n%s" % (
        cause, victim, text[-3000:])


def test_worker_exit_code_is_logged(launch):
    server = start_master(launch, workers=2)
    assert len(wait_for_workers(server, 2)) == 2
    pinned = pin_connections(server, 1)
    (victim, conn), = pinned.items()
    with conn:
        status = _crash_answer(conn, "/exit?code=7")
    assert status is None or status >= 500, status
    match, text = wait_for_log_match(server, r"\b%d\b.*exit.*\b7\b" % victim)
    assert match, "the error log does not say worker %d exited with code 7:\n%s" % (victim, text[-3000:])
    after = wait_for_workers(server, 2, timeout=2.0, exclude={victim})
    assert len(after) == 2 and victim not in after, after


@pytest.mark.time_budget(20)
def test_crash_loop_backs_off(launch):
    server = start_master(launch, workers=2)
    assert len(wait_for_workers(server, 2)) == 2
    master = server.proc.pid
    booted_before = len(boot_pids(server))
    cpu_before = cpu_seconds(master)
    started = time.monotonic()
    hammer_for = 3.0
    stop = threading.Event()
    sent = [0]

    def hammer():
        while not stop.is_set():
            try:
                with server.connect(timeout=0.5) as conn:
                    conn.send("GET /sigkill HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    conn.read_to_close()
            except OSError:
                pass
            sent[0] += 1

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(hammer_for)
    stop.set()
    for thread in threads:
        thread.join(timeout=2.0)
    elapsed = time.monotonic() - started
    spawned = len(boot_pids(server)) - booted_before
    cpu = cpu_seconds(master) - cpu_before
    assert server.alive(), "the master died during the crash loop:\n%s" % server.stderr()
    assert spawned >= 2, "the hammered app never killed a worker (%d requests sent)" % sent[0]
    assert spawned < 50, "%d workers spawned in %.1f s of crash loop: no back-off" % (spawned, elapsed)
    assert cpu < 0.5 * elapsed, "the master used %.2f s of CPU in %.1f s of crash loop" % (cpu, elapsed)
    match, text = wait_for_log_match(server, r"back.?off|backing off|next spawn|delay|throttl|too (fast|quickly)|crash.?loop",
                                     timeout=1.0)
    assert match, "the error log shows no back-off during the crash loop:\n%s" % text[-3000:]


@pytest.mark.parametrize("preload", [False, True], ids=["per-worker-import", "preload"])
def test_worker_that_cannot_load_the_app_stops_the_master(tmp_path, preload):
    port = free_port()
    error_log = tmp_path / "error.log"
    command = [portico_binary(), "--bind", "127.0.0.1:%d" % port, "-w", "2",
               "--error-logfile", str(error_log), "--pythonpath", APPS_DIR]
    command += ["--preload"] if preload else []
    command.append("broken_import")
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=str(tmp_path), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("the master kept running 10 s with an app no worker can import")
    output = done.stderr.decode("utf-8", "replace") + "\n" + (
        error_log.read_text("utf-8", "replace") if error_log.exists() else "")
    assert done.returncode != 0, "exit code 0 although no worker could boot:\n%s" % output
    assert "marker-broken-import-0d4e" in output, output
    # No orphaned worker may keep the port.
    assert wait_until(lambda: port_is_free(port), 3.0), (
        "port %d is still listened on %.1f s after the master exited" % (port, time.monotonic() - started))
