#include "transport/proxy_protocol.h"

#include <gtest/gtest.h>

#include <string>

using portico::transport::kProxyProtocolMaxHeader;
using portico::transport::parseProxyProtocol;
using portico::transport::ProxyProtocolResult;
using Status = ProxyProtocolResult::Status;

namespace {

const std::string kSig("\r\n\r\n\0\r\nQUIT\n", 12);

std::string v2(unsigned char verCmd, unsigned char famTrans, const std::string& body) {
  std::string h = kSig;
  h += static_cast<char>(verCmd);
  h += static_cast<char>(famTrans);
  h += static_cast<char>(body.size() >> 8);
  h += static_cast<char>(body.size() & 0xff);
  return h + body;
}

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out += static_cast<char>(v);
  return out;
}

const std::string kTcp4Body = bytes({192, 0, 2, 1, 192, 0, 2, 2, 0, 123, 0x16, 0x2e});

}  // namespace

TEST(ProxyProtocolTest, V1Tcp4) {
  std::string data = "PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\nGET / HTTP/1.0\r\n\r\n";
  ProxyProtocolResult r = parseProxyProtocol(data);
  ASSERT_EQ(r.status, Status::kDone);
  EXPECT_EQ(data.substr(r.consumed), "GET / HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(r.info.known);
  EXPECT_EQ(r.info.version, 1);
  EXPECT_EQ(r.info.sourceAddress, "192.0.2.1");
  EXPECT_EQ(r.info.sourcePort, 123);
  EXPECT_EQ(r.info.destinationAddress, "192.0.2.2");
  EXPECT_EQ(r.info.destinationPort, 5678);
}

TEST(ProxyProtocolTest, V1Tcp6KeepsTheTextAsSent) {
  ProxyProtocolResult r = parseProxyProtocol("PROXY TCP6 2001:Db8::1 2001:Db8::2 123 5678\r\n");
  ASSERT_EQ(r.status, Status::kDone);
  EXPECT_EQ(r.info.sourceAddress, "2001:Db8::1");
  EXPECT_EQ(r.info.destinationAddress, "2001:Db8::2");
}

TEST(ProxyProtocolTest, V1Unknown) {
  for (std::string line : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN 1 2 3 4 5 6\r\n"}) {
    ProxyProtocolResult r = parseProxyProtocol(line + "GET");
    ASSERT_EQ(r.status, Status::kDone) << line;
    EXPECT_EQ(r.consumed, line.size());
    EXPECT_FALSE(r.info.known);
    EXPECT_EQ(r.info.sourceAddress, "");
  }
}

TEST(ProxyProtocolTest, V1Broken) {
  for (std::string line :
       {"PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\n", "PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n",
        "PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n", "PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n",
        "PROXY TCP4 1.2.3.4  1 2\r\n", "PROXY TCP4 1.2.3.x 1.2.3.4 1 2\r\n",
        "PROXY TCP4 1.2.3.4 1.2.3.4 a 2\r\n", "PROXY UNKNOWN\n", "PROXY \r\n"}) {
    ProxyProtocolResult r = parseProxyProtocol(line);
    EXPECT_EQ(r.status, Status::kError) << line;
    EXPECT_EQ(r.error.rfind("broken header: \"PROXY", 0), 0u) << r.error;
  }
  ProxyProtocolResult r = parseProxyProtocol("GET / HTTP/1.1\r\n");
  ASSERT_EQ(r.status, Status::kError);
  EXPECT_EQ(r.error, "broken header: \"GET / HTTP/1.1\\x0D\\x0A\"");
}

TEST(ProxyProtocolTest, BinaryGarbageIsEscapedInTheMessage) {
  ProxyProtocolResult r = parseProxyProtocol(std::string("\x16\x03\x01\"x", 5));
  ASSERT_EQ(r.status, Status::kError);
  EXPECT_EQ(r.error, "broken header: \"\\x16\\x03\\x01\\x22x\"");
}

TEST(ProxyProtocolTest, V1OversizeLineIsBroken) {
  std::string line = "PROXY UNKNOWN " + std::string(120, 'a');
  ProxyProtocolResult r = parseProxyProtocol(line);
  EXPECT_EQ(r.status, Status::kError);
  // Exactly 107 bytes with the CRLF is still a header.
  std::string fits = "PROXY UNKNOWN " + std::string(107 - 16, 'a') + "\r\n";
  ASSERT_EQ(fits.size(), 107u);
  EXPECT_EQ(parseProxyProtocol(fits).status, Status::kDone);
  std::string over = "PROXY UNKNOWN " + std::string(107 - 15, 'a') + "\r\n";
  EXPECT_EQ(parseProxyProtocol(over).status, Status::kError);
}

TEST(ProxyProtocolTest, EverySplitGivesTheSameVerdict) {
  std::string inputs[] = {
      "PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\nGET",
      "PROXY UNKNOWN\r\n",
      v2(0x21, 0x11, kTcp4Body) + "GET",
      v2(0x21, 0x11, kTcp4Body + std::string(9, '\0')),
  };
  for (const std::string& data : inputs) {
    ProxyProtocolResult whole = parseProxyProtocol(data);
    ASSERT_EQ(whole.status, Status::kDone);
    for (size_t n = 0; n < whole.consumed; ++n) {
      EXPECT_EQ(parseProxyProtocol(data.substr(0, n)).status, Status::kIncomplete) << n;
    }
    for (size_t n = whole.consumed; n <= data.size(); ++n) {
      ProxyProtocolResult part = parseProxyProtocol(data.substr(0, n));
      EXPECT_EQ(part.status, Status::kDone);
      EXPECT_EQ(part.consumed, whole.consumed);
      EXPECT_EQ(part.info.sourceAddress, whole.info.sourceAddress);
    }
  }
}

TEST(ProxyProtocolTest, V2Tcp4) {
  std::string data = v2(0x21, 0x11, kTcp4Body) + "GET /";
  ProxyProtocolResult r = parseProxyProtocol(data);
  ASSERT_EQ(r.status, Status::kDone);
  EXPECT_EQ(r.consumed, 28u);
  EXPECT_TRUE(r.info.known);
  EXPECT_EQ(r.info.version, 2);
  EXPECT_EQ(r.info.sourceAddress, "192.0.2.1");
  EXPECT_EQ(r.info.sourcePort, 123);
  EXPECT_EQ(r.info.destinationAddress, "192.0.2.2");
  EXPECT_EQ(r.info.destinationPort, 5678);
}

TEST(ProxyProtocolTest, V2Tcp6) {
  std::string body = bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
                            0, 123, 0x16, 0x2e});
  ProxyProtocolResult r = parseProxyProtocol(v2(0x21, 0x21, body));
  ASSERT_EQ(r.status, Status::kDone);
  EXPECT_EQ(r.info.sourceAddress, "2001:db8::1");
  EXPECT_EQ(r.info.destinationAddress, "2001:db8::2");
  EXPECT_EQ(r.info.sourcePort, 123);
}

TEST(ProxyProtocolTest, V2TlvsAreSkipped) {
  std::string tlv = bytes({0x01, 0x00, 0x02, 'h', '2'});
  ProxyProtocolResult r = parseProxyProtocol(v2(0x21, 0x11, kTcp4Body + tlv) + "X");
  ASSERT_EQ(r.status, Status::kDone);
  EXPECT_EQ(r.consumed, 16u + 12u + 5u);
  EXPECT_EQ(r.info.sourceAddress, "192.0.2.1");
}

TEST(ProxyProtocolTest, V2LocalUnspecUnixAndDgramCarryNoAddress) {
  std::string unixBody(216, '\0');
  struct Case {
    unsigned char verCmd, famTrans;
    std::string body;
  } cases[] = {
      {0x20, 0x11, kTcp4Body},  // LOCAL
      {0x21, 0x01, ""},         // AF_UNSPEC
      {0x21, 0x41, bytes({1, 2, 3, 4})},  // an unknown family
      {0x21, 0x31, unixBody},   // AF_UNIX
      {0x21, 0x12, kTcp4Body},  // DGRAM
  };
  for (const Case& c : cases) {
    ProxyProtocolResult r = parseProxyProtocol(v2(c.verCmd, c.famTrans, c.body));
    ASSERT_EQ(r.status, Status::kDone);
    EXPECT_EQ(r.consumed, 16 + c.body.size());
    EXPECT_FALSE(r.info.known);
    EXPECT_EQ(r.info.sourceAddress, "");
  }
}

TEST(ProxyProtocolTest, V2Errors) {
  ProxyProtocolResult r = parseProxyProtocol(v2(0x11, 0x11, kTcp4Body));
  EXPECT_EQ(r.status, Status::kError);
  EXPECT_EQ(r.error, "unknown PROXY protocol version: 1");
  r = parseProxyProtocol(v2(0x21, 0x11, bytes({1, 2, 3})));
  EXPECT_EQ(r.status, Status::kError);
  std::string big = kSig + bytes({0x21, 0x11, 0x10, 0x00});  // 4096 + 16 bytes announced
  r = parseProxyProtocol(big);
  EXPECT_EQ(r.status, Status::kError);
  EXPECT_EQ(r.error, "header is too large");
  // The largest header that fits is waited for.
  std::string fits = kSig + bytes({0x21, 0x11, (kProxyProtocolMaxHeader - 16) >> 8,
                                   (kProxyProtocolMaxHeader - 16) & 0xff});
  EXPECT_EQ(parseProxyProtocol(fits).status, Status::kIncomplete);
}

TEST(ProxyProtocolTest, OptionalModeSeesPlainHttp) {
  EXPECT_EQ(parseProxyProtocol("GET / HTTP/1.1\r\n", true).status, Status::kAbsent);
  EXPECT_EQ(parseProxyProtocol("POST", true).status, Status::kAbsent);
  EXPECT_EQ(parseProxyProtocol("P", true).status, Status::kIncomplete);
  EXPECT_EQ(parseProxyProtocol("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", true).status,
            Status::kDone);
  EXPECT_EQ(parseProxyProtocol("PROXY nonsense\r\n", true).status, Status::kError);
}
