#pragma once

// The settings and directives of nginx's access-control and listing modules, as portico
// implements them: access (allow/deny), auth_basic (+ satisfy, auth_delay from the core),
// realip (set_real_ip_from, real_ip_header, real_ip_recursive), autoindex and stub_status.
// Each is a module (conf_module.h): access_module.h has their directive table, one partial
// (AccessPartial) holds what a level wrote for all five, mergeAccess and finalizeAccess are
// their merge and finish. One partial for five modules because applyAccessDirective, which
// parses them by name, is their tested interface (access_modules_test); site.h includes this
// header for the settings. Pure (no I/O but name resolution for set_real_ip_from HOST, as nginx
// at load time).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/cidr.h"

namespace portico::config {

// One allow/deny rule. `all` applies to every family (nginx adds it to each family's list).
struct AccessRule {
  Cidr cidr;
  bool all = false;
  bool deny = false;
};

enum class RealIpHeader { kXRealIp, kXForwardedFor, kProxyProtocol, kOther };
enum class AutoindexFormat { kHtml, kXml, kJson, kJsonp };
// portico's own service endpoints, each a location's content like stub_status:
// `prometheus_metrics;`, `health_live;`, `health_ready;`, `portico_status;`.
enum class ServiceEndpoint { kNone, kMetrics, kLive, kReady, kStatus };

// A location's effective access/auth/realip/autoindex/stub_status settings (merged), with
// portico's service endpoints (metrics, health).
struct AccessSettings {
  std::vector<AccessRule> rules;           // allow/deny in order; inherited only when none set
  bool satisfyAny = false;                 // satisfy all|any
  std::optional<std::string> authBasic;    // the realm (may hold variables; "off" disables)
  std::optional<std::string> authBasicUserFile;  // may hold variables
  std::string confPrefix;                  // a relative user file is beneath it (nginx's conf prefix)
  uint64_t authDelayMs = 0;
  std::optional<std::vector<Cidr>> realIpFrom;  // set_real_ip_from (nullopt: realip off)
  RealIpHeader realIpHeader = RealIpHeader::kXRealIp;
  std::string realIpHeaderName;            // for kOther
  bool realIpRecursive = false;
  bool autoindex = false;
  bool autoindexExactSize = true;
  bool autoindexLocaltime = false;
  AutoindexFormat autoindexFormat = AutoindexFormat::kHtml;
  bool stubStatus = false;                 // the content handler; not inherited
  ServiceEndpoint endpoint = ServiceEndpoint::kNone;  // a content handler too; not inherited
};

// What one level wrote; unset fields inherit.
struct AccessPartial {
  std::optional<std::vector<AccessRule>> rules;
  std::optional<bool> satisfyAny;
  std::optional<std::string> authBasic;
  std::optional<std::string> authBasicUserFile;
  std::optional<uint64_t> authDelayMs;
  std::optional<std::vector<Cidr>> realIpFrom;
  std::optional<RealIpHeader> realIpHeader;
  std::string realIpHeaderName;
  std::optional<bool> realIpRecursive;
  std::optional<bool> autoindex, autoindexExactSize, autoindexLocaltime;
  std::optional<AutoindexFormat> autoindexFormat;
  bool stubStatus = false;
  ServiceEndpoint endpoint = ServiceEndpoint::kNone;
};

// The directive names routed to applyAccessDirective.
bool isAccessDirective(std::string_view name);

// Applies one directive (arguments already counted by the builder's table) to `level`.
// Returns nginx's error text for a bad value (the builder adds " in FILE:LINE"), else nullopt;
// warnings (e.g. "low address bits of ... are meaningless") are appended to `warnings`.
std::optional<std::string> applyAccessDirective(std::string_view name,
                                                const std::vector<std::string>& args,
                                                AccessPartial& level,
                                                std::vector<std::string>& warnings);

void mergeAccess(AccessPartial& child, const AccessPartial& parent);
AccessSettings finalizeAccess(const AccessPartial& level, const std::string& confPrefix);

}  // namespace portico::config
