#pragma once

// The directive table of nginx's access-control and listing modules (their partial, merge and
// finish are in access_conf.h, whose applyAccessDirective parses each directive): rows of
// ngx_http_access_module, ngx_http_auth_basic_module (with the core's satisfy and auth_delay),
// ngx_http_realip_module, ngx_http_autoindex_module and ngx_http_stub_status_module.

#include <vector>

#include "config/access_conf.h"
#include "config/conf_module.h"

namespace portico::config {

const std::vector<ModuleDirective<AccessPartial>>& accessDirectives();

}  // namespace portico::config
