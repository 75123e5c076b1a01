#pragma once

// The directive tables of nginx's ngx_http_limit_req_module and ngx_http_limit_conn_module:
// limit_req_zone and limit_conn_zone (http), limit_req and limit_conn (rules, per level),
// limit_*_status, limit_*_log_level, limit_*_dry_run. Their partial, merge and finish
// (LimitPartial, mergeLimit, finalizeLimit) and the parsers are conf_limit.h's
// (limit_zone_test's interface). The zones are the load's state across levels (nginx's
// cycle->shared_memory): the module's load context, LimitLoad.

#include <vector>

#include "config/conf_limit.h"
#include "config/conf_module.h"
#include "config/site.h"

namespace portico::config {

// The load's limit zones; the walker holds one per load.
struct LimitLoad {
  LimitZoneTable table;                // declared (size > 0) and referenced (size 0) zones
  std::vector<LimitZoneSpec> declared;  // limit_req_zone, limit_conn_zone, in file order
};

const std::vector<ModuleLoadDirective<LimitPartial, LimitLoad>>& limitDirectives();

// At the end of the http block: nginx's `zero size shared memory zone` for a zone only
// referenced (ConfFailure), else the declared zones into the site.
void finishLimitLoad(const LimitLoad& load, HttpSite& site);

}  // namespace portico::config
