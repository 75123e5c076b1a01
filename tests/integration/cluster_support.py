"""Helpers for test_cluster.py: "hosts" made of network namespaces on one private bridge, processes
started inside them, and threads of this process that enter them (a network namespace is per
thread, so the load generator runs here, not in a helper script)."""

import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
_libc = ctypes.CDLL(None, use_errno=True)


def netns_available():
    """Root with `ip netns`, and a kernel that lets us make namespaces (not some containers)."""
    if os.geteuid() != 0:
        return False, "needs root (network namespaces)"
    name = "pcprobe%d" % os.getpid()
    result = subprocess.run(["ip", "netns", "add", name], capture_output=True)
    if result.returncode != 0:
        return False, "ip netns add failed: %s" % result.stderr.decode(errors="replace").strip()
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return True, ""


def _ip(*args):
    result = subprocess.run(["ip"] + list(args), capture_output=True, timeout=10)
    assert result.returncode == 0, "ip %s: %s" % (" ".join(args),
                                                   result.stderr.decode(errors="replace"))


def _ns_inode(path):
    return os.stat(path).st_ino


class Host:
    """One network namespace with one interface (eth0) on the Network's bridge."""

    def __init__(self, network, name, address):
        self.network = network
        self.name = name
        self.ns = "%s-%s" % (network.tag, name)
        self.address = address
        self.link = "v%s" % name  # its end on the bridge, in the switch namespace
        self.procs = []

    def create(self):
        _ip("netns", "add", self.ns)
        sw = self.network.switch
        _ip("-n", sw, "link", "add", self.link, "type", "veth", "peer", "name", "eth0",
            "netns", self.ns)
        _ip("-n", sw, "link", "set", self.link, "master", "br0", "up")
        _ip("-n", self.ns, "addr", "add", "%s/24" % self.address, "dev", "eth0")
        _ip("-n", self.ns, "link", "set", "eth0", "up")
        _ip("-n", self.ns, "link", "set", "lo", "up")

    def prefix(self):
        """A command prefix that runs the rest in this host's network namespace."""
        return ["nsenter", "--net=%s" % (NETNS_DIR / self.ns), "--"]

    def popen(self, args, **kwargs):
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(self.prefix() + list(args), **kwargs)
        self.procs.append(proc)
        return proc

    def run(self, args, timeout=30, **kwargs):
        return subprocess.run(self.prefix() + list(args), capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, **kwargs)

    def call(self, fn, *args):
        """Runs fn(*args) in a new thread inside this namespace and returns its result."""
        box = {}

        def body():
            try:
                enter(self)
                box["value"] = fn(*args)
            except BaseException as error:  # re-raised in the caller
                box["error"] = error
        thread = threading.Thread(target=body)
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def can_connect(self, address, port, timeout=0.5):
        def probe():
            with socket.socket() as sock:
                sock.settimeout(timeout)
                try:
                    sock.connect((address, port))
                    return True
                except OSError:
                    return False
        return self.call(probe)

    def wait_listening(self, address, port, timeout=20.0, proc=None, what="server"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise AssertionError("%s on %s exited with %r" % (what, self.name, proc.returncode))
            if self.can_connect(address, port):
                return
            time.sleep(0.1)
        raise AssertionError("%s on %s did not listen on %s:%d within %.0f s" % (
            what, self.name, address, port, timeout))

    def pids(self):
        """Every process whose network namespace is this host's."""
        try:
            inode = _ns_inode(NETNS_DIR / self.ns)
        except OSError:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if _ns_inode(entry / "ns" / "net") == inode:
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    def kill_all(self):
        """A host's power cut: every process in it dies at once."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 10
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.05)

    def unplug(self):
        """Its cable pulled: packets to it go nowhere (connects time out, nothing is refused)."""
        _ip("-n", self.network.switch, "link", "set", self.link, "down")

    def destroy(self):
        self.kill_all()
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


def enter(host):
    """Moves the calling thread into the host's network namespace, for good."""
    fd = os.open(str(NETNS_DIR / host.ns), os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, "setns(%s): %s" % (host.ns, os.strerror(error)))
    finally:
        os.close(fd)


class Network:
    """A /24 on a bridge in a namespace of its own; hosts are added with add(). Names carry this
    process's pid so that concurrent runs do not meet."""

    def __init__(self, subnet="10.213.7"):
        self.tag = "pc%d" % os.getpid()
        self.subnet = subnet
        self.switch = "%s-sw" % self.tag
        self.hosts = {}

    def create(self):
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        return self

    def add(self, name, last_octet):
        host = Host(self, name, "%s.%d" % (self.subnet, last_octet))
        self.hosts[name] = host
        host.create()
        return host

    def destroy(self):
        for host in self.hosts.values():
            host.destroy()
        subprocess.run(["ip", "netns", "del", self.switch], capture_output=True)
