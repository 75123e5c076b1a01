// The DNS wire format (dns/dns_message.h): the query nginx's resolver sends, and responses read
// as nginx reads them — compression, CNAME and DNAME, short and malformed records, and the
// header and question checks that make a response one to drop.

#include "dns/dns_message.h"

#include <gtest/gtest.h>

#include <string>

using namespace portico::dns;

namespace {

std::string u16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }
std::string u32(uint32_t v) { return u16(static_cast<uint16_t>(v >> 16)) + u16(v & 0xffff); }

std::string labels(std::initializer_list<std::string> parts) {
  std::string out;
  for (const std::string& p : parts) out += static_cast<char>(p.size()) + p;
  return out + '\0';
}

// A response header with `answers` records and the question "a.example.net" (offset 12).
std::string response(uint16_t id, uint16_t flags, uint16_t answers, uint16_t type = kTypeA) {
  return u16(id) + u16(flags) + u16(1) + u16(answers) + u16(0) + u16(0) +
         labels({"a", "example", "net"}) + u16(type) + u16(1);
}

std::string record(const std::string& owner, uint16_t type, uint32_t ttl, const std::string& rdata) {
  return owner + u16(type) + u16(1) + u32(ttl) + u16(static_cast<uint16_t>(rdata.size())) + rdata;
}

const std::string kToQuestion = u16(0xc00c);  // a pointer to the question's name

}  // namespace

TEST(DnsMessage, QueryAsNginxSendsIt) {
  auto q = encodeQuery(0x1234, "a.Example.net", kTypeAaaa);
  ASSERT_TRUE(q);
  EXPECT_EQ(*q, u16(0x1234) + u16(0x0100) + u16(1) + u16(0) + u16(0) + u16(0) +
                    labels({"a", "Example", "net"}) + u16(28) + u16(1));
  EXPECT_FALSE(encodeQuery(1, "", kTypeA));
  EXPECT_FALSE(encodeQuery(1, "a..b", kTypeA));
  EXPECT_FALSE(encodeQuery(1, "a.", kTypeA));
  EXPECT_FALSE(encodeQuery(1, std::string(64, 'a'), kTypeA));
  EXPECT_TRUE(encodeQuery(1, std::string(63, 'a'), kTypeA));
  // Four labels of 63: 255 characters, as http_resolver.t's "long name".
  std::string l = std::string(63, 'a');
  EXPECT_TRUE(encodeQuery(1, l + "." + l + "." + l + "." + l, kTypeA));
  EXPECT_FALSE(encodeQuery(1, l + "." + l + "." + l + "." + l + ".b", kTypeA));
}

TEST(DnsMessage, AnswerWithCompressedAndWholeNames) {
  std::string m = response(7, 0x8180, 2) +
                  record(kToQuestion, kTypeA, 300, std::string("\x7f\x00\x00\x01", 4)) +
                  record(labels({"a", "example", "net"}), kTypeA, 60, std::string("\x0a\x00\x00\x02", 4));
  std::string error;
  auto head = parseHead(m, false, error);
  ASSERT_TRUE(head) << error;
  EXPECT_EQ(head->id, 7);
  EXPECT_EQ(head->name, "a.example.net");
  EXPECT_EQ(head->type, kTypeA);
  EXPECT_FALSE(head->truncated);
  auto answers = parseAnswers(m, *head, error);
  ASSERT_TRUE(answers) << error;
  ASSERT_EQ(answers->addresses.size(), 2u);
  EXPECT_EQ(answers->addresses[0].bytes[0], 127);
  EXPECT_EQ(answers->addresses[1].bytes[3], 2);
  EXPECT_EQ(answers->ttl, 60u);
  EXPECT_FALSE(answers->cname);
}

TEST(DnsMessage, CnameTargetDnamePassedOverQuestionLowerCased) {
  // The question as "A.EXAMPLE.NET"; a DNAME, then the CNAME to "alias" + pointer to
  // "example.net" inside the question (offset 14).
  std::string m = u16(9) + u16(0x8180) + u16(1) + u16(2) + u16(0) + u16(0) +
                  labels({"A", "EXAMPLE", "NET"}) + u16(kTypeA) + u16(1);
  m += record(u16(0xc00e), kTypeDname, 100, labels({"other", "net"}));
  m += record(kToQuestion, kTypeCname, 50, std::string("\x05" "Alias", 6) + u16(0xc00e));
  std::string error;
  auto head = parseHead(m, false, error);
  ASSERT_TRUE(head) << error;
  EXPECT_EQ(head->name, "a.example.net");
  auto answers = parseAnswers(m, *head, error);
  ASSERT_TRUE(answers) << error;
  EXPECT_TRUE(answers->addresses.empty());
  ASSERT_TRUE(answers->cname);
  EXPECT_EQ(*answers->cname, "alias.example.net");
  EXPECT_EQ(answers->ttl, 50u);
}

TEST(DnsMessage, HeadsThatAreDropped) {
  std::string error;
  EXPECT_FALSE(parseHead("short", false, error));
  EXPECT_EQ(error, "short DNS response");
  EXPECT_FALSE(parseHead(response(1, 0x0100, 0), false, error));  // a query, not a response
  EXPECT_EQ(error, "invalid UDP DNS response 1 fl:0100");
  EXPECT_FALSE(parseHead(response(2, 0x8380, 0), true, error));  // truncated over TCP
  EXPECT_EQ(error, "invalid TCP DNS response 2 fl:8380");
  EXPECT_FALSE(parseHead(response(42, 0x8181, 0), false, error));
  EXPECT_EQ(error, "DNS error (1: Format error), query id:42");
  EXPECT_FALSE(parseHead(response(3, 0x8186, 0), false, error));
  EXPECT_EQ(error, "DNS error (6: Unknown error), query id:3");
  std::string twoQuestions = response(4, 0x8180, 0);
  twoQuestions[5] = 2;
  EXPECT_FALSE(parseHead(twoQuestions, false, error));
  EXPECT_EQ(error, "invalid number of questions in DNS response");
  EXPECT_FALSE(parseHead(response(5, 0x8180, 0, 16), false, error));
  EXPECT_EQ(error, "unknown query type 16 in DNS response");
  std::string compressed = u16(6) + u16(0x8180) + u16(1) + u16(0) + u16(0) + u16(0) + u16(0xc00c) +
                           u16(1) + u16(1);
  EXPECT_FALSE(parseHead(compressed, false, error));
  EXPECT_EQ(error, "unexpected compression pointer in DNS response");
  // Answers announced that cannot fit.
  EXPECT_FALSE(parseHead(response(8, 0x8180, 3), false, error));
  EXPECT_EQ(error, "short DNS response");
  // Error codes other than FORMERR are answers (the resolver fails the name with them).
  auto servfail = parseHead(response(9, 0x8182, 0), false, error);
  ASSERT_TRUE(servfail);
  EXPECT_EQ(servfail->rcode, kServFail);
  auto truncated = parseHead(response(10, 0x8380, 0), false, error);
  ASSERT_TRUE(truncated);
  EXPECT_TRUE(truncated->truncated);
}

TEST(DnsMessage, MalformedRecordsAreRefused) {
  std::string error;
  auto check = [&](const std::string& m, const std::string& expected) {
    auto head = parseHead(m, false, error);
    ASSERT_TRUE(head) << error;
    EXPECT_FALSE(parseAnswers(m, *head, error));
    EXPECT_EQ(error, expected);
  };
  // http_resolver.t's "short": an A record that ends after its TTL.
  EXPECT_FALSE(parseHead(response(1, 0x8180, 1) + kToQuestion + u16(kTypeA) + u16(1) + u32(60),
                         false, error));
  EXPECT_EQ(error, "short DNS response");
  check(response(1, 0x8180, 1) + kToQuestion + u16(kTypeA) + u16(1) + u32(60) + u16(0) +
            std::string(8, '\0'),
        "invalid A record in DNS response");
  check(response(1, 0x8180, 1) + record(kToQuestion, kTypeA, 1, "\1\2\3"),
        "invalid A record in DNS response");
  check(response(1, 0x8180, 1) + record(kToQuestion, kTypeAaaa, 1, std::string(16, '\0')),
        "unexpected AAAA record in DNS response");
  std::string wrongClass = response(1, 0x8180, 1) + kToQuestion + u16(kTypeA) + u16(3) + u32(1) +
                           u16(4) + "\1\2\3\4";
  check(wrongClass, "unexpected RR class 3 in DNS response");
  std::string cut = response(1, 0x8180, 1) + record(kToQuestion, kTypeA, 1, "\1\2\3\4");
  cut.resize(cut.size() - 2);
  check(cut, "short DNS response");
  // A CNAME whose target points past the end.
  check(response(1, 0x8180, 1) + record(kToQuestion, kTypeCname, 1, u16(0xcfff)) + "\0",
        "name is out of DNS response");
  // A CNAME whose target points at itself.
  std::string loop = response(1, 0x8180, 1);
  size_t at = loop.size() + 12;  // where the CNAME's RDATA starts
  check(loop + record(kToQuestion, kTypeCname, 1, u16(static_cast<uint16_t>(0xc000 | at))) + "\0",
        "compression pointers loop in DNS response");
}

TEST(DnsMessage, ErrorTextsAsNginx) {
  EXPECT_EQ(errorText(kNxDomain), "Host not found");
  EXPECT_EQ(errorText(kServFail), "Server failure");
  EXPECT_EQ(errorText(kTimedOut), "Operation timed out");
  EXPECT_EQ(errorText(kRefused), "Operation refused");
}
