#pragma once

// A *_pass whose address is made of variables (`uwsgi_pass $target;`, nginx's
// ngx_http_uwsgi_eval and u->resolved): the address is expanded per request, then — as
// ngx_http_upstream_init_request — an `upstream` block of that name (case-insensitive), else
// an IP address with its port or a unix socket, is proxied to by an ordinary ProxyHandler made
// for that target by the module and kept for the next requests. A host name needs a resolver,
// which portico has not (nginx without `resolver`: "no resolver defined to resolve HOST", 502).
// The targets a client can name are bounded (kMaxTargets); beyond them a new one is a 502.

#include <memory>
#include <string>
#include <vector>

#include "config/site.h"
#include "config/upstream.h"
#include "http/variables.h"
#include "pipeline/content.h"

namespace portico::upstream {

class ProxyContentModule;

// The handler of a location whose pass has variables; `settings`' uwsgi (or proxy) pass has
// `variables` set. nullptr with `error` when the address does not compile.
std::unique_ptr<pipeline::ContentHandler> makeVariablePassHandler(
    ProxyContentModule& module, const config::LocationSettings& settings,
    const std::vector<std::string>* captureNames, const http::VariableRegistry* users,
    const std::vector<config::UpstreamSpec>* upstreams, std::string& error);

}  // namespace portico::upstream
