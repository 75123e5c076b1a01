#include "process/hand_off.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/log.h"

namespace portico::process {

namespace {

// The fixed part of a message, before the listener name and the buffered bytes.
struct Header {
  uint32_t magic;
  uint32_t listenerLength;
  uint32_t proxyLength;
  uint32_t reserved;
  uint64_t requestStartMs;
  uint64_t requestsServed;
  uint64_t sentMs;
};
constexpr uint32_t kMagic = 0x504f4832;  // "POH2"
constexpr size_t kMaxListener = 4096;
constexpr size_t kMaxProxy = 256;
constexpr size_t kMaxMessage =
    sizeof(Header) + kMaxListener + kMaxProxy + HandOffQueue::kMaxBuffered;

}  // namespace

std::unique_ptr<HandOffQueue> HandOffQueue::create(std::string& error) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    error = std::string("socketpair: ") + std::strerror(errno);
    return nullptr;
  }
  UniqueFd sendEnd(fds[0]);
  UniqueFd receiveEnd(fds[1]);
  // Room for a burst of connections with their first request (a few KiB each) queued at once.
  int size = 4 * 1024 * 1024;
  ::setsockopt(sendEnd.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  ::setsockopt(receiveEnd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  return std::unique_ptr<HandOffQueue>(new HandOffQueue(std::move(sendEnd), std::move(receiveEnd)));
}

bool HandOffQueue::send(int fd, std::string_view listener, std::string_view buffered,
                        uint64_t requestStartMs, uint64_t requestsServed, uint64_t nowMs,
                        std::string_view proxy) {
  if (listener.size() > kMaxListener || buffered.size() > kMaxBuffered ||
      proxy.size() > kMaxProxy) {
    return false;
  }
  Header header{kMagic, static_cast<uint32_t>(listener.size()),
                static_cast<uint32_t>(proxy.size()), 0, requestStartMs, requestsServed, nowMs};
  iovec iov[4] = {{&header, sizeof header},
                  {const_cast<char*>(listener.data()), listener.size()},
                  {const_cast<char*>(proxy.data()), proxy.size()},
                  {const_cast<char*>(buffered.data()), buffered.size()}};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 4;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
  for (;;) {
    ssize_t n = ::sendmsg(sendEnd_.get(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return true;
    if (errno == EINTR) continue;
    // EAGAIN: the queue is full (every worker busy for a while); the caller keeps it.
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      logError(std::string("hand-off sendmsg: ") + std::strerror(errno));
    }
    return false;
  }
}

HandOffQueue::Receive HandOffQueue::receive(Message& out) {
  // One buffer per process (one loop thread uses the queue), sized for the largest message.
  static std::vector<char> buffer(kMaxMessage);
  iovec iov{buffer.data(), buffer.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(receiveEnd_.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      logError(std::string("hand-off recvmsg: ") + std::strerror(errno));
    }
    return Receive::kEmpty;
  }
  UniqueFd fd;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int received;
      std::memcpy(&received, CMSG_DATA(c), sizeof received);
      fd = UniqueFd(received);
    }
  }
  Header header;
  if (!fd || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || static_cast<size_t>(n) < sizeof header) {
    logError("a handed-off connection arrived without its descriptor (out of descriptors?); "
             "it is closed");
    return Receive::kDropped;
  }
  std::memcpy(&header, buffer.data(), sizeof header);
  size_t rest = static_cast<size_t>(n) - sizeof header;
  if (header.magic != kMagic || header.listenerLength > rest ||
      header.proxyLength > rest - header.listenerLength) {
    logError("a malformed hand-off message; the connection is closed");
    return Receive::kDropped;
  }
  const char* p = buffer.data() + sizeof header;
  out.fd = std::move(fd);
  out.listener.assign(p, header.listenerLength);
  out.proxy.assign(p + header.listenerLength, header.proxyLength);
  size_t used = header.listenerLength + header.proxyLength;
  out.buffered.assign(p + used, rest - used);
  out.requestStartMs = header.requestStartMs;
  out.requestsServed = header.requestsServed;
  out.sentMs = header.sentMs;
  return Receive::kMessage;
}

bool HandOffQueue::oldestSentMs(uint64_t& sentMs) {
  // A peek without room for the descriptor: the kernel leaves it in the queued message.
  Header header;
  iovec iov{&header, sizeof header};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ssize_t n;
  do {
    n = ::recvmsg(receiveEnd_.get(), &msg, MSG_DONTWAIT | MSG_PEEK);
  } while (n < 0 && errno == EINTR);
  if (n < static_cast<ssize_t>(sizeof header)) return n >= 0;  // a malformed one: take it
  sentMs = header.magic == kMagic ? header.sentMs : 0;
  return true;
}

}  // namespace portico::process
