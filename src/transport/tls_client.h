#pragma once

// The client side of TLS, for connections portico makes to upstreams (proxy_pass https://):
// a client SSL_CTX made from a location's proxy_ssl_* settings, with the last session of each
// peer kept for proxy_ssl_session_reuse, and the transport that runs one connection's
// handshake (non-blocking, driven by the caller on readiness) and then its records.

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/unique_fd.h"
#include "transport/tls_context.h"
#include "transport/transport.h"

namespace portico::transport {

// What one client context is made of (nginx's proxy_ssl_*): paths are absolute.
struct TlsClientSettings {
  std::string protocols = "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3";
  std::string ciphers = "DEFAULT";
  bool verify = false;
  int verifyDepth = 1;
  std::string trustedCertificate, crl;
  std::string certificate, certificateKey;  // a client certificate ("" none)
  std::vector<std::string> passwords;       // for an encrypted key, tried in order
  bool sessionReuse = true;
  std::vector<std::pair<std::string, std::string>> confCommands;
  std::vector<std::string> confCommandPaths;
};

struct SslSessionFree {
  void operator()(SSL_SESSION* session) const { SSL_SESSION_free(session); }
};
using SslSessionPtr = std::unique_ptr<SSL_SESSION, SslSessionFree>;

// A client SSL_CTX and the sessions saved per peer. Shared (shared_ptr) by the location's
// handler that made it and every TlsClientTransport made from it, so a pooled connection that
// outlives its handler still has its context; event-loop thread only.
class TlsClientContext {
 public:
  // Null with `error` set (nginx's wording: the file and OpenSSL's reason).
  static std::shared_ptr<TlsClientContext> create(const TlsClientSettings& settings,
                                                  std::string& error);

  SSL_CTX* get() const { return ctx_.get(); }
  bool verify() const { return verify_; }
  bool sessionReuse() const { return sessionReuse_; }
  // A copy of the last session a connection to `peer` got (null: none).
  SslSessionPtr session(const std::string& peer) const;
  // Keeps a copy of `session` as `peer`'s, replacing the one before.
  void saveSession(const std::string& peer, SSL_SESSION* session);

 private:
  explicit TlsClientContext(SslCtxPtr ctx) : ctx_(std::move(ctx)) {}
  SslCtxPtr ctx_;
  bool verify_ = false;
  bool sessionReuse_ = true;
  // One session per peer address (as nginx keeps one in each round-robin peer); bounded.
  std::map<std::string, std::string> sessions_;  // DER (i2d_SSL_SESSION)
};

// TLS over a TCP or unix socket to an upstream: SSL_set_connect_state, the handshake run by
// handshake() on readiness (kWantRead/kWantWrite), then reads and writes through OpenSSL, a
// close_notify before a graceful close. Owned by the proxied request (or, idle, by the
// keep-alive pool); event-loop thread only.
class TlsClientTransport final : public Transport {
 public:
  // `peer`: the key its session is saved under (the peer's address text).
  TlsClientTransport(UniqueFd fd, bool tcp, std::shared_ptr<TlsClientContext> context,
                     std::string peer)
      : fd_(std::move(fd)), tcp_(tcp), context_(std::move(context)), peer_(std::move(peer)) {}
  ~TlsClientTransport() override;

  int fd() const override { return fd_.get(); }
  void start() override;
  // Makes the connection's SSL: `serverName` sent as SNI ("" none), the peer's saved session
  // offered when session reuse is on. False (with `error`) when OpenSSL cannot.
  bool begin(const std::string& serverName, std::string& error);
  // One step of the handshake: kDone once finished, kWantRead/kWantWrite to wait, kError with
  // handshakeError() (nginx's text, without " while ...").
  IoResult handshake();
  const std::string& handshakeError() const { return error_; }
  // After a read or write's kError with EPROTO: OpenSSL's reasons (" (SSL: ...)").
  const std::string& lastError() const { return error_; }
  bool handshakeDone() const { return ssl_ && SSL_is_init_finished(ssl_.get()); }
  bool sessionReused() const { return ssl_ && SSL_session_reused(ssl_.get()) == 1; }

  IoResult read(char* dst, size_t size) override;
  size_t pendingRead() const override;
  IoResult writev(const iovec* iov, int count, bool more) override;
  bool canSendFile() const override { return false; }
  void closeNotify() override;
  void shutdownWrite() override;
  void close() override;
  bool canHandOff() const override { return false; }
  const ssl_st* tlsSession() const override { return ssl_.get(); }
  SSL* ssl() const { return ssl_.get(); }

 private:
  IoResult failure(int rc, bool handshaking);
  static int onNewSession(SSL* ssl, SSL_SESSION* session);
  friend class TlsClientContext;

  UniqueFd fd_;
  bool tcp_;
  std::shared_ptr<TlsClientContext> context_;
  std::string peer_;
  SslPtr ssl_;
  size_t pendingWrite_ = 0;  // a write OpenSSL asked to repeat: its length
  std::string gather_;       // small gathered buffers, written as one record
  bool closeNotifySent_ = false;
  std::string error_;
};

}  // namespace portico::transport
