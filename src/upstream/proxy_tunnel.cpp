#include "upstream/proxy_tunnel.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <utility>

#include "core/log.h"

namespace portico::upstream {
namespace {

constexpr size_t kReadSize = 16 * 1024;

uint64_t toMs(double seconds) {
  return seconds <= 0 ? 1 : static_cast<uint64_t>(seconds * 1000.0);
}

// One upgraded connection: the client side through the Exchange (a raw stream since
// upgrade()), the upstream side a transport it owns. Upstream bytes are read only while the
// client's queue is writable (the session's 64 KiB bound); client bytes wait for the upstream
// in at most proxy_buffer_size (+ one read) before the client is no longer read. Owns itself
// (deleted deferred when done); loop thread.
class ProxyTunnel final : public event::IoWatcher,
                          public http::RawStreamPeer,
                          public event::Deferrable {
 public:
  ProxyTunnel(event::EventLoop& loop, http::Exchange& exchange, const TunnelSettings& settings,
              std::string logContext)
      : loop_(loop), ex_(&exchange), settings_(settings), logContext_(std::move(logContext)) {}
  ~ProxyTunnel() override { closeUpstream(); }

  void start(std::unique_ptr<ProxyTunnel> self, std::unique_ptr<transport::Transport> upstream,
             std::string pending) {
    self_ = std::move(self);
    up_ = std::move(upstream);
    ex_->onAbort([this] {
      ex_ = nullptr;
      destroy();
    });
    if (!loop_.add(up_->fd(), EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, this)) {
      logError("epoll_ctl() failed while proxying upgraded connection" + logContext_);
      end();
      return;
    }
    registered_ = true;
    lastActivityMs_ = loop_.nowMs();
    if (!pending.empty()) ex_->sendBody(BodyChunk(std::move(pending)));
    run();
  }

  // RawStreamPeer: the client's bytes.
  void onRawData(std::string_view data) override {
    if (!ex_) return;
    toUpstream_.append(data);
    lastActivityMs_ = loop_.nowMs();
    if (!paused_ && toUpstream_.size() >= settings_.bufferSize) {
      paused_ = true;  // backpressure: the client waits until the upstream takes these
      ex_->pauseUpgradedInput(true);
    }
    run();
  }
  void onRawEnd() override {
    clientEof_ = true;
    run();
  }

  // IoWatcher: the upstream's readiness.
  void onIoEvent(uint32_t events) override {
    if (!ex_ || !up_) return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) canRead_ = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) canWrite_ = true;
    run();
  }

 private:
  // Moves what can move both ways, then ends or re-arms the inactivity timer.
  void run() {
    if (!ex_ || !up_) return;
    // upstream → client, while the client's queue takes more.
    while (!upEof_ && canRead_ && ex_->writable()) {
      char buffer[kReadSize];
      transport::IoResult r = up_->read(buffer, sizeof buffer);
      if (r.status == transport::IoStatus::kDone) {
        lastActivityMs_ = loop_.nowMs();
        ex_->sendBody(BodyChunk(std::string(buffer, r.bytes)));
        if (!ex_) return;
        continue;
      }
      if (r.status == transport::IoStatus::kInterrupted) continue;
      if (r.status == transport::IoStatus::kEof || r.status == transport::IoStatus::kError) {
        upEof_ = true;  // nginx: a read error is the upstream's end too
        break;
      }
      canRead_ = false;
      break;
    }
    if (!upEof_ && canRead_ && !ex_->writable() && !waitingWritable_) {
      waitingWritable_ = true;
      ex_->onWritable([this] {
        waitingWritable_ = false;
        run();
      });
    }
    // client → upstream.
    while (!toUpstream_.empty() && canWrite_) {
      iovec iov{toUpstream_.data(), toUpstream_.size()};
      transport::IoResult r = up_->writev(&iov, 1, false);
      if (r.status == transport::IoStatus::kDone) {
        toUpstream_.erase(0, r.bytes);
        lastActivityMs_ = loop_.nowMs();
        lastWriteMs_ = lastActivityMs_;
        continue;
      }
      if (r.status == transport::IoStatus::kInterrupted) continue;
      if (r.status == transport::IoStatus::kError) {
        logError("writev() failed (" + std::to_string(r.error) + ": " +
                 std::strerror(r.error) + ") while proxying upgraded connection" + logContext_);
        end();
        return;
      }
      if (toUpstream_.size() > 0 && writeBlockedSinceMs_ == 0) writeBlockedSinceMs_ = loop_.nowMs();
      canWrite_ = false;
      break;
    }
    if (toUpstream_.empty() || canWrite_) writeBlockedSinceMs_ = 0;
    if (paused_ && toUpstream_.size() < settings_.bufferSize) {
      paused_ = false;
      ex_->pauseUpgradedInput(false);
    }
    // nginx's "http upstream upgraded done": a side closed and what it sent was passed on.
    if (upEof_ || (clientEof_ && toUpstream_.empty())) {
      end();
      return;
    }
    armTimer();
  }

  // One timer, re-armed lazily: inactivity (proxy_read_timeout), or the upstream not taking
  // the client's bytes (proxy_send_timeout).
  uint64_t deadline() const {
    uint64_t due = lastActivityMs_ + toMs(settings_.readTimeoutSeconds);
    if (!toUpstream_.empty() && !canWrite_) {
      uint64_t since = std::max(lastWriteMs_, writeBlockedSinceMs_);
      due = std::min(due, since + toMs(settings_.sendTimeoutSeconds));
    }
    return due;
  }
  void armTimer() {
    uint64_t due = deadline();
    if (timer_.second != 0 && timerDue_ <= due) return;  // fires earlier and re-checks
    loop_.cancelTimer(timer_);
    timerDue_ = due;
    uint64_t now = loop_.nowMs();
    timer_ = loop_.addTimer(due > now ? due - now : 0, [this] {
      timer_ = {0, 0};
      onTimer();
    });
  }
  void onTimer() {
    if (!ex_) return;
    if (loop_.nowMs() < deadline()) {
      armTimer();
      return;
    }
    logError("upstream timed out (110: Connection timed out) while proxying upgraded "
             "connection" + logContext_);
    end();
  }

  // Both sides close: the client's after its queued bytes have left.
  void end() {
    loop_.cancelTimer(timer_);
    closeUpstream();
    if (http::Exchange* ex = std::exchange(ex_, nullptr)) ex->finish();
    destroy();
  }
  void closeUpstream() {
    if (!up_) return;
    if (registered_) loop_.remove(up_->fd());
    registered_ = false;
    up_->close();
    up_.reset();
  }
  void destroy() {
    loop_.cancelTimer(timer_);
    closeUpstream();
    if (self_) loop_.deferDelete(std::move(self_));
  }

  event::EventLoop& loop_;
  http::Exchange* ex_;  // null once finished or the client went away
  std::unique_ptr<transport::Transport> up_;
  TunnelSettings settings_;
  std::string logContext_;
  std::unique_ptr<ProxyTunnel> self_;
  bool registered_ = false;
  bool canRead_ = true;   // edge-triggered: assume ready until a read says otherwise
  bool canWrite_ = true;
  bool upEof_ = false;
  bool clientEof_ = false;
  bool paused_ = false;
  bool waitingWritable_ = false;
  std::string toUpstream_;  // client bytes the upstream has not taken yet
  uint64_t lastActivityMs_ = 0;
  uint64_t lastWriteMs_ = 0;
  uint64_t writeBlockedSinceMs_ = 0;
  event::TimerId timer_{0, 0};
  uint64_t timerDue_ = 0;
};

}  // namespace

bool startProxyTunnel(event::EventLoop& loop, http::Exchange& exchange,
                      std::unique_ptr<transport::Transport>& upstream, std::string pending,
                      const TunnelSettings& settings, std::string logContext) {
  auto tunnel = std::make_unique<ProxyTunnel>(loop, exchange, settings, std::move(logContext));
  if (!exchange.upgrade(tunnel.get())) return false;
  ProxyTunnel* raw = tunnel.get();
  raw->start(std::move(tunnel), std::move(upstream), std::move(pending));
  return true;
}

}  // namespace portico::upstream
