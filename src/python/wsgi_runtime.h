#pragma once

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
// Python threads and the handler the router points at. Built by the composition root after the
// working directory and environment are set; torn down in the safe order (threads joined before
// the app is released, the app before the interpreter). Loop thread for the handler.
class WsgiRuntime {
 public:
  // Starts Python and imports the app; null with `error` (the traceback) when that fails.
  static std::unique_ptr<WsgiRuntime> start(const config::Config& config, event::EventLoop& loop,
                                            std::string& error);
  ~WsgiRuntime();

  http::Handler& handler();
  // Lets the Python threads finish their jobs and stop (graceful shutdown).
  void stopThreads();

 private:
  WsgiRuntime() = default;
  std::unique_ptr<Interpreter> interpreter_;
  std::unique_ptr<WsgiApp> app_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<WsgiHandler> handler_;
};

}  // namespace portico::python
