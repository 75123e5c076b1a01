#include "dns/dns_message.h"

#include <cstring>

namespace portico::dns {
namespace {

constexpr size_t kHeaderSize = 12;
constexpr size_t kRecordFixed = 10;  // type, class, TTL, RDLENGTH after the owner name

uint16_t read16(std::string_view m, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(m[at]) << 8) | static_cast<uint8_t>(m[at + 1]));
}

uint32_t read32(std::string_view m, size_t at) {
  return (static_cast<uint32_t>(read16(m, at)) << 16) | read16(m, at + 2);
}

void put16(std::string& out, uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xff);
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

std::string_view errorText(int code) {
  switch (code) {
    case kFormErr: return "Format error";
    case kServFail: return "Server failure";
    case kNxDomain: return "Host not found";
    case 4: return "Unimplemented";
    case kRefused: return "Operation refused";
    case kTimedOut: return "Operation timed out";
    default: return "Unknown error";
  }
}

std::optional<std::string> encodeQuery(uint16_t id, std::string_view name, uint16_t type) {
  if (name.empty() || name.size() > 255) return std::nullopt;
  std::string out;
  out.reserve(kHeaderSize + name.size() + 6);
  put16(out, id);
  put16(out, 0x0100);  // a standard query, recursion desired
  put16(out, 1);
  put16(out, 0);
  put16(out, 0);
  put16(out, 0);
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    std::string_view label = name.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || label.size() > 63) return std::nullopt;
    out += static_cast<char>(label.size());
    out.append(label);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  out += '\0';
  put16(out, type);
  put16(out, 1);  // class IN
  return out;
}

std::optional<std::string> readName(std::string_view message, size_t offset, std::string& error) {
  std::string name;
  size_t p = offset;
  const size_t last = message.size();
  if (p >= last) {
    error = "name is out of DNS response";
    return std::nullopt;
  }
  // Compression pointers can loop: 128 steps are enough for a 255-byte name (as nginx).
  for (int i = 0; i < 128; ++i) {
    uint8_t n = static_cast<uint8_t>(message[p++]);
    if (n == 0) return name;
    if (n & 0xc0) {
      if ((n & 0xc0) != 0xc0) {
        error = "invalid label type in DNS response";
        return std::nullopt;
      }
      if (p >= last) {
        error = "name is out of DNS response";
        return std::nullopt;
      }
      p = (static_cast<size_t>(n & 0x3f) << 8) | static_cast<uint8_t>(message[p]);
    } else {
      if (p + n >= last) {
        error = "name is out of DNS response";
        return std::nullopt;
      }
      if (!name.empty()) name += '.';
      for (size_t k = 0; k < n; ++k) name += lower(message[p + k]);
      p += n;
    }
    if (p >= last) {
      error = "name is out of DNS response";
      return std::nullopt;
    }
  }
  error = "compression pointers loop in DNS response";
  return std::nullopt;
}

std::optional<ResponseHead> parseHead(std::string_view m, bool tcp, std::string& error) {
  if (m.size() < kHeaderSize) {
    error = "short DNS response";
    return std::nullopt;
  }
  ResponseHead head;
  head.id = read16(m, 0);
  uint16_t flags = read16(m, 2);
  size_t questions = read16(m, 4);
  head.answerCount = read16(m, 6);
  head.truncated = (flags & 0x0200) != 0;
  // A response (QR) to a standard query (opcode 0), Z clear; TC makes no sense over TCP.
  if ((flags & 0xf870) != 0x8000 || (head.truncated && tcp)) {
    char text[96];
    std::snprintf(text, sizeof text, "invalid %s DNS response %u fl:%04X", tcp ? "TCP" : "UDP",
                  static_cast<unsigned>(head.id), static_cast<unsigned>(flags));
    error = text;
    return std::nullopt;
  }
  head.rcode = flags & 0xf;
  if (head.rcode == kFormErr || head.rcode > kRefused) {
    error = "DNS error (" + std::to_string(head.rcode) + ": " + std::string(errorText(head.rcode)) +
            "), query id:" + std::to_string(head.id);
    return std::nullopt;
  }
  if (questions != 1) {
    error = "invalid number of questions in DNS response";
    return std::nullopt;
  }
  size_t i = kHeaderSize;
  while (true) {
    if (i >= m.size()) {
      error = "short DNS response";
      return std::nullopt;
    }
    uint8_t n = static_cast<uint8_t>(m[i]);
    if (n & 0xc0) {
      error = "unexpected compression pointer in DNS response";
      return std::nullopt;
    }
    if (n == 0) break;
    i += 1 + n;
  }
  if (i == kHeaderSize) {
    error = "zero-length domain name in DNS response";
    return std::nullopt;
  }
  ++i;
  if (i + 4 + head.answerCount * (2 + kRecordFixed) > m.size()) {
    error = "short DNS response";
    return std::nullopt;
  }
  head.type = read16(m, i);
  uint16_t qclass = read16(m, i + 2);
  if (qclass != 1) {
    error = "unknown query class " + std::to_string(qclass) + " in DNS response";
    return std::nullopt;
  }
  if (head.type != kTypeA && head.type != kTypeAaaa) {
    error = "unknown query type " + std::to_string(head.type) + " in DNS response";
    return std::nullopt;
  }
  std::optional<std::string> name = readName(m, kHeaderSize, error);
  if (!name) return std::nullopt;
  head.name = std::move(*name);
  head.answersOffset = i + 4;
  return head;
}

std::optional<Answers> parseAnswers(std::string_view m, const ResponseHead& head,
                                    std::string& error) {
  Answers answers;
  size_t i = head.answersOffset;
  const size_t n = m.size();
  size_t cnameAt = 0;
  for (size_t a = 0; a < head.answerCount; ++a) {
    size_t start = i;
    bool found = false;
    while (i < n) {
      uint8_t c = static_cast<uint8_t>(m[i]);
      if (c & 0xc0) {
        i += 2;
        found = true;
        break;
      }
      if (c == 0) {
        ++i;
        if (i - start < 2) {
          error = "invalid name in DNS response";
          return std::nullopt;
        }
        found = true;
        break;
      }
      i += 1 + c;
    }
    if (!found || i + kRecordFixed >= n) {
      error = "short DNS response";
      return std::nullopt;
    }
    uint16_t type = read16(m, i);
    uint16_t rclass = read16(m, i + 2);
    int32_t ttl = static_cast<int32_t>(read32(m, i + 4));
    size_t length = read16(m, i + 8);
    if (rclass != 1) {
      error = "unexpected RR class " + std::to_string(rclass) + " in DNS response";
      return std::nullopt;
    }
    if (ttl < 0) ttl = 0;
    if (static_cast<uint32_t>(ttl) < answers.ttl) answers.ttl = static_cast<uint32_t>(ttl);
    i += kRecordFixed;
    if (type == kTypeA || type == kTypeAaaa) {
      bool v6 = type == kTypeAaaa;
      if (type != head.type) {
        error = std::string("unexpected ") + (v6 ? "AAAA" : "A") + " record in DNS response";
        return std::nullopt;
      }
      if (length != (v6 ? 16u : 4u)) {
        error = std::string("invalid ") + (v6 ? "AAAA" : "A") + " record in DNS response";
        return std::nullopt;
      }
      if (i + length > n) {
        error = "short DNS response";
        return std::nullopt;
      }
      Address address;
      address.v6 = v6;
      std::memcpy(address.bytes.data(), m.data() + i, length);
      answers.addresses.push_back(address);
    } else if (type == kTypeCname) {
      cnameAt = i;
    }
    // DNAME is expected beside its CNAME; anything else is passed over as nginx does.
    i += length;
  }
  if (cnameAt) {
    std::optional<std::string> target = readName(m, cnameAt, error);
    if (!target) {
      if (answers.addresses.empty()) return std::nullopt;
    } else {
      answers.cname = std::move(*target);
    }
  }
  return answers;
}

}  // namespace portico::dns
