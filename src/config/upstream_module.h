#pragma once

// nginx's ngx_http_upstream_module configuration: the `upstream NAME { ... }` block and the
// directives inside it (server, least_conn, ip_hash, hash, keepalive, keepalive_requests,
// keepalive_timeout, keepalive_time), and the implicit upstreams a *_pass address makes
// (ngx_http_upstream_add). The upstreams live in HttpSite::upstreams; the walker holds the
// load context (UpstreamLoad) that points there and knows which block is being read.
//
// How the proxy/uwsgi modules use it: at their *_pass directive, upstreamFor(...) with the
// address part of the pass gives the index into HttpSite::upstreams the location keeps (stable
// for the rest of the load). An `upstream` block written later in the file takes over an implicit
// entry of its name, as in nginx. At the end of the http block the walker calls
// finishUpstreams, which resolves every implicit upstream (getaddrinfo) — so the pass may come
// before or after the block it names.

#include <cstdint>
#include <string>
#include <vector>

#include "config/conf_module.h"
#include "config/upstream.h"

namespace portico::config {

// The load's upstream state; one per load, held by the walker; loading thread.
struct UpstreamLoad {
  std::vector<UpstreamSpec>* upstreams = nullptr;  // the site's, in nginx's order of creation
  size_t current = 0;                              // the block being read
  // The block being read: which server parameters its balancing method allows (nginx's
  // uscf->flags) and which directives it already has.
  bool backupAllowed = true;
  bool methodSet = false;
  bool keepaliveSet = false;
  bool requestsSet = false, timeoutSet = false, timeSet = false;
};

const std::vector<ModuleMainDirective<UpstreamLoad>>& upstreamDirectives();

// `upstream NAME {` (call: the block directive): nginx's checks ("duplicate upstream", "upstream
// \"x\" may not have port N in FILE:LINE") and the entry the block's directives fill.
void beginUpstreamBlock(const DirectiveCall& call, UpstreamLoad& load);
// Its closing brace: "no servers are inside upstream".
void endUpstreamBlock(const DirectiveCall& call, UpstreamLoad& load);

// The upstream a *_pass directive (`call`, for messages and the place) names: `address` is
// what follows the scheme with the URI cut off — "host", "host:port", "[v6]:port",
// "unix:/path". nginx's rule (ngx_http_upstream_add): an `upstream` block of that name (case-
// insensitive) when no port was written (a port with a block's name: `upstream "x" may not have
// port N`), else the implicit upstream of that host and port, shared by every pass that names it.
// `defaultPort`: 80 for http://, 443 for https://, 0 when the scheme has none (uwsgi_pass:
// "no port in upstream" at the end of http unless a block has the name). Returns the index into
// `upstreams` (the walker's UpstreamLoad::upstreams); refusals throw ConfFailure via `call`
// ("invalid port in upstream \"x\"", "no host in upstream \"x\"", ...).
size_t upstreamFor(std::vector<UpstreamSpec>& upstreams, const std::string& address,
                   uint16_t defaultPort, const DirectiveCall& call);

// At the end of http (nginx's init main conf): resolves the implicit upstreams' addresses
// ("host not found in upstream \"x\" in FILE:LINE", "no port in upstream \"x\" in FILE:LINE"
// as ConfFailure). Idempotent: resolved entries are left alone.
void finishUpstreams(std::vector<UpstreamSpec>& upstreams);

}  // namespace portico::config
