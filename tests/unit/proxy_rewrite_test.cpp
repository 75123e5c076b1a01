// proxy_redirect / proxy_cookie_domain / proxy_cookie_path rules (upstream/proxy_rewrite.h),
// checked against what nginx 1.22's ngx_http_proxy_rewrite_* do with the same values.

#include "upstream/proxy_rewrite.h"

#include <gtest/gtest.h>

namespace portico::upstream {
namespace {

using Kind = config::ProxyRewriteRule::Kind;

config::ProxyRewriteRule rule(Kind kind, std::string pattern, std::string replacement) {
  config::ProxyRewriteRule r;
  r.kind = kind;
  r.pattern = std::move(pattern);
  r.replacement = std::move(replacement);
  return r;
}

// Expands $host as "front.example" and captures as the rules give them.
std::string expandFor(const http::Template& value, const Regex::Match* captures) {
  http::VariableContext context;
  http::Request request;
  request.headers.push_back({"Host", "front.example"});
  context.request = &request;
  context.host = "front.example";
  context.captures = captures;
  return value.expand(context);
}

ProxyRewriter compile(const std::vector<config::ProxyRewriteRule>& rules) {
  std::string error;
  auto r = ProxyRewriter::compile(rules, {}, nullptr, error);
  EXPECT_TRUE(r.has_value()) << error;
  return r ? *r : ProxyRewriter();
}

std::string rewritten(const ProxyRewriter& r, std::string value, size_t prefix = 0) {
  r.rewrite(value, prefix, expandFor);
  return value;
}

TEST(ProxyRewrite, PrefixRulesReplaceWhatMatchedCaseSensitively) {
  auto r = compile({rule(Kind::kPrefix, "http://127.0.0.1:8081/app/", "/front/"),
                    rule(Kind::kPrefix, "http://127.0.0.1:8081/", "/")});
  EXPECT_EQ(rewritten(r, "http://127.0.0.1:8081/app/x?y"), "/front/x?y");
  EXPECT_EQ(rewritten(r, "http://127.0.0.1:8081/other"), "/other");
  EXPECT_EQ(rewritten(r, "HTTP://127.0.0.1:8081/other"), "HTTP://127.0.0.1:8081/other");
  EXPECT_EQ(rewritten(r, "http://127.0.0.1:8081"), "http://127.0.0.1:8081");  // shorter
  std::string value = "/relative";
  EXPECT_FALSE(r.rewrite(value, 0, expandFor));
}

TEST(ProxyRewrite, VariablesInPatternAndReplacement) {
  auto r = compile({rule(Kind::kPrefix, "http://$host/", "https://$host:8443/")});
  EXPECT_EQ(rewritten(r, "http://front.example/a"), "https://front.example:8443/a");
  EXPECT_EQ(rewritten(r, "http://back.example/a"), "http://back.example/a");
}

TEST(ProxyRewrite, RegexRulesReplaceTheWholeValueWithCaptures) {
  auto r = compile({rule(Kind::kRegex, "^http://[^/]+:(\\d+)(/.*)$", "/port$1$2"),
                    rule(Kind::kRegexCaseless, "^HTTPS://(?<h>[^/]+)/", "http://$h/")});
  EXPECT_EQ(rewritten(r, "http://b:81/x/y"), "/port81/x/y");
  // A caseless regex replaces the whole value (what followed the match is gone, as nginx).
  EXPECT_EQ(rewritten(r, "https://b.example/rest"), "http://b.example/");
  EXPECT_EQ(rewritten(r, "ftp://b/x"), "ftp://b/x");
}

TEST(ProxyRewrite, RefreshRewritesAfterUrl) {
  auto r = compile({rule(Kind::kPrefix, "http://b/", "/")});
  std::string value = "5; URL=http://b/next";
  EXPECT_TRUE(rewriteRefresh(r, value, expandFor));
  EXPECT_EQ(value, "5; URL=/next");
  value = "5";
  EXPECT_FALSE(rewriteRefresh(r, value, expandFor));
  EXPECT_EQ(value, "5");
}

TEST(ProxyRewrite, CookieDomainAndPath) {
  auto domains = compile({rule(Kind::kDomain, "backend.local", "front.example")});
  auto paths = compile({rule(Kind::kPrefix, "/app/", "/"),
                        rule(Kind::kRegexCaseless, "^/X(.*)$", "/y$1")});
  std::string value = "id=1;  Domain=.BACKEND.local ; Path=/app/x; HttpOnly";
  EXPECT_TRUE(rewriteSetCookie(&domains, &paths, value, expandFor));
  EXPECT_EQ(value, "id=1; Domain=.front.example; Path=/x; HttpOnly");
  value = "id=1; domain=other.local;path=/xa";
  EXPECT_TRUE(rewriteSetCookie(&domains, &paths, value, expandFor));
  EXPECT_EQ(value, "id=1; domain=other.local; path=/ya");
  // Nothing matched: the value is kept byte for byte.
  value = "id=1;  domain=other.local";
  EXPECT_FALSE(rewriteSetCookie(&domains, &paths, value, expandFor));
  EXPECT_EQ(value, "id=1;  domain=other.local");
  // A first attribute without '=' is not a cookie nginx rewrites.
  value = "broken; path=/app/";
  EXPECT_FALSE(rewriteSetCookie(&domains, &paths, value, expandFor));
  // A domain rule compares the whole value.
  value = "a=b; domain=sub.backend.local";
  EXPECT_FALSE(rewriteSetCookie(&domains, nullptr, value, expandFor));
}

config::ProxyCookieFlags flagsLine(std::string cookie, std::vector<std::string> flags,
                                   bool regex = false) {
  config::ProxyCookieFlags line;
  line.cookie = std::move(cookie);
  line.flags = std::move(flags);
  line.regex = regex;
  return line;
}

TEST(ProxyRewrite, CookieFlagsSetReplaceAndClearAsNginx) {
  std::string error;
  auto flags = CookieFlagger::compile(
      {flagsLine("a", {"secure", "httponly", "samesite=none"}),
       flagsLine("b", {"nosecure", "nohttponly", "nosamesite"}),
       flagsLine("BAR", {"httponly"}, true),
       flagsLine("$host", {"samesite=lax", "bogus"}),
       flagsLine("a", {"nosecure"})},  // never reached: the first line naming a cookie decides
      {}, nullptr, error);
  ASSERT_TRUE(flags) << error;
  std::string value = "A=1; Path=/; secure; SameSite=Lax";
  EXPECT_TRUE(rewriteSetCookie(nullptr, nullptr, value, expandFor, &*flags));
  EXPECT_EQ(value, "A=1; Path=/; secure; SameSite=None; HttpOnly");
  value = "b=2;Secure; HTTPONLY; samesite=strict; Domain=x";
  EXPECT_TRUE(rewriteSetCookie(nullptr, nullptr, value, expandFor, &*flags));
  EXPECT_EQ(value, "b=2; Domain=x");
  value = "foobarbaz=3";
  EXPECT_TRUE(rewriteSetCookie(nullptr, nullptr, value, expandFor, &*flags));
  EXPECT_EQ(value, "foobarbaz=3; HttpOnly");
  value = "front.example=4; samesite=lax";  // already as asked: kept, the value rebuilt
  EXPECT_TRUE(rewriteSetCookie(nullptr, nullptr, value, expandFor, &*flags));
  EXPECT_EQ(value, "front.example=4; samesite=lax");
  // No line names the cookie: byte for byte.
  value = "nx=5;samesite=none";
  EXPECT_FALSE(rewriteSetCookie(nullptr, nullptr, value, expandFor, &*flags));
  EXPECT_EQ(value, "nx=5;samesite=none");
}

TEST(ProxyRewrite, NamedGroups) {
  EXPECT_EQ(namedGroups("^(?<a>x)(?P<bb>y)(?'c'z)(?<=q)(?!r)\\(?<no>"),
            (std::vector<std::string>{"a", "bb", "c"}));
}

TEST(ProxyRewrite, HeaderRewritesMakeRewrittenPathsAbsolute) {
  config::ProxySettings settings;
  settings.redirects = {rule(Kind::kPrefix, "http://b/", "/")};
  std::string error;
  auto rewrites = ProxyHeaderRewrites::create(settings, {}, nullptr, error);
  ASSERT_TRUE(rewrites) << error;
  std::vector<http::Header> headers = {{"Location", "http://b/x"},
                                       {"Content-Location", "http://b/x"},
                                       {"Refresh", "0; url=http://b/r"}};
  rewrites->apply(headers, expandFor,
                  [](std::string_view path) { return "http://front" + std::string(path); });
  EXPECT_EQ(headers[0].value, "http://front/x");
  EXPECT_EQ(headers[1].value, "http://b/x");
  EXPECT_EQ(headers[2].value, "0; url=/r");
  config::ProxySettings none;
  EXPECT_EQ(ProxyHeaderRewrites::create(none, {}, nullptr, error), nullptr);
  EXPECT_TRUE(error.empty());
}

TEST(ProxyRewrite, UnknownVariableIsAnError) {
  std::string error;
  EXPECT_FALSE(ProxyRewriter::compile({rule(Kind::kPrefix, "/", "$nosuch")}, {}, nullptr, error));
  EXPECT_NE(error.find("nosuch"), std::string::npos) << error;
}

}  // namespace
}  // namespace portico::upstream
