#pragma once

#include "core/unique_fd.h"
#include "transport/transport.h"

namespace portico::transport {

// A TCP or unix stream socket used as it is: recv, sendmsg, sendfile on the fd. Owned by the
// connection; event-loop thread only.
class PlainTransport final : public Transport {
 public:
  // `tcp`: set TCP_NODELAY at start (unix sockets have no Nagle).
  PlainTransport(UniqueFd fd, bool tcp) : fd_(std::move(fd)), tcp_(tcp) {}

  int fd() const override { return fd_.get(); }
  void start() override;
  IoResult read(char* dst, size_t size) override;
  IoResult writev(const iovec* iov, int count, bool more) override;
  bool canSendFile() const override { return true; }
  IoResult sendFile(int fileFd, uint64_t offset, size_t count) override;
  size_t unsentBytes() const override;
  size_t untransmittedBytes() const override;
  void shutdownWrite() override;
  void close() override { fd_.reset(); }
  bool canHandOff() const override { return true; }

 private:
  UniqueFd fd_;
  bool tcp_;
};

}  // namespace portico::transport
