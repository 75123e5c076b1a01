#include "core/statsd.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace portico {
namespace {

TEST(StatsdTest, PrefixAsGunicornsRule) {
  // re.sub(r"^(.+[^.]+)\.*$", r"\g<1>.", prefix)
  EXPECT_EQ(Statsd::prefixOf(""), "");
  EXPECT_EQ(Statsd::prefixOf("app"), "app.");
  EXPECT_EQ(Statsd::prefixOf("app."), "app.");
  EXPECT_EQ(Statsd::prefixOf("app..."), "app.");
  EXPECT_EQ(Statsd::prefixOf("a"), "a");
  EXPECT_EQ(Statsd::prefixOf("a."), "a.");
  EXPECT_EQ(Statsd::prefixOf("x.y"), "x.y.");
}

TEST(StatsdTest, LinesAndFloatsAsGunicornWritesThem) {
  EXPECT_EQ(Statsd::line("app.", "gunicorn.requests", "1|c|@1.0", "", ""),
            "app.gunicorn.requests:1|c|@1.0");
  EXPECT_EQ(Statsd::line("", "gunicorn.workers", "2", "g", "env:prod,a:b"),
            "gunicorn.workers:2|g|#env:prod,a:b");
  EXPECT_EQ(Statsd::pythonFloat(12.0), "12.0");
  EXPECT_EQ(Statsd::pythonFloat(0.123), "0.123");
  EXPECT_EQ(Statsd::pythonFloat(1.5), "1.5");
  EXPECT_EQ(Statsd::pythonFloat(1234.567), "1234.567");
}

TEST(StatsdTest, SendsDatagramsOnceConfigured) {
  int server = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(server, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(server, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string error;
  Statsd::request(200, 1000);  // not configured: nothing sent
  ASSERT_TRUE(Statsd::configure("127.0.0.1:" + std::to_string(ntohs(addr.sin_port)), "svc", "",
                                error)) << error;
  Statsd::request(404, 2500);
  Statsd::gauge("gunicorn.workers", 3);
  char buffer[256];
  std::vector<std::string> got;
  for (int i = 0; i < 4; ++i) {
    ssize_t n = ::recv(server, buffer, sizeof buffer, 0);
    ASSERT_GT(n, 0);
    got.emplace_back(buffer, static_cast<size_t>(n));
  }
  EXPECT_EQ(got, (std::vector<std::string>{"svc.gunicorn.request.duration:2.5|ms",
                                           "svc.gunicorn.requests:1|c|@1.0",
                                           "svc.gunicorn.request.status.404:1|c|@1.0",
                                           "svc.gunicorn.workers:3|g"}));
  EXPECT_FALSE(Statsd::configure("nohost", "", "", error));
  EXPECT_FALSE(Statsd::enabled());
  ASSERT_TRUE(Statsd::configure("", "", "", error));
  ::close(server);
}

}  // namespace
}  // namespace portico
