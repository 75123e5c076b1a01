#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <string>

#include "core/unique_fd.h"
#include "event/event_loop.h"

namespace portico::event {

// Opens a non-blocking TCP listening socket on host:port (IPv4 or IPv6, numeric or a name;
// "" means 0.0.0.0). IPv6 sockets are IPv6-only, as nginx's. `reuseport` sets SO_REUSEPORT
// (nginx's `listen ... reuseport`). Fills `error` on failure.
UniqueFd listenTcp(const std::string& host, uint16_t port, int backlog, std::string& error,
                   bool reuseport = false);
// Opens a non-blocking unix-domain listening socket at `path`, replacing a stale socket file.
UniqueFd listenUnix(const std::string& path, int backlog, std::string& error);
// The port a TCP listener is bound to (useful with port 0), 0 for unix sockets.
uint16_t boundPort(int fd);

// Formats a peer address as text and port ("" and 0 for unix-domain peers).
void describeAddress(const sockaddr_storage& addr, std::string& host, uint16_t& port);

// Accepts connections on one listening socket and hands each to a callback. Owned by the
// server; event-loop thread. Pauses itself briefly when the process runs out of descriptors.
class Listener : public IoWatcher {
 public:
  using AcceptCallback = std::function<void(UniqueFd fd, const sockaddr_storage& peer)>;
  // `multiAccept` (nginx's multi_accept): each readiness event accepts every pending
  // connection (a bounded batch) instead of one.
  Listener(EventLoop& loop, UniqueFd fd, AcceptCallback onAccept, bool multiAccept = true);
  ~Listener() override;

  bool start();
  void stop();   // stops accepting and closes the socket
  // Accepts every connection the kernel has already queued (paused or not), then stop()s: a
  // stopping worker serves the clients the kernel accepted on its behalf instead of leaving
  // them to be reset when the last copy of the socket closes.
  void acceptPendingAndStop();
  void pause();  // stops accepting for now; start() resumes
  int fd() const { return fd_.get(); }
  void onIoEvent(uint32_t events) override;

 private:
  // Accepts up to `batch` connections; false when it had to stop early (EAGAIN, an error).
  bool acceptBatch(int batch);

  EventLoop& loop_;
  UniqueFd fd_;
  AcceptCallback onAccept_;
  bool active_ = false;
  bool draining_ = false;  // inside acceptPendingAndStop(): accept although paused
  bool multiAccept_ = true;
  TimerId resumeTimer_{0, 0};
};

}  // namespace portico::event
