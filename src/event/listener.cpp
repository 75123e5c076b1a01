#include "event/listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"

namespace portico::event {

UniqueFd listenTcp(const std::string& host, uint16_t port, int backlog, std::string& error,
                   bool reuseport) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  const char* node = host.empty() ? "0.0.0.0" : host.c_str();
  int rc = ::getaddrinfo(node, service.c_str(), &hints, &res);
  if (rc != 0) {
    error = "cannot resolve " + host + ": " + ::gai_strerror(rc);
    return UniqueFd();
  }
  UniqueFd result;
  for (addrinfo* ai = res; ai && !result; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
      error = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ai->ai_family == AF_INET6) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      error = "cannot bind " + host + ":" + service + ": " + std::strerror(errno);
      continue;
    }
    if (::listen(fd.get(), backlog) != 0) {
      error = std::string("listen: ") + std::strerror(errno);
      continue;
    }
    result = std::move(fd);
  }
  ::freeaddrinfo(res);
  return result;
}

UniqueFd listenUnix(const std::string& path, int backlog, std::string& error) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    error = "unix socket path too long: " + path;
    return UniqueFd();
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    error = std::string("socket: ") + std::strerror(errno);
    return UniqueFd();
  }
  // A socket file left by an earlier run would make bind fail; remove only sockets.
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    error = "cannot bind unix:" + path + ": " + std::strerror(errno);
    return UniqueFd();
  }
  if (::listen(fd.get(), backlog) != 0) {
    error = std::string("listen: ") + std::strerror(errno);
    return UniqueFd();
  }
  return fd;
}

uint16_t boundPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return 0;
}

void describeAddress(const sockaddr_storage& addr, std::string& host, uint16_t& port) {
  char buf[INET6_ADDRSTRLEN] = {0};
  host.clear();
  port = 0;
  if (addr.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    host = buf;
    port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    host = buf;
    port = ntohs(in6->sin6_port);
  }
}

Listener::Listener(EventLoop& loop, UniqueFd fd, AcceptCallback onAccept, bool multiAccept)
    : loop_(loop), fd_(std::move(fd)), onAccept_(std::move(onAccept)), multiAccept_(multiAccept) {}

Listener::~Listener() {
  loop_.cancelTimer(resumeTimer_);
  if (active_ && fd_) loop_.remove(fd_.get());
}

bool Listener::start() {
  if (active_ || !fd_) return active_;
  // Not EPOLLEXCLUSIVE: it always wakes the worker that registered first while that one is
  // idle, so a newly started worker would get no connections at all. Every worker waking and
  // racing for accept4 spreads connections, at the cost of a few EAGAINs.
  active_ = loop_.add(fd_.get(), EPOLLIN, this);
  return active_;
}

void Listener::pause() {
  draining_ = false;
  loop_.cancelTimer(resumeTimer_);
  if (active_) loop_.remove(fd_.get());
  active_ = false;
}

void Listener::stop() {
  loop_.cancelTimer(resumeTimer_);
  if (active_) loop_.remove(fd_.get());
  active_ = false;
  fd_.reset();
}

void Listener::acceptPendingAndStop() {
  if (fd_) {
    // Bounded, so a flood of new clients cannot keep a stopping worker here: the backlog is
    // at most somaxconn (4096), and what arrives meanwhile is refused once the socket closes.
    // A pause() from the callback (worker_connections reached) ends the drain.
    draining_ = true;
    for (int round = 0; round < 64 && draining_ && acceptBatch(128); ++round) {
    }
    draining_ = false;
  }
  stop();
}

void Listener::onIoEvent(uint32_t) {
  // Accept a bounded batch so one busy listener cannot starve established connections; without
  // multi_accept one per event (level-triggered: the next wait reports the rest).
  if (active_) acceptBatch(multiAccept_ ? 128 : 1);
}

bool Listener::acceptBatch(int batch) {
  for (int i = 0; i < batch; ++i) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    int fd = ::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;  // that client gave up; go on
      if (errno == EAGAIN) return false;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: stop accepting for a moment instead of spinning (as nginx does).
        logError(std::string("accept: ") + std::strerror(errno) + "; pausing accepts for 500ms");
        pause();
        resumeTimer_ = loop_.addTimer(500, [this] {
          resumeTimer_ = {0, 0};
          start();
        });
        return false;
      }
      logError(std::string("accept: ") + std::strerror(errno));
      return false;
    }
    onAccept_(UniqueFd(fd), peer);
    // The callback may have paused this listener (worker_connections reached).
    if (!fd_ || (!active_ && !draining_)) return false;
  }
  return true;
}

}  // namespace portico::event
