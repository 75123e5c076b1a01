#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

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
  Executor(WsgiApp& app, int threads, std::atomic<uint64_t>* busy = nullptr);
  ~Executor();  // stop() and join
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  void submit(WsgiJob job);
  // Lets the threads finish the queued jobs and joins them; a thread still busy after
  // `timeoutMs` (an app stuck forever) is abandoned, and false is returned: the process must
  // then exit without finalizing Python.
  bool stop(int timeoutMs = 30000);

 private:
  void threadMain(int index);
  void serve(int index);

  WsgiApp& app_;
  std::atomic<uint64_t>* busy_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<WsgiJob> queue_;
  int idle_ = 0;
  int exited_ = 0;
  bool stopping_ = false;
  bool abandoned_ = false;
  std::condition_variable exitedCond_;
  std::vector<std::thread> threads_;
};

}  // namespace portico::python
