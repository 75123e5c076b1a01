#pragma once

// proxy_redirect, proxy_cookie_domain and proxy_cookie_path as nginx applies them to an
// upstream's response headers (ngx_http_proxy_rewrite_*, ngx_http_upstream_rewrite_location,
// _refresh, _set_cookie): the compiled rules and the rewrite of one header value. Pure: the
// variables (and a regex's captures) are expanded by a callback the engine gives, so the rules
// are unit-tested without a request.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/site.h"
#include "core/regex.h"
#include "http/request.h"
#include "http/variables.h"

namespace portico::http {
class Exchange;
}

namespace portico::upstream {

// Expands a template for the request; `captures` (not null after a regex rule matched) are its
// $1..$9 and named groups.
using RewriteExpand =
    std::function<std::string(const http::Template& value, const Regex::Match* captures)>;

// One directive's compiled rules, tried in order; the first that matches rewrites. Immutable
// after compile (one per location, shared by its requests); loop thread.
class ProxyRewriter {
 public:
  // nullopt with `error` (an unknown variable) when a pattern or replacement does not compile.
  static std::optional<ProxyRewriter> compile(const std::vector<config::ProxyRewriteRule>& rules,
                                              const std::vector<std::string>& captureNames,
                                              const http::VariableRegistry* users,
                                              std::string& error);
  bool empty() const { return rules_.empty(); }
  // Rewrites value[prefix..] with the first rule that matches it: a prefix rule replaces what
  // it matched (case-sensitive), a domain rule the whole rest (caseless, a leading '.' kept),
  // a regex rule the whole rest. False when no rule matched (the value is unchanged).
  bool rewrite(std::string& value, size_t prefix, const RewriteExpand& expand) const;

 private:
  struct Rule {
    config::ProxyRewriteRule::Kind kind;
    http::Template pattern;
    std::optional<Regex> regex;
    http::Template replacement;
  };
  std::vector<Rule> rules_;
};

// Refresh: the URL after the first "url=" (caseless) is rewritten; false without one or when
// no rule matched.
bool rewriteRefresh(const ProxyRewriter& redirects, std::string& value,
                    const RewriteExpand& expand);

// proxy_cookie_flags' compiled lines (ngx_http_proxy_rewrite_cookie_flags): the first line
// whose cookie names the Set-Cookie's cookie gives the flags to set or clear. Immutable after
// compile (one per location); loop thread.
class CookieFlagger {
 public:
  static constexpr unsigned kSecureOn = 1, kSecureOff = 2, kHttpOnlyOn = 4, kHttpOnlyOff = 8,
                            kSameSiteStrict = 16, kSameSiteLax = 32, kSameSiteNone = 64,
                            kSameSiteOff = 128;
  // nullopt with `error` (an unknown variable) when a cookie or flag does not compile.
  static std::optional<CookieFlagger> compile(const std::vector<config::ProxyCookieFlags>& lines,
                                              const std::vector<std::string>& captureNames,
                                              const http::VariableRegistry* users,
                                              std::string& error);
  // The flag bits for the cookie `name` (0: no line names it, or none of its flags is one).
  unsigned flagsFor(std::string_view name, const RewriteExpand& expand) const;

 private:
  struct Line {
    std::optional<http::Template> cookie;
    std::optional<Regex> regex;
    std::vector<http::Template> flags;
  };
  std::vector<Line> lines_;
};

// Set-Cookie: the domain= and path= attributes through their rules, and the flags of
// proxy_cookie_flags (null: none). When one changed, the value is rebuilt as nginx rebuilds
// it: attributes trimmed and joined with "; ". A cookie whose first attribute has no '=' is
// left alone. False when nothing changed.
bool rewriteSetCookie(const ProxyRewriter* domains, const ProxyRewriter* paths,
                      std::string& value, const RewriteExpand& expand,
                      const CookieFlagger* flags = nullptr);

// The names of a regex's named groups ((?<n>..), (?P<n>..), (?'n'..)), which a replacement
// may use as variables, as nginx makes each named capture a variable.
std::vector<std::string> namedGroups(std::string_view pattern);

// A location's response-header rewrites (proxy_redirect, proxy_cookie_*), compiled once by
// its ProxyHandler, which owns it; loop thread.
class ProxyHeaderRewrites {
 public:
  // Null when the settings rewrite nothing; null with `error` set when a rule does not compile.
  static std::unique_ptr<ProxyHeaderRewrites> create(const config::ProxySettings& settings,
                                                     const std::vector<std::string>& captureNames,
                                                     const http::VariableRegistry* users,
                                                     std::string& error);
  // Rewrites Location, Refresh and Set-Cookie in `headers` (a rewritten Location that is a
  // path becomes absolute as nginx's header filter makes it: `absolute`).
  void apply(std::vector<http::Header>& headers, const RewriteExpand& expand,
             const std::function<std::string(std::string_view)>& absolute) const;
  // The same with the request's variables and absolute_redirect rules.
  void apply(std::vector<http::Header>& headers, const http::Exchange& exchange) const;

 private:
  std::optional<ProxyRewriter> redirects_, domains_, paths_;
  std::optional<CookieFlagger> flags_;
};

}  // namespace portico::upstream
