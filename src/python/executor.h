#pragma once

#include <semaphore.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "event/event_loop.h"
#include "python/py_ref.h"
#include "python/wsgi_app.h"
#include "python/wsgi_job.h"

namespace portico::python {

// The Python threads of a worker (--threads): each takes jobs from one queue and runs them
// through the app holding the GIL, which it gives up only to wait for work or on blocking
// calls. Owned by WsgiRuntime; submit() is called from the loop thread, never blocks on Python.
class Executor {
 public:
  // `busy`, when given, has one slot per thread: the CLOCK_MONOTONIC ms at which the thread's
  // current request started, 0 while idle (the master reads it to enforce --timeout).
  // `loop`, when given, is the loop thread that calls submit(): idle Python threads are then
  // woken once after the loop's current batch of events instead of once per job, so the jobs
  // of a batch cost one futex wake and one context switch (the loop and the Python threads
  // usually share a core). The loop must not run deferred work after the executor is gone.
  // `timeoutMs` > 0 (--timeout, needs `loop`): a watchdog thread finds jobs running longer;
  // their client is answered 504 on the loop (ResponseChannel::expire) and their Python thread
  // gets an asynchronous RequestTimeout exception (mod_wsgi's request-timeout), which only
  // fires when the thread runs Python bytecode. A thread stuck in C stays stuck: the master
  // kills the worker after WsgiRuntime::kTimeoutGraceMs more.
  Executor(WsgiApp& app, int threads, std::atomic<uint64_t>* busy = nullptr,
           event::EventLoop* loop = nullptr, uint64_t timeoutMs = 0);
  ~Executor();  // stop() and join
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  void submit(WsgiJob job);

  // Called on `loop`'s thread with true when every Python thread is busy (a new request would
  // wait) and with false when one is free again: a worker among several then stops accepting,
  // so its idle siblings take new connections (as gunicorn's sync workers do by not accepting).
  void setSaturationHook(event::EventLoop& loop, std::function<void(bool)> hook);
  // How long a request submitted now would wait for a thread, estimated (microseconds): 0 when
  // a thread is free or has answered its job (it is only finishing: close(), the GIL); else
  // the soonest running job's expected rest — the mean job time less what it has run, or, once
  // past the mean, as long again as it has run — plus the queued jobs' share of the threads.
  // Any thread; a snapshot.
  uint64_t expectedWaitUs() const;
  // Python thread, from the job's response channel: the running job's response has ended
  // (finished or aborted); what is left of the job is clean-up (the iterable's close()).
  static void noteAnswered();
  // Python thread, from the job's response channel at the response's end: true when this
  // thread's executor has queued jobs (the thread goes on at once). The loop then need not be
  // woken for the response: it goes out at the loop's next wake-up, which the executor's sleep
  // bound makes at most kQuietFlushMs away (under load, the next request's arrival).
  static bool mayPostQuietly();
  static constexpr int kQuietFlushMs = 1;
  // Lets the threads finish the queued jobs and joins them; a thread still busy after
  // `timeoutMs` (an app stuck forever) is abandoned, and false is returned: the process must
  // then exit without finalizing Python.
  bool stop(int timeoutMs = 30000);

 private:
  void threadMain(int index);
  void push(WsgiJob job);  // under mutex_
  void wakeIdle();         // loop thread, after its batch of events
  WsgiJob pop();           // under mutex_, queued_ > 0
  void serve(int index);
  void beginJob(int index, const WsgiJob& job);  // under mutex_
  void watchdogMain();
  // Watchdog thread: times out the job of thread `index` if it is past the timeout.
  void checkJob(int index, uint64_t now, PyRef& timeoutType);

  WsgiApp& app_;
  std::atomic<uint64_t>* busy_;
  event::EventLoop* loop_;
  bool wakeScheduled_ = false;  // loop thread only: wakeIdle() is deferred on loop_
  size_t sleepBound_ = 0;       // loop_'s handle for this executor's sleep bound
  int threadCount_ = 0;
  std::atomic<int> inFlight_{0};     // queued + running jobs
  // Per thread: when its current job started (CLOCK_MONOTONIC us), 0 while idle or once the
  // job has answered.
  std::unique_ptr<std::atomic<uint64_t>[]> unansweredSinceUs_;
  std::atomic<uint64_t> meanJobUs_{0};  // moving mean of job durations
  std::atomic<bool> saturated_{false};
  event::EventLoop* hookLoop_ = nullptr;
  std::function<void(bool)> saturationHook_;  // loop thread only
  std::mutex mutex_;
  // One token per idle thread to wake. A POSIX semaphore: futex calls only to sleep and to wake
  // a sleeper (std::counting_semaphore spins with sched_yield first, which costs syscalls and
  // context switches when the loop and the Python threads share a core).
  class IdleSemaphore {
   public:
    IdleSemaphore() { ::sem_init(&sem_, 0, 0); }
    ~IdleSemaphore() { ::sem_destroy(&sem_); }
    IdleSemaphore(const IdleSemaphore&) = delete;
    IdleSemaphore& operator=(const IdleSemaphore&) = delete;
    void release(int count = 1) {
      for (int i = 0; i < count; ++i) ::sem_post(&sem_);
    }
    void acquire() {
      while (::sem_wait(&sem_) != 0) {
      }  // EINTR: wait again
    }

   private:
    sem_t sem_;
  };
  IdleSemaphore idleSem_;
  // FIFO ring of jobs (a deque would allocate a node every other job: jobs are large).
  std::vector<WsgiJob> ring_;
  size_t head_ = 0;   // index of the oldest job
  size_t queued_ = 0; // jobs in the ring
  int idle_ = 0;  // threads waiting (or about to wait) on idleSem_ and not yet woken
  int exited_ = 0;
  bool stopping_ = false;
  bool abandoned_ = false;
  std::condition_variable exitedCond_;
  std::vector<std::thread> threads_;

  // The job each Python thread runs, as the watchdog sees it. `startedMs` is the thread's own
  // (0 while idle, written with the GIL held when a job ends); seq, channel and request change
  // under mutex_ when the thread takes a job.
  struct Running {
    std::atomic<uint64_t> startedMs{0};
    uint64_t seq = 0;         // jobs this thread has taken
    // The last job the watchdog timed out; read by the thread itself (GIL held) at a job's end.
    std::atomic<uint64_t> expiredSeq{0};
    unsigned long threadId = 0;  // PyThread ident, for PyThreadState_SetAsyncExc
    std::shared_ptr<ResponseChannel> channel;
    std::shared_ptr<const http::Request> request;  // for the log line
  };
  uint64_t timeoutMs_ = 0;  // 0: no watchdog
  std::unique_ptr<Running[]> running_;  // one per thread, when timeoutMs_ > 0
  bool watchdogExited_ = true;          // under mutex_
  std::condition_variable watchdogCond_;  // wakes the watchdog at stop()
  std::thread watchdog_;
};

}  // namespace portico::python
