"""portico as PID 1 (a container's init): run in a new pid namespace (unshare), the master
serves, reaps the orphans the kernel reparents to it (a grandchild an app left behind), and stops
gracefully on TERM — PID 1 gets no default signal actions, so only handled signals work."""

import os
import signal
import subprocess
import urllib.request

import pytest

from servers import free_port, portico_binary
from wsgi_support import APPS_DIR, wait_until


def _state(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            data = handle.read()
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    return int(rest[1]), rest[0]


def _children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _state(int(entry))
            if info and info[0] == pid:
                out.append((int(entry), info[1]))
    return out


def test_portico_as_pid_1(tmp_path):
    port = free_port()
    log = open(tmp_path / "stderr.log", "wb")
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", portico_binary(), "-w", "2",
         "--bind", "127.0.0.1:%d" % port, "--pythonpath", APPS_DIR, "master_apps:application"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        # unshare's child is the master (PID 1 inside): its host pid is unshare's only child.
        wait_until(lambda: len(_children(proc.pid)) == 1 or proc.poll() is not None, 5.0)
        if proc.poll() is not None:
            pytest.skip("cannot make a pid namespace here: " + open(tmp_path / "stderr.log").read())
        master = _children(proc.pid)[0][0]

        def serves():
            try:
                return urllib.request.urlopen("http://127.0.0.1:%d/pid" % port, timeout=2).status == 200
            except OSError:
                return False
        wait_until(serves, 10.0)
        # The worker's pid as the app sees it is a small namespace pid (the master is 1).
        inner = int(urllib.request.urlopen("http://127.0.0.1:%d/pid" % port, timeout=2).read())
        assert 1 < inner < 50
        workers = {pid for pid, state in _children(master)}
        for _ in range(3):
            body = urllib.request.urlopen("http://127.0.0.1:%d/orphan" % port, timeout=5).read()
            assert body == b"orphaned"
        # The grandchildren were reparented to the master and reaped: after their 0.2 s, the
        # master's children are its workers again, none a zombie.
        def reaped():
            kids = _children(master)
            return {pid for pid, _ in kids} == workers and all(s != "Z" for _, s in kids)
        wait_until(reaped, 5.0)
        os.kill(master, signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
