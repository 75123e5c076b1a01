#include "transport/tls_variables.h"

#include <openssl/ssl.h>

#include <openssl/objects.h>

#include <array>
#include <cstdio>
#include <vector>

namespace portico::transport {
namespace {

using Getter = std::string (*)(const SSL* ssl);

std::string protocol(const SSL* ssl) { return SSL_get_version(ssl); }

std::string cipher(const SSL* ssl) {
  const char* name = SSL_get_cipher_name(ssl);
  return name ? name : "";
}

// The name the client asked for with SNI ("" without).
std::string serverName(const SSL* ssl) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  return name ? name : "";
}

// "r" when the session was resumed, "." otherwise (nginx's).
std::string sessionReused(const SSL* ssl) { return SSL_session_reused(ssl) ? "r" : "."; }

// "h2", "http/1.1" or "" (nginx 1.21.4+: $ssl_alpn_protocol).
std::string alpnProtocol(const SSL* ssl) {
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl, &data, &length);
  return std::string(reinterpret_cast<const char*>(data), data ? length : 0);
}

// The session's ID in hex (nginx's $ssl_session_id; "" without a session).
std::string sessionId(const SSL* ssl) {
  const SSL_SESSION* session = SSL_get0_session(ssl);
  if (!session) return {};
  unsigned int length = 0;
  const unsigned char* id = SSL_SESSION_get_id(session, &length);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[id[i] >> 4];
    out += kHex[id[i] & 0xf];
  }
  return out;
}

// A group's name as nginx prints it: OpenSSL's short name, else "0x%04x".
std::string groupName(const SSL* ssl, int nid) {
  if ((nid & TLSEXT_nid_unknown) == 0) {
    const char* name = OBJ_nid2sn(nid);
    if (name) return name;
  }
  const char* name = SSL_group_to_name(const_cast<SSL*>(ssl), nid);
  if (name) return name;
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04x", nid & 0xffff);
  return buf;
}

// The key exchange group negotiated ($ssl_curve, nginx 1.21.5+).
std::string curve(const SSL* ssl) {
  int nid = SSL_get_negotiated_group(const_cast<SSL*>(ssl));
  return nid == NID_undef ? std::string() : groupName(ssl, nid);
}

// The client's supported groups, colon-separated ($ssl_curves).
std::string curves(const SSL* ssl) {
  SSL* s = const_cast<SSL*>(ssl);
  int n = SSL_get1_curves(s, nullptr);
  if (n <= 0) return {};
  std::vector<int> groups(static_cast<size_t>(n));
  n = SSL_get1_curves(s, groups.data());
  std::string out;
  for (int i = 0; i < n; ++i) {
    if (!out.empty()) out += ':';
    out += groupName(ssl, groups[static_cast<size_t>(i)]);
  }
  return out;
}

struct Entry {
  std::string_view name;
  Getter get;
};

constexpr std::array<Entry, 8> kVariables = {{
    {"protocol", &protocol},
    {"cipher", &cipher},
    {"server_name", &serverName},
    {"session_reused", &sessionReused},
    {"alpn_protocol", &alpnProtocol},
    {"session_id", &sessionId},
    {"curve", &curve},
    {"curves", &curves},
}};

}  // namespace

bool isTlsVariable(std::string_view name) {
  for (const Entry& e : kVariables) {
    if (e.name == name) return true;
  }
  return false;
}

std::string tlsVariable(const ssl_st* ssl, std::string_view name) {
  if (!ssl) return {};
  for (const Entry& e : kVariables) {
    if (e.name == name) return e.get(ssl);
  }
  return {};
}

}  // namespace portico::transport
