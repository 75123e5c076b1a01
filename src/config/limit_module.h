#pragma once

// The directive tables of nginx's ngx_http_limit_req_module and ngx_http_limit_conn_module for
// what a level writes alone: limit_*_status, limit_*_log_level, limit_*_dry_run. Their partial,
// merge and finish (LimitPartial, mergeLimit, finalizeLimit) and the parsers are conf_limit.h's
// (limit_zone_test's interface). limit_req_zone, limit_conn_zone, limit_req and limit_conn stay
// with the walker (conf_builder.cpp): they declare or reference shared memory zones, which are
// the load's state across levels (nginx's cycle->shared_memory), not a level's.

#include <vector>

#include "config/conf_limit.h"
#include "config/conf_module.h"

namespace portico::config {

const std::vector<ModuleDirective<LimitPartial>>& limitDirectives();

}  // namespace portico::config
