#include "config/log_module.h"

#include <string>
#include <string_view>

#include "config/conf_values.h"

namespace portico::config {
namespace {

void openLogFileCache(const DirectiveCall& call, LogPartial& level) {
  if (level.openLogFileCache) call.directiveError("is duplicate");
  if (call.args().size() > 4) {
    call.emerg("invalid number of arguments in " + quote(call.name()) + " directive");
  }
  OpenLogFileCache cache;
  cache.source = call.directive().source;
  bool off = false;
  for (const std::string& p : call.args()) {
    bool ok = true;
    std::string_view v(p);
    if (v.starts_with("max=")) {
      auto n = parseNginxNumber(v.substr(4));
      ok = n.has_value();
      if (ok) cache.max = static_cast<int>(*n);
    } else if (v.starts_with("inactive=")) {
      auto t = parseNginxTime(v.substr(9), true);
      ok = t.has_value();
      if (ok) cache.inactiveSeconds = *t;
    } else if (v.starts_with("min_uses=")) {
      auto n = parseNginxNumber(v.substr(9));
      ok = n.has_value();
      if (ok) cache.minUses = static_cast<int>(*n);
    } else if (v.starts_with("valid=")) {
      auto t = parseNginxTime(v.substr(6), true);
      ok = t.has_value();
      if (ok) cache.validSeconds = *t;
    } else if (p == "off") {
      off = true;
    } else {
      ok = false;
    }
    if (!ok) call.emerg("invalid \"open_log_file_cache\" parameter " + quote(p));
  }
  if (off) {
    level.openLogFileCache = std::optional<OpenLogFileCache>();
    return;
  }
  if (cache.max == 0) call.emerg("\"open_log_file_cache\" must have \"max\" parameter");
  level.openLogFileCache = std::optional<OpenLogFileCache>(cache);
}

}  // namespace

const std::vector<ModuleDirective<LogPartial>>& logDirectives() {
  static const std::vector<ModuleDirective<LogPartial>> kDirectives = {
      {"open_log_file_cache", kHsl, Args::k1More, &openLogFileCache},
  };
  return kDirectives;
}

void mergeLog(LogPartial& child, const LogPartial& parent) {
  inherit(child.openLogFileCache, parent.openLogFileCache);
}

void finishLog(const LogPartial& level, LocationSettings& settings) {
  if (level.openLogFileCache) settings.openLogFileCache = *level.openLogFileCache;
}

}  // namespace portico::config
