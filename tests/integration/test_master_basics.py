"""The master with -w N: it forks N workers, never serves a request itself, names its processes,
imports the app per worker (or once in the master with --preload, reseeding `random`), and
logs a status line per worker at --log-level debug."""

import collections
import json
import os
import re
import time

import pytest

from master_support import (Load, boot_pids, cmdline, fetch, pid_of, pin_connections, start_master,
                            wait_for_log_match, wait_for_workers, workers)
from wsgi_support import wait_until


def test_master_forks_workers_and_never_serves(launch):
    server = start_master(launch, workers=3)
    master = server.proc.pid
    pids = wait_for_workers(server, 3)
    assert len(pids) == 3, "master %d has children %r, wanted 3 workers" % (master, pids)
    served = set()
    for _ in range(30):
        response, conn, _retried = fetch(server, "/pid")
        if conn is not None:
            conn.close()
        assert response.status == 200, response
        served.add(pid_of(response))
    assert master not in served, "the master (pid %d) served a request itself" % master
    assert served <= pids, "requests served by %r, not all among the master's workers %r" % (served, pids)
    # Without --preload every worker imports the app after the fork; the master never does.
    assert wait_until(lambda: set(boot_pids(server)) >= pids, 3.0), (boot_pids(server), pids)
    assert master not in boot_pids(server), "the master imported the app without --preload"


def test_process_titles_name_master_and_workers(launch):
    server = start_master(launch, workers=2)
    pids = wait_for_workers(server, 2)
    assert len(pids) == 2, pids
    master_title = cmdline(server.proc.pid)
    assert re.search(r"\bmaster\b", master_title), "master's title is %r" % master_title
    for pid in pids:
        title = cmdline(pid)
        # \b: the app's module name (master_apps) must not count as the word "master".
        assert re.search(r"\bworker\b", title) and not re.search(r"\bmaster\b", title), (
            "worker %d's title is %r" % (pid, title))


def test_workers_auto_means_one_per_core(launch):
    server = launch.start(["-w", "auto"])  # static only: cheap workers
    cores = {os.cpu_count(), len(os.sched_getaffinity(0))}
    assert wait_until(lambda: len(workers(server)) in cores, 5.0), (
        "-w auto started %d workers; cores: %r" % (len(workers(server)), cores))
    with server.connect() as conn:
        assert conn.request("GET", "/static/a.txt").body == b"alpha\n"


def test_preload_imports_once_in_master_and_reseeds_random(launch):
    server = start_master(launch, workers=2, args=["--preload"])
    master = server.proc.pid
    pids = wait_for_workers(server, 2)
    assert len(pids) == 2, pids
    assert boot_pids(server) == [master], (
        "with --preload the app must be imported once, in the master (pid %d); imported by %r"
        % (master, boot_pids(server)))
    pinned = pin_connections(server, 2)
    try:
        draws = {}
        for pid, conn in pinned.items():
            response = conn.request("GET", "/random")
            assert response.status == 200, response
            data = json.loads(response.body)
            assert data["pid"] == pid and pid != master
            draws[pid] = data["draws"]
    finally:
        for conn in pinned.values():
            conn.close()
    first, second = draws.values()
    assert first != second, ("two workers forked from a preloaded master drew the same random"
                             " numbers %r: `random` was not reseeded after fork" % first)


@pytest.mark.time_budget(20)
def test_debug_status_lists_each_worker(launch):
    server = start_master(launch, workers=2, args=["--log-level", "debug"])
    pids = wait_for_workers(server, 2)
    assert len(pids) == 2, pids
    pinned = pin_connections(server, 1)
    (busy_pid, conn), = pinned.items()
    with conn:
        for _ in range(5):
            assert conn.request("GET", "/pid").status == 200
    # A line naming the pid and a request count of at least 5 (any reasonable wording).
    pattern = r"^.*\b%d\b.*\brequests?\b\D{0,3}([5-9]|\d\d+)\b.*$|^.*\b%d\b.*\b([5-9]|\d\d+) requests?\b.*$" % (
        busy_pid, busy_pid)
    match, text = wait_for_log_match(server, pattern, timeout=12.0, flags=re.MULTILINE | re.IGNORECASE)
    assert match, "no debug status line shows worker %d with its 5 requests:\n%s" % (busy_pid, text[-3000:])
    assert re.search(r"state|ready|idle|busy|active|draining", match.group(0), re.IGNORECASE), (
        "the status line has no worker state: %r" % match.group(0))
    for pid in pids - {busy_pid}:
        line = re.search(r"^.*\b%d\b.*request.*$" % pid, text, re.MULTILINE | re.IGNORECASE)
        assert line, "no debug status line for worker %d:\n%s" % (pid, text[-3000:])


def test_concurrent_slow_requests_are_spread_over_the_workers(launch):
    # Two single-threaded workers, four clients of 100 ms requests on new connections: a worker
    # whose Python thread is busy must leave new connections to its idle sibling (as gunicorn's
    # sync workers do by not accepting), or -w 2 serves no faster than -w 1.
    server = start_master(launch, workers=2, threads=1)
    pids = wait_for_workers(server, 2)
    assert len(pids) == 2
    load = Load(server, "/sleep?ms=100", keepalive=0, new=4, max_seconds=2.5, pause=0).start()
    time.sleep(2.0)
    load.stop()
    assert not load.failures(), load.summary()
    per_worker = collections.Counter(r[4] for r in load.records)
    total = len(load.records)
    # No throughput bound (machines are shared and noisy): the share each worker took is the
    # behaviour under test.
    assert total >= 8, "only %d requests completed: %r" % (total, per_worker)
    assert all(per_worker[pid] >= total * 0.2 for pid in pids), (
        "one worker took nearly every connection while its sibling idled: %r" % per_worker)


def test_workers_auto_counts_the_cpus_the_master_may_use(launch):
    """-w auto under taskset: one worker per CPU of the affinity mask, not per core online."""
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(allowed)})  # the master inherits the mask at its fork
        server = launch.start(["-w", "auto"])
    finally:
        os.sched_setaffinity(0, allowed)
    assert wait_until(lambda: len(workers(server)) == 1, 5.0), (
        "-w auto on one allowed CPU started %d workers" % len(workers(server)))
    time.sleep(0.3)  # none more follow
    assert len(workers(server)) == 1
    with server.connect() as conn:
        assert conn.request("GET", "/static/a.txt").body == b"alpha\n"


def _cpu_cgroup_dir():
    """A new cgroup with the cpu controller (v2 with cpu enabled, or v1's cpu hierarchy) for
    this test, or None when this machine does not allow one."""
    candidates = []
    try:
        with open("/sys/fs/cgroup/cgroup.controllers") as handle:
            if "cpu" in handle.read().split():
                candidates.append(("/sys/fs/cgroup", "cpu.max"))
    except OSError:
        pass
    for mount in ("/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"):
        if os.path.exists(os.path.join(mount, "cpu.cfs_quota_us")):
            candidates.append((mount, "cpu.cfs_quota_us"))
    with open("/proc/self/cgroup") as handle:
        own = handle.read()
    for mount, control in candidates:
        if control == "cpu.max" and "0::/\n" not in own:
            continue  # v2 below another group: moving between groups needs more care
        path = os.path.join(mount, "portico-test-%d" % os.getpid())
        try:
            os.mkdir(path)
            if control == "cpu.max":
                with open(os.path.join(path, "cpu.max"), "w") as handle:
                    handle.write("100000 100000")
            else:
                with open(os.path.join(path, "cpu.cfs_period_us"), "w") as handle:
                    handle.write("100000")
                with open(os.path.join(path, "cpu.cfs_quota_us"), "w") as handle:
                    handle.write("100000")
            return path, mount
        except OSError:
            try:
                os.rmdir(path)
            except OSError:
                pass
    return None


def test_workers_auto_honours_the_cgroup_cpu_quota(launch):
    """-w auto in a group limited to one CPU's time (a container's --cpus=1): one worker."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU only: a quota of one would change nothing")
    made = _cpu_cgroup_dir()
    if made is None:
        pytest.skip("no cgroup with a cpu controller can be made here")
    path, mount = made
    procs = os.path.join(path, "cgroup.procs")
    parent_procs = os.path.join(mount, "cgroup.procs")
    server = None
    try:
        with open(procs, "w") as handle:
            handle.write(str(os.getpid()))  # the master is forked inside the group
        try:
            server = launch.start(["-w", "auto"])
        finally:
            with open(parent_procs, "w") as handle:
                handle.write(str(os.getpid()))
        assert wait_until(lambda: len(workers(server)) == 1, 5.0), (
            "-w auto under a one-CPU quota started %d workers" % len(workers(server)))
        time.sleep(0.3)
        assert len(workers(server)) == 1
        with server.connect() as conn:
            assert conn.request("GET", "/static/a.txt").body == b"alpha\n"
        server.stop_and_check()
    finally:
        if server is not None and server.proc.poll() is None:
            server.stop()
        for pid in open(procs).read().split() if os.path.exists(procs) else []:
            try:
                with open(parent_procs, "w") as handle:
                    handle.write(pid)
            except OSError:
                pass
        wait_until(lambda: not open(procs).read().split(), 5.0)
        os.rmdir(path)
