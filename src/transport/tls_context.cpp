#include "transport/tls_context.h"

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <strings.h>

#include <cstring>
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

struct X509CrlFree {
  void operator()(X509_CRL* crl) const { X509_CRL_free(crl); }
};
struct X509NameStackFree {
  void operator()(STACK_OF(X509_NAME)* names) const { sk_X509_NAME_pop_free(names, X509_NAME_free); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* ctx) const { X509_STORE_CTX_free(ctx); }
};
struct OcspResponseFree {
  void operator()(OCSP_RESPONSE* response) const { OCSP_RESPONSE_free(response); }
};
// nginx's ngx_ssl_verify_callback: the chain is verified during the handshake, but the handshake
// finishes whatever the outcome; SSL_get_verify_result keeps it, and the request is refused
// afterwards with a page (495/496) instead of a TLS alert the browser cannot explain.
int acceptAnyCertificate(int ok, X509_STORE_CTX* store) {
  (void)ok;
  (void)store;
  return 1;
}

// Whether the PEM reader stopped at the end of the file rather than at something broken.
bool pemEnded() {
  unsigned long last = ERR_peek_last_error();
  if (last != 0 && (ERR_GET_LIB(last) != ERR_LIB_PEM || ERR_GET_REASON(last) != PEM_R_NO_START_LINE)) {
    return false;
  }
  ERR_clear_error();
  return true;
}

int compareNames(const X509_NAME* const* a, const X509_NAME* const* b) { return X509_NAME_cmp(*a, *b); }

// Adds every certificate of a PEM file to the context's verification store, and (when `names`
// is given) their subjects to the CA names sent in the certificate request, once each
// (nginx's ngx_ssl_client_certificate and ngx_ssl_trusted_certificate).
bool loadCertificates(SSL_CTX* ctx, const std::string& path, STACK_OF(X509_NAME)* names,
                      std::string& error) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    error = "cannot load certificate \"" + path + "\": BIO_new_file() failed (" + takeSslErrors() + ")";
    return false;
  }
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int count = 0;
  while (X509Ptr cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    ++count;
    if (X509_STORE_add_cert(store, cert.get()) != 1) {
      error = "X509_STORE_add_cert(\"" + path + "\") failed (" + takeSslErrors() + ")";
      return false;
    }
    if (!names) continue;
    X509_NAME* name = X509_NAME_dup(X509_get_subject_name(cert.get()));
    if (!name) continue;
    if (sk_X509_NAME_find(names, name) >= 0) {
      X509_NAME_free(name);
    } else {
      sk_X509_NAME_push(names, name);
    }
  }
  if (count == 0 || !pemEnded()) {
    error = "cannot load certificate \"" + path + "\": PEM_read_bio_X509() failed (" +
            takeSslErrors() + ")";
    return false;
  }
  return true;
}

// nginx's ngx_ssl_crl: every CRL of the file, and then every certificate of a chain (not only
// the client's) must be covered by one.
bool loadCrls(SSL_CTX* ctx, const std::string& path, std::string& error) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    error = "cannot load CRL \"" + path + "\": BIO_new_file() failed (" + takeSslErrors() + ")";
    return false;
  }
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int count = 0;
  while (std::unique_ptr<X509_CRL, X509CrlFree> crl{
             PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)}) {
    ++count;
    if (X509_STORE_add_crl(store, crl.get()) != 1) {
      error = "X509_STORE_add_crl(\"" + path + "\") failed (" + takeSslErrors() + ")";
      return false;
    }
  }
  if (count == 0 || !pemEnded()) {
    error = "cannot load CRL \"" + path + "\": PEM_read_bio_X509_CRL() failed (" +
            takeSslErrors() + ")";
    return false;
  }
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  return true;
}

// ssl_verify_client, ssl_verify_depth, ssl_client_certificate, ssl_trusted_certificate, ssl_crl
// (the order of nginx's ngx_http_ssl_merge_srv_conf).
bool setUpClientVerification(SSL_CTX* ctx, const TlsSettings& settings, std::string& error) {
  if (settings.verifyClient != TlsSettings::VerifyClient::kOff) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, &acceptAnyCertificate);
    SSL_CTX_set_verify_depth(ctx, settings.verifyDepth);
    if (!settings.clientCertificate.empty()) {
      std::unique_ptr<STACK_OF(X509_NAME), X509NameStackFree> names(
          sk_X509_NAME_new(&compareNames));
      if (!names || !loadCertificates(ctx, settings.clientCertificate, names.get(), error)) {
        if (error.empty()) error = "sk_X509_NAME_new() failed";
        return false;
      }
      SSL_CTX_set_client_CA_list(ctx, names.release());
    }
    // OpenSSL refuses to resume a session (a fatal "session id context uninitialized") on a
    // context that verifies peers and has no session id context.
    static const unsigned char kSessionContext[] = "HTTP";
    SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  }
  SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), &acceptAnyCertificate);
  SSL_CTX_set_verify_depth(ctx, settings.verifyDepth);
  if (!settings.trustedCertificate.empty() &&
      !loadCertificates(ctx, settings.trustedCertificate, nullptr, error)) {
    return false;
  }
  if (!settings.crl.empty() && !loadCrls(ctx, settings.crl, error)) return false;
  if (settings.verifyInHandshake && settings.verifyClient != TlsSettings::VerifyClient::kOff) {
    // gunicorn's way (Python's ssl): CERT_REQUIRED also refuses a client with no certificate,
    // and OpenSSL's own check (no callback) fails the handshake on one it cannot verify.
    int mode = SSL_VERIFY_PEER;
    if (settings.verifyClient == TlsSettings::VerifyClient::kOn) {
      mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    bool any = settings.verifyClient == TlsSettings::VerifyClient::kOptionalNoCa;
    SSL_CTX_set_verify(ctx, mode, any ? &acceptAnyCertificate : nullptr);
  }
  return true;
}

// nginx's ngx_ssl_stapling_issuer: the issuer of `cert` from its chain, else from the store
// (ssl_trusted_certificate, ssl_client_certificate).
bool issuerKnown(SSL_CTX* ctx, X509* cert, STACK_OF(X509)* chain) {
  for (int i = 0; chain && i < sk_X509_num(chain); ++i) {
    if (X509_check_issued(sk_X509_value(chain, i), cert) == X509_V_OK) return true;
  }
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> storeCtx(X509_STORE_CTX_new());
  if (!storeCtx || X509_STORE_CTX_init(storeCtx.get(), SSL_CTX_get_cert_store(ctx), nullptr,
                                       nullptr) != 1) {
    ERR_clear_error();
    return false;
  }
  X509* issuer = nullptr;
  int found = X509_STORE_CTX_get1_issuer(&issuer, storeCtx.get(), cert);
  X509_free(issuer);
  ERR_clear_error();
  return found == 1;
}

}  // namespace

bool TlsContext::setUpStapling(const TlsSettings& settings, const std::vector<Leaf>& leaves,
                               std::string& error) {
  SSL_CTX* ctx = ctx_.get();
  if (!settings.staplingFile.empty()) {
    // nginx's ngx_ssl_stapling_file: the response is sent as it is, for every certificate,
    // whatever it says and however old it is.
    const std::string& file = settings.staplingFile;
    BioPtr bio(BIO_new_file(file.c_str(), "rb"));
    if (!bio) {
      error = "BIO_new_file(\"" + file + "\") failed (" + takeSslErrors() + ")";
      return false;
    }
    std::unique_ptr<OCSP_RESPONSE, OcspResponseFree> response(
        d2i_OCSP_RESPONSE_bio(bio.get(), nullptr));
    if (!response) {
      error = "d2i_OCSP_RESPONSE_bio(\"" + file + "\") failed (" + takeSslErrors() + ")";
      return false;
    }
    unsigned char* der = nullptr;
    int length = i2d_OCSP_RESPONSE(response.get(), &der);
    if (length <= 0) {
      error = "i2d_OCSP_RESPONSE(\"" + file + "\") failed (" + takeSslErrors() + ")";
      return false;
    }
    staple_.assign(reinterpret_cast<const char*>(der), static_cast<size_t>(length));
    OPENSSL_free(der);
  } else {
    // nginx would query the responder from the worker; portico has no resolver or OCSP
    // client, so every certificate's stapling is ignored, with nginx's reason when it has one.
    for (const Leaf& leaf : leaves) {
      std::string prefix = "\"ssl_stapling\" ignored, ";
      if (!issuerKnown(ctx, leaf.cert, leaf.chain)) {
        warnings_.push_back(prefix + "issuer certificate not found for certificate \"" +
                            leaf.name + "\"");
        continue;
      }
      std::string url = settings.staplingResponder;
      if (url.empty()) {
        STACK_OF(OPENSSL_STRING)* aia = X509_get1_ocsp(leaf.cert);
        const char* first = aia ? sk_OPENSSL_STRING_value(aia, 0) : nullptr;
        if (first) url = first;
        X509_email_free(aia);
      }
      if (url.empty()) {
        warnings_.push_back(prefix + "no OCSP responder URL in the certificate \"" + leaf.name +
                            "\"");
      } else if (url.size() <= 7 || strncasecmp(url.c_str(), "http://", 7) != 0) {
        warnings_.push_back(prefix + "invalid URL prefix in OCSP responder \"" + url +
                            "\" in the certificate \"" + leaf.name + "\"");
      } else {
        warnings_.push_back(prefix + "OCSP responder \"" + url + "\" of the certificate \"" +
                            leaf.name + "\" cannot be queried: portico has no OCSP client " +
                            "(use \"ssl_stapling_file\")");
      }
    }
  }
  SSL_CTX_set_tlsext_status_cb(ctx, &TlsContext::onStatusRequest);
  SSL_CTX_set_tlsext_status_arg(ctx, this);
  return true;
}

// nginx's ngx_ssl_certificate_status_callback: the client asked for the certificate's status.
int TlsContext::onStatusRequest(SSL* ssl, void* arg) {
  const auto* self = static_cast<const TlsContext*>(arg);
  if (self->staple_.empty()) return SSL_TLSEXT_ERR_NOACK;
  // OpenSSL frees the response it is given: each handshake gets its own copy.
  auto* copy = static_cast<unsigned char*>(OPENSSL_malloc(self->staple_.size()));
  if (!copy) return SSL_TLSEXT_ERR_NOACK;
  std::memcpy(copy, self->staple_.data(), self->staple_.size());
  SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(self->staple_.size()));
  return SSL_TLSEXT_ERR_OK;
}

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
  std::vector<Leaf> leaves;  // for ssl_stapling's checks, once the stores are filled
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
    STACK_OF(X509)* chain = nullptr;
    SSL_CTX_get0_chain_certs(ctx.get(), &chain);
    leaves.push_back(Leaf{SSL_CTX_get0_certificate(ctx.get()), chain, certificate});
  }
  // Only HTTP/1.x is spoken: ALPN selects it, and refuses a client that offers only others.
  SSL_CTX_set_alpn_select_cb(ctx.get(), &selectAlpn, nullptr);
  if (!setUpClientVerification(ctx.get(), settings, error)) return nullptr;
  std::unique_ptr<TlsContext> context(new TlsContext(std::move(ctx)));
  if (settings.stapling && !context->setUpStapling(settings, leaves, error)) return nullptr;
  return context;
}

}  // namespace portico::transport
