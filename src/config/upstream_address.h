#pragma once

// Reading an upstream address as nginx does at load (ngx_parse_url + ngx_inet_resolve_host):
// "host:port", "host" (the default port), "[v6]:port", "unix:/path". Used by `server` lines of
// upstream blocks and by the implicit upstreams of proxy_pass / uwsgi_pass.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/upstream.h"

namespace portico::config {

// Resolves `text` into one or more addresses (every address getaddrinfo gives, v4 and v6, in its
// order, duplicates dropped). `defaultPort` 0: a port is required. Returns nginx's error text
// without the location ("host not found in upstream \"x\"", "invalid port in upstream \"x\"",
// "no port in upstream \"x\"", "too long path in the unix domain socket ...").
std::optional<std::string> resolveUpstreamAddress(const std::string& text, uint16_t defaultPort,
                                                  std::vector<UpstreamAddress>& out);

// The text nginx shows for an address in $upstream_addr ("127.0.0.1:80", "[::1]:80",
// "unix:/path").
std::string upstreamAddressText(const sockaddr_storage& addr, socklen_t length);

}  // namespace portico::config
