#include "config/access_conf.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "config/conf_module.h"
#include "config/conf_values.h"

namespace portico::config {
namespace {

constexpr std::string_view kNames[] = {
    "allow",           "deny",           "satisfy",           "auth_basic",
    "auth_basic_user_file", "auth_delay", "set_real_ip_from", "real_ip_header",
    "real_ip_recursive", "autoindex",    "autoindex_exact_size", "autoindex_localtime",
    "autoindex_format", "stub_status",  "prometheus_metrics", "health_live",
    "health_ready",    "portico_status",
};

std::string duplicate(std::string_view name) { return quote(name) + " directive is duplicate"; }

// ngx_conf_set_flag_slot.
std::optional<std::string> setFlag(std::string_view name, const std::string& value,
                                   std::optional<bool>& slot) {
  if (slot) return duplicate(name);
  if (iequals(value, "on")) {
    slot = true;
  } else if (iequals(value, "off")) {
    slot = false;
  } else {
    return "invalid value " + quote(value) + " in " + quote(name) +
           " directive, it must be \"on\" or \"off\"";
  }
  return std::nullopt;
}

// set_real_ip_from HOST: nginx resolves the name at load time (every address, all bits).
std::optional<std::string> resolveHost(const std::string& host, std::vector<Cidr>& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &list) != 0 || list == nullptr) {
    return "host not found in set_real_ip_from " + quote(host);
  }
  for (addrinfo* a = list; a; a = a->ai_next) {
    Cidr c;
    c.family = a->ai_family;
    if (a->ai_family == AF_INET) {
      std::memcpy(c.addr.data(), &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, 4);
      std::memset(c.mask.data(), 0xff, 4);
    } else if (a->ai_family == AF_INET6) {
      std::memcpy(c.addr.data(), &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, 16);
      std::memset(c.mask.data(), 0xff, 16);
    } else {
      continue;
    }
    out.push_back(c);
  }
  ::freeaddrinfo(list);
  return std::nullopt;
}

}  // namespace

bool isAccessDirective(std::string_view name) {
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

std::optional<std::string> applyAccessDirective(std::string_view name,
                                                const std::vector<std::string>& args,
                                                AccessPartial& p,
                                                std::vector<std::string>& warnings) {
  const std::string& v = args.empty() ? std::string() : args[0];
  if (name == "allow" || name == "deny") {
    AccessRule rule;
    rule.deny = name == "deny";
    if (v == "all") {
      rule.all = true;
    } else if (v == "unix:") {
      rule.cidr.family = AF_UNIX;
    } else {
      CidrParse rc = parseCidr(v, rule.cidr);
      if (rc == CidrParse::kError) return "invalid parameter " + quote(v);
      if (rc == CidrParse::kLowBits) warnings.push_back("low address bits of " + v + " are meaningless");
    }
    if (!p.rules) p.rules.emplace();
    p.rules->push_back(rule);
    return std::nullopt;
  }
  if (name == "satisfy") {
    if (p.satisfyAny) return duplicate(name);
    if (iequals(v, "all")) {
      p.satisfyAny = false;
    } else if (iequals(v, "any")) {
      p.satisfyAny = true;
    } else {
      return "invalid value " + quote(v);
    }
    return std::nullopt;
  }
  if (name == "auth_basic") {
    if (p.authBasic) return duplicate(name);
    p.authBasic = v;
    return std::nullopt;
  }
  if (name == "auth_basic_user_file") {
    if (p.authBasicUserFile) return duplicate(name);
    p.authBasicUserFile = v;
    return std::nullopt;
  }
  if (name == "auth_delay") {
    if (p.authDelayMs) return duplicate(name);
    auto ms = parseNginxTime(v, false);
    if (!ms) return quote(name) + " directive invalid value";
    p.authDelayMs = static_cast<uint64_t>(*ms);
    return std::nullopt;
  }
  if (name == "set_real_ip_from") {
    if (!p.realIpFrom) p.realIpFrom.emplace();
    Cidr c;
    if (v == "unix:") {
      c.family = AF_UNIX;
      p.realIpFrom->push_back(c);
      return std::nullopt;
    }
    CidrParse rc = parseCidr(v, c);
    if (rc != CidrParse::kError) {
      if (rc == CidrParse::kLowBits) warnings.push_back("low address bits of " + v + " are meaningless");
      p.realIpFrom->push_back(c);
      return std::nullopt;
    }
    return resolveHost(v, *p.realIpFrom);
  }
  if (name == "real_ip_header") {
    if (p.realIpHeader) return duplicate(name);
    if (v == "X-Real-IP") {
      p.realIpHeader = RealIpHeader::kXRealIp;
    } else if (v == "X-Forwarded-For") {
      p.realIpHeader = RealIpHeader::kXForwardedFor;
    } else if (v == "proxy_protocol") {
      p.realIpHeader = RealIpHeader::kProxyProtocol;
    } else {
      p.realIpHeader = RealIpHeader::kOther;
      p.realIpHeaderName = v;
    }
    return std::nullopt;
  }
  if (name == "real_ip_recursive") return setFlag(name, v, p.realIpRecursive);
  if (name == "autoindex") return setFlag(name, v, p.autoindex);
  if (name == "autoindex_exact_size") return setFlag(name, v, p.autoindexExactSize);
  if (name == "autoindex_localtime") return setFlag(name, v, p.autoindexLocaltime);
  if (name == "autoindex_format") {
    if (p.autoindexFormat) return duplicate(name);
    static const std::pair<std::string_view, AutoindexFormat> kFormats[] = {
        {"html", AutoindexFormat::kHtml},
        {"xml", AutoindexFormat::kXml},
        {"json", AutoindexFormat::kJson},
        {"jsonp", AutoindexFormat::kJsonp},
    };
    for (const auto& [text, format] : kFormats) {
      if (iequals(v, text)) {
        p.autoindexFormat = format;
        return std::nullopt;
      }
    }
    return "invalid value " + quote(v);
  }
  if (name == "stub_status") {
    // 1.22 still takes (and ignores) the argument of the old `stub_status on;` form.
    p.stubStatus = true;
    return std::nullopt;
  }
  if (name == "prometheus_metrics" || name == "health_live" || name == "health_ready" ||
      name == "portico_status") {
    ServiceEndpoint e = name == "prometheus_metrics" ? ServiceEndpoint::kMetrics
                        : name == "health_live"      ? ServiceEndpoint::kLive
                        : name == "health_ready"     ? ServiceEndpoint::kReady
                                                     : ServiceEndpoint::kStatus;
    if (p.endpoint == e) return duplicate(name);
    if (p.endpoint != ServiceEndpoint::kNone) {
      return quote(name) + " conflicts with another service endpoint in this location";
    }
    p.endpoint = e;
    return std::nullopt;
  }
  return "unknown directive " + quote(name);
}

void mergeAccess(AccessPartial& c, const AccessPartial& p) {
  inherit(c.rules, p.rules);
  inherit(c.satisfyAny, p.satisfyAny);
  inherit(c.authBasic, p.authBasic);
  inherit(c.authBasicUserFile, p.authBasicUserFile);
  inherit(c.authDelayMs, p.authDelayMs);
  inherit(c.realIpFrom, p.realIpFrom);
  if (!c.realIpHeader && p.realIpHeader) {
    c.realIpHeader = p.realIpHeader;
    c.realIpHeaderName = p.realIpHeaderName;
  }
  inherit(c.realIpRecursive, p.realIpRecursive);
  inherit(c.autoindex, p.autoindex);
  inherit(c.autoindexExactSize, p.autoindexExactSize);
  inherit(c.autoindexLocaltime, p.autoindexLocaltime);
  inherit(c.autoindexFormat, p.autoindexFormat);
}

AccessSettings finalizeAccess(const AccessPartial& p, const std::string& confPrefix) {
  AccessSettings s;
  if (p.rules) s.rules = *p.rules;
  s.satisfyAny = p.satisfyAny.value_or(false);
  s.authBasic = p.authBasic;
  s.authBasicUserFile = p.authBasicUserFile;
  s.confPrefix = confPrefix;
  // A constant relative path is made absolute here (nginx: at load time, ngx_conf_full_name).
  if (s.authBasicUserFile && !s.authBasicUserFile->empty() &&
      (*s.authBasicUserFile)[0] != '/' && s.authBasicUserFile->find('$') == std::string::npos) {
    s.authBasicUserFile = confPrefix + *s.authBasicUserFile;
  }
  s.authDelayMs = p.authDelayMs.value_or(0);
  s.realIpFrom = p.realIpFrom;
  s.realIpHeader = p.realIpHeader.value_or(RealIpHeader::kXRealIp);
  s.realIpHeaderName = p.realIpHeaderName;
  s.realIpRecursive = p.realIpRecursive.value_or(false);
  s.autoindex = p.autoindex.value_or(false);
  s.autoindexExactSize = p.autoindexExactSize.value_or(true);
  s.autoindexLocaltime = p.autoindexLocaltime.value_or(false);
  s.autoindexFormat = p.autoindexFormat.value_or(AutoindexFormat::kHtml);
  s.stubStatus = p.stubStatus;
  s.endpoint = p.endpoint;
  return s;
}

}  // namespace portico::config
