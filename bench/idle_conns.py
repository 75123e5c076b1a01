"""Opens N keep-alive connections to HOST:PORT, sends one GET on each and reads its answer, prints
"open N" and keeps them idle until a line arrives on stdin; used for the 10k idle-connection test
(wrk cannot hold connections idle)."""

import resource
import selectors
import socket
import sys
import time


def main():
    host, port, count, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    answered = []
    deadline = time.monotonic() + 120
    batch = 256
    opened = 0
    while opened < count and time.monotonic() < deadline:
        pending = {}
        for _ in range(min(batch, count - opened)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex((host, port))
            pending[s] = b""
            sel.register(s, selectors.EVENT_WRITE)
            opened += 1
        sent = set()
        while pending and time.monotonic() < deadline:
            for key, events in sel.select(timeout=5):
                s = key.fileobj
                if s not in sent:
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                        sel.unregister(s); s.close(); del pending[s]; continue
                    s.send(request)
                    sent.add(s)
                    sel.modify(s, selectors.EVENT_READ)
                    continue
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                if not data:
                    sel.unregister(s); s.close(); del pending[s]; continue
                pending[s] += data
                if b"\r\n\r\n" in pending[s]:
                    sel.unregister(s)
                    answered.append(s)
                    del pending[s]
        for s in pending:
            sel.unregister(s); s.close()
    print(f"open {len(answered)}", flush=True)
    sys.stdin.readline()
    for s in answered:
        s.close()


if __name__ == "__main__":
    main()
