"""systemd's Type=notify protocol, with the test as systemd: NOTIFY_SOCKET names a datagram socket
the test reads. READY=1 comes once every worker has imported the app (not when the master
starts), RELOADING=1 at HUP and READY=1 again when the new workers are up, STOPPING=1 at TERM.
Without NOTIFY_SOCKET nothing is sent (and nothing is logged about it)."""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from master_support import boot_pids, log_text, send_signal, start_master, wait_exit, wait_for_workers
from servers import free_port, portico_binary

SLOW_APP = '''
import os
import time

time.sleep(float(os.environ.get("SLOW_BOOT_SECONDS", "0")))
BOOTED = time.time()
with open(os.environ["PORTICO_TEST_BOOT_LOG"], "a") as log:
    log.write("%d\\n" % os.getpid())


def application(environ, start_response):
    body = ("%d %f" % (os.getpid(), BOOTED)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


class FakeSystemd:
    """The notify socket: each datagram is one message of KEY=VALUE lines."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []

    def next(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
        self.messages.append((time.time(), fields))
        return fields

    def close(self):
        self.sock.close()


def _start(launch, tmp_path, notify_path, workers=2, boot_seconds="0.8"):
    module = tmp_path / "systemd_slow_boot_7c.py"
    module.write_text(SLOW_APP)
    env = {"NOTIFY_SOCKET": notify_path, "SLOW_BOOT_SECONDS": boot_seconds}
    return start_master(launch, workers=workers, app="systemd_slow_boot_7c:application",
                        args=["--pythonpath", str(tmp_path)], env_extra=env)


def test_ready_reloading_and_stopping_reach_systemd(launch, tmp_path):
    systemd = FakeSystemd(str(tmp_path / "notify.sock"))
    try:
        server = _start(launch, tmp_path, systemd.path)
        ready = systemd.next(15.0)
        assert ready is not None, "no message from the master; log:\n%s" % log_text(server)
        assert ready.get("READY") == "1", ready
        assert ready.get("STATUS") == "2 workers ready", ready
        # Both workers had imported the app (each slept 0.8 s in it) before READY=1 was sent.
        pids = wait_for_workers(server, 2)
        assert len(pids) == 2 and set(boot_pids(server)) >= pids, (boot_pids(server), pids)
        assert systemd.next(0.5) is None, "a second message without a cause"

        send_signal(server, signal.SIGHUP)
        reloading = systemd.next(5.0)
        assert reloading is not None and reloading.get("RELOADING") == "1", reloading
        assert int(reloading["MONOTONIC_USEC"]) > 0
        sent = time.time()
        again = systemd.next(15.0)
        assert again is not None and again.get("READY") == "1", again
        # Not before the new generation had imported the app (0.8 s of sleep in each).
        assert time.time() - sent >= 0.7, "READY=1 %.2f s after RELOADING=1" % (time.time() - sent)
        new = wait_for_workers(server, 2, timeout=6.0, exclude=pids)
        assert len(new) == 2 and not (new & pids), (new, pids)
        assert set(boot_pids(server)) >= new

        send_signal(server, signal.SIGTERM)
        stopping = systemd.next(5.0)
        assert stopping is not None and stopping.get("STOPPING") == "1", stopping
        assert wait_exit(server, 10.0) == 0
        assert systemd.next(0.3) is None
    finally:
        systemd.close()


def test_a_reload_that_fails_is_ready_again_with_the_running_workers(tmp_path):
    systemd = FakeSystemd(str(tmp_path / "notify.sock"))
    conf = tmp_path / "site.conf"
    conf.write_text("daemon off;\nevents {}\nhttp { access_log off; server { listen 127.0.0.1:%d; "
                    "location / { return 200 ok; } } }\n" % free_port())
    env = dict(os.environ)
    env["NOTIFY_SOCKET"] = systemd.path
    stderr = tmp_path / "stderr.log"
    with open(stderr, "wb") as err:
        proc = subprocess.Popen([portico_binary(), "-c", str(conf)], env=env, cwd=str(tmp_path),
                                stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
    try:
        ready = systemd.next(10.0)
        assert ready is not None and ready.get("READY") == "1", (ready, stderr.read_text())
        conf.write_text("daemon off;\nevents {}\nhttp { server { listen nonsense:x; } }\n")
        proc.send_signal(signal.SIGHUP)
        reloading = systemd.next(5.0)
        assert reloading is not None and reloading.get("RELOADING") == "1", reloading
        again = systemd.next(5.0)
        assert again is not None and again.get("READY") == "1", again
        assert "reload failed" in stderr.read_text(), stderr.read_text()
        proc.send_signal(signal.SIGTERM)
        stopping = systemd.next(5.0)
        assert stopping is not None and stopping.get("STOPPING") == "1", stopping
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        systemd.close()


def test_the_repository_unit_files_are_valid(tmp_path):
    """packaging/systemd/portico.service and portico.socket as systemd reads them: no warning,
    no error (the service's ExecStart pointed at the binary under test, which must exist)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    here = os.path.dirname(os.path.abspath(__file__))
    source = os.path.join(here, "..", "..", "packaging", "systemd", "portico.service")
    with open(source) as handle:
        text = handle.read()
    assert "Type=notify" in text and "ExecReload=/bin/kill -HUP $MAINPID" in text
    unit = tmp_path / "portico.service"
    unit.write_text(text.replace("/usr/local/bin/portico", portico_binary()))
    with open(source.replace(".service", ".socket")) as handle:
        socket_text = handle.read()
    assert "ListenStream=" in socket_text
    (tmp_path / "portico.socket").write_text(socket_text)
    result = subprocess.run([analyze, "verify", str(unit), str(tmp_path / "portico.socket")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.returncode, result.stdout, result.stderr)
