#pragma once

#include <sys/uio.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

// OpenSSL's connection object, named by pointer only (tls_transport.h owns one).
struct ssl_st;

namespace portico::transport {

// What one transport operation did. kWantRead/kWantWrite are the crossed waits of a transport
// with its own protocol state (TLS: a read may need the socket writable, a write may need it
// readable); a plain socket only ever says kWouldBlock, the wait for the same direction.
enum class IoStatus {
  kDone,        // `bytes` > 0 were read or written
  kWouldBlock,  // nothing now; retry when the socket is ready in the operation's direction
  kWantRead,    // nothing now; retry when the socket is readable
  kWantWrite,   // nothing now; retry when the socket is writable
  kInterrupted, // EINTR: retry at once
  kEof,         // the peer closed its sending side (reads only)
  kError,       // the connection is broken (ECONNRESET, EPIPE, ...): `error` is the errno
};

struct IoResult {
  IoStatus status = IoStatus::kDone;
  size_t bytes = 0;
  int error = 0;

  bool done() const { return status == IoStatus::kDone; }
};

// The byte stream under one client connection: plain TCP or unix today, TLS later. Owned by
// the connection (the HTTP session) that reads and writes through it; event-loop thread only.
// Results come back as an IoResult, so no caller looks at errno.
class Transport {
 public:
  virtual ~Transport() = default;

  // The socket, for epoll registration and for handing the connection to a sibling worker.
  virtual int fd() const = 0;
  // Called once before the first I/O: socket options. A TLS transport also sets up its
  // server-side state here; the handshake then runs inside read()/writev() as the session
  // retries them on readiness (OpenSSL's SSL_read/SSL_write accept implicitly), so the first
  // request bytes come out of the first read() that completes it.
  virtual void start() = 0;

  // Reads at most `size` bytes into `dst`.
  virtual IoResult read(char* dst, size_t size) = 0;
  // Bytes the transport has already taken off the socket and will return from read() without
  // a readiness event (TLS records decrypted ahead). A plain socket holds none.
  virtual size_t pendingRead() const { return 0; }

  // Writes the gathered buffers (at most `count` entries); `more` says more data follows at
  // once (MSG_MORE: a head before file data leaves in one segment with it).
  virtual IoResult writev(const iovec* iov, int count, bool more) = 0;

  // The kernel copies file data to the socket (sendfile(2), or kernel TLS). When false the
  // caller reads the file itself (pread) and writes the bytes with writev().
  virtual bool canSendFile() const = 0;
  // Sends up to `count` bytes of `fileFd` from `offset`; `bytes` == 0 with kDone means the
  // file ended before `count` (it shrank).
  virtual IoResult sendFile(int fileFd, uint64_t offset, size_t count) {
    (void)fileFd;
    (void)offset;
    (void)count;
    return {IoStatus::kError, 0, EOPNOTSUPP};
  }

  // Bytes written but not yet delivered (sent and acknowledged) by the kernel. A socket closed
  // with bytes still queued becomes an orphan that the kernel resets under memory pressure
  // (TCPAbortOnMemory), cutting the response's tail: the session waits for 0 first.
  virtual size_t unsentBytes() const { return 0; }
  // Of unsentBytes(), those the kernel has not transmitted once yet (the peer's window is
  // closed, or congestion holds them): a tail already on the wire only waits for its ACK.
  virtual size_t untransmittedBytes() const { return 0; }
  // Before a graceful close: a TLS transport sends its close_notify (once; shutdownWrite then
  // does not repeat it), as nginx's ngx_ssl_shutdown does; a plain one has nothing to say.
  virtual void closeNotify() {}
  // Ends the sending side (lingering close); a TLS transport sends its close_notify first.
  virtual void shutdownWrite() = 0;
  // Closes the socket now; later calls do nothing.
  virtual void close() = 0;

  // A TLS transport whose client spoke plain HTTP instead of a handshake (nginx: "client sent
  // plain HTTP request to HTTPS port"); it then carries the bytes as they are.
  virtual bool plainOnTls() const { return false; }
  // The TLS connection's OpenSSL object once started ($ssl_* variables); null when plain.
  virtual const ssl_st* tlsSession() const { return nullptr; }
  // Only a transport with no state outside the kernel's socket can move to another process
  // with its fd (process/hand_off.h).
  virtual bool canHandOff() const = 0;
};

}  // namespace portico::transport
