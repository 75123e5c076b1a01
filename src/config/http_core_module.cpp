#include "config/http_core_module.h"

#include <algorithm>
#include <cctype>
#include <string_view>

#include "config/conf_values.h"
#include "config/upstream_address.h"

namespace portico::config {
namespace {

void rootOrAlias(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  bool alias = call.name() == "alias";
  if (level.root || level.alias) {
    if (static_cast<bool>(level.alias) == alias) call.directiveError("is duplicate");
    call.emerg(quote(call.name()) + " directive is duplicate, " +
               quote(level.alias ? "alias" : "root") + " directive was specified earlier");
  }
  const Location::Match* match = call.locationMatch();
  if (alias && match && *match == Location::Match::kNamed) {
    call.emerg("the \"alias\" directive cannot be used inside the named location");
  }
  std::string value = call.arg(0);
  if (value.find("$document_root") != std::string::npos ||
      value.find("${document_root}") != std::string::npos) {
    call.emerg("the $document_root variable cannot be used in the " + quote(call.name()) +
               " directive");
  }
  // Variables are allowed as in nginx; their names are checked with the other templates
  // (http::validateTemplates, at -t and at startup) against directorySource.
  if (!alias && value.size() > 1 && value.back() == '/') value.pop_back();
  // A value that starts with a variable may expand to an absolute path: the prefix waits for
  // the request then (SiteRequest::filesFor, as nginx's ngx_get_full_name).
  if (value.empty() || value[0] != '$') value = call.fullName(value);
  level.directorySource = call.directive().source;
  if (alias) {
    // alias stands in a location only: the walker has told which.
    level.alias = value;
    level.aliasPrefix = call.locationPattern();
    level.aliasRegex =
        *match == Location::Match::kRegex || *match == Location::Match::kRegexCaseless;
  } else {
    level.root = value;
  }
}

void clientMaxBodySize(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  call.setSize(level.clientMaxBodySize, true);
}

void clientBodyBufferSize(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  call.setSize(level.clientBodyBufferSize, false);
}

// `client_body_temp_path PATH [L1 [L2 [L3]]]` and the other modules' *_temp_path (nginx's
// ngx_conf_set_path_slot). portico writes its temporary files unlinked (O_TMPFILE), so the
// levels, checked as nginx checks them, shape no subdirectories; the directory is created at
// startup as nginx's ngx_create_paths does. The client body's and the proxy's are used: the
// others belong to modules portico does not have, whose files they would hold.
void tempPath(const DirectiveCall& call, HttpCoreLoad& load, HttpCorePartial& level) {
  const std::vector<std::string>& args = call.args();
  if (args.size() > 4) {
    call.emerg("invalid number of arguments in " + quote(call.name()) + " directive");
  }
  size_t length = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    auto depth = parseNginxNumber(args[i]);
    if (!depth || *depth == 0) call.directiveError("invalid value");
    length += static_cast<size_t>(*depth) + 1;
  }
  if (length > 10 + (args.size() - 1)) call.directiveError("invalid value");
  std::string path = call.fullName(args[0]);
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (call.name() == "client_body_temp_path") {
    if (level.clientBodyTempPath) call.directiveError("is duplicate");
    level.clientBodyTempPath = path;
  }
  if (call.name() == "proxy_temp_path") {
    if (level.proxyTempPath) call.directiveError("is duplicate");
    level.proxyTempPath = path;  // where the proxied responses a slow client reads spill
  }
  std::vector<std::string>& paths = load.tempPaths;
  if (std::find(paths.begin(), paths.end(), path) == paths.end()) paths.push_back(path);
}

// nginx's ngx_conf_set_flag_slot and ngx_conf_set_msec_slot, given the field as nginx gives
// its offset.
template <std::optional<bool> HttpCorePartial::*kSlot>
void flagSlot(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  call.setFlag(level.*kSlot);
}
template <std::optional<double> HttpCorePartial::*kSlot>
void msecSlot(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  call.setMsec(level.*kSlot);
}

// connection_pool_size, request_pool_size: ngx_http_core_pool_size's checks (the minimum is
// NGX_MIN_POOL_SIZE on 64-bit systems).
void poolSize(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  std::optional<uint64_t>& slot =
      call.name() == "connection_pool_size" ? level.connectionPoolSize : level.requestPoolSize;
  call.setSize(slot, false);
  if (*slot < 112) call.emerg("the pool size must be no less than 112");
  if (*slot % 16) call.emerg("the pool size must be a multiple of 16");
}

void clientHeaderBufferSize(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  call.setSize(level.clientHeaderBufferSize, false);
}

void largeClientHeaderBuffers(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  call.checkUnset(level.largeHeaderBuffers);
  auto [n, size] = call.bufs();
  level.largeHeaderBuffers = std::make_pair(static_cast<size_t>(n), static_cast<size_t>(size));
}

void keepaliveTimeout(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  call.checkUnset(level.keepaliveTimeout);
  auto ms = parseNginxTime(call.arg(0), false);
  if (!ms) call.directiveError("invalid value");
  std::optional<double> header;
  if (call.args().size() == 2) {
    auto seconds = parseNginxTime(call.arg(1), true);
    if (!seconds) call.directiveError("invalid value");
    header = static_cast<double>(*seconds);
  }
  level.keepaliveTimeout = std::make_pair(static_cast<double>(*ms) / 1000.0, header);
}

void keepaliveRequests(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  call.checkUnset(level.keepaliveRequests);
  level.keepaliveRequests = static_cast<uint64_t>(call.number(call.arg(0)));
}

// ngx_conf_set_bitmask_slot: the values of every `keepalive_disable` of a level add up; a
// repeated value is a warning, an unknown one fatal.
void keepaliveDisable(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  unsigned mask = level.keepaliveDisable.value_or(0);
  for (const std::string& value : call.args()) {
    unsigned bit = 0;
    if (iequals(value, "none")) {
      bit = LocationSettings::kKeepaliveDisableNone;
    } else if (iequals(value, "msie6")) {
      bit = LocationSettings::kKeepaliveDisableMsie6;
    } else if (iequals(value, "safari")) {
      bit = LocationSettings::kKeepaliveDisableSafari;
    } else {
      call.emerg("invalid value " + quote(value));
    }
    if (mask & bit) call.warn("duplicate value " + quote(value));
    mask |= bit;
  }
  level.keepaliveDisable = mask;
}

void serverTokens(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  call.checkUnset(level.serverTokens);
  // "build" adds the build name nginx was configured with; portico has none, so it is "on".
  level.serverTokens = call.enumValue({"off", "on", "build"}) != 0;
}

void ifModifiedSince(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  call.checkUnset(level.ifModifiedSince);
  using Ims = LocationSettings::IfModifiedSince;
  static constexpr Ims kModes[] = {Ims::kOff, Ims::kExact, Ims::kBefore};
  level.ifModifiedSince = kModes[call.enumValue({"off", "exact", "before"})];
}

// limit_rate, limit_rate_after (nginx's complex value size slot): a size, checked now, or a
// value with variables, sized per response.
template <std::optional<std::string> HttpCorePartial::*kSlot>
void complexSize(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  call.checkUnset(level.*kSlot);
  const std::string& value = call.arg(0);
  if (value.find('$') == std::string::npos && !parseNginxSize(value)) {
    call.directiveError("invalid value");
  }
  level.*kSlot = value;
}

void clientBodyInFileOnly(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  call.checkUnset(level.clientBodyInFileOnly);
  using Mode = LocationSettings::BodyInFile;
  static constexpr Mode kModes[] = {Mode::kOff, Mode::kOn, Mode::kClean};
  level.clientBodyInFileOnly = kModes[call.enumValue({"off", "on", "clean"})];
}

void defaultType(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  call.setString(level.defaultType);
}

// ngx_http_core_internal: no arguments; a second one is "is duplicate".
void internalLocation(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  call.checkUnset(level.internal);
  level.internal = true;
}

void tryFiles(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  call.checkUnset(level.tryFiles);
  TryFiles spec;
  spec.files.assign(call.args().begin(), call.args().end() - 1);
  spec.fallback = call.args().back();
  if (spec.fallback[0] == '=') {
    auto code = parseNginxNumber(std::string_view(spec.fallback).substr(1));
    if (!code || *code > 999) call.emerg("invalid code " + quote(spec.fallback));
  }
  level.tryFiles = spec;
}

void errorPage(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  const std::vector<std::string>& a = call.args();
  size_t n = 1;
  int override = 0;
  const std::string& maybeEq = a[a.size() - 2];
  if (maybeEq[0] == '=') {
    if (a.size() == 2) call.emerg("invalid value " + quote(maybeEq));
    if (maybeEq.size() > 1) {
      auto v = parseNginxNumber(std::string_view(maybeEq).substr(1));
      if (!v || *v > 999) call.emerg("invalid value " + quote(maybeEq));
      override = static_cast<int>(*v);
    } else {
      override = -1;
    }
    n = 2;
  }
  ErrorPage page;
  page.uri = a.back();
  page.overrideStatus = override;
  for (size_t i = 0; i + n < a.size(); ++i) {
    auto status = parseNginxNumber(a[i]);
    if (!status || *status == 499) call.emerg("invalid value " + quote(a[i]));
    if (*status < 300 || *status > 599) {
      call.emerg("value " + quote(a[i]) + " must be between 300 and 599");
    }
    page.codes.push_back(static_cast<int>(*status));
  }
  if (override == 0) {
    // nginx answers these internal codes with 400 unless told otherwise.
    for (int code : page.codes) {
      if (code == 494 || code == 495 || code == 496 || code == 497) page.overrideStatus = 400;
    }
  }
  if (!level.errorPages) level.errorPages.emplace();
  level.errorPages->push_back(page);
}

// `resolver ADDRESS ... [valid=TIME] [ipv4=on|off] [ipv6=on|off]` (ngx_resolver_create): the
// servers are resolved now, port 53 unless written; each line is a resolver of its own.
void resolver(const DirectiveCall& call, HttpCoreLoad& load, HttpCorePartial& level) {
  if (level.resolver) call.directiveError("is duplicate");
  ResolverSpec spec;
  spec.file = call.directive().source.file;
  spec.line = call.directive().source.line;
  for (const std::string& arg : call.args()) {
    std::string_view a = arg;
    if (a.starts_with("valid=")) {
      auto seconds = parseNginxTime(a.substr(6), true);
      if (!seconds) call.emerg("invalid parameter: " + arg);
      spec.validSeconds = static_cast<uint32_t>(*seconds);
      continue;
    }
    if (a.starts_with("ipv4=") || a.starts_with("ipv6=")) {
      bool& slot = a[3] == '4' ? spec.ipv4 : spec.ipv6;
      if (a.substr(5) == "on") {
        slot = true;
      } else if (a.substr(5) == "off") {
        slot = false;
      } else {
        call.emerg("invalid parameter: " + arg);
      }
      continue;
    }
    if (a.size() >= 5 && std::equal(a.begin(), a.begin() + 5, "unix:", [](char x, char y) {
          return std::tolower(static_cast<unsigned char>(x)) == y;
        })) {
      call.emerg("unix domain sockets are not supported in resolver \"" + arg + "\"");
    }
    if (auto error = resolveUpstreamAddress(arg, 53, spec.servers)) {
      std::string text = *error;
      size_t at = text.find(" in upstream ");
      if (at != std::string::npos) text.replace(at, 13, " in resolver ");
      call.emerg(text);
    }
  }
  if (!spec.ipv4 && !spec.ipv6) call.emerg("\"ipv4\" and \"ipv6\" cannot both be \"off\"");
  level.resolver = static_cast<int>(load.resolvers.size());
  load.resolvers.push_back(std::move(spec));
}

}  // namespace

const std::vector<ModuleLoadDirective<HttpCorePartial, HttpCoreLoad>>& httpCoreDirectives() {
  static const std::vector<ModuleLoadDirective<HttpCorePartial, HttpCoreLoad>> kDirectives = {
      {"root", kHsl | kLocationIf, Args::k1, &rootOrAlias},
      {"alias", kLocation, Args::k1, &rootOrAlias},
      {"client_max_body_size", kHsl, Args::k1, &clientMaxBodySize},
      {"client_body_buffer_size", kHsl, Args::k1, &clientBodyBufferSize},
      {"client_body_timeout", kHsl, Args::k1, &msecSlot<&HttpCorePartial::clientBodyTimeout>},
      {"client_body_temp_path", kHsl, Args::k1More, &tempPath},
      {"client_body_in_file_only", kHsl, Args::k1, &clientBodyInFileOnly},
      {"limit_rate", kHsl | kLocationIf, Args::k1, &complexSize<&HttpCorePartial::limitRate>},
      {"limit_rate_after", kHsl | kLocationIf, Args::k1,
       &complexSize<&HttpCorePartial::limitRateAfter>},
      {"client_body_in_single_buffer", kHsl, Args::k1,
       &flagSlot<&HttpCorePartial::clientBodyInSingleBuffer>},
      {"proxy_temp_path", kHsl, Args::k1More, &tempPath},
      {"fastcgi_temp_path", kHsl, Args::k1More, &tempPath},
      {"uwsgi_temp_path", kHsl, Args::k1More, &tempPath},
      {"scgi_temp_path", kHsl, Args::k1More, &tempPath},
      {"try_files", kServer | kLocation, Args::k2More, &tryFiles},
      {"error_page", kHsl | kLocationIf, Args::k2More, &errorPage},
      {"default_type", kHsl, Args::k1, &defaultType},
      {"sendfile", kHsl | kLocationIf, Args::k1, &flagSlot<&HttpCorePartial::sendfile>},
      {"chunked_transfer_encoding", kHsl, Args::k1,
       &flagSlot<&HttpCorePartial::chunkedTransferEncoding>},
      {"tcp_nopush", kHsl, Args::k1, &flagSlot<&HttpCorePartial::tcpNopush>},
      {"tcp_nodelay", kHsl, Args::k1, &flagSlot<&HttpCorePartial::tcpNodelay>},
      {"keepalive_timeout", kHsl, Args::k12, &keepaliveTimeout},
      {"keepalive_requests", kHsl, Args::k1, &keepaliveRequests},
      {"keepalive_disable", kHsl, Args::k1More, &keepaliveDisable},
      {"keepalive_time", kHsl, Args::k1, &msecSlot<&HttpCorePartial::keepaliveTime>},
      {"send_timeout", kHsl, Args::k1, &msecSlot<&HttpCorePartial::sendTimeout>},
      {"server_tokens", kHsl, Args::k1, &serverTokens},
      {"server_name_in_redirect", kHsl, Args::k1,
       &flagSlot<&HttpCorePartial::serverNameInRedirect>},
      {"absolute_redirect", kHsl, Args::k1, &flagSlot<&HttpCorePartial::absoluteRedirect>},
      {"port_in_redirect", kHsl, Args::k1, &flagSlot<&HttpCorePartial::portInRedirect>},
      {"log_not_found", kHsl, Args::k1, &flagSlot<&HttpCorePartial::logNotFound>},
      {"if_modified_since", kHsl, Args::k1, &ifModifiedSince},
      {"client_header_timeout", kHttp | kServer, Args::k1,
       &msecSlot<&HttpCorePartial::clientHeaderTimeout>},
      {"large_client_header_buffers", kHttp | kServer, Args::k2, &largeClientHeaderBuffers},
      {"connection_pool_size", kHttp | kServer, Args::k1, &poolSize},
      {"request_pool_size", kHttp | kServer, Args::k1, &poolSize},
      {"client_header_buffer_size", kHttp | kServer, Args::k1, &clientHeaderBufferSize},
      {"merge_slashes", kHttp | kServer, Args::k1, &flagSlot<&HttpCorePartial::mergeSlashes>},
      {"ignore_invalid_headers", kHttp | kServer, Args::k1,
       &flagSlot<&HttpCorePartial::ignoreInvalidHeaders>},
      {"underscores_in_headers", kHttp | kServer, Args::k1,
       &flagSlot<&HttpCorePartial::underscoresInHeaders>},
      {"internal", kLocation, Args::kNone, &internalLocation},
      {"resolver", kHsl, Args::k1More, &resolver},
      {"resolver_timeout", kHsl, Args::k1, &msecSlot<&HttpCorePartial::resolverTimeout>},
  };
  return kDirectives;
}

void mergeHttpCore(HttpCorePartial& c, const HttpCorePartial& p) {
  if (!c.root && !c.alias && (p.root || p.alias)) c.directorySource = p.directorySource;
  if (!c.root && !c.alias && p.alias) {
    // ngx_http_core_merge_loc_conf copies root and alias together: a nested location keeps
    // replacing the enclosing location's prefix with the alias.
    c.alias = p.alias;
    c.aliasPrefix = p.aliasPrefix;
    c.aliasRegex = p.aliasRegex;
  }
  inherit(c.root, p.root);
  inherit(c.clientMaxBodySize, p.clientMaxBodySize);
  inherit(c.clientBodyBufferSize, p.clientBodyBufferSize);
  inherit(c.clientBodyTimeout, p.clientBodyTimeout);
  inherit(c.clientBodyTempPath, p.clientBodyTempPath);
  inherit(c.clientBodyInFileOnly, p.clientBodyInFileOnly);
  inherit(c.clientBodyInSingleBuffer, p.clientBodyInSingleBuffer);
  inherit(c.limitRate, p.limitRate);
  inherit(c.limitRateAfter, p.limitRateAfter);
  inherit(c.errorPages, p.errorPages);
  inherit(c.defaultType, p.defaultType);
  inherit(c.sendfile, p.sendfile);
  inherit(c.chunkedTransferEncoding, p.chunkedTransferEncoding);
  inherit(c.tcpNopush, p.tcpNopush);
  inherit(c.tcpNodelay, p.tcpNodelay);
  inherit(c.keepaliveTimeout, p.keepaliveTimeout);
  inherit(c.keepaliveRequests, p.keepaliveRequests);
  inherit(c.keepaliveDisable, p.keepaliveDisable);
  inherit(c.keepaliveTime, p.keepaliveTime);
  inherit(c.sendTimeout, p.sendTimeout);
  inherit(c.serverTokens, p.serverTokens);
  inherit(c.absoluteRedirect, p.absoluteRedirect);
  inherit(c.serverNameInRedirect, p.serverNameInRedirect);
  inherit(c.portInRedirect, p.portInRedirect);
  inherit(c.logNotFound, p.logNotFound);
  inherit(c.ifModifiedSince, p.ifModifiedSince);
  inherit(c.clientHeaderTimeout, p.clientHeaderTimeout);
  inherit(c.clientHeaderBufferSize, p.clientHeaderBufferSize);
  inherit(c.connectionPoolSize, p.connectionPoolSize);
  inherit(c.requestPoolSize, p.requestPoolSize);
  inherit(c.largeHeaderBuffers, p.largeHeaderBuffers);
  inherit(c.mergeSlashes, p.mergeSlashes);
  inherit(c.ignoreInvalidHeaders, p.ignoreInvalidHeaders);
  inherit(c.underscoresInHeaders, p.underscoresInHeaders);
  inherit(c.proxyTempPath, p.proxyTempPath);
  inherit(c.internal, p.internal);
  inherit(c.resolver, p.resolver);
  inherit(c.resolverTimeout, p.resolverTimeout);
}

void finishHttpCore(const HttpCorePartial& p, const std::string& prefix, LocationSettings& s) {
  s.root = p.root ? *p.root : prefixedPath(prefix, "html");
  s.alias = p.alias;
  s.aliasPrefix = p.aliasPrefix;
  s.aliasRegex = p.aliasRegex;
  s.directorySource = p.directorySource;
  if (p.clientMaxBodySize) s.clientMaxBodySize = *p.clientMaxBodySize;
  if (p.clientBodyBufferSize) s.clientBodyBufferSize = *p.clientBodyBufferSize;
  if (p.clientBodyTimeout) s.clientBodyTimeoutSeconds = *p.clientBodyTimeout;
  if (p.clientBodyTempPath) s.clientBodyTempPath = *p.clientBodyTempPath;
  if (p.clientBodyInFileOnly) s.clientBodyInFileOnly = *p.clientBodyInFileOnly;
  if (p.clientBodyInSingleBuffer) s.clientBodyInSingleBuffer = *p.clientBodyInSingleBuffer;
  if (p.limitRate) s.limitRate = *p.limitRate;
  if (p.limitRateAfter) s.limitRateAfter = *p.limitRateAfter;
  if (p.proxyTempPath) s.proxy.tempPath = *p.proxyTempPath;
  s.tryFiles = p.tryFiles;
  if (p.errorPages) s.errorPages = *p.errorPages;
  if (p.defaultType) s.defaultType = *p.defaultType;
  if (p.sendfile) s.sendfile = *p.sendfile;
  if (p.chunkedTransferEncoding) s.chunkedTransferEncoding = *p.chunkedTransferEncoding;
  if (p.tcpNopush) s.tcpNopush = *p.tcpNopush;
  if (p.tcpNodelay) s.tcpNodelay = *p.tcpNodelay;
  if (p.keepaliveTimeout) {
    s.keepaliveTimeoutSeconds = p.keepaliveTimeout->first;
    s.keepaliveHeaderSeconds = p.keepaliveTimeout->second;
  }
  if (p.keepaliveRequests) s.keepaliveRequests = *p.keepaliveRequests;
  if (p.keepaliveDisable) s.keepaliveDisable = *p.keepaliveDisable;
  if (p.keepaliveTime) s.keepaliveTimeSeconds = *p.keepaliveTime;
  if (p.sendTimeout) s.sendTimeoutSeconds = *p.sendTimeout;
  if (p.serverTokens) s.serverTokens = *p.serverTokens;
  if (p.absoluteRedirect) s.absoluteRedirect = *p.absoluteRedirect;
  if (p.serverNameInRedirect) s.serverNameInRedirect = *p.serverNameInRedirect;
  if (p.portInRedirect) s.portInRedirect = *p.portInRedirect;
  if (p.logNotFound) s.logNotFound = *p.logNotFound;
  if (p.ifModifiedSince) s.ifModifiedSince = *p.ifModifiedSince;
  if (p.internal) s.internal = *p.internal;
  if (p.resolver) s.resolver = *p.resolver;
  if (p.resolverTimeout) s.resolverTimeoutSeconds = *p.resolverTimeout;
}

void finishHttpCoreServer(const HttpCorePartial& p, VirtualServer& vs) {
  if (p.clientHeaderTimeout) vs.clientHeaderTimeoutSeconds = *p.clientHeaderTimeout;
  if (p.largeHeaderBuffers) {
    vs.largeHeaderBuffersNumber = p.largeHeaderBuffers->first;
    vs.largeHeaderBuffersSize = p.largeHeaderBuffers->second;
  }
  if (p.clientHeaderBufferSize) vs.clientHeaderBufferSize = *p.clientHeaderBufferSize;
  if (p.connectionPoolSize) vs.connectionPoolSize = *p.connectionPoolSize;
  if (p.mergeSlashes) vs.mergeSlashes = *p.mergeSlashes;
  if (p.ignoreInvalidHeaders) vs.headerNames.ignoreInvalid = *p.ignoreInvalidHeaders;
  if (p.underscoresInHeaders) vs.headerNames.underscores = *p.underscoresInHeaders;
}

void finishHttpCoreLoad(const HttpCoreLoad& load, HttpSite& site) {
  site.tempPaths = load.tempPaths;
  site.resolvers = load.resolvers;
}

}  // namespace portico::config
