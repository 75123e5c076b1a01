#pragma once

// Where one request goes when its proxy_pass or uwsgi_pass holds variables (nginx's
// ngx_http_proxy_eval / ngx_http_uwsgi_eval and the resolved branch of
// ngx_http_upstream_init_request): the URL or address, expanded per request, is parsed as nginx
// parses it; an IP address or a unix socket is used as it is, a host name that an upstream
// names (an `upstream` block, or the implicit upstream of another pass, with its port) uses
// that upstream, and any other name is looked up by the location's resolver (dns/resolver.h;
// none: 502 with nginx's "no resolver defined to resolve NAME"). Pure.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/site.h"
#include "config/upstream.h"

namespace portico::upstream {

// One expanded proxy_pass URL, parsed.
struct PassTarget {
  config::ProxyPass pass;  // proxyHost, proxyPort, hasUri/uri ("?x" becomes "/?x"), upstream
  std::string host;        // the host as written (a unix socket's path)
  uint16_t port = 80;      // the port written, else 80 (443 for https://)
  bool noPort = true;
  // The address when the host is an IP literal or a unix socket (else a name).
  std::optional<config::UpstreamAddress> address;
};

// Parses `url` (http:// or https://); nullopt with `error` in nginx's words ("invalid URL
// prefix in \"x\"", "invalid port in upstream \"x\"", "no host in upstream \"x\"").
std::optional<PassTarget> parsePassTarget(std::string_view url, std::string& error);

// A uwsgi_pass address with variables, expanded (`[uwsgi://|suwsgi://]host:port`,
// `unix:/path`, or an upstream's name): parsed as parsePassTarget parses a URL's host and port, without URI.
// `noPort` is true when none was written (uwsgi has no default: only an upstream may match).
// nullopt with `error` ("no host in upstream \"\"", "invalid port in upstream \"x\"", ...).
std::optional<PassTarget> parseUwsgiTarget(std::string_view target, std::string& error);

// The upstream a name selects (nginx: same host, caseless, and either no port written for an
// upstream without one, or the same port); -1 when none.
int findUpstream(const std::vector<config::UpstreamSpec>& upstreams, const PassTarget& target);

// A one-server upstream for an address target (nginx's create_round_robin_peer for a resolved
// address): what the Balancer picks from. The spec must outlive the balancer made of it.
config::UpstreamSpec singleServerUpstream(const PassTarget& target);

// proxy_bind's address as ngx_parse_addr_port reads it: "IP", "IP:PORT", "[IPv6]", "[IPv6]:PORT"
// (port 0 when none); nullopt when it is not one.
std::optional<config::UpstreamAddress> parseLocalAddress(std::string_view text);

// Binds `fd` to proxy_bind's expanded `text` before it connects (ngx_http_upstream_set_local
// and ngx_event_connect_peer): "" binds nothing; an invalid address is logged in `message`
// ("invalid local address ...") and nothing is bound; false when bind() fails (`message` says
// so; nginx answers 500).
bool bindLocal(int fd, std::string_view text, std::string& message);

}  // namespace portico::upstream
