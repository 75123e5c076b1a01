#include "transport/tls_transport.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "core/request_metrics.h"
#include "transport/socket_queue.h"

namespace portico::transport {

namespace {

// Buffers smaller than this are gathered into one SSL_write (one record, one syscall) rather
// than written one record each.
constexpr size_t kGatherBytes = 16 * 1024;

// The SSL ex_data slot that holds a transport's tag.
int tagIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

}  // namespace

const void* TlsTransport::tagOf(const SSL* ssl) { return SSL_get_ex_data(ssl, tagIndex()); }

void TlsTransport::start() {
  if (tcp_) {
    int one = 1;
    ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ssl_.reset(SSL_new(context_.get()));
  if (ssl_) {
    SSL_set_fd(ssl_.get(), fd_.get());
    SSL_set_ex_data(ssl_.get(), tagIndex(), const_cast<void*>(tag_));
    TlsContext::setInitial(ssl_.get(), &context_);
    SSL_set_accept_state(ssl_.get());
    // As nginx: the address's default server decides (an SNI switch later does not change it).
    if (SSL_get_max_early_data(ssl_.get()) > 0) early_ = Early::kTry;
  }
}

IoResult TlsTransport::failure(int rc) {
  int savedErrno = errno;
  int code = SSL_get_error(ssl_.get(), rc);
  switch (code) {
    case SSL_ERROR_WANT_READ:
      return {IoStatus::kWantRead, 0, 0};
    case SSL_ERROR_WANT_WRITE:
      return {IoStatus::kWantWrite, 0, 0};
    case SSL_ERROR_ZERO_RETURN:
      return {IoStatus::kEof, 0, 0};  // close_notify (or a ragged EOF, as gunicorn suppresses)
    case SSL_ERROR_SYSCALL:
      ERR_clear_error();
      if (savedErrno == EINTR) return {IoStatus::kInterrupted, 0, savedErrno};
      if (savedErrno == EAGAIN) return {IoStatus::kWouldBlock, 0, savedErrno};
      return {IoStatus::kError, 0, savedErrno ? savedErrno : ECONNRESET};
    default:
      // A protocol error (garbage, a plain HTTP request, no shared cipher): the queue is
      // this connection's only; emptied so it never shows on another.
      ERR_clear_error();
      return {IoStatus::kError, 0, EPROTO};
  }
}

TlsTransport::~TlsTransport() {
  if (ssl_ && sniffed_ && !plain_ && !counted_) recordTlsHandshake(false, false);
}

void TlsTransport::countHandshake() {
  counted_ = true;
  recordTlsHandshake(true, SSL_session_reused(ssl_.get()) == 1);
}

IoResult TlsTransport::read(char* dst, size_t size) {
  if (!ssl_) return {IoStatus::kError, 0, ENOMEM};
  if (!sniffed_) {
    // nginx's ngx_http_ssl_handshake: a TLS record starts with 0x16 (a handshake), an SSLv2
    // hello with its high bit set; anything else is a plain HTTP request to an HTTPS port,
    // answered in plain HTTP (497 → 400).
    unsigned char first = 0;
    ssize_t n = ::recv(fd_.get(), &first, 1, MSG_PEEK);
    if (n == 0) return {IoStatus::kEof, 0, 0};
    if (n < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return {IoStatus::kWouldBlock, 0, err};
      if (err == EINTR) return {IoStatus::kInterrupted, 0, err};
      return {IoStatus::kError, 0, err};
    }
    sniffed_ = true;
    plain_ = first != 0x16 && (first & 0x80) == 0;
  }
  if (plain_) {
    ssize_t n = ::recv(fd_.get(), dst, size, 0);
    if (n > 0) return {IoStatus::kDone, static_cast<size_t>(n), 0};
    if (n == 0) return {IoStatus::kEof, 0, 0};
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return {IoStatus::kWouldBlock, 0, err};
    if (err == EINTR) return {IoStatus::kInterrupted, 0, err};
    return {IoStatus::kError, 0, err};
  }
  if (early_ != Early::kNone) {
    bool finished = false;
    IoResult result = readEarly(dst, size, finished);
    // With no early data left (or none sent), the reads below finish the handshake.
    if (!finished) return result;
  }
  // One SSL_read returns one record's bytes at most, so it reads on until `size` is filled or
  // OpenSSL stops: the session takes a short read for a drained socket (edge-triggered epoll
  // reports nothing new for records already queued), as a short recv() is.
  size_t total = 0;
  while (total < size) {
    size_t n = 0;
    int rc = SSL_read_ex(ssl_.get(), dst + total, size - total, &n);
    if (rc == 1) {
      total += n;
      continue;
    }
    if (total == 0) {
      noteHandshake();
      return failure(rc);
    }
    // Bytes were read: they go now; whatever stopped the reads (a wait, the end, an error)
    // shows again at the next call.
    ERR_clear_error();
    break;
  }
  noteHandshake();
  return {IoStatus::kDone, total, 0};
}

// ngx_ssl_try_early_data and ngx_ssl_recv_early: the first call runs the handshake up to the
// server's Finished and reads the client's 0-RTT data, if it sent any and it was accepted;
// the bytes go to the session as any read's. `finished`: the early data is over (the client's
// EndOfEarlyData, or none was accepted). Unlike nginx's loop, one call returns one record of
// early data: the SSL_read_early_data that meets EndOfEarlyData also reads the client's
// Finished if it is there, ending the handshake, so the request the record carried is handled
// first, while $ssl_early_data is "1", whenever the client's second flight came. pendingRead
// asks the session for the next read.
IoResult TlsTransport::readEarly(char* dst, size_t size, bool& finished) {
  // nginx's write_blocked: an early write OpenSSL asked to repeat goes first.
  if (early_ == Early::kReading && pendingWrite_ > 0) return {IoStatus::kWantWrite, 0, 0};
  size_t n = 0;
  int rc = SSL_read_early_data(ssl_.get(), dst, size, &n);
  if (rc == SSL_READ_EARLY_DATA_SUCCESS) {
    early_ = Early::kReading;
    return {IoStatus::kDone, n, 0};
  }
  if (rc == SSL_READ_EARLY_DATA_FINISH) {
    early_ = Early::kNone;
    finished = true;
    return {IoStatus::kDone, 0, 0};
  }
  return failure(rc);
}

size_t TlsTransport::pendingRead() const {
  if (!ssl_) return 0;
  // After a record of early data: more of it, or its end, may already be in OpenSSL's buffer
  // or the socket (readEarly stops at one record); the next read says which.
  if (early_ == Early::kReading) return 1;
  // SSL_pending counts the decrypted bytes of the current record only; records read ahead
  // (read_ahead) and not yet decrypted wait in OpenSSL's buffer, seen by SSL_has_pending.
  size_t n = static_cast<size_t>(SSL_pending(ssl_.get()));
  return n > 0 ? n : (SSL_has_pending(ssl_.get()) ? 1 : 0);
}

// Holds the socket's partial segments back (TCP_CORK) or lets them go.
void TlsTransport::cork(bool on) {
  if (corked_ == on || !tcp_) return;
  int value = on ? 1 : 0;
  ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_CORK, &value, sizeof value);
  corked_ = on;
}

IoResult TlsTransport::writev(const iovec* iov, int count, bool more) {
  if (!ssl_) return {IoStatus::kError, 0, ENOMEM};
  if (count <= 0) return {IoStatus::kDone, 0, 0};
  if (plain_) {
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = static_cast<size_t>(count);
    ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    if (n >= 0) return {IoStatus::kDone, static_cast<size_t>(n), 0};
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return {IoStatus::kWouldBlock, 0, err};
    if (err == EINTR) return {IoStatus::kInterrupted, 0, err};
    return {IoStatus::kError, 0, err};
  }
  // A large first buffer is written from where it is; small ones are gathered into one record.
  // A repeated write (pendingWrite_) passes exactly the bytes of the first attempt, which are
  // still at the head of the session's queue.
  // ssl_buffer_size (of the server SNI chose) is the largest record written: nginx buffers at
  // most that much before SSL_write.
  const TlsContext* current = TlsContext::of(SSL_get_SSL_CTX(ssl_.get()));
  const size_t record = std::max<size_t>(1, current ? current->bufferSize() : kGatherBytes);
  const char* data = static_cast<const char*>(iov[0].iov_base);
  size_t length = iov[0].iov_len;
  size_t want = pendingWrite_;
  if (want == 0 && length < record && count > 1) {
    want = 0;
    for (int i = 0; i < count && want < record; ++i) want += iov[i].iov_len;
    want = std::min(want, record);
  } else if (want == 0) {
    want = std::min(length, record);
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
  // OpenSSL writes each 16 KiB record with its own write(2). While more of a response follows
  // at once (file data), the socket is corked so the records leave in full-sized segments
  // rather than one segment each (on loopback each segment is also received in the sender's
  // context); the last write of the response uncorks and the tail leaves at once.
  if (more) cork(true);
  size_t written = 0;
  // A write before any read runs the handshake itself: SSL_read_early_data is then too late.
  if (early_ == Early::kTry) early_ = Early::kNone;
  // While early data is being read OpenSSL allows no SSL_write: a response to a request that
  // came in it leaves as 0.5-RTT data (nginx's ngx_ssl_write_early).
  int rc = early_ == Early::kReading ? SSL_write_early_data(ssl_.get(), data, want, &written)
                                     : SSL_write_ex(ssl_.get(), data, want, &written);
  if (rc == 1) {
    pendingWrite_ = 0;
    if (!more && written == want) cork(false);
    return {IoStatus::kDone, written, 0};
  }
  IoResult result = failure(rc);
  if (result.status == IoStatus::kWantRead || result.status == IoStatus::kWantWrite) {
    pendingWrite_ = want;
  }
  return result;
}

bool TlsTransport::canSendFile() const {
  // Only after the handshake (the keys reach the kernel then) and never with a write OpenSSL
  // still has to repeat: its bytes must leave first, through SSL_write.
  return ssl_ && !plain_ && pendingWrite_ == 0 && SSL_is_init_finished(ssl_.get()) &&
         BIO_get_ktls_send(SSL_get_wbio(ssl_.get()));
}

IoResult TlsTransport::sendFile(int fileFd, uint64_t offset, size_t count) {
  if (!canSendFile()) return {IoStatus::kError, 0, EOPNOTSUPP};
  // The kernel frames and encrypts the file's pages as records (sendfile(2) on the kTLS
  // socket); 0 at the file's end, as sendfile.
  ossl_ssize_t n = SSL_sendfile(ssl_.get(), fileFd, static_cast<off_t>(offset), count, 0);
  if (n >= 0) return {IoStatus::kDone, static_cast<size_t>(n), 0};
  int err = errno;
  ERR_clear_error();
  if (err == EAGAIN || err == EWOULDBLOCK || err == EBUSY) return {IoStatus::kWouldBlock, 0, err};
  if (err == EINTR) return {IoStatus::kInterrupted, 0, err};
  return {IoStatus::kError, 0, err ? err : EIO};
}

size_t TlsTransport::unsentBytes() const { return tcp_ ? socketUnsentBytes(fd_.get()) : 0; }

size_t TlsTransport::untransmittedBytes() const {
  return tcp_ ? socketUntransmittedBytes(fd_.get()) : 0;
}

void TlsTransport::closeNotify() {
  // close_notify, once: the client learns the response ended here, not by a cut. A second
  // SSL_shutdown would wait for (read) the client's, which nginx does not either.
  if (closeNotifySent_ || !handshakeDone()) return;
  closeNotifySent_ = true;
  SSL_shutdown(ssl_.get());
  ERR_clear_error();
}

void TlsTransport::shutdownWrite() {
  closeNotify();
  ::shutdown(fd_.get(), SHUT_WR);
}

void TlsTransport::close() {
  ssl_.reset();
  fd_.reset();
}

}  // namespace portico::transport
