#pragma once

// The realip module's pure part: nginx's ngx_http_get_forwarded_addr — the walk over
// X-Forwarded-For (or X-Real-IP, or another header) from the right, replacing the client address
// while it is a trusted proxy (set_real_ip_from). Pure; unit-tested.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/cidr.h"

namespace portico::http {

// A client address as realip replaces it: text as ngx_sock_ntop prints it, and the port (0 when
// the header gave none).
struct ClientAddress {
  config::PeerAddress peer;
  std::string text;
  uint16_t port = 0;
};

// ngx_parse_addr_port: "192.0.2.1", "192.0.2.1:80", "2001:db8::1", "[2001:db8::1]:80".
std::optional<ClientAddress> parseAddrPort(std::string_view text);

// `values`: the header's values in arrival order (several X-Forwarded-For lines; one value for
// X-Real-IP and custom headers). `client` is the connection's address. Returns the address that
// replaces it, or nullopt when realip does not apply (nginx's NGX_DECLINED).
std::optional<ClientAddress> forwardedAddress(const ClientAddress& client,
                                              const std::vector<std::string_view>& values,
                                              const std::vector<config::Cidr>& from,
                                              bool recursive);

}  // namespace portico::http
