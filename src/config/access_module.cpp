#include "config/access_module.h"

#include <optional>
#include <string>

namespace portico::config {
namespace {

// A row's apply: applyAccessDirective's message gets the directive's FILE:LINE.
void apply(const DirectiveCall& call, AccessPartial& level) {
  std::vector<std::string> warnings;
  std::optional<std::string> error = applyAccessDirective(call.name(), call.args(), level, warnings);
  for (const std::string& w : warnings) call.warn(w);
  if (error) call.emerg(*error);
}

}  // namespace

const std::vector<ModuleDirective<AccessPartial>>& accessDirectives() {
  static const std::vector<ModuleDirective<AccessPartial>> kDirectives = {
      // ngx_http_access_module
      {"allow", kHsl | kLimitExcept, Args::k1, &apply},
      {"deny", kHsl | kLimitExcept, Args::k1, &apply},
      // ngx_http_auth_basic_module (satisfy and auth_delay are ngx_http_core_module's)
      {"satisfy", kHsl, Args::k1, &apply},
      {"auth_basic", kHsl | kLimitExcept, Args::k1, &apply},
      {"auth_basic_user_file", kHsl | kLimitExcept, Args::k1, &apply},
      {"auth_delay", kHsl, Args::k1, &apply},
      // ngx_http_realip_module
      {"set_real_ip_from", kHsl, Args::k1, &apply},
      {"real_ip_header", kHsl, Args::k1, &apply},
      {"real_ip_recursive", kHsl, Args::k1, &apply},
      // ngx_http_autoindex_module
      {"autoindex", kHsl, Args::k1, &apply},
      {"autoindex_exact_size", kHsl, Args::k1, &apply},
      {"autoindex_localtime", kHsl, Args::k1, &apply},
      {"autoindex_format", kHsl, Args::k1, &apply},
      // ngx_http_stub_status_module
      {"stub_status", kServer | kLocation, Args::k01, &apply},
      // portico's service endpoints (a location's content, as stub_status)
      {"prometheus_metrics", kLocation, Args::kNone, &apply},
      {"health_live", kLocation, Args::kNone, &apply},
      {"health_ready", kLocation, Args::kNone, &apply},
      {"portico_status", kLocation, Args::kNone, &apply},
  };
  return kDirectives;
}

}  // namespace portico::config
