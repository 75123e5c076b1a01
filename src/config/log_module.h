#pragma once

// nginx's ngx_http_log_module: log_format (http), access_log and open_log_file_cache (http,
// server, location; access_log in a location's `if` too), their per-level settings, merge and
// finish. Its load context (LogLoad, nginx's ngx_http_log_main_conf_t) holds the formats that
// access_log checks its format against and the buffer each buffered file was first given (every
// buffered access_log of one file must agree, across levels).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "config/conf_module.h"
#include "config/site.h"

namespace portico::config {

// The load's log state; the walker holds one per load.
struct LogLoad {
  std::map<std::string, LogFormat> formats;  // log_format, without nginx's predefined "combined"
  // access_log FILE ... buffer=: the (buffer size, flush ms, gzip level) each file was first given.
  std::map<std::string, std::tuple<uint64_t, uint64_t, int>> buffers;
};

// What one level wrote; unset inherits from the enclosing level.
struct LogPartial {
  std::optional<std::vector<AccessLogSpec>> accessLogs;  // empty: `access_log off`
  bool accessLogOff = false;  // `access_log off` at this level wins over its other access_logs
  // open_log_file_cache: unset (inherit), set to nullopt (`off`) or to a cache.
  std::optional<std::optional<OpenLogFileCache>> openLogFileCache;
};

const std::vector<ModuleLoadDirective<LogPartial, LogLoad>>& logDirectives();

void mergeLog(LogPartial& child, const LogPartial& parent);

// `prefix` is nginx's -p: a level without access_log keeps the default log, under the prefix.
void finishLog(const LogPartial& level, const std::string& prefix, LocationSettings& settings);

// The formats, with nginx's predefined "combined" (present whether or not there is an http
// block).
void finishLogLoad(const LogLoad& load, HttpSite& site);

}  // namespace portico::config
