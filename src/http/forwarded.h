#pragma once

// gunicorn's trusted front ends (--forwarded-allow-ips, secure_scheme_headers) for the WSGI
// environ: from a trusted peer, X-Forwarded-Proto and its kin set wsgi.url_scheme, and
// X-Forwarded-For sets REMOTE_ADDR (portico's addition, see below). Pure; unit-tested.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/exchange.h"
#include "http/request.h"

namespace portico::http {

// Which peers are trusted and what their headers mean. gunicorn 20.1 compares the peer's
// address with each entry as a string ("*" trusts every peer; a unix-socket peer is always
// trusted).
struct ForwardedTrust {
  std::vector<std::string> allowIps;  // --forwarded-allow-ips, split on commas
  // gunicorn's secure_scheme_headers default (not a command-line option in gunicorn 20.1):
  // header (any case) → the exact value that means https.
  std::vector<std::pair<std::string, std::string>> secureSchemeHeaders = {
      {"X-FORWARDED-PROTOCOL", "ssl"}, {"X-FORWARDED-PROTO", "https"}, {"X-FORWARDED-SSL", "on"}};
};

struct ForwardedResult {
  // Two secure-scheme headers disagree: gunicorn's 400 "Contradictory scheme headers".
  bool contradictory = false;
  ConnectionInfo connection;  // the connection as the app sees it: scheme, peer address
};

// From a trusted peer: each secure-scheme header sets the scheme (https when its value is the
// expected one, else http; gunicorn); X-Forwarded-For's last address that is not itself a
// trusted proxy replaces the peer address (every line, walked from the right as nginx's realip
// with real_ip_recursive on; gunicorn 20.1 leaves REMOTE_ADDR alone — portico follows
// uvicorn's proxy headers here, so Django's REMOTE_ADDR is the client's). From any other peer
// the connection is unchanged.
// `socket` is the connection as accepted (gunicorn trusts on the socket's peer even when a
// PROXY header or realip gave the request another client); it defaults to `connection`.
ForwardedResult applyForwarded(const ForwardedTrust& trust, const Request& request,
                               const ConnectionInfo& connection,
                               const ConnectionInfo* socket = nullptr);

}  // namespace portico::http
