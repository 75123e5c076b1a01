#pragma once

// The DNS wire format the resolver speaks (RFC 1035 section 4): one A or AAAA question out,
// and a response read as nginx's resolver reads it (ngx_resolver_process_response and
// ngx_resolver_process_a): the header and the one question strictly, then the answer records
// — A/AAAA addresses, a CNAME's target (compression pointers followed, at most 128), DNAME and
// other types passed over — with the least of their TTLs. Pure; what it refuses it says in
// nginx's words.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portico::dns {

constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeCname = 5;
constexpr uint16_t kTypeAaaa = 28;
constexpr uint16_t kTypeDname = 39;

// Response codes (and nginx's 110 for a resolve that timed out).
constexpr int kFormErr = 1;
constexpr int kServFail = 2;
constexpr int kNxDomain = 3;
constexpr int kRefused = 5;
constexpr int kTimedOut = 110;

// nginx's ngx_resolver_strerror: "Host not found", "Operation timed out", ...
std::string_view errorText(int code);

// An IPv4 (4 bytes used) or IPv6 address from an answer.
struct Address {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};
  bool operator==(const Address&) const = default;
};

// The query for `name` (dotted, without the final dot): recursion desired, one question of
// `type`, class IN. nullopt when nginx would not ask (an empty label, a label over 63 bytes, a
// name over 255).
std::optional<std::string> encodeQuery(uint16_t id, std::string_view name, uint16_t type);

// What the header and the question of a response say.
struct ResponseHead {
  uint16_t id = 0;
  int rcode = 0;
  bool truncated = false;
  std::string name;  // the question's name, lower-case, dotted
  uint16_t type = 0;
  size_t answerCount = 0;
  size_t answersOffset = 0;  // where the answer section starts
};

// The head of a response to act on; nullopt with `error` otherwise: not a response to a
// standard query, truncated over TCP, FORMERR or an unknown code ("DNS error (1: Format
// error), query id:42"), not one question, a compressed or empty question name, not class IN,
// neither A nor AAAA, short.
std::optional<ResponseHead> parseHead(std::string_view message, bool tcp, std::string& error);

// The answer section of a response whose head is `head`.
struct Answers {
  std::vector<Address> addresses;  // of the question's type, in the order given
  std::optional<std::string> cname;  // the target of the last CNAME, lower-case
  uint32_t ttl = UINT32_MAX;         // the least TTL of all records (negative as 0)
};

// nullopt with `error` when a record is malformed ("invalid A record in DNS response", "short
// DNS response", "unexpected AAAA record in DNS response", "unexpected RR class 3 ...").
std::optional<Answers> parseAnswers(std::string_view message, const ResponseHead& head,
                                    std::string& error);

// The name at `offset` of `message`, compression pointers followed, lower-case and dotted ("" for
// the root); nullopt with `error` when it leaves the message, loops or uses a reserved label type.
std::optional<std::string> readName(std::string_view message, size_t offset, std::string& error);

}  // namespace portico::dns
