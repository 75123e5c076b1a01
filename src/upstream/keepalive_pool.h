#pragma once

// The cached idle connections of one upstream in one worker (nginx's upstream keepalive
// module): at most `keepalive N` of them, the least recently used closed first; each closed
// after keepalive_timeout idle, after keepalive_requests requests, once older than
// keepalive_time (checked when a response ends, as nginx), or as soon as the upstream closes it
// or sends anything while it is idle.

#include <sys/epoll.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "config/upstream.h"
#include "event/event_loop.h"
#include "transport/transport.h"

namespace portico::upstream {

class KeepalivePool;

// The events an upstream connection is registered for, all its life (edge-triggered).
constexpr uint32_t kUpstreamEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

// The loop registration of one upstream connection, for its whole life: the loop's events for
// its fd go to whoever holds the connection now — a request (`holder`), or its pool while it is
// idle — so handing the connection over costs no epoll_ctl. Made when the connection is
// registered, moved with it, deleted after the loop's batch (an event for it may still be
// queued there). Loop thread.
class UpstreamWatch final : public event::IoWatcher, public event::Deferrable {
 public:
  // Registers `fd` for kUpstreamEvents, its events going to `holder`; null when epoll refuses.
  static std::unique_ptr<UpstreamWatch> add(event::EventLoop& loop, int fd,
                                            event::IoWatcher* holder);
  // Unregisters `fd` (before it is closed: a copy of the fd in a forked child would keep the
  // registration alive) and deletes `watch` after the loop's batch.
  static void remove(event::EventLoop& loop, int fd, std::unique_ptr<UpstreamWatch> watch);

  void onIoEvent(uint32_t events) override;

 private:
  friend class KeepalivePool;
  event::IoWatcher* holder_ = nullptr;  // the request using the connection
  KeepalivePool* pool_ = nullptr;       // while idle in a pool (holder_ is null then)
  // While idle: the connection and what the pool knows of it.
  const config::UpstreamAddress* peer_ = nullptr;
  std::unique_ptr<transport::Transport> conn_;
  uint64_t requests_ = 0;
  uint64_t bornMs_ = 0;
  event::TimerId timer_{0, 0};  // keepalive_timeout; kept pending while lent, cancelled by remove
};

// One upstream's idle connections; owned by the ProxyContentModule (one per upstream with
// `keepalive`), outlives every request; loop thread.
class KeepalivePool {
 public:
  KeepalivePool(event::EventLoop& loop, const config::UpstreamSpec& spec);
  ~KeepalivePool();
  KeepalivePool(const KeepalivePool&) = delete;
  KeepalivePool& operator=(const KeepalivePool&) = delete;

  // A cached connection to `peer` (its request count in `requests`, when it was connected in
  // `bornMs`, the loop's clock), or null. With `holder`, its registration comes along in
  // `watch`, its events now going to `holder` (no epoll_ctl); without, it is unregistered.
  std::unique_ptr<transport::Transport> take(const config::UpstreamAddress* peer,
                                             uint64_t& requests, uint64_t& bornMs);
  std::unique_ptr<transport::Transport> take(const config::UpstreamAddress* peer,
                                             uint64_t& requests, uint64_t& bornMs,
                                             event::IoWatcher* holder,
                                             std::unique_ptr<UpstreamWatch>& watch);
  // Caches `conn` after its `requests`-th request, unless it has served keepalive_requests
  // already or was connected (`bornMs`) longer than keepalive_time ago (then it is closed).
  // `watch`: the connection's registration, taken over as it is; null: registered here.
  void put(const config::UpstreamAddress* peer, std::unique_ptr<transport::Transport> conn,
           uint64_t requests, uint64_t bornMs, std::unique_ptr<UpstreamWatch> watch = nullptr);
  size_t idle() const { return idle_.size(); }

 private:
  friend class UpstreamWatch;
  void drop(UpstreamWatch* idle);
  // Takes idle_[index] out of the pool, still registered, its idle timer still pending.
  std::unique_ptr<UpstreamWatch> detach(size_t index);

  event::EventLoop& loop_;
  size_t capacity_;
  uint64_t maxRequests_;
  uint64_t timeoutMs_;
  uint64_t maxAgeMs_;
  std::vector<std::unique_ptr<UpstreamWatch>> idle_;  // most recently used last
  bool trimDeferred_ = false;  // idle_ may be over capacity_ until the loop's batch ends
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for the deferred trim
};

}  // namespace portico::upstream
