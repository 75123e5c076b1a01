#pragma once

// nginx's value syntaxes, as its configuration parser reads them (src/core/ngx_parse.c,
// ngx_string.c). Pure functions; nullopt means nginx would say "invalid value".

#include <cstdint>
#include <optional>
#include <string_view>

namespace portico::config {

// nginx's merge of one setting (ngx_conf_merge_*_value): a level that did not set it takes its
// parent's, already merged. Shared by the builder and the modules' own partial settings.
template <class T>
void inherit(std::optional<T>& child, const std::optional<T>& parent) {
  if (!child && parent) child = parent;
}

// ngx_atoi: decimal digits only, no sign, no overflow.
std::optional<int64_t> parseNginxNumber(std::string_view text);

// ngx_parse_size: a number with an optional k/K or m/M suffix (bytes).
std::optional<int64_t> parseNginxSize(std::string_view text);

// ngx_parse_offset: like a size, g/G allowed too.
std::optional<int64_t> parseNginxOffset(std::string_view text);

// ngx_parse_time: "1h30m", "500ms", "75", "1y 2M"... `seconds` selects the seconds form (y, M
// allowed, ms not) over the milliseconds form (ms allowed; y and M rejected, as nginx does).
// Returns seconds or milliseconds accordingly.
std::optional<int64_t> parseNginxTime(std::string_view text, bool seconds);

}  // namespace portico::config
