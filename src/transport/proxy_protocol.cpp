#include "transport/proxy_protocol.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace portico::transport {
namespace {

constexpr std::string_view kV1Signature = "PROXY ";
constexpr std::string_view kV2Signature("\r\n\r\n\0\r\nQUIT\n", 12);
constexpr size_t kV2HeaderSize = 16;

using Status = ProxyProtocolResult::Status;

bool isPrefixOf(std::string_view data, std::string_view signature) {
  size_t n = std::min(data.size(), signature.size());
  return data.substr(0, n) == signature.substr(0, n);
}

ProxyProtocolResult error(std::string message) {
  ProxyProtocolResult result;
  result.status = Status::kError;
  result.error = std::move(message);
  return result;
}

// nginx's message for a v1 line it cannot read: the bytes it read (here at most a v1 line's
// worth), with control and non-ASCII bytes escaped where nginx writes them raw.
ProxyProtocolResult brokenHeader(std::string_view data) {
  size_t end = std::min(data.size(), kProxyProtocolV1MaxHeader);
  std::string text;
  for (char c : data.substr(0, end)) {
    auto u = static_cast<unsigned char>(c);
    // The error log is a text file: a binary byte is shown escaped, as nginx's logs do.
    if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') {
      static const char kHex[] = "0123456789ABCDEF";
      text += "\\x";
      text += kHex[u >> 4];
      text += kHex[u & 15];
    } else {
      text += c;
    }
  }
  return error("broken header: \"" + text + "\"");
}

// ngx_proxy_protocol_read_addr: the characters of an address up to a space. nginx takes any
// run of [0-9a-fA-F.:]; portico also requires it to be an IPv4 or IPv6 address, so the
// variables never carry something realip and the logs cannot read.
bool readAddress(std::string_view line, size_t& pos, std::string& out) {
  size_t space = line.find(' ', pos);
  if (space == std::string_view::npos || space == pos) return false;
  std::string text(line.substr(pos, space - pos));
  unsigned char buf[16];
  if (inet_pton(AF_INET, text.c_str(), buf) != 1 && inet_pton(AF_INET6, text.c_str(), buf) != 1) {
    return false;
  }
  out = std::move(text);
  pos = space + 1;
  return true;
}

// ngx_proxy_protocol_read_port: decimal digits up to `sep`, at most 65535.
bool readPort(std::string_view line, size_t& pos, char sep, uint16_t& out) {
  size_t end = line.find(sep, pos);
  if (end == std::string_view::npos || end == pos || end - pos > 5) return false;
  uint32_t value = 0;
  for (size_t i = pos; i < end; ++i) {
    if (line[i] < '0' || line[i] > '9') return false;
    value = value * 10 + static_cast<uint32_t>(line[i] - '0');
  }
  if (value > 65535) return false;
  out = static_cast<uint16_t>(value);
  pos = end + 1;
  return true;
}

ProxyProtocolResult parseV1(std::string_view data) {
  size_t lf = data.substr(0, kProxyProtocolV1MaxHeader).find('\n');
  if (lf == std::string_view::npos) {
    if (data.size() >= kProxyProtocolV1MaxHeader) return brokenHeader(data);
    return {};  // kIncomplete
  }
  std::string_view line = data.substr(0, lf + 1);
  ProxyProtocolResult result;
  result.status = Status::kDone;
  result.consumed = line.size();
  result.info.version = 1;
  size_t pos = kV1Signature.size();
  std::string_view rest = line.substr(pos);
  if (rest.substr(0, 7) == "UNKNOWN") {
    // Whatever follows is skipped up to the CRLF (nginx's `skip`).
    if (line.size() < 2 || line[line.size() - 2] != '\r') return brokenHeader(data);
    return result;
  }
  if (rest.size() < 5 || rest.substr(0, 3) != "TCP" || (rest[3] != '4' && rest[3] != '6') ||
      rest[4] != ' ') {
    return brokenHeader(data);
  }
  pos += 5;
  ProxyProtocolInfo& info = result.info;
  if (!readAddress(line, pos, info.sourceAddress) ||
      !readAddress(line, pos, info.destinationAddress) ||
      !readPort(line, pos, ' ', info.sourcePort) || !readPort(line, pos, '\r', info.destinationPort) ||
      pos != line.size() - 1) {
    return brokenHeader(data);
  }
  info.known = true;
  return result;
}

uint16_t u16(std::string_view data, size_t at) {
  return static_cast<uint16_t>(static_cast<unsigned char>(data[at]) << 8 |
                               static_cast<unsigned char>(data[at + 1]));
}

ProxyProtocolResult parseV2(std::string_view data) {
  if (data.size() < kV2HeaderSize) return {};  // kIncomplete
  auto versionCommand = static_cast<unsigned char>(data[12]);
  auto familyTransport = static_cast<unsigned char>(data[13]);
  unsigned version = versionCommand >> 4;
  if (version != 2) return error("unknown PROXY protocol version: " + std::to_string(version));
  size_t length = u16(data, 14);
  if (kV2HeaderSize + length > kProxyProtocolMaxHeader) return error("header is too large");
  if (data.size() < kV2HeaderSize + length) return {};  // kIncomplete
  ProxyProtocolResult result;
  result.status = Status::kDone;
  result.consumed = kV2HeaderSize + length;
  result.info.version = 2;
  std::string_view body = data.substr(kV2HeaderSize, length);
  // Only PROXY over STREAM carries addresses nginx uses; LOCAL (a health check from the
  // balancer itself), datagrams, AF_UNSPEC and AF_UNIX are skipped whole.
  if ((versionCommand & 0x0f) != 1 || (familyTransport & 0x0f) != 1) return result;
  unsigned family = familyTransport >> 4;
  int af = 0;
  size_t addressSize = 0;
  if (family == 1) {
    af = AF_INET;
    addressSize = 4;
  } else if (family == 2) {
    af = AF_INET6;
    addressSize = 16;
  } else {
    return result;
  }
  if (body.size() < 2 * addressSize + 4) return error("broken header: address block too short");
  char text[INET6_ADDRSTRLEN];
  ProxyProtocolInfo& info = result.info;
  if (!inet_ntop(af, body.data(), text, sizeof text)) return error("broken header");
  info.sourceAddress = text;
  if (!inet_ntop(af, body.data() + addressSize, text, sizeof text)) return error("broken header");
  info.destinationAddress = text;
  info.sourcePort = u16(body, 2 * addressSize);
  info.destinationPort = u16(body, 2 * addressSize + 2);
  info.known = true;
  // TLVs (what follows the addresses) are skipped: $proxy_protocol_tlv_* is nginx 1.23.2's.
  return result;
}

}  // namespace

ProxyProtocolResult parseProxyProtocol(std::string_view data, bool optional) {
  if (!data.empty() && data[0] == '\r' && isPrefixOf(data, kV2Signature)) {
    if (data.size() < kV2Signature.size()) return {};
    return parseV2(data);
  }
  if (!data.empty() && isPrefixOf(data, kV1Signature)) {
    if (data.size() < kV1Signature.size()) return {};
    return parseV1(data);
  }
  if (data.empty()) return {};
  if (optional) {
    ProxyProtocolResult result;
    result.status = Status::kAbsent;
    return result;
  }
  return brokenHeader(data);
}

}  // namespace portico::transport
