#include "transport/tls_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

namespace portico::transport {
namespace {

// Small gathered buffers are written as one record (one SSL_write, one syscall).
constexpr size_t kRecordBytes = 16 * 1024;
// Sessions kept per context: one per peer; a context that meets more peers starts over.
constexpr size_t kMaxSessions = 1024;

// The SSL ex_data slot that holds the connection's transport (for the new-session callback).
int transportIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// nginx's ngx_ssl_error tail: " (SSL: error:... error:...:data)", the queue emptied.
std::string sslErrors() {
  if (ERR_peek_error() == 0) return "";
  std::string out = " (SSL:";
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

// nginx's proxy_ssl_protocols words (TLSv1 ... TLSv1.3) as a version range.
bool protocolRange(const std::string& words, int& min, int& max) {
  static const std::pair<const char*, int> kVersions[] = {
      {"TLSv1", TLS1_VERSION}, {"TLSv1.1", TLS1_1_VERSION},
      {"TLSv1.2", TLS1_2_VERSION}, {"TLSv1.3", TLS1_3_VERSION}};
  min = max = 0;
  std::istringstream in(words);
  std::string word;
  while (in >> word) {
    for (const auto& [name, value] : kVersions) {
      if (word != name) continue;
      if (min == 0 || value < min) min = value;
      if (value > max) max = value;
    }
  }
  return min != 0;
}

// nginx's ngx_ssl_verify_callback: the chain is verified during the handshake, which finishes
// whatever the outcome; the engine then reads SSL_get_verify_result and logs nginx's line.
int acceptAnyCertificate(int, X509_STORE_CTX*) { return 1; }

}  // namespace

std::shared_ptr<TlsClientContext> TlsClientContext::create(const TlsClientSettings& settings,
                                                           std::string& error) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) {
    error = "SSL_CTX_new() failed" + sslErrors();
    return nullptr;
  }
  SSL_CTX* raw = ctx.get();
  int min = 0, max = 0;
  if (protocolRange(settings.protocols, min, max)) {
    SSL_CTX_set_min_proto_version(raw, min);
    SSL_CTX_set_max_proto_version(raw, max);
  }
  SSL_CTX_set_mode(raw, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
  SSL_CTX_set_read_ahead(raw, 1);
  // As nginx's ngx_ssl_create (1.22): an upstream that closes without close_notify ends its
  // stream as a close does (the response's framing then says whether it was complete).
  SSL_CTX_set_options(raw, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (SSL_CTX_set_cipher_list(raw, settings.ciphers.c_str()) != 1) {
    error = "SSL_CTX_set_cipher_list(\"" + settings.ciphers + "\") failed" + sslErrors();
    return nullptr;
  }
  if (!settings.certificate.empty() &&
      !loadCertificateAndKey(raw, settings.certificate, settings.certificateKey,
                             settings.passwords, error)) {
    return nullptr;
  }
  if (settings.verify) {
    SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, &acceptAnyCertificate);
    SSL_CTX_set_verify_depth(raw, settings.verifyDepth);
    if (!settings.trustedCertificate.empty() &&
        !loadTrustedCertificates(raw, settings.trustedCertificate, error)) {
      return nullptr;
    }
    if (!settings.crl.empty() && !loadCrlFile(raw, settings.crl, error)) return nullptr;
  }
  // ngx_ssl_client_session_cache: sessions are kept by the engine per peer, not by OpenSSL.
  SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
  SSL_CTX_sess_set_new_cb(raw, &TlsClientTransport::onNewSession);
  // ngx_ssl_conf_commands: last, so they may override anything above.
  if (!settings.confCommands.empty()) {
    std::unique_ptr<SSL_CONF_CTX, decltype(&SSL_CONF_CTX_free)> cctx(SSL_CONF_CTX_new(),
                                                                      &SSL_CONF_CTX_free);
    SSL_CONF_CTX_set_flags(cctx.get(), SSL_CONF_FLAG_FILE | SSL_CONF_FLAG_CLIENT |
                                           SSL_CONF_FLAG_CERTIFICATE | SSL_CONF_FLAG_SHOW_ERRORS);
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
        error = "SSL_CONF_cmd(\"" + name + "\", \"" + value + "\") failed" + sslErrors();
        return nullptr;
      }
    }
    if (SSL_CONF_CTX_finish(cctx.get()) != 1) {
      error = "SSL_CONF_finish() failed" + sslErrors();
      return nullptr;
    }
  }
  std::shared_ptr<TlsClientContext> context(new TlsClientContext(std::move(ctx)));
  context->verify_ = settings.verify;
  context->sessionReuse_ = settings.sessionReuse;
  return context;
}

SslSessionPtr TlsClientContext::session(const std::string& peer) const {
  auto it = sessions_.find(peer);
  if (it == sessions_.end()) return nullptr;
  const auto* der = reinterpret_cast<const unsigned char*>(it->second.data());
  return SslSessionPtr(d2i_SSL_SESSION(nullptr, &der, static_cast<long>(it->second.size())));
}

void TlsClientContext::saveSession(const std::string& peer, SSL_SESSION* session) {
  // Kept serialized, as nginx's round-robin peer keeps it: each connection resumes from its
  // own copy, so what OpenSSL changes in a session it resumed (TLS 1.3) never reaches the
  // next connection's offer.
  int length = i2d_SSL_SESSION(session, nullptr);
  if (length <= 0 || length > 16384) return;
  std::string der(static_cast<size_t>(length), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  i2d_SSL_SESSION(session, &out);
  if (sessions_.size() >= kMaxSessions && !sessions_.count(peer)) sessions_.clear();
  sessions_[peer] = std::move(der);
}

int TlsClientTransport::onNewSession(SSL* ssl, SSL_SESSION* session) {
  // ngx_ssl_new_client_session → ngx_http_upstream_save_round_robin_peer_session: the last
  // session the peer gave (a TLS 1.3 ticket arrives after the handshake) replaces the one
  // before. Returning 1 keeps the reference OpenSSL passed.
  auto* transport = static_cast<TlsClientTransport*>(SSL_get_ex_data(ssl, transportIndex()));
  if (transport && transport->context_->sessionReuse() && SSL_SESSION_is_resumable(session)) {
    transport->context_->saveSession(transport->peer_, session);
  }
  return 0;  // OpenSSL keeps (and frees) its reference
}

TlsClientTransport::~TlsClientTransport() { close(); }

void TlsClientTransport::start() {
  if (tcp_) {
    int one = 1;
    ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
}

bool TlsClientTransport::begin(const std::string& serverName, std::string& error) {
  ssl_.reset(SSL_new(context_->get()));
  if (!ssl_ || SSL_set_fd(ssl_.get(), fd_.get()) != 1) {
    error = "SSL_new() failed" + sslErrors();
    ssl_.reset();
    return false;
  }
  SSL_set_ex_data(ssl_.get(), transportIndex(), this);
  if (!serverName.empty() && SSL_set_tlsext_host_name(ssl_.get(), serverName.c_str()) != 1) {
    error = "SSL_set_tlsext_host_name(\"" + serverName + "\") failed" + sslErrors();
    return false;
  }
  if (context_->sessionReuse()) {
    if (SslSessionPtr saved = context_->session(peer_)) {
      if (SSL_set_session(ssl_.get(), saved.get()) != 1) ERR_clear_error();  // a full handshake
    }
  }
  SSL_set_connect_state(ssl_.get());
  return true;
}

IoResult TlsClientTransport::failure(int rc, bool handshaking) {
  int savedErrno = errno;
  int code = SSL_get_error(ssl_.get(), rc);
  switch (code) {
    case SSL_ERROR_WANT_READ:
      return {IoStatus::kWantRead, 0, 0};
    case SSL_ERROR_WANT_WRITE:
      return {IoStatus::kWantWrite, 0, 0};
    case SSL_ERROR_ZERO_RETURN:
      if (handshaking) error_ = "peer closed connection in SSL handshake";
      return {handshaking ? IoStatus::kError : IoStatus::kEof, 0, handshaking ? ECONNRESET : 0};
    case SSL_ERROR_SYSCALL:
      ERR_clear_error();
      if (savedErrno == EINTR) return {IoStatus::kInterrupted, 0, savedErrno};
      if (savedErrno == EAGAIN) return {IoStatus::kWouldBlock, 0, savedErrno};
      if (handshaking) {
        // ngx_ssl_handshake: an EOF in the handshake is the peer closing, not an errno.
        error_ = savedErrno == 0 ? "peer closed connection in SSL handshake"
                                 : "SSL_do_handshake() failed (" + std::to_string(savedErrno) +
                                       ": " + std::strerror(savedErrno) + ")";
      }
      if (!handshaking && savedErrno == 0) return {IoStatus::kEof, 0, 0};
      return {IoStatus::kError, 0, savedErrno ? savedErrno : ECONNRESET};
    default:
      if (handshaking) {
        error_ = "SSL_do_handshake() failed" + sslErrors();
      } else {
        error_ = sslErrors();
      }
      ERR_clear_error();
      return {IoStatus::kError, 0, EPROTO};
  }
}

IoResult TlsClientTransport::handshake() {
  if (!ssl_) return {IoStatus::kError, 0, ENOMEM};
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_.get());
  if (rc == 1) return {IoStatus::kDone, 0, 0};
  return failure(rc, true);
}

IoResult TlsClientTransport::read(char* dst, size_t size) {
  if (!ssl_) return {IoStatus::kError, 0, ENOMEM};
  size_t total = 0;
  while (total < size) {
    size_t n = 0;
    int rc = SSL_read_ex(ssl_.get(), dst + total, size - total, &n);
    if (rc == 1) {
      total += n;
      continue;
    }
    if (total == 0) return failure(rc, false);
    ERR_clear_error();  // what stopped the reads shows again at the next call
    break;
  }
  return {IoStatus::kDone, total, 0};
}

size_t TlsClientTransport::pendingRead() const {
  if (!ssl_) return 0;
  size_t n = static_cast<size_t>(SSL_pending(ssl_.get()));
  return n > 0 ? n : (SSL_has_pending(ssl_.get()) ? 1 : 0);
}

IoResult TlsClientTransport::writev(const iovec* iov, int count, bool more) {
  (void)more;
  if (!ssl_) return {IoStatus::kError, 0, ENOMEM};
  if (count <= 0) return {IoStatus::kDone, 0, 0};
  // Small buffers gathered into one record; a repeated write passes the same bytes again
  // (the caller's queue still starts with them).
  const char* data = static_cast<const char*>(iov[0].iov_base);
  size_t length = iov[0].iov_len;
  size_t want = pendingWrite_;
  if (want == 0 && length >= kRecordBytes) {
    want = length;  // large enough as it is: OpenSSL cuts it into records
  } else if (want == 0) {
    for (int i = 0; i < count && want < kRecordBytes; ++i) want += iov[i].iov_len;
    want = std::min(want, kRecordBytes);
  }
  if (want > length) {
    gather_.clear();
    for (int i = 0; i < count && gather_.size() < want; ++i) {
      size_t take = std::min(iov[i].iov_len, want - gather_.size());
      gather_.append(static_cast<const char*>(iov[i].iov_base), take);
    }
    want = gather_.size();
    data = gather_.data();
  }
  if (want == 0) return {IoStatus::kDone, 0, 0};
  size_t written = 0;
  ERR_clear_error();
  int rc = SSL_write_ex(ssl_.get(), data, want, &written);
  if (rc == 1) {
    pendingWrite_ = 0;
    return {IoStatus::kDone, written, 0};
  }
  IoResult result = failure(rc, false);
  if (result.status == IoStatus::kWantRead || result.status == IoStatus::kWantWrite) {
    pendingWrite_ = want;
  }
  if (result.status == IoStatus::kEof) result = {IoStatus::kError, 0, EPIPE};
  return result;
}

void TlsClientTransport::closeNotify() {
  // ngx_ssl_shutdown: one close_notify, the peer's not waited for.
  if (closeNotifySent_ || !handshakeDone()) return;
  closeNotifySent_ = true;
  SSL_shutdown(ssl_.get());
  ERR_clear_error();
}

void TlsClientTransport::shutdownWrite() {
  closeNotify();
  ::shutdown(fd_.get(), SHUT_WR);
}

void TlsClientTransport::close() {
  if (ssl_ && fd_) closeNotify();  // a connection closed on purpose says so (nginx does)
  ssl_.reset();
  fd_.reset();
}

}  // namespace portico::transport
