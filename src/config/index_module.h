#pragma once

// nginx's ngx_http_index_module: the `index` directive (http, server, location), what each
// level wrote (every `index` of a level adds up), the merge and the location's index list.

#include <optional>
#include <string>
#include <vector>

#include "config/conf_module.h"
#include "config/site.h"

namespace portico::config {

// What one level wrote; unset inherits from the enclosing level.
struct IndexPartial {
  std::optional<std::vector<std::string>> files;
};

const std::vector<ModuleDirective<IndexPartial>>& indexDirectives();

void mergeIndex(IndexPartial& child, const IndexPartial& parent);

void finishIndex(const IndexPartial& level, LocationSettings& settings);

}  // namespace portico::config
