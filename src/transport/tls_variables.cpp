#include "transport/tls_variables.h"

#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <memory>
#include <vector>

namespace portico::transport {
namespace {

using Getter = std::string (*)(const SSL* ssl);

std::string protocol(const SSL* ssl) { return SSL_get_version(ssl); }

std::string cipher(const SSL* ssl) {
  const char* name = SSL_get_cipher_name(ssl);
  return name ? name : "";
}

// `bytes` as lower-case hex, appended to `out`.
void appendHex(std::string& out, const unsigned char* bytes, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) {
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 15];
  }
}

// The ciphers the client offered, in its order, by OpenSSL's names (one OpenSSL does not know
// as 0x and its hex bytes), joined with ':' (nginx's ngx_ssl_get_ciphers).
std::string ciphers(const SSL* ssl) {
  SSL* s = const_cast<SSL*>(ssl);  // OpenSSL's getters take a non-const SSL*
  size_t width = SSL_get0_raw_cipherlist(s, nullptr);
  const unsigned char* raw = nullptr;
  size_t bytes = SSL_get0_raw_cipherlist(s, &raw);
  if (width == 0 || bytes == 0 || raw == nullptr) return "";
  std::string out;
  for (size_t at = 0; at + width <= bytes; at += width) {
    if (!out.empty()) out += ':';
    if (const SSL_CIPHER* c = SSL_CIPHER_find(s, raw + at)) {
      out += SSL_CIPHER_get_name(c);
      continue;
    }
    out += "0x";
    appendHex(out, raw + at, width);
  }
  return out;
}

// The name the client asked for with SNI ("" without).
std::string serverName(const SSL* ssl) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  return name ? name : "";
}

// "r" when the session was resumed, "." otherwise (nginx's).
std::string sessionReused(const SSL* ssl) { return SSL_session_reused(ssl) ? "r" : "."; }

// "1" while the handshake is not complete: the request came in TLS 1.3 early data and the
// client's Finished has not been read yet (nginx's ngx_ssl_get_early_data with OpenSSL).
std::string earlyData(const SSL* ssl) { return SSL_is_init_finished(ssl) ? "" : "1"; }

// "h2", "http/1.1" or "" (nginx 1.21.4+: $ssl_alpn_protocol).
std::string alpnProtocol(const SSL* ssl) {
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl, &data, &length);
  return std::string(reinterpret_cast<const char*>(data), data ? length : 0);
}

// ---- the client's certificate (ngx_ssl_get_* of ngx_event_openssl.c) ----

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};

// What `print` wrote into a memory BIO.
template <class Print>
std::string printed(Print print) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio) return {};
  print(bio.get());
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return length > 0 ? std::string(data, static_cast<size_t>(length)) : std::string();
}

X509* peer(const SSL* ssl) { return SSL_get0_peer_certificate(ssl); }

// "SUCCESS", "FAILED:reason" or "NONE" (no certificate was sent).
std::string clientVerify(const SSL* ssl) {
  if (!peer(ssl)) return "NONE";
  long rc = SSL_get_verify_result(ssl);
  if (rc == X509_V_OK) return "SUCCESS";
  return std::string("FAILED:") + X509_verify_cert_error_string(rc);
}

// RFC 2253, most specific first ("CN=name,O=org"), as nginx 1.11.6+.
std::string rfc2253(const X509_NAME* name) {
  if (!name) return {};
  return printed([&](BIO* bio) { X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253); });
}
// OpenSSL's one-line form ("/O=org/CN=name"): nginx's *_dn_legacy.
std::string oneline(const X509_NAME* name) {
  if (!name) return {};
  char* text = X509_NAME_oneline(name, nullptr, 0);
  if (!text) return {};
  std::string out(text);
  OPENSSL_free(text);
  return out;
}

std::string subjectDn(const SSL* ssl) {
  X509* cert = peer(ssl);
  return cert ? rfc2253(X509_get_subject_name(cert)) : std::string();
}
std::string issuerDn(const SSL* ssl) {
  X509* cert = peer(ssl);
  return cert ? rfc2253(X509_get_issuer_name(cert)) : std::string();
}
std::string subjectDnLegacy(const SSL* ssl) {
  X509* cert = peer(ssl);
  return cert ? oneline(X509_get_subject_name(cert)) : std::string();
}
std::string issuerDnLegacy(const SSL* ssl) {
  X509* cert = peer(ssl);
  return cert ? oneline(X509_get_issuer_name(cert)) : std::string();
}

// Upper-case hex, as i2a_ASN1_INTEGER writes it.
std::string serial(const SSL* ssl) {
  X509* cert = peer(ssl);
  if (!cert) return {};
  return printed([&](BIO* bio) { i2a_ASN1_INTEGER(bio, X509_get_serialNumber(cert)); });
}

// SHA-1 of the DER certificate, lower-case hex.
std::string fingerprint(const SSL* ssl) {
  X509* cert = peer(ssl);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!cert || !X509_digest(cert, EVP_sha1(), digest, &length)) return {};
  std::string out;
  appendHex(out, digest, length);
  return out;
}

std::string rawCert(const SSL* ssl) {
  X509* cert = peer(ssl);
  if (!cert) return {};
  return printed([&](BIO* bio) { PEM_write_bio_X509(bio, cert); });
}

// Deprecated $ssl_client_cert: the PEM without its last newline, every other line break
// followed by a tab (a folded header line, as old proxies wanted).
std::string cert(const SSL* ssl) {
  std::string pem = rawCert(ssl);
  if (pem.empty()) return {};
  pem.pop_back();
  std::string out;
  for (char c : pem) {
    out += c;
    if (c == '\n') out += '\t';
  }
  return out;
}

// The PEM urlencoded as ngx_escape_uri(NGX_ESCAPE_URI_COMPONENT): all but A-Z a-z 0-9 - . _ ~.
std::string escapedCert(const SSL* ssl) {
  std::string pem = rawCert(ssl);
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : pem) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

// "Jan  1 00:00:00 2021 GMT", as ASN1_TIME_print writes it.
std::string startDate(const SSL* ssl) {
  X509* cert = peer(ssl);
  if (!cert) return {};
  return printed([&](BIO* bio) { ASN1_TIME_print(bio, X509_get0_notBefore(cert)); });
}
std::string endDate(const SSL* ssl) {
  X509* cert = peer(ssl);
  if (!cert) return {};
  return printed([&](BIO* bio) { ASN1_TIME_print(bio, X509_get0_notAfter(cert)); });
}

// Whole days until the certificate expires; "0" for less than one day left.
std::string daysRemaining(const SSL* ssl) {
  X509* cert = peer(ssl);
  std::tm tm{};
  if (!cert || ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return {};
  std::time_t end = timegm(&tm);
  std::time_t now = std::time(nullptr);
  if (end < now + 86400) return "0";
  return std::to_string((end - now) / 86400);
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

constexpr std::array<Entry, 23> kVariables = {{
    {"protocol", &protocol},
    {"cipher", &cipher},
    {"ciphers", &ciphers},
    {"server_name", &serverName},
    {"session_reused", &sessionReused},
    {"alpn_protocol", &alpnProtocol},
    {"client_verify", &clientVerify},
    {"client_s_dn", &subjectDn},
    {"client_i_dn", &issuerDn},
    {"client_s_dn_legacy", &subjectDnLegacy},
    {"client_i_dn_legacy", &issuerDnLegacy},
    {"client_serial", &serial},
    {"client_fingerprint", &fingerprint},
    {"client_cert", &cert},
    {"client_raw_cert", &rawCert},
    {"client_escaped_cert", &escapedCert},
    {"client_v_start", &startDate},
    {"client_v_end", &endDate},
    {"client_v_remain", &daysRemaining},
    {"session_id", &sessionId},
    {"curve", &curve},
    {"curves", &curves},
    {"early_data", &earlyData},
}};

}  // namespace

int clientCertificateStatus(const ssl_st* ssl, bool required, bool optionalNoCa, std::string& log) {
  if (!ssl) return 0;
  long rc = SSL_get_verify_result(ssl);
  // nginx's ngx_ssl_verify_error_optional: what optional_no_ca lets through.
  bool tolerated = optionalNoCa && (rc == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
                                    rc == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
                                    rc == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                                    rc == X509_V_ERR_CERT_UNTRUSTED ||
                                    rc == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE);
  if (rc != X509_V_OK && !tolerated) {
    log = "client SSL certificate verify error: (" + std::to_string(rc) + ":" +
          X509_verify_cert_error_string(rc) + ")";
    return 495;
  }
  if (required && !SSL_get0_peer_certificate(ssl)) {
    log = "client sent no required SSL certificate";
    return 496;
  }
  return 0;
}

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
