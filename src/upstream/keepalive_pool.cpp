#include "upstream/keepalive_pool.h"

#include <sys/epoll.h>

namespace portico::upstream {

// One cached connection, watched while idle: any event (data, close, error) ends it.
struct KeepalivePool::Idle final : event::IoWatcher {
  KeepalivePool* pool = nullptr;
  const config::UpstreamAddress* peer = nullptr;
  std::unique_ptr<transport::Transport> conn;
  uint64_t requests = 0;
  uint64_t bornMs = 0;
  event::TimerId timer{0, 0};
  void onIoEvent(uint32_t) override { pool->drop(this); }
};

KeepalivePool::KeepalivePool(event::EventLoop& loop, const config::UpstreamSpec& spec)
    : loop_(loop), capacity_(static_cast<size_t>(spec.keepalive)),
      maxRequests_(spec.keepaliveRequests), timeoutMs_(spec.keepaliveTimeoutMs),
      maxAgeMs_(spec.keepaliveTimeMs) {}

KeepalivePool::~KeepalivePool() {
  for (auto& idle : idle_) {
    loop_.cancelTimer(idle->timer);
    loop_.remove(idle->conn->fd());
  }
}

std::unique_ptr<transport::Transport> KeepalivePool::take(
    const config::UpstreamAddress* peer, uint64_t& requests, uint64_t& bornMs,
    event::IoWatcher* watcher, uint32_t events) {
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    if ((*it)->peer != peer) continue;
    Idle& idle = **it;
    loop_.cancelTimer(idle.timer);
    // The registration changes hands (EPOLL_CTL_MOD also reports what is pending now); a
    // connection that cannot be handed over is not given out.
    if (!watcher || !loop_.modify(idle.conn->fd(), events, watcher)) {
      loop_.remove(idle.conn->fd());
      if (watcher) {
        idle.conn.reset();
        bury(it);
        return nullptr;
      }
    }
    std::unique_ptr<transport::Transport> conn = std::move(idle.conn);
    requests = idle.requests;
    bornMs = idle.bornMs;
    bury(it);
    return conn;
  }
  return nullptr;
}

void KeepalivePool::put(const config::UpstreamAddress* peer,
                        std::unique_ptr<transport::Transport> conn, uint64_t requests,
                        uint64_t bornMs, bool registered) {
  if (capacity_ == 0 || requests >= maxRequests_ || loop_.nowMs() - bornMs > maxAgeMs_) {
    // Closed (keepalive_requests, keepalive_time), unregistered first: a copy of the fd in a
    // forked child would keep the registration, and its events, alive.
    if (registered) loop_.remove(conn->fd());
    return;
  }

  while (idle_.size() >= capacity_) drop(idle_.back().get());
  auto idle = std::make_unique<Idle>();
  idle->pool = this;
  idle->peer = peer;
  idle->conn = std::move(conn);
  idle->requests = requests;
  idle->bornMs = bornMs;
  constexpr uint32_t kIdleEvents = EPOLLIN | EPOLLRDHUP | EPOLLET;
  int fd = idle->conn->fd();
  if (!(registered ? loop_.modify(fd, kIdleEvents, idle.get())
                   : loop_.add(fd, kIdleEvents, idle.get()))) {
    if (registered) loop_.remove(fd);
    return;
  }
  Idle* raw = idle.get();
  idle->timer = loop_.addTimer(timeoutMs_, [this, raw] {
    raw->timer = {0, 0};
    drop(raw);
  });
  idle_.push_front(std::move(idle));
}

void KeepalivePool::drop(Idle* idle) {
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    if (it->get() != idle) continue;
    loop_.cancelTimer(idle->timer);
    loop_.remove(idle->conn->fd());
    idle->conn.reset();
    bury(it);
    return;
  }
}

void KeepalivePool::bury(std::list<std::unique_ptr<Idle>>::iterator it) {
  // The watcher may be in the loop's current batch of events (the peer's close arriving with
  // the request that takes the connection): deleted after the batch, where its late event
  // finds it no longer listed and does nothing.
  struct Grave : event::Deferrable {
    std::unique_ptr<Idle> idle;
  };
  auto grave = std::make_unique<Grave>();
  grave->idle = std::move(*it);
  idle_.erase(it);
  loop_.deferDelete(std::move(grave));
}

}  // namespace portico::upstream
