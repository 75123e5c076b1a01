#include "transport/tls_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

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

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* x509) const { X509_free(x509); }
};
struct X509StackFree {
  void operator()(STACK_OF(X509) * chain) const { sk_X509_pop_free(chain, X509_free); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// nginx's ngx_ssl_error: the message, then OpenSSL's queued errors (emptied) as
// " (SSL: error:... error:...:data)".
std::string sslError(const std::string& what) {
  std::string out = what;
  if (ERR_peek_error() == 0) return out;
  out += " (SSL:";
  const char* data = nullptr;
  int flags = 0;
  for (unsigned long code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags);
       code != 0; code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    out += ' ';
    out += text;
    if (data && *data && (flags & ERR_TXT_STRING)) {
      out += ':';
      out += data;
    }
  }
  return out + ")";
}

// An encrypted key is not prompted for on a terminal (nginx's callback without
// ssl_password_file): it fails to load.
int noPassword(char*, int, int, void*) { return 0; }

// nginx's ngx_ssl_certificate (certificate part): the leaf, then the rest of the file as its
// chain; the messages are nginx's.
bool useCertificate(SSL_CTX* ctx, const std::string& path, std::string& error) {
  const std::string what = "cannot load certificate \"" + path + "\": ";
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    error = sslError(what + "BIO_new_file() failed");
    return false;
  }
  X509Ptr leaf(PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr));
  if (!leaf) {
    error = sslError(what + "PEM_read_bio_X509_AUX() failed");
    return false;
  }
  X509StackPtr chain(sk_X509_new_null());
  if (!chain) {
    error = sslError(what + "sk_X509_new_null() failed");
    return false;
  }
  for (;;) {
    X509Ptr next(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!next) {
      unsigned long last = ERR_peek_last_error();
      if (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE) {
        ERR_clear_error();  // the end of the file
        break;
      }
      error = sslError(what + "PEM_read_bio_X509() failed");
      return false;
    }
    if (sk_X509_push(chain.get(), next.get()) == 0) {
      error = sslError(what + "sk_X509_push() failed");
      return false;
    }
    next.release();  // the stack owns it
  }
  if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1) {
    error = sslError("SSL_CTX_use_certificate(\"" + path + "\") failed");
    return false;
  }
  // The chain goes with the certificate just set (each of an ECDSA and an RSA pair has its own).
  if (SSL_CTX_set0_chain(ctx, chain.get()) != 1) {
    error = sslError("SSL_CTX_set0_chain(\"" + path + "\") failed");
    return false;
  }
  chain.release();  // the context owns it
  return true;
}

// nginx's ngx_ssl_certificate (key part), with its messages: a key that does not match the
// certificate of its type is SSL_CTX_use_PrivateKey's "key values mismatch".
bool useKey(SSL_CTX* ctx, const std::string& path, std::string& error) {
  const std::string what = "cannot load certificate key \"" + path + "\": ";
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    error = sslError(what + "BIO_new_file() failed");
    return false;
  }
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, &noPassword, nullptr));
  if (!key) {
    error = sslError(what + "PEM_read_bio_PrivateKey() failed");
    return false;
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) {
    error = sslError("SSL_CTX_use_PrivateKey(\"" + path + "\") failed");
    return false;
  }
  return true;
}

// nginx's ngx_http_ssl_alpn_select without HTTP/2: the first of http/1.1, http/1.0, http/0.9
// the client offers; a client that offers none of them gets a fatal no_application_protocol
// alert rather than a connection in a protocol it did not ask for.
int selectAlpn(SSL*, const unsigned char** out, unsigned char* outLength,
               const unsigned char* in, unsigned int inLength, void*) {
  static const unsigned char kProtocols[] = "\x08http/1.1\x08http/1.0\x08http/0.9";
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outLength, kProtocols, sizeof kProtocols - 1, in,
                            inLength) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

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
  // As nginx's ngx_ssl_create: the chain is what the certificate file holds (no chain built
  // from the trust store on every handshake: an X509_verify_cert per connection for a leaf
  // without intermediates), and records are read ahead, a socket read taking all that arrived
  // rather than one read for each record's header and another for its body (a full handshake
  // and one request: 4 reads instead of 11). TlsTransport::pendingRead sees what is read ahead.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_NO_AUTO_CHAIN);
  SSL_CTX_set_read_ahead(ctx.get(), 1);
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
    if (!useCertificate(ctx.get(), certificate, error) || !useKey(ctx.get(), key, error)) {
      return nullptr;
    }
    // nginx does not check this; a key of another type than its certificate (an RSA key
    // after an ECDSA certificate) would otherwise pass and fail every handshake.
    if (SSL_CTX_check_private_key(ctx.get()) != 1) {
      error = sslError("certificate \"" + certificate + "\" and key \"" + key +
                       "\" do not match");
      return nullptr;
    }
  }
  // Only HTTP/1.x is spoken: ALPN selects it, and refuses a client that offers only others.
  SSL_CTX_set_alpn_select_cb(ctx.get(), &selectAlpn, nullptr);
  if (!setUpClientVerification(ctx.get(), settings, error)) return nullptr;
  return std::unique_ptr<TlsContext>(new TlsContext(std::move(ctx)));
}

}  // namespace portico::transport
