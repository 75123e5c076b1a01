#include "config/headers_module.h"

#include <string>
#include <string_view>

#include "config/conf_values.h"

namespace portico::config {
namespace {

AddHeader headerLine(const DirectiveCall& call) {
  AddHeader header;
  header.name = call.arg(0);
  header.value = call.arg(1);
  if (call.args().size() == 3) {
    if (call.arg(2) != "always") call.emerg("invalid parameter " + quote(call.arg(2)));
    header.always = true;
  }
  return header;
}

void addHeader(const DirectiveCall& call, HeadersPartial& level) {
  if (!level.addHeaders) level.addHeaders.emplace();
  level.addHeaders->push_back(headerLine(call));
}

void addTrailer(const DirectiveCall& call, HeadersPartial& level) {
  if (!level.addTrailers) level.addTrailers.emplace();
  level.addTrailers->push_back(headerLine(call));
}

// ngx_http_headers_expires: `expires [modified] VALUE`; a value with variables is parsed per
// response.
void expires(const DirectiveCall& call, HeadersPartial& level) {
  call.checkUnset(level.expires);
  Expires e;
  e.kind = Expires::Kind::kAfter;
  if (call.args().size() == 2) {
    if (call.arg(0) != "modified") call.directiveError("invalid value");
    e.kind = Expires::Kind::kModified;
  }
  const std::string& v = call.args().back();
  if (v.find('$') != std::string::npos) {
    e.variable = true;
    e.value = v;
  } else if (auto error = parseExpires(v, e)) {
    call.directiveError(*error);
  }
  level.expires = e;
}

}  // namespace

std::optional<std::string> parseExpires(std::string_view v, Expires& e) {
  if (e.kind != Expires::Kind::kModified) {
    if (v == "epoch") {
      e.kind = Expires::Kind::kEpoch;
      return std::nullopt;
    }
    if (v == "max") {
      e.kind = Expires::Kind::kMax;
      return std::nullopt;
    }
    if (v == "off") {
      e.kind = Expires::Kind::kOff;
      return std::nullopt;
    }
  }
  bool minus = false;
  if (!v.empty() && v[0] == '@') {
    v.remove_prefix(1);
    if (e.kind == Expires::Kind::kModified) {
      return "daily time cannot be used with \"modified\" parameter";
    }
    e.kind = Expires::Kind::kDaily;
  } else if (!v.empty() && (v[0] == '+' || v[0] == '-')) {
    minus = v[0] == '-';
    v.remove_prefix(1);
  }
  auto s = parseNginxTime(v, true);
  if (!s) return "invalid value";
  if (e.kind == Expires::Kind::kDaily && *s > 24 * 60 * 60) {
    return "daily time value must be less than 24 hours";
  }
  e.seconds = minus ? -*s : *s;
  return std::nullopt;
}

const std::vector<ModuleDirective<HeadersPartial>>& headersDirectives() {
  static const std::vector<ModuleDirective<HeadersPartial>> kDirectives = {
      {"add_header", kHsl | kLocationIf, Args::k23, &addHeader},
      {"add_trailer", kHsl | kLocationIf, Args::k23, &addTrailer},
      {"expires", kHsl | kLocationIf, Args::k12, &expires},
  };
  return kDirectives;
}

void mergeHeaders(HeadersPartial& child, const HeadersPartial& parent) {
  inherit(child.addHeaders, parent.addHeaders);
  inherit(child.addTrailers, parent.addTrailers);
  inherit(child.expires, parent.expires);
}

void finishHeaders(const HeadersPartial& level, LocationSettings& settings) {
  if (level.addHeaders) settings.addHeaders = *level.addHeaders;
  if (level.addTrailers) settings.addTrailers = *level.addTrailers;
  if (level.expires) settings.expires = *level.expires;
}

}  // namespace portico::config
