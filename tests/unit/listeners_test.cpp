#include "process/listeners.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include "loopback_socket.h"

namespace portico::process {
namespace {

// A port free now: bound by a probe socket, which is closed again.
uint16_t freePort() { return testing::bindLoopback(SOCK_STREAM).port; }

config::ListenSpec listen(std::string host, uint16_t port, int backlog = -1) {
  config::ListenSpec l;
  l.host = std::move(host);
  l.port = port;
  l.backlog = backlog;
  l.spec = l.host + ":" + std::to_string(port);
  return l;
}

config::Config withServers(std::vector<std::vector<config::ListenSpec>> servers) {
  config::Config c;
  for (auto& listens : servers) {
    c.site.servers.emplace_back();
    c.site.servers.back().listens = std::move(listens);
  }
  return c;
}

TEST(Listeners, OneSocketPerAddressAndWildcardsCoverTheirPort) {
  uint16_t a = freePort();
  uint16_t b = freePort();
  config::Config c = withServers({{listen("127.0.0.1", a), listen("", b)},
                                  {listen("127.0.0.1", a)},
                                  {listen("127.0.0.1", b)}});
  std::vector<BoundListener> out;
  std::string error;
  ASSERT_TRUE(openListeners(c, out, error)) << error;
  ASSERT_EQ(out.size(), 2u);  // 127.0.0.1:b is served by 0.0.0.0:b
  EXPECT_EQ(out[0].key, "127.0.0.1:" + std::to_string(a));
  EXPECT_FALSE(out[0].wildcard);
  EXPECT_EQ(out[1].key, "0.0.0.0:" + std::to_string(b));
  EXPECT_TRUE(out[1].wildcard);
}

TEST(Listeners, BoundAddressesGetTheirOwnSocket) {
  uint16_t a = freePort();
  config::ListenSpec one = listen("127.0.0.1", a);
  config::ListenSpec two = listen("127.0.0.2", a);
  one.bind = two.bind = true;
  std::vector<BoundListener> out;
  std::string error;
  ASSERT_TRUE(openListeners(withServers({{one}, {two}}), out, error)) << error;
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].local.localAddress, "127.0.0.1");
  EXPECT_EQ(out[1].local.localAddress, "127.0.0.2");

  // Next to a wildcard on the same port, only the bound address asks for its own socket, which
  // Linux refuses (nginx fails the same way); the unbound one rides on the wildcard's.
  uint16_t b = freePort();
  config::ListenSpec wildcard = listen("", b);
  config::ListenSpec plain = listen("127.0.0.2", b);
  std::vector<BoundListener> covered;
  ASSERT_TRUE(openListeners(withServers({{wildcard}, {plain}}), covered, error)) << error;
  EXPECT_EQ(covered.size(), 1u);
  covered.clear();
  config::ListenSpec bound = listen("127.0.0.3", b);
  bound.bind = true;
  std::vector<BoundListener> refused;
  EXPECT_FALSE(openListeners(withServers({{wildcard}, {bound}}), refused, error));
  EXPECT_NE(error.find("in use"), std::string::npos) << error;
}

TEST(Listeners, ReloadKeepsOpensAndCloses) {
  uint16_t a = freePort();
  uint16_t b = freePort();
  std::vector<BoundListener> current;
  std::string error;
  ASSERT_TRUE(openListeners(withServers({{listen("127.0.0.1", a)}}), current, error)) << error;
  int keptFd = current[0].fd.get();
  ASSERT_TRUE(updateListeners(
      withServers({{listen("127.0.0.1", a, 64), listen("127.0.0.1", b)}}), current, error))
      << error;
  ASSERT_EQ(current.size(), 2u);
  EXPECT_EQ(current[0].fd.get(), keptFd);  // the same socket: no connection refused
  EXPECT_EQ(current[0].backlog, 64);
  ASSERT_TRUE(updateListeners(withServers({{listen("127.0.0.1", b)}}), current, error)) << error;
  ASSERT_EQ(current.size(), 1u);
  EXPECT_EQ(current[0].key, "127.0.0.1:" + std::to_string(b));
}

TEST(Listeners, AFailedReloadKeepsEverySocket) {
  uint16_t a = freePort();
  std::vector<BoundListener> current;
  std::string error;
  ASSERT_TRUE(openListeners(withServers({{listen("127.0.0.1", a)}}), current, error)) << error;
  int fd = current[0].fd.get();
  // 192.0.2.1 (TEST-NET-1) is not an address of this machine: bind() fails.
  EXPECT_FALSE(updateListeners(
      withServers({{listen("127.0.0.1", a), listen("192.0.2.1", 80)}}), current, error));
  EXPECT_NE(error.find("cannot listen on"), std::string::npos) << error;
  ASSERT_EQ(current.size(), 1u);
  EXPECT_EQ(current[0].fd.get(), fd);
}

}  // namespace
}  // namespace portico::process
