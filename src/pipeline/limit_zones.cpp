#include "pipeline/limit_zones.h"

#include "core/log.h"

namespace portico::pipeline {

namespace {

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

LogLevel toLogLevel(config::LimitLogLevel level) {
  switch (level) {
    case config::LimitLogLevel::kError: return LogLevel::kError;
    case config::LimitLogLevel::kWarn: return LogLevel::kWarning;
    case config::LimitLogLevel::kNotice: return LogLevel::kNotice;
    case config::LimitLogLevel::kInfo: return LogLevel::kInfo;
  }
  return LogLevel::kError;
}

// nginx logs a delay one level below the rejections (error → warn → notice → info).
config::LimitLogLevel delayLevel(config::LimitLogLevel level) {
  switch (level) {
    case config::LimitLogLevel::kError: return config::LimitLogLevel::kWarn;
    case config::LimitLogLevel::kWarn: return config::LimitLogLevel::kNotice;
    default: return config::LimitLogLevel::kInfo;
  }
}

// What ngx_http_log_error appends to a request's error log line.
std::string requestContext(const http::VariableContext& vars) {
  std::string out = ", client: ";
  if (vars.connection) out += vars.connection->isUnix ? "unix:" : vars.connection->peerAddress;
  out += ", server: ";
  out += vars.serverName;
  if (const http::Request* r = vars.request) {
    out += ", request: \"" + r->method + " " + r->target + " " + std::string(r->versionString()) +
           "\"";
    if (const std::string* host = r->header("Host")) out += ", host: " + quote(*host);
    if (const std::string* referer = r->header("Referer")) out += ", referrer: " + quote(*referer);
  }
  return out;
}

// nginx's "%ui.%03ui" of milli-requests.
std::string milli(uint64_t excess) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%llu.%03llu",
                static_cast<unsigned long long>(excess / 1000),
                static_cast<unsigned long long>(excess % 1000));
  return buffer;
}

void log(config::LimitLogLevel level, const std::string& message) {
  ErrorLog::instance().write(toLogLevel(level), message);
}

}  // namespace

LimitZones::~LimitZones() = default;

std::shared_ptr<LimitZones>& LimitZones::installed() {
  static std::shared_ptr<LimitZones> zones;
  return zones;
}

std::shared_ptr<LimitZones> LimitZones::create(const config::HttpSite& site,
                                               const LimitZones* previous, std::string& error) {
  auto set = std::make_shared<LimitZones>();
  for (const config::LimitZoneSpec& spec : site.limitZones) {
    Zone zone;
    zone.spec = spec;
    const Zone* old = nullptr;
    if (previous) {
      auto it = previous->zones_.find(spec.name);
      if (it != previous->zones_.end() && it->second.spec.kind == spec.kind &&
          it->second.spec.size == spec.size) {
        old = &it->second;
      }
    }
    if (old) {
      if (old->spec.key != spec.key) {
        error = std::string(spec.kind == config::LimitZoneSpec::Kind::kReq ? "limit_req"
                                                                           : "limit_conn_zone") +
                " " + quote(spec.name) + " uses the " + quote(spec.key) +
                " key while previously it used the " + quote(old->spec.key) + " key";
        return nullptr;
      }
      zone.mapping = old->mapping;
    } else {
      // nginx sizes a zone as asked; its slab pool's bookkeeping comes out of that size too.
      zone.mapping = SharedMemory::create(spec.size, error);
      if (!zone.mapping) return nullptr;
      http::LimitZone::format(zone.mapping->base(), spec.size,
                              spec.kind == config::LimitZoneSpec::Kind::kReq
                                  ? http::LimitZone::Kind::kReq
                                  : http::LimitZone::Kind::kConn);
    }
    zone.view = std::make_unique<http::LimitZone>(zone.mapping->base());
    set->zones_[spec.name] = std::move(zone);
  }
  return set;
}

http::LimitZone* LimitZones::find(const std::string& name) const {
  auto it = zones_.find(name);
  return it == zones_.end() ? nullptr : it->second.view.get();
}

const config::LimitZoneSpec* LimitZones::spec(const std::string& name) const {
  auto it = zones_.find(name);
  return it == zones_.end() ? nullptr : &it->second.spec;
}

bool LimitCompiler::build(const config::HttpSite& site, std::string& error) {
  if (site.limitZones.empty()) return true;
  zones_ = LimitZones::installed();
  bool complete = zones_ != nullptr;
  for (const config::LimitZoneSpec& spec : site.limitZones) {
    if (complete && (!zones_->spec(spec.name) || zones_->spec(spec.name)->size != spec.size ||
                     zones_->spec(spec.name)->kind != spec.kind)) {
      complete = false;
    }
  }
  // A server not forked by a master (tests) maps zones of its own.
  if (!complete) zones_ = LimitZones::create(site, nullptr, error);
  if (!zones_) return false;
  for (const config::LimitZoneSpec& spec : site.limitZones) {
    std::string message;
    std::optional<http::Template> key = http::Template::compile(spec.key, message);
    if (!key) {
      error = message + " in " + spec.source.file + ":" + std::to_string(spec.source.line);
      return false;
    }
    keys_.emplace(spec.name, std::move(*key));
  }
  return true;
}

const LocationLimits* LimitCompiler::compile(const config::LimitSettings& settings,
                                             std::string& error) {
  if (settings.req.empty() && settings.conn.empty()) return nullptr;
  auto limits = std::make_unique<LocationLimits>();
  limits->settings = &settings;
  auto lookup = [&](const std::string& name, http::LimitZone*& zone,
                    const config::LimitZoneSpec*& spec, const http::Template*& key) {
    zone = zones_ ? zones_->find(name) : nullptr;
    spec = zones_ ? zones_->spec(name) : nullptr;
    auto it = keys_.find(name);
    if (!zone || !spec || it == keys_.end()) {
      error = "zero size shared memory zone " + quote(name);
      return false;
    }
    key = &it->second;
    return true;
  };
  for (const config::LimitReqRule& rule : settings.req) {
    LocationLimits::Req req{};
    if (!lookup(rule.zone, req.zone, req.spec, req.key)) return nullptr;
    req.burst = rule.burst;
    req.delay = rule.delay;
    limits->req.push_back(req);
  }
  for (const config::LimitConnRule& rule : settings.conn) {
    LocationLimits::Conn conn{};
    if (!lookup(rule.zone, conn.zone, conn.spec, conn.key)) return nullptr;
    conn.conn = rule.conn;
    limits->conn.push_back(conn);
  }
  limits_.push_back(std::move(limits));
  return limits_.back().get();
}

LimitRequestState::Outcome LimitRequestState::run(const LocationLimits& limits,
                                                  const http::VariableContext& vars,
                                                  uint64_t nowMs) {
  Outcome outcome;
  const config::LimitSettings& s = *limits.settings;
  if (reqStatus_.empty() && !limits.req.empty()) {
    std::vector<http::LimitReqCheck> checks;
    checks.reserve(limits.req.size());
    for (const LocationLimits::Req& r : limits.req) {
      checks.push_back({r.zone, r.spec->rate, r.burst, r.delay, r.key->expand(vars)});
    }
    for (size_t i = 0; i < checks.size(); ++i) {
      if (checks[i].key.size() > 65535) {
        logError("the value of the " + quote(limits.req[i].spec->key) +
                 " key is more than 65535 bytes: " + quote(checks[i].key) + requestContext(vars));
      }
    }
    using K = http::LimitReqVerdict::Kind;
    http::LimitReqVerdict v = http::evaluateLimitReq(checks, nowMs);
    const std::string& zone = limits.req[v.limit].spec->name;
    switch (v.kind) {
      case K::kDeclined:
        break;
      case K::kPassed:
        reqStatus_ = "PASSED";
        break;
      case K::kRejected:
      case K::kNoMemory:
        if (v.kind == K::kRejected) {
          log(s.reqLogLevel, std::string("limiting requests") + (s.reqDryRun ? ", dry run" : "") +
                                 ", excess: " + milli(v.excess) + " by zone " + quote(zone) +
                                 requestContext(vars));
        } else {
          logCritical("could not allocate node in limit_req zone " + quote(zone));
        }
        if (s.reqDryRun) {
          reqStatus_ = "REJECTED_DRY_RUN";
          break;
        }
        reqStatus_ = "REJECTED";
        outcome.action = Outcome::Action::kReject;
        outcome.status = s.reqStatus;
        return outcome;
      case K::kDelayed:
        log(delayLevel(s.reqLogLevel), std::string("delaying request") +
                                           (s.reqDryRun ? ", dry run" : "") +
                                           ", excess: " + milli(v.excess) + ", by zone " +
                                           quote(zone) + requestContext(vars));
        if (s.reqDryRun) {
          reqStatus_ = "DELAYED_DRY_RUN";
          break;
        }
        reqStatus_ = "DELAYED";
        outcome.action = Outcome::Action::kDelay;
        outcome.delayMs = v.delayMs;
        return outcome;
    }
  }
  if (connStatus_.empty() && !limits.conn.empty()) {
    std::vector<http::LimitConnCheck> checks;
    checks.reserve(limits.conn.size());
    for (const LocationLimits::Conn& c : limits.conn) {
      checks.push_back({c.zone, c.conn, c.key->expand(vars)});
    }
    for (size_t i = 0; i < checks.size(); ++i) {
      if (checks[i].key.size() > 255) {
        logError("the value of the " + quote(limits.conn[i].spec->key) +
                 " key is more than 255 bytes: " + quote(checks[i].key) + requestContext(vars));
      }
    }
    using K = http::LimitConnVerdict::Kind;
    http::LimitConnVerdict v = http::evaluateLimitConn(checks);
    const std::string& zone = limits.conn[v.limit].spec->name;
    switch (v.kind) {
      case K::kDeclined:
        break;
      case K::kPassed:
        connStatus_ = "PASSED";
        held_.insert(held_.end(), v.held.begin(), v.held.end());
        break;
      case K::kRejected:
      case K::kNoMemory:
        if (v.kind == K::kRejected) {
          log(s.connLogLevel, std::string("limiting connections") +
                                  (s.connDryRun ? ", dry run," : "") + " by zone " + quote(zone) +
                                  requestContext(vars));
        } else {
          logCritical("ngx_slab_alloc() failed: no memory in limit_conn_zone " + quote(zone));
        }
        if (s.connDryRun) {
          connStatus_ = "REJECTED_DRY_RUN";
          break;
        }
        connStatus_ = "REJECTED";
        outcome.action = Outcome::Action::kReject;
        outcome.status = s.connStatus;
        return outcome;
    }
  }
  return outcome;
}

void LimitRequestState::release() {
  for (auto& [zone, node] : held_) zone->releaseConn(node);
  held_.clear();
}

}  // namespace portico::pipeline
