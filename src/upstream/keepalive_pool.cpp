#include "upstream/keepalive_pool.h"

namespace portico::upstream {

std::unique_ptr<UpstreamWatch> UpstreamWatch::add(event::EventLoop& loop, int fd,
                                                  event::IoWatcher* holder) {
  auto watch = std::make_unique<UpstreamWatch>();
  watch->holder_ = holder;
  if (!loop.add(fd, kUpstreamEvents, watch.get())) return nullptr;
  return watch;
}

void UpstreamWatch::remove(event::EventLoop& loop, int fd, std::unique_ptr<UpstreamWatch> watch) {
  if (!watch) return;
  loop.remove(fd);
  loop.cancelTimer(watch->timer_);
  watch->holder_ = nullptr;
  watch->pool_ = nullptr;
  loop.deferDelete(std::move(watch));
}

void UpstreamWatch::onIoEvent(uint32_t events) {
  if (holder_) {
    holder_->onIoEvent(events);
    return;
  }
  // Idle: data, a close or an error ends the connection; room to write (an edge of EPOLLOUT,
  // registered for the requests) says nothing.
  if (pool_ && (events & ~static_cast<uint32_t>(EPOLLOUT)) != 0) pool_->drop(this);
}

KeepalivePool::KeepalivePool(event::EventLoop& loop, const config::UpstreamSpec& spec)
    : loop_(loop), capacity_(static_cast<size_t>(spec.keepalive)),
      maxRequests_(spec.keepaliveRequests), timeoutMs_(spec.keepaliveTimeoutMs),
      maxAgeMs_(spec.keepaliveTimeMs) {}

KeepalivePool::~KeepalivePool() {
  for (auto& idle : idle_) {
    loop_.cancelTimer(idle->timer_);
    loop_.remove(idle->conn_->fd());
  }
}

std::unique_ptr<UpstreamWatch> KeepalivePool::detach(size_t index) {
  std::unique_ptr<UpstreamWatch> watch = std::move(idle_[index]);
  idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(index));
  watch->pool_ = nullptr;  // its idle timer finds it in use (or is cancelled when it goes)
  return watch;
}

std::unique_ptr<transport::Transport> KeepalivePool::take(const config::UpstreamAddress* peer,
                                                          uint64_t& requests,
                                                          uint64_t& bornMs) {
  std::unique_ptr<UpstreamWatch> watch;
  std::unique_ptr<transport::Transport> conn = take(peer, requests, bornMs, nullptr, watch);
  if (conn) UpstreamWatch::remove(loop_, conn->fd(), std::move(watch));
  return conn;
}

std::unique_ptr<transport::Transport> KeepalivePool::take(const config::UpstreamAddress* peer,
                                                          uint64_t& requests, uint64_t& bornMs,
                                                          event::IoWatcher* holder,
                                                          std::unique_ptr<UpstreamWatch>& watch) {
  for (size_t i = idle_.size(); i-- > 0;) {
    if (idle_[i]->peer_ != peer) continue;
    watch = detach(i);
    watch->holder_ = holder;
    requests = watch->requests_;
    bornMs = watch->bornMs_;
    return std::move(watch->conn_);
  }
  return nullptr;
}

void KeepalivePool::put(const config::UpstreamAddress* peer,
                        std::unique_ptr<transport::Transport> conn, uint64_t requests,
                        uint64_t bornMs, std::unique_ptr<UpstreamWatch> watch) {
  if (capacity_ == 0 || requests >= maxRequests_ || loop_.nowMs() - bornMs > maxAgeMs_) {
    // Closed (keepalive_requests, keepalive_time), unregistered first.
    UpstreamWatch::remove(loop_, conn->fd(), std::move(watch));
    return;
  }
  if (!watch) {
    watch = UpstreamWatch::add(loop_, conn->fd(), nullptr);
    if (!watch) return;
  }
  // Over keepalive N, the least recently used go when the loop's batch is handled, not now: a
  // request later in the same batch takes a connection given back earlier in it, where closing
  // at once would make it connect anew (a loaded worker handles hundreds of events a batch).
  if (idle_.size() >= capacity_ && !trimDeferred_) {
    trimDeferred_ = true;
    loop_.defer([this, alive = std::weak_ptr<bool>(alive_)] {
      if (alive.expired()) return;
      trimDeferred_ = false;
      while (idle_.size() > capacity_) drop(idle_.front().get());
    });
  }
  watch->holder_ = nullptr;
  watch->pool_ = this;
  watch->peer_ = peer;
  watch->conn_ = std::move(conn);
  watch->requests_ = requests;
  watch->bornMs_ = bornMs;
  // The idle timer: the one still pending since the connection was last idle, moved (no new
  // timer per request), else a new one. Firing while the connection is in use, it does nothing.
  if (!loop_.rearmTimer(watch->timer_, timeoutMs_)) {
    UpstreamWatch* raw = watch.get();
    watch->timer_ = loop_.addTimer(timeoutMs_, [raw] {
      raw->timer_ = {0, 0};
      if (raw->pool_) raw->pool_->drop(raw);
    });
  }
  idle_.push_back(std::move(watch));
}

void KeepalivePool::drop(UpstreamWatch* idle) {
  for (size_t i = 0; i < idle_.size(); ++i) {
    if (idle_[i].get() != idle) continue;
    std::unique_ptr<UpstreamWatch> watch = detach(i);
    std::unique_ptr<transport::Transport> conn = std::move(watch->conn_);
    // Deleted after the batch: the peer's close may be queued there with a request's events.
    UpstreamWatch::remove(loop_, conn->fd(), std::move(watch));
    return;
  }
}

}  // namespace portico::upstream
