#pragma once

// nginx's ngx_http_uwsgi_module as portico implements it: uwsgi_pass, uwsgi_param,
// uwsgi_modifier1/2 and the upstream settings it shares with proxy_pass under uwsgi_ names
// (timeouts, buffers, hidden headers, next upstream, ...). A location keeps them as a second
// ProxySettings (LocationSettings::uwsgi, codec uwsgi) that the same engine (src/upstream/)
// runs. The shared settings reuse the proxy module's directive handlers and merge
// (ProxyPartial); the uwsgi-only ones are in UwsgiPartial. uwsgi_param's list is inherited
// whole by a level that sets none, as nginx's params_source. The uwsgi_* directives not in
// these tables stay refused as "not supported by portico yet".

#include <optional>
#include <vector>

#include "config/conf_module.h"
#include "config/proxy_module.h"
#include "config/site.h"
#include "config/upstream_module.h"

namespace portico::config {

// What one level wrote of the uwsgi-only directives; unset fields inherit.
struct UwsgiPartial {
  std::optional<std::vector<UwsgiParam>> params;
  std::optional<int64_t> modifier1, modifier2;
};

const std::vector<ModuleDirective<UwsgiPartial>>& uwsgiDirectives();
// The shared upstream settings under their uwsgi_ names, filling a ProxyPartial of its own.
const std::vector<ModuleDirective<ProxyPartial>>& uwsgiEngineDirectives();
// uwsgi_pass, which names an upstream (into that ProxyPartial's `pass`).
const std::vector<ModuleLoadDirective<ProxyPartial, UpstreamLoad>>& uwsgiPassDirectives();

void mergeUwsgi(UwsgiPartial& child, const UwsgiPartial& parent);

// The location's uwsgi settings: the engine's (finishProxy of `engine`) with the codec set to
// uwsgi and the params and modifiers.
void finishUwsgi(const ProxyPartial& engine, const UwsgiPartial& level, ProxySettings& settings);

}  // namespace portico::config
