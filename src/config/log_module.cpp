#include "config/log_module.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <cctype>
#include <string_view>
#include <utility>

#include "config/conf_values.h"

namespace portico::config {
namespace {

void logFormat(const DirectiveCall& call, LogLoad& load, LogPartial&) {
  const std::vector<std::string>& args = call.args();
  const std::string& name = args[0];
  if (name == "combined" || load.formats.count(name)) {
    call.emerg("duplicate \"log_format\" name " + quote(name));
  }
  LogFormat format;
  format.name = name;
  size_t i = 1;
  if (args.size() > 2 && args[1].size() > 7 && args[1].starts_with("escape=")) {
    std::string escape = args[1].substr(7);
    if (escape != "default" && escape != "json" && escape != "none") {
      call.emerg("unknown log format escaping " + quote(escape));
    }
    format.escape = escape;
    i = 2;
  }
  for (; i < args.size(); ++i) format.format += args[i];
  load.formats[name] = format;
}

// The address of a syslog server, resolved at load time as nginx's ngx_parse_url does.
void resolveSyslogServer(const DirectiveCall& call, const std::string& url, SyslogSpec& spec) {
  spec.server = url;
  if (url.starts_with("unix:")) {
    spec.unixPath = url.substr(5);
    if (spec.unixPath.empty()) {
      call.emerg("no path in the unix domain socket in syslog server " + quote(url));
    }
    return;
  }
  std::string host = url;
  std::string port;
  if (url.starts_with("[")) {
    size_t close = url.find(']');
    if (close == std::string::npos) call.emerg("invalid host in syslog server " + quote(url));
    host = url.substr(1, close - 1);
    if (close + 1 < url.size()) {
      if (url[close + 1] != ':') call.emerg("invalid host in syslog server " + quote(url));
      port = url.substr(close + 2);
    }
  } else if (size_t colon = url.rfind(':'); colon != std::string::npos) {
    host = url.substr(0, colon);
    port = url.substr(colon + 1);
  }
  if (!port.empty()) {
    auto n = parseNginxNumber(port);
    if (!n || *n < 1 || *n > 65535) call.emerg("invalid port in syslog server " + quote(url));
    spec.port = static_cast<uint16_t>(*n);
  }
  if (host.empty()) call.emerg("no host in syslog server " + quote(url));
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) {
    call.emerg("host not found in syslog server " + quote(url));
  }
  char text[INET6_ADDRSTRLEN] = {};
  if (res->ai_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr, text,
                sizeof text);
  } else {
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, text,
                sizeof text);
  }
  ::freeaddrinfo(res);
  spec.host = text;
}

// ngx_syslog_parse_args: "server=ADDR[:PORT],facility=..,severity=..,tag=..,nohostname".
SyslogSpec parseSyslog(const DirectiveCall& call, const std::string& args) {
  static constexpr std::string_view kFacilities[] = {
      "kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news", "uucp", "clock",
      "authpriv", "ftp", "ntp", "audit", "alert", "cron", "local0", "local1", "local2",
      "local3", "local4", "local5", "local6", "local7"};
  static constexpr std::string_view kSeverities[] = {"emerg", "alert", "crit", "error",
                                                     "warn", "notice", "info", "debug"};
  SyslogSpec spec;
  bool server = false, facility = false, severity = false, tag = false;
  size_t pos = 0;
  for (;;) {
    size_t comma = args.find(',', pos);
    std::string p = args.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (p.starts_with("server=")) {
      if (server) call.emerg("duplicate syslog \"server\"");
      server = true;
      resolveSyslogServer(call, p.substr(7), spec);
    } else if (p.starts_with("facility=")) {
      if (facility) call.emerg("duplicate syslog \"facility\"");
      facility = true;
      auto it = std::find(std::begin(kFacilities), std::end(kFacilities), p.substr(9));
      if (it == std::end(kFacilities)) call.emerg("unknown syslog facility " + quote(p.substr(9)));
      spec.facility = static_cast<int>(it - std::begin(kFacilities));
    } else if (p.starts_with("severity=")) {
      if (severity) call.emerg("duplicate syslog \"severity\"");
      severity = true;
      auto it = std::find(std::begin(kSeverities), std::end(kSeverities), p.substr(9));
      if (it == std::end(kSeverities)) call.emerg("unknown syslog severity " + quote(p.substr(9)));
      spec.severity = static_cast<int>(it - std::begin(kSeverities));
    } else if (p.starts_with("tag=")) {
      if (tag) call.emerg("duplicate syslog \"tag\"");
      tag = true;
      if (p.size() - 4 > 32) call.emerg("syslog tag length exceeds 32");
      for (size_t i = 4; i < p.size(); ++i) {
        char c = static_cast<char>(std::tolower(static_cast<unsigned char>(p[i])));
        if (c < '0' || (c > '9' && c < 'a' && c != '_') || c > 'z') {
          call.emerg("syslog \"tag\" only allows alphanumeric characters and underscore");
        }
      }
      spec.tag = p.substr(4);
    } else if (p == "nohostname") {
      spec.noHostname = true;
    } else {
      call.emerg("unknown syslog parameter " + quote(args.substr(pos)));
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (!server) call.emerg("no syslog server specified");
  return spec;
}

void accessLog(const DirectiveCall& call, LogLoad& load, LogPartial& level) {
  const std::vector<std::string>& args = call.args();
  if (!level.accessLogs) level.accessLogs.emplace();
  if (args[0] == "off") {
    if (args.size() != 1) call.emerg("invalid parameter " + quote(args[1]));
    level.accessLogs->clear();
    level.accessLogOff = true;
    return;
  }
  AccessLogSpec spec;
  if (args[0].starts_with("syslog:")) {
    spec.syslog = parseSyslog(call, args[0].substr(7));
  } else {
    spec.path = call.fullName(args[0]);
    spec.pathVariables = args[0].find('$') != std::string::npos;
  }
  if (args.size() >= 2) spec.format = args[1];
  if (spec.format != "combined" && !load.formats.count(spec.format)) {
    call.emerg("unknown log format " + quote(spec.format));
  }
  for (size_t i = 2; i < args.size(); ++i) {
    const std::string& p = args[i];
    if (p.starts_with("buffer=")) {
      auto size = parseNginxSize(std::string_view(p).substr(7));
      if (!size || *size == 0) call.emerg("invalid buffer size " + quote(p.substr(7)));
      spec.bufferSize = static_cast<uint64_t>(*size);
      continue;
    }
    if (p.starts_with("flush=")) {
      auto ms = parseNginxTime(std::string_view(p).substr(6), false);
      if (!ms || *ms == 0) call.emerg("invalid flush time " + quote(p.substr(6)));
      spec.flushMs = static_cast<uint64_t>(*ms);
      continue;
    }
    if (p == "gzip" || p.starts_with("gzip=")) {
      if (spec.bufferSize == 0) spec.bufferSize = 64 * 1024;
      if (p == "gzip") {
        spec.gzipLevel = 1;  // Z_BEST_SPEED
        continue;
      }
      auto gzipLevel = parseNginxNumber(std::string_view(p).substr(5));
      if (!gzipLevel || *gzipLevel < 1 || *gzipLevel > 9) {
        call.emerg("invalid compression level " + quote(p.substr(5)));
      }
      spec.gzipLevel = static_cast<int>(*gzipLevel);
      continue;
    }
    if (p.starts_with("if=")) {
      spec.condition = p.substr(3);
      continue;
    }
    call.emerg("invalid parameter " + quote(p));
  }
  if (spec.flushMs && spec.bufferSize == 0) {
    call.emerg("no buffer is defined for access_log " + quote(args[0]));
  }
  if (spec.bufferSize) {
    if (spec.pathVariables) call.emerg("buffered logs cannot have variables in name");
    if (spec.syslog) call.emerg("logs to syslog cannot be buffered");
    // nginx keeps one buffer per file: every buffered access_log of a file must agree.
    auto [it, fresh] = load.buffers.try_emplace(
        spec.path, std::make_tuple(spec.bufferSize, spec.flushMs, spec.gzipLevel));
    if (!fresh && it->second != std::make_tuple(spec.bufferSize, spec.flushMs, spec.gzipLevel)) {
      call.emerg("access_log " + quote(args[0]) + " already defined with conflicting parameters");
    }
  }
  if (!level.accessLogOff) level.accessLogs->push_back(spec);
}

void openLogFileCache(const DirectiveCall& call, LogLoad&, LogPartial& level) {
  if (level.openLogFileCache) call.directiveError("is duplicate");
  if (call.args().size() > 4) {
    call.emerg("invalid number of arguments in " + quote(call.name()) + " directive");
  }
  OpenLogFileCache cache;
  cache.source = call.directive().source;
  bool off = false;
  for (const std::string& p : call.args()) {
    bool ok = true;
    std::string_view v(p);
    if (v.starts_with("max=")) {
      auto n = parseNginxNumber(v.substr(4));
      ok = n.has_value();
      if (ok) cache.max = static_cast<int>(*n);
    } else if (v.starts_with("inactive=")) {
      auto t = parseNginxTime(v.substr(9), true);
      ok = t.has_value();
      if (ok) cache.inactiveSeconds = *t;
    } else if (v.starts_with("min_uses=")) {
      auto n = parseNginxNumber(v.substr(9));
      ok = n.has_value();
      if (ok) cache.minUses = static_cast<int>(*n);
    } else if (v.starts_with("valid=")) {
      auto t = parseNginxTime(v.substr(6), true);
      ok = t.has_value();
      if (ok) cache.validSeconds = *t;
    } else if (p == "off") {
      off = true;
    } else {
      ok = false;
    }
    if (!ok) call.emerg("invalid \"open_log_file_cache\" parameter " + quote(p));
  }
  if (off) {
    level.openLogFileCache = std::optional<OpenLogFileCache>();
    return;
  }
  if (cache.max == 0) call.emerg("\"open_log_file_cache\" must have \"max\" parameter");
  level.openLogFileCache = std::optional<OpenLogFileCache>(cache);
}

}  // namespace

const std::vector<ModuleLoadDirective<LogPartial, LogLoad>>& logDirectives() {
  static const std::vector<ModuleLoadDirective<LogPartial, LogLoad>> kDirectives = {
      {"log_format", kHttp, Args::k2More, &logFormat},
      {"access_log", kHsl | kLocationIf | kLimitExcept, Args::k1More, &accessLog},
      {"open_log_file_cache", kHsl, Args::k1More, &openLogFileCache},
  };
  return kDirectives;
}

void mergeLog(LogPartial& child, const LogPartial& parent) {
  inherit(child.accessLogs, parent.accessLogs);
  inherit(child.openLogFileCache, parent.openLogFileCache);
}

void finishLog(const LogPartial& level, const std::string& prefix, LocationSettings& settings) {
  if (level.accessLogs) {
    settings.accessLogs = *level.accessLogs;
  } else {
    for (AccessLogSpec& log : settings.accessLogs) log.path = prefixedPath(prefix, log.path);
  }
  if (level.openLogFileCache) settings.openLogFileCache = *level.openLogFileCache;
}

void finishLogLoad(const LogLoad& load, HttpSite& site) {
  for (const auto& [name, format] : load.formats) site.logFormats[name] = format;
  // nginx's predefined format.
  LogFormat combined;
  combined.name = "combined";
  combined.format =
      "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent "
      "\"$http_referer\" \"$http_user_agent\"";
  site.logFormats["combined"] = combined;
}

}  // namespace portico::config
