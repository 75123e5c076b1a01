// proxy_pass with variables: the expanded URL parsed as nginx's ngx_http_proxy_eval parses it,
// and the upstream a host name selects (upstream/proxy_target.h).

#include "upstream/proxy_target.h"

#include <gtest/gtest.h>

namespace portico::upstream {
namespace {

PassTarget parse(std::string_view url) {
  std::string error;
  auto t = parsePassTarget(url, error);
  EXPECT_TRUE(t.has_value()) << url << ": " << error;
  return t ? *t : PassTarget();
}

std::string failure(std::string_view url) {
  std::string error;
  EXPECT_FALSE(parsePassTarget(url, error).has_value()) << url;
  return error;
}

TEST(ProxyTarget, AddressesAndUris) {
  PassTarget t = parse("http://127.0.0.1:8081/a/b?c");
  ASSERT_TRUE(t.address);
  EXPECT_EQ(t.address->text, "127.0.0.1:8081");
  EXPECT_EQ(t.pass.proxyHost, "127.0.0.1:8081");
  EXPECT_EQ(t.pass.proxyPort, "8081");
  EXPECT_TRUE(t.pass.hasUri);
  EXPECT_EQ(t.pass.uri, "/a/b?c");
  EXPECT_TRUE(t.pass.variables);

  t = parse("HTTP://127.0.0.1");
  ASSERT_TRUE(t.address);
  EXPECT_EQ(t.address->text, "127.0.0.1:80");
  EXPECT_EQ(t.pass.proxyHost, "127.0.0.1");
  EXPECT_EQ(t.pass.proxyPort, "80");
  EXPECT_FALSE(t.pass.hasUri);

  t = parse("http://127.0.0.1:80?x=1");
  EXPECT_EQ(t.pass.proxyHost, "127.0.0.1");
  EXPECT_EQ(t.pass.uri, "/?x=1");

  t = parse("http://[::1]:9000/v6");
  ASSERT_TRUE(t.address);
  EXPECT_EQ(t.address->text, "[::1]:9000");
  EXPECT_EQ(t.pass.uri, "/v6");

  t = parse("http://unix:/tmp/app.sock:/u");
  ASSERT_TRUE(t.address);
  EXPECT_EQ(t.address->text, "unix:/tmp/app.sock");
  EXPECT_EQ(t.pass.proxyHost, "localhost");
  EXPECT_EQ(t.pass.uri, "/u");

  t = parse("http://backend:8000/x");
  EXPECT_FALSE(t.address);
  EXPECT_EQ(t.host, "backend");
  EXPECT_EQ(t.port, 8000);
  EXPECT_FALSE(t.noPort);
  EXPECT_FALSE(t.pass.ssl);
}

TEST(ProxyTarget, HttpsDefaultsTo443) {
  PassTarget t = parse("HTTPS://127.0.0.1/s");
  EXPECT_TRUE(t.pass.ssl);
  ASSERT_TRUE(t.address);
  EXPECT_EQ(t.address->text, "127.0.0.1:443");
  EXPECT_EQ(t.pass.proxyHost, "127.0.0.1");
  EXPECT_EQ(t.pass.proxyPort, "443");
  EXPECT_EQ(t.pass.uri, "/s");
  t = parse("https://127.0.0.1:8443");
  EXPECT_EQ(t.pass.proxyHost, "127.0.0.1:8443");  // $proxy_host keeps a port not 443
  EXPECT_EQ(t.pass.proxyPort, "8443");
  t = parse("https://tls.up");
  EXPECT_FALSE(t.address);
  EXPECT_EQ(t.port, 443);
  EXPECT_TRUE(t.noPort);
  EXPECT_EQ(failure("https://"), "invalid URL prefix in \"https://\"");
  EXPECT_EQ(failure("https://h:x"), "invalid port in upstream \"h:x\"");
}

TEST(ProxyTarget, NginxErrors) {
  EXPECT_EQ(failure("ftp://x"), "invalid URL prefix in \"ftp://x\"");
  EXPECT_EQ(failure("http://"), "invalid URL prefix in \"http://\"");
  EXPECT_EQ(failure("http://h:0/"), "invalid port in upstream \"h:0/\"");
  EXPECT_EQ(failure("http://h:x"), "invalid port in upstream \"h:x\"");
  EXPECT_EQ(failure("http://:80/"), "no host in upstream \":80/\"");
}

TEST(ProxyTarget, NamesSelectUpstreams) {
  std::vector<config::UpstreamSpec> ups(3);
  ups[0].name = "backend";  // an upstream block: no port
  ups[1].name = "Other";
  ups[1].implicit = true;  // proxy_pass http://other:8080 elsewhere
  ups[1].port = 8080;
  ups[2].name = "plain";
  ups[2].implicit = true;  // proxy_pass http://plain elsewhere
  ups[2].port = 80;
  ups[2].noPort = true;
  EXPECT_EQ(findUpstream(ups, parse("http://backend/x")), 0);
  EXPECT_EQ(findUpstream(ups, parse("http://BACKEND")), 0);
  EXPECT_EQ(findUpstream(ups, parse("http://backend:80/")), -1);
  EXPECT_EQ(findUpstream(ups, parse("http://other:8080/")), 1);
  EXPECT_EQ(findUpstream(ups, parse("http://other/")), -1);
  EXPECT_EQ(findUpstream(ups, parse("http://plain/")), 2);
  EXPECT_EQ(findUpstream(ups, parse("http://plain:80/")), 2);
  EXPECT_EQ(findUpstream(ups, parse("http://nowhere/")), -1);
  EXPECT_EQ(findUpstream(ups, parse("http://127.0.0.1/")), -1);  // an address: no upstream
}

TEST(ProxyTarget, LocalAddresses) {
  EXPECT_TRUE(parseLocalAddress("127.0.0.1"));
  EXPECT_TRUE(parseLocalAddress("127.0.0.2:0"));
  EXPECT_TRUE(parseLocalAddress("[::1]:8080"));
  EXPECT_TRUE(parseLocalAddress("::1"));
  EXPECT_FALSE(parseLocalAddress("localhost"));
  EXPECT_FALSE(parseLocalAddress("1.2.3.4:"));
  EXPECT_FALSE(parseLocalAddress("1.2.3.4:99999"));
  EXPECT_FALSE(parseLocalAddress("[::1"));
  std::string message;
  EXPECT_TRUE(bindLocal(-1, "", message));
  EXPECT_TRUE(message.empty());
  EXPECT_TRUE(bindLocal(-1, "nonsense", message));
  EXPECT_EQ(message, "invalid local address \"nonsense\"");
  EXPECT_FALSE(bindLocal(-1, "127.0.0.1", message));
  EXPECT_EQ(message.rfind("bind(127.0.0.1) failed (9: ", 0), 0u) << message;
}

}  // namespace
}  // namespace portico::upstream
