"""A scripted DNS name server for the resolver tests (UDP and TCP on one port of 127.0.0.1)."""

import socket
import struct
import threading

A, CNAME, AAAA = 1, 5, 28


def _name(labels):
    return b"".join(bytes([len(p)]) + p for p in labels) + b"\0"


class NameServer:
    """A scripted DNS server on 127.0.0.1 (UDP and TCP on one port), logging every query as
    (name, type, "udp"|"tcp"). Test thread owns it; its two threads answer."""

    ZONE = {
        "a.test": [(A, 3600, "127.0.0.1")],
        "alias.test": [(CNAME, 3600, "a.test")],
        "chain.test": [(CNAME, 3600, "alias.test")],
        "loop.test": [(CNAME, 3600, "loop.test")],
        "multi.test": [(A, 3600, "127.0.0.2"), (A, 3600, "127.0.0.1")],
        "short1.test": [(A, 1, "127.0.0.1")],
        "short2.test": [(A, 1, "127.0.0.1")],
        "trunc.test": [(A, 3600, "127.0.0.1")],
    }

    def __init__(self):
        for _ in range(20):
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind(("127.0.0.1", 0))
            self.port = self.udp.getsockname()[1]
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                self.tcp.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
        self.tcp.listen(16)
        self.log = []
        self.lock = threading.Lock()
        self.stopped = False
        for target in (self._serve_udp, self._serve_tcp):
            threading.Thread(target=target, daemon=True).start()

    def close(self):
        self.stopped = True
        self.udp.close()
        self.tcp.close()

    def queries(self):
        with self.lock:
            entries = list(self.log)
            self.log.clear()
        counts = {}
        for entry in entries:
            counts[entry] = counts.get(entry, 0) + 1
        return counts

    def answer(self, query, tcp):
        ident, _flags = struct.unpack("!HH", query[:4])
        at, labels = 12, []
        while query[at]:
            labels.append(query[at + 1:at + 1 + query[at]])
            at += 1 + query[at]
        qtype, qclass = struct.unpack("!HH", query[at + 1:at + 5])
        question = query[12:at + 5]
        name = b".".join(labels).decode("latin-1").lower()
        with self.lock:
            self.log.append((name, qtype, "tcp" if tcp else "udp"))
        flags, records = 0x8180, []
        if name == "nx.test":
            flags |= 3
        elif name == "fail.test":
            flags |= 2
        elif name == "silent.test":
            return None
        else:
            if name == "trunc.test" and not tcp:
                flags |= 0x0200
            for rtype, ttl, value in self.ZONE.get(name, []):
                if rtype == CNAME:
                    rdata = _name([p.encode() for p in value.split(".")])
                elif rtype == qtype == A:
                    rdata = socket.inet_aton("127.0.0.3" if flags & 0x0200 else value)
                else:
                    continue
                records.append(struct.pack("!HHHIH", 0xc00c, rtype, 1, ttl, len(rdata)) + rdata)
        return (struct.pack("!HHHHHH", ident, flags, 1, len(records), 0, 0) + question +
                b"".join(records))

    def _serve_udp(self):
        while not self.stopped:
            try:
                data, peer = self.udp.recvfrom(65536)
            except OSError:
                return
            reply = self.answer(data, False)
            if reply is not None:
                self.udp.sendto(reply, peer)

    def _serve_tcp(self):
        while not self.stopped:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            with conn:
                data = b""
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                    while len(data) >= 2 and len(data) >= 2 + struct.unpack("!H", data[:2])[0]:
                        length = struct.unpack("!H", data[:2])[0]
                        reply = self.answer(data[2:2 + length], True)
                        data = data[2 + length:]
                        if reply is not None:
                            conn.sendall(struct.pack("!H", len(reply)) + reply)
