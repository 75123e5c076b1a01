#include "python/executor.h"

#include <time.h>

#include <algorithm>

#include "python/py_ref.h"

namespace portico::python {

Executor::Executor(WsgiApp& app, int threads, std::atomic<uint64_t>* busy, event::EventLoop* loop)
    : app_(app), busy_(busy), loop_(loop) {
  if (threads < 1) threads = 1;
  threadCount_ = threads;
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this, i] { threadMain(i); });
}

namespace {
uint64_t nowMs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}
}  // namespace

Executor::~Executor() { stop(); }

void Executor::setSaturationHook(event::EventLoop& loop, std::function<void(bool)> hook) {
  hookLoop_ = &loop;
  saturationHook_ = std::move(hook);
}

void Executor::push(WsgiJob job) {
  if (queued_ == ring_.size()) {
    std::vector<WsgiJob> grown(ring_.empty() ? 16 : ring_.size() * 2);
    for (size_t i = 0; i < queued_; ++i) grown[i] = std::move(ring_[(head_ + i) % ring_.size()]);
    ring_.swap(grown);
    head_ = 0;
  }
  ring_[(head_ + queued_) % ring_.size()] = std::move(job);
  ++queued_;
}

WsgiJob Executor::pop() {
  WsgiJob job = std::move(ring_[head_]);
  head_ = (head_ + 1) % ring_.size();
  --queued_;
  return job;
}

void Executor::submit(WsgiJob job) {
  if (inFlight_.fetch_add(1) + 1 >= threadCount_ && saturationHook_ && !saturated_.exchange(true)) {
    saturationHook_(true);
    // A job may have finished between the count and the flag, unseen by its thread (which
    // only posts while the flag is set): look again now that the flag is visible.
    if (inFlight_.load() < threadCount_ && saturated_.exchange(false)) saturationHook_(false);
  }
  bool wake;
  {
    std::lock_guard lock(mutex_);
    push(std::move(job));
    wake = idle_ > 0;
    if (wake && !loop_) --idle_;
  }
  if (!wake) return;  // a busy thread finds the job without a futex call
  if (!loop_) {
    idleSem_.release();
    return;
  }
  if (!wakeScheduled_) {
    wakeScheduled_ = true;
    loop_->defer([this] { wakeIdle(); });
  }
}

void Executor::wakeIdle() {
  wakeScheduled_ = false;
  int count;
  {
    std::lock_guard lock(mutex_);
    count = static_cast<int>(std::min<size_t>(queued_, static_cast<size_t>(idle_)));
    idle_ -= count;
  }
  // A thread that went idle since the submit found the job itself (it checks the queue first).
  if (count > 0) idleSem_.release(count);
}

bool Executor::stop(int timeoutMs) {
  {
    std::unique_lock lock(mutex_);
    if (threads_.empty()) return !abandoned_;
    stopping_ = true;
    idleSem_.release(idle_);
    idle_ = 0;
    size_t count = threads_.size();
    bool done = exitedCond_.wait_for(lock, std::chrono::milliseconds(timeoutMs),
                                     [&] { return static_cast<size_t>(exited_) == count; });
    if (!done) abandoned_ = true;
  }
  for (auto& t : threads_) {
    if (abandoned_) {
      t.detach();
    } else {
      t.join();
    }
  }
  threads_.clear();
  return !abandoned_;
}

void Executor::threadMain(int index) {
  {
    GilGuard gil;  // this thread's Python state, kept for its whole life
    serve(index);
  }
  std::lock_guard lock(mutex_);
  ++exited_;
  exitedCond_.notify_all();
}

void Executor::serve(int index) {
  for (;;) {
    WsgiJob job;
    bool have = false;
    {
      // Taking the queue lock with the GIL held cannot deadlock: the loop thread, the only
      // other user of the lock that is not a Python thread, never takes the GIL, and no
      // Python thread waits for the GIL while holding the lock (see below).
      std::lock_guard lock(mutex_);
      if (queued_ > 0) {
        job = pop();
        have = true;
      } else if (stopping_) {
        return;
      }
    }
    if (!have) {
      GilRelease nogil;  // waiting for work: let the other Python threads run
      for (;;) {
        {
          std::lock_guard lock(mutex_);
          if (queued_ > 0) {
            job = pop();
            break;
          }
          if (stopping_) return;  // nothing left; the lock goes before the GIL returns
          ++idle_;
        }
        // A semaphore rather than a condition variable: waking from a condition variable
        // re-takes its mutex in glibc's "contended" mode, so every wake-up cost one more futex
        // call at the unlock. Whoever wakes us has already taken us off idle_.
        idleSem_.acquire();
      }
    }  // the lock is released before `nogil` takes the GIL back
    if (busy_) busy_[index].store(nowMs(), std::memory_order_relaxed);
    app_.run(job);
    if (busy_) busy_[index].store(0, std::memory_order_relaxed);
    if (inFlight_.fetch_sub(1) - 1 < threadCount_ && saturated_.load() && hookLoop_) {
      // Only while saturated does a finished job cost a message to the loop.
      hookLoop_->post([this] {
        if (saturated_.load() && inFlight_.load() < threadCount_) {
          saturated_.store(false);
          saturationHook_(false);
        }
      });
    }
  }
}

}  // namespace portico::python
