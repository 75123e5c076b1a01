#include "config/headers_module.h"

#include <string>
#include <string_view>

#include "config/conf_values.h"

namespace portico::config {
namespace {

void addHeader(const DirectiveCall& call, HeadersPartial& level) {
  AddHeader header;
  header.name = call.arg(0);
  header.value = call.arg(1);
  if (call.args().size() == 3) {
    if (call.arg(2) != "always") call.emerg("invalid parameter " + quote(call.arg(2)));
    header.always = true;
  }
  if (!level.addHeaders) level.addHeaders.emplace();
  level.addHeaders->push_back(header);
}

void expires(const DirectiveCall& call, HeadersPartial& level) {
  call.checkUnset(level.expires);
  if (call.args().size() == 2) {
    if (call.arg(0) != "modified") call.directiveError("invalid value");
    call.unsupported("\"expires modified\"");
  }
  const std::string& v = call.arg(0);
  Expires e;
  if (v == "epoch") {
    e.kind = Expires::Kind::kEpoch;
  } else if (v == "max") {
    e.kind = Expires::Kind::kMax;
  } else if (v == "off") {
    e.kind = Expires::Kind::kOff;
  } else {
    if (!v.empty() && v[0] == '@') call.unsupported("\"expires @time\"");
    if (!v.empty() && v[0] == '$') call.unsupported("a variable in the \"expires\" directive");
    bool minus = false;
    std::string_view t = v;
    if (!t.empty() && t[0] == '+') {
      t.remove_prefix(1);
    } else if (!t.empty() && t[0] == '-') {
      minus = true;
      t.remove_prefix(1);
    }
    auto s = parseNginxTime(t, true);
    if (!s) call.directiveError("invalid value");
    e.kind = Expires::Kind::kAfter;
    e.seconds = minus ? -*s : *s;
  }
  level.expires = e;
}

}  // namespace

const std::vector<ModuleDirective<HeadersPartial>>& headersDirectives() {
  static const std::vector<ModuleDirective<HeadersPartial>> kDirectives = {
      {"add_header", kHsl | kLocationIf, Args::k23, &addHeader},
      {"expires", kHsl | kLocationIf, Args::k12, &expires},
  };
  return kDirectives;
}

void mergeHeaders(HeadersPartial& child, const HeadersPartial& parent) {
  inherit(child.addHeaders, parent.addHeaders);
  inherit(child.expires, parent.expires);
}

void finishHeaders(const HeadersPartial& level, LocationSettings& settings) {
  if (level.addHeaders) settings.addHeaders = *level.addHeaders;
  if (level.expires) settings.expires = *level.expires;
}

}  // namespace portico::config
