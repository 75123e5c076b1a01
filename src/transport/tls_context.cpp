#include "transport/tls_context.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <sstream>

#include "core/unique_fd.h"
#include "transport/tls_session_store.h"

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
// ngx_ssl_load_certificate: the first certificate of the file and the chain after it.
bool readCertificate(const std::string& path, X509Ptr& leaf, X509StackPtr& chain,
                     std::string& error) {
  const std::string what = "cannot load certificate \"" + path + "\": ";
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    error = sslError(what + "BIO_new_file() failed");
    return false;
  }
  leaf.reset(PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr));
  if (!leaf) {
    error = sslError(what + "PEM_read_bio_X509_AUX() failed");
    return false;
  }
  chain.reset(sk_X509_new_null());
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
  return true;
}

bool useCertificate(SSL_CTX* ctx, const std::string& path, std::string& error) {
  X509Ptr leaf;
  X509StackPtr chain;
  if (!readCertificate(path, leaf, chain, error)) return false;
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
int passwordCallback(char* buf, int size, int rwflag, void* userdata);

// ngx_ssl_load_certificate_key: each ssl_password_file passphrase in turn (none: an encrypted
// key fails rather than prompting on the terminal).
PkeyPtr readKey(const std::string& path, const std::vector<std::string>& passwords,
                std::string& error) {
  const std::string what = "cannot load certificate key \"" + path + "\": ";
  PkeyPtr key;
  size_t tries = passwords.empty() ? 1 : passwords.size();
  for (size_t i = 0; i < tries && !key; ++i) {
    BioPtr bio(BIO_new_file(path.c_str(), "r"));
    if (!bio) {
      error = sslError(what + "BIO_new_file() failed");
      return nullptr;
    }
    if (passwords.empty()) {
      key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, &noPassword, nullptr));
    } else {
      auto* password = const_cast<std::string*>(&passwords[i]);
      key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, &passwordCallback, password));
    }
    if (!key && i + 1 < tries) ERR_clear_error();
  }
  if (!key) error = sslError(what + "PEM_read_bio_PrivateKey() failed");
  return key;
}

bool useKey(SSL_CTX* ctx, const std::string& path, const std::vector<std::string>& passwords,
            std::string& error) {
  PkeyPtr key = readKey(path, passwords, error);
  if (!key) return false;
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

int contextIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int initialIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

uint64_t monotonicMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

// nginx's ngx_ssl_password_callback: the passphrase being tried (none: no passphrase, never a
// prompt on the terminal).
int passwordCallback(char* buf, int size, int rwflag, void* userdata) {
  (void)rwflag;
  const auto* password = static_cast<const std::string*>(userdata);
  if (!password) return 0;
  size_t n = std::min(password->size(), static_cast<size_t>(size));
  std::memcpy(buf, password->data(), n);
  return static_cast<int>(n);
}

std::string errnoText(int err) { return " (" + std::to_string(err) + ": " + std::strerror(err) + ")"; }

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
    // nginx would query the responder from the worker; portico has no OCSP client, so every
    // certificate's stapling is ignored, with nginx's reason when it has one.
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


bool readTicketKeyFile(const std::string& path, TicketKey& key, std::string& error) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    error = "open() \"" + path + "\" failed" + errnoText(errno);
    return false;
  }
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) {
    error = "fstat() \"" + path + "\" failed" + errnoText(errno);
    return false;
  }
  size_t size = static_cast<size_t>(st.st_size);
  if (size != 48 && size != 80) {
    error = "\"" + path + "\" must be 48 or 80 bytes";
    return false;
  }
  unsigned char buf[80];
  ssize_t n = ::pread(fd.get(), buf, size, 0);
  if (n < 0) {
    error = "pread() \"" + path + "\" failed" + errnoText(errno);
    return false;
  }
  if (static_cast<size_t>(n) != size) {
    error = "pread() \"" + path + "\" returned only " + std::to_string(n) + " bytes instead of " +
            std::to_string(size);
    return false;
  }
  key = TicketKey{};
  key.size = size;
  std::memcpy(key.name, buf, 16);
  if (size == 48) {
    std::memcpy(key.aesKey, buf + 16, 16);
    std::memcpy(key.hmacKey, buf + 32, 16);
  } else {
    std::memcpy(key.hmacKey, buf + 16, 32);
    std::memcpy(key.aesKey, buf + 48, 32);
  }
  OPENSSL_cleanse(buf, sizeof buf);
  return true;
}

bool randomTicketKey(TicketKey& key) {
  key = TicketKey{};
  key.size = 80;
  return RAND_bytes(key.name, 16) == 1 && RAND_priv_bytes(key.aesKey, 32) == 1 &&
         RAND_priv_bytes(key.hmacKey, 32) == 1;
}

bool readPasswordFile(const std::string& path, std::vector<std::string>& passwords,
                      std::string& error) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    error = "open() \"" + path + "\" failed" + errnoText(errno);
    return false;
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      error = "read() \"" + path + "\" failed" + errnoText(errno);
      return false;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  passwords.clear();
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) passwords.push_back(std::move(line));
    start = end + 1;
  }
  OPENSSL_cleanse(text.data(), text.size());
  // nginx: a file without a passphrase means one empty passphrase.
  if (passwords.empty()) passwords.emplace_back();
  return true;
}

const TlsContext* TlsContext::of(const SSL_CTX* ctx) {
  return ctx ? static_cast<const TlsContext*>(SSL_CTX_get_ex_data(ctx, contextIndex())) : nullptr;
}

void TlsContext::setInitial(SSL* ssl, const TlsContext* context) {
  SSL_set_ex_data(ssl, initialIndex(), const_cast<TlsContext*>(context));
}

const TlsContext* TlsContext::initialOf(const SSL* ssl) {
  const auto* context = static_cast<const TlsContext*>(SSL_get_ex_data(ssl, initialIndex()));
  return context ? context : of(SSL_get_SSL_CTX(ssl));
}

// ngx_ssl_new_session: the shared cache keeps the session under its ID.
int TlsContext::newSession(SSL* ssl, SSL_SESSION* session) {
  // OpenSSL offers TLS 1.3 sessions resumed by stateless tickets too; nginx keeps none of them.
  if (SSL_version(ssl) == TLS1_3_VERSION && (SSL_get_options(ssl) & SSL_OP_NO_TICKET) == 0) {
    return 0;
  }
  const TlsContext* context = initialOf(ssl);
  if (!context || !context->sharedCache_) return 0;
  int length = i2d_SSL_SESSION(session, nullptr);
  if (length <= 0 || static_cast<size_t>(length) > TlsSessionStore::kMaxSession) return 0;
  std::string bytes(static_cast<size_t>(length), '\0');
  auto* p = reinterpret_cast<unsigned char*>(bytes.data());
  i2d_SSL_SESSION(session, &p);
  unsigned int idLength = 0;
  const unsigned char* id = SSL_SESSION_get_id(session, &idLength);
  uint64_t now = monotonicMs();
  uint64_t expire = now + static_cast<uint64_t>(SSL_SESSION_get_timeout(session)) * 1000;
  context->sharedCache_->add(std::string_view(reinterpret_cast<const char*>(id), idLength), bytes,
                             expire, now);
  return 0;  // the session is not kept by reference
}

SSL_SESSION* TlsContext::getSession(SSL* ssl, const unsigned char* id, int length, int* copy) {
  *copy = 0;
  const TlsContext* context = initialOf(ssl);
  if (!context || !context->sharedCache_ || length <= 0) return nullptr;
  std::string bytes;
  if (!context->sharedCache_->find(
          std::string_view(reinterpret_cast<const char*>(id), static_cast<size_t>(length)),
          monotonicMs(), bytes)) {
    return nullptr;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  SSL_SESSION* session = d2i_SSL_SESSION(nullptr, &p, static_cast<long>(bytes.size()));
  if (!session) ERR_clear_error();
  return session;
}

void TlsContext::removeSession(SSL_CTX* ctx, SSL_SESSION* session) {
  const TlsContext* context = of(ctx);
  if (!context || !context->sharedCache_) return;
  unsigned int idLength = 0;
  const unsigned char* id = SSL_SESSION_get_id(session, &idLength);
  context->sharedCache_->remove(std::string_view(reinterpret_cast<const char*>(id), idLength));
}

// ngx_ssl_ticket_key_callback (1.22): the first key encrypts; a ticket made with another of the
// keys is accepted and renewed.
int TlsContext::ticketKey(SSL* ssl, unsigned char* name, unsigned char* iv,
                          EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int encrypt) {
  const TlsContext* context = initialOf(ssl);
  if (!context || context->ticketKeys_.empty()) return -1;
  const std::vector<TicketKey>& keys = context->ticketKeys_;
  size_t index = 0;
  if (encrypt != 1) {
    while (index < keys.size() && std::memcmp(name, keys[index].name, 16) != 0) ++index;
    if (index == keys.size()) return 0;  // not ours: a full handshake
  }
  const TicketKey& key = keys[index];
  const EVP_CIPHER* algorithm = key.size == 48 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
  size_t keyBytes = key.size == 48 ? 16 : 32;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
                                        const_cast<unsigned char*>(key.hmacKey), keyBytes),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  if (encrypt == 1) {
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(algorithm)) != 1) return -1;
    if (EVP_EncryptInit_ex(cipher, algorithm, nullptr, key.aesKey, iv) != 1) return -1;
    if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
    std::memcpy(name, key.name, 16);
    return 1;
  }
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  if (EVP_DecryptInit_ex(cipher, algorithm, nullptr, key.aesKey, iv) != 1) return -1;
  return index == 0 ? 1 : 2;
}

// ngx_ssl_session_id_context: SHA-1 over "HTTP", the certificates and the client CA names, so
// a session made by one server (or with other certificates) never resumes on another.
bool TlsContext::setSessionIdContext(const std::string& base, std::string& error) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  bool ok = md && EVP_DigestInit_ex(md.get(), EVP_sha1(), nullptr) == 1 &&
            EVP_DigestUpdate(md.get(), base.data(), base.size()) == 1;
  SSL_CTX* ctx = ctx_.get();
  for (int rc = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST); ok && rc == 1;
       rc = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT)) {
    X509* cert = SSL_CTX_get0_certificate(ctx);
    if (!cert) continue;
    ok = X509_digest(cert, EVP_sha1(), buf, &len) == 1 && EVP_DigestUpdate(md.get(), buf, len) == 1;
  }
  ERR_clear_error();
  if (STACK_OF(X509_NAME)* list = SSL_CTX_get_client_CA_list(ctx)) {
    for (int i = 0; ok && i < sk_X509_NAME_num(list); ++i) {
      ok = X509_NAME_digest(sk_X509_NAME_value(list, i), EVP_sha1(), buf, &len) == 1 &&
           EVP_DigestUpdate(md.get(), buf, len) == 1;
    }
  }
  ok = ok && EVP_DigestFinal_ex(md.get(), buf, &len) == 1 &&
       SSL_CTX_set_session_id_context(ctx, buf, len) == 1;
  if (!ok) error = "SSL_CTX_set_session_id_context() failed (" + takeSslErrors() + ")";
  return ok;
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
  if (settings.certificates.empty() && !settings.allowNoCertificate) {
    error = "no \"ssl_certificate\" is defined";
    return nullptr;
  }
  // Never OpenSSL's terminal prompt for an encrypted key: the ssl_password_file passphrases,
  // in order, or none.
  SSL_CTX_set_default_passwd_cb(ctx.get(), &passwordCallback);
  std::vector<Leaf> leaves;  // for ssl_stapling's checks, once the stores are filled
  for (const auto& [certificate, key] : settings.certificates) {
    if (!useCertificate(ctx.get(), certificate, error) ||
        !useKey(ctx.get(), key, settings.passwords, error)) {
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
  if (!settings.dhparam.empty()) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(settings.dhparam.c_str(), "r"),
                                                  &BIO_free);
    if (!bio) {
      error = "BIO_new_file(\"" + settings.dhparam + "\") failed (" + takeSslErrors() + ")";
      return nullptr;
    }
    EVP_PKEY* dh = PEM_read_bio_Parameters(bio.get(), nullptr);
    if (!dh) {
      error = "PEM_read_bio_Parameters(\"" + settings.dhparam + "\") failed (" +
              takeSslErrors() + ")";
      return nullptr;
    }
    if (SSL_CTX_set0_tmp_dh_pkey(ctx.get(), dh) != 1) {
      EVP_PKEY_free(dh);
      error = "SSL_CTX_set0_tmp_dh_pkey(\"" + settings.dhparam + "\") failed (" +
              takeSslErrors() + ")";
      return nullptr;
    }
  }
  // Only HTTP/1.x is spoken: ALPN selects it, and refuses a client that offers only others.
  SSL_CTX_set_alpn_select_cb(ctx.get(), &selectAlpn, nullptr);
  if (!setUpClientVerification(ctx.get(), settings, error)) return nullptr;
  std::unique_ptr<TlsContext> context(new TlsContext(std::move(ctx)));
  if (settings.stapling && !context->setUpStapling(settings, leaves, error)) return nullptr;
  SSL_CTX* raw = context->get();
  SSL_CTX_set_ex_data(raw, contextIndex(), context.get());
  context->bufferSize_ = settings.bufferSize;
  context->sharedCache_ = settings.sharedCache;
  if (!context->applySessions(settings, error)) return nullptr;
  if (settings.earlyData) {
    // ngx_ssl_early_data: NGX_SSL_BUFSIZE of early data per connection, and OpenSSL's
    // anti-replay off as nginx has it always (its ngx_ssl_create): otherwise OpenSSL would
    // issue stateful TLS 1.3 tickets, each resumable once, and only through a session cache.
    // A 0-RTT request can therefore be replayed; $ssl_early_data tells the application.
    constexpr uint32_t kMaxEarlyData = 16384;
    SSL_CTX_set_max_early_data(raw, kMaxEarlyData);
    SSL_CTX_set_recv_max_early_data(raw, kMaxEarlyData);
    SSL_CTX_set_options(raw, SSL_OP_NO_ANTI_REPLAY);
  }
  // ngx_ssl_conf_commands: last, so they may override anything above.
  if (!settings.confCommands.empty()) {
    std::unique_ptr<SSL_CONF_CTX, decltype(&SSL_CONF_CTX_free)> cctx(SSL_CONF_CTX_new(),
                                                                      &SSL_CONF_CTX_free);
    SSL_CONF_CTX_set_flags(cctx.get(), SSL_CONF_FLAG_FILE | SSL_CONF_FLAG_SERVER |
                                           SSL_CONF_FLAG_CLIENT | SSL_CONF_FLAG_CERTIFICATE |
                                           SSL_CONF_FLAG_SHOW_ERRORS);
    SSL_CONF_CTX_set_ssl_ctx(cctx.get(), raw);
    for (size_t i = 0; i < settings.confCommands.size(); ++i) {
      const std::string& name = settings.confCommands[i].first;
      std::string value = settings.confCommands[i].second;
      int type = SSL_CONF_cmd_value_type(cctx.get(), name.c_str());
      if ((type == SSL_CONF_TYPE_FILE || type == SSL_CONF_TYPE_DIR) &&
          i < settings.confCommandPaths.size()) {
        value = settings.confCommandPaths[i];
      }
      if (SSL_CONF_cmd(cctx.get(), name.c_str(), value.c_str()) <= 0) {
        error = "SSL_CONF_cmd(\"" + name + "\", \"" + value + "\") failed (" + takeSslErrors() +
                ")";
        return nullptr;
      }
    }
    if (SSL_CONF_CTX_finish(cctx.get()) != 1) {
      error = "SSL_CONF_finish() failed (" + takeSslErrors() + ")";
      return nullptr;
    }
  }
  return context;
}

// ngx_ssl_session_cache + the tickets: the session ID context, the cache mode, the shared
// cache's callbacks, the timeout, the ticket keys.
bool TlsContext::applySessions(const TlsSettings& settings, std::string& error) {
  SSL_CTX* ctx = ctx_.get();
  SSL_CTX_set_timeout(ctx, static_cast<long>(settings.sessionTimeout));
  if (!setSessionIdContext(settings.sessionIdContext, error)) return false;
  constexpr int64_t kOff = -2, kNone = -3, kNoBuiltin = -4, kBuiltinDefault = -5;
  if (!settings.sessionTickets) SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  if (settings.sessionTickets && !settings.ticketKeys.empty()) {
    ticketKeys_ = settings.ticketKeys;
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &TlsContext::ticketKey);
  }
  if (settings.builtinSessionCache == kOff) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return true;
  }
  if (settings.builtinSessionCache == kNone) {
    // nginx's "none": the server says it resumes sessions but keeps none (some clients fail
    // when told no), so only tickets resume.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_AUTO_CLEAR |
                                            SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_cache_size(ctx, 1);
    return true;
  }
  long mode = SSL_SESS_CACHE_SERVER;
  if (sharedCache_ && settings.builtinSessionCache == kNoBuiltin) mode |= SSL_SESS_CACHE_NO_INTERNAL;
  SSL_CTX_set_session_cache_mode(ctx, mode);
  if (settings.builtinSessionCache >= 0) {
    SSL_CTX_sess_set_cache_size(ctx, static_cast<long>(settings.builtinSessionCache));
  }
  (void)kBuiltinDefault;  // OpenSSL's default size (20480 sessions)
  if (sharedCache_) {
    SSL_CTX_sess_set_new_cb(ctx, &TlsContext::newSession);
    SSL_CTX_sess_set_get_cb(ctx, &TlsContext::getSession);
    SSL_CTX_sess_set_remove_cb(ctx, &TlsContext::removeSession);
  }
  return true;
}

bool loadCertificateAndKey(SSL_CTX* ctx, const std::string& certificate, const std::string& key,
                           const std::vector<std::string>& passwords, std::string& error) {
  SSL_CTX_set_default_passwd_cb(ctx, &passwordCallback);
  return useCertificate(ctx, certificate, error) && useKey(ctx, key, passwords, error);
}

bool useCertificateAndKey(SSL* ssl, const std::string& certificate, const std::string& key,
                          const std::vector<std::string>& passwords, std::string& error) {
  X509Ptr leaf;
  X509StackPtr chain;
  if (!readCertificate(certificate, leaf, chain, error)) return false;
  if (SSL_use_certificate(ssl, leaf.get()) != 1) {
    error = sslError("SSL_use_certificate(\"" + certificate + "\") failed");
    return false;
  }
  if (SSL_set0_chain(ssl, chain.get()) != 1) {
    error = sslError("SSL_set0_chain(\"" + certificate + "\") failed");
    return false;
  }
  chain.release();  // the connection owns it
  PkeyPtr pkey = readKey(key, passwords, error);
  if (!pkey) return false;
  if (SSL_use_PrivateKey(ssl, pkey.get()) != 1) {
    error = sslError("SSL_use_PrivateKey(\"" + key + "\") failed");
    return false;
  }
  return true;
}

bool loadTrustedCertificates(SSL_CTX* ctx, const std::string& path, std::string& error) {
  return loadCertificates(ctx, path, nullptr, error);
}

bool loadCrlFile(SSL_CTX* ctx, const std::string& path, std::string& error) {
  return loadCrls(ctx, path, error);
}

}  // namespace portico::transport
