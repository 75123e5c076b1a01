"""`portico -s stop|quit|reload|reopen --pid FILE` (nginx's -s) and the --pid file itself."""

import os
import subprocess
import threading
import time

import pytest

from master_support import (pid_of, pin_connections, start_master, wait_exit, wait_for_workers)
from servers import portico_binary
from wsgi_support import wait_until


def _signal_command(*args):
    """Runs `portico -s ...`; returns (exit code, stderr + stdout)."""
    try:
        done = subprocess.run([portico_binary()] + list(args), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("`portico %s` did not return within 5 s" % " ".join(args))
    return done.returncode, (done.stderr + done.stdout).decode("utf-8", "replace")


def _start_with_pid_file(launch, args=()):
    pid_dir = launch.tmp_path_factory.mktemp("pidfile")
    pid_file = str(pid_dir / "portico.pid")
    server = start_master(launch, workers=2, args=["--pid", pid_file] + list(args))
    assert len(wait_for_workers(server, 2)) == 2
    return server, pid_file


def _read_pid(path):
    with open(path) as handle:
        return int(handle.read().strip())


def test_pid_file_holds_the_master_pid(launch):
    server, pid_file = _start_with_pid_file(launch)
    assert wait_until(lambda: os.path.exists(pid_file), 2.0)
    assert _read_pid(pid_file) == server.proc.pid


@pytest.mark.parametrize("command", ["stop", "quit"])
def test_stop_and_quit_stop_the_master_gracefully(launch, command):
    server, pid_file = _start_with_pid_file(launch)
    result = {}

    def slow():
        with server.connect(timeout=10.0) as conn:
            result["status"] = conn.request("GET", "/sleep?ms=800").status

    thread = threading.Thread(target=slow, daemon=True)
    thread.start()
    time.sleep(0.3)
    code, output = _signal_command("-s", command, "--pid", pid_file)
    assert code == 0, "`portico -s %s` exited %r: %s" % (command, code, output)
    exit_code = wait_exit(server, 6.0)
    thread.join(timeout=3.0)
    assert exit_code == 0, "the master exited %r after -s %s" % (exit_code, command)
    assert result.get("status") == 200, "the in-flight request got %r" % result


def test_reload_replaces_the_workers(launch):
    server, pid_file = _start_with_pid_file(launch)
    old = wait_for_workers(server, 2)
    code, output = _signal_command("-s", "reload", "--pid", pid_file)
    assert code == 0, output
    new = wait_for_workers(server, 2, timeout=6.0, exclude=old)
    assert len(new) == 2 and not (new & old), (old, new)
    assert server.alive()


def test_reopen_reopens_the_access_log(launch):
    log_dir = launch.tmp_path_factory.mktemp("accesslog")
    access_log = str(log_dir / "access.log")
    server, pid_file = _start_with_pid_file(launch, ["--access-logfile", access_log])
    pinned = pin_connections(server, 2)
    try:
        assert wait_until(lambda: os.path.exists(access_log), 3.0)
        os.rename(access_log, access_log + ".1")
        code, output = _signal_command("-s", "reopen", "--pid", pid_file)
        assert code == 0, output
        time.sleep(0.5)
        for pid, conn in pinned.items():
            response = conn.request("GET", "/pid?reopened-%d" % pid)
            assert response.status == 200 and pid_of(response) == pid
    finally:
        for conn in pinned.values():
            conn.close()

    def new_lines():
        try:
            with open(access_log) as handle:
                return handle.read().count("reopened-")
        except OSError:
            return 0

    assert wait_until(lambda: new_lines() == 2, 3.0), "after -s reopen the access log has %d new lines" % new_lines()


def test_missing_pid_file_is_a_clear_error(tmp_path):
    missing = str(tmp_path / "nowhere.pid")
    code, output = _signal_command("-s", "stop", "--pid", missing)
    assert code != 0
    assert "nowhere.pid" in output or "pid" in output.lower(), output


def test_stale_pid_file_is_a_clear_error(tmp_path):
    # A pid that surely belongs to no process: beyond pid_max.
    with open("/proc/sys/kernel/pid_max") as handle:
        stale = int(handle.read()) + 1000
    pid_file = tmp_path / "stale.pid"
    pid_file.write_text("%d\n" % stale)
    code, output = _signal_command("-s", "reload", "--pid", str(pid_file))
    assert code != 0, "signalling a pid that does not exist succeeded"
    assert output.strip(), "no message for a stale pid file"


def test_garbage_pid_file_is_a_clear_error(tmp_path):
    pid_file = tmp_path / "garbage.pid"
    pid_file.write_text("not-a-pid\n")
    code, output = _signal_command("-s", "stop", "--pid", str(pid_file))
    assert code != 0
    assert output.strip()


def test_unknown_signal_command_is_rejected(tmp_path):
    bystander = subprocess.Popen(["sleep", "10"])  # a live pid, in case it is signalled anyway
    try:
        pid_file = tmp_path / "x.pid"
        pid_file.write_text("%d\n" % bystander.pid)
        code, output = _signal_command("-s", "explode", "--pid", str(pid_file))
        assert bystander.poll() is None, "an unknown -s command signalled the pid"
    finally:
        bystander.kill()
        bystander.wait()
    assert code != 0
    assert "explode" in output, output
