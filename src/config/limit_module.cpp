#include "config/limit_module.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace portico::config {
namespace {

void zone(const DirectiveCall& call, LimitLoad& load, LimitPartial&) {
  bool req = call.name() == "limit_req_zone";
  if (call.args().size() != (req ? 3u : 2u)) {
    call.emerg("invalid number of arguments in " + quote(call.name()) + " directive");
  }
  LimitZoneSpec spec;
  spec.source = call.directive().source;
  std::string error = parseLimitZone(call.name(), call.args(),
                                     req ? LimitZoneSpec::Kind::kReq : LimitZoneSpec::Kind::kConn,
                                     load.table, load.declared, spec);
  if (!error.empty()) call.emerg(error);
  load.declared.push_back(std::move(spec));
}

void rule(const DirectiveCall& call, LimitLoad& load, LimitPartial& level) {
  std::string error;
  if (call.name() == "limit_req") {
    if (call.args().size() > 3) {
      call.emerg("invalid number of arguments in \"limit_req\" directive");
    }
    if (!level.req) level.req.emplace();
    error = parseLimitReq(call.args(), load.table, *level.req);
  } else {
    if (call.args().size() != 2) {
      call.emerg("invalid number of arguments in \"limit_conn\" directive");
    }
    if (!level.conn) level.conn.emplace();
    error = parseLimitConn(call.args(), load.table, *level.conn);
  }
  if (error.starts_with("is ")) call.directiveError(error);
  if (!error.empty()) call.emerg(error);
}

void status(const DirectiveCall& call, LimitLoad&, LimitPartial& level) {
  std::optional<int>& slot = call.name() == "limit_req_status" ? level.reqStatus : level.connStatus;
  call.checkUnset(slot);
  int64_t n = call.number(call.arg(0));
  if (n < 400 || n > 599) call.emerg("value must be between 400 and 599");
  slot = static_cast<int>(n);
}

void logLevel(const DirectiveCall& call, LimitLoad&, LimitPartial& level) {
  std::optional<LimitLogLevel>& slot =
      call.name() == "limit_req_log_level" ? level.reqLogLevel : level.connLogLevel;
  call.checkUnset(slot);
  slot = static_cast<LimitLogLevel>(call.enumValue({"info", "notice", "warn", "error"}));
}

void dryRun(const DirectiveCall& call, LimitLoad&, LimitPartial& level) {
  call.setFlag(call.name() == "limit_req_dry_run" ? level.reqDryRun : level.connDryRun);
}

}  // namespace

const std::vector<ModuleLoadDirective<LimitPartial, LimitLoad>>& limitDirectives() {
  static const std::vector<ModuleLoadDirective<LimitPartial, LimitLoad>> kDirectives = {
      {"limit_req_zone", kHttp, Args::k2More, &zone},
      {"limit_req", kHsl, Args::k1More, &rule},
      {"limit_conn_zone", kHttp, Args::k2More, &zone},
      {"limit_conn", kHsl, Args::k2More, &rule},
      {"limit_req_status", kHsl, Args::k1, &status},
      {"limit_req_log_level", kHsl, Args::k1, &logLevel},
      {"limit_req_dry_run", kHsl, Args::k1, &dryRun},
      {"limit_conn_status", kHsl, Args::k1, &status},
      {"limit_conn_log_level", kHsl, Args::k1, &logLevel},
      {"limit_conn_dry_run", kHsl, Args::k1, &dryRun},
  };
  return kDirectives;
}

void finishLimitLoad(const LimitLoad& load, HttpSite& site) {
  if (std::string error = load.table.checkSizes(); !error.empty()) {
    throw ConfFailure{"[emerg] " + error};
  }
  site.limitZones = load.declared;
}

}  // namespace portico::config
