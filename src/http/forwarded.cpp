#include "http/forwarded.h"

#include <sys/socket.h>

#include <algorithm>

#include "config/cidr.h"
#include "http/realip.h"

namespace portico::http {
namespace {

bool sameIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
           return lower(x) == lower(y);
         });
}

}  // namespace

ForwardedResult applyForwarded(const ForwardedTrust& trust, const Request& request,
                               const ConnectionInfo& connection, const ConnectionInfo* socket) {
  ForwardedResult result;
  result.connection = connection;
  const ConnectionInfo& peer = socket ? *socket : connection;
  bool any = std::find(trust.allowIps.begin(), trust.allowIps.end(), "*") != trust.allowIps.end();
  bool trusted = any || peer.isUnix ||
                 std::find(trust.allowIps.begin(), trust.allowIps.end(), peer.peerAddress) !=
                     trust.allowIps.end();
  if (!trusted) return result;

  bool schemeHeader = false;
  std::vector<std::string_view> forwardedFor;
  for (const Header& h : request.headers) {
    if (sameIgnoringCase(h.name, "X-Forwarded-For")) forwardedFor.push_back(h.value);
    for (const auto& [name, secureValue] : trust.secureSchemeHeaders) {
      if (!sameIgnoringCase(h.name, name)) continue;
      std::string scheme = h.value == secureValue ? "https" : "http";
      if (schemeHeader && scheme != result.connection.scheme) {
        result.contradictory = true;
        return result;
      }
      schemeHeader = true;
      result.connection.scheme = scheme;
    }
  }
  if (forwardedFor.empty()) return result;

  // The trusted proxies as masks: each address whole, "*" as everything.
  std::vector<config::Cidr> from;
  auto add = [&](std::string_view text) {
    config::Cidr cidr;
    if (config::parseCidr(text, cidr) == config::CidrParse::kOk) from.push_back(cidr);
  };
  if (any) {
    add("0.0.0.0/0");
    add("::/0");
  } else {
    for (const std::string& ip : trust.allowIps) add(ip);
  }
  config::Cidr unixPeers;
  unixPeers.family = AF_UNIX;  // set_real_ip_from unix:
  from.push_back(unixPeers);
  ClientAddress current;
  bool unix = connection.isUnix && connection.peerAddress.empty();
  current.peer = config::peerAddressOf(connection.peerAddress, unix);
  current.text = connection.peerAddress;
  current.port = connection.peerPort;
  std::optional<ClientAddress> real = forwardedAddress(current, forwardedFor, from, true);
  if (real) {
    result.connection.peerAddress = real->text;
    result.connection.peerPort = real->port;
  }
  return result;
}

}  // namespace portico::http
