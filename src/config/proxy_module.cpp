#include "config/proxy_module.h"

#include <algorithm>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <string_view>

#include "config/conf_parser.h"
#include "config/conf_values.h"
#include "config/upstream_module.h"

namespace portico::config {
namespace {

// ngx_parse_addr_port: "IP", "IP:PORT", "[IPv6]", "[IPv6]:PORT", or a bare IPv6 address.
bool validLocalAddress(const std::string& text) {
  std::string host = text;
  std::string port;
  bool v6 = false;
  if (host.starts_with('[')) {
    size_t close = host.find(']');
    if (close == std::string::npos) return false;
    if (close + 1 < host.size()) {
      if (host[close + 1] != ':') return false;
      port = host.substr(close + 2);
      if (port.empty()) return false;
    }
    host = host.substr(1, close - 1);
    v6 = true;
  } else if (size_t colon = host.rfind(':'); colon != std::string::npos) {
    if (host.find(':') != colon) {
      v6 = true;
    } else {
      port = host.substr(colon + 1);
      host.resize(colon);
      if (port.empty()) return false;
    }
  }
  if (port.size() > 5) return false;
  int value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  if (value > 65535) return false;
  unsigned char scratch[sizeof(in6_addr)];
  return ::inet_pton(v6 ? AF_INET6 : AF_INET, host.c_str(), scratch) == 1;
}

// ngx_http_proxy_pass: the URL, its URI part and the implicit upstream of its address.
void pass(const DirectiveCall& call, UpstreamLoad& load, ProxyPartial& level) {
  if (level.pass) call.directiveError("is duplicate");
  // An `if` or `limit_except` block is an implicit location without a name (nginx's noname):
  // no URI part, and the request's URI passes unchanged.
  const bool noname = call.ctx() == kLocationIf || call.ctx() == kLimitExcept;
  const std::string& url = call.arg(0);
  if (url.find('$') != std::string::npos) {
    // Made per request (upstream/proxy_target.h): no URI replacement, no implicit upstream.
    ProxyPass p;
    p.url = url;
    p.source = call.directive().source;
    p.variables = true;
    level.pass = std::move(p);
    return;
  }
  size_t skip;
  bool ssl = false;
  if (startsWithCaseless(url, "http://")) {
    skip = 7;
  } else if (startsWithCaseless(url, "https://")) {
    skip = 8;
    ssl = true;
  } else {
    call.emerg("invalid URL prefix in " + quote(url));
  }
  ProxyPass p;
  p.url = url;
  p.source = call.directive().source;
  p.ssl = ssl;
  const std::string_view defaultPort = ssl ? "443" : "80";
  std::string_view rest = std::string_view(url).substr(skip);
  std::string_view hostPart;
  if (startsWithCaseless(rest, "unix:")) {
    // http://unix:/path/to.sock:/uri — the path ends at the first ':' after it.
    size_t colon = rest.find(':', 5);
    hostPart = rest.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    p.unixSocket = true;
  } else {
    size_t slash = rest.find('/');
    hostPart = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  }
  if (hostPart.empty() || hostPart == "unix:") call.emerg("no host in " + quote(url));
  if (!rest.empty()) {
    p.hasUri = true;
    p.uri = std::string(rest);
  }
  using Match = Location::Match;
  const Location::Match* match = call.locationMatch();
  if (p.hasUri && (noname || (match && (*match == Match::kRegex ||
                                         *match == Match::kRegexCaseless ||
                                         *match == Match::kNamed)))) {
    call.emerg("\"proxy_pass\" cannot have URI part in location given by regular expression, "
               "or inside named location, or inside \"if\" statement, or inside "
               "\"limit_except\" block");
  }
  if (match && *match != Match::kNamed && !noname) p.locationPrefix = call.locationPattern();
  p.upstream = std::string(hostPart);
  if (p.unixSocket) {
    p.proxyHost = "localhost";
  } else {
    // $proxy_host: the host with its port unless it is 80 (ngx_http_proxy_set_vars).
    std::string_view host = hostPart;
    std::string_view port;
    size_t colon = host.rfind(':');
    if (colon != std::string_view::npos && host.find(']', colon) == std::string_view::npos) {
      port = host.substr(colon + 1);
      host = host.substr(0, colon);
    }
    p.proxyHost =
        port.empty() || port == defaultPort ? std::string(host) : std::string(hostPart);
    p.proxyPort = port.empty() ? std::string(defaultPort) : std::string(port);
  }
  // An `upstream` block of that name, or the implicit upstream of the address (resolved at
  // the end of http, as nginx's ngx_http_upstream_add and init_main_conf).
  p.upstreamIndex =
      static_cast<int>(upstreamFor(*load.upstreams, p.upstream, ssl ? 443 : 80, call));
  level.pass = std::move(p);
}

void setHeader(const DirectiveCall& call, ProxyPartial& level) {
  if (!level.setHeaders) level.setHeaders.emplace();
  level.setHeaders->emplace_back(call.arg(0), call.arg(1));
}

void httpVersion(const DirectiveCall& call, ProxyPartial& level) {
  call.checkUnset(level.httpVersionMinor);
  level.httpVersionMinor = static_cast<int>(call.enumValue({"1.0", "1.1"}));
}

void connectTimeout(const DirectiveCall& call, ProxyPartial& level) {
  call.setMsec(level.connectTimeout);
}
void readTimeout(const DirectiveCall& call, ProxyPartial& level) { call.setMsec(level.readTimeout); }
void sendTimeout(const DirectiveCall& call, ProxyPartial& level) { call.setMsec(level.sendTimeout); }
void nextUpstreamTimeout(const DirectiveCall& call, ProxyPartial& level) {
  call.setMsec(level.nextUpstreamTimeout);
}
void nextUpstreamTries(const DirectiveCall& call, ProxyPartial& level) {
  call.checkUnset(level.nextUpstreamTries);
  level.nextUpstreamTries = call.number(call.arg(0));
}

void passRequestHeaders(const DirectiveCall& call, ProxyPartial& level) {
  call.setFlag(level.passRequestHeaders);
}
void passRequestBody(const DirectiveCall& call, ProxyPartial& level) {
  call.setFlag(level.passRequestBody);
}
void buffering(const DirectiveCall& call, ProxyPartial& level) { call.setFlag(level.buffering); }
// proxy_request_buffering: on, the body is read whole, then sent; off, it is sent as it arrives.
void requestBuffering(const DirectiveCall& call, ProxyPartial& level) {
  call.setFlag(level.requestBuffering);
}
void setBody(const DirectiveCall& call, ProxyPartial& level) { call.setString(level.setBody); }
void method(const DirectiveCall& call, ProxyPartial& level) { call.setString(level.method); }
void bufferSize(const DirectiveCall& call, ProxyPartial& level) { call.setSize(level.bufferSize); }

void buffers(const DirectiveCall& call, ProxyPartial& level) {
  call.checkUnset(level.buffers);
  level.buffers = call.bufs();
}

void hideHeader(const DirectiveCall& call, ProxyPartial& level) {
  if (!level.hideHeaders) level.hideHeaders.emplace();
  level.hideHeaders->push_back(call.arg(0));
}
void passHeader(const DirectiveCall& call, ProxyPartial& level) {
  if (!level.passHeaders) level.passHeaders.emplace();
  level.passHeaders->push_back(call.arg(0));
}

// ngx_conf_set_bitmask_slot with ngx_http_proxy_next_upstream_masks.
void nextUpstream(const DirectiveCall& call, ProxyPartial& level) {
  parseNextUpstream(call, level, false);
}

void limitRate(const DirectiveCall& call, ProxyPartial& level) { call.setSize(level.limitRate); }

void busyBuffersSize(const DirectiveCall& call, ProxyPartial& level) {
  call.setSize(level.busyBuffersSize);
}
void tempFileWriteSize(const DirectiveCall& call, ProxyPartial& level) {
  call.setSize(level.tempFileWriteSize);
}
void maxTempFileSize(const DirectiveCall& call, ProxyPartial& level) {
  call.setSize(level.maxTempFileSize);
}

// nginx's default rule (ngx_http_proxy_redirect / merge_loc_conf): the proxy_pass URL with a
// URI part is replaced by the location's name, one without by "/" (URL + "/" → "/").
ProxyRewriteRule defaultRedirect(const ProxyPass& pass) {
  ProxyRewriteRule rule;
  if (pass.hasUri) {
    rule.pattern = pass.url;
    rule.replacement = pass.locationPrefix;
  } else {
    rule.pattern = pass.url + "/";
    rule.replacement = "/";
  }
  return rule;
}

// A `~REGEX` / `~*REGEX` pattern (the prefix stripped) or a plain one.
ProxyRewriteRule rewriteRule(const DirectiveCall& call, bool caselessOnly) {
  ProxyRewriteRule rule;
  std::string pattern = call.arg(0);
  if (pattern.starts_with('~')) {
    pattern.erase(0, 1);
    bool caseless = caselessOnly;
    if (!caselessOnly && pattern.starts_with('*')) {
      pattern.erase(0, 1);
      caseless = true;
    }
    call.checkRegex(pattern, caseless);
    rule.kind = caseless ? ProxyRewriteRule::Kind::kRegexCaseless : ProxyRewriteRule::Kind::kRegex;
  }
  rule.pattern = std::move(pattern);
  rule.replacement = call.arg(1);
  return rule;
}

// ngx_http_proxy_redirect: default | off | REDIRECT REPLACEMENT.
void redirect(const DirectiveCall& call, ProxyPartial& level) {
  if (level.redirect && !*level.redirect) call.directiveError("is duplicate");
  level.redirect = true;
  if (call.args().size() == 1) {
    if (call.arg(0) == "off") {
      if (level.redirects) call.directiveError("is duplicate");
      level.redirect = false;
      return;
    }
    if (call.arg(0) != "default") call.emerg("invalid parameter " + quote(call.arg(0)));
  }
  if (!level.redirects) level.redirects.emplace();
  if (call.args().size() == 1) {
    if (level.pass && level.pass->variables) {
      call.emerg("\"proxy_redirect default\" cannot be used with \"proxy_pass\" directive "
                 "with variables");
    }
    if (!level.pass) {
      call.emerg("\"proxy_redirect default\" should be placed after the \"proxy_pass\" "
                 "directive");
    }
    level.redirects->push_back(defaultRedirect(*level.pass));
    return;
  }
  level.redirects->push_back(rewriteRule(call, false));
}

void interceptErrors(const DirectiveCall& call, ProxyPartial& level) {
  call.setFlag(level.interceptErrors);
}

// ngx_conf_set_bitmask_slot with ngx_http_upstream_ignore_headers_masks (names caseless; the
// directive may be repeated, its values add up).
void ignoreHeaders(const DirectiveCall& call, ProxyPartial& level) {
  using S = ProxySettings;
  static const std::pair<std::string_view, unsigned> kMasks[] = {
      {"X-Accel-Redirect", S::kIgnoreXAccelRedirect},
      {"X-Accel-Expires", S::kIgnoreXAccelExpires},
      {"X-Accel-Limit-Rate", S::kIgnoreXAccelLimitRate},
      {"X-Accel-Buffering", S::kIgnoreXAccelBuffering},
      {"X-Accel-Charset", S::kIgnoreXAccelCharset},
      {"Expires", S::kIgnoreExpires},
      {"Cache-Control", S::kIgnoreCacheControl},
      {"Set-Cookie", S::kIgnoreSetCookie},
      {"Vary", S::kIgnoreVary},
  };
  unsigned mask = level.ignoreHeaders.value_or(0);
  for (const std::string& word : call.args()) {
    bool found = false;
    for (const auto& [name, bit] : kMasks) {
      if (!iequals(word, name)) continue;
      found = true;
      if (mask & bit) call.warn("duplicate value " + quote(word));
      mask |= bit;
    }
    if (!found) call.emerg("invalid value " + quote(word));
  }
  level.ignoreHeaders = mask;
}

// ngx_http_proxy_cookie_domain / _path: off | FROM TO (nginx's NULL list after `off`, after
// which any other line is duplicate).
void cookieRule(const DirectiveCall& call, std::optional<std::vector<ProxyRewriteRule>>& slot,
                bool domain) {
  if (slot && slot->empty()) call.directiveError("is duplicate");
  if (call.args().size() == 1) {
    if (call.arg(0) != "off") call.emerg("invalid parameter " + quote(call.arg(0)));
    if (slot) call.directiveError("is duplicate");
    slot.emplace();
    return;
  }
  ProxyRewriteRule rule = rewriteRule(call, domain);
  if (domain && rule.kind == ProxyRewriteRule::Kind::kPrefix) {
    // A leading '.' of either side is dropped, the value compared whole and caselessly.
    rule.kind = ProxyRewriteRule::Kind::kDomain;
    if (rule.pattern.starts_with('.')) rule.pattern.erase(0, 1);
    if (rule.replacement.starts_with('.')) rule.replacement.erase(0, 1);
  }
  if (!slot) slot.emplace();
  slot->push_back(std::move(rule));
}
void cookieDomain(const DirectiveCall& call, ProxyPartial& level) {
  cookieRule(call, level.cookieDomains, true);
}
void cookiePath(const DirectiveCall& call, ProxyPartial& level) {
  cookieRule(call, level.cookiePaths, false);
}

// ngx_http_proxy_cookie_flags: off | COOKIE [FLAG...] (at most three flags, nginx's TAKE1234);
// the flags are read per response, so a wrong one is ignored then, as nginx does.
void cookieFlags(const DirectiveCall& call, ProxyPartial& level) {
  if (call.args().size() > 4) {
    call.emerg("invalid number of arguments in \"proxy_cookie_flags\" directive");
  }
  if (level.cookieFlags && level.cookieFlags->empty()) call.directiveError("is duplicate");
  if (call.args().size() == 1) {
    if (call.arg(0) != "off") call.emerg("invalid parameter " + quote(call.arg(0)));
    if (level.cookieFlags) call.directiveError("is duplicate");
    level.cookieFlags.emplace();
    return;
  }
  ProxyCookieFlags line;
  line.cookie = call.arg(0);
  if (line.cookie.starts_with('~')) {
    line.cookie.erase(0, 1);
    call.checkRegex(line.cookie, true);
    line.regex = true;
  }
  line.flags.assign(call.args().begin() + 1, call.args().end());
  if (!level.cookieFlags) level.cookieFlags.emplace();
  level.cookieFlags->push_back(std::move(line));
}

// ngx_http_upstream_bind_set_slot: ADDRESS [transparent] | off; an address without variables
// is checked at load.
void bind(const DirectiveCall& call, ProxyPartial& level) {
  call.checkUnset(level.bind);
  if (call.args().size() == 1 && call.arg(0) == "off") {
    level.bind = "";
    return;
  }
  const std::string& address = call.arg(0);
  if (address.find('$') == std::string::npos && !validLocalAddress(address)) {
    call.emerg("invalid address " + quote(address));
  }
  if (call.args().size() > 1) {
    if (call.arg(1) == "transparent") call.unsupported("\"proxy_bind transparent\"");
    call.emerg("invalid parameter " + quote(call.arg(1)));
  }
  level.bind = address;
}

}  // namespace

const std::vector<ModuleLoadDirective<ProxyPartial, UpstreamLoad>>& proxyPassDirectives() {
  static const std::vector<ModuleLoadDirective<ProxyPartial, UpstreamLoad>> kDirectives = {
      {"proxy_pass", kLocation | kLocationIf | kLimitExcept, Args::k1, &pass},
  };
  return kDirectives;
}

const std::vector<ModuleDirective<ProxyPartial>>& proxyDirectives() {
  static const std::vector<ModuleDirective<ProxyPartial>> kDirectives = {
      {"proxy_set_header", kHsl, Args::k2, &setHeader},
      {"proxy_http_version", kHsl, Args::k1, &httpVersion},
      {"proxy_connect_timeout", kHsl, Args::k1, &connectTimeout},
      {"proxy_read_timeout", kHsl, Args::k1, &readTimeout},
      {"proxy_send_timeout", kHsl, Args::k1, &sendTimeout},
      {"proxy_pass_request_headers", kHsl, Args::k1, &passRequestHeaders},
      {"proxy_pass_request_body", kHsl, Args::k1, &passRequestBody},
      {"proxy_set_body", kHsl, Args::k1, &setBody},
      {"proxy_method", kHsl, Args::k1, &method},
      {"proxy_buffer_size", kHsl, Args::k1, &bufferSize},
      {"proxy_buffers", kHsl, Args::k2, &buffers},
      {"proxy_buffering", kHsl, Args::k1, &buffering},
      {"proxy_request_buffering", kHsl, Args::k1, &requestBuffering},
      {"proxy_hide_header", kHsl, Args::k1, &hideHeader},
      {"proxy_pass_header", kHsl, Args::k1, &passHeader},
      {"proxy_next_upstream", kHsl, Args::k1More, &nextUpstream},
      {"proxy_next_upstream_tries", kHsl, Args::k1, &nextUpstreamTries},
      {"proxy_next_upstream_timeout", kHsl, Args::k1, &nextUpstreamTimeout},
      {"proxy_busy_buffers_size", kHsl, Args::k1, &busyBuffersSize},
      {"proxy_temp_file_write_size", kHsl, Args::k1, &tempFileWriteSize},
      {"proxy_max_temp_file_size", kHsl, Args::k1, &maxTempFileSize},
      {"proxy_redirect", kHsl, Args::k12, &redirect},
      {"proxy_intercept_errors", kHsl, Args::k1, &interceptErrors},
      {"proxy_ignore_headers", kHsl, Args::k1More, &ignoreHeaders},
      {"proxy_cookie_domain", kHsl, Args::k12, &cookieDomain},
      {"proxy_cookie_path", kHsl, Args::k12, &cookiePath},
      {"proxy_cookie_flags", kHsl, Args::k1More, &cookieFlags},
      {"proxy_bind", kHsl, Args::k12, &bind},
      {"proxy_limit_rate", kHsl, Args::k1, &limitRate},
  };
  static const std::vector<ModuleDirective<ProxyPartial>> kAll = [] {
    std::vector<ModuleDirective<ProxyPartial>> rows = kDirectives;
    for (const auto& row : proxySslDirectives()) rows.push_back(row);  // proxy_ssl_conf.cpp
    return rows;
  }();
  return kAll;
}

void parseNextUpstream(const DirectiveCall& call, ProxyPartial& level, bool uwsgi) {
  call.checkUnset(level.nextUpstream);
  using S = ProxySettings;
  // nginx 1.22's masks; the uwsgi module's have no http_502 / http_504.
  static const std::pair<std::string_view, unsigned> kMasks[] = {
      {"error", S::kNextError},           {"timeout", S::kNextTimeout},
      {"invalid_header", S::kNextInvalidHeader}, {"non_idempotent", S::kNextNonIdempotent},
      {"http_500", S::kNextHttp500},      {"http_502", S::kNextHttp502},
      {"http_503", S::kNextHttp503},      {"http_504", S::kNextHttp504},
      {"http_403", S::kNextHttp403},      {"http_404", S::kNextHttp404},
      {"http_429", S::kNextHttp429},
  };
  unsigned mask = 0;
  bool off = false;
  for (const std::string& word : call.args()) {
    if (word == "off") {
      off = true;
      continue;
    }
    if (word == "updating") call.unsupported(quote(call.name() + " updating"));
    bool found = false;
    for (const auto& [name, bit] : kMasks) {
      if (uwsgi && (bit == S::kNextHttp502 || bit == S::kNextHttp504)) continue;
      if (word == name) {
        mask |= bit;
        found = true;
      }
    }
    if (!found) call.emerg("invalid value " + quote(word));
  }
  if (uwsgi) {
    level.nextUpstream = off ? 0 : mask;  // the uwsgi module: `off` anywhere turns it off
    return;
  }
  if (off && (mask != 0 || call.args().size() > 1)) {
    call.emerg("invalid value \"off\"");  // nginx: "off" mixed with others is refused
  }
  level.nextUpstream = mask;
}

void mergeProxy(ProxyPartial& c, const ProxyPartial& p) {
  // proxy_pass is not merged: it is the location's own content.
  inherit(c.setHeaders, p.setHeaders);
  inherit(c.httpVersionMinor, p.httpVersionMinor);
  inherit(c.connectTimeout, p.connectTimeout);
  inherit(c.readTimeout, p.readTimeout);
  inherit(c.sendTimeout, p.sendTimeout);
  inherit(c.nextUpstreamTimeout, p.nextUpstreamTimeout);
  inherit(c.passRequestHeaders, p.passRequestHeaders);
  inherit(c.passRequestBody, p.passRequestBody);
  inherit(c.buffering, p.buffering);
  inherit(c.setBody, p.setBody);
  inherit(c.method, p.method);
  inherit(c.bufferSize, p.bufferSize);
  inherit(c.buffers, p.buffers);
  inherit(c.hideHeaders, p.hideHeaders);
  inherit(c.passHeaders, p.passHeaders);
  inherit(c.nextUpstream, p.nextUpstream);
  inherit(c.nextUpstreamTries, p.nextUpstreamTries);
  inherit(c.busyBuffersSize, p.busyBuffersSize);
  inherit(c.limitRate, p.limitRate);
  inherit(c.tempFileWriteSize, p.tempFileWriteSize);
  inherit(c.maxTempFileSize, p.maxTempFileSize);
  // ngx_http_proxy_merge_loc_conf: `off` is inherited; a level without rules takes its
  // parent's, and one with proxy_pass but no rules anywhere above gets `default`.
  inherit(c.redirect, p.redirect);
  if (c.redirect.value_or(true)) {
    inherit(c.redirects, p.redirects);
    if (!c.redirects && c.pass && !c.pass->variables) {
      c.redirects.emplace();
      c.redirects->push_back(defaultRedirect(*c.pass));
    }
  }
  inherit(c.interceptErrors, p.interceptErrors);
  inherit(c.ignoreHeaders, p.ignoreHeaders);
  inherit(c.cookieDomains, p.cookieDomains);
  inherit(c.cookiePaths, p.cookiePaths);
  inherit(c.cookieFlags, p.cookieFlags);
  inherit(c.bind, p.bind);
  inherit(c.requestBuffering, p.requestBuffering);
  mergeProxySsl(c.ssl, p.ssl);
}

void finishProxy(const ProxyPartial& l, ProxySettings& s) {
  s.pass = l.pass;
  if (l.setHeaders) s.setHeaders = *l.setHeaders;
  if (l.httpVersionMinor) s.httpVersionMinor = *l.httpVersionMinor;
  if (l.connectTimeout) s.connectTimeoutSeconds = *l.connectTimeout;
  if (l.readTimeout) s.readTimeoutSeconds = *l.readTimeout;
  if (l.sendTimeout) s.sendTimeoutSeconds = *l.sendTimeout;
  if (l.nextUpstreamTimeout) s.nextUpstreamTimeoutSeconds = *l.nextUpstreamTimeout;
  if (l.passRequestHeaders) s.passRequestHeaders = *l.passRequestHeaders;
  if (l.passRequestBody) s.passRequestBody = *l.passRequestBody;
  if (l.buffering) s.buffering = *l.buffering;
  s.setBody = l.setBody;
  s.method = l.method;
  if (l.bufferSize) s.bufferSize = *l.bufferSize;
  if (l.buffers) {
    s.buffersNumber = l.buffers->first;
    s.buffersSize = static_cast<uint64_t>(l.buffers->second);
  }
  if (l.hideHeaders) s.hideHeaders = *l.hideHeaders;
  if (l.passHeaders) s.passHeaders = *l.passHeaders;
  if (l.nextUpstream) s.nextUpstream = *l.nextUpstream;
  if (l.nextUpstreamTries) s.nextUpstreamTries = static_cast<int>(*l.nextUpstreamTries);
  // nginx's defaults: twice the larger of proxy_buffer_size and one proxy_buffers buffer; 1g.
  uint64_t size = std::max(s.bufferSize, s.buffersSize);
  s.busyBuffersSize = l.busyBuffersSize ? *l.busyBuffersSize : 2 * size;
  s.tempFileWriteSize = l.tempFileWriteSize ? *l.tempFileWriteSize : 2 * size;
  s.maxTempFileSize = l.maxTempFileSize ? *l.maxTempFileSize : 1024ull << 20;
  if (l.redirect.value_or(true) && l.redirects) s.redirects = *l.redirects;
  if (l.interceptErrors) s.interceptErrors = *l.interceptErrors;
  if (l.ignoreHeaders) s.ignoreHeaders = *l.ignoreHeaders;
  if (l.cookieDomains) s.cookieDomains = *l.cookieDomains;
  if (l.cookiePaths) s.cookiePaths = *l.cookiePaths;
  if (l.cookieFlags) s.cookieFlags = *l.cookieFlags;
  if (l.bind) s.bind = *l.bind;
  if (l.requestBuffering) s.requestBuffering = *l.requestBuffering;
  if (l.limitRate) s.limitRate = *l.limitRate;
  finishProxySsl(l.ssl, s.ssl);
}

void checkProxyBuffers(const ProxySettings& s, const SourceRef& at, std::string_view module) {
  const std::string m(module);
  auto fail = [&](const std::string& text) {
    throw ConfFailure{confMessage("emerg", text, at)};
  };
  if (s.buffersNumber < 2) fail("there must be at least 2 \"" + m + "_buffers\"");
  uint64_t size = std::max(s.bufferSize, s.buffersSize);
  if (s.busyBuffersSize < size) {
    fail("\"" + m + "_busy_buffers_size\" must be equal to or greater than the maximum of the "
         "value of \"" + m + "_buffer_size\" and one of the \"" + m + "_buffers\"");
  }
  if (s.busyBuffersSize > static_cast<uint64_t>(s.buffersNumber - 1) * s.buffersSize) {
    fail("\"" + m + "_busy_buffers_size\" must be less than the size of all \"" + m + "_buffers\" "
         "minus one buffer");
  }
  if (s.tempFileWriteSize < size) {
    fail("\"" + m + "_temp_file_write_size\" must be equal to or greater than the maximum of the "
         "value of \"" + m + "_buffer_size\" and one of the \"" + m + "_buffers\"");
  }
  if (s.maxTempFileSize != 0 && s.maxTempFileSize < size) {
    fail("\"" + m + "_max_temp_file_size\" must be equal to zero to disable temporary files usage "
         "or must be equal to or greater than the maximum of the value of "
         "\"" + m + "_buffer_size\" and one of the \"" + m + "_buffers\"");
  }
  checkProxySsl(s, at, s.uwsgi ? "uwsgi" : "proxy");
}

}  // namespace portico::config
