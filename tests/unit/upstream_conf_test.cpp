// The upstream module's configuration (config/upstream_module.*): `upstream NAME { }` blocks,
// their directives and nginx 1.22's messages, and the implicit upstreams of a *_pass address.

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "config/conf_builder.h"
#include "config/conf_module.h"
#include "config/upstream_module.h"

namespace portico::config {
namespace {

const std::string kConf = "/etc/p/site.conf";

ConfLoadResult load(const std::string& text) {
  ConfLoader loader;
  loader.addMemoryFile(kConf, text);
  ConfLoadOptions options{kConf, "/srv/prefix/", "", ""};
  return loadConf(options, loader);
}

// http { BODY } with events: BODY starts on line 3.
std::string H(const std::string& body) { return "events {}\nhttp {\n" + body + "\n}\n"; }

std::vector<UpstreamSpec> upstreamsOf(const std::string& text) {
  ConfLoadResult r = load(text);
  EXPECT_TRUE(r.ok) << (r.messages.empty() ? "" : r.messages.back());
  return r.config.site.upstreams;
}

std::string errorOf(const std::string& text) {
  ConfLoadResult r = load(text);
  if (r.ok) return "(accepted)";
  return r.messages.back();
}

std::vector<std::string> warningsOf(const std::string& text) {
  ConfLoadResult r = load(text);
  EXPECT_TRUE(r.ok);
  return r.messages;
}

TEST(UpstreamConf, BlockServersAndParameters) {
  auto ups = upstreamsOf(H(
      "upstream Backend {\n"
      "  server 127.0.0.1:8081 weight=5 max_fails=3 fail_timeout=30s;\n"
      "  server 127.0.0.1:8082 max_conns=10 down;\n"
      "  server 127.0.0.1 backup;\n"
      "  server [::1]:8083;\n"
      "  server unix:/tmp/app.sock;\n"
      "  keepalive 16;\n"
      "  keepalive_requests 50;\n"
      "  keepalive_timeout 5s;\n"
      "  keepalive_time 10m;\n"
      "}"));
  ASSERT_EQ(ups.size(), 1u);
  const UpstreamSpec& u = ups[0];
  EXPECT_EQ(u.name, "Backend");
  EXPECT_FALSE(u.implicit);
  EXPECT_EQ(u.method, UpstreamSpec::Method::kRoundRobin);
  ASSERT_EQ(u.servers.size(), 5u);
  EXPECT_EQ(u.servers[0].weight, 5);
  EXPECT_EQ(u.servers[0].maxFails, 3);
  EXPECT_EQ(u.servers[0].failTimeoutSeconds, 30);
  EXPECT_EQ(u.servers[0].addresses.at(0).text, "127.0.0.1:8081");
  EXPECT_EQ(u.servers[0].line, 4);
  EXPECT_EQ(u.servers[1].maxConns, 10);
  EXPECT_TRUE(u.servers[1].down);
  EXPECT_TRUE(u.servers[2].backup);
  EXPECT_EQ(u.servers[2].addresses.at(0).text, "127.0.0.1:80");  // the default port
  EXPECT_EQ(u.servers[3].addresses.at(0).text, "[::1]:8083");
  EXPECT_EQ(u.servers[4].addresses.at(0).text, "unix:/tmp/app.sock");
  EXPECT_EQ(u.servers[1].weight, 1);
  EXPECT_EQ(u.servers[1].maxFails, 1);
  EXPECT_EQ(u.servers[1].failTimeoutSeconds, 10);
  EXPECT_EQ(u.keepalive, 16);
  EXPECT_EQ(u.keepaliveRequests, 50u);
  EXPECT_EQ(u.keepaliveTimeoutMs, 5000u);
  EXPECT_EQ(u.keepaliveTimeMs, 600000u);
}

TEST(UpstreamConf, Methods) {
  auto ups = upstreamsOf(H(
      "upstream a { least_conn; server 127.0.0.1:1 backup; server 127.0.0.1:2; }\n"
      "upstream b { ip_hash; server 127.0.0.1:1; }\n"
      "upstream c { hash $request_uri; server 127.0.0.1:1; }\n"
      "upstream d { hash $remote_addr$uri consistent; server 127.0.0.1:1; }\n"
      "upstream e { server 127.0.0.1:1; }"));
  ASSERT_EQ(ups.size(), 5u);
  EXPECT_EQ(ups[0].method, UpstreamSpec::Method::kLeastConn);
  EXPECT_EQ(ups[1].method, UpstreamSpec::Method::kIpHash);
  EXPECT_EQ(ups[2].method, UpstreamSpec::Method::kHash);
  EXPECT_EQ(ups[2].hashKey, "$request_uri");
  EXPECT_FALSE(ups[2].hashConsistent);
  EXPECT_EQ(ups[3].hashKey, "$remote_addr$uri");
  EXPECT_TRUE(ups[3].hashConsistent);
  EXPECT_EQ(ups[4].method, UpstreamSpec::Method::kRoundRobin);
}

TEST(UpstreamConf, MethodAfterKeepaliveWarnsAndDropsTheCacheAsNginx) {
  auto messages = warningsOf(H("upstream a { server 127.0.0.1:1; keepalive 4; least_conn; }"));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0], "[warn] load balancing method redefined in /etc/p/site.conf:3");
  auto ups = upstreamsOf(H("upstream a { server 127.0.0.1:1; keepalive 4; least_conn; }"));
  EXPECT_EQ(ups[0].keepalive, 0);
  auto kept = upstreamsOf(H("upstream a { least_conn; keepalive 4; server 127.0.0.1:1; }"));
  EXPECT_EQ(kept[0].keepalive, 4);
}

TEST(UpstreamConf, ErrorsAreNginxsMessages) {
  const std::string at3 = " in /etc/p/site.conf:3";
  const std::string at4 = " in /etc/p/site.conf:4";
  const std::map<std::string, std::string> cases = {
      {H("upstream a { server 127.0.0.1:1; }\nupstream A { server 127.0.0.1:2; }"),
       "[emerg] duplicate upstream \"A\"" + at4},
      {H("upstream a {\n}"), "[emerg] no servers are inside upstream" + at4},
      {H("upstream a { server 127.0.0.1:1 backup; }"),
       "[emerg] no servers in upstream \"a\"" + at3},
      {H("upstream a { server 127.0.0.1:1 resolve; }"), "[emerg] invalid parameter \"resolve\"" + at3},
      {H("upstream a { server 127.0.0.1:1 slow_start=10s; }"),
       "[emerg] invalid parameter \"slow_start=10s\"" + at3},
      {H("upstream a { server 127.0.0.1:1 weight=0; }"), "[emerg] invalid parameter \"weight=0\"" + at3},
      {H("upstream a { server 127.0.0.1:1 weight=x; }"), "[emerg] invalid parameter \"weight=x\"" + at3},
      {H("upstream a { server 127.0.0.1:1 max_fails=-1; }"),
       "[emerg] invalid parameter \"max_fails=-1\"" + at3},
      {H("upstream a { server 127.0.0.1:1 fail_timeout=1x; }"),
       "[emerg] invalid parameter \"fail_timeout=1x\"" + at3},
      {H("upstream a { ip_hash; server 127.0.0.1:1 backup; }"),
       "[emerg] balancing method does not support parameter \"backup\"" + at3},
      {H("upstream a { hash $uri; server 127.0.0.1:1 backup; }"),
       "[emerg] balancing method does not support parameter \"backup\"" + at3},
      {H("upstream a { hash $uri inconsistent; server 127.0.0.1:1; }"),
       "[emerg] invalid parameter \"inconsistent\"" + at3},
      {H("upstream a { server 127.0.0.1:99999; }"),
       "[emerg] invalid port in upstream \"127.0.0.1:99999\"" + at3},
      {H("upstream a { server 127.0.0.1:80/x; }"),
       "[emerg] invalid host in upstream \"127.0.0.1:80/x\"" + at3},
      {H("upstream a { server no-such-host.invalid; }"),
       "[emerg] host not found in upstream \"no-such-host.invalid\"" + at3},
      {H("upstream a { server 127.0.0.1:1; keepalive 0; }"),
       "[emerg] invalid value \"0\" in \"keepalive\" directive" + at3},
      {H("upstream a { server 127.0.0.1:1; keepalive 2; keepalive 3; }"),
       "[emerg] \"keepalive\" directive is duplicate" + at3},
      {H("upstream a { server 127.0.0.1:1; keepalive_timeout 1x; }"),
       "[emerg] \"keepalive_timeout\" directive invalid value" + at3},
      {H("upstream a { server 127.0.0.1:1; keepalive_requests x; }"),
       "[emerg] \"keepalive_requests\" directive invalid number" + at3},
      {H("upstream a { server 127.0.0.1:1; zone backend 64k; }"),
       "[emerg] \"zone\" directive is not supported by portico yet" + at3},
      {H("upstream a { server 127.0.0.1:1; random; }"),
       "[emerg] \"random\" directive is not supported by portico yet" + at3},
      {H("upstream a { server 127.0.0.1:1; listen 80; }"),
       "[emerg] \"listen\" directive is not allowed here" + at3},
      {H("upstream a { server 127.0.0.1:1 { } }"),
       "[emerg] directive \"server\" is not terminated by \";\"" + at3},
      {H("upstream a { server; }"), "[emerg] invalid number of arguments in \"server\" directive" + at3},
      {H("upstream a b { server 127.0.0.1:1; }"),
       "[emerg] invalid number of arguments in \"upstream\" directive" + at3},
      {H("least_conn;"), "[emerg] \"least_conn\" directive is not allowed here" + at3},
      {H("server { upstream a { server 127.0.0.1:1; } }"),
       "[emerg] \"upstream\" directive is not allowed here" + at3},
  };
  for (const auto& [text, error] : cases) EXPECT_EQ(errorOf(text), error) << text;
}

TEST(UpstreamConf, IncludeInsideTheBlock) {
  ConfLoader loader;
  loader.addMemoryFile(kConf, H("upstream a { include servers.conf; }"));
  loader.addMemoryFile("/etc/p/servers.conf", "server 127.0.0.1:1;\nserver 127.0.0.1:2;\n");
  ConfLoadOptions options{kConf, "/srv/prefix/", "", ""};
  ConfLoadResult r = loadConf(options, loader);
  ASSERT_TRUE(r.ok) << r.messages.back();
  EXPECT_EQ(r.config.site.upstreams.at(0).servers.size(), 2u);
}

// upstreamFor, as the proxy/uwsgi modules call it at their *_pass directive.
class UpstreamFor : public ::testing::Test {
 protected:
  size_t passTo(const std::string& address, uint16_t defaultPort = 80, int line = 7) {
    ConfDirective d;
    d.name = "proxy_pass";
    d.args = {"http://" + address};
    d.source = SourceRef{kConf, line};
    DirectiveCall call(d, kLocation, prefix_, prefix_, messages_);
    return upstreamFor(upstreams_, address, defaultPort, call);
  }
  std::string failure(const std::string& address, uint16_t defaultPort = 80) {
    try {
      passTo(address, defaultPort);
    } catch (const ConfFailure& f) {
      return f.line;
    }
    return "(accepted)";
  }
  void block(const std::string& name, int line = 20) {
    ConfDirective d;
    d.name = "upstream";
    d.args = {name};
    d.source = SourceRef{kConf, line};
    d.endLine = line + 1;
    DirectiveCall call(d, kHttp, prefix_, prefix_, messages_);
    UpstreamLoad load;
    load.upstreams = &upstreams_;
    beginUpstreamBlock(call, load);
    ConfDirective s;
    s.name = "server";
    s.args = {"127.0.0.1:9000"};
    s.source = SourceRef{kConf, line};
    DirectiveCall serverCall(s, kUpstream, prefix_, prefix_, messages_);
    upstreamDirectives()[0].apply(serverCall, load);
    endUpstreamBlock(call, load);
  }
  std::string blockFailure(const std::string& name) {
    try {
      block(name);
    } catch (const ConfFailure& f) {
      return f.line;
    }
    return "(accepted)";
  }

  std::vector<UpstreamSpec> upstreams_;
  std::string prefix_ = "/srv/prefix/";
  std::vector<std::string> messages_;
};

TEST_F(UpstreamFor, ImplicitUpstreamsAreSharedByHostAndPort) {
  size_t a = passTo("127.0.0.1:8081");
  size_t b = passTo("127.0.0.1:8081");
  size_t c = passTo("127.0.0.1:8082");
  size_t d = passTo("LOCALHOST:8081");
  size_t e = passTo("localhost:8081");
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(d, e);
  finishUpstreams(upstreams_);
  ASSERT_EQ(upstreams_.size(), 3u);
  EXPECT_TRUE(upstreams_[a].implicit);
  EXPECT_EQ(upstreams_[a].servers.at(0).addresses.at(0).text, "127.0.0.1:8081");
  EXPECT_EQ(upstreams_[c].servers.at(0).addresses.at(0).text, "127.0.0.1:8082");
  EXPECT_FALSE(upstreams_[d].servers.at(0).addresses.empty());
  size_t before = upstreams_.size();
  finishUpstreams(upstreams_);  // idempotent
  EXPECT_EQ(upstreams_.size(), before);
  EXPECT_EQ(upstreams_[a].servers.size(), 1u);
}

TEST_F(UpstreamFor, DefaultPortAndUnixSockets) {
  size_t a = passTo("127.0.0.1");
  size_t u = passTo("unix:/tmp/app.sock");
  finishUpstreams(upstreams_);
  EXPECT_EQ(upstreams_[a].servers.at(0).addresses.at(0).text, "127.0.0.1:80");
  EXPECT_EQ(upstreams_[u].name, "/tmp/app.sock");
  EXPECT_EQ(upstreams_[u].servers.at(0).addresses.at(0).text, "unix:/tmp/app.sock");
}

TEST_F(UpstreamFor, ABlockWrittenBeforeOrAfterThePassIsUsed) {
  block("backend");
  size_t before = passTo("backend");
  size_t later = passTo("app");
  block("App");
  finishUpstreams(upstreams_);
  EXPECT_FALSE(upstreams_[before].implicit);
  EXPECT_EQ(upstreams_[before].name, "backend");
  EXPECT_FALSE(upstreams_[later].implicit);
  EXPECT_EQ(upstreams_[later].name, "App");
  EXPECT_EQ(upstreams_[later].servers.at(0).addresses.at(0).text, "127.0.0.1:9000");
  EXPECT_EQ(upstreams_.size(), 2u);
}

TEST_F(UpstreamFor, Errors) {
  block("backend");
  EXPECT_EQ(failure("backend:8080"),
            "[emerg] upstream \"backend\" may not have port 8080 in /etc/p/site.conf:7");
  EXPECT_EQ(failure("127.0.0.1:0"), "[emerg] invalid port in upstream \"127.0.0.1:0\" in /etc/p/site.conf:7");
  EXPECT_EQ(failure(":80"), "[emerg] no host in upstream \":80\" in /etc/p/site.conf:7");
  EXPECT_EQ(failure("unix:"),
            "[emerg] no path in the unix domain socket in upstream \"unix:\" in /etc/p/site.conf:7");
  // A block after a pass that wrote a port: nginx names the pass's place.
  passTo("later:8080");
  EXPECT_EQ(blockFailure("later"),
            "[emerg] upstream \"later\" may not have port 8080 in /etc/p/site.conf:7");
  EXPECT_EQ(blockFailure("BACKEND"), "[emerg] duplicate upstream \"BACKEND\" in /etc/p/site.conf:20");
}

TEST_F(UpstreamFor, ResolutionErrorsAtTheEndOfHttp) {
  passTo("app", 0);  // uwsgi_pass app; with no upstream block "app"
  try {
    finishUpstreams(upstreams_);
    FAIL() << "accepted";
  } catch (const ConfFailure& f) {
    EXPECT_EQ(f.line, "[emerg] no port in upstream \"app\" in /etc/p/site.conf:7");
  }
  upstreams_.clear();
  passTo("no-such-host.invalid:80");
  try {
    finishUpstreams(upstreams_);
    FAIL() << "accepted";
  } catch (const ConfFailure& f) {
    EXPECT_EQ(f.line,
              "[emerg] host not found in upstream \"no-such-host.invalid\" in /etc/p/site.conf:7");
  }
}

}  // namespace
}  // namespace portico::config
