#include "process/proxy_header_reader.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "core/log.h"

namespace portico::process {

using transport::ProxyProtocolResult;
using Status = ProxyProtocolResult::Status;

ProxyHeaderReader::ProxyHeaderReader(event::EventLoop& loop, UniqueFd fd, http::ConnectionInfo info,
                                     const ProxyProtocolMode& mode, uint64_t timeoutMs, Done done,
                                     Failed failed)
    : loop_(loop),
      fd_(std::move(fd)),
      info_(std::move(info)),
      mode_(mode),
      timeoutMs_(timeoutMs),
      done_(std::move(done)),
      failed_(std::move(failed)) {}

ProxyHeaderReader::~ProxyHeaderReader() {
  loop_.cancelTimer(timer_);
  if (registered_ && fd_) loop_.remove(fd_.get());
}

void ProxyHeaderReader::start() {
  if (timeoutMs_ > 0) {
    timer_ = loop_.addTimer(timeoutMs_, [this] {
      timer_ = {0, 0};
      // nginx: "client timed out" at info while reading the PROXY protocol header.
      fail("");
    });
  }
  // The header comes with the connection, as a rule: read at once, the socket joins epoll
  // only if it has to wait for it.
  attempt();
}

// Edge-triggered: the peek leaves the bytes in the socket, so only a new arrival wakes us (the
// registration itself reports bytes already there).
void ProxyHeaderReader::wait() {
  if (registered_) return;
  if (!loop_.add(fd_.get(), EPOLLIN | EPOLLRDHUP | EPOLLET, this)) {
    fail("");
    return;
  }
  registered_ = true;
}

void ProxyHeaderReader::onIoEvent(uint32_t events) {
  (void)events;
  attempt();
}

bool ProxyHeaderReader::peerAllowed() const {
  if (info_.isUnix) return true;
  return std::any_of(mode_.allowFrom.begin(), mode_.allowFrom.end(), [&](const std::string& ip) {
    return ip == "*" || ip == info_.peerAddress;
  });
}

void ProxyHeaderReader::attempt() {
  char buffer[transport::kProxyProtocolMaxHeader];
  ssize_t n;
  do {
    n = ::recv(fd_.get(), buffer, sizeof buffer, MSG_PEEK);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait();
      return;
    }
    fail("");
    return;
  }
  std::string_view data(buffer, static_cast<size_t>(n));
  ProxyProtocolResult result = transport::parseProxyProtocol(data, mode_.optional);
  if (result.status == Status::kIncomplete) {
    if (n == 0) {
      fail("");  // the client closed before a header came
    } else {
      wait();
    }
    return;
  }
  if (result.status == Status::kError) {
    fail(result.error);
    return;
  }
  if (result.status == Status::kDone) {
    if (mode_.optional && !peerAllowed()) {
      // gunicorn answers 403 to a PROXY line from a peer outside --proxy-allow-from.
      fail("PROXY protocol header from a peer not in --proxy-allow-from");
      return;
    }
    // Consume exactly the header: what follows is the transport's.
    size_t left = result.consumed;
    while (left > 0) {
      ssize_t got = ::recv(fd_.get(), buffer, left, 0);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        fail("");
        return;
      }
      left -= static_cast<size_t>(got);
    }
    if (result.info.known) {
      info_.proxyProtocolAddress = std::move(result.info.sourceAddress);
      info_.proxyProtocolPort = result.info.sourcePort;
      info_.proxyProtocolServerAddress = std::move(result.info.destinationAddress);
      info_.proxyProtocolServerPort = result.info.destinationPort;
    }
  }
  // kDone or kAbsent: the connection goes on without this reader.
  loop_.cancelTimer(timer_);
  if (registered_) loop_.remove(fd_.get());
  registered_ = false;
  done_(this, std::move(fd_), std::move(info_));
}

void ProxyHeaderReader::fail(const std::string& message) {
  if (!message.empty()) {
    // nginx's error line and context (ngx_proxy_protocol_read at NGX_LOG_ERR).
    std::string line = message + " while reading PROXY protocol, client: " +
                       (info_.isUnix ? std::string("unix:") : info_.peerAddress) + ", server: " +
                       (info_.isUnix ? "unix:" + info_.localAddress
                                     : (info_.localAddress.find(':') != std::string::npos
                                            ? "[" + info_.localAddress + "]"
                                            : info_.localAddress) +
                                           ":" + std::to_string(info_.localPort));
    logError(line);
  }
  loop_.cancelTimer(timer_);
  if (registered_) loop_.remove(fd_.get());
  registered_ = false;
  fd_ = UniqueFd();
  failed_(this);
}

}  // namespace portico::process
