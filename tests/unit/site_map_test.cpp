#include "http/site_map.h"

#include <gtest/gtest.h>

#include "config/site_from_flags.h"
#include "pipeline/site_handler.h"

namespace portico::http {
namespace {

using Match = config::Location::Match;

config::Location loc(Match match, std::string pattern, std::vector<config::Location> children = {}) {
  config::Location l;
  l.match = match;
  l.pattern = std::move(pattern);
  l.children = std::move(children);
  return l;
}

config::Location app(std::string pattern) {
  config::Location l = loc(Match::kPrefix, std::move(pattern));
  l.settings.wsgi = config::WsgiSpec{};
  return l;
}

config::ListenSpec listen(std::string host, uint16_t port, bool def = false) {
  config::ListenSpec l;
  l.host = std::move(host);
  l.port = port;
  l.defaultServer = def;
  l.spec = l.host + ":" + std::to_string(port);
  return l;
}

// The pattern of the location answering `uri` ("" when none; "301" for auto_redirect).
std::string lookup(const SiteMap& map, std::string_view uri, size_t server = 0) {
  LocationMatch m = SiteMap::match(*map.servers()[server], uri);
  if (m.redirectToSlash) return "301 " + m.node->config->pattern;
  return m.node ? m.node->config->pattern : std::string();
}

// Apps auto-redirect, as the wsgi_app content module says (process/wsgi_content.h).
bool appsAutoRedirect(const config::LocationSettings& settings) {
  return settings.wsgi.has_value();
}

std::unique_ptr<SiteMap> build(const config::HttpSite& site) {
  std::string error;
  auto map = SiteMap::build(site, error, appsAutoRedirect);
  EXPECT_TRUE(map) << error;
  return map;
}

TEST(LocationMatching, NginxOrder) {
  // The example of nginx's `location` documentation, plus ^~ and caseless regexes.
  config::HttpSite site;
  site.servers.emplace_back();
  auto& s = site.servers.back();
  s.locations = {loc(Match::kExact, "/"),
                 loc(Match::kPrefix, "/"),
                 loc(Match::kPrefix, "/documents/"),
                 loc(Match::kPrefixNoRegex, "/images/"),
                 loc(Match::kRegexCaseless, "\\.(gif|jpg|jpeg)$"),
                 loc(Match::kRegex, "\\.PNG$")};
  auto map = build(site);
  EXPECT_EQ(lookup(*map, "/"), "/") ;
  EXPECT_EQ(SiteMap::match(*map->servers()[0], "/").node->config->match, Match::kExact);
  EXPECT_EQ(SiteMap::match(*map->servers()[0], "/index.html").node->config->match, Match::kPrefix);
  EXPECT_EQ(lookup(*map, "/documents/document.html"), "/documents/");
  EXPECT_EQ(lookup(*map, "/images/1.gif"), "/images/");       // ^~ stops the regexes
  EXPECT_EQ(lookup(*map, "/documents/1.JPG"), "\\.(gif|jpg|jpeg)$");  // ~* is caseless
  EXPECT_EQ(lookup(*map, "/x/1.png"), "/");                   // ~ is case-sensitive
  EXPECT_EQ(lookup(*map, "/x/1.PNG"), "\\.PNG$");
}

TEST(LocationMatching, RegexesInFileOrderFirstWins) {
  config::HttpSite site;
  site.servers.emplace_back();
  site.servers.back().locations = {loc(Match::kRegex, "^/a"), loc(Match::kRegex, "^/a/b")};
  auto map = build(site);
  EXPECT_EQ(lookup(*map, "/a/b/c"), "^/a");
  EXPECT_EQ(lookup(*map, "/z"), "");  // nothing matches: the server level answers
}

TEST(LocationMatching, NestedLocations) {
  config::HttpSite site;
  site.servers.emplace_back();
  site.servers.back().locations = {
      loc(Match::kPrefix, "/",
          {loc(Match::kPrefix, "/static/"), loc(Match::kRegex, "\\.css$")}),
      loc(Match::kRegex, "\\.(css|js)$"),
      loc(Match::kPrefixNoRegex, "/media/", {loc(Match::kRegex, "\\.mp4$")})};
  auto map = build(site);
  // The longest prefix's nested regexes come before the outer ones.
  EXPECT_EQ(lookup(*map, "/x.css"), "\\.css$");
  EXPECT_EQ(lookup(*map, "/x.js"), "\\.(css|js)$");
  EXPECT_EQ(lookup(*map, "/static/a.txt"), "/static/");
  EXPECT_EQ(lookup(*map, "/static/a.css"), "\\.css$");
  EXPECT_EQ(lookup(*map, "/media/v.mp4"), "\\.mp4$");  // nested regexes of ^~ still run
  EXPECT_EQ(lookup(*map, "/media/a.js"), "/media/");   // but not the outer ones
}

TEST(LocationMatching, RegexCapturesAndNamedLocations) {
  config::HttpSite site;
  site.servers.emplace_back();
  site.servers.back().locations = {loc(Match::kRegex, "^/users/(?<id>\\d+)/(.*)$"),
                                   loc(Match::kNamed, "@fallback")};
  auto map = build(site);
  LocationMatch m = SiteMap::match(*map->servers()[0], "/users/42/photo");
  ASSERT_TRUE(m.hasCaptures);
  EXPECT_EQ(m.captures.groups[1], "42");
  EXPECT_EQ(m.captures.groups[2], "photo");
  EXPECT_EQ(lookup(*map, "/@fallback"), "");  // named locations never match a URI
  ASSERT_TRUE(SiteMap::named(*map->servers()[0], "@fallback"));
  EXPECT_FALSE(SiteMap::named(*map->servers()[0], "@nope"));
}

TEST(LocationMatching, AutoRedirectForAppLocations) {
  config::HttpSite site;
  site.servers.emplace_back();
  site.servers.back().locations = {loc(Match::kPrefix, "/"), app("/app/"),
                                   loc(Match::kPrefix, "/files/"), loc(Match::kRegex, "^/app")};
  auto map = build(site);
  EXPECT_EQ(lookup(*map, "/app"), "301 /app/");   // before the regexes, as nginx
  EXPECT_EQ(lookup(*map, "/app/x"), "^/app");
  EXPECT_EQ(lookup(*map, "/files"), "/");          // no app: no redirect
  std::string error;
  auto plain = SiteMap::build(site, error);  // no content module sets auto_redirect
  ASSERT_TRUE(plain) << error;
  EXPECT_EQ(lookup(*plain, "/app"), "^/app");  // the regex, as for any location
  site.servers.back().locations.push_back(loc(Match::kExact, "/app"));
  map = build(site);
  EXPECT_EQ(lookup(*map, "/app"), "/app");         // an exact location wins
}

TEST(LocationMatching, InvalidRegexNamesItsSource) {
  config::HttpSite site;
  site.servers.emplace_back();
  config::Location bad = loc(Match::kRegex, "(unclosed");
  bad.source = {"/etc/site.conf", 12};
  site.servers.back().locations = {bad};
  std::string error;
  EXPECT_FALSE(SiteMap::build(site, error));
  EXPECT_NE(error.find("/etc/site.conf:12"), std::string::npos) << error;
}

config::VirtualServer named(std::vector<std::string> names, std::vector<config::ListenSpec> listens) {
  config::VirtualServer s;
  s.serverNames = std::move(names);
  s.listens = std::move(listens);
  return s;
}

TEST(ServerSelection, NginxOrder) {
  config::HttpSite site;
  site.servers = {named({"default.test"}, {listen("", 80)}),
                  named({"example.com", "www.example.com"}, {listen("", 80)}),
                  named({"*.example.com"}, {listen("", 80)}),
                  named({"*.sub.example.com"}, {listen("", 80)}),
                  named({"www.example.*"}, {listen("", 80)}),
                  named({".example.org"}, {listen("", 80)}),
                  named({"~^(?<user>[a-z]+)\\.example\\.net$"}, {listen("", 80)}),
                  named({"fallback.test"}, {listen("", 80, true)})};
  auto map = build(site);
  ASSERT_EQ(map->groups().size(), 1u);
  const ServerGroup& g = *map->groups()[0];
  auto pick = [&](std::string_view host) { return g.select(host, nullptr)->index; };
  EXPECT_EQ(pick("example.com"), 1u);
  EXPECT_EQ(pick("www.example.com"), 1u);        // exact beats *.example.com
  EXPECT_EQ(pick("a.example.com"), 2u);
  EXPECT_EQ(pick("a.sub.example.com"), 3u);      // the longest leading wildcard
  EXPECT_EQ(pick("www.example.de"), 4u);
  EXPECT_EQ(pick("example.org"), 5u);            // ".example.org" also names example.org
  EXPECT_EQ(pick("x.example.org"), 5u);
  Regex::Match captures;
  EXPECT_EQ(g.select("bob.example.net", &captures)->index, 6u);
  ASSERT_EQ(captures.named.size(), 1u);
  EXPECT_EQ(captures.named[0].second, "bob");
  EXPECT_EQ(pick("unknown.test"), 7u);           // default_server
  EXPECT_EQ(pick(""), 7u);                       // no Host: the default server
}

TEST(ServerSelection, DefaultIsTheFirstWithoutDefaultServer) {
  config::HttpSite site;
  site.servers = {named({"a.test"}, {listen("127.0.0.1", 8080)}),
                  named({"b.test"}, {listen("127.0.0.1", 8080)}),
                  named({"c.test"}, {listen("", 8080)})};
  auto map = build(site);
  ASSERT_EQ(map->groups().size(), 2u);
  ConnectionInfo local;
  local.localAddress = "127.0.0.1";
  local.localPort = 8080;
  const ServerGroup* specific = map->groupFor(local, nullptr);
  ASSERT_TRUE(specific);
  EXPECT_EQ(specific->key, "127.0.0.1:8080");
  EXPECT_EQ(specific->select("zzz", nullptr)->index, 0u);
  EXPECT_EQ(specific->select("b.test", nullptr)->index, 1u);
  EXPECT_EQ(specific->select("c.test", nullptr)->index, 0u);  // c.test is not on this address
  local.localAddress = "10.1.2.3";  // arrives through the wildcard socket
  const ServerGroup* wildcard = map->groupFor(local, nullptr);
  ASSERT_TRUE(wildcard);
  EXPECT_EQ(wildcard->key, "0.0.0.0:8080");
  EXPECT_TRUE(wildcard->wildcard);
}

TEST(ServerSelection, UnixAndIpv6AddressesFindTheirGroups) {
  config::HttpSite site;
  config::ListenSpec unix;
  unix.isUnix = true;
  unix.path = "/run/portico/a-rather-long-socket-name-for-the-key.sock";
  unix.spec = "unix:" + unix.path;
  site.servers = {named({"u.test"}, {unix}), named({"v6.test"}, {listen("::1", 8080)}),
                  named({"any6.test"}, {listen("::", 8081)}),
                  named({"any4.test"}, {listen("", 8081)})};
  auto map = build(site);
  ConnectionInfo local;
  local.isUnix = true;
  local.localAddress = unix.path;
  const ServerGroup* g = map->groupFor(local, nullptr);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->key, "unix:" + unix.path);
  local.localAddress = "/run/portico/other.sock";
  EXPECT_EQ(map->groupFor(local, nullptr), nullptr);
  local.isUnix = false;
  local.localAddress = "::1";
  local.localPort = 8080;
  g = map->groupFor(local, nullptr);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->key, "[::1]:8080");
  local.localAddress = "fe80::1234:5678:9abc:def0";  // through the IPv6 wildcard
  local.localPort = 8081;
  g = map->groupFor(local, nullptr);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->key, "[::]:8081");
  local.localAddress = "192.0.2.7";  // through the IPv4 wildcard
  g = map->groupFor(local, nullptr);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->key, "0.0.0.0:8081");
  local.localPort = 9999;
  EXPECT_EQ(map->groupFor(local, map->groups().front().get()), map->groups().front().get());
}

TEST(ServerSelection, DuplicateDefaultServerIsAnError) {
  config::HttpSite site;
  site.servers = {named({"a"}, {listen("", 80, true)}), named({"b"}, {listen("", 80, true)})};
  std::string error;
  EXPECT_FALSE(SiteMap::build(site, error));
  EXPECT_NE(error.find("duplicate default server"), std::string::npos) << error;
}

TEST(SiteFromFlags, GunicornFlagsBecomeOneServer) {
  config::Config c;
  config::GunicornFlags flags;
  flags.binds.push_back({config::BindAddress::Kind::kTcp, "127.0.0.1", 9000, "", "127.0.0.1:9000"});
  flags.statics.push_back({"/static/", "/srv/static/"});
  flags.wsgiApp = "app:application";
  flags.limitRequestBody = 5;
  flags.backlog = 77;
  flags.limitRequestFields = 7;
  flags.serverHeader = false;
  flags.accessLogFile = "-";
  config::siteFromFlags(flags, c);
  ASSERT_EQ(c.site.servers.size(), 1u);
  const auto& s = c.site.servers[0];
  ASSERT_EQ(s.listens.size(), 1u);
  EXPECT_EQ(s.listens[0].port, 9000);
  EXPECT_EQ(s.listens[0].backlog, 77);
  ASSERT_EQ(s.locations.size(), 2u);
  EXPECT_EQ(s.locations[0].pattern, "/static/");
  EXPECT_EQ(*s.locations[0].settings.alias, "/srv/static/");
  EXPECT_EQ(s.locations[0].settings.gzip.staticMode, config::GzipSettings::Static::kOn);
  EXPECT_EQ(s.locations[1].pattern, "/");
  ASSERT_TRUE(s.locations[1].settings.wsgi);
  EXPECT_EQ(s.locations[1].settings.wsgi->app, "app:application");
  EXPECT_EQ(s.locations[1].settings.wsgi->scriptName, "");
  EXPECT_EQ(s.locations[1].settings.clientMaxBodySize, 5u);
  // What nginx's configuration cannot say is the site's own: gunicorn's head limits, access
  // log, no Server header, the --static directory that must exist.
  ASSERT_TRUE(s.fieldLimits);
  EXPECT_EQ(s.fieldLimits->fields, 7u);
  EXPECT_EQ(s.fieldLimits->requestLine, 4094u);
  EXPECT_FALSE(c.site.serverHeader);
  EXPECT_EQ(c.site.processAccessLog.file, "-");
  ASSERT_EQ(c.site.requiredDirectories.size(), 1u);
  EXPECT_EQ(c.site.requiredDirectories[0].path, "/srv/static/");

  config::Config bare;  // no app: "/" answers 404, the default bind is 127.0.0.1:8000
  config::siteFromFlags(config::GunicornFlags{}, bare);
  EXPECT_EQ(bare.site.servers[0].listens[0].port, 8000);
  ASSERT_EQ(bare.site.servers[0].locations.size(), 1u);
  EXPECT_EQ(bare.site.servers[0].locations[0].settings.rewrites.at(0).returnSpec.code, 404);
}

TEST(RedirectLocation, AbsoluteServerNameAndPort) {
  config::LocationSettings s;
  ConnectionInfo c;
  c.localAddress = "127.0.0.1";
  c.localPort = 8080;
  EXPECT_EQ(pipeline::buildRedirectLocation("/dir/", s, "example.com", "srv", c),
            "http://example.com:8080/dir/");
  s.serverNameInRedirect = true;
  EXPECT_EQ(pipeline::buildRedirectLocation("/dir/", s, "example.com", "srv", c),
            "http://srv:8080/dir/");
  s.portInRedirect = false;
  EXPECT_EQ(pipeline::buildRedirectLocation("/dir/", s, "example.com", "srv", c), "http://srv/dir/");
  s.serverNameInRedirect = false;
  s.portInRedirect = true;
  c.localPort = 80;
  EXPECT_EQ(pipeline::buildRedirectLocation("/dir/", s, "", "", c), "http://127.0.0.1/dir/");
  s.absoluteRedirect = false;
  EXPECT_EQ(pipeline::buildRedirectLocation("/dir/?a=1", s, "example.com", "", c), "/dir/?a=1");
  s.absoluteRedirect = true;
  EXPECT_EQ(pipeline::buildRedirectLocation("https://x/y", s, "example.com", "", c), "https://x/y");
}

}  // namespace
}  // namespace portico::http
