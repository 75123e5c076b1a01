#include "transport/tls_context.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
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
  // No renegotiation (OpenSSL 3 refuses a client's by default; nginx refuses it too), and an
  // EOF without close_notify ends the stream as close_notify does (gunicorn's
  // --suppress-ragged-eofs default).
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                     SSL_OP_IGNORE_UNEXPECTED_EOF);
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
  for (const auto& [certificate, key] : settings.certificates) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), certificate.c_str()) != 1) {
      error = "cannot load certificate \"" + certificate + "\": " + takeSslErrors();
      return nullptr;
    }
    bool loaded = false;
    for (size_t tries = 0; !loaded; ++tries) {
      const std::string* password =
          tries < settings.passwords.size() ? &settings.passwords[tries] : nullptr;
      SSL_CTX_set_default_passwd_cb_userdata(ctx.get(), const_cast<std::string*>(password));
      loaded = SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) == 1;
      if (!loaded && tries + 1 < settings.passwords.size()) {
        ERR_clear_error();
        continue;
      }
      if (!loaded) {
        error = "cannot load certificate key \"" + key + "\": " + takeSslErrors();
        SSL_CTX_set_default_passwd_cb_userdata(ctx.get(), nullptr);
        return nullptr;
      }
    }
    SSL_CTX_set_default_passwd_cb_userdata(ctx.get(), nullptr);
    if (SSL_CTX_check_private_key(ctx.get()) != 1) {
      error = "certificate \"" + certificate + "\" and key \"" + key + "\" do not match: " +
              takeSslErrors();
      return nullptr;
    }
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
  std::unique_ptr<TlsContext> context(new TlsContext(std::move(ctx)));
  SSL_CTX* raw = context->get();
  SSL_CTX_set_ex_data(raw, contextIndex(), context.get());
  context->bufferSize_ = settings.bufferSize;
  context->sharedCache_ = settings.sharedCache;
  if (!context->applySessions(settings, error)) return nullptr;
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

}  // namespace portico::transport
