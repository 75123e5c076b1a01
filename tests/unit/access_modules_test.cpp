// The pure parts of the access, auth_basic and realip modules: CIDR parsing and matching
// (ngx_ptocidr), the htpasswd scanner and nginx's password schemes, the X-Forwarded-For walk.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include "config/access_conf.h"
#include "config/cidr.h"
#include "http/htpasswd.h"
#include "http/realip.h"

namespace portico {
namespace {

using config::Cidr;
using config::CidrParse;

TEST(Cidr, ParsesAddressesAndMasks) {
  Cidr c;
  EXPECT_EQ(config::parseCidr("192.0.2.0/24", c), CidrParse::kOk);
  EXPECT_EQ(c.family, AF_INET);
  EXPECT_EQ(c.mask[2], 0xff);
  EXPECT_EQ(c.mask[3], 0x00);
  EXPECT_EQ(config::parseCidr("192.0.2.1", c), CidrParse::kOk);
  EXPECT_EQ(c.mask[3], 0xff);
  EXPECT_EQ(config::parseCidr("2001:db8::/32", c), CidrParse::kOk);
  EXPECT_EQ(c.family, AF_INET6);
  EXPECT_EQ(config::parseCidr("0.0.0.0/0", c), CidrParse::kOk);
  EXPECT_EQ(config::parseCidr("::/0", c), CidrParse::kOk);
  // Host bits set: cleared, with nginx's warning.
  EXPECT_EQ(config::parseCidr("192.0.2.1/24", c), CidrParse::kLowBits);
  EXPECT_EQ(c.addr[3], 0);
  EXPECT_EQ(config::parseCidr("2001:db8::1/64", c), CidrParse::kLowBits);
  for (const char* bad : {"192.0.2.0/33", "::/129", "example", "192.0.2.0/x", "192.0.2/24",
                          "1.2.3.4/", "300.1.1.1"}) {
    EXPECT_EQ(config::parseCidr(bad, c), CidrParse::kError) << bad;
  }
}

TEST(Cidr, MatchesByFamily) {
  Cidr net;
  ASSERT_EQ(config::parseCidr("10.0.1.0/24", net), CidrParse::kOk);
  EXPECT_TRUE(config::cidrMatches(net, config::peerAddressOf("10.0.1.200", false)));
  EXPECT_FALSE(config::cidrMatches(net, config::peerAddressOf("10.0.2.1", false)));
  EXPECT_FALSE(config::cidrMatches(net, config::peerAddressOf("::1", false)));
  config::PeerAddress mapped = config::peerAddressOf("::ffff:10.0.1.7", false);
  EXPECT_TRUE(mapped.v4Mapped());
  EXPECT_FALSE(config::cidrMatches(net, mapped));
  EXPECT_TRUE(config::cidrMatches(net, mapped.asV4()));
  Cidr v6;
  ASSERT_EQ(config::parseCidr("2001:db8::/32", v6), CidrParse::kOk);
  EXPECT_TRUE(config::cidrMatches(v6, config::peerAddressOf("2001:db8:1::5", false)));
  EXPECT_FALSE(config::cidrMatches(v6, config::peerAddressOf("2001:db9::5", false)));
  Cidr unix;
  unix.family = AF_UNIX;
  EXPECT_TRUE(config::cidrMatches(unix, config::peerAddressOf("", true)));
}

TEST(AccessConf, DirectivesAndMessages) {
  config::AccessPartial p;
  std::vector<std::string> warnings;
  EXPECT_FALSE(config::applyAccessDirective("allow", {"127.0.0.1"}, p, warnings));
  EXPECT_FALSE(config::applyAccessDirective("deny", {"10.0.0.1/8"}, p, warnings));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], "low address bits of 10.0.0.1/8 are meaningless");
  EXPECT_EQ(*config::applyAccessDirective("deny", {"10.0.0.1/33"}, p, warnings),
            "invalid parameter \"10.0.0.1/33\"");
  EXPECT_FALSE(config::applyAccessDirective("deny", {"all"}, p, warnings));
  ASSERT_EQ(p.rules->size(), 3u);
  EXPECT_TRUE((*p.rules)[2].all);
  EXPECT_EQ(*config::applyAccessDirective("satisfy", {"some"}, p, warnings),
            "invalid value \"some\"");
  EXPECT_FALSE(config::applyAccessDirective("satisfy", {"any"}, p, warnings));
  EXPECT_EQ(*config::applyAccessDirective("satisfy", {"all"}, p, warnings),
            "\"satisfy\" directive is duplicate");
  EXPECT_EQ(*config::applyAccessDirective("autoindex", {"yes"}, p, warnings),
            "invalid value \"yes\" in \"autoindex\" directive, it must be \"on\" or \"off\"");
  EXPECT_EQ(*config::applyAccessDirective("auth_delay", {"x"}, p, warnings),
            "\"auth_delay\" directive invalid value");
  EXPECT_FALSE(config::applyAccessDirective("real_ip_header", {"proxy_protocol"}, p, warnings));
  EXPECT_EQ(p.realIpHeader, config::RealIpHeader::kProxyProtocol);

  // allow/deny lists are inherited whole, and only by levels that have none.
  config::AccessPartial child;
  config::mergeAccess(child, p);
  EXPECT_EQ(child.rules->size(), 3u);
  config::AccessPartial own;
  ASSERT_FALSE(config::applyAccessDirective("allow", {"all"}, own, warnings));
  config::mergeAccess(own, p);
  EXPECT_EQ(own.rules->size(), 1u);
  config::AccessSettings s = config::finalizeAccess(own, "/etc/nginx/");
  EXPECT_TRUE(s.satisfyAny);
}

TEST(AccessConf, UserFileIsBeneathTheConfPrefix) {
  config::AccessPartial p;
  std::vector<std::string> warnings;
  ASSERT_FALSE(config::applyAccessDirective("auth_basic_user_file", {"htpasswd"}, p, warnings));
  EXPECT_EQ(*config::finalizeAccess(p, "/etc/nginx/").authBasicUserFile, "/etc/nginx/htpasswd");
  config::AccessPartial v;
  ASSERT_FALSE(config::applyAccessDirective("auth_basic_user_file", {"$arg_f"}, v, warnings));
  EXPECT_EQ(*config::finalizeAccess(v, "/etc/nginx/").authBasicUserFile, "$arg_f");
}

TEST(Htpasswd, ParsesAuthorizationAsNginx) {
  auto c = http::parseBasicAuthorization("Basic dXNlcjpwYXNz");  // user:pass
  ASSERT_TRUE(c);
  EXPECT_EQ(c->user, "user");
  EXPECT_EQ(c->password, "pass");
  EXPECT_TRUE(http::parseBasicAuthorization("bAsIc   dXNlcjpwYXNz"));
  EXPECT_FALSE(http::parseBasicAuthorization("Bearer dXNlcjpwYXNz"));
  EXPECT_FALSE(http::parseBasicAuthorization("Basic "));
  EXPECT_FALSE(http::parseBasicAuthorization("Basic OnBhc3M="));    // ":pass": empty user
  EXPECT_FALSE(http::parseBasicAuthorization("Basic dXNlcg=="));    // "user": no colon
  EXPECT_FALSE(http::parseBasicAuthorization("Basic dXNl*jpwYXNz"));  // not base64
  auto empty = http::parseBasicAuthorization("Basic dXNlcjo=");      // "user:"
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->password, "");
}

TEST(Htpasswd, FindsTheEntryAsNginxScansTheFile) {
  std::string file =
      "# comment\n\nalice:{PLAIN}a:comment\r\nbob:{PLAIN}b\r\n alice:{PLAIN}x\nal:{PLAIN}c";
  EXPECT_EQ(*http::findHtpasswdEntry(file, "alice"), "{PLAIN}a");
  EXPECT_EQ(*http::findHtpasswdEntry(file, "bob"), "{PLAIN}b");
  EXPECT_EQ(*http::findHtpasswdEntry(file, "al"), "{PLAIN}c");  // the last line, no newline
  EXPECT_FALSE(http::findHtpasswdEntry(file, "ali"));
  EXPECT_FALSE(http::findHtpasswdEntry(file, "#"));
  EXPECT_FALSE(http::findHtpasswdEntry(file, "carol"));
}

TEST(Htpasswd, ChecksEveryScheme) {
  using http::PasswordCheck;
  // The hashes of nginx-tests' auth_basic.t (made with crypt(3), htpasswd, slappasswd).
  struct Case {
    const char* hash;
    const char* password;
    PasswordCheck expected;
  } cases[] = {
      {"sa3tHJ3/KuYvI", "password", PasswordCheck::kMatch},
      {"sa3tHJ3/KuYvI", "123", PasswordCheck::kMismatch},
      {"$1$salt$qJH7.N4xYta3aEG/dfqo/0", "password", PasswordCheck::kMatch},
      {"$1$salt$qJH7.N4xYta3aEG/dfqo/0", "123", PasswordCheck::kMismatch},
      {"$apr1$salt$Xxd1irWT9ycqoYxGFn4cb.", "password", PasswordCheck::kMatch},
      {"$apr1$salt$Xxd1irWT9ycqoYxGFn4cb.", "123", PasswordCheck::kMismatch},
      {"$apr1$", "1", PasswordCheck::kMismatch},
      {"{PLAIN}password", "password", PasswordCheck::kMatch},
      {"{PLAIN}password", "passwor", PasswordCheck::kMismatch},
      {"{SSHA}yI6cZwQadOA1e+/f+T+H3eCQQhRzYWx0", "password", PasswordCheck::kMatch},
      {"{SSHA}yI6cZwQadOA1e+/f+T+H3eCQQhRzYWx0", "123", PasswordCheck::kMismatch},
      {"{SSHA}_____wQadOA1e+/f+T+H3eCQQhRzYWx0", "1", PasswordCheck::kMismatch},
      {"{SSHA}Zm9vCg==", "1", PasswordCheck::kMismatch},
      {"{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "password", PasswordCheck::kMatch},
      {"{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "123", PasswordCheck::kMismatch},
      {"{SHA}Zm9vCg==", "1", PasswordCheck::kMismatch},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(http::checkPassword(c.password, c.hash), c.expected) << c.hash;
  }
  EXPECT_EQ(http::cryptApr1("password", "$apr1$salt$whatever"),
            "$apr1$salt$Xxd1irWT9ycqoYxGFn4cb.");
}

TEST(Htpasswd, Base64AsNginx) {
  EXPECT_EQ(http::encodeBase64("ab"), "YWI=");
  EXPECT_EQ(http::encodeBase64("abc"), "YWJj");
  EXPECT_EQ(http::encodeBase64("a"), "YQ==");
  EXPECT_EQ(*http::decodeBase64Nginx("YWJj"), "abc");
  EXPECT_EQ(*http::decodeBase64Nginx("YWI=junk"), "ab");  // stops at '='
  EXPECT_FALSE(http::decodeBase64Nginx("YWJjZ"));          // 4n+1 characters
}

std::vector<config::Cidr> cidrs(std::initializer_list<const char*> list) {
  std::vector<config::Cidr> out;
  for (const char* text : list) {
    config::Cidr c;
    EXPECT_NE(config::parseCidr(text, c), CidrParse::kError);
    out.push_back(c);
  }
  return out;
}

http::ClientAddress client(const char* address, uint16_t port = 5555) {
  auto a = http::parseAddrPort(address);
  EXPECT_TRUE(a);
  a->port = port;
  return *a;
}

std::string walk(const char* peer, std::vector<std::string_view> values, bool recursive) {
  auto from = cidrs({"127.0.0.1/32", "10.0.1.0/24"});
  auto r = http::forwardedAddress(client(peer), values, from, recursive);
  return r ? r->text + (r->port ? ":" + std::to_string(r->port) : "") : "-";
}

TEST(Realip, WalksForwardedForAsNginx) {
  // The cases of nginx-tests' realip.t.
  EXPECT_EQ(walk("127.0.0.1", {"10.0.0.1, 192.0.2.1"}, false), "192.0.2.1");
  EXPECT_EQ(walk("127.0.0.1", {"192.0.2.1, 10.0.1.1, 127.0.0.1"}, false), "127.0.0.1");
  EXPECT_EQ(walk("127.0.0.1", {"10.0.1.1, 192.0.2.1, 127.0.0.1"}, true), "192.0.2.1");
  EXPECT_EQ(walk("127.0.0.1", {"192.0.2.1", "127.0.0.1, 10.0.1.1"}, false), "10.0.1.1");
  EXPECT_EQ(walk("127.0.0.1", {"10.0.1.1", "192.0.2.1", "127.0.0.1"}, true), "192.0.2.1");
  // Untrusted peer: nothing changes.
  EXPECT_EQ(walk("192.0.2.9", {"10.0.0.1"}, false), "-");
  // All trusted: the leftmost.
  EXPECT_EQ(walk("127.0.0.1", {"10.0.1.2, 10.0.1.3"}, true), "10.0.1.2");
  // A port, trailing separators, garbage.
  EXPECT_EQ(walk("127.0.0.1", {"127.0.0.1:123"}, false), "127.0.0.1:123");
  EXPECT_EQ(walk("127.0.0.1", {"192.0.2.1 ,, "}, false), "192.0.2.1");
  EXPECT_EQ(walk("127.0.0.1", {"unknown"}, false), "-");
  EXPECT_EQ(walk("127.0.0.1", {"192.0.2.1, unknown"}, true), "-");
  EXPECT_EQ(walk("127.0.0.1", {"[2001:db8::1]:80"}, false), "2001:db8::1:80");
  // An IPv4-mapped peer is trusted by IPv4 masks.
  EXPECT_EQ(walk("::ffff:127.0.0.1", {"192.0.2.1"}, false), "192.0.2.1");
}

}  // namespace
}  // namespace portico
