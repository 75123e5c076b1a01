#include "upstream/proxy_rewrite.h"

#include <memory>

#include "http/exchange.h"

namespace portico::upstream {
namespace {

using Kind = config::ProxyRewriteRule::Kind;

// value = value[0, at) + replacement + value[at + length, end) (ngx_http_proxy_rewrite).
void splice(std::string& value, size_t at, size_t length, std::string_view replacement) {
  value.replace(at, length, replacement);
}

// nginx's ngx_strcasestrn(value, "url=")
size_t findUrl(std::string_view value) {
  for (size_t i = 0; i + 4 <= value.size(); ++i) {
    if (http::iequals(value.substr(i, 4), "url=")) return i;
  }
  return std::string_view::npos;
}

// One attribute of a Set-Cookie value, as ngx_http_proxy_parse_cookie splits it.
struct CookieAttr {
  std::string key;
  std::optional<std::string> value;
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

std::vector<CookieAttr> parseCookie(std::string_view value) {
  std::vector<CookieAttr> attrs;
  for (;;) {
    size_t semi = value.find(';');
    std::string_view part = value.substr(0, semi);
    size_t eq = part.find('=');
    CookieAttr attr;
    attr.key = std::string(trim(part.substr(0, eq)));
    if (eq != std::string_view::npos) attr.value = std::string(trim(part.substr(eq + 1)));
    attrs.push_back(std::move(attr));
    if (semi == std::string_view::npos) break;
    value.remove_prefix(semi + 1);
  }
  return attrs;
}

}  // namespace

std::vector<std::string> namedGroups(std::string_view pattern) {
  std::vector<std::string> names;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      ++i;  // an escaped character is never a group
      continue;
    }
    if (pattern[i] != '(' || i + 2 >= pattern.size() || pattern[i + 1] != '?') continue;
    size_t start = i + 2;
    char close = '>';
    if (pattern[start] == 'P' && start + 1 < pattern.size() && pattern[start + 1] == '<') {
      start += 2;
    } else if (pattern[start] == '<') {
      ++start;
      if (start < pattern.size() && (pattern[start] == '=' || pattern[start] == '!')) continue;
    } else if (pattern[start] == '\'') {
      ++start;
      close = '\'';
    } else {
      continue;
    }
    size_t end = pattern.find(close, start);
    if (end == std::string_view::npos) break;
    names.emplace_back(pattern.substr(start, end - start));
  }
  return names;
}

std::optional<ProxyRewriter> ProxyRewriter::compile(
    const std::vector<config::ProxyRewriteRule>& rules,
    const std::vector<std::string>& captureNames, const http::VariableRegistry* users,
    std::string& error) {
  ProxyRewriter out;
  for (const config::ProxyRewriteRule& rule : rules) {
    Rule compiled;
    compiled.kind = rule.kind;
    std::vector<std::string> names = captureNames;
    if (rule.kind == Kind::kRegex || rule.kind == Kind::kRegexCaseless) {
      compiled.regex = Regex::compile(rule.pattern, rule.kind == Kind::kRegexCaseless, error);
      if (!compiled.regex) return std::nullopt;  // the loader checked it: not expected
      for (std::string& name : namedGroups(rule.pattern)) names.push_back(std::move(name));
    } else {
      auto pattern = http::Template::compile(rule.pattern, error, captureNames, users);
      if (!pattern) return std::nullopt;
      compiled.pattern = std::move(*pattern);
    }
    auto replacement = http::Template::compile(rule.replacement, error, names, users);
    if (!replacement) return std::nullopt;
    compiled.replacement = std::move(*replacement);
    out.rules_.push_back(std::move(compiled));
  }
  return out;
}

bool ProxyRewriter::rewrite(std::string& value, size_t prefix, const RewriteExpand& expand) const {
  if (prefix > value.size()) return false;
  for (const Rule& rule : rules_) {
    size_t length = value.size() - prefix;
    switch (rule.kind) {
      case Kind::kPrefix: {
        std::string pattern =
            rule.pattern.constant() ? rule.pattern.source() : expand(rule.pattern, nullptr);
        if (pattern.size() > length || value.compare(prefix, pattern.size(), pattern) != 0) {
          continue;
        }
        splice(value, prefix, pattern.size(), expand(rule.replacement, nullptr));
        return true;
      }
      case Kind::kDomain: {
        std::string pattern =
            rule.pattern.constant() ? rule.pattern.source() : expand(rule.pattern, nullptr);
        size_t at = prefix;
        if (length > 0 && value[at] == '.') {
          ++at;
          --length;
        }
        if (!http::iequals(pattern, std::string_view(value).substr(at, length))) continue;
        splice(value, at, length, expand(rule.replacement, nullptr));
        return true;
      }
      case Kind::kRegex:
      case Kind::kRegexCaseless: {
        Regex::Match match;
        if (!rule.regex->match(std::string_view(value).substr(prefix), match)) continue;
        splice(value, prefix, length, expand(rule.replacement, &match));
        return true;
      }
    }
  }
  return false;
}

bool rewriteRefresh(const ProxyRewriter& redirects, std::string& value,
                    const RewriteExpand& expand) {
  size_t url = findUrl(value);
  if (url == std::string_view::npos) return false;
  return redirects.rewrite(value, url + 4, expand);
}

std::optional<CookieFlagger> CookieFlagger::compile(
    const std::vector<config::ProxyCookieFlags>& lines,
    const std::vector<std::string>& captureNames, const http::VariableRegistry* users,
    std::string& error) {
  CookieFlagger out;
  for (const config::ProxyCookieFlags& line : lines) {
    Line compiled;
    std::vector<std::string> names = captureNames;
    if (line.regex) {
      compiled.regex = Regex::compile(line.cookie, true, error);
      if (!compiled.regex) return std::nullopt;  // the loader checked it: not expected
      for (std::string& name : namedGroups(line.cookie)) names.push_back(std::move(name));
    } else {
      compiled.cookie = http::Template::compile(line.cookie, error, captureNames, users);
      if (!compiled.cookie) return std::nullopt;
    }
    for (const std::string& flag : line.flags) {
      auto t = http::Template::compile(flag, error, names, users);
      if (!t) return std::nullopt;
      compiled.flags.push_back(std::move(*t));
    }
    out.lines_.push_back(std::move(compiled));
  }
  return out;
}

unsigned CookieFlagger::flagsFor(std::string_view name, const RewriteExpand& expand) const {
  static constexpr std::pair<std::string_view, unsigned> kFlags[] = {
      {"secure", kSecureOn},          {"nosecure", kSecureOff},
      {"httponly", kHttpOnlyOn},      {"nohttponly", kHttpOnlyOff},
      {"samesite=strict", kSameSiteStrict}, {"samesite=lax", kSameSiteLax},
      {"samesite=none", kSameSiteNone},     {"nosamesite", kSameSiteOff}};
  for (const Line& line : lines_) {
    Regex::Match match;
    const Regex::Match* captures = nullptr;
    if (line.regex) {
      if (!line.regex->match(name, match)) continue;
      captures = &match;
    } else {
      std::string cookie =
          line.cookie->constant() ? line.cookie->source() : expand(*line.cookie, nullptr);
      if (!http::iequals(cookie, name)) continue;
    }
    unsigned bits = 0;
    for (const http::Template& flag : line.flags) {
      std::string value = flag.constant() ? flag.source() : expand(flag, captures);
      for (const auto& [word, bit] : kFlags) {
        if (http::iequals(word, value)) {
          bits |= bit;
          break;
        }
      }
    }
    return bits;  // the first line that names the cookie decides
  }
  return 0;
}

namespace {

// ngx_http_proxy_edit_cookie_flags: the attributes present are kept, dropped or (SameSite)
// given the value asked for; the flags still to set are appended.
void editCookieFlags(std::vector<CookieAttr>& attrs, unsigned flags) {
  using F = CookieFlagger;
  // In nginx's order of precedence: of several SameSite flags the first one set wins.
  static constexpr std::pair<unsigned, std::string_view> kSameSite[] = {
      {F::kSameSiteStrict, "Strict"}, {F::kSameSiteLax, "Lax"}, {F::kSameSiteNone, "None"}};
  std::vector<CookieAttr> kept;
  kept.push_back(std::move(attrs[0]));
  for (size_t i = 1; i < attrs.size(); ++i) {
    CookieAttr& attr = attrs[i];
    if (http::iequals(attr.key, "secure")) {
      if (flags & F::kSecureOn) {
        flags &= ~F::kSecureOn;
      } else if (flags & F::kSecureOff) {
        continue;
      }
    } else if (http::iequals(attr.key, "httponly")) {
      if (flags & F::kHttpOnlyOn) {
        flags &= ~F::kHttpOnlyOn;
      } else if (flags & F::kHttpOnlyOff) {
        continue;
      }
    } else if (http::iequals(attr.key, "samesite")) {
      bool set = false;
      for (const auto& [bit, word] : kSameSite) {
        if (!(flags & bit)) continue;
        flags &= ~bit;
        if (!attr.value || !http::iequals(*attr.value, word)) {
          attr.key = "SameSite";
          attr.value = std::string(word);
        }
        set = true;
        break;
      }
      if (!set && (flags & F::kSameSiteOff)) continue;
    }
    kept.push_back(std::move(attr));
  }
  if (flags & F::kSecureOn) kept.push_back({"Secure", std::nullopt});
  if (flags & F::kHttpOnlyOn) kept.push_back({"HttpOnly", std::nullopt});
  for (const auto& [bit, word] : kSameSite) {
    if (!(flags & bit)) continue;
    kept.push_back({"SameSite", std::string(word)});
    break;
  }
  attrs = std::move(kept);
}

}  // namespace

bool rewriteSetCookie(const ProxyRewriter* domains, const ProxyRewriter* paths,
                      std::string& value, const RewriteExpand& expand,
                      const CookieFlagger* flags) {
  std::vector<CookieAttr> attrs = parseCookie(value);
  if (!attrs[0].value) return false;
  bool changed = false;
  for (size_t i = 1; i < attrs.size(); ++i) {
    CookieAttr& attr = attrs[i];
    if (!attr.value) continue;
    if (domains && http::iequals(attr.key, "domain")) {
      changed = domains->rewrite(*attr.value, 0, expand) || changed;
    }
    if (paths && http::iequals(attr.key, "path")) {
      changed = paths->rewrite(*attr.value, 0, expand) || changed;
    }
  }
  if (flags) {
    if (unsigned bits = flags->flagsFor(attrs[0].key, expand)) {
      editCookieFlags(attrs, bits);
      changed = true;
    }
  }
  if (!changed) return false;
  std::string out;
  for (size_t i = 0; i < attrs.size(); ++i) {
    if (i > 0) out += "; ";
    out += attrs[i].key;
    if (attrs[i].value) out += "=" + *attrs[i].value;
  }
  value = std::move(out);
  return true;
}

std::unique_ptr<ProxyHeaderRewrites> ProxyHeaderRewrites::create(
    const config::ProxySettings& settings, const std::vector<std::string>& captureNames,
    const http::VariableRegistry* users, std::string& error) {
  if (settings.redirects.empty() && settings.cookieDomains.empty() &&
      settings.cookiePaths.empty() && settings.cookieFlags.empty()) {
    return nullptr;
  }
  auto out = std::make_unique<ProxyHeaderRewrites>();
  auto one = [&](const std::vector<config::ProxyRewriteRule>& rules,
                 std::optional<ProxyRewriter>& slot) {
    if (rules.empty()) return true;
    slot = ProxyRewriter::compile(rules, captureNames, users, error);
    return slot.has_value();
  };
  if (!one(settings.redirects, out->redirects_) || !one(settings.cookieDomains, out->domains_) ||
      !one(settings.cookiePaths, out->paths_)) {
    return nullptr;
  }
  if (!settings.cookieFlags.empty()) {
    out->flags_ = CookieFlagger::compile(settings.cookieFlags, captureNames, users, error);
    if (!out->flags_) return nullptr;
  }
  return out;
}

void ProxyHeaderRewrites::apply(std::vector<http::Header>& headers, const RewriteExpand& expand,
                                const std::function<std::string(std::string_view)>& absolute) const {
  for (http::Header& header : headers) {
    if (redirects_ && http::iequals(header.name, "Location") && !header.value.empty()) {
      // ngx_http_upstream_rewrite_location: only a rewritten Location becomes the response's
      // location, which the header filter makes absolute when it is a path.
      if (redirects_->rewrite(header.value, 0, expand) && header.value.starts_with('/')) {
        header.value = absolute(header.value);
      }
    } else if (redirects_ && http::iequals(header.name, "Refresh")) {
      rewriteRefresh(*redirects_, header.value, expand);
    } else if ((domains_ || paths_ || flags_) && http::iequals(header.name, "Set-Cookie")) {
      rewriteSetCookie(domains_ ? &*domains_ : nullptr, paths_ ? &*paths_ : nullptr,
                       header.value, expand, flags_ ? &*flags_ : nullptr);
    }
  }
}

void ProxyHeaderRewrites::apply(std::vector<http::Header>& headers,
                                const http::Exchange& exchange) const {
  apply(
      headers,
      [&exchange](const http::Template& value, const Regex::Match* captures) {
        if (value.constant()) return value.source();
        return captures ? exchange.expandWithCaptures(value, *captures) : exchange.expand(value);
      },
      [&exchange](std::string_view path) { return exchange.absoluteLocation(path); });
}

}  // namespace portico::upstream
