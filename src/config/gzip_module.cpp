#include "config/gzip_module.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "config/conf_values.h"

namespace portico::config {
namespace {

void enabled(const DirectiveCall& call, GzipPartial& level) { call.setFlag(level.enabled); }
void vary(const DirectiveCall& call, GzipPartial& level) { call.setFlag(level.vary); }

// ngx_http_types_slot: every gzip_types of a level adds up; text/html is always there.
void types(const DirectiveCall& call, GzipPartial& level) {
  auto& types = level.types;
  if (types && types->size() == 1 && (*types)[0] == "*") return;
  if (!types) types = std::vector<std::string>{"text/html"};
  for (const std::string& raw : call.args()) {
    if (raw == "*") {
      types = std::vector<std::string>{"*"};
      return;
    }
    std::string type = raw;
    for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (std::find(types->begin(), types->end(), type) != types->end()) {
      call.warn("duplicate MIME type " + quote(type));
      continue;
    }
    types->push_back(type);
  }
}

void compLevel(const DirectiveCall& call, GzipPartial& level) {
  call.checkUnset(level.level);
  int64_t n = call.number(call.arg(0));
  if (n < 1 || n > 9) call.emerg("value must be between 1 and 9");
  level.level = static_cast<int>(n);
}

void minLength(const DirectiveCall& call, GzipPartial& level) {
  call.checkUnset(level.minLength);
  auto v = parseNginxSize(call.arg(0));
  if (!v) call.directiveError("invalid value");
  level.minLength = *v;
}

void proxied(const DirectiveCall& call, GzipPartial& level) {
  static const std::set<std::string> kValues = {"off", "expired", "no-cache", "no-store",
                                                "private", "no_last_modified", "no_etag",
                                                "auth", "any"};
  if (!level.proxied) level.proxied.emplace();
  for (const std::string& v : call.args()) {
    if (!kValues.count(v)) call.emerg("invalid value " + quote(v));
    auto& list = *level.proxied;
    if (std::find(list.begin(), list.end(), v) != list.end()) {
      call.warn("duplicate value " + quote(v));
      continue;
    }
    list.push_back(v);
  }
}

void disable(const DirectiveCall& call, GzipPartial& level) {
  if (!level.disable) level.disable.emplace();
  for (const std::string& v : call.args()) {
    if (v != "msie6" && v != "degradation") call.checkRegex(v, true);
    if (v == "degradation") call.unsupported("gzip_disable \"degradation\"");
    level.disable->push_back(v);
  }
}

void buffers(const DirectiveCall& call, GzipPartial& level) {
  call.checkUnset(level.buffers);
  level.buffers = call.bufs();
}

void httpVersion(const DirectiveCall& call, GzipPartial& level) {
  call.checkUnset(level.httpVersionMinor);
  level.httpVersionMinor = static_cast<int>(call.enumValue({"1.0", "1.1"}));
}

void gzipStatic(const DirectiveCall& call, GzipPartial& level) {
  call.checkUnset(level.staticMode);
  static constexpr GzipSettings::Static kModes[] = {
      GzipSettings::Static::kOff, GzipSettings::Static::kOn, GzipSettings::Static::kAlways};
  level.staticMode = kModes[call.enumValue({"off", "on", "always"})];
}

}  // namespace

const std::vector<ModuleDirective<GzipPartial>>& gzipDirectives() {
  static const std::vector<ModuleDirective<GzipPartial>> kDirectives = {
      {"gzip", kHsl | kLocationIf, Args::k1, &enabled},
      {"gzip_types", kHsl, Args::k1More, &types},
      {"gzip_comp_level", kHsl, Args::k1, &compLevel},
      {"gzip_min_length", kHsl, Args::k1, &minLength},
      {"gzip_vary", kHsl, Args::k1, &vary},
      {"gzip_proxied", kHsl, Args::k1More, &proxied},
      {"gzip_disable", kHsl, Args::k1More, &disable},
      {"gzip_buffers", kHsl, Args::k2, &buffers},
      {"gzip_http_version", kHsl, Args::k1, &httpVersion},
      {"gzip_static", kHsl, Args::k1, &gzipStatic},
  };
  return kDirectives;
}

void mergeGzip(GzipPartial& child, const GzipPartial& parent) {
  inherit(child.enabled, parent.enabled);
  inherit(child.types, parent.types);
  inherit(child.level, parent.level);
  inherit(child.minLength, parent.minLength);
  inherit(child.vary, parent.vary);
  inherit(child.proxied, parent.proxied);
  inherit(child.disable, parent.disable);
  inherit(child.buffers, parent.buffers);
  inherit(child.httpVersionMinor, parent.httpVersionMinor);
  inherit(child.staticMode, parent.staticMode);
}

void finishGzip(const GzipPartial& level, GzipSettings& gzip) {
  if (level.enabled) gzip.enabled = *level.enabled;
  if (level.types) gzip.types = *level.types;
  if (level.level) gzip.level = *level.level;
  if (level.minLength) gzip.minLength = *level.minLength;
  if (level.vary) gzip.vary = *level.vary;
  if (level.proxied) gzip.proxied = *level.proxied;
  if (level.disable) gzip.disable = *level.disable;
  if (level.buffers) {
    gzip.buffersNumber = level.buffers->first;
    gzip.buffersSize = level.buffers->second;
  }
  if (level.httpVersionMinor) gzip.httpVersionMinor = *level.httpVersionMinor;
  if (level.staticMode) gzip.staticMode = *level.staticMode;
}

}  // namespace portico::config
