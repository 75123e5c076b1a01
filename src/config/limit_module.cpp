#include "config/limit_module.h"

#include <cstdint>
#include <optional>

namespace portico::config {
namespace {

void status(const DirectiveCall& call, LimitPartial& level) {
  std::optional<int>& slot = call.name() == "limit_req_status" ? level.reqStatus : level.connStatus;
  call.checkUnset(slot);
  int64_t n = call.number(call.arg(0));
  if (n < 400 || n > 599) call.emerg("value must be between 400 and 599");
  slot = static_cast<int>(n);
}

void logLevel(const DirectiveCall& call, LimitPartial& level) {
  std::optional<LimitLogLevel>& slot =
      call.name() == "limit_req_log_level" ? level.reqLogLevel : level.connLogLevel;
  call.checkUnset(slot);
  slot = static_cast<LimitLogLevel>(call.enumValue({"info", "notice", "warn", "error"}));
}

void dryRun(const DirectiveCall& call, LimitPartial& level) {
  call.setFlag(call.name() == "limit_req_dry_run" ? level.reqDryRun : level.connDryRun);
}

}  // namespace

const std::vector<ModuleDirective<LimitPartial>>& limitDirectives() {
  static const std::vector<ModuleDirective<LimitPartial>> kDirectives = {
      {"limit_req_status", kHsl, Args::k1, &status},
      {"limit_req_log_level", kHsl, Args::k1, &logLevel},
      {"limit_req_dry_run", kHsl, Args::k1, &dryRun},
      {"limit_conn_status", kHsl, Args::k1, &status},
      {"limit_conn_log_level", kHsl, Args::k1, &logLevel},
      {"limit_conn_dry_run", kHsl, Args::k1, &dryRun},
  };
  return kDirectives;
}

}  // namespace portico::config
