#pragma once

// The cached idle connections of one upstream in one worker (nginx's upstream keepalive
// module): at most `keepalive N` of them, the least recently used closed first; each closed
// after keepalive_timeout idle, after keepalive_requests requests, once older than
// keepalive_time (checked when a response ends, as nginx), or as soon as the upstream closes it
// or sends anything while it is idle.

#include <cstdint>
#include <list>
#include <memory>

#include "config/upstream.h"
#include "event/event_loop.h"
#include "transport/transport.h"

namespace portico::upstream {

// One upstream's idle connections; owned by the ProxyContentModule (one per upstream with
// `keepalive`), outlives every request; loop thread.
class KeepalivePool {
 public:
  KeepalivePool(event::EventLoop& loop, const config::UpstreamSpec& spec);
  ~KeepalivePool();
  KeepalivePool(const KeepalivePool&) = delete;
  KeepalivePool& operator=(const KeepalivePool&) = delete;

  // A cached connection to `peer` (its request count in `requests`, when it was connected in
  // `bornMs`, the loop's clock), or null. Its registration with the loop is handed to
  // `watcher` for `events` in one epoll_ctl (null watcher: unregistered).
  std::unique_ptr<transport::Transport> take(const config::UpstreamAddress* peer,
                                             uint64_t& requests, uint64_t& bornMs,
                                             event::IoWatcher* watcher = nullptr,
                                             uint32_t events = 0);
  // Caches `conn` after its `requests`-th request, unless it has served keepalive_requests
  // already or was connected (`bornMs`) longer than keepalive_time ago (then it is closed).
  // `registered`: the connection is still registered with the loop (for its last request's
  // watcher), and the pool takes the registration over in one epoll_ctl.
  void put(const config::UpstreamAddress* peer, std::unique_ptr<transport::Transport> conn,
           uint64_t requests, uint64_t bornMs, bool registered = false);
  size_t idle() const { return idle_.size(); }

 private:
  struct Idle;
  void drop(Idle* idle);
  void bury(std::list<std::unique_ptr<Idle>>::iterator it);

  event::EventLoop& loop_;
  size_t capacity_;
  uint64_t maxRequests_;
  uint64_t timeoutMs_;
  uint64_t maxAgeMs_;
  std::list<std::unique_ptr<Idle>> idle_;  // most recently used first
};

}  // namespace portico::upstream
