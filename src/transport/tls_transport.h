#pragma once

#include <string>

#include "core/unique_fd.h"
#include "transport/tls_context.h"
#include "transport/transport.h"

namespace portico::transport {

// TLS over a TCP or unix socket with OpenSSL: the server side of one connection. The handshake
// runs inside the first read()/writev() calls as the session retries them on readiness
// (kWantRead/kWantWrite), so it never blocks the loop. Owned by the connection; event-loop
// thread only. The context it was made from must outlive it.
class TlsTransport final : public Transport {
 public:
  // `tag`: what the context's callbacks need to know of this connection (the SNI callback: the
  // server group of the address it arrived on); see tagOf.
  TlsTransport(UniqueFd fd, bool tcp, const TlsContext& context, const void* tag = nullptr)
      : fd_(std::move(fd)), tcp_(tcp), context_(context), tag_(tag) {}
  // A handshake begun and never finished counts as a failed one in the metrics.
  ~TlsTransport() override;

  int fd() const override { return fd_.get(); }
  void start() override;
  IoResult read(char* dst, size_t size) override;
  size_t pendingRead() const override;
  IoResult writev(const iovec* iov, int count, bool more) override;
  // With kernel TLS sending (the context asked for it, the kernel and the cipher allowed it)
  // files leave with SSL_sendfile; otherwise the session reads them itself (pread) and writes
  // them through SSL_write.
  bool canSendFile() const override;
  IoResult sendFile(int fileFd, uint64_t offset, size_t count) override;
  size_t unsentBytes() const override;
  size_t untransmittedBytes() const override;
  void closeNotify() override;
  void shutdownWrite() override;
  void close() override;
  // The TLS state lives in this process.
  bool canHandOff() const override { return false; }

  // The tag of the transport `ssl` belongs to (null when none), for OpenSSL callbacks.
  static const void* tagOf(const SSL* ssl);

  bool plainOnTls() const override { return plain_; }
  const ssl_st* tlsSession() const override { return ssl_.get(); }

  // Null before start().
  SSL* ssl() const { return ssl_.get(); }
  bool handshakeDone() const { return ssl_ && SSL_is_init_finished(ssl_.get()); }

 private:
  IoResult failure(int rc);
  // Counts the handshake in the metrics once it is done (after a read).
  void noteHandshake() {
    if (!counted_ && handshakeDone()) countHandshake();
  }
  void countHandshake();
  IoResult readEarly(char* dst, size_t size, bool& finished);
  void cork(bool on);

  UniqueFd fd_;
  bool tcp_;
  const TlsContext& context_;
  const void* tag_;
  SslPtr ssl_;
  // A write that OpenSSL asked to repeat must be repeated with the same bytes: how many.
  size_t pendingWrite_ = 0;
  std::string gather_;  // small gathered buffers, written as one record
  bool sniffed_ = false;  // the first byte was looked at
  bool closeNotifySent_ = false;
  bool plain_ = false;    // ... and it was not a handshake's: plain HTTP, carried as it is
  bool counted_ = false;  // the handshake is in the metrics
  bool corked_ = false;   // TCP_CORK set while a response's file data is being written
  // TLS 1.3 early data (ssl_early_data on): kTry until the first SSL_read_early_data says
  // whether the client sent any, kReading while it is being read (OpenSSL then allows only
  // SSL_read_early_data and SSL_write_early_data), kNone once that is over or never was.
  enum class Early : unsigned char { kNone, kTry, kReading };
  Early early_ = Early::kNone;
};

}  // namespace portico::transport
