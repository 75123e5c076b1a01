#pragma once

// The directives of nginx's limit_req and limit_conn modules, parsed as nginx parses them
// (ngx_http_limit_req_module.c, ngx_http_limit_conn_module.c) and checked against nginx's list
// of shared memory zones (ngx_shared_memory_add). Pure: limit_module calls these with a
// directive's arguments and reports a returned message with the directive's FILE:LINE.

#include <optional>
#include <string>
#include <vector>

#include "config/site.h"

namespace portico::config {

// One level's limit_* directives before merging; conf_builder's Partial holds one.
struct LimitPartial {
  std::optional<std::vector<LimitReqRule>> req;
  std::optional<int> reqStatus;
  std::optional<LimitLogLevel> reqLogLevel;
  std::optional<bool> reqDryRun;
  std::optional<std::vector<LimitConnRule>> conn;
  std::optional<int> connStatus;
  std::optional<LimitLogLevel> connLogLevel;
  std::optional<bool> connDryRun;
};

// nginx's merge: what the child did not set comes from the (merged) parent.
void mergeLimit(LimitPartial& child, const LimitPartial& parent);
LimitSettings finalizeLimit(const LimitPartial& partial);

// nginx's list of shared memory zones as the configuration declares (size > 0) and references
// (size 0) them. One per load.
class LimitZoneTable {
 public:
  // ngx_shared_memory_add: "" or nginx's message (a zone of another module, a size conflict).
  std::string add(const std::string& name, LimitZoneSpec::Kind kind, uint64_t size);
  // After the whole file: `zero size shared memory zone "NAME"` for a zone only referenced.
  std::string checkSizes() const;

 private:
  struct Entry {
    std::string name;
    LimitZoneSpec::Kind kind;
    uint64_t size;
  };
  std::vector<Entry> zones_;
};

// `limit_req_zone KEY zone=NAME:SIZE rate=RATE` / `limit_conn_zone KEY zone=NAME:SIZE`
// (args without the directive name): fills `out` (declared in `zones`), or nginx's message.
// `declared` are the zones of the same directive so far (for "is already bound to key").
std::string parseLimitZone(const std::string& directive, const std::vector<std::string>& args,
                           LimitZoneSpec::Kind kind, LimitZoneTable& zones,
                           const std::vector<LimitZoneSpec>& declared, LimitZoneSpec& out);
// `limit_req zone=NAME [burst=N] [nodelay | delay=N]`: appends to `rules`, or nginx's message
// (a returned text starting with "is " is nginx's `"limit_req" directive is duplicate`).
std::string parseLimitReq(const std::vector<std::string>& args, LimitZoneTable& zones,
                          std::vector<LimitReqRule>& rules);
// `limit_conn ZONE N`: appends to `rules`, or nginx's message (as parseLimitReq).
std::string parseLimitConn(const std::vector<std::string>& args, LimitZoneTable& zones,
                           std::vector<LimitConnRule>& rules);

}  // namespace portico::config
