#include "config/upstream_address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>

namespace portico::config {
namespace {

std::optional<uint16_t> readPort(const std::string& text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value < 1 || value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

std::string quoted(const std::string& text) { return "\"" + text + "\""; }

}  // namespace

std::string upstreamAddressText(const sockaddr_storage& addr, socklen_t length) {
  char buf[INET6_ADDRSTRLEN];
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  if (addr.ss_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&addr);
    size_t max = length > offsetof(sockaddr_un, sun_path) ? length - offsetof(sockaddr_un, sun_path) : 0;
    return "unix:" + std::string(un->sun_path, ::strnlen(un->sun_path, max));
  }
  return "";
}

std::optional<std::string> resolveUpstreamAddress(const std::string& text, uint16_t defaultPort,
                                                  std::vector<UpstreamAddress>& out) {
  if (text.rfind("unix:", 0) == 0) {
    std::string path = text.substr(5);
    if (path.empty()) return "no path in the unix domain socket in upstream " + quoted(text);
    if (path.size() >= sizeof(sockaddr_un::sun_path)) {
      return "too long path in the unix domain socket in upstream " + quoted(text);
    }
    UpstreamAddress peer;
    auto* un = reinterpret_cast<sockaddr_un*>(&peer.addr);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.data(), path.size());
    peer.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    peer.text = "unix:" + path;
    out.push_back(std::move(peer));
    return std::nullopt;
  }
  std::string host;
  std::string portText;
  bool hasPort = false;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) return "invalid host in upstream " + quoted(text);
    host = text.substr(1, close - 1);
    std::string rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return "invalid host in upstream " + quoted(text);
      portText = rest.substr(1);
      hasPort = true;
    }
  } else {
    // ngx_parse_inet_url: a server line has no URI part ("invalid host"), the port follows the
    // first colon.
    if (text.find_first_of("/?") != std::string::npos) {
      return "invalid host in upstream " + quoted(text);
    }
    size_t colon = text.find(':');
    if (colon != std::string::npos) {
      host = text.substr(0, colon);
      portText = text.substr(colon + 1);
      hasPort = true;
    } else {
      host = text;
    }
  }
  if (host.empty()) return "no host in upstream " + quoted(text);
  uint16_t port = defaultPort;
  if (hasPort) {
    auto parsed = readPort(portText);
    if (!parsed) return "invalid port in upstream " + quoted(text);
    port = *parsed;
  } else if (port == 0) {
    return "no port in upstream " + quoted(text);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &list) != 0 || list == nullptr) {
    return "host not found in upstream " + quoted(text);
  }
  size_t before = out.size();
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    UpstreamAddress peer;
    std::memcpy(&peer.addr, ai->ai_addr, ai->ai_addrlen);
    peer.length = ai->ai_addrlen;
    if (ai->ai_family == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&peer.addr)->sin_port = htons(port);
    } else {
      reinterpret_cast<sockaddr_in6*>(&peer.addr)->sin6_port = htons(port);
    }
    peer.text = upstreamAddressText(peer.addr, peer.length);
    bool seen = false;
    for (size_t i = before; i < out.size(); ++i) seen = seen || out[i].text == peer.text;
    if (!seen) out.push_back(std::move(peer));
  }
  ::freeaddrinfo(list);
  if (out.size() == before) return "host not found in upstream " + quoted(text);
  return std::nullopt;
}

}  // namespace portico::config
