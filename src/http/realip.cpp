#include "http/realip.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include "config/conf_values.h"

namespace portico::http {
namespace {

// ngx_cidr_match: an IPv4-mapped IPv6 client is compared as IPv4.
bool trusted(const config::PeerAddress& peer, const std::vector<config::Cidr>& from) {
  config::PeerAddress p = peer.v4Mapped() ? peer.asV4() : peer;
  for (const config::Cidr& c : from) {
    if (config::cidrMatches(c, p)) return true;
  }
  return false;
}

std::optional<ClientAddress> parseAddr(std::string_view text) {
  std::string s(text);
  ClientAddress a;
  char buffer[INET6_ADDRSTRLEN];
  if (::inet_pton(AF_INET, s.c_str(), a.peer.bytes.data()) == 1) {
    a.peer.family = AF_INET;
    ::inet_ntop(AF_INET, a.peer.bytes.data(), buffer, sizeof buffer);
  } else if (::inet_pton(AF_INET6, s.c_str(), a.peer.bytes.data()) == 1) {
    a.peer.family = AF_INET6;
    ::inet_ntop(AF_INET6, a.peer.bytes.data(), buffer, sizeof buffer);
  } else {
    return std::nullopt;
  }
  a.text = buffer;
  return a;
}

enum class Walk { kOk, kDone, kDeclined };

// ngx_http_get_forwarded_addr_internal over one header value.
Walk walkOne(ClientAddress& addr, std::string_view xff, const std::vector<config::Cidr>& from,
             bool recursive) {
  bool found = false;
  size_t len = xff.size();
  while (true) {
    if (!trusted(addr.peer, from)) return found ? Walk::kDone : Walk::kDeclined;
    size_t p = len ? len - 1 : 0;
    for (; p > 0; --p, --len) {
      if (xff[p] != ' ' && xff[p] != ',') break;
    }
    for (; p > 0; --p) {
      if (xff[p] == ' ' || xff[p] == ',') {
        ++p;
        break;
      }
    }
    std::optional<ClientAddress> parsed = parseAddrPort(xff.substr(p, len - p));
    if (!parsed) return found ? Walk::kDone : Walk::kDeclined;
    addr = *parsed;
    found = true;
    if (!recursive || p == 0) break;
    len = p - 1;
  }
  return Walk::kOk;
}

}  // namespace

std::optional<ClientAddress> parseAddrPort(std::string_view text) {
  if (auto a = parseAddr(text)) return a;
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  auto n = config::parseNginxNumber(port);
  if (!n || *n < 1 || *n > 65535) return std::nullopt;
  auto a = parseAddr(host);
  if (!a) return std::nullopt;
  a->port = static_cast<uint16_t>(*n);
  return a;
}

std::optional<ClientAddress> forwardedAddress(const ClientAddress& client,
                                              const std::vector<std::string_view>& values,
                                              const std::vector<config::Cidr>& from,
                                              bool recursive) {
  ClientAddress addr = client;
  Walk rc = Walk::kDeclined;
  bool found = false;
  for (size_t i = values.size(); i-- > 0;) {
    rc = walkOne(addr, values[i], from, recursive);
    if (!recursive) break;
    if (rc == Walk::kDeclined && found) {
      rc = Walk::kDone;
      break;
    }
    if (rc != Walk::kOk) break;
    found = true;
  }
  if (rc == Walk::kDeclined) return std::nullopt;
  return addr;
}

}  // namespace portico::http
