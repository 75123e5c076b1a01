#include "python/executor.h"

#include <time.h>

#include <algorithm>
#include <string>

#include "core/log.h"
#include "core/request_metrics.h"
#include "python/py_ref.h"

namespace portico::python {

namespace {

constexpr uint64_t kWatchEveryMs = 100;  // the watchdog's period: a timeout is late by this at most

uint64_t nowMs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

// The exception a request past --timeout gets in its Python thread. A BaseException, as
// KeyboardInterrupt, so that an app's `except Exception:` does not swallow it and keep the
// thread stuck. GIL held.
PyRef makeTimeoutType() {
  return PyRef::steal(PyErr_NewExceptionWithDoc(
      "portico.RequestTimeout",
      "Raised in a request's thread by portico when the request outlives --timeout.",
      PyExc_BaseException, nullptr));
}

}  // namespace

Executor::Executor(WsgiApp& app, int threads, std::atomic<uint64_t>* busy, event::EventLoop* loop,
                   uint64_t timeoutMs)
    : app_(app), busy_(busy), loop_(loop) {
  if (threads < 1) threads = 1;
  threadCount_ = threads;
  unansweredSinceUs_ = std::make_unique<std::atomic<uint64_t>[]>(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) unansweredSinceUs_[i].store(0);
  if (timeoutMs > 0 && loop) {
    timeoutMs_ = timeoutMs;
    running_ = std::make_unique<Running[]>(static_cast<size_t>(threads));
  }
  if (loop_) {
    // While jobs wait in the queue, responses may be posted quietly (mayPostQuietly): the loop
    // then sleeps kQuietFlushMs at most. Only the loop adds jobs, so a loop that sees none
    // queued before it sleeps cannot miss a quiet post: a thread posts quietly only while
    // one is queued.
    sleepBound_ = loop_->addSleepBound([this] {
      return inFlight_.load(std::memory_order_acquire) > threadCount_ ? kQuietFlushMs : -1;
    });
  }
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this, i] { threadMain(i); });
  if (timeoutMs_ > 0) {
    watchdogExited_ = false;
    watchdog_ = std::thread([this] { watchdogMain(); });
  }
}

Executor::~Executor() {
  stop();
  if (loop_) loop_->removeSleepBound(sleepBound_);
}

namespace {
// The start of the job the calling Python thread runs (null outside a job).
thread_local std::atomic<uint64_t>* tUnansweredSince = nullptr;
// The executor whose job the calling Python thread runs (null outside a job).
thread_local const Executor* tExecutor = nullptr;

uint64_t nowUs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}
}  // namespace

bool Executor::mayPostQuietly() {
  return tExecutor && tExecutor->loop_ &&
         tExecutor->inFlight_.load(std::memory_order_acquire) > tExecutor->threadCount_;
}

void Executor::noteAnswered() {
  if (tUnansweredSince) tUnansweredSince->store(0, std::memory_order_release);
}

uint64_t Executor::expectedWaitUs() const {
  int inFlight = inFlight_.load(std::memory_order_acquire);
  if (inFlight < threadCount_) return 0;
  uint64_t mean = meanJobUs_.load(std::memory_order_relaxed);
  uint64_t now = nowUs();
  uint64_t soonest = UINT64_MAX;
  for (int t = 0; t < threadCount_; ++t) {
    uint64_t since = unansweredSinceUs_[t].load(std::memory_order_acquire);
    if (since == 0) return 0;  // free, or about to be
    uint64_t ran = now > since ? now - since : 0;
    soonest = std::min(soonest, ran < mean ? mean - ran : ran);
  }
  uint64_t queued = static_cast<uint64_t>(inFlight - threadCount_);
  return soonest + queued * mean / static_cast<uint64_t>(threadCount_);
}

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
    watchdogCond_.notify_all();
    size_t count = threads_.size();
    // The watchdog may wait for the GIL like any Python thread: it is abandoned with them.
    bool done = exitedCond_.wait_for(lock, std::chrono::milliseconds(timeoutMs), [&] {
      return static_cast<size_t>(exited_) == count && watchdogExited_;
    });
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
  if (watchdog_.joinable()) {
    if (abandoned_) {
      watchdog_.detach();
    } else {
      watchdog_.join();
    }
  }
  return !abandoned_;
}

void Executor::threadMain(int index) {
  {
    GilGuard gil;  // this thread's Python state, kept for its whole life
    if (running_) {
      std::lock_guard lock(mutex_);
      running_[index].threadId = PyThread_get_thread_ident();
    }
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
      if (running_) {
        // The last job's channel goes now, under the lock the watchdog reads it with.
        running_[index].channel.reset();
        running_[index].request.reset();
      }
      if (queued_ > 0) {
        job = pop();
        beginJob(index, job);
        have = true;
      } else if (stopping_) {
        return;
      }
    }
    uint64_t poppedUs = 0;  // when a job taken without the GIL was popped
    if (!have) {
      GilRelease nogil;  // waiting for work: let the other Python threads run
      for (;;) {
        {
          std::lock_guard lock(mutex_);
          if (queued_ > 0) {
            job = pop();
            beginJob(index, job);
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
      poppedUs = nowUs();
    }  // the lock is released before `nogil` takes the GIL back
    uint64_t startedUs = nowUs();
    // The wait for the GIL between taking the job and running it (the metrics' GIL wait: other
    // threads of this worker held it).
    if (poppedUs != 0) recordGilWait(startedUs - poppedUs);
    uint64_t started = startedUs / 1000;
    unansweredSinceUs_[index].store(startedUs, std::memory_order_relaxed);
    tUnansweredSince = &unansweredSinceUs_[index];
    tExecutor = this;
    if (busy_) busy_[index].store(started, std::memory_order_relaxed);
    if (running_) running_[index].startedMs.store(started, std::memory_order_relaxed);
    if (job.snapshot.request) {
      noteActivity(static_cast<size_t>(index), job.snapshot.request->method,
                   job.snapshot.request->rawPath, started);
    }
    app_.run(job);
    clearActivity(static_cast<size_t>(index));
    tUnansweredSince = nullptr;
    tExecutor = nullptr;
    unansweredSinceUs_[index].store(0, std::memory_order_relaxed);
    {
      // A moving mean over about the last 8 jobs (threads race on it; any recent value will do).
      uint64_t took = nowUs() - startedUs;
      uint64_t mean = meanJobUs_.load(std::memory_order_relaxed);
      meanJobUs_.store(mean == 0 ? took : mean - mean / 8 + took / 8, std::memory_order_relaxed);
    }
    if (busy_) busy_[index].store(0, std::memory_order_relaxed);
    if (running_) {
      // With the GIL held, which the watchdog holds to raise the exception: it either saw this
      // job running (and marked it expired before), so an exception that has not fired is
      // cleared here instead of firing in the next request, or it sees the thread idle.
      Running& r = running_[index];
      r.startedMs.store(0, std::memory_order_relaxed);
      if (r.expiredSeq.load() == r.seq) PyThreadState_SetAsyncExc(r.threadId, nullptr);
    }
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

void Executor::beginJob(int index, const WsgiJob& job) {
  if (!running_) return;
  Running& r = running_[index];
  ++r.seq;
  r.channel = job.channel;
  r.request = job.snapshot.request;
}

void Executor::watchdogMain() {
  PyRef timeoutType;  // made at the first timeout; released with the GIL below
  {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      watchdogCond_.wait_for(lock, std::chrono::milliseconds(kWatchEveryMs));
      if (stopping_) break;
      lock.unlock();
      uint64_t now = nowMs();
      for (int i = 0; i < threadCount_; ++i) checkJob(i, now, timeoutType);
      lock.lock();
    }
  }
  if (timeoutType) {
    GilGuard gil;
    timeoutType = PyRef();
  }
  std::lock_guard lock(mutex_);
  watchdogExited_ = true;
  exitedCond_.notify_all();
}

void Executor::checkJob(int index, uint64_t now, PyRef& timeoutType) {
  Running& r = running_[index];
  uint64_t started = r.startedMs.load(std::memory_order_relaxed);
  if (started == 0 || now < started || now - started <= timeoutMs_) return;
  uint64_t seq;
  std::shared_ptr<ResponseChannel> channel;
  std::shared_ptr<const http::Request> request;
  {
    std::lock_guard lock(mutex_);
    if (r.expiredSeq.load() == r.seq || r.startedMs.load(std::memory_order_relaxed) == 0) return;
    seq = r.seq;
    r.expiredSeq.store(seq);
    channel = r.channel;
    request = r.request;
  }
  // The client is answered on the loop (which owns the connection), whatever the thread does.
  std::string what = request ? request->method + " " + request->target : std::string("a request");
  uint64_t seconds = (now - started) / 1000;
  uint64_t limit = timeoutMs_ / 1000;
  loop_->post([channel = std::move(channel), what, seconds, limit] {
    if (channel && channel->expire()) {
      logError("request " + what + " has run for " + std::to_string(seconds) + " s (--timeout " +
               std::to_string(limit) + "): answered 504, interrupting its Python thread");
    }
  });
  // Then the thread: the exception fires at its next bytecode. Waiting for the GIL here is
  // what this thread is for (the loop never does).
  GilGuard gil;
  if (!timeoutType) timeoutType = makeTimeoutType();
  if (!timeoutType) {
    PyErr_Clear();
    logError("cannot create portico.RequestTimeout; the stuck thread is left to the master");
    return;
  }
  std::lock_guard lock(mutex_);
  if (r.seq == seq && r.startedMs.load(std::memory_order_relaxed) != 0) {
    PyThreadState_SetAsyncExc(r.threadId, timeoutType.get());
  }
}

}  // namespace portico::python
