#pragma once

#include <atomic>
#include <functional>
#include <cstdint>
#include <memory>
#include <string>

#include "config/config.h"
#include "event/event_loop.h"
#include "http/exchange.h"

namespace portico::python {

class Interpreter;
class WsgiApp;
class Executor;
class WsgiHandler;

// Everything a serving process needs to run its WSGI app: the interpreter, the loaded app, the
// Python threads and the handler the router points at. load() runs where the app is imported
// (a worker after the fork, or the master with --preload); startServing() runs in the worker.
// Torn down in the safe order (threads joined before the app is released, the app before the
// interpreter). Main thread, then the worker's loop thread for the handler.
class WsgiRuntime {
 public:
  // Starts Python and imports the app; null with `error` (the traceback) when that fails.
  static std::unique_ptr<WsgiRuntime> load(const config::Config& config, std::string& error);
  ~WsgiRuntime();

  // Starts the Python threads and builds the handler for `loop`. `busy` (optional) gets one
  // slot per thread for the master's timeout watch.
  void startServing(event::EventLoop& loop, std::atomic<uint64_t>* busy);
  http::Handler& handler();
  // See Executor::setSaturationHook; call after startServing().
  void onSaturation(std::function<void(bool)> hook);

  // Around fork() when the app was preloaded: CPython's own hooks (os.register_at_fork
  // callbacks run in the child; `random` reseeds itself there).
  void beforeFork();
  void afterForkInParent();
  void afterForkInChild();

  // Installs faulthandler on `signo` so the master can have every Python thread's stack written
  // to `fd` (the error log) before it kills a stuck worker.
  void dumpStacksOn(int signo, int fd);

 private:
  WsgiRuntime() = default;
  const config::Config* config_ = nullptr;
  event::EventLoop* loop_ = nullptr;
  std::unique_ptr<Interpreter> interpreter_;
  std::unique_ptr<WsgiApp> app_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<WsgiHandler> handler_;
  int forkGilState_ = 0;  // the PyGILState held across fork()
};

}  // namespace portico::python
