#include "http/variables.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace portico::http {
namespace {

Template compileOk(std::string_view text, const std::vector<std::string>& names = {}) {
  std::string error;
  auto t = Template::compile(text, error, names);
  EXPECT_TRUE(t) << text << ": " << error;
  return t ? *t : Template();
}

struct Fixture {
  Request request;
  ConnectionInfo connection;
  VariableContext context;
  Fixture() {
    request.method = "GET";
    request.target = "/a%20b/c?x=1&Y=two";
    request.rawPath = "/a%20b/c";
    request.path = "/a b/c";
    request.query = "x=1&Y=two";
    request.host = "Example.COM:8080";
    request.headers = {{"Host", "Example.COM:8080"},
                       {"User-Agent", "curl/8"},
                       {"Cookie", "a=1; sess=xyz"},
                       {"X-Forwarded-For", "1.1.1.1"},
                       {"X-Forwarded-For", "2.2.2.2"}};
    connection.peerAddress = "10.0.0.7";
    connection.peerPort = 5555;
    connection.localAddress = "127.0.0.1";
    connection.localPort = 8080;
    context.request = &request;
    context.connection = &connection;
    context.uri = "/a b/c";
    context.args = request.query;
    context.host = "example.com";
    context.serverName = "example.com";
    context.documentRoot = "/srv/www";
  }
};

TEST(Variables, RequestVariables) {
  Fixture f;
  EXPECT_EQ(compileOk("$uri|$document_uri|$request_uri").expand(f.context),
            "/a b/c|/a b/c|/a%20b/c?x=1&Y=two");
  EXPECT_EQ(compileOk("$args|$query_string|$is_args|$arg_x|$arg_y|$arg_none").expand(f.context),
            "x=1&Y=two|x=1&Y=two|?|1|two|");
  EXPECT_EQ(compileOk("$host $server_name $server_port $server_addr").expand(f.context),
            "example.com example.com 8080 127.0.0.1");
  EXPECT_EQ(compileOk("$remote_addr:$remote_port $request_method $scheme").expand(f.context),
            "10.0.0.7:5555 GET http");
  EXPECT_EQ(compileOk("$request").expand(f.context), "GET /a%20b/c?x=1&Y=two HTTP/1.1");
  EXPECT_EQ(compileOk("$server_protocol").expand(f.context), "HTTP/1.1");
  EXPECT_EQ(compileOk("$document_root").expand(f.context), "/srv/www");
}

TEST(Variables, HeadersAndCookies) {
  Fixture f;
  EXPECT_EQ(compileOk("$http_user_agent").expand(f.context), "curl/8");
  EXPECT_EQ(compileOk("$HTTP_USER_AGENT").expand(f.context), "curl/8");
  EXPECT_EQ(compileOk("$http_x_forwarded_for").expand(f.context), "1.1.1.1, 2.2.2.2");
  EXPECT_EQ(compileOk("$cookie_sess/$cookie_a/$cookie_none").expand(f.context), "xyz/1/");
  EXPECT_EQ(compileOk("[$http_referer]").expand(f.context), "[]");
}

TEST(Variables, BracesAndLiterals) {
  Fixture f;
  EXPECT_EQ(compileOk("https://${host}${request_uri}x").expand(f.context),
            "https://example.com/a%20b/c?x=1&Y=twox");
  EXPECT_TRUE(compileOk("plain text").constant());
  EXPECT_EQ(compileOk("plain text").expand(f.context), "plain text");
  EXPECT_FALSE(compileOk("$uri").constant());
}

TEST(Variables, Captures) {
  Fixture f;
  Regex::Match m;
  m.groups = {"/users/42/x", "42", "x"};
  m.named = {{"id", "42"}};
  f.context.captures = &m;
  EXPECT_EQ(compileOk("/u/$1/$2/$3").expand(f.context), "/u/42/x/");
  EXPECT_EQ(compileOk("/u/$id", {"id"}).expand(f.context), "/u/42");
  EXPECT_EQ(compileOk("$12").expand(f.context), "422");  // $1 then "2", as nginx
}

TEST(Variables, UnknownVariableIsAnError) {
  std::string error;
  EXPECT_FALSE(Template::compile("/x/$nosuch", error));
  EXPECT_EQ(error, "unknown \"nosuch\" variable");
  EXPECT_FALSE(Template::compile("${host", error));
  EXPECT_NE(error.find("closing bracket"), std::string::npos);
  EXPECT_FALSE(Template::compile("a $ b", error));
  EXPECT_FALSE(Template::compile("$id", error));  // a capture name nobody declared
  EXPECT_TRUE(compileTemplate("$id", error, {"id"}));
}

TEST(Variables, LogEscapingAndNotFound) {
  Fixture f;
  f.request.headers.push_back({"Referer", "a\"b\\c\x01"});
  f.context.status = 404;
  f.context.bodyBytesSent = 12;
  EXPECT_EQ(compileOk("$http_referer").expand(f.context, VariableEscape::kDefault),
            "a\\x22b\\x5Cc\\x01");
  EXPECT_EQ(compileOk("\"$http_x_none\" $status $body_bytes_sent")
                .expand(f.context, VariableEscape::kDefault),
            "\"-\" 404 12");
  EXPECT_EQ(compileOk("{\"r\":\"$http_referer\",\"n\":\"$http_x_none\"}")
                .expand(f.context, VariableEscape::kJson),
            "{\"r\":\"a\\\"b\\\\c\\u0001\",\"n\":\"\"}");
}

TEST(Variables, TimeVariablesHaveTheirShapes) {
  Fixture f;
  f.context.durationMicros = 1234567;
  EXPECT_EQ(compileOk("$request_time").expand(f.context), "1.234");
  std::string iso = compileOk("$time_iso8601").expand(f.context);
  EXPECT_EQ(iso.size(), 25u) << iso;
  EXPECT_EQ(iso[10], 'T');
  std::string msec = compileOk("$msec").expand(f.context);
  EXPECT_EQ(msec[msec.size() - 4], '.') << msec;
  EXPECT_FALSE(compileOk("$hostname").expand(f.context).empty());
  EXPECT_EQ(compileOk("$pid").expand(f.context), std::to_string(::getpid()));
}

TEST(Variables, ValidateTemplatesOfASite) {
  config::HttpSite site;
  site.servers.emplace_back();
  auto& server = site.servers.back();
  server.serverNames = {"~^(?<sub>[a-z]+)\\.example\\.net$"};
  config::Location l;
  l.match = config::Location::Match::kRegex;
  l.pattern = "^/u/(?<user>\\w+)(?<=x)";
  l.settings.root = "/srv/$sub/$user";
  l.source = {"/etc/site.conf", 7};
  server.locations.push_back(l);
  std::vector<std::string> names = captureNamesOf(site);
  EXPECT_EQ(names, (std::vector<std::string>{"sub", "user"}));
  std::string error;
  EXPECT_TRUE(validateTemplates(site, error)) << error;
  server.locations[0].settings.addHeaders = {{"X", "$nope", false}};
  EXPECT_FALSE(validateTemplates(site, error));
  EXPECT_EQ(error, "unknown \"nope\" variable in /etc/site.conf:7");
  server.locations[0].settings.addHeaders.clear();
  site.logFormats["main"] = {"main", "default", "$remote_addr $bogus"};
  EXPECT_FALSE(validateTemplates(site, error));
  EXPECT_NE(error.find("log_format \"main\""), std::string::npos) << error;
  site.logFormats.erase("main");
  // root/alias name the line they were written on (the server level's, inherited here).
  server.locations[0].settings.alias = "/data/$nosuch";
  server.locations[0].settings.directorySource = {"/etc/site.conf", 9};
  EXPECT_FALSE(validateTemplates(site, error));
  EXPECT_EQ(error, "unknown \"nosuch\" variable in /etc/site.conf:9");
}

TEST(Variables, HostValidation) {
  EXPECT_EQ(validateHost("Example.COM"), "example.com");
  EXPECT_EQ(validateHost("example.com:8080"), "example.com");
  EXPECT_EQ(validateHost("example.com."), "example.com");
  EXPECT_EQ(validateHost("[::1]:80"), "[::1]");
  EXPECT_EQ(validateHost("127.0.0.1:8000"), "127.0.0.1");
  EXPECT_FALSE(validateHost("a..b"));
  EXPECT_FALSE(validateHost("a/b"));
  EXPECT_FALSE(validateHost(std::string_view("a\0b", 3)));
  EXPECT_FALSE(validateHost(":80"));
}

}  // namespace
}  // namespace portico::http

namespace portico::http {
namespace {

TEST(Variables, RequestFilenameAskedOfTheRequest) {
  Fixture f;
  std::string error;
  auto t = Template::compile("[$request_filename]", error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->expand(f.context), "[]");  // nobody to ask: empty
  f.context.requestFilename = [](std::string_view uri) { return "/srv" + std::string(uri); };
  EXPECT_EQ(t->expand(f.context), "[/srv/a b/c]");
}

TEST(Variables, UserVariablesFromTheStore) {
  Fixture f;
  VariableRegistry registry;
  int index = registry.add("Mine");
  std::string error;
  EXPECT_FALSE(Template::compile("$mine", error));  // without the registry: unknown
  EXPECT_EQ(error, "unknown \"mine\" variable");
  auto t = Template::compile("<$MINE>", error, {}, &registry);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->expand(f.context), "<>");  // no store: empty
  UserVariableStore store(registry);
  f.context.users = &store;
  f.context.warnUninitialized = false;
  EXPECT_EQ(t->expand(f.context), "<>");  // never set
  store.set(index, "v");
  EXPECT_EQ(t->expand(f.context), "<v>");
  EXPECT_EQ(t->expand(f.context, VariableEscape::kDefault), "<v>");
}

}  // namespace
}  // namespace portico::http
