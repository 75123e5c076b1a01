#pragma once

// nginx's ngx_http_headers_filter_module as portico implements it: add_header, add_trailer and expires
// (http, server, location, a location's `if`), what each level wrote, the merge parent → child
// (a level with add_header of its own inherits none, as in nginx), and the location's settings.

#include <optional>
#include <vector>

#include "config/conf_module.h"
#include "config/site.h"

namespace portico::config {

// What one level wrote; unset fields inherit from the enclosing level.
struct HeadersPartial {
  std::optional<std::vector<AddHeader>> addHeaders;
  std::optional<std::vector<AddHeader>> addTrailers;
  std::optional<Expires> expires;
};

const std::vector<ModuleDirective<HeadersPartial>>& headersDirectives();

void mergeHeaders(HeadersPartial& child, const HeadersPartial& parent);

void finishHeaders(const HeadersPartial& level, LocationSettings& settings);

}  // namespace portico::config
