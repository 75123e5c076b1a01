#include "config/conf_limit.h"

#include <limits>

#include "config/conf_values.h"

namespace portico::config {

namespace {

std::string quote(const std::string& s) { return "\"" + s + "\""; }

// ngx_atoi over a part of a value: a non-negative decimal number, nullopt for anything else.
std::optional<int64_t> atoi(std::string_view text) {
  if (text.empty()) return std::nullopt;
  return parseNginxNumber(text);
}

}  // namespace

void mergeLimit(LimitPartial& c, const LimitPartial& p) {
  inherit(c.req, p.req);
  inherit(c.reqStatus, p.reqStatus);
  inherit(c.reqLogLevel, p.reqLogLevel);
  inherit(c.reqDryRun, p.reqDryRun);
  inherit(c.conn, p.conn);
  inherit(c.connStatus, p.connStatus);
  inherit(c.connLogLevel, p.connLogLevel);
  inherit(c.connDryRun, p.connDryRun);
}

LimitSettings finalizeLimit(const LimitPartial& p) {
  LimitSettings s;
  if (p.req) s.req = *p.req;
  if (p.reqStatus) s.reqStatus = *p.reqStatus;
  if (p.reqLogLevel) s.reqLogLevel = *p.reqLogLevel;
  if (p.reqDryRun) s.reqDryRun = *p.reqDryRun;
  if (p.conn) s.conn = *p.conn;
  if (p.connStatus) s.connStatus = *p.connStatus;
  if (p.connLogLevel) s.connLogLevel = *p.connLogLevel;
  if (p.connDryRun) s.connDryRun = *p.connDryRun;
  return s;
}

std::string LimitZoneTable::add(const std::string& name, LimitZoneSpec::Kind kind,
                                uint64_t size) {
  for (Entry& e : zones_) {
    if (e.name != name) continue;
    if (e.kind != kind) {
      return "the shared memory zone " + quote(name) + " is already declared for a different use";
    }
    if (e.size == 0) e.size = size;
    if (size != 0 && size != e.size) {
      return "the size " + std::to_string(size) + " of shared memory zone " + quote(name) +
             " conflicts with already declared size " + std::to_string(e.size);
    }
    return {};
  }
  zones_.push_back({name, kind, size});
  return {};
}

std::string LimitZoneTable::checkSizes() const {
  for (const Entry& e : zones_) {
    if (e.size == 0) return "zero size shared memory zone " + quote(e.name);
  }
  return {};
}

std::string parseLimitZone(const std::string& directive, const std::vector<std::string>& args,
                           LimitZoneSpec::Kind kind, LimitZoneTable& zones,
                           const std::vector<LimitZoneSpec>& declared, LimitZoneSpec& out) {
  out.kind = kind;
  out.key = args[0];
  out.name.clear();
  int64_t size = 0, rate = 1, scale = 1;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& v = args[i];
    if (v.starts_with("zone=")) {
      size_t colon = v.find(':', 5);
      if (colon == std::string::npos) return "invalid zone size " + quote(v);
      out.name = v.substr(5, colon - 5);
      std::optional<int64_t> parsed = parseNginxSize(std::string_view(v).substr(colon + 1));
      if (!parsed) return "invalid zone size " + quote(v);
      size = *parsed;
      if (size < 8 * 4096) return "zone " + quote(v) + " is too small";
      continue;
    }
    if (kind == LimitZoneSpec::Kind::kReq && v.starts_with("rate=")) {
      std::string_view number = std::string_view(v).substr(5);
      if (number.ends_with("r/s")) {
        scale = 1;
        number.remove_suffix(3);
      } else if (number.ends_with("r/m")) {
        scale = 60;
        number.remove_suffix(3);
      }
      std::optional<int64_t> parsed = atoi(number);
      if (!parsed || *parsed <= 0) return "invalid rate " + quote(v);
      rate = *parsed;
      continue;
    }
    return "invalid parameter " + quote(v);
  }
  if (out.name.empty()) return quote(directive) + " must have \"zone\" parameter";
  out.size = static_cast<uint64_t>(size);
  out.rate = static_cast<uint64_t>(rate * 1000 / scale);
  std::string error = zones.add(out.name, kind, out.size);
  if (!error.empty()) return error;
  for (const LimitZoneSpec& zone : declared) {
    if (zone.name == out.name && zone.kind == kind) {
      return directive + " " + quote(out.name) + " is already bound to key " + quote(zone.key);
    }
  }
  return {};
}

std::string parseLimitReq(const std::vector<std::string>& args, LimitZoneTable& zones,
                          std::vector<LimitReqRule>& rules) {
  LimitReqRule rule;
  bool haveZone = false;
  int64_t burst = 0, delay = 0;
  for (const std::string& v : args) {
    if (v.starts_with("zone=")) {
      rule.zone = v.substr(5);
      std::string error = zones.add(rule.zone, LimitZoneSpec::Kind::kReq, 0);
      if (!error.empty()) return error;
      haveZone = true;
      continue;
    }
    if (v.starts_with("burst=")) {
      std::optional<int64_t> n = atoi(std::string_view(v).substr(6));
      if (!n || *n <= 0) return "invalid burst value " + quote(v);
      burst = *n;
      continue;
    }
    if (v.starts_with("delay=")) {
      std::optional<int64_t> n = atoi(std::string_view(v).substr(6));
      if (!n || *n <= 0) return "invalid delay value " + quote(v);
      delay = *n;
      continue;
    }
    if (v == "nodelay") {
      delay = std::numeric_limits<int64_t>::max() / 1000;  // NGX_MAX_INT_T_VALUE / 1000
      continue;
    }
    return "invalid parameter " + quote(v);
  }
  if (!haveZone) return "\"limit_req\" must have \"zone\" parameter";
  for (const LimitReqRule& r : rules) {
    if (r.zone == rule.zone) return "is duplicate";
  }
  rule.burst = static_cast<uint64_t>(burst) * 1000;
  rule.delay = static_cast<uint64_t>(delay) * 1000;
  rules.push_back(std::move(rule));
  return {};
}

std::string parseLimitConn(const std::vector<std::string>& args, LimitZoneTable& zones,
                           std::vector<LimitConnRule>& rules) {
  LimitConnRule rule;
  rule.zone = args[0];
  std::string error = zones.add(rule.zone, LimitZoneSpec::Kind::kConn, 0);
  if (!error.empty()) return error;
  for (const LimitConnRule& r : rules) {
    if (r.zone == rule.zone) return "is duplicate";
  }
  std::optional<int64_t> n = atoi(args[1]);
  if (!n || *n <= 0) return "invalid number of connections " + quote(args[1]);
  if (*n > 65535) return "connection limit must be less 65536";
  rule.conn = static_cast<uint32_t>(*n);
  rules.push_back(std::move(rule));
  return {};
}

}  // namespace portico::config
