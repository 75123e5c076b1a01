#pragma once

// nginx's address masks (ngx_ptocidr, ngx_cidr_match) for allow/deny and set_real_ip_from:
// "192.0.2.0/24", "2001:db8::/32", a bare address (all bits), "unix:" (every unix-socket
// client) or "all". Pure; unit-tested.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace portico::config {

// One mask. family is AF_INET, AF_INET6 or AF_UNIX; an IPv4 address lives in the first 4 bytes.
struct Cidr {
  int family = 0;
  std::array<uint8_t, 16> addr{};
  std::array<uint8_t, 16> mask{};
};

// ngx_ptocidr: kOk, kLowBits (host bits were set: nginx clears them and warns "low address bits
// of ... are meaningless"), or kError ("invalid parameter").
enum class CidrParse { kOk, kLowBits, kError };
CidrParse parseCidr(std::string_view text, Cidr& out);

// A peer's address as a mask matcher sees it: family and bytes. An IPv4-mapped IPv6 address
// stays AF_INET6 here; matchers decide (nginx's access module and ngx_cidr_match differ).
struct PeerAddress {
  int family = 0;  // 0: unparsable
  std::array<uint8_t, 16> bytes{};
  bool v4Mapped() const;
  PeerAddress asV4() const;  // the mapped IPv4 address of a v4-mapped one
};
// "127.0.0.1", "::1", "::ffff:1.2.3.4"; isUnix → AF_UNIX.
PeerAddress peerAddressOf(std::string_view text, bool isUnix);

// True when `peer` (same family) is inside `cidr`; AF_UNIX masks match every unix peer.
bool cidrMatches(const Cidr& cidr, const PeerAddress& peer);

}  // namespace portico::config
