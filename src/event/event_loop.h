#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "core/unique_fd.h"

namespace portico::event {

// Receives readiness events for one descriptor registered with an EventLoop.
class IoWatcher {
 public:
  virtual ~IoWatcher() = default;
  virtual void onIoEvent(uint32_t events) = 0;
};

// An object whose destruction the loop defers to the end of the current iteration, so a
// callback may close and "delete" its own connection while later events of the same epoll
// batch still find a live (closed-flagged) object.
class Deferrable {
 public:
  virtual ~Deferrable() = default;
};

// A message another thread hands to the loop with post(Posted*), without an allocation: the
// poster owns it, keeps it alive until runPosted() has started on the loop thread, and may post
// it again from that moment on (not before). Messages run in the order they were posted.
class Posted {
 public:
  // Loop thread: the message's work.
  virtual void runPosted() = 0;
  // Loop thread, when the loop is destroyed with the message still queued: release what
  // runPosted() would have released.
  virtual void discardPosted() {}

 protected:
  ~Posted() = default;

 private:
  friend class EventLoop;
  Posted* nextPosted_ = nullptr;  // guarded by the loop's post mutex while queued
};

// Identifies a scheduled timer; {0,0} is "none".
using TimerId = std::pair<uint64_t, uint64_t>;

// An epoll event loop with timers, deferred work and a thread-safe post(). One per worker
// process; everything but post() and stop() must be called on the loop's own thread.
class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Registration; `events` are EPOLLIN/EPOLLOUT/EPOLLRDHUP... (edge-triggered when EPOLLET).
  bool add(int fd, uint32_t events, IoWatcher* watcher);
  bool modify(int fd, uint32_t events, IoWatcher* watcher);
  void remove(int fd);

  // Runs until stop(); returns after the iteration in which stop() was called.
  void run();
  void stop();
  bool stopping() const { return stop_; }

  // Milliseconds of CLOCK_MONOTONIC, cached once per iteration.
  uint64_t nowMs() const { return nowMs_; }
  void updateTime();

  TimerId addTimer(uint64_t delayMs, std::function<void()> callback);
  void cancelTimer(TimerId& id);  // resets id to {0,0}; safe on a fired or empty id
  // Moves a pending timer to `delayMs` from now, keeping its callback (no allocation: the map
  // node is re-keyed); updates `id`. False (and id reset) when it already fired or was none.
  bool rearmTimer(TimerId& id, uint64_t delayMs);

  // Runs `fn` on this thread after the current batch of events (in order of calls).
  void defer(std::function<void()> fn);
  // Deletes `object` after the current batch of events.
  void deferDelete(std::unique_ptr<Deferrable> object);
  // Thread-safe: runs `message` on the loop thread soon (wakes the loop through an eventfd,
  // written only when no wake-up is on its way for the queue).
  void post(Posted* message);
  // Thread-safe: the same for a function (one allocation per call).
  void post(std::function<void()> fn);
  // Thread-safe: queues `message` without waking the loop. It runs at the loop's next wake-up
  // for any reason, and a loop never sleeps on it for longer than its sleep bounds allow:
  // only a poster that a sleep bound covers (below) may use this.
  void postQuietly(Posted* message);
  // Loop thread: `bound` is asked before every sleep how long the loop may sleep at most
  // (milliseconds, or -1 for no limit): while a bound is finite, its owner may postQuietly.
  // Returns a handle for removeSleepBound (loop thread), which its owner calls before it goes.
  size_t addSleepBound(std::function<int()> bound);
  void removeSleepBound(size_t handle);
  // Loop thread: `hook` runs at the end of every iteration, before the loop waits for events
  // again, and once more when run() returns (work gathered over a batch of events is sent
  // as one: statsd's per-request metrics).
  void addBeforeWait(std::function<void()> hook);

 private:
  class Waker;
  // Queues `message`; true when the caller must write the eventfd (`wake` and none on its way).
  bool enqueuePosted(Posted* message, bool wake);
  void runPosted();
  void runTimers();
  void runDeferred();
  int nextTimeoutMs() const;

  UniqueFd epoll_;
  std::unique_ptr<Waker> waker_;
  bool stop_ = false;
  uint64_t nowMs_ = 0;
  uint64_t timerSeq_ = 0;
  std::map<TimerId, std::function<void()>> timers_;
  std::vector<std::function<void()>> deferred_;
  std::vector<std::function<void()>> running_;  // the batch runDeferred() is running (kept for its capacity)
  std::vector<std::unique_ptr<Deferrable>> graveyard_;
  std::mutex postMutex_;
  Posted* postedHead_ = nullptr;  // FIFO of posted messages, under postMutex_
  Posted* postedTail_ = nullptr;
  bool wakeOnItsWay_ = false;  // under postMutex_: the eventfd was written for the queue
  std::atomic<bool> posted_{false};  // the queue may hold messages (checked before a sleep)
  std::vector<std::function<int()>> sleepBounds_;
  std::vector<std::function<void()>> beforeWait_;
};

}  // namespace portico::event
