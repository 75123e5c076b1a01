#include "config/conf_builder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <random>
#include <string>

#include "config/conf_values.h"

namespace portico::config {
namespace {

const std::string kConf = "/etc/p/site.conf";
const std::string kPrefix = "/srv/prefix/";

ConfLoadResult load(const std::string& text, const std::map<std::string, std::string>& files = {},
                    const std::string& globals = "") {
  ConfLoader loader;
  loader.addMemoryFile(kConf, text);
  for (const auto& [path, body] : files) loader.addMemoryFile(path, body);
  ConfLoadOptions options{kConf, kPrefix, globals, ""};
  return loadConf(options, loader);
}

// http { BODY } with events: BODY starts on line 3.
std::string H(const std::string& body) { return "events {}\nhttp {\n" + body + "\n}\n"; }
// A server block inside http: BODY starts on line 4.
std::string S(const std::string& body) { return H("server {\n" + body + "\n}"); }

Config loadOk(const std::string& text, const std::map<std::string, std::string>& files = {}) {
  ConfLoadResult r = load(text, files);
  EXPECT_TRUE(r.ok) << (r.messages.empty() ? "" : r.messages.back());
  return r.config;
}

std::string errorOf(const std::string& text, const std::map<std::string, std::string>& files = {},
                    const std::string& globals = "") {
  ConfLoadResult r = load(text, files, globals);
  if (r.ok) return "(accepted)";
  return r.messages.back();
}

const Location& loc(const Config& c, size_t i) { return c.site.servers.at(0).locations.at(i); }

TEST(ConfBuilder, MainAndEvents) {
  Config c = loadOk(
      "user www-data;\nworker_processes 4;\npid run/p.pid;\nerror_log logs/e.log warn;\n"
      "events { worker_connections 100; multi_accept on; use epoll; }\n");
  if (::geteuid() == 0) {
    EXPECT_EQ(c.user, "www-data");
    EXPECT_EQ(c.group, "www-data");  // nginx: the group named like the user
  }
  EXPECT_EQ(c.workers, 4);
  EXPECT_EQ(c.pidFile, "/srv/prefix/run/p.pid");
  EXPECT_EQ(c.errorLogFile, "/srv/prefix/logs/e.log");
  EXPECT_EQ(c.logLevel, LogLevel::kWarning);
  EXPECT_EQ(c.workerConnections, 100);
  EXPECT_TRUE(c.multiAccept);
  EXPECT_EQ(c.confFile, kConf);
  EXPECT_EQ(c.prefix, kPrefix);
  EXPECT_TRUE(c.site.servers.empty());
  EXPECT_EQ(c.site.logFormats.at("combined").format,
            "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent "
            "\"$http_referer\" \"$http_user_agent\"");

  Config d = loadOk("worker_processes auto;\nerror_log stderr;\ndaemon off;\nevents {}\n");
  EXPECT_EQ(d.workers, 0);
  EXPECT_EQ(d.errorLogFile, "-");
  EXPECT_EQ(d.logLevel, LogLevel::kError);  // nginx's default level
  EXPECT_EQ(d.workerConnections, 512);
  EXPECT_FALSE(d.multiAccept);

  struct Level {
    const char* name;
    LogLevel level;
  };
  for (Level l : {Level{"debug", LogLevel::kDebug}, Level{"info", LogLevel::kInfo},
                  Level{"notice", LogLevel::kNotice}, Level{"error", LogLevel::kError},
                  Level{"crit", LogLevel::kCritical}, Level{"alert", LogLevel::kAlert},
                  Level{"emerg", LogLevel::kEmerg}}) {
    EXPECT_EQ(loadOk(std::string("error_log stderr ") + l.name + ";\nevents {}\n").logLevel,
              l.level)
        << l.name;
  }
}

TEST(ConfBuilder, HttpValuesReachLocationsWhateverTheirOrder) {
  // nginx merges after parsing: directives after the server still apply to it.
  Config c = loadOk(H("server { location /a { location /a/b { } } }\n"
                      "gzip on; sendfile on; root www; client_max_body_size 5m;\n"
                      "keepalive_timeout 10s 20; default_type text/html; server_tokens off;"));
  const Location& a = loc(c, 0);
  for (const LocationSettings* s : std::vector<const LocationSettings*>{&c.site.servers[0].settings, &a.settings,
                                    &a.children.at(0).settings}) {
    EXPECT_TRUE(s->gzip.enabled);
    EXPECT_TRUE(s->sendfile);
    EXPECT_EQ(s->root, "/srv/prefix/www");
    EXPECT_EQ(s->clientMaxBodySize, 5u * 1024 * 1024);
    EXPECT_DOUBLE_EQ(s->keepaliveTimeoutSeconds, 10);
    ASSERT_TRUE(s->keepaliveHeaderSeconds);
    EXPECT_DOUBLE_EQ(*s->keepaliveHeaderSeconds, 20);
    EXPECT_EQ(s->defaultType, "text/html");
    EXPECT_FALSE(s->serverTokens);
  }
}

TEST(ConfBuilder, NearestLevelWins) {
  Config c = loadOk(H("gzip on; root /h;\nserver { gzip off; root /s;\n"
                      "location /a { root /a; location /a/b { gzip on; } }\n location /c { } }"));
  const VirtualServer& s = c.site.servers[0];
  EXPECT_FALSE(s.settings.gzip.enabled);
  EXPECT_EQ(s.settings.root, "/s");
  EXPECT_EQ(loc(c, 0).settings.root, "/a");
  EXPECT_FALSE(loc(c, 0).settings.gzip.enabled);
  EXPECT_TRUE(loc(c, 0).children[0].settings.gzip.enabled);
  EXPECT_EQ(loc(c, 0).children[0].settings.root, "/a");
  EXPECT_EQ(loc(c, 1).settings.root, "/s");
}

TEST(ConfBuilder, AddHeaderAndErrorPageInheritedOnlyByLevelsThatSetNone) {
  Config c = loadOk(H("add_header X-H h; add_header X-I i always; error_page 404 /404.html;\n"
                      "server {\n location /a { add_header X-A a; }\n location /b { }\n"
                      " location /c { error_page 500 =200 /e; } } "));
  EXPECT_EQ(c.site.servers[0].settings.addHeaders.size(), 2u);
  ASSERT_EQ(loc(c, 0).settings.addHeaders.size(), 1u);
  EXPECT_EQ(loc(c, 0).settings.addHeaders[0].name, "X-A");
  ASSERT_EQ(loc(c, 1).settings.addHeaders.size(), 2u);
  EXPECT_TRUE(loc(c, 1).settings.addHeaders[1].always);
  EXPECT_FALSE(loc(c, 1).settings.addHeaders[0].always);
  ASSERT_EQ(loc(c, 1).settings.errorPages.size(), 1u);
  EXPECT_EQ(loc(c, 1).settings.errorPages[0].uri, "/404.html");
  ASSERT_EQ(loc(c, 2).settings.errorPages.size(), 1u);
  EXPECT_EQ(loc(c, 2).settings.errorPages[0].codes, std::vector<int>{500});
  EXPECT_EQ(loc(c, 2).settings.errorPages[0].overrideStatus, 200);
}

TEST(ConfBuilder, ContentDirectivesAreNotInheritedButAliasIs) {
  Config c = loadOk(S("try_files $uri =404; return 301 /x;\n"
                      "location /a/ { alias /data/; try_files $uri $uri/ @f; location /a/b/ { } }\n"
                      "location @f { return 404; }"));
  const VirtualServer& s = c.site.servers[0];
  ASSERT_TRUE(s.settings.tryFiles);
  ASSERT_EQ(s.settings.rewrites.size(), 1u);
  EXPECT_EQ(s.settings.rewrites[0].returnSpec.code, 301);
  const Location& a = loc(c, 0);
  EXPECT_EQ(a.settings.alias, "/data/");
  ASSERT_TRUE(a.settings.tryFiles);
  EXPECT_EQ(a.settings.tryFiles->files, (std::vector<std::string>{"$uri", "$uri/"}));
  EXPECT_EQ(a.settings.tryFiles->fallback, "@f");
  EXPECT_TRUE(a.settings.rewrites.empty());
  // nginx's merge copies root and alias together: the nested location keeps replacing /a/.
  EXPECT_EQ(a.children[0].settings.alias, "/data/");
  EXPECT_EQ(a.children[0].settings.aliasPrefix, "/a/");
  EXPECT_FALSE(a.children[0].settings.aliasRegex);
  EXPECT_FALSE(a.children[0].settings.tryFiles);
}

TEST(ConfBuilder, ANestedRootStopsTheAlias) {
  Config c = loadOk(S("location ~ ^/r/ { alias /data/f.txt; location ~ x { }\n"
                      " location ~ y { root /srv; } }"));
  const Location& r = loc(c, 0);
  EXPECT_TRUE(r.settings.aliasRegex);
  EXPECT_EQ(r.children[0].settings.alias, "/data/f.txt");
  EXPECT_TRUE(r.children[0].settings.aliasRegex);
  EXPECT_FALSE(r.children[1].settings.alias);
  EXPECT_EQ(r.children[1].settings.root, "/srv");
}

TEST(ConfBuilder, VariablesInRootAndAlias) {
  // As nginx: root and alias may hold variables; the names are checked with the other templates
  // (http::validateTemplates) at the line the directive was written.
  Config c = loadOk(S("root /srv/$host;\n"
                      "location ~ ^/pics/(.+)$ { alias /data/img/$1; }\n"
                      "location /rel/ {\n root sites/$host/; }\n"
                      "location /var/ { root $http_x_root; }\nlocation /inherits/ { }"));
  const VirtualServer& s = c.site.servers[0];
  EXPECT_EQ(s.settings.root, "/srv/$host");
  EXPECT_EQ(s.settings.directorySource.line, 4);
  EXPECT_EQ(loc(c, 0).settings.alias, "/data/img/$1");
  EXPECT_EQ(loc(c, 0).settings.directorySource.line, 5);
  EXPECT_EQ(loc(c, 1).settings.root, "/srv/prefix/sites/$host");  // prefix applied, '/' dropped
  EXPECT_EQ(loc(c, 1).settings.directorySource.line, 7);
  EXPECT_EQ(loc(c, 2).settings.root, "$http_x_root");  // the prefix waits for the request
  EXPECT_EQ(loc(c, 3).settings.root, "/srv/$host");     // inherited with where it was written
  EXPECT_EQ(loc(c, 3).settings.directorySource.line, 4);
}

TEST(ConfBuilder, LocationModifiers) {
  Config c = loadOk(S("location = / { }\nlocation ^~ /static/ { }\nlocation ~ \\.php$ { }\n"
                      "location ~* \\.PNG$ { }\nlocation @named { }\nlocation /plain { }\n"
                      "location =/x { } location ^~/y { } location ~/z { } location ~*/w { }"));
  using M = Location::Match;
  const std::pair<M, std::string> expected[] = {
      {M::kExact, "/"},          {M::kPrefixNoRegex, "/static/"}, {M::kRegex, "\\.php$"},
      {M::kRegexCaseless, "\\.PNG$"}, {M::kNamed, "@named"},      {M::kPrefix, "/plain"},
      {M::kExact, "/x"},         {M::kPrefixNoRegex, "/y"},       {M::kRegex, "/z"},
      {M::kRegexCaseless, "/w"},
  };
  ASSERT_EQ(c.site.servers[0].locations.size(), std::size(expected));
  for (size_t i = 0; i < std::size(expected); ++i) {
    EXPECT_EQ(loc(c, i).match, expected[i].first) << i;
    EXPECT_EQ(loc(c, i).pattern, expected[i].second) << i;
  }
  EXPECT_EQ(loc(c, 0).source.line, 4);
  EXPECT_EQ(loc(c, 0).source.file, kConf);
}

TEST(ConfBuilder, UwsgiListens) {
  // portico's own `uwsgi` parameter: the address speaks uwsgi to a front server.
  Config c = loadOk(H("server { listen 127.0.0.1:9000 uwsgi; listen unix:/run/app.sock uwsgi; }"));
  const auto& l = c.site.servers[0].listens;
  ASSERT_EQ(l.size(), 2u);
  EXPECT_TRUE(l[0].uwsgi);
  EXPECT_TRUE(l[1].uwsgi);
  EXPECT_FALSE(l[0].ssl);
}

TEST(ConfBuilder, Listens) {
  Config c = loadOk(H("server { listen 8080; listen 127.0.0.1:81 default_server reuseport backlog=64;\n"
                      "listen [::]:8080 default; listen unix:/run/p.sock; listen 127.0.0.2 bind; }\n"
                      "server { }"));
  const auto& l = c.site.servers[0].listens;
  ASSERT_EQ(l.size(), 5u);
  for (const auto& listen : l) EXPECT_FALSE(listen.uwsgi);
  EXPECT_EQ(l[0].host, "");
  EXPECT_EQ(l[0].port, 8080);
  EXPECT_EQ(l[0].spec, "8080");
  EXPECT_FALSE(l[0].defaultServer);
  EXPECT_EQ(l[1].host, "127.0.0.1");
  EXPECT_EQ(l[1].port, 81);
  EXPECT_TRUE(l[1].defaultServer);
  EXPECT_TRUE(l[1].reuseport);
  EXPECT_EQ(l[1].backlog, 64);
  EXPECT_EQ(l[2].host, "::");
  EXPECT_TRUE(l[2].defaultServer);
  EXPECT_TRUE(l[3].isUnix);
  EXPECT_EQ(l[3].path, "/run/p.sock");
  EXPECT_EQ(l[4].host, "127.0.0.2");
  EXPECT_EQ(l[4].port, 80);
  // nginx's lsopt.bind: `bind`, and the socket options that imply it.
  EXPECT_FALSE(l[0].bind);
  EXPECT_TRUE(l[1].bind);
  EXPECT_FALSE(l[2].bind);
  EXPECT_TRUE(l[4].bind);
  EXPECT_EQ(l[0].source.line, 3);
  // No listen: nginx's *:80 (as root) or *:8000.
  const auto& d = c.site.servers[1].listens;
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].host, "");
  EXPECT_EQ(d[0].port, ::getuid() == 0 ? 80 : 8000);
}

TEST(ConfBuilder, ListenPortRangeIsAListenPerPort) {
  // nginx 1.22: `listen ADDR:FIRST-LAST` and bare `FIRST-LAST` listen on every port between.
  Config c = loadOk(H("server { listen 127.0.0.1:8182-8184 default_server; listen 90-90; }"));
  const auto& l = c.site.servers[0].listens;
  ASSERT_EQ(l.size(), 4u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(l[i].host, "127.0.0.1");
    EXPECT_EQ(l[i].port, 8182 + i);
    EXPECT_TRUE(l[i].defaultServer);
    EXPECT_EQ(l[i].spec, "127.0.0.1:" + std::to_string(8182 + i));  // messages name the port
  }
  EXPECT_EQ(l[3].host, "");
  EXPECT_EQ(l[3].port, 90);
  EXPECT_EQ(l[3].spec, "90-90");
}

TEST(ConfBuilder, LimitExceptIsAnImplicitLocationMergedUnderItsLocation) {
  Config c = loadOk(S("location /a/ { proxy_pass http://127.0.0.1:9/x/; client_max_body_size 5;\n"
                      "limit_except get POST { deny all; } }\n"
                      "location /b/ { limit_except PUT { proxy_pass http://127.0.0.1:9; } }"));
  const LocationSettings& a = loc(c, 0).settings;
  EXPECT_EQ(a.limitExceptAllowed, (std::vector<std::string>{"GET", "POST", "HEAD"}));
  ASSERT_TRUE(a.limitExcept);
  const LocationSettings& block = *a.limitExcept;
  EXPECT_EQ(block.clientMaxBodySize, 5u);  // merged from the location
  ASSERT_EQ(block.access.rules.size(), 1u);
  EXPECT_TRUE(a.access.rules.empty());
  ASSERT_TRUE(block.proxy.pass);  // the location's pass, with its URI replacement
  EXPECT_EQ(block.proxy.pass->uri, "/x/");
  EXPECT_FALSE(block.ownContent);
  const LocationSettings& b = *loc(c, 1).settings.limitExcept;
  EXPECT_TRUE(b.ownContent);
  ASSERT_TRUE(b.proxy.pass);
  EXPECT_FALSE(b.proxy.pass->hasUri);
  EXPECT_TRUE(b.proxy.pass->locationPrefix.empty());  // a noname location: the URI as is
  EXPECT_FALSE(loc(c, 1).settings.proxy.pass);
}

TEST(ConfBuilder, ServerNames) {
  Config c = loadOk(H("server { server_name Example.COM *.example.com .example.org www.example.*\n"
                      " \"~^(?<sub>.+)\\.example\\.net$\" \"\" _; }\nserver { }"));
  EXPECT_EQ(c.site.servers[0].serverNames,
            (std::vector<std::string>{"example.com", "*.example.com", ".example.org",
                                      "www.example.*", "~^(?<sub>.+)\\.example\\.net$", "", "_"}));
  EXPECT_EQ(c.site.servers[1].serverNames, std::vector<std::string>{""});
}

TEST(ConfBuilder, TypesAndInclude) {
  Config c = loadOk(H("include mime.types;\nserver { location /t { types { text/x-a A b; } } }"),
                    {{"/etc/p/mime.types", "types {\n text/html html;\n image/png png;\n}\n"}});
  const auto& http = c.site.servers[0].settings;
  ASSERT_TRUE(http.types);
  EXPECT_EQ(http.types->at("png"), "image/png");
  const auto& t = loc(c, 0).settings.types;
  ASSERT_TRUE(t);
  EXPECT_EQ(t->size(), 2u);  // a level's own types replace the inherited table
  EXPECT_EQ(t->at("a"), "text/x-a");
  Config none = loadOk(H("server { }"));
  // No `types` anywhere: nginx's built-in three (ngx_http_core_default_types), not the table.
  ASSERT_TRUE(none.site.servers[0].settings.types);
  EXPECT_EQ(*none.site.servers[0].settings.types,
            (std::map<std::string, std::string>{
                {"html", "text/html"}, {"gif", "image/gif"}, {"jpg", "image/jpeg"}}));
}

TEST(ConfBuilder, IncludesGlobsAndDepth) {
  Config c = loadOk(H("include conf.d/*.conf;"),
                    {{"/etc/p/conf.d/a.conf", "server { server_name a; }"},
                     {"/etc/p/conf.d/b.conf", "server { server_name b; listen 81; }"}});
  ASSERT_EQ(c.site.servers.size(), 2u);
  EXPECT_EQ(c.site.servers[1].serverNames[0], "b");
  EXPECT_EQ(c.site.servers[1].listens[0].source.file, "/etc/p/conf.d/b.conf");
  EXPECT_EQ(loadOk(H("include nothing/*.conf;")).site.servers.size(), 0u);
  EXPECT_EQ(errorOf(H("include self.conf;"), {{"/etc/p/self.conf", "include self.conf;"}}),
            "[emerg] include nesting deeper than 32 levels (an include loop?) in "
            "/etc/p/self.conf:1");
  EXPECT_EQ(errorOf(H("\ninclude /x/y.conf;")),
            "[emerg] open() \"/x/y.conf\" failed (2: No such file or directory) in "
            "/etc/p/site.conf:4");
  EXPECT_EQ(errorOf(H("include inc.conf;"), {{"/etc/p/inc.conf", "\n\nfrob;\n"}}),
            "[emerg] unknown directive \"frob\" in /etc/p/inc.conf:3");
}

TEST(ConfBuilder, LogFormatsAndAccessLogs) {
  Config c = loadOk(H("log_format main escape=json '{\"u\":\"$uri\"' '}';\n"
                      "access_log /var/log/a.log main;\naccess_log logs/b.log;\n"
                      "server { location /off { access_log off; } location /x { access_log x.log; } }"));
  const LogFormat& main = c.site.logFormats.at("main");
  EXPECT_EQ(main.escape, "json");
  EXPECT_EQ(main.format, "{\"u\":\"$uri\"}");
  EXPECT_TRUE(c.site.logFormats.count("combined"));
  const auto& logs = c.site.servers[0].settings.accessLogs;
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_EQ(logs[0].path, "/var/log/a.log");
  EXPECT_EQ(logs[0].format, "main");
  EXPECT_EQ(logs[1].path, "/srv/prefix/logs/b.log");
  EXPECT_EQ(logs[1].format, "combined");
  EXPECT_TRUE(loc(c, 0).settings.accessLogs.empty());
  ASSERT_EQ(loc(c, 1).settings.accessLogs.size(), 1u);
  EXPECT_EQ(loc(c, 1).settings.accessLogs[0].path, "/srv/prefix/x.log");
  // Not set anywhere: nginx's default, under the prefix.
  Config d = loadOk(H("server { }"));
  ASSERT_EQ(d.site.servers[0].settings.accessLogs.size(), 1u);
  EXPECT_EQ(d.site.servers[0].settings.accessLogs[0].path, "/srv/prefix/logs/access.log");
}

TEST(ConfBuilder, Gzip) {
  Config c = loadOk(H("gzip on; gzip_types text/css Application/JSON; gzip_comp_level 6;\n"
                      "gzip_min_length 1k; gzip_vary on; gzip_proxied expired auth;\n"
                      "gzip_disable msie6 \"MSIE [1-6]\\.\"; gzip_buffers 16 8k;\n"
                      "gzip_http_version 1.0; gzip_static always;\nserver { gzip_types *; }"));
  const GzipSettings& g = c.site.servers[0].settings.gzip;
  EXPECT_TRUE(g.enabled);
  EXPECT_EQ(g.types, std::vector<std::string>{"*"});
  EXPECT_EQ(g.level, 6);
  EXPECT_EQ(g.minLength, 1024);
  EXPECT_TRUE(g.vary);
  EXPECT_EQ(g.proxied, (std::vector<std::string>{"expired", "auth"}));
  EXPECT_EQ(g.disable, (std::vector<std::string>{"msie6", "MSIE [1-6]\\."}));
  EXPECT_EQ(g.buffersNumber, 16);
  EXPECT_EQ(g.buffersSize, 8192);
  EXPECT_EQ(g.httpVersionMinor, 0);
  EXPECT_EQ(g.staticMode, GzipSettings::Static::kAlways);
  Config d = loadOk(H("gzip_types text/css application/json;\nserver { }"));
  EXPECT_EQ(d.site.servers[0].settings.gzip.types,
            (std::vector<std::string>{"text/html", "text/css", "application/json"}));
}

TEST(ConfBuilder, TimeoutsSizesAndFlags) {
  Config c = loadOk(H("client_header_timeout 1m30s; client_body_timeout 500ms; send_timeout 2h;\n"
                      "large_client_header_buffers 8 16k; client_body_buffer_size 1m;\n"
                      "keepalive_requests 7; tcp_nopush on; tcp_nodelay off; absolute_redirect off;\n"
                      "server_name_in_redirect on; port_in_redirect off; log_not_found off;\n"
                      "types_hash_max_size 2048; server_names_hash_bucket_size 128;\n"
                      "client_max_body_size 0;\nserver { }"));
  const VirtualServer& s = c.site.servers[0];
  EXPECT_DOUBLE_EQ(s.clientHeaderTimeoutSeconds, 90);
  EXPECT_DOUBLE_EQ(s.settings.clientBodyTimeoutSeconds, 0.5);
  EXPECT_DOUBLE_EQ(s.settings.sendTimeoutSeconds, 7200);
  EXPECT_EQ(s.largeHeaderBuffersNumber, 8u);
  EXPECT_EQ(s.largeHeaderBuffersSize, 16u * 1024);
  EXPECT_EQ(s.settings.clientBodyBufferSize, 1024u * 1024);
  EXPECT_EQ(s.settings.keepaliveRequests, 7u);
  EXPECT_TRUE(s.settings.tcpNopush);
  EXPECT_FALSE(s.settings.tcpNodelay);
  EXPECT_FALSE(s.settings.absoluteRedirect);
  EXPECT_TRUE(s.settings.serverNameInRedirect);
  EXPECT_FALSE(s.settings.portInRedirect);
  EXPECT_FALSE(s.settings.logNotFound);
  EXPECT_EQ(s.settings.clientMaxBodySize, 0u);
  EXPECT_EQ(c.site.typesHashMaxSize, 2048u);
  EXPECT_EQ(c.site.serverNamesHashBucketSize, 128u);
}

TEST(ConfBuilder, ReturnErrorPageExpiresIndex) {
  Config c = loadOk(S("index a.html b.htm;\nlocation /r1 { return 301 https://x$request_uri; }\n"
                      "location /r2 { return http://y/; }\nlocation /r3 { return 444; }\n"
                      "location /e1 { error_page 404 = /nf; }\nlocation /e2 { error_page 497 /s; }\n"
                      "location /x1 { expires 1h; }\nlocation /x2 { expires -30s; }\n"
                      "location /x3 { expires epoch; }\nlocation /x4 { expires max; }\n"
                      "location /x5 { expires off; }"));
  EXPECT_EQ(c.site.servers[0].settings.index, (std::vector<std::string>{"a.html", "b.htm"}));
  auto ret = [&](size_t i) { return loc(c, i).settings.rewrites.at(0).returnSpec; };
  EXPECT_EQ(ret(0).code, 301);
  EXPECT_EQ(ret(0).text, "https://x$request_uri");
  EXPECT_EQ(ret(1).code, 302);
  EXPECT_EQ(ret(1).text, "http://y/");
  EXPECT_EQ(ret(2).code, 444);
  EXPECT_FALSE(ret(2).hasText);
  EXPECT_EQ(loc(c, 3).settings.errorPages[0].overrideStatus, -1);
  EXPECT_EQ(loc(c, 4).settings.errorPages[0].overrideStatus, 400);
  using K = Expires::Kind;
  EXPECT_EQ(loc(c, 5).settings.expires.kind, K::kAfter);
  EXPECT_EQ(loc(c, 5).settings.expires.seconds, 3600);
  EXPECT_EQ(loc(c, 6).settings.expires.seconds, -30);
  EXPECT_EQ(loc(c, 7).settings.expires.kind, K::kEpoch);
  EXPECT_EQ(loc(c, 8).settings.expires.kind, K::kMax);
  EXPECT_EQ(loc(c, 9).settings.expires.kind, K::kOff);
}

TEST(ConfBuilder, Wsgi) {
  Config c = loadOk(S("location / { wsgi_app mysite.wsgi:application; }\n"
                      "location /api/ { wsgi_app api:app; wsgi_pythonpath src /opt/lib;\n"
                      " wsgi_virtualenv venv; wsgi_chdir /srv/api; wsgi_threads 4;\n"
                      " wsgi_env DJANGO_SETTINGS_MODULE api.settings; wsgi_env A \"b c\";\n"
                      " location /api/static/ { } }\nlocation = /exact { wsgi_app e; }\n"
                      "location @django { wsgi_app d; }"));
  const auto& root = loc(c, 0).settings.wsgi;
  ASSERT_TRUE(root);
  EXPECT_EQ(root->app, "mysite.wsgi:application");
  EXPECT_EQ(root->scriptName, "");
  EXPECT_EQ(root->threads, 1);
  EXPECT_EQ(root->source.line, 4);
  const auto& api = loc(c, 1).settings.wsgi;
  ASSERT_TRUE(api);
  EXPECT_EQ(api->scriptName, "/api");
  EXPECT_EQ(api->pythonPath, (std::vector<std::string>{"/srv/prefix/src", "/opt/lib"}));
  EXPECT_EQ(api->virtualenv, "/srv/prefix/venv");
  EXPECT_EQ(api->chdir, "/srv/api");
  EXPECT_EQ(api->threads, 4);
  ASSERT_EQ(api->env.size(), 2u);
  EXPECT_EQ(api->env[1], (std::pair<std::string, std::string>{"A", "b c"}));
  EXPECT_FALSE(loc(c, 1).children[0].settings.wsgi);  // not inherited
  EXPECT_EQ(loc(c, 2).settings.wsgi->scriptName, "/exact");
  // A named location (try_files $uri @django): no prefix, the app sees the whole URI.
  ASSERT_TRUE(loc(c, 3).settings.wsgi);
  EXPECT_EQ(loc(c, 3).settings.wsgi->scriptName, "");
  EXPECT_FALSE(c.site.servers[0].settings.wsgi);
}

TEST(ConfBuilder, GlobalDirectivesComeFirst) {
  ConfLoadResult r = load("events {}\n", {}, "worker_processes 3; pid /tmp/g.pid;");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.config.workers, 3);
  EXPECT_EQ(errorOf("events {}\npid /x;\n", {}, "pid /y;"),
            "[emerg] \"pid\" directive is duplicate in /etc/p/site.conf:2");
  EXPECT_EQ(errorOf("events {}\n", {}, "frob;"),
            "[emerg] unknown directive \"frob\" in command line");
  EXPECT_EQ(errorOf("events {}\n", {}, "daemon off"),
            "[emerg] unexpected end of parameter, expecting \";\" in command line");
  EXPECT_EQ(errorOf("events {}\n", {}, "http { }"),
            "[emerg] block directives are not supported in -g option in command line");
}

TEST(ConfBuilder, Warnings) {
  ConfLoadResult r = load(H("gzip_types text/html;\ntypes { a/b x; c/d x; }"));
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0], "[warn] duplicate MIME type \"text/html\" in /etc/p/site.conf:3");
  EXPECT_EQ(r.messages[1],
            "[warn] duplicate extension \"x\", content type: \"c/d\", previous content type: "
            "\"a/b\" in /etc/p/site.conf:4");
}

TEST(ConfBuilder, ErrorsAreNginxsMessages) {
  struct Case {
    std::string text;
    std::string error;
  };
  const std::string at3 = " in /etc/p/site.conf:3";
  const std::string at4 = " in /etc/p/site.conf:4";
  const Case cases[] = {
      // the directive table
      {H("frob on;"), "[emerg] unknown directive \"frob\"" + at3},
      {H("worker_connections 1;"), "[emerg] \"worker_connections\" directive is not allowed here" + at3},
      {S("alias /x;"), "[emerg] \"alias\" directive is not allowed here" + at4},
      {H("sendfile on off;"), "[emerg] invalid number of arguments in \"sendfile\" directive" + at3},
      {"events;\n", "[emerg] directive \"events\" has no opening \"{\" in /etc/p/site.conf:1"},
      {"events {}\npid x {}\n", "[emerg] directive \"pid\" is not terminated by \";\" in /etc/p/site.conf:2"},
      {"worker_processes 1;\n", "[emerg] no \"events\" section in configuration"},
      {"events {}\nevents {}\n", "[emerg] \"events\" directive is duplicate in /etc/p/site.conf:2"},
      // values
      {H("sendfile yes;"), "[emerg] invalid value \"yes\" in \"sendfile\" directive, it must be \"on\" or \"off\"" + at3},
      {H("gzip on; gzip on;"), "[emerg] \"gzip\" directive is duplicate" + at3},
      {H("client_max_body_size 1x;"), "[emerg] \"client_max_body_size\" directive invalid value" + at3},
      {H("client_body_buffer_size 1g;"), "[emerg] \"client_body_buffer_size\" directive invalid value" + at3},
      {H("send_timeout 1M;"), "[emerg] \"send_timeout\" directive invalid value" + at3},
      {H("keepalive_timeout 10 5ms;"), "[emerg] \"keepalive_timeout\" directive invalid value" + at3},
      {H("keepalive_requests -1;"), "[emerg] \"keepalive_requests\" directive invalid number" + at3},
      {H("gzip_comp_level 0;"), "[emerg] value must be between 1 and 9" + at3},
      {H("gzip_static sometimes;"), "[emerg] invalid value \"sometimes\"" + at3},
      {H("server_tokens maybe;"), "[emerg] invalid value \"maybe\"" + at3},
      {H("gzip_disable \"(x\";"), "[emerg] pcre2_compile() failed: missing closing parenthesis in \"(x\"" + at3},
      {"worker_processes lots;\nevents {}\n", "[emerg] \"worker_processes\" directive invalid value in /etc/p/site.conf:1"},
      {"error_log stderr loud;\nevents {}\n", "[emerg] invalid log level \"loud\" in /etc/p/site.conf:1"},
      {"user nosuchuser-portico;\nevents {}\n", ::geteuid() == 0 ? "[emerg] getpwnam(\"nosuchuser-portico\") failed in /etc/p/site.conf:1" : "(accepted)"},
      // root and alias
      {S("location / { alias /a/; root /b; }"), "[emerg] \"root\" directive is duplicate, \"alias\" directive was specified earlier" + at4},
      {S("location / { root /b; alias /a/; }"), "[emerg] \"alias\" directive is duplicate, \"root\" directive was specified earlier" + at4},
      {S("root /a; root /b;"), "[emerg] \"root\" directive is duplicate" + at4},
      {S("location @n { alias /x; }"), "[emerg] the \"alias\" directive cannot be used inside the named location" + at4},
      {S("root $document_root/x;"), "[emerg] the $document_root variable cannot be used in the \"root\" directive" + at4},
      // locations
      {S("location /a { }\nlocation /a { }"), "[emerg] duplicate location \"/a\" in /etc/p/site.conf:5"},
      {S("location = /a { }\nlocation = /a { }"), "[emerg] duplicate location \"/a\" in /etc/p/site.conf:5"},
      {S("location /a { location /b { } }"), "[emerg] location \"/b\" is outside location \"/a\"" + at4},
      {S("location = /a { location /a { } }"), "[emerg] location \"/a\" cannot be inside the exact location \"/a\"" + at4},
      {S("location @a { location /a { } }"), "[emerg] location \"/a\" cannot be inside the named location \"@a\"" + at4},
      {S("location /a { location @b { } }"), "[emerg] named location \"@b\" can be on the server level only" + at4},
      {S("location ~~ /a { }"), "[emerg] invalid location modifier \"~~\"" + at4},
      {S("location ~ ( { }"), "[emerg] pcre2_compile() failed: missing closing parenthesis in \"(\"" + at4},
      // listen and servers
      {H("server { listen 81 default_server; }\nserver { listen 0.0.0.0:81 default_server; }"), "[emerg] a duplicate default server for 0.0.0.0:81" + at4},
      {S("listen 81; listen *:81;"), "[emerg] a duplicate listen 0.0.0.0:81" + at4},
      {H("server { listen 81 uwsgi; }\nserver { listen 81 ssl; }"), "[emerg] the \"uwsgi\" and \"ssl\" parameters of the \"listen\" directive cannot both apply to 0.0.0.0:81" + at4},
      {S("listen 81 uwsgi ssl;"), "[emerg] the \"uwsgi\" and \"ssl\" parameters of the \"listen\" directive cannot both apply to 0.0.0.0:81" + at4},
      {H("server { listen 81 backlog=1; }\nserver { listen 81 reuseport; }"), "[emerg] duplicate listen options for 0.0.0.0:81" + at4},
      {S("listen 70000;"), "[emerg] invalid port in \"70000\" of the \"listen\" directive" + at4},
      {S("listen 1.2.3.4:0;"), "[emerg] invalid port in \"1.2.3.4:0\" of the \"listen\" directive" + at4},
      {S("listen nosuchhost.invalid;"), "[emerg] host not found in \"nosuchhost.invalid\" of the \"listen\" directive" + at4},
      {S("listen 1.2.3.4:9-8;"), "[emerg] invalid port range in \"1.2.3.4:9-8\" of the \"listen\" directive" + at4},
      {S("listen 5-70000;"), "[emerg] invalid port in \"5-70000\" of the \"listen\" directive" + at4},
      {S("listen 81-83; listen 82;"), "[emerg] a duplicate listen 0.0.0.0:82" + at4},
      {S("location / { limit_except FOO { } }"), "[emerg] invalid method \"FOO\"" + at4},
      {S("location / { limit_except GET { } limit_except PUT { } }"), "[emerg] \"limit_except\" directive is duplicate" + at4},
      {S("location / { limit_except GET { root /x; } }"), "[emerg] \"root\" directive is not allowed here" + at4},
      {S("location / { if ($a) { proxy_pass http://a/b; } }"), "[emerg] \"proxy_pass\" cannot have URI part in location given by regular expression, or inside named location, or inside \"if\" statement, or inside \"limit_except\" block" + at4},
      {S("listen [::1;"), "[emerg] invalid host in \"[::1\" of the \"listen\" directive" + at4},
      {S("listen unix:;"), "[emerg] no path in the unix domain socket in \"unix:\" of the \"listen\" directive" + at4},
      {S("listen 80 ssl;"), "[emerg] no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive" + at3},
      {S("listen 80 http2;"), "[emerg] the \"http2\" parameter of the \"listen\" directive is not supported by portico yet" + at4},
      {S("listen 80 spdy;"), "[emerg] the \"spdy\" parameter of the \"listen\" directive is not supported by portico yet" + at4},
      {S("listen 80 nope;"), "[emerg] invalid parameter \"nope\"" + at4},
      {S("listen 80 backlog=0;"), "[emerg] invalid backlog \"backlog=0\"" + at4},
      {S("server_name *x;"), "[emerg] server name \"*x\" is invalid" + at4},
      {S("server_name ~(a;"), "[emerg] pcre2_compile() failed: missing closing parenthesis in \"(a\"" + at4},
      // logs
      {H("access_log a.log nosuch;"), "[emerg] unknown log format \"nosuch\"" + at3},
      {H("access_log a.log combined buffer=0;"), "[emerg] invalid buffer size \"0\"" + at3},
      {H("access_log a.log combined flush=1x;"), "[emerg] invalid flush time \"1x\"" + at3},
      {H("access_log a.log combined flush=1s;"), "[emerg] no buffer is defined for access_log \"a.log\"" + at3},
      {H("access_log a.log combined gzip=10;"), "[emerg] invalid compression level \"10\"" + at3},
      {H("access_log a$uri.log combined buffer=1k;"), "[emerg] buffered logs cannot have variables in name" + at3},
      {H("access_log a.log combined buffer=1k;\naccess_log a.log combined buffer=2k;"), "[emerg] access_log \"a.log\" already defined with conflicting parameters" + at4},
      {H("access_log a.log combined iff=$x;"), "[emerg] invalid parameter \"iff=$x\"" + at3},
      {H("open_log_file_cache inactive=1m;"), "[emerg] \"open_log_file_cache\" must have \"max\" parameter" + at3},
      {H("open_log_file_cache max=x;"), "[emerg] invalid \"open_log_file_cache\" parameter \"max=x\"" + at3},
      {H("open_log_file_cache off;\nopen_log_file_cache off;"), "[emerg] \"open_log_file_cache\" directive is duplicate" + at4},
      {H("open_log_file_cache max=1 inactive=1 min_uses=1 valid=1 off;"), "[emerg] invalid number of arguments in \"open_log_file_cache\" directive" + at3},
      {H("error_log x.log loud;"), "[emerg] invalid log level \"loud\"" + at3},
      {H("error_log syslog:server=127.0.0.1;"), "[emerg] the \"syslog:\" log target is not supported by portico yet" + at3},
      // core directives
      {H("connection_pool_size 100;"), "[emerg] the pool size must be no less than 112" + at3},
      {H("request_pool_size 120;"), "[emerg] the pool size must be a multiple of 16" + at3},
      {H("client_header_buffer_size 1q;"), "[emerg] \"client_header_buffer_size\" directive invalid value" + at3},
      {H("merge_slashes 1;"), "[emerg] invalid value \"1\" in \"merge_slashes\" directive, it must be \"on\" or \"off\"" + at3},
      {S("location / { merge_slashes off; }"), "[emerg] \"merge_slashes\" directive is not allowed here" + at4},
      {H("if_modified_since later;"), "[emerg] invalid value \"later\"" + at3},
      {H("keepalive_time 1x;"), "[emerg] \"keepalive_time\" directive invalid value" + at3},
      {H("keepalive_disable msie7;"), "[emerg] invalid value \"msie7\"" + at3},
      {"worker_shutdown_timeout x;\nevents {}\n", "[emerg] \"worker_shutdown_timeout\" directive invalid value in /etc/p/site.conf:1"},
      {H("worker_shutdown_timeout 1s;"), "[emerg] \"worker_shutdown_timeout\" directive is not allowed here" + at3},
      {H("connection_pool_size 16k;\nserver { }"), "[emerg] the \"large_client_header_buffers\" size must be equal to or greater than \"connection_pool_size\" in /etc/p/site.conf:5"},
      {H("access_log syslog:server=x.invalid;"), "[emerg] host not found in syslog server \"x.invalid\"" + at3},
      {H("access_log syslog:server=127.0.0.1:99999;"), "[emerg] invalid port in syslog server \"127.0.0.1:99999\"" + at3},
      {H("access_log syslog:facility=user;"), "[emerg] no syslog server specified" + at3},
      {H("access_log syslog:server=127.0.0.1,tag=a-b;"), "[emerg] syslog \"tag\" only allows alphanumeric characters and underscore" + at3},
      {H("access_log syslog:server=127.0.0.1,bogus;"), "[emerg] unknown syslog parameter \"bogus\"" + at3},
      {H("access_log syslog:server=127.0.0.1 combined buffer=4k;"), "[emerg] logs to syslog cannot be buffered" + at3},
      {H("access_log syslog:server=127.0.0.1,severity=loud;"), "[emerg] unknown syslog severity \"loud\"" + at3},
      {H("access_log off x;"), "[emerg] invalid parameter \"x\"" + at3},
      {H("log_format a x;\nlog_format a y;"), "[emerg] duplicate \"log_format\" name \"a\"" + at4},
      {H("log_format a escape=xml x;"), "[emerg] unknown log format escaping \"xml\"" + at3},
      {"error_log a.log;\nerror_log b.log;\nevents {}\n", "[emerg] more than one \"error_log\" directive is not supported by portico yet in /etc/p/site.conf:2"},
      // content
      {H("error_page 200 /x;"), "[emerg] value \"200\" must be between 300 and 599" + at3},
      {H("error_page =404 /x;"), "[emerg] invalid value \"=404\"" + at3},
      {H("add_header X v never;"), "[emerg] invalid parameter \"never\"" + at3},
      {H("expires tomorrow;"), "[emerg] \"expires\" directive invalid value" + at3},
      {H("expires modified @1h;"), "[emerg] \"expires\" directive daily time cannot be used with \"modified\" parameter" + at3},
      {H("expires @24h1s;"), "[emerg] \"expires\" directive daily time value must be less than 24 hours" + at3},
      {S("return x;"), "[emerg] invalid return code \"x\"" + at4},
      {S("try_files a =4x;"), "[emerg] invalid code \"=4x\"" + at4},
      {H("index a /b c;"), "[emerg] only the last index in \"index\" directive should be absolute" + at3},
      // what portico does not implement yet
      {S("location / { proxy_pass http://127.0.0.1:8000; proxy_store on; }"), "[emerg] \"proxy_store\" directive is not supported by portico yet" + at4},
      {S("location ~ ^/a { proxy_pass http://127.0.0.1:8000/b; }"), "[emerg] \"proxy_pass\" cannot have URI part in location given by regular expression, or inside named location, or inside \"if\" statement, or inside \"limit_except\" block" + at4},
      {S("location / { proxy_pass ftp://127.0.0.1:8000; }"), "[emerg] invalid URL prefix in \"ftp://127.0.0.1:8000\"" + at4},
      {S("location / { proxy_pass http://127.0.0.1:8000; proxy_pass http://127.0.0.1:8001; }"), "[emerg] \"proxy_pass\" directive is duplicate" + at4},
      {S("location / { proxy_http_version 2.0; }"), "[emerg] invalid value \"2.0\"" + at4},
      {S("location / { uwsgi_pass 127.0.0.1:3031; uwsgi_store on; }"), "[emerg] \"uwsgi_store\" directive is not supported by portico yet" + at4},
      {S("location / { uwsgi_pass suwsgi://127.0.0.1:3031; uwsgi_ssl_protocols TLSv9; }"), "[emerg] invalid value \"TLSv9\"" + at4},
      {S("location / { uwsgi_pass 127.0.0.1:1; uwsgi_pass 127.0.0.1:2; }"), "[emerg] \"uwsgi_pass\" directive is duplicate" + at4},
      {S("location / { uwsgi_param A b c; }"), "[emerg] invalid parameter \"c\"" + at4},
      {S("location / { uwsgi_param A; }"), "[emerg] invalid number of arguments in \"uwsgi_param\" directive" + at4},
      {S("location / { uwsgi_modifier1 x; }"), "[emerg] \"uwsgi_modifier1\" directive invalid number" + at4},
      {S("location / { uwsgi_modifier1 1; uwsgi_modifier1 2; }"), "[emerg] \"uwsgi_modifier1\" directive is duplicate" + at4},
      {S("location / { uwsgi_next_upstream error bogus; }"), "[emerg] invalid value \"bogus\"" + at4},
      {S("location / { uwsgi_request_buffering off; }"), "[emerg] \"uwsgi_request_buffering off\" is not supported by portico yet" + at4},
      {S("location / { uwsgi_read_timeout 1x; }"), "[emerg] \"uwsgi_read_timeout\" directive invalid value" + at4},
      {H("server { location / { uwsgi_pass django; } }"), "[emerg] no port in upstream \"django\" in /etc/p/site.conf:3"},
      {S("ssl_certificate /x.pem;"), "[emerg] no \"ssl_certificate_key\" is defined for certificate \"/x.pem\""},
      {S("ssl_certificate /x.pem; ssl_certificate_key /x.key; ssl_verify_client on;"), "[emerg] no ssl_client_certificate for ssl_verify_client"},
      {S("ssl_verify_client sometimes;"), "[emerg] invalid value \"sometimes\"" + at4},
      {S("ssl_verify_client on; ssl_verify_client off;"), "[emerg] \"ssl_verify_client\" directive is duplicate" + at4},
      {S("ssl_verify_depth x;"), "[emerg] \"ssl_verify_depth\" directive invalid number" + at4},
      {S("ssl_stapling maybe;"), "[emerg] invalid value \"maybe\" in \"ssl_stapling\" directive, it must be \"on\" or \"off\"" + at4},
      {S("if ($host = x { return 404; }"), "[emerg] invalid condition \"x\"" + at4},
      {S("if ($host x) { return 404; }"), "[emerg] invalid condition \"$host\"" + at4},
      {S("if (-q /x) { }"), "[emerg] invalid condition \"-q\"" + at4},
      {S("if ($a ~ \"(\") { }"), "[emerg] pcre2_compile() failed: missing closing parenthesis in \"(\"" + at4},
      {S("if ($a) { if ($b) { } }"), "[emerg] \"if\" directive is not allowed here" + at4},
      {S("location / { if ($a) { index a; } }"), "[emerg] \"index\" directive is not allowed here" + at4},
      {S("rewrite ^ \"\";"), "[emerg] empty replacement" + at4},
      {S("rewrite ^ /x foo;"), "[emerg] invalid parameter \"foo\"" + at4},
      {S("set x 1;"), "[emerg] invalid variable name \"x\"" + at4},
      {H("map $a $b { default 1; default 2; }"), "[emerg] duplicate default map parameter" + at3},
      {H("map $a $b { a 1; A 2; }"), "[emerg] conflicting parameter \"a\"" + at3},
      {H("map $a $b { hostnames; *.a.* 1; }"), "[emerg] invalid hostname or wildcard \"*.a.*\"" + at3},
      {H("map $a $b { a 1 2; }"), "[emerg] invalid number of the map parameters" + at3},
      {H("map $a b { a 1; }"), "[emerg] invalid variable name \"b\"" + at3},
      {H("map $a $b { ~( 1; }"), "[emerg] pcre2_compile() failed: missing closing parenthesis in \"(\"" + at3},
      {H("upstream django { server 127.0.0.1:8000; zone django 64k; }"), "[emerg] \"zone\" directive is not supported by portico yet" + at3},
      {S("charset utf-8;"), "[emerg] \"charset\" directive is not supported by portico yet" + at4},
      // A refused directive that guides use names what portico offers instead.
      {S("location ~ \\.php$ { fastcgi_pass unix:/run/php.sock; }"), "[emerg] \"fastcgi_pass\" directive is not supported by portico (instead: portico runs a WSGI app itself with wsgi_app, or reaches an app server with proxy_pass or uwsgi_pass)" + at4},
      {S("location / { proxy_pass http://127.0.0.1:8000; proxy_cache c; }"), "[emerg] \"proxy_cache\" directive is not supported by portico (instead: portico caches no responses: use Django's cache framework (e.g. Redis), or an nginx in front)" + at4},
      {S("more_set_headers \"X-A: b\";"), "[emerg] \"more_set_headers\" directive is not supported by portico (instead: add_header NAME VALUE always)" + at4},
      {"env TZ;\nevents {}\n", "[emerg] \"env\" directive is not supported by portico (instead: wsgi_env NAME VALUE in the app's location, or set it where portico starts (systemd's Environment=)) in /etc/p/site.conf:1"},
      {"daemon on;\nevents {}\n", "[emerg] \"daemon on\" (portico stays in the foreground) is not supported by portico yet in /etc/p/site.conf:1"},
      {"events { use select; }\n", "[emerg] \"use select\" is not supported by portico yet in /etc/p/site.conf:1"},
      {"events { use foo; }\n", "[emerg] invalid event type \"foo\" in /etc/p/site.conf:1"},
      // portico's WSGI directives
      {S("location ~ ^/app { wsgi_app a:b; }"), "[emerg] the \"wsgi_app\" directive cannot be used inside a regex location" + at4},
      {S("wsgi_app a:b;"), "[emerg] \"wsgi_app\" directive is not allowed here" + at4},
      {S("location / {\n wsgi_threads 4;\n}"), "[emerg] \"wsgi_threads\" directive needs a \"wsgi_app\" directive in the same location in /etc/p/site.conf:5"},
      {S("location / { wsgi_app a; wsgi_app b; }"), "[emerg] \"wsgi_app\" directive is duplicate" + at4},
      {S("location / { wsgi_app a:; }"), "[emerg] invalid application \"a:\" in \"wsgi_app\" directive, it must be \"module:callable\" or \"module\"" + at4},
      {S("location / { wsgi_app a; wsgi_threads 0; }"), "[emerg] value must be between 1 and 1024" + at4},
      {S("location / { wsgi_app a; wsgi_threads 2; wsgi_threads 3; }"), "[emerg] \"wsgi_threads\" directive is duplicate" + at4},
      {S("location / { wsgi_app a; wsgi_env A=B c; }"), "[emerg] invalid variable name \"A=B\" in \"wsgi_env\" directive" + at4},
      {S("location / { wsgi_app a; wsgi_env A; }"), "[emerg] invalid number of arguments in \"wsgi_env\" directive" + at4},
  };
  for (const Case& c : cases) EXPECT_EQ(errorOf(c.text), c.error) << c.text;
}

TEST(ConfBuilder, UnsupportedListCoversCommonDirectives) {
  for (const char* name : {"proxy_redirect", "proxy_cache", "uwsgi_pass", "uwsgi_param",
                           "fastcgi_pass", "ssl", "ssl_certificate", "http2",
                           "geo", "sub_filter"}) {
    EXPECT_TRUE(isUnsupportedNginxDirective(name)) << name;
  }
  EXPECT_FALSE(isUnsupportedNginxDirective("frobnicate"));
  EXPECT_FALSE(isUnsupportedNginxDirective("root"));
  for (const char* name : {"allow", "deny", "auth_basic", "auth_basic_user_file", "satisfy",
                           "set_real_ip_from", "real_ip_header", "autoindex", "stub_status",
                           "upstream", "least_conn", "ip_hash", "keepalive", "resolver",
                           "resolver_timeout"}) {
    EXPECT_FALSE(isUnsupportedNginxDirective(name)) << name;
  }
}

TEST(ConfBuilder, MutatedFilesNeverCrash) {
  // No `listen` in the sample: a mutated host name would be a DNS lookup.
  const std::string sample =
      "user www-data;\nworker_processes auto;\nevents { worker_connections 64; }\nhttp {\n"
      " include mime.types;\n log_format main '$remote_addr \"$request\"';\n gzip on;\n"
      " gzip_types text/css;\n server {\n  server_name a.example ~^b;\n  root /srv;\n"
      "  error_page 404 =200 /e;\n  location = / { return 200 ok; }\n"
      "  location ~* \\.(png)$ { expires 30d; add_header X y always; }\n"
      "  location /app/ { wsgi_app app:application; wsgi_threads 2; location /app/s/ { } }\n"
      "  location @f { try_files $uri =404; }\n }\n}\n";
  const std::map<std::string, std::string> files = {
      {"/etc/p/mime.types", "types { text/html html; }"}};
  std::mt19937 rng(7);
  int accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text = sample;
    int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      static const char kBytes[] = "{};'\"\\#$ \n=~@*xa0/";
      text[rng() % text.size()] = kBytes[rng() % (sizeof kBytes - 1)];
    }
    ConfLoadResult r = load(text.substr(0, rng() % (text.size() + 1)), files);
    if (r.ok) {
      ++accepted;
    } else {
      ASSERT_FALSE(r.messages.empty());
      EXPECT_EQ(r.messages.back().rfind("[emerg] ", 0), 0u) << r.messages.back();
    }
  }
  EXPECT_GT(accepted, 0);
}

TEST(ConfValues, NginxTimeSizeAndNumber) {
  EXPECT_EQ(parseNginxTime("75", true), 75);
  EXPECT_EQ(parseNginxTime("1h30m", true), 5400);
  EXPECT_EQ(parseNginxTime("1y 2M", true), 365 * 86400 + 60 * 86400);
  EXPECT_EQ(parseNginxTime("1w2d3h4m5s", true), 7 * 86400 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5);
  EXPECT_EQ(parseNginxTime("500ms", false), 500);
  EXPECT_EQ(parseNginxTime("1m30s", false), 90000);
  EXPECT_EQ(parseNginxTime("60", false), 60000);
  EXPECT_EQ(parseNginxTime("1s500ms", false), 1500);
  for (const char* bad : {"", "s", "1x", "30m1h", "1h1h", "-1", "1.5s", "99999999999999999999"}) {
    EXPECT_FALSE(parseNginxTime(bad, true)) << bad;
  }
  EXPECT_FALSE(parseNginxTime("5ms", true));   // ms is not a seconds unit
  EXPECT_FALSE(parseNginxTime("1y", false));   // nor y and M milliseconds units
  EXPECT_FALSE(parseNginxTime("1M", false));
  EXPECT_EQ(parseNginxSize("10"), 10);
  EXPECT_EQ(parseNginxSize("8k"), 8192);
  EXPECT_EQ(parseNginxSize("2M"), 2 << 20);
  EXPECT_FALSE(parseNginxSize("1g"));
  EXPECT_EQ(parseNginxOffset("1G"), int64_t{1} << 30);
  for (const char* bad : {"", "k", "1.5m", "-1", "1kb", "99999999999999999999"}) {
    EXPECT_FALSE(parseNginxSize(bad)) << bad;
  }
  EXPECT_EQ(parseNginxNumber("0"), 0);
  EXPECT_FALSE(parseNginxNumber("+1"));
}

TEST(ConfBuilder, CoreDirectivesReachTheirLevels) {
  Config c = loadOk(
      "worker_shutdown_timeout 10ms;\nevents {}\nhttp {\n"
      "client_header_buffer_size 128; connection_pool_size 128; request_pool_size 4k;\n"
      "if_modified_since before; keepalive_time 2s; keepalive_disable safari msie6;\n"
      "server { merge_slashes off; large_client_header_buffers 4 256;\n"
      "  location /a { if_modified_since off; keepalive_disable none; }\n"
      "  location /b { error_log logs/b.log info; error_log stderr; }\n"
      "} }\n");
  EXPECT_DOUBLE_EQ(c.workerShutdownTimeoutSeconds, 0.01);
  EXPECT_DOUBLE_EQ(c.gracefulTimeoutSeconds, 0.01);
  const VirtualServer& vs = c.site.servers.at(0);
  EXPECT_EQ(vs.clientHeaderBufferSize, 128u);
  EXPECT_EQ(vs.connectionPoolSize, 128u);
  EXPECT_FALSE(vs.mergeSlashes);
  using Ims = LocationSettings::IfModifiedSince;
  EXPECT_EQ(vs.settings.ifModifiedSince, Ims::kBefore);
  EXPECT_DOUBLE_EQ(vs.settings.keepaliveTimeSeconds, 2.0);
  EXPECT_EQ(loc(c, 0).settings.ifModifiedSince, Ims::kOff);
  EXPECT_TRUE(loc(c, 0).settings.errorLogs.empty());
  ASSERT_EQ(loc(c, 1).settings.errorLogs.size(), 2u);
  EXPECT_EQ(loc(c, 1).settings.errorLogs[0].path, "/srv/prefix/logs/b.log");
  EXPECT_EQ(loc(c, 1).settings.errorLogs[0].level, LogLevel::kInfo);
  EXPECT_EQ(loc(c, 1).settings.errorLogs[1].path, "-");
  EXPECT_EQ(loc(c, 1).settings.errorLogs[1].level, LogLevel::kError);
  // Defaults: nginx's.
  Config d = loadOk(S(""));
  EXPECT_TRUE(d.site.servers.at(0).mergeSlashes);
  EXPECT_EQ(d.site.servers.at(0).settings.ifModifiedSince, Ims::kExact);
  EXPECT_DOUBLE_EQ(d.site.servers.at(0).settings.keepaliveTimeSeconds, 3600.0);
}

TEST(ConfBuilder, AccessLogParameters) {
  Config c = loadOk(H(
      "log_format t $uri;\n"
      "access_log logs/a.log t if=$arg_x gzip=5 flush=1s;\n"
      "server { open_log_file_cache max=3 inactive=20s min_uses=2 valid=1m;\n"
      "  location / { access_log logs/$host.log t; }\n"
      "  location /off { open_log_file_cache off; access_log logs/$host.log; } }"));
  const VirtualServer& vs = c.site.servers.at(0);
  ASSERT_EQ(vs.settings.accessLogs.size(), 1u);
  const AccessLogSpec& a = vs.settings.accessLogs[0];
  EXPECT_EQ(a.path, "/srv/prefix/logs/a.log");
  EXPECT_EQ(a.condition, "$arg_x");
  EXPECT_EQ(a.gzipLevel, 5);
  EXPECT_EQ(a.bufferSize, 64u * 1024);  // gzip implies a 64k buffer
  EXPECT_EQ(a.flushMs, 1000u);
  EXPECT_FALSE(a.pathVariables);
  ASSERT_TRUE(vs.settings.openLogFileCache);
  EXPECT_EQ(vs.settings.openLogFileCache->max, 3);
  EXPECT_EQ(vs.settings.openLogFileCache->inactiveSeconds, 20);
  EXPECT_EQ(vs.settings.openLogFileCache->minUses, 2);
  EXPECT_EQ(vs.settings.openLogFileCache->validSeconds, 60);
  EXPECT_TRUE(loc(c, 0).settings.accessLogs.at(0).pathVariables);
  EXPECT_TRUE(loc(c, 0).settings.openLogFileCache);   // inherited
  EXPECT_FALSE(loc(c, 1).settings.openLogFileCache);  // off
}

TEST(ConfBuilder, RewriteModuleSteps) {
  Config c = loadOk(S("rewrite ^/a(.*)$ /b$1 last;\nset $v \"x\";\n"
                      "if ($host = example.com) { return 301 https://x; }\n"
                      "location / {\n"
                      "  rewrite ^ http://e.com/?c=d?;\n"
                      "  if (!-f $request_filename) { add_header X-If 1; root /srv/if; break; }\n"
                      "  add_header X-Loc 1;\n"
                      "  rewrite_log on;\n"
                      "  return 404;\n"
                      "}"));
  using K = RewriteStep::Kind;
  const VirtualServer& s = c.site.servers[0];
  ASSERT_EQ(s.settings.rewrites.size(), 3u);
  EXPECT_EQ(s.settings.rewrites[0].kind, K::kRewrite);
  EXPECT_EQ(s.settings.rewrites[0].regex, "^/a(.*)$");
  EXPECT_EQ(s.settings.rewrites[0].replacement, "/b$1");
  EXPECT_EQ(s.settings.rewrites[0].flag, RewriteStep::Flag::kLast);
  EXPECT_EQ(s.settings.rewrites[1].kind, K::kSet);
  EXPECT_EQ(s.settings.rewrites[1].variable, "v");
  const RewriteStep& serverIf = s.settings.rewrites[2];
  EXPECT_EQ(serverIf.condition, RewriteStep::Condition::kEqual);
  EXPECT_EQ(serverIf.subject, "$host");
  EXPECT_EQ(serverIf.operand, "example.com");
  EXPECT_EQ(serverIf.ifSettings, nullptr);  // a server-level if has no implicit location
  ASSERT_EQ(serverIf.body.size(), 1u);
  EXPECT_EQ(serverIf.body[0].returnSpec.code, 301);
  const LocationSettings& l = loc(c, 0).settings;
  ASSERT_EQ(l.rewrites.size(), 3u);
  EXPECT_TRUE(l.rewrites[0].redirect);
  EXPECT_FALSE(l.rewrites[0].keepArgs);
  EXPECT_EQ(l.rewrites[0].replacement, "http://e.com/?c=d");
  const RewriteStep& locIf = l.rewrites[1];
  EXPECT_EQ(locIf.condition, RewriteStep::Condition::kNotFile);
  EXPECT_EQ(locIf.subject, "$request_filename");
  ASSERT_EQ(locIf.body.size(), 1u);
  EXPECT_EQ(locIf.body[0].kind, K::kBreak);
  // The implicit location: its own add_header and root, the location's rewrite_log.
  ASSERT_TRUE(locIf.ifSettings);
  EXPECT_EQ(locIf.ifSettings->root, "/srv/if");
  ASSERT_EQ(locIf.ifSettings->addHeaders.size(), 1u);
  EXPECT_EQ(locIf.ifSettings->addHeaders[0].name, "X-If");
  EXPECT_TRUE(locIf.ifSettings->rewriteLog);
  EXPECT_TRUE(locIf.ifSettings->rewrites.empty());
  EXPECT_EQ(l.addHeaders.size(), 1u);
  EXPECT_TRUE(l.rewriteLog);
  EXPECT_EQ(l.rewrites[2].returnSpec.code, 404);
}

TEST(ConfBuilder, MapHashSizes) {
  // ngx_hash_init's verdicts on the exact keys, worded as nginx's (without FILE:LINE).
  ConfLoadResult r = load(H("map_hash_max_size 1;\nmap $a $b { a 1; b 2; c 3; d 4; e 5; }"));
  EXPECT_TRUE(r.ok);
  ASSERT_FALSE(r.messages.empty());
  EXPECT_EQ(r.messages.back(),
            "[warn] could not build optimal map_hash, you should increase either "
            "map_hash_max_size: 1 or map_hash_bucket_size: 64; ignoring map_hash_bucket_size");
  EXPECT_EQ(errorOf(H("map_hash_bucket_size 32;\nmap $a $b { " + std::string(70, 'k') +
                      " 1; }")),
            "[emerg] could not build map_hash, you should increase map_hash_bucket_size: 64");
  EXPECT_TRUE(load(H("map $a $b { a 1; b 2; c 3; d 4; e 5; }")).messages.empty());
}

TEST(ConfBuilder, MapBlocks) {
  Config c = loadOk(H("map $http_host $name {\n  hostnames;\n  volatile;\n  default d;\n"
                      "  .example.com ex;\n  ~*^www\\.(.+)$ $1;\n  \\default literal;\n"
                      "  include m.conf;\n}\nmap_hash_bucket_size 128;\n"),
                    {{"/etc/p/m.conf", "inc included;"}});
  ASSERT_EQ(c.site.maps.size(), 1u);
  const MapSpec& m = c.site.maps[0];
  EXPECT_EQ(m.sourceValue, "$http_host");
  EXPECT_EQ(m.variable, "name");
  EXPECT_TRUE(m.hostnames);
  EXPECT_TRUE(m.isVolatile);
  EXPECT_EQ(m.defaultValue, "d");
  ASSERT_EQ(m.entries.size(), 4u);
  EXPECT_EQ(m.entries[0].key, ".example.com");
  EXPECT_TRUE(m.entries[1].regex);
  EXPECT_TRUE(m.entries[1].caseless);
  EXPECT_EQ(m.entries[1].key, "^www\\.(.+)$");
  EXPECT_EQ(m.entries[2].key, "default");
  EXPECT_EQ(m.entries[2].value, "literal");
  EXPECT_EQ(m.entries[3].key, "inc");
}

}  // namespace
TEST(ConfBuilder, ResolverLinesAndInheritance) {
  // Each line is a resolver of its own; a level without one inherits its parent's, with its
  // own resolver_timeout if it writes one.
  Config c = loadOk(H("resolver 127.0.0.1:5353 [::1] valid=30s ipv6=off;\nresolver_timeout 5s;\n"
                      "server {\n location /a { }\n location /b { resolver 10.0.0.1 ipv4=off;\n"
                      "  location /b/c { resolver_timeout 250ms; } }\n}"));
  ASSERT_EQ(c.site.resolvers.size(), 2u);
  const ResolverSpec& first = c.site.resolvers[0];
  ASSERT_EQ(first.servers.size(), 2u);
  EXPECT_EQ(first.servers[0].text, "127.0.0.1:5353");
  EXPECT_EQ(first.servers[1].text, "[::1]:53");
  EXPECT_EQ(first.validSeconds, 30u);
  EXPECT_TRUE(first.ipv4);
  EXPECT_FALSE(first.ipv6);
  EXPECT_EQ(first.line, 3);
  EXPECT_FALSE(c.site.resolvers[1].ipv4);
  EXPECT_TRUE(c.site.resolvers[1].ipv6);
  EXPECT_EQ(loc(c, 0).settings.resolver, 0);
  EXPECT_EQ(loc(c, 0).settings.resolverTimeoutSeconds, 5.0);
  EXPECT_EQ(loc(c, 1).settings.resolver, 1);
  EXPECT_EQ(loc(c, 1).children.at(0).settings.resolver, 1);
  EXPECT_EQ(loc(c, 1).children.at(0).settings.resolverTimeoutSeconds, 0.25);
  Config none = loadOk(S("location / { }"));
  EXPECT_EQ(none.site.servers[0].locations[0].settings.resolver, -1);
  EXPECT_EQ(none.site.servers[0].locations[0].settings.resolverTimeoutSeconds, 30.0);
  const std::string at3 = " in /etc/p/site.conf:3";
  EXPECT_EQ(errorOf(H("resolver 127.0.0.1 ipv4=off ipv6=off;")),
            "[emerg] \"ipv4\" and \"ipv6\" cannot both be \"off\"" + at3);
  EXPECT_EQ(errorOf(H("resolver 127.0.0.1 valid=1x;")), "[emerg] invalid parameter: valid=1x" + at3);
  EXPECT_EQ(errorOf(H("resolver unix:/tmp/dns;")),
            "[emerg] unix domain sockets are not supported in resolver \"unix:/tmp/dns\"" + at3);
  EXPECT_EQ(errorOf(H("resolver 127.0.0.1:0;")), "[emerg] invalid port in resolver \"127.0.0.1:0\"" + at3);
}

}  // namespace portico::config

namespace portico::config {
namespace {

TEST(ConfBuilder, OnlyTheDefaultServerOfAnSslAddressNeedsCertificates) {
  // nginx's ngx_http_ssl_init: a second server on the address uses the default's certificates.
  Config c = loadOk(H("server { listen 443 ssl; ssl_certificate /c.pem; ssl_certificate_key /k.pem; }\n"
                      "server { listen 443; server_name other; }"));
  ASSERT_EQ(c.site.servers.size(), 2u);
  EXPECT_TRUE(c.site.servers[1].tls.certificates.empty());
  // The default server is the marked one, wherever it stands.
  EXPECT_EQ(errorOf(H("server { listen 443 ssl; ssl_certificate /c.pem; ssl_certificate_key /k.pem; }\n"
                      "server { listen 443 default_server; }")),
            "[emerg] no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive in "
            "/etc/p/site.conf:4");
  // `ssl` on any listen of the address makes the address speak TLS.
  EXPECT_EQ(errorOf(H("server { listen 443; }\nserver { listen 443 ssl; ssl_certificate /c.pem; "
                      "ssl_certificate_key /k.pem; }")),
            "[emerg] no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive in "
            "/etc/p/site.conf:3");
}


TEST(ConfBuilder, ListenProxyProtocolIsNotASocketOption) {
  // As nginx: proxy_protocol does not bind, so it may sit beside another listen's options.
  Config c = loadOk(H("server { listen 127.0.0.1:8081 proxy_protocol backlog=10; }\n"
                      "server { listen 127.0.0.1:8081 proxy_protocol; server_name b; }"));
  ASSERT_EQ(c.site.servers.size(), 2u);
  EXPECT_TRUE(c.site.servers[0].listens[0].proxyProtocol);
  EXPECT_FALSE(c.site.servers[0].listens[0].proxyProtocolOptional);
  EXPECT_TRUE(c.site.servers[1].listens[0].proxyProtocol);
  EXPECT_EQ(errorOf(H("server { listen 8082 proxy_protocol; location / { "
                      "wsgi_app a:b; wsgi_forwarded_allow_ips 10.0.0.1 nope; } }")),
            "[emerg] invalid address \"nope\" in \"wsgi_forwarded_allow_ips\" directive, it must "
            "be an IP address or \"*\" in /etc/p/site.conf:3");
}

TEST(ConfBuilder, EveryRefusedDirectiveIsNamedInOneRun) {
  // A tutorial's file with three things portico refuses: each is named, in file order; the
  // directive that needed a refused one (wsgi_threads without its location's wsgi_app, which
  // is fine here) adds no error of its own.
  ConfLoadResult r = load(S("charset utf-8;\n"
                            "location /php { fastcgi_pass 127.0.0.1:9000; }\n"
                            "location / { proxy_pass http://127.0.0.1:8000; proxy_cache c; "
                            "proxy_request_buffering off; }"));
  ASSERT_FALSE(r.ok);
  ASSERT_EQ(r.messages.size(), 3u) << r.messages.back();
  EXPECT_EQ(r.messages[0],
            "[emerg] \"charset\" directive is not supported by portico yet in /etc/p/site.conf:4");
  EXPECT_NE(r.messages[1].find("\"fastcgi_pass\" directive is not supported by portico "
                               "(instead:"),
            std::string::npos);
  EXPECT_NE(r.messages[1].find("site.conf:5"), std::string::npos);
  EXPECT_NE(r.messages[2].find("\"proxy_cache\" directive"), std::string::npos);
  // An error after a refusal may come of it: the refusals are reported, to be fixed first.
  ConfLoadResult s = load(S("charset utf-8;\nlisten 80 bogus;"));
  ASSERT_FALSE(s.ok);
  EXPECT_EQ(s.messages.back(),
            "[emerg] \"charset\" directive is not supported by portico yet in /etc/p/site.conf:4");
}

}  // namespace
}  // namespace portico::config
