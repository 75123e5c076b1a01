#include "python/wsgi_runtime.h"

#include <unistd.h>

#include <cstdlib>

#include "core/log.h"
#include "python/executor.h"
#include "python/interpreter.h"
#include "python/py_ref.h"
#include "python/wsgi_app.h"
#include "python/wsgi_handler.h"

namespace portico::python {

std::unique_ptr<WsgiRuntime> WsgiRuntime::start(const config::Config& config,
                                                event::EventLoop& loop, std::string& error) {
  std::unique_ptr<WsgiRuntime> runtime(new WsgiRuntime());
  InterpreterOptions options;
  options.pythonPath = config.pythonPath;
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd)) options.appDirectory = cwd;
  options.virtualenv = config.virtualenv;
  runtime->interpreter_ = std::make_unique<Interpreter>(options);
  if (!runtime->interpreter_->ok()) {
    error = runtime->interpreter_->error();
    return nullptr;
  }
  WsgiSettings settings;
  settings.multithread = config.threads > 1;
  settings.multiprocess = false;
  {
    GilGuard gil;
    runtime->app_ = WsgiApp::load(config.wsgiApp, settings, error);
  }
  if (!runtime->app_) return nullptr;
  runtime->executor_ = std::make_unique<Executor>(*runtime->app_, config.threads);
  const char* tmp = std::getenv("TMPDIR");
  runtime->handler_ = std::make_unique<WsgiHandler>(loop, *runtime->executor_, config.wsgiMount,
                                                    tmp && *tmp ? tmp : "/tmp");
  return runtime;
}

WsgiRuntime::~WsgiRuntime() {
  handler_.reset();
  if (executor_ && !executor_->stop()) {
    // A Python thread is stuck in the app: finalizing would wait for it forever. Leave the
    // interpreter to the process exit.
    logWarning("a Python thread is still busy at exit; not finalizing the interpreter");
    (void)executor_.release();
    (void)app_.release();
    (void)interpreter_.release();
    return;
  }
  executor_.reset();
  if (app_) {
    GilGuard gil;
    app_.reset();
  }
  interpreter_.reset();
}

http::Handler& WsgiRuntime::handler() { return *handler_; }

void WsgiRuntime::stopThreads() {
  if (executor_) executor_->stop();
}

}  // namespace portico::python
