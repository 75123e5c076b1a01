// What a connection knows before its request's server is chosen comes from the site alone
// (Server::connectionSettings): the flags' server carries gunicorn's head limits, a file's server
// nginx's large_client_header_buffers — no question about which command line was used.

#include <gtest/gtest.h>

#include "config/cli.h"
#include "process/server.h"

namespace portico::process {
namespace {

TEST(ConnectionSettings, FlagsServerHasGunicornHeadLimits) {
  config::CliResult r = config::parseCommandLine(
      {"portico", "--limit-request-line", "1000", "--limit-request-fields", "20",
       "--limit-request-field_size", "300", "--keep-alive", "7", "--header-timeout", "9"});
  ASSERT_EQ(r.action, config::CliResult::Action::kRun) << r.message;
  ASSERT_EQ(r.config.site.servers.size(), 1u);
  http::ConnectionSettings s = Server::connectionSettings(r.config.site.servers[0]);
  EXPECT_EQ(s.limits.maxRequestLine, 1000u);
  EXPECT_EQ(s.limits.maxHeaderCount, 20u);
  EXPECT_EQ(s.limits.maxHeaderFieldSize, 298u);  // gunicorn counts the CRLF
  EXPECT_EQ(s.limits.maxHeaderTotal, 64u * 1024u);
  EXPECT_FALSE(s.headerTooLargeIs400);  // 431
  EXPECT_EQ(s.headerTimeoutMs, 9000u);
  EXPECT_EQ(s.keepAliveTimeoutMs, 7000u);
  EXPECT_TRUE(r.config.site.serverHeader);
}

TEST(ConnectionSettings, FileServerHasNginxBuffers) {
  config::VirtualServer server;  // as conf_builder leaves one: no field limits
  server.largeHeaderBuffersNumber = 2;
  server.largeHeaderBuffersSize = 1024;
  server.clientHeaderTimeoutSeconds = 5;
  http::ConnectionSettings s = Server::connectionSettings(server);
  EXPECT_EQ(s.limits.maxRequestLine, 1022u);
  EXPECT_EQ(s.limits.maxHeaderFieldSize, 1022u);
  EXPECT_EQ(s.limits.maxHeaderTotal, 2048u);
  EXPECT_TRUE(s.headerTooLargeIs400);
  EXPECT_EQ(s.headerTimeoutMs, 5000u);
}

TEST(ConnectionSettings, NoServerHeaderIsASettingOfTheSite) {
  config::CliResult r = config::parseCommandLine({"portico", "--no-server-header"});
  ASSERT_EQ(r.action, config::CliResult::Action::kRun) << r.message;
  EXPECT_FALSE(r.config.site.serverHeader);
}

}  // namespace
}  // namespace portico::process
