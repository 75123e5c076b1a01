#include "config/uwsgi_module.h"

#include <deque>
#include <string>
#include <string_view>

#include "config/conf_values.h"

namespace portico::config {
namespace {

// ngx_http_uwsgi_pass: an optional uwsgi:// scheme, then an address nginx gives whole to
// ngx_http_upstream_add (no URI part: "unix:/path", "host:port", or an upstream's name).
void pass(const DirectiveCall& call, UpstreamLoad& load, ProxyPartial& level) {
  if (level.pass) call.directiveError("is duplicate");
  const std::string& url = call.arg(0);
  size_t skip = 0;
  bool ssl = false;
  if (startsWithCaseless(url, "uwsgi://")) {
    skip = 8;
  } else if (startsWithCaseless(url, "suwsgi://")) {
    skip = 9;  // uwsgi over TLS: the uwsgi_ssl_* settings (config/proxy_ssl_conf.h)
    ssl = true;
  }
  ProxyPass p;
  p.url = url;
  p.ssl = ssl;
  p.source = call.directive().source;
  p.upstream = url.substr(skip);
  p.unixSocket = startsWithCaseless(p.upstream, "unix:");
  if (url.find('$') != std::string::npos) {
    // Chosen per request (ngx_http_uwsgi_eval): no upstream is added at load.
    p.variables = true;
    level.pass = std::move(p);
    return;
  }
  // An `upstream` block of that name, or the implicit upstream of the address; uwsgi has no
  // default port ("no port in upstream" at the end of http, as nginx).
  p.upstreamIndex = static_cast<int>(upstreamFor(*load.upstreams, p.upstream, 0, call));
  level.pass = std::move(p);
}

// ngx_http_upstream_param_set_slot: NAME VALUE [if_not_empty].
void param(const DirectiveCall& call, UwsgiPartial& level) {
  UwsgiParam p;
  p.name = call.arg(0);
  p.value = call.arg(1);
  if (call.args().size() == 3) {
    if (call.arg(2) != "if_not_empty") call.emerg("invalid parameter " + quote(call.arg(2)));
    p.ifNotEmpty = true;
  }
  if (!level.params) level.params.emplace();
  level.params->push_back(std::move(p));
}

// ngx_conf_set_num_slot; the packet carries the low byte, as nginx's (u_char) cast.
void modifier1(const DirectiveCall& call, UwsgiPartial& level) {
  call.checkUnset(level.modifier1);
  level.modifier1 = call.number(call.arg(0));
}
void modifier2(const DirectiveCall& call, UwsgiPartial& level) {
  call.checkUnset(level.modifier2);
  level.modifier2 = call.number(call.arg(0));
}

// uwsgi_request_buffering on is what the engine does (the body is read whole, then sent).
void requestBuffering(const DirectiveCall& call, ProxyPartial& level) {
  call.setFlag(level.requestBuffering);
  if (!*level.requestBuffering) call.unsupported("\"uwsgi_request_buffering off\"");
}

// ngx_conf_set_bitmask_slot with ngx_http_uwsgi_next_upstream_masks: proxy's without
// http_502 and http_504 (nginx 1.22 has none for uwsgi); "off" anywhere turns it off (the merge).
void nextUpstream(const DirectiveCall& call, ProxyPartial& level) {
  parseNextUpstream(call, level, true);
}

}  // namespace

const std::vector<ModuleLoadDirective<ProxyPartial, UpstreamLoad>>& uwsgiPassDirectives() {
  static const std::vector<ModuleLoadDirective<ProxyPartial, UpstreamLoad>> kDirectives = {
      {"uwsgi_pass", kLocation | kLocationIf, Args::k1, &pass},
  };
  return kDirectives;
}

const std::vector<ModuleDirective<UwsgiPartial>>& uwsgiDirectives() {
  static const std::vector<ModuleDirective<UwsgiPartial>> kDirectives = {
      {"uwsgi_param", kHsl, Args::k23, &param},
      {"uwsgi_modifier1", kHsl, Args::k1, &modifier1},
      {"uwsgi_modifier2", kHsl, Args::k1, &modifier2},
  };
  return kDirectives;
}

const std::vector<ModuleDirective<ProxyPartial>>& uwsgiEngineDirectives() {
  // The proxy module's handlers of the settings both modules have, under uwsgi_ names: the
  // same slots, values and messages (they name the directive from the call).
  static const std::vector<ModuleDirective<ProxyPartial>> kDirectives = [] {
    static constexpr std::string_view kShared[] = {
        "connect_timeout", "read_timeout",  "send_timeout",     "pass_request_headers",
        "pass_request_body", "buffer_size", "buffers",          "buffering",
        "hide_header",     "pass_header",   "next_upstream_tries", "next_upstream_timeout",
        "busy_buffers_size", "temp_file_write_size", "max_temp_file_size", "intercept_errors",
        "ignore_headers",  "limit_rate",
        // TLS to the upstream (suwsgi://): the proxy_ssl_* rows (config/proxy_ssl_conf.cpp)
        "ssl_session_reuse", "ssl_protocols", "ssl_ciphers", "ssl_name", "ssl_server_name",
        "ssl_verify", "ssl_verify_depth", "ssl_trusted_certificate", "ssl_crl",
        "ssl_certificate", "ssl_certificate_key", "ssl_password_file", "ssl_conf_command",
    };
    static std::deque<std::string> names;  // the rows' string_views point here
    std::vector<ModuleDirective<ProxyPartial>> rows;
    for (const ModuleDirective<ProxyPartial>& row : proxyDirectives()) {
      std::string_view name = row.name;
      if (!name.starts_with("proxy_")) continue;
      for (std::string_view shared : kShared) {
        if (name.substr(6) != shared) continue;
        names.push_back("uwsgi_" + std::string(shared));
        ModuleDirective<ProxyPartial> copy = row;
        copy.name = names.back();
        rows.push_back(copy);
      }
    }
    rows.push_back({"uwsgi_next_upstream", kHsl, Args::k1More, &nextUpstream});
    rows.push_back({"uwsgi_request_buffering", kHsl, Args::k1, &requestBuffering});
    return rows;
  }();
  return kDirectives;
}

void mergeUwsgi(UwsgiPartial& c, const UwsgiPartial& p) {
  inherit(c.params, p.params);
  inherit(c.modifier1, p.modifier1);
  inherit(c.modifier2, p.modifier2);
}

void finishUwsgi(const ProxyPartial& engine, const UwsgiPartial& level, ProxySettings& s) {
  finishProxy(engine, s);
  s.uwsgi = true;
  if (level.params) s.uwsgiParams = *level.params;
  if (level.modifier1) s.uwsgiModifier1 = static_cast<int>(*level.modifier1 & 0xff);
  if (level.modifier2) s.uwsgiModifier2 = static_cast<int>(*level.modifier2 & 0xff);
}

}  // namespace portico::config
