// Socket activation's flags rule (gunicorn's): the sockets systemd passed replace --bind, with
// the first --bind's options; and with no LISTEN_PID for this process nothing is taken.

#include <stdlib.h>

#include <gtest/gtest.h>

#include "process/systemd_sockets.h"

namespace portico::process {
namespace {

TEST(SystemdSockets, PassedSocketsReplaceTheFlagsBindsWithTheirOptions) {
  config::Config config;
  config.site.servers.resize(1);
  config::ListenSpec bind;
  bind.host = "127.0.0.1";
  bind.port = 8000;
  bind.ssl = true;
  bind.proxyProtocol = true;
  bind.reuseport = true;
  config.site.servers[0].listens = {bind};
  std::vector<PassedSocket> passed(2);
  passed[0].key = "[::]:443";
  passed[0].host = "::";
  passed[0].port = 443;
  passed[1].key = "unix:/run/portico/app.sock";
  passed[1].isUnix = true;
  passed[1].host = "/run/portico/app.sock";
  bindPassedSockets(config, passed);
  const auto& listens = config.site.servers[0].listens;
  ASSERT_EQ(listens.size(), 2u);
  EXPECT_FALSE(listens[0].isUnix);
  EXPECT_EQ(listens[0].host, "::");
  EXPECT_EQ(listens[0].port, 443);
  EXPECT_TRUE(listens[0].ssl);
  EXPECT_TRUE(listens[0].proxyProtocol);
  EXPECT_FALSE(listens[0].reuseport);  // systemd made the socket
  EXPECT_TRUE(listens[1].isUnix);
  EXPECT_EQ(listens[1].path, "/run/portico/app.sock");
  EXPECT_EQ(listens[1].spec, "unix:/run/portico/app.sock");
}

TEST(SystemdSockets, NothingPassedLeavesTheBinds) {
  config::Config config;
  config.site.servers.resize(1);
  config.site.servers[0].listens.resize(1);
  config.site.servers[0].listens[0].port = 9000;
  bindPassedSockets(config, {});
  ASSERT_EQ(config.site.servers[0].listens.size(), 1u);
  EXPECT_EQ(config.site.servers[0].listens[0].port, 9000);
}

TEST(SystemdSockets, SocketsForAnotherProcessAreNotTaken) {
  ::setenv("LISTEN_PID", "1", 1);  // not this process
  ::setenv("LISTEN_FDS", "1", 1);
  std::vector<PassedSocket> out;
  std::string error;
  EXPECT_TRUE(takePassedSockets(out, error)) << error;
  EXPECT_TRUE(out.empty());
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
}

}  // namespace
}  // namespace portico::process
