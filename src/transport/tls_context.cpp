#include "transport/tls_context.h"

#include <openssl/err.h>

#include <sstream>

namespace portico::transport {

std::string takeSslErrors() {
  std::string out;
  for (unsigned long code = ERR_get_error(); code != 0; code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    if (!out.empty()) out += ":";
    out += text;
  }
  return out;
}

namespace {

// nginx's ssl_protocols words as OpenSSL's protocol versions; false for an unknown word.
bool protocolRange(const std::string& words, int& min, int& max, std::string& error) {
  static const std::pair<const char*, int> kVersions[] = {
      {"TLSv1", TLS1_VERSION}, {"TLSv1.1", TLS1_1_VERSION},
      {"TLSv1.2", TLS1_2_VERSION}, {"TLSv1.3", TLS1_3_VERSION}};
  min = 0;
  max = 0;
  std::istringstream in(words);
  std::string word;
  while (in >> word) {
    int version = 0;
    for (const auto& [name, value] : kVersions) {
      if (word == name) version = value;
    }
    if (version == 0) {
      error = "invalid value \"" + word + "\" in ssl_protocols";
      return false;
    }
    if (min == 0 || version < min) min = version;
    if (version > max) max = version;
  }
  if (min == 0) {
    error = "no protocol in ssl_protocols";
    return false;
  }
  return true;
}

// nginx's ngx_ssl_verify_callback: the handshake completes whatever the client's certificate;
// the request is then judged by SSL_get_verify_result ($ssl_client_verify, 400).
int acceptAnyCertificate(int ok, X509_STORE_CTX* store) {
  (void)ok;
  (void)store;
  return 1;
}

// ssl_verify_client / --cert-reqs: asks for a client certificate and loads the CAs that verify
// it (they are also the names sent in the CertificateRequest, as nginx's
// SSL_CTX_set_client_CA_list).
bool setUpClientVerification(SSL_CTX* ctx, const TlsSettings& settings, std::string& error) {
  using Verify = TlsSettings::VerifyClient;
  if (settings.verifyClient == Verify::kOff) return true;
  int mode = SSL_VERIFY_PEER;
  SSL_verify_cb callback = acceptAnyCertificate;
  if (settings.verifyInHandshake) {
    // Python's ssl: CERT_REQUIRED also refuses a client with no certificate, and OpenSSL's
    // own check (no callback) fails the handshake on a certificate it cannot verify.
    if (settings.verifyClient == Verify::kOn) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    if (settings.verifyClient != Verify::kOptionalNoCa) callback = nullptr;
  }
  SSL_CTX_set_verify(ctx, mode, callback);
  SSL_CTX_set_verify_depth(ctx, settings.verifyDepth);
  // A resumed session of a verifying context needs one (else OpenSSL fails the handshake
  // with "session id context uninitialized").
  static const unsigned char kSessionContext[] = "portico";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  if (settings.clientCertificate.empty()) return true;
  const char* file = settings.clientCertificate.c_str();
  if (SSL_CTX_load_verify_locations(ctx, file, nullptr) != 1) {
    error = "SSL_CTX_load_verify_locations(\"" + settings.clientCertificate + "\") failed (" +
            takeSslErrors() + ")";
    return false;
  }
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(file);
  if (names == nullptr) {
    error = "SSL_load_client_CA_file(\"" + settings.clientCertificate + "\") failed (" +
            takeSslErrors() + ")";
    return false;
  }
  ERR_clear_error();  // SSL_load_client_CA_file leaves end-of-file errors behind
  SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
  return true;
}

}  // namespace

std::unique_ptr<TlsContext> TlsContext::create(const TlsSettings& settings, std::string& error) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) {
    error = "SSL_CTX_new() failed (" + takeSslErrors() + ")";
    return nullptr;
  }
  int min = 0, max = 0;
  if (!protocolRange(settings.protocols, min, max, error)) return nullptr;
  SSL_CTX_set_min_proto_version(ctx.get(), min);
  SSL_CTX_set_max_proto_version(ctx.get(), max);
  // The session writes what the transport took and retries with the same bytes from its own
  // queue, whose storage may move (a deque of chunks); partial writes are progress.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  // No renegotiation (OpenSSL 3 refuses a client's by default; nginx refuses it too), and an
  // EOF without close_notify ends the stream as close_notify does (gunicorn's
  // --suppress-ragged-eofs default).
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                     SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (settings.kernelTls) SSL_CTX_set_options(ctx.get(), SSL_OP_ENABLE_KTLS);
  if (settings.preferServerCiphers) SSL_CTX_set_options(ctx.get(), SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (!settings.ciphers.empty() && SSL_CTX_set_cipher_list(ctx.get(), settings.ciphers.c_str()) != 1) {
    error = "SSL_CTX_set_cipher_list(\"" + settings.ciphers + "\") failed (" + takeSslErrors() + ")";
    return nullptr;
  }
  if (settings.ecdhCurve != "auto" &&
      SSL_CTX_set1_groups_list(ctx.get(), settings.ecdhCurve.c_str()) != 1) {
    error = "SSL_CTX_set1_curves_list(\"" + settings.ecdhCurve + "\") failed (" +
            takeSslErrors() + ")";
    return nullptr;
  }
  if (settings.certificates.empty()) {
    error = "no \"ssl_certificate\" is defined";
    return nullptr;
  }
  for (const auto& [certificate, key] : settings.certificates) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), certificate.c_str()) != 1) {
      error = "cannot load certificate \"" + certificate + "\": " + takeSslErrors();
      return nullptr;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
      error = "cannot load certificate key \"" + key + "\": " + takeSslErrors();
      return nullptr;
    }
    if (SSL_CTX_check_private_key(ctx.get()) != 1) {
      error = "certificate \"" + certificate + "\" and key \"" + key + "\" do not match: " +
              takeSslErrors();
      return nullptr;
    }
  }
  if (!setUpClientVerification(ctx.get(), settings, error)) return nullptr;
  return std::unique_ptr<TlsContext>(new TlsContext(std::move(ctx)));
}

}  // namespace portico::transport
