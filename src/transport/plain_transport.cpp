#include "transport/plain_transport.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <cerrno>

#include "transport/socket_queue.h"

namespace portico::transport {

namespace {

// The result of a failed syscall, from errno.
IoResult failure() {
  int err = errno;
  if (err == EAGAIN || err == EWOULDBLOCK) return {IoStatus::kWouldBlock, 0, err};
  if (err == EINTR) return {IoStatus::kInterrupted, 0, err};
  return {IoStatus::kError, 0, err};
}

}  // namespace

void PlainTransport::start() {
  if (tcp_) {
    // Responses are written whole, so Nagle only adds latency (nginx's tcp_nodelay on).
    int one = 1;
    ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
}

IoResult PlainTransport::read(char* dst, size_t size) {
  ssize_t n = ::recv(fd_.get(), dst, size, 0);
  if (n > 0) return {IoStatus::kDone, static_cast<size_t>(n), 0};
  if (n == 0) return {IoStatus::kEof, 0, 0};
  return failure();
}

IoResult PlainTransport::writev(const iovec* iov, int count, bool more) {
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = static_cast<size_t>(count);
  // MSG_MORE holds headers back until the file data joins them in one segment, as nginx's
  // tcp_nopush does with TCP_CORK, without two extra setsockopt calls.
  ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
  if (n >= 0) return {IoStatus::kDone, static_cast<size_t>(n), 0};
  return failure();
}

IoResult PlainTransport::sendFile(int fileFd, uint64_t offset, size_t count) {
  off_t position = static_cast<off_t>(offset);
  ssize_t n = ::sendfile(fd_.get(), fileFd, &position, count);
  if (n >= 0) return {IoStatus::kDone, static_cast<size_t>(n), 0};
  return failure();
}

size_t PlainTransport::unsentBytes() const {
  // A unix socket's queue is the peer's: nothing of it is lost at close.
  return tcp_ ? socketUnsentBytes(fd_.get()) : 0;
}

size_t PlainTransport::untransmittedBytes() const {
  return tcp_ ? socketUntransmittedBytes(fd_.get()) : 0;
}

void PlainTransport::shutdownWrite() { ::shutdown(fd_.get(), SHUT_WR); }

}  // namespace portico::transport
