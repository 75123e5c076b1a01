#!/usr/bin/python3
"""CPU time per request of the server and of wrk, at several connection counts: tells whether a
lower req/s at 1,000 connections comes from the server (its CPU per request grows) or from the
load generator (wrk's CPU per request grows while the server's does not). CPU time per request is
far less sensitive to a busy machine than req/s. Server pinned to core 0, wrk to core 1 as in
bench/run.py.

    /usr/bin/python3 bench/cpu_per_request.py [--kinds portico,nginx-return] [--conns 64,1000]
                                              [--duration 5] [--rounds 2]
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as harness  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpuSeconds(pids):
    """user and system seconds of the given processes (from /proc)."""
    user = system = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user += int(fields[11]) / TICK
            system += int(fields[12]) / TICK
        except OSError:
            pass
    return user, system


EVENTS = ["raw_syscalls:sys_enter", "context-switches", "syscalls:sys_enter_futex",
          "syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_write", "syscalls:sys_enter_read",
          "syscalls:sys_enter_recvfrom", "syscalls:sys_enter_sendmsg", "syscalls:sys_enter_writev",
          "syscalls:sys_enter_sendfile64"]
SHORT = {"raw_syscalls:sys_enter": "syscalls", "context-switches": "cs"}


def wrkRun(url, conns, duration, pids):
    """wrk plus `perf stat` on the server's processes (syscalls, context switches) when possible."""
    perf = None
    if harness.shutil.which("perf"):
        perf = subprocess.Popen(["perf", "stat", "-x,", "-e", ",".join(EVENTS), "-p",
                                 ",".join(str(p) for p in pids)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = harness.wrk(url, conns, duration)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res["wrk_cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    res["counts"] = {}
    if perf:
        perf.send_signal(harness.signal.SIGINT)
        _, err = perf.communicate(timeout=30)
        for line in err.splitlines():
            f = line.split(",")
            if len(f) > 2 and f[0].strip().isdigit():
                name = f[2]
                res["counts"][SHORT.get(name, name.replace("syscalls:sys_enter_", ""))] = int(f[0])
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", default="portico,nginx-return")
    ap.add_argument("--app", default="hello")
    ap.add_argument("--conns", default="64,1000")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--bin", help="portico binary (default: build/portico)")
    args = ap.parse_args()
    if args.bin:
        harness.PORTICO = os.path.abspath(args.bin)
    if not harness.shutil.which("perf"):
        print("perf not found (apt-get install linux-perf): no syscall or context-switch counts")
    harness.raiseNofile()
    os.sched_setaffinity(0, {int(harness.CLIENT_CORE)})
    ctx = harness.Context(tempfile.mkdtemp(prefix="portico-cpu-"))
    conns = [int(c) for c in args.conns.split(",")]
    print(f"{'server':14} {'conns':>5} {'req/s':>9} {'server µs/req (user+sys)':>26} {'wrk µs/req':>11} "
          f"{'busy: server, wrk':>18}   per request (perf stat; perf itself adds a little)")
    for kind in args.kinds.split(","):
        server = harness.makeServer(ctx, kind, args.app)
        server.start()
        try:
            url = server.url
            harness.wrk(url, 64, 2)  # warm-up
            for _ in range(args.rounds):
                for c in conns:
                    pids = [p for p in harness.processTree(server.roots())]
                    u0, s0 = cpuSeconds(pids)
                    res = wrkRun(url, c, args.duration, pids)
                    u1, s1 = cpuSeconds(pids)
                    n = (res["rps"] or 0) * args.duration
                    if not n:
                        print(f"{kind:14} {c:>5} failed: {res.get('stderr', '')}")
                        continue
                    print(f"{kind:14} {c:>5} {res['rps']:>9,.0f} "
                          f"{(u1 - u0 + s1 - s0) / n * 1e6:>10.1f} ({(u1 - u0) / n * 1e6:.1f}+{(s1 - s0) / n * 1e6:.1f})"
                          f"{'':>7} {res['wrk_cpu'] / n * 1e6:>11.1f} "
                          f"{(u1 - u0 + s1 - s0) / args.duration:>10.0%}, {res['wrk_cpu'] / args.duration:>4.0%}   "
                          + " ".join(f"{k} {v / n:.2f}" for k, v in res["counts"].items() if v), flush=True)
                    time.sleep(0.5)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
