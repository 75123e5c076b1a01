"""Signals to the master: TERM/QUIT drain and exit 0, INT stops fast, HUP re-imports the app in
new workers, TTIN/TTOU add and remove a worker, USR1 reopens the log files."""

import os
import signal
import threading
import time

import pytest

from master_support import (log_text, pid_of, pin_connections, port_is_free, send_signal, served_pid,
                            start_master, wait_exit, wait_for_log_match, wait_for_workers, workers)
from wsgi_support import read_text, wait_until


def _request_in_background(server, target, results, key):
    def run():
        started = time.monotonic()
        try:
            with server.connect(timeout=30.0) as conn:
                response = conn.request("GET", target)
                results[key] = (response.status, time.monotonic() - started)
        except Exception as error:  # the test reports what went wrong
            results[key] = (repr(error), time.monotonic() - started)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGQUIT"])
def test_graceful_stop_finishes_in_flight_requests(launch, signame):
    server = start_master(launch, workers=2, threads=2)
    assert len(wait_for_workers(server, 2)) == 2
    port = server.port
    results = {}
    marks = [os.path.join(server.log_dir, "%s-running-%d" % (signame, index)) for index in range(4)]
    threads = [_request_in_background(server, "/sleep?ms=1200&mark=%s" % marks[index], results,
                                      index) for index in range(4)]
    # All four are running in the app (two workers of two threads) before the signal: a
    # connection still in the kernel's accept queue at the stop is refused, as nginx's is.
    assert wait_until(lambda: all(os.path.exists(mark) for mark in marks), 10.0), (
        "the four requests never all ran: %r" % results)
    send_signal(server, getattr(signal, signame))
    code = wait_exit(server, 8.0)
    for thread in threads:
        thread.join(timeout=5.0)
    assert results == {index: (200, results[index][1]) for index in range(4)}, (
        "requests in flight at %s: %r" % (signame, results))
    assert code == 0, "exit code %r after %s; stderr:\n%s" % (code, signame, server.stderr())
    assert wait_until(lambda: port_is_free(port), 2.0), "port still held after the master exited"


def test_graceful_stop_closes_idle_keep_alive_connections_at_once(launch):
    server = start_master(launch, workers=2, args=["--graceful-timeout", "20"], keep_alive=60)
    assert len(wait_for_workers(server, 2)) == 2
    pinned = pin_connections(server, 2)
    try:
        sent = time.monotonic()
        send_signal(server, signal.SIGTERM)
        code = wait_exit(server, 6.0)
        elapsed = time.monotonic() - sent
        assert code is not None, (
            "still running 6 s after SIGTERM: idle keep-alive connections held the workers"
            " (--keep-alive 60, --graceful-timeout 20)")
        assert elapsed < 3.0, "SIGTERM with only idle connections took %.1f s" % elapsed
        assert code == 0, code
        for conn in pinned.values():
            assert conn.is_closed(timeout=1.0), "an idle keep-alive connection was left open"
    finally:
        for conn in pinned.values():
            conn.close()


@pytest.mark.time_budget(20)
def test_graceful_stop_gives_up_after_graceful_timeout(launch):
    server = start_master(launch, workers=2, args=["--graceful-timeout", "1"])
    assert len(wait_for_workers(server, 2)) == 2
    results = {}
    thread = _request_in_background(server, "/sleep?ms=20000", results, "slow")
    time.sleep(0.4)
    sent = time.monotonic()
    send_signal(server, signal.SIGTERM)
    code = wait_exit(server, 8.0)
    elapsed = time.monotonic() - sent
    assert code is not None, "still running 8 s after SIGTERM with --graceful-timeout 1"
    assert elapsed < 5.0, "stopping took %.1f s with --graceful-timeout 1" % elapsed
    assert code == 0, "exit code %r; stderr:\n%s" % (code, server.stderr())
    thread.join(timeout=3.0)
    assert not thread.is_alive(), "the cut-off request's connection was left open"


def test_int_stops_fast(launch):
    server = start_master(launch, workers=2, args=["--graceful-timeout", "30"])
    assert len(wait_for_workers(server, 2)) == 2
    results = {}
    _request_in_background(server, "/sleep?ms=20000", results, "slow")
    time.sleep(0.4)
    sent = time.monotonic()
    send_signal(server, signal.SIGINT)
    code = wait_exit(server, 6.0)
    elapsed = time.monotonic() - sent
    assert code is not None, "still running 6 s after SIGINT"
    assert elapsed < 3.5, "SIGINT took %.1f s: not a fast stop" % elapsed
    assert code == 0, "exit code %r after SIGINT; stderr:\n%s" % (code, server.stderr())


APP_TEMPLATE = '''
import os
VERSION = %r


def application(environ, start_response):
    body = ("%%s %%d" %% (VERSION, os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def _version(server):
    with server.connect() as conn:
        response = conn.request("GET", "/")
    assert response.status == 200, response
    version, pid = response.body.decode().split()
    return version, int(pid)


def test_hup_starts_new_workers_with_the_reimported_app(launch, tmp_path):
    module = tmp_path / "master_reload_mod_3b.py"
    module.write_text(APP_TEMPLATE % "version-one")
    server = start_master(launch, workers=2, app="master_reload_mod_3b:application",
                          args=["--pythonpath", str(tmp_path)])
    old = wait_for_workers(server, 2)
    assert len(old) == 2
    assert _version(server)[0] == "version-one"
    module.write_text(APP_TEMPLATE % "version-two-after-hup")
    future = time.time() + 5  # a different mtime even within the same second
    os.utime(module, (future, future))
    send_signal(server, signal.SIGHUP)
    new = wait_for_workers(server, 2, timeout=6.0, exclude=old)
    assert len(new) == 2 and not (new & old), "after HUP the workers are %r (old %r)" % (new, old)
    for _ in range(10):
        version, pid = _version(server)
        assert version == "version-two-after-hup" and pid in new, (version, pid, new)
    assert server.alive()


def test_ttin_and_ttou_add_and_remove_a_worker(launch):
    server = start_master(launch, workers=2)
    assert len(wait_for_workers(server, 2)) == 2
    for signo, wanted in ((signal.SIGTTIN, 3), (signal.SIGTTOU, 2), (signal.SIGTTOU, 1)):
        send_signal(server, signo)
        now = wait_for_workers(server, wanted, timeout=4.0)
        assert len(now) == wanted, "after %s the master has workers %r, wanted %d" % (
            signal.Signals(signo).name, now, wanted)
    pid = served_pid(server)
    assert pid in workers(server), pid


def test_usr1_reopens_the_access_log(launch):
    log_dir = launch.tmp_path_factory.mktemp("accesslog")
    access_log = str(log_dir / "access.log")
    server = start_master(launch, workers=2, args=["--access-logfile", access_log])
    assert len(wait_for_workers(server, 2)) == 2
    pinned = pin_connections(server, 2)
    try:
        for pid, conn in pinned.items():
            assert conn.request("GET", "/pid?before-%d" % pid).status == 200
        assert wait_until(lambda: read_text(access_log).count("before-") == 2, 3.0), read_text(access_log)
        os.rename(access_log, access_log + ".1")
        send_signal(server, signal.SIGUSR1)
        time.sleep(0.5)
        for pid, conn in pinned.items():
            response = conn.request("GET", "/pid?after-%d" % pid)
            assert response.status == 200 and pid_of(response) == pid, response
    finally:
        for conn in pinned.values():
            conn.close()
    assert wait_until(lambda: read_text(access_log).count("after-") == 2, 3.0), (
        "after USR1 the access log at the original path has %r; the renamed one has %r" % (
            read_text(access_log), read_text(access_log + ".1")))
    assert "after-" not in read_text(access_log + ".1"), read_text(access_log + ".1")


def test_usr1_reopens_the_error_log(launch):
    server = start_master(launch, workers=2)
    old = wait_for_workers(server, 2)
    assert len(old) == 2
    assert wait_until(lambda: os.path.exists(server.error_log), 2.0)
    os.rename(server.error_log, server.error_log + ".1")
    send_signal(server, signal.SIGUSR1)
    time.sleep(0.5)
    victim = min(old)
    os.kill(victim, signal.SIGKILL)  # the master logs the death: a line after the reopen
    assert wait_until(lambda: str(victim) in read_text(server.error_log), 4.0), (
        "after USR1 the master's log lines do not reach a new file at the original path;"
        " renamed file:\n%s" % read_text(server.error_log + ".1")[-2000:])
    match, _text = wait_for_log_match(server, str(victim))
    assert match


@pytest.mark.time_budget(40)
def test_a_stop_of_ready_workers_logs_no_error(launch):
    # The master shuts the listening socket down only for a worker still loading its app; a
    # ready worker that took its TERM at once (and marked itself draining) was once taken for
    # one, and its sibling's last accepts then failed: "accept: Invalid argument" in the log.
    for attempt in range(6):
        server = start_master(launch, workers=2)
        pinned = pin_connections(server, 2)  # both workers serve: neither is loading
        for conn in pinned.values():
            conn.close()
        send_signal(server, signal.SIGTERM)
        code = wait_exit(server, 10.0)
        text = log_text(server)
        assert code == 0, "exit code %r; stderr:\n%s" % (code, text)
        assert "[ERROR]" not in text and "accept:" not in text, (
            "stop %d logged an error:\n%s" % (attempt + 1, text))
