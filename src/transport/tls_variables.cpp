#include "transport/tls_variables.h"

#include <openssl/ssl.h>

#include <array>

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

struct Entry {
  std::string_view name;
  Getter get;
};

constexpr std::array<Entry, 5> kVariables = {{
    {"protocol", &protocol},
    {"cipher", &cipher},
    {"server_name", &serverName},
    {"session_reused", &sessionReused},
    {"alpn_protocol", &alpnProtocol},
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
