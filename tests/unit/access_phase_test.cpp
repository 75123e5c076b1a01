// The access phase as nginx runs it: allow/deny for each client family (IPv4, IPv6, IPv4-mapped,
// unix), auth_basic under satisfy all|any, and realip's replacement of the client.

#include "pipeline/access_phase.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace portico::pipeline {
namespace {

config::AccessSettings settings(std::initializer_list<std::pair<const char*, const char*>> lines) {
  config::AccessPartial p;
  std::vector<std::string> warnings;
  for (const auto& [name, value] : lines) {
    EXPECT_FALSE(config::applyAccessDirective(name, {value}, p, warnings)) << name << " " << value;
  }
  return config::finalizeAccess(p, "/");
}

http::ConnectionInfo client(const char* address) {
  http::ConnectionInfo c;
  c.peerAddress = address;
  c.peerPort = 1234;
  c.localAddress = "127.0.0.1";
  c.localPort = 80;
  if (*address == '\0') c.isUnix = true;
  return c;
}

int verdict(const config::AccessSettings& s, const char* address,
            const http::Request& request = http::Request()) {
  AuthBasicRuntime auth;
  std::string error;
  if (s.authBasic) auth.realm = http::Template::compile(*s.authBasic, error);
  if (s.authBasicUserFile) auth.userFile = http::Template::compile(*s.authBasicUserFile, error);
  http::VariableContext vars;
  return runAccessPhase(s, auth, client(address), request, vars).status;
}

TEST(AccessPhase, RulesByFamily) {
  auto s = settings({{"allow", "127.0.0.1"}, {"deny", "::1"}, {"allow", "2001:db8::/32"},
                     {"deny", "unix:"}, {"deny", "all"}});
  EXPECT_EQ(verdict(s, "127.0.0.1"), 0);
  EXPECT_EQ(verdict(s, "127.0.0.2"), 403);
  EXPECT_EQ(verdict(s, "::1"), 403);
  EXPECT_EQ(verdict(s, "2001:db8::7"), 0);
  EXPECT_EQ(verdict(s, "::ffff:127.0.0.1"), 0);  // mapped: the IPv4 rules
  EXPECT_EQ(verdict(s, ""), 403);                 // a unix-socket client
  auto v6only = settings({{"deny", "::ffff:127.0.0.1"}});
  EXPECT_EQ(verdict(v6only, "::ffff:127.0.0.1"), 403);  // no IPv4 rule: the IPv6 ones
  EXPECT_EQ(verdict(v6only, "127.0.0.1"), 0);           // no rule for IPv4 at all
  auto unixAllowed = settings({{"allow", "unix:"}, {"deny", "all"}});
  EXPECT_EQ(verdict(unixAllowed, ""), 0);
}

struct TempFile {
  std::string path;
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/portico-htpasswd-XXXXXX";
    int fd = ::mkstemp(name);
    path = name;
    ::close(fd);
    std::ofstream(path) << text;
  }
  ~TempFile() { std::remove(path.c_str()); }
};

http::Request withAuth(const char* header) {
  http::Request r;
  r.method = "GET";
  if (header) r.headers.push_back({"Authorization", header});
  return r;
}

TEST(AccessPhase, SatisfyAllAndAny) {
  TempFile file("u:{PLAIN}p\n");
  const char* good = "Basic dTpw";   // u:p
  const char* bad = "Basic dTp4";    // u:x
  auto all = settings({{"deny", "all"}, {"auth_basic", "r"}, {"auth_basic_user_file", ""}});
  all.authBasicUserFile = file.path;
  EXPECT_EQ(verdict(all, "127.0.0.1", withAuth(good)), 403);
  auto any = all;
  any.satisfyAny = true;
  EXPECT_EQ(verdict(any, "127.0.0.1", withAuth(good)), 0);
  EXPECT_EQ(verdict(any, "127.0.0.1", withAuth(bad)), 401);
  EXPECT_EQ(verdict(any, "127.0.0.1", withAuth(nullptr)), 401);
  auto open = settings({{"auth_basic", "r"}, {"auth_basic_user_file", ""}});
  open.authBasicUserFile = file.path;
  AuthBasicRuntime auth;
  std::string error;
  auth.realm = http::Template::compile("r", error);
  auth.userFile = http::Template::compile(file.path, error);
  http::VariableContext vars;
  AccessVerdict v = runAccessPhase(open, auth, client("127.0.0.1"), withAuth(bad), vars);
  EXPECT_EQ(v.status, 401);
  EXPECT_EQ(v.wwwAuthenticate, "Basic realm=\"r\"");
  EXPECT_EQ(verdict(open, "127.0.0.1", withAuth(good)), 0);
  auto off = settings({{"auth_basic", "off"}, {"auth_basic_user_file", "/nonexistent"}});
  EXPECT_EQ(verdict(off, "127.0.0.1"), 0);
  auto missing = settings({{"auth_basic", "r"}, {"auth_basic_user_file", "/nonexistent/x"}});
  EXPECT_EQ(verdict(missing, "127.0.0.1", withAuth(good)), 403);  // ENOENT: nginx's 403
}

TEST(AccessPhase, RealClient) {
  auto s = settings({{"set_real_ip_from", "127.0.0.1"}, {"real_ip_header", "X-Forwarded-For"}});
  http::Request r;
  r.headers.push_back({"X-Forwarded-For", "192.0.2.1"});
  r.headers.push_back({"x-forwarded-for", "198.51.100.2:77"});
  auto real = realClient(s, r, client("127.0.0.1"));
  ASSERT_TRUE(real);
  EXPECT_EQ(real->peerAddress, "198.51.100.2");
  EXPECT_EQ(real->peerPort, 77);
  EXPECT_EQ(real->localPort, 80);
  EXPECT_FALSE(realClient(s, r, client("10.0.0.1")));  // not a trusted proxy
  auto unixTrusted = settings({{"set_real_ip_from", "unix:"}});
  http::Request x;
  x.headers.push_back({"X-Real-IP", "192.0.2.3"});
  auto fromUnix = realClient(unixTrusted, x, client(""));
  ASSERT_TRUE(fromUnix);
  EXPECT_EQ(fromUnix->peerAddress, "192.0.2.3");
  EXPECT_EQ(fromUnix->peerPort, 0);
  EXPECT_FALSE(realClient(settings({}), x, client("127.0.0.1")));  // no set_real_ip_from
}

}  // namespace
}  // namespace portico::pipeline
