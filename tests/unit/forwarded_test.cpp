#include "http/forwarded.h"
#include "config/site_from_flags.h"

#include <gtest/gtest.h>

using namespace portico::http;

namespace {

Request requestWith(std::vector<std::pair<std::string, std::string>> headers) {
  Request r;
  for (auto& [name, value] : headers) r.headers.push_back(Header{name, value});
  return r;
}

ConnectionInfo peer(std::string address) {
  ConnectionInfo c;
  c.peerAddress = std::move(address);
  c.peerPort = 40000;
  return c;
}

ForwardedTrust trusting(std::string ips) {
  ForwardedTrust t;
  t.allowIps = portico::config::splitAllowIps(ips);
  return t;
}

}  // namespace

TEST(ForwardedTest, SplitsAsGunicorn) {
  EXPECT_EQ(portico::config::splitAllowIps("127.0.0.1, 10.0.0.1,,"),
            (std::vector<std::string>{"127.0.0.1", "10.0.0.1"}));
  EXPECT_TRUE(portico::config::splitAllowIps("").empty());
}

TEST(ForwardedTest, TrustedPeerSetsSchemeAndAddress) {
  Request r = requestWith({{"X-Forwarded-Proto", "https"},
                           {"X-Forwarded-For", "203.0.113.7, 10.0.0.2"}});
  ForwardedResult out = applyForwarded(trusting("127.0.0.1,10.0.0.2"), r, peer("127.0.0.1"));
  EXPECT_FALSE(out.contradictory);
  EXPECT_EQ(out.connection.scheme, "https");
  EXPECT_EQ(out.connection.peerAddress, "203.0.113.7");
}

TEST(ForwardedTest, UntrustedPeerChangesNothing) {
  Request r = requestWith({{"X-Forwarded-Proto", "https"}, {"X-Forwarded-For", "203.0.113.7"},
                           {"X-Forwarded-Ssl", "off"}});
  ForwardedResult out = applyForwarded(trusting("10.0.0.1"), r, peer("127.0.0.1"));
  EXPECT_FALSE(out.contradictory);
  EXPECT_EQ(out.connection.scheme, "http");
  EXPECT_EQ(out.connection.peerAddress, "127.0.0.1");
}

TEST(ForwardedTest, StarTrustsEveryoneAndUnixIsTrusted) {
  Request r = requestWith({{"x-forwarded-ssl", "on"}, {"X-Forwarded-For", "198.51.100.1, 1.2.3.4"}});
  ForwardedResult out = applyForwarded(trusting("*"), r, peer("192.0.2.9"));
  EXPECT_EQ(out.connection.scheme, "https");
  EXPECT_EQ(out.connection.peerAddress, "198.51.100.1");  // every hop trusted: the leftmost
  ConnectionInfo unix;
  unix.isUnix = true;
  out = applyForwarded(trusting("127.0.0.1"), r, unix);
  EXPECT_EQ(out.connection.scheme, "https");
  EXPECT_EQ(out.connection.peerAddress, "1.2.3.4");
}

TEST(ForwardedTest, WrongValueMeansHttpAndDisagreementIsContradictory) {
  ForwardedResult out = applyForwarded(
      trusting("127.0.0.1"), requestWith({{"X-Forwarded-Proto", "HTTPS"}}), peer("127.0.0.1"));
  EXPECT_EQ(out.connection.scheme, "http");  // the value compares case-sensitively
  ConnectionInfo tls = peer("127.0.0.1");
  tls.scheme = "https";
  out = applyForwarded(trusting("127.0.0.1"), requestWith({{"X-Forwarded-Proto", "http"}}), tls);
  EXPECT_EQ(out.connection.scheme, "http");
  out = applyForwarded(trusting("127.0.0.1"),
                       requestWith({{"X-Forwarded-Proto", "https"}, {"X-Forwarded-Ssl", "off"}}),
                       peer("127.0.0.1"));
  EXPECT_TRUE(out.contradictory);
  out = applyForwarded(trusting("127.0.0.1"),
                       requestWith({{"X-Forwarded-Proto", "https"}, {"X-Forwarded-Ssl", "on"}}),
                       peer("127.0.0.1"));
  EXPECT_FALSE(out.contradictory);
  EXPECT_EQ(out.connection.scheme, "https");
}

TEST(ForwardedTest, GarbageForwardedForKeepsThePeer) {
  ForwardedResult out = applyForwarded(
      trusting("127.0.0.1"), requestWith({{"X-Forwarded-For", "not an address"}}), peer("127.0.0.1"));
  EXPECT_EQ(out.connection.peerAddress, "127.0.0.1");
}

TEST(ForwardedTest, TrustIsDecidedOnTheSocketPeer) {
  // A PROXY header (or realip) made the request's client 192.0.2.1; the front end is 127.0.0.1.
  Request r = requestWith({{"X-Forwarded-Proto", "https"}});
  ConnectionInfo socket = peer("127.0.0.1");
  ForwardedResult out = applyForwarded(trusting("127.0.0.1"), r, peer("192.0.2.1"), &socket);
  EXPECT_EQ(out.connection.scheme, "https");
  EXPECT_EQ(out.connection.peerAddress, "192.0.2.1");
}
