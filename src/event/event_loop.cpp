#include "event/event_loop.h"

#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/log.h"

namespace portico::event {

// Wakes the loop from other threads (post) through an eventfd; owned by the loop.
class EventLoop::Waker : public IoWatcher {
 public:
  explicit Waker(EventLoop& loop) : loop_(loop), fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  int fd() const { return fd_.get(); }
  void wake() {
    uint64_t one = 1;
    ssize_t n = ::write(fd_.get(), &one, sizeof one);
    (void)n;  // cannot fail: the counter is never read, and holds 2^64 - 2 wake-ups
  }
  void onIoEvent(uint32_t) override {
    // The eventfd is edge-triggered and never read: every write is an edge (epoll queues the
    // descriptor again on each write), so a read per wake-up would only cost a syscall. The
    // counter cannot fill up: it holds 2^64 - 2 wake-ups.
    loop_.runPosted();
  }

 private:
  EventLoop& loop_;
  UniqueFd fd_;
};

EventLoop::EventLoop() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (!epoll_) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
  waker_ = std::make_unique<Waker>(*this);
  if (waker_->fd() < 0 || !add(waker_->fd(), EPOLLIN | EPOLLET, waker_.get())) {
    throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  }
  updateTime();
}

namespace {

// A posted function: the message owns it and deletes itself once run (or discarded).
class FunctionPost final : public Posted {
 public:
  explicit FunctionPost(std::function<void()> fn) : fn_(std::move(fn)) {}
  void runPosted() override {
    std::unique_ptr<FunctionPost> self(this);
    fn_();
  }
  void discardPosted() override { delete this; }

 private:
  std::function<void()> fn_;
};

}  // namespace

EventLoop::~EventLoop() {
  Posted* message = postedHead_;
  postedHead_ = postedTail_ = nullptr;
  while (message) {
    Posted* next = message->nextPosted_;
    message->nextPosted_ = nullptr;
    message->discardPosted();
    message = next;
  }
}

bool EventLoop::add(int fd, uint32_t events, IoWatcher* watcher) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = watcher;
  return ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool EventLoop::modify(int fd, uint32_t events, IoWatcher* watcher) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = watcher;
  return ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) == 0;
}

void EventLoop::remove(int fd) { ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

void EventLoop::updateTime() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  nowMs_ = static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

TimerId EventLoop::addTimer(uint64_t delayMs, std::function<void()> callback) {
  TimerId id{nowMs_ + delayMs, ++timerSeq_};
  timers_.emplace(id, std::move(callback));
  return id;
}

void EventLoop::cancelTimer(TimerId& id) {
  if (id.second != 0) timers_.erase(id);
  id = {0, 0};
}

bool EventLoop::rearmTimer(TimerId& id, uint64_t delayMs) {
  if (id.second == 0) return false;
  auto node = timers_.extract(id);
  if (node.empty()) {
    id = {0, 0};
    return false;
  }
  node.key() = TimerId{nowMs_ + delayMs, ++timerSeq_};
  id = node.key();
  timers_.insert(std::move(node));
  return true;
}

void EventLoop::defer(std::function<void()> fn) { deferred_.push_back(std::move(fn)); }

void EventLoop::deferDelete(std::unique_ptr<Deferrable> object) {
  graveyard_.push_back(std::move(object));
}

void EventLoop::runPosted() {
  Posted* message;
  {
    std::lock_guard lock(postMutex_);
    message = postedHead_;
    postedHead_ = postedTail_ = nullptr;
    wakeOnItsWay_ = false;
    posted_.store(false, std::memory_order_relaxed);
  }
  while (message) {
    // Read the link first: once runPosted() starts, the poster may queue the message again.
    Posted* next = message->nextPosted_;
    message->nextPosted_ = nullptr;
    message->runPosted();
    message = next;
  }
}

bool EventLoop::enqueuePosted(Posted* message, bool wake) {
  std::lock_guard lock(postMutex_);
  message->nextPosted_ = nullptr;
  if (postedHead_ == nullptr) {
    postedHead_ = message;
  } else {
    postedTail_->nextPosted_ = message;
  }
  postedTail_ = message;
  posted_.store(true, std::memory_order_relaxed);
  // One eventfd write per batch: the loop takes the whole queue under the lock.
  if (!wake || wakeOnItsWay_) return false;
  wakeOnItsWay_ = true;
  return true;
}

void EventLoop::post(Posted* message) {
  if (enqueuePosted(message, true)) waker_->wake();
}

void EventLoop::postQuietly(Posted* message) { enqueuePosted(message, false); }

size_t EventLoop::addSleepBound(std::function<int()> bound) {
  sleepBounds_.push_back(std::move(bound));
  return sleepBounds_.size() - 1;
}

void EventLoop::addBeforeWait(std::function<void()> hook) { beforeWait_.push_back(std::move(hook)); }

void EventLoop::removeSleepBound(size_t handle) {
  if (handle < sleepBounds_.size()) sleepBounds_[handle] = nullptr;
}

void EventLoop::post(std::function<void()> fn) { post(new FunctionPost(std::move(fn))); }

void EventLoop::stop() {
  stop_ = true;
  if (waker_) waker_->wake();
}

int EventLoop::nextTimeoutMs() const {
  if (!deferred_.empty()) return 0;
  int timeout = -1;
  if (!timers_.empty()) {
    uint64_t due = timers_.begin()->first.first;
    if (due <= nowMs_) return 0;
    uint64_t wait = due - nowMs_;
    timeout = wait > 60000 ? 60000 : static_cast<int>(wait);
  }
  for (const auto& bound : sleepBounds_) {
    if (!bound) continue;
    int limit = bound();
    if (limit >= 0 && (timeout < 0 || limit < timeout)) timeout = limit;
  }
  return timeout;
}

void EventLoop::runTimers() {
  while (!timers_.empty() && timers_.begin()->first.first <= nowMs_) {
    auto node = timers_.extract(timers_.begin());
    node.mapped()();
  }
}

void EventLoop::runDeferred() {
  // Deferred work may defer more work; run until quiet, then bury the dead.
  // The two vectors trade places, so in a steady state no iteration allocates.
  while (!deferred_.empty()) {
    running_.swap(deferred_);
    for (auto& fn : running_) fn();
    running_.clear();
  }
  graveyard_.clear();
}

void EventLoop::run() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  while (!stop_) {
    // Messages posted quietly (no eventfd write) run before the loop sleeps; one posted after
    // this look is covered by the sleep bounds.
    if (posted_.load(std::memory_order_acquire)) {
      runPosted();
      runDeferred();
    }
    for (const auto& hook : beforeWait_) hook();
    int n = ::epoll_wait(epoll_.get(), events, kMaxEvents, nextTimeoutMs());
    updateTime();
    if (n < 0) {
      if (errno == EINTR) continue;
      logCritical(std::string("epoll_wait: ") + std::strerror(errno));
      break;
    }
    for (int i = 0; i < n; ++i) {
      static_cast<IoWatcher*>(events[i].data.ptr)->onIoEvent(events[i].events);
    }
    runDeferred();
    runTimers();
    runDeferred();
  }
  runDeferred();
  for (const auto& hook : beforeWait_) hook();
}

}  // namespace portico::event
