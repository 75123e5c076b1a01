#include "core/statsd.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "loopback_socket.h"

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

TEST(StatsdTest, ARequestIsOneDatagramOfGunicornsThreeLines) {
  EXPECT_EQ(Statsd::requestDatagram("", "", 200, 12000),
            "gunicorn.request.duration:12.0|ms\ngunicorn.requests:1|c|@1.0\n"
            "gunicorn.request.status.200:1|c|@1.0");
  EXPECT_EQ(Statsd::requestDatagram("app.", "env:prod", 502, 1500),
            "app.gunicorn.request.duration:1.5|ms|#env:prod\n"
            "app.gunicorn.requests:1|c|@1.0|#env:prod\n"
            "app.gunicorn.request.status.502:1|c|@1.0|#env:prod");
}

// A UDP socket on 127.0.0.1 that receives what Statsd sends once configured to it.
class StatsdServer {
 public:
  std::string address() const { return socket_.text(); }
  // Every datagram waiting now, after waiting (5 s at most) for `atLeast` of them.
  std::vector<std::string> take(size_t atLeast = 0) {
    std::vector<std::string> out;
    char buffer[65536];
    for (;;) {
      for (ssize_t n; (n = ::recv(socket_.fd.get(), buffer, sizeof buffer, 0)) > 0;) {
        out.emplace_back(buffer, static_cast<size_t>(n));
      }
      pollfd p{socket_.fd.get(), POLLIN, 0};
      if (out.size() >= atLeast || ::poll(&p, 1, 5000) <= 0) return out;
    }
  }

 private:
  testing::LoopbackSocket socket_ = testing::bindLoopback(SOCK_DGRAM | SOCK_NONBLOCK);
};

TEST(StatsdTest, ABatchingThreadSendsItsRequestsAtFlushInDatagramsThatFit) {
  StatsdServer server;
  std::string error;
  ASSERT_TRUE(Statsd::configure(server.address(), "svc", "", error)) << error;
  std::vector<std::string> beforeFlush, datagrams;
  std::thread loop([&] {  // batching is per thread: a thread of its own, as a worker's loop
    Statsd::batchOnThisThread();
    Statsd::request(200, 1000);
    Statsd::request(404, 2000);
    ::usleep(20000);
    beforeFlush = server.take();
    Statsd::flush();
    Statsd::flush();  // nothing gathered: nothing sent
    for (int i = 0; i < 100; ++i) Statsd::request(200, 1000);
    Statsd::flush();
  });
  loop.join();
  ::usleep(20000);
  datagrams = server.take();
  EXPECT_TRUE(beforeFlush.empty());
  ASSERT_GE(datagrams.size(), 2u);
  EXPECT_EQ(datagrams[0], Statsd::requestDatagram("svc.", "", 200, 1000) + "\n" +
                              Statsd::requestDatagram("svc.", "", 404, 2000));
  size_t lines = 0;
  for (size_t i = 1; i < datagrams.size(); ++i) {
    EXPECT_LE(datagrams[i].size(), Statsd::kMaxDatagram);
    lines += static_cast<size_t>(std::count(datagrams[i].begin(), datagrams[i].end(), '\n')) + 1;
  }
  EXPECT_EQ(lines, 300u);  // the hundred requests' three lines each, none lost at a split
  EXPECT_GT(datagrams.size(), 2u);
  // Another thread sends at once.
  Statsd::request(500, 1000);
  ::usleep(20000);
  EXPECT_EQ(server.take(), std::vector<std::string>{Statsd::requestDatagram("svc.", "", 500, 1000)});
  ASSERT_TRUE(Statsd::configure("", "", "", error));
}

TEST(StatsdTest, SendsDatagramsOnceConfigured) {
  StatsdServer server;
  std::string error;
  Statsd::request(200, 1000);  // not configured: nothing sent
  ASSERT_TRUE(Statsd::configure(server.address(), "svc", "", error)) << error;
  Statsd::request(404, 2500);
  Statsd::gauge("gunicorn.workers", 3);
  // A request's three metrics arrive as one datagram, a line each.
  EXPECT_EQ(server.take(2), (std::vector<std::string>{"svc.gunicorn.request.duration:2.5|ms\n"
                                                      "svc.gunicorn.requests:1|c|@1.0\n"
                                                      "svc.gunicorn.request.status.404:1|c|@1.0",
                                                      "svc.gunicorn.workers:3|g"}));
  EXPECT_FALSE(Statsd::configure("nohost", "", "", error));
  EXPECT_FALSE(Statsd::enabled());
  ASSERT_TRUE(Statsd::configure("", "", "", error));
}

}  // namespace
}  // namespace portico
