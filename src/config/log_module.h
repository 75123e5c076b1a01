#pragma once

// nginx's ngx_http_log_module, the part a level owns alone: open_log_file_cache (http, server,
// location), its merge and the location's setting. access_log and log_format stay with the
// walker (conf_builder.cpp): log_format fills the http level's table of formats that access_log
// checks its format against, and buffered access_logs of one file must agree across levels (the
// load's per-file buffer table) — state beyond one level's partial.

#include <optional>
#include <vector>

#include "config/conf_module.h"
#include "config/site.h"

namespace portico::config {

// What one level wrote; unset inherits from the enclosing level.
struct LogPartial {
  // open_log_file_cache: unset (inherit), set to nullopt (`off`) or to a cache.
  std::optional<std::optional<OpenLogFileCache>> openLogFileCache;
};

const std::vector<ModuleDirective<LogPartial>>& logDirectives();

void mergeLog(LogPartial& child, const LogPartial& parent);

void finishLog(const LogPartial& level, LocationSettings& settings);

}  // namespace portico::config
