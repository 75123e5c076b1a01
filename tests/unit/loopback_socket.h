#pragma once

// Test helper shared by the unit tests that talk to a real socket: one bound to 127.0.0.1 on
// the port the kernel chose (or the one asked for), with that port.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "core/unique_fd.h"
#include "event/listener.h"

namespace portico::testing {

// A bound loopback socket and its port; owned by the test that made it, its thread.
struct LoopbackSocket {
  UniqueFd fd;  // invalid when the kernel refused the socket or the bind
  uint16_t port = 0;

  sockaddr_in address() const {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    return addr;
  }
  std::string text() const { return "127.0.0.1:" + std::to_string(port); }
};

// A socket of `type` (SOCK_STREAM or SOCK_DGRAM, optionally | SOCK_NONBLOCK) bound to
// 127.0.0.1:`port` (0: any free one). A stream socket gets SO_REUSEADDR so that a port a
// test listened on before is bound again at once.
inline LoopbackSocket bindLoopback(int type, uint16_t port = 0) {
  LoopbackSocket out;
  UniqueFd fd(::socket(AF_INET, type, 0));
  if (!fd) return out;
  if ((type & 0xf) == SOCK_STREAM) {
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  out.port = port;
  sockaddr_in addr = out.address();
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    out.port = 0;
    return out;
  }
  out.port = event::boundPort(fd.get());
  out.fd = std::move(fd);
  return out;
}

}  // namespace portico::testing
