#pragma once

// nginx's ngx_http_gzip_filter_module and ngx_http_gzip_static_module as portico implements
// them: the gzip* directives (http, server, location; `gzip` also in a location's `if`), what
// each level wrote, the merge parent → child, and the location's GzipSettings. Pure.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/conf_module.h"
#include "config/site.h"

namespace portico::config {

// What one level wrote; unset fields inherit from the enclosing level.
struct GzipPartial {
  std::optional<bool> enabled;
  std::optional<std::vector<std::string>> types;
  std::optional<int> level;
  std::optional<int64_t> minLength;
  std::optional<bool> vary;
  std::optional<std::vector<std::string>> proxied;
  std::optional<std::vector<std::string>> disable;
  std::optional<std::pair<int, int64_t>> buffers;
  std::optional<int> httpVersionMinor;
  std::optional<GzipSettings::Static> staticMode;
};

const std::vector<ModuleDirective<GzipPartial>>& gzipDirectives();

void mergeGzip(GzipPartial& child, const GzipPartial& parent);

// The location's settings: what the merged level set over GzipSettings' defaults.
void finishGzip(const GzipPartial& level, GzipSettings& gzip);

}  // namespace portico::config
