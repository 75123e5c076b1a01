// The content phase (pipeline::SiteHandler) on hand-built models, through a recording exchange:
// nginx's return, try_files, index, root/alias, directory redirects, error_page, add_header,
// expires, server selection and body limits, without a socket or a config parser.
#include "pipeline/site_handler.h"
#include "static/static_handler.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>

#include "fake_exchange.h"
#include "http/parser.h"

namespace portico::pipeline {
namespace {

namespace fs = std::filesystem;
using Match = config::Location::Match;

// A level's rewrite program that is one `return`.
std::vector<config::RewriteStep> returning(int code, std::string text, bool hasText) {
  return {config::RewriteStep::returning(config::ReturnSpec{code, std::move(text), hasText})};
}

config::RewriteStep rewriteTo(std::string regex, std::string replacement,
                              config::RewriteStep::Flag flag = config::RewriteStep::Flag::kNone) {
  config::RewriteStep step;
  step.kind = config::RewriteStep::Kind::kRewrite;
  step.regex = std::move(regex);
  step.replacement = std::move(replacement);
  step.flag = flag;
  return step;
}

using RecordingExchange = portico::unit::FakeExchange;

class SiteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("portico-site-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "www" / "dir");
    fs::create_directories(dir_ / "www" / "empty");
    fs::create_directories(dir_ / "assets" / "img");
    write("www/index.html", "<h1>home</h1>\n");
    write("www/dir/index.html", "dir index\n");
    write("www/a.txt", "alpha\n");
    write("www/404.html", "custom not found\n");
    write("www/style.css", "body{}\n");
    write("assets/logo.png", "PNG!");
    write("assets/img/x.gif", "GIF!");
    server().listens = {listen("127.0.0.1", 8080)};
    server().settings.defaultType = "application/octet-stream";
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& relative, const std::string& data) {
    std::ofstream(dir_ / relative) << data;
  }
  static config::ListenSpec listen(std::string host, uint16_t port, bool def = false) {
    config::ListenSpec l;
    l.host = std::move(host);
    l.port = port;
    l.defaultServer = def;
    return l;
  }
  config::VirtualServer& server(size_t i = 0) {
    while (site_.servers.size() <= i) {
      site_.servers.emplace_back();
      site_.servers.back().settings.root = (dir_ / "www").string();
      site_.servers.back().settings.accessLogs.clear();
    }
    return site_.servers[i];
  }
  // A location inheriting the server level's settings (as the conf builder merges them).
  config::Location& add(Match match, std::string pattern, size_t s = 0) {
    config::Location l;
    l.match = match;
    l.pattern = std::move(pattern);
    l.settings = server(s).settings;
    l.settings.rewrites.clear();
    server(s).locations.push_back(std::move(l));
    return server(s).locations.back();
  }

  bool build(std::string& error) {
    map_ = http::SiteMap::build(site_, error);
    if (!map_) return false;
    handler_ = std::make_unique<SiteHandler>(config_, *map_);
    return handler_->build({modules_, staticfiles::documentRoots()}, error);
  }
  void build() {
    std::string error;
    ASSERT_TRUE(build(error)) << error;
  }

  RecordingExchange get(std::string target, std::string host = "example.com",
                        std::string method = "GET", uint64_t* bodyLimit = nullptr) {
    requests_.push_back(std::make_unique<http::Request>());
    http::Request& r = *requests_.back();
    r.method = method;
    r.target = target;
    size_t q = target.find('?');
    r.rawPath = target.substr(0, q);
    r.path = r.rawPath;
    if (q != std::string::npos) r.query = target.substr(q + 1);
    r.host = host;
    if (!host.empty()) r.headers.push_back({"Host", host});
    RecordingExchange x;
    x.external = &r;
    x.conn.localAddress = "127.0.0.1";
    x.conn.localPort = 8080;
    x.conn.peerAddress = "127.0.0.1";
    x.conn.plainOnTls = plainOnTls_;
    routes_.push_back(handler_->route(r, x.conn));
    if (bodyLimit) *bodyLimit = routes_.back()->limits().maxBodySize;
    routes_.back()->run(x);
    EXPECT_TRUE(x.finished || x.aborted) << target;
    EXPECT_TRUE(x.head || x.aborted) << target;
    return x;
  }

  fs::path dir_;
  bool plainOnTls_ = false;  // requests arrive as plain HTTP on a TLS address
  std::vector<ContentModule*> modules_;  // registered with the site, as process::Server does
  config::Config config_;
  config::HttpSite site_;
  std::unique_ptr<http::SiteMap> map_;
  std::unique_ptr<SiteHandler> handler_;
  std::vector<std::unique_ptr<http::Request>> requests_;
  std::vector<std::unique_ptr<http::RequestRoute>> routes_;
};

TEST_F(SiteTest, RootIndexAndDirectoryRedirects) {
  add(Match::kPrefix, "/");
  build();
  auto home = get("/");
  EXPECT_EQ(home.head->status, 200);
  EXPECT_EQ(home.body, "<h1>home</h1>\n");
  EXPECT_EQ(home.header("Content-Type"), "text/html");
  auto dir = get("/dir?x=1");
  EXPECT_EQ(dir.head->status, 301);
  EXPECT_EQ(dir.header("Location"), "http://example.com:8080/dir/?x=1");
  EXPECT_EQ(get("/dir/").body, "dir index\n");
  EXPECT_EQ(get("/empty/").head->status, 403);  // a directory without index
  EXPECT_EQ(get("/missing/").head->status, 404);
  EXPECT_EQ(get("/missing.txt").head->status, 404);
  EXPECT_EQ(get("/a.txt", "example.com", "POST").head->status, 405);
  EXPECT_EQ(get("/a.txt", "example.com", "PUT").head->status, 405);
  EXPECT_EQ(get("/missing.txt", "example.com", "POST").head->status, 404);  // as nginx
}

TEST_F(SiteTest, IndexRedirectReMatchesLocations) {
  add(Match::kExact, "/");
  add(Match::kExact, "/index.html").settings.addHeaders = {{"X-Loc", "exact-index", false}};
  build();
  auto home = get("/");
  EXPECT_EQ(home.body, "<h1>home</h1>\n");
  EXPECT_EQ(home.header("X-Loc"), "exact-index");  // served by the location of /index.html
}

TEST_F(SiteTest, IndexTestsTheDirectoryBeforeAnAbsoluteIndex) {
  add(Match::kExact, "/first/").settings.index = {"nothere.html", "/a.txt"};
  add(Match::kExact, "/dir/").settings.index = {"nothere.html", "/a.txt"};
  build();
  EXPECT_EQ(get("/first/").head->status, 404);  // no directory: 404 before "/a.txt"
  EXPECT_EQ(get("/dir/").body, "alpha\n");
}

TEST_F(SiteTest, AliasPrefixAndRegexWithCaptures) {
  add(Match::kPrefix, "/static/").settings.alias = (dir_ / "assets").string() + "/";
  add(Match::kRegex, "^/pics/(.+\\.gif)$").settings.alias = (dir_ / "assets/img/$1").string();
  build();
  auto png = get("/static/logo.png");
  EXPECT_EQ(png.head->status, 200);
  EXPECT_EQ(png.body, "PNG!");
  EXPECT_EQ(png.header("Content-Type"), "image/png");
  auto gif = get("/pics/x.gif");
  EXPECT_EQ(gif.head->status, 200);
  EXPECT_EQ(gif.body, "GIF!");
  EXPECT_EQ(get("/pics/nope.gif").head->status, 404);
  EXPECT_EQ(get("/static/img").header("Location"), "http://example.com:8080/static/img/");
}

TEST_F(SiteTest, TryFilesFilesDirectoriesAndFallbacks) {
  auto& root = add(Match::kPrefix, "/");
  root.settings.tryFiles = config::TryFiles{{"$uri", "$uri/"}, "/index.html"};
  auto& strict = add(Match::kPrefix, "/strict/");
  strict.settings.tryFiles = config::TryFiles{{"$uri"}, "=418"};
  auto& app = add(Match::kPrefix, "/app/");
  app.settings.tryFiles = config::TryFiles{{"$uri"}, "@backend"};
  auto& named = add(Match::kNamed, "@backend");
  named.settings.rewrites = returning(200, "backend $uri $args", true);
  build();
  EXPECT_EQ(get("/a.txt").body, "alpha\n");
  auto dir = get("/dir");  // $uri/ found: the URI stays "/dir", a directory → 301
  EXPECT_EQ(dir.head->status, 301);
  EXPECT_EQ(dir.header("Location"), "http://example.com:8080/dir/");
  EXPECT_EQ(get("/dir/").body, "dir index\n");
  EXPECT_EQ(get("/nowhere?q=1").body, "<h1>home</h1>\n");
  auto teapot = get("/strict/x");
  EXPECT_EQ(teapot.head->status, 418);  // no nginx page for 418: an empty answer
  EXPECT_EQ(teapot.body, "");
  EXPECT_EQ(teapot.count("Content-Type"), 0);
  auto backend = get("/app/x?y=2");
  EXPECT_EQ(backend.head->status, 200);
  EXPECT_EQ(backend.body, "backend /app/x y=2");
  EXPECT_EQ(backend.header("Content-Type"), "application/octet-stream");
  EXPECT_EQ(get("/app/x.css").header("Content-Type"), "text/css");  // the URI's type
}

TEST_F(SiteTest, ReturnRedirectsWithVariablesAndServerReturn) {
  add(Match::kPrefix, "/old/").settings.rewrites =
      returning(301, "https://$host$request_uri", true);
  add(Match::kPrefix, "/rel/").settings.rewrites = returning(302, "/new/", true);
  add(Match::kPrefix, "/gone/").settings.rewrites = returning(410, "", false);
  build();
  auto old = get("/old/page?a=b", "Example.COM:8080");
  EXPECT_EQ(old.head->status, 301);
  EXPECT_EQ(old.header("Location"), "https://example.com/old/page?a=b");
  EXPECT_EQ(get("/rel/x").header("Location"), "http://example.com:8080/new/");
  auto gone = get("/gone/");
  EXPECT_EQ(gone.head->status, 410);
  EXPECT_NE(gone.body.find("410 Gone"), std::string::npos) << gone.body;

  server(1).listens = {listen("127.0.0.1", 8080)};
  server(1).serverNames = {"redirect.test"};
  server(1).settings.rewrites = returning(301, "https://example.com$request_uri", true);
  add(Match::kPrefix, "/", 1);
  build();
  auto moved = get("/x", "redirect.test");
  EXPECT_EQ(moved.head->status, 301);
  EXPECT_EQ(moved.header("Location"), "https://example.com/x");
  EXPECT_EQ(get("/a.txt", "other.test").body, "alpha\n");  // the default server
}

TEST_F(SiteTest, RewritePhases) {
  using Flag = config::RewriteStep::Flag;
  // The server's program runs before the location is chosen, the location's after; `last`
  // matches again, and a cycle ends in 500 after 10 rounds.
  server().settings.rewrites = {rewriteTo("^/s/(.*)$", "/loc/$1")};
  add(Match::kPrefix, "/loc/").settings.rewrites = returning(200, "loc $uri $1", true);
  add(Match::kPrefix, "/a/").settings.rewrites = {rewriteTo("^/a/(.*)$", "/loc/$1", Flag::kLast)};
  add(Match::kPrefix, "/loop/").settings.rewrites = {rewriteTo("^", "/loop/x", Flag::kLast)};
  add(Match::kPrefix, "/brk/").settings.rewrites = {rewriteTo("^", "/a.txt", Flag::kBreak)};
  build();
  EXPECT_EQ(get("/s/one").body, "loc /loc/one one");
  EXPECT_EQ(get("/a/two").body, "loc /loc/two two");
  EXPECT_EQ(get("/loop/").head->status, 500);
  auto file = get("/brk/");  // break: the URI changed, the location stays (root: the file)
  EXPECT_EQ(file.head->status, 200);
  EXPECT_EQ(file.body, "alpha\n");
}

TEST_F(SiteTest, ErrorPages) {
  server().settings.errorPages = {{{404}, 0, "/404.html"}};
  add(Match::kPrefix, "/");
  auto& ok = add(Match::kPrefix, "/ok/");
  ok.settings.errorPages = {{{404}, 200, "/404.html"}};
  auto& named = add(Match::kPrefix, "/named/");
  named.settings.errorPages = {{{404, 403}, -1, "@fallback"}};
  add(Match::kNamed, "@fallback").settings.rewrites = returning(202, "fell back", true);
  auto& away = add(Match::kPrefix, "/away/");
  away.settings.errorPages = {{{404}, 0, "https://elsewhere.test/missing"}};
  auto& loop = add(Match::kPrefix, "/loop/");
  loop.settings.errorPages = {{{404}, 0, "/loop/again"}};
  build();
  auto missing = get("/nothing");
  EXPECT_EQ(missing.head->status, 404);
  EXPECT_EQ(missing.body, "custom not found\n");
  auto overridden = get("/ok/nothing");
  EXPECT_EQ(overridden.head->status, 200);
  EXPECT_EQ(overridden.body, "custom not found\n");
  auto fallback = get("/named/x");
  EXPECT_EQ(fallback.head->status, 202);  // `=`: the named location's own status
  EXPECT_EQ(fallback.body, "fell back");
  auto redirect = get("/away/x");
  EXPECT_EQ(redirect.head->status, 302);
  EXPECT_EQ(redirect.header("Location"), "https://elsewhere.test/missing");
  auto looped = get("/loop/x");  // the error page's own 404 is not intercepted again
  EXPECT_EQ(looped.head->status, 404);
  EXPECT_NE(looped.body.find("404 Not Found"), std::string::npos);
}

// A plain HTTP request on a TLS address is nginx's 497, answered 400; error_page finds it by
// 497 (not by 400), and its redirect closes the connection as nginx's does.
TEST_F(SiteTest, ErrorPage497CatchesAPlainRequestToATlsAddress) {
  add(Match::kPrefix, "/");
  auto& https = add(Match::kPrefix, "/https/");
  https.settings.errorPages = {{{400}, 0, "/404.html"},
                               {{497}, 301, "https://$host:$server_port$request_uri"}};
  auto& only400 = add(Match::kPrefix, "/only400/");
  only400.settings.errorPages = {{{400}, 0, "/404.html"}};
  build();
  plainOnTls_ = true;
  auto plain = get("/x");
  EXPECT_EQ(plain.head->status, 400);
  EXPECT_NE(plain.body.find("The plain HTTP request was sent to HTTPS port"), std::string::npos);
  auto moved = get("/https/a?b=1");
  EXPECT_EQ(moved.head->status, 301);
  EXPECT_EQ(moved.header("Location"), "https://example.com:8080/https/a?b=1");
  EXPECT_TRUE(moved.head->close);
  auto notCaught = get("/only400/a");
  EXPECT_EQ(notCaught.head->status, 400);
  EXPECT_NE(notCaught.body.find("The plain HTTP request was sent to HTTPS port"),
            std::string::npos);
}

// A content module as the composition root registers one (a proxy would be another): it claims
// the locations whose directives name it (here wsgi_app), and its handler is their content.
class Answer : public ContentHandler {
 public:
  Answer(std::string app, bool upstream) : app_(std::move(app)), upstream_(upstream) {}
  void handle(http::Exchange& exchange) override {
    if (app_.ends_with("missing")) {
      exchange.respondError(404);
      return;
    }
    http::ResponseHead head;
    head.status = 200;
    exchange.respond(std::move(head), app_ + " " + exchange.request().path);
  }
  bool readsBody() const override { return true; }
  bool upstream() const override { return upstream_; }

 private:
  std::string app_;
  bool upstream_;
};

class AnswerModule : public ContentModule {
 public:
  bool claims(const config::LocationSettings& s) const override { return s.wsgi.has_value(); }
  std::unique_ptr<ContentHandler> create(const config::LocationSettings& s,
                                         std::string& error) override {
    if (s.wsgi->app == "refused") {
      error = "app \"refused\" refused";
      return nullptr;
    }
    ++made;
    return std::make_unique<Answer>(s.wsgi->app, !s.wsgi->app.starts_with("own"));
  }
  int made = 0;
};

config::WsgiSpec app(std::string name) {
  config::WsgiSpec spec;
  spec.app = std::move(name);
  return spec;
}

TEST_F(SiteTest, RegisteredContentAnswersTheLocationsItClaims) {
  AnswerModule module;
  modules_ = {&module};
  add(Match::kPrefix, "/");
  add(Match::kPrefix, "/app/").settings.wsgi = app("hello");
  build();
  EXPECT_EQ(module.made, 1);
  auto answered = get("/app/x");
  EXPECT_EQ(answered.head->status, 200);
  EXPECT_EQ(answered.body, "hello /app/x");
  EXPECT_TRUE(routes_.back()->readsBody());  // the body is kept for the content
  auto file = get("/a.txt");  // not claimed: the files beneath the root
  EXPECT_EQ(file.body, "alpha\n");
  EXPECT_FALSE(routes_.back()->readsBody());
}

TEST_F(SiteTest, AnUpstreamsErrorsAreItsOwn) {
  AnswerModule module;
  modules_ = {&module};
  server().settings.errorPages = {{{404}, 0, "/404.html"}};
  add(Match::kPrefix, "/");
  add(Match::kPrefix, "/up/").settings.wsgi = app("up-missing");
  add(Match::kPrefix, "/own/").settings.wsgi = app("own-missing");
  build();
  auto upstream = get("/up/x");  // error_page does not take over an app's answer
  EXPECT_EQ(upstream.head->status, 404);
  EXPECT_NE(upstream.body.find("404 Not Found"), std::string::npos);
  auto own = get("/own/x");  // a content of the server's own (stub_status) is intercepted
  EXPECT_EQ(own.head->status, 404);
  EXPECT_EQ(own.body, "custom not found\n");
}

TEST_F(SiteTest, AContentModulesRefusalFailsTheBuild) {
  AnswerModule module;
  modules_ = {&module};
  add(Match::kPrefix, "/").settings.wsgi = app("refused");
  std::string error;
  EXPECT_FALSE(build(error));
  EXPECT_EQ(error, "app \"refused\" refused");
}

TEST_F(SiteTest, ErrorPageThroughTryFilesStaysGet) {
  server().settings.errorPages = {{{404}, 0, "/404.html"}};
  add(Match::kPrefix, "/").settings.tryFiles = config::TryFiles{{"$uri"}, "=404"};
  build();
  auto post = get("/missing", "example.com", "POST");
  EXPECT_EQ(post.head->status, 404);
  EXPECT_EQ(post.body, "custom not found\n");
}

TEST_F(SiteTest, AddHeaderAndExpiresFilters) {
  auto& l = add(Match::kPrefix, "/");
  l.settings.addHeaders = {{"X-Frame-Options", "DENY", false},
                           {"X-Uri", "$uri", true},
                           {"X-Empty", "$http_x_none", false}};
  l.settings.expires = config::Expires{config::Expires::Kind::kAfter, 3600, false, {}};
  auto& epoch = add(Match::kPrefix, "/dir/");
  epoch.settings.expires = config::Expires{config::Expires::Kind::kEpoch, 0, false, {}};
  auto& max = add(Match::kPrefix, "/empty/");
  max.settings.expires = config::Expires{config::Expires::Kind::kMax, 0, false, {}};
  build();
  auto ok = get("/a.txt");
  EXPECT_EQ(ok.header("X-Frame-Options"), "DENY");
  EXPECT_EQ(ok.header("X-Uri"), "/a.txt");
  EXPECT_EQ(ok.count("X-Empty"), 0);
  EXPECT_EQ(ok.header("Cache-Control"), "max-age=3600");
  EXPECT_NE(ok.header("Expires"), std::nullopt);
  auto missing = get("/none");
  EXPECT_EQ(missing.head->status, 404);
  EXPECT_EQ(missing.count("X-Frame-Options"), 0);  // not without `always`
  EXPECT_EQ(missing.header("X-Uri"), "/none");
  EXPECT_EQ(missing.count("Cache-Control"), 0);
  auto e = get("/dir/index.html");
  EXPECT_EQ(e.header("Expires"), "Thu, 01 Jan 1970 00:00:01 GMT");
  EXPECT_EQ(e.header("Cache-Control"), "no-cache");
  write("www/empty/f.txt", "f");
  auto m = get("/empty/f.txt");
  EXPECT_EQ(m.header("Expires"), "Thu, 31 Dec 2037 23:55:55 GMT");
  EXPECT_EQ(m.header("Cache-Control"), "max-age=315360000");
}

TEST_F(SiteTest, TypesAndDefaultTypePerLocation) {
  auto& l = add(Match::kPrefix, "/");
  l.settings.types = std::map<std::string, std::string>{{"txt", "text/x-custom"}};
  l.settings.defaultType = "text/x-default";
  build();
  EXPECT_EQ(get("/a.txt").header("Content-Type"), "text/x-custom");
  EXPECT_EQ(get("/style.css").header("Content-Type"), "text/x-default");
}

TEST_F(SiteTest, ServerSelectionAndInvalidHost) {
  server().serverNames = {"example.com"};
  add(Match::kPrefix, "/").settings.rewrites = returning(200, "first", true);
  server(1).listens = {listen("127.0.0.1", 8080, true)};
  server(1).serverNames = {"*.example.org"};
  add(Match::kPrefix, "/", 1).settings.rewrites = returning(200, "second $host", true);
  build();
  EXPECT_EQ(get("/", "example.com").body, "first");
  EXPECT_EQ(get("/", "WWW.Example.org.").body, "second www.example.org");
  EXPECT_EQ(get("/", "unknown.test").body, "second unknown.test");  // default_server
  EXPECT_EQ(get("/", "").body, "second *.example.org");  // no Host: $host is the first name
  EXPECT_EQ(get("/", "bad/host").head->status, 400);
}

TEST_F(SiteTest, BodyLimitComesFromTheLocation) {
  server().settings.clientMaxBodySize = 100;
  add(Match::kPrefix, "/");
  add(Match::kPrefix, "/upload/").settings.clientMaxBodySize = 0;
  build();
  uint64_t limit = 1;
  get("/a.txt", "example.com", "GET", &limit);
  EXPECT_EQ(limit, 100u);
  get("/upload/x", "example.com", "GET", &limit);
  EXPECT_EQ(limit, 0u);
}

TEST_F(SiteTest, SendfileOffReadsTheFile) {
  server().settings.sendfile = true;
  add(Match::kPrefix, "/");
  add(Match::kPrefix, "/dir/").settings.sendfile = false;
  std::string big(200 * 1024, 'z');
  write("www/dir/big.bin", big);
  write("www/big.bin", big);
  build();
  auto on = get("/big.bin");
  EXPECT_EQ(on.fileChunks, 1);
  EXPECT_EQ(get("/a.txt").fileChunks, 0);  // small files are read either way
  auto off = get("/dir/big.bin");
  EXPECT_EQ(off.fileChunks, 0);
  EXPECT_EQ(off.body, big);
  EXPECT_EQ(off.head->contentLength, big.size());
}

TEST_F(SiteTest, InternalRedirectCycleIs500) {
  auto& l = add(Match::kPrefix, "/");
  l.settings.tryFiles = config::TryFiles{{"$uri"}, "/loop$uri"};
  build();
  EXPECT_EQ(get("/x").head->status, 500);
}

TEST_F(SiteTest, UnknownVariableIsAStartupError) {
  add(Match::kPrefix, "/").settings.addHeaders = {{"X", "$nonsense", false}};
  std::string error;
  EXPECT_FALSE(build(error));
  EXPECT_NE(error.find("unknown \"nonsense\" variable"), std::string::npos) << error;
}

TEST_F(SiteTest, Return444ClosesWithoutAResponse) {
  add(Match::kPrefix, "/").settings.rewrites = returning(444, "", false);
  build();
  auto x = get("/");
  EXPECT_TRUE(x.aborted);
}

}  // namespace
}  // namespace portico::pipeline

namespace portico::pipeline {
namespace {

TEST(SiteHandlerEmpty, AnEmptySiteAnswers500) {
  config::Config config;
  config::HttpSite site;
  std::string error;
  auto map = http::SiteMap::build(site, error);
  ASSERT_TRUE(map) << error;
  SiteHandler handler(config, *map);
  ASSERT_TRUE(handler.build({{}, staticfiles::documentRoots()}, error)) << error;
  http::Request request;
  request.method = "GET";
  request.target = request.rawPath = request.path = "/";
  RecordingExchange x;
  x.external = &request;
  auto route = handler.route(request, x.conn);
  route->run(x);
  ASSERT_TRUE(x.head);
  EXPECT_EQ(x.head->status, 500);
}

}  // namespace
}  // namespace portico::pipeline
