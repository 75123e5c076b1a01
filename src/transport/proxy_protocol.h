#pragma once

// The PROXY protocol header (HAProxy's proxy-protocol.txt, v1 text and v2 binary) that a load
// balancer sends before anything else on a connection, read as nginx 1.22's
// ngx_proxy_protocol_read does. Pure: no I/O; unit-tested and fuzzed.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace portico::transport {

// What a PROXY header says of the connection it precedes. `known` is false for v1 "UNKNOWN",
// v2 LOCAL, and v2 families or transports nginx does not take (AF_UNSPEC, AF_UNIX, DGRAM):
// the connection is then used as if no header had come ($proxy_protocol_addr is empty).
struct ProxyProtocolInfo {
  bool known = false;
  int version = 0;              // 1 or 2
  std::string sourceAddress;    // $proxy_protocol_addr: v1 as sent, v2 as ngx_sock_ntop prints
  uint16_t sourcePort = 0;      // $proxy_protocol_port
  std::string destinationAddress;  // $proxy_protocol_server_addr
  uint16_t destinationPort = 0;    // $proxy_protocol_server_port
};

// The outcome of looking at the first bytes of a connection.
struct ProxyProtocolResult {
  enum class Status {
    kIncomplete,  // a valid prefix of a header: read more (the caller bounds the wait)
    kDone,        // `consumed` bytes are the header; `info` says what it carried
    kError,       // not a valid header: `error` is nginx's message, the connection closes
    kAbsent,      // (optional mode only) the bytes do not start a header: none was sent
  };
  Status status = Status::kIncomplete;
  size_t consumed = 0;
  ProxyProtocolInfo info;
  std::string error;  // "broken header: \"...\"", "header is too large", ...
};

// v1 lines are at most 107 bytes with their CRLF; v2 headers at most 4096 bytes (nginx's
// NGX_PROXY_PROTOCOL_V1_MAX_HEADER and NGX_PROXY_PROTOCOL_MAX_HEADER). A caller never needs
// to hold more than kProxyProtocolMaxHeader bytes to get a verdict.
inline constexpr size_t kProxyProtocolV1MaxHeader = 107;
inline constexpr size_t kProxyProtocolMaxHeader = 4096;

// Parses the header at the start of `data` (all bytes the connection has sent so far). Unlike
// nginx, which judges the first read alone, a header split across reads is waited for: the
// verdict does not depend on how the bytes were split. With `optional` (gunicorn's
// --proxy-protocol, where the header may be absent), bytes that cannot start a header give
// kAbsent instead of kError.
ProxyProtocolResult parseProxyProtocol(std::string_view data, bool optional = false);

}  // namespace portico::transport
