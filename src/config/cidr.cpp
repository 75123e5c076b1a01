#include "config/cidr.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "config/conf_values.h"

namespace portico::config {

CidrParse parseCidr(std::string_view text, Cidr& out) {
  out = Cidr{};
  size_t slash = text.find('/');
  std::string address(text.substr(0, slash));
  if (::inet_pton(AF_INET, address.c_str(), out.addr.data()) == 1) {
    out.family = AF_INET;
  } else if (address.find(':') != std::string::npos &&
             ::inet_pton(AF_INET6, address.c_str(), out.addr.data()) == 1) {
    out.family = AF_INET6;
  } else {
    return CidrParse::kError;
  }
  size_t bytes = out.family == AF_INET ? 4 : 16;
  if (slash == std::string_view::npos) {
    std::memset(out.mask.data(), 0xff, bytes);
    return CidrParse::kOk;
  }
  auto shift = parseNginxNumber(text.substr(slash + 1));
  if (!shift || *shift > static_cast<int64_t>(bytes * 8)) return CidrParse::kError;
  int64_t left = *shift;
  CidrParse rc = CidrParse::kOk;
  for (size_t i = 0; i < bytes; ++i) {
    int s = left > 8 ? 8 : static_cast<int>(left);
    left -= s;
    out.mask[i] = static_cast<uint8_t>(0xffu << (8 - s));
    if (out.addr[i] != (out.addr[i] & out.mask[i])) {
      rc = CidrParse::kLowBits;
      out.addr[i] &= out.mask[i];
    }
  }
  return rc;
}

bool PeerAddress::v4Mapped() const {
  if (family != AF_INET6) return false;
  for (int i = 0; i < 10; ++i) {
    if (bytes[i] != 0) return false;
  }
  return bytes[10] == 0xff && bytes[11] == 0xff;
}

PeerAddress PeerAddress::asV4() const {
  PeerAddress v4;
  v4.family = AF_INET;
  std::memcpy(v4.bytes.data(), bytes.data() + 12, 4);
  return v4;
}

PeerAddress peerAddressOf(std::string_view text, bool isUnix) {
  PeerAddress peer;
  if (isUnix) {
    peer.family = AF_UNIX;
    return peer;
  }
  std::string s(text);
  if (::inet_pton(AF_INET, s.c_str(), peer.bytes.data()) == 1) {
    peer.family = AF_INET;
  } else if (::inet_pton(AF_INET6, s.c_str(), peer.bytes.data()) == 1) {
    peer.family = AF_INET6;
  }
  return peer;
}

bool cidrMatches(const Cidr& cidr, const PeerAddress& peer) {
  if (cidr.family != peer.family) return false;
  if (cidr.family == AF_UNIX) return true;
  size_t n = cidr.family == AF_INET ? 4 : 16;
  for (size_t i = 0; i < n; ++i) {
    if ((peer.bytes[i] & cidr.mask[i]) != cidr.addr[i]) return false;
  }
  return true;
}

}  // namespace portico::config
