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

std::unique_ptr<WsgiRuntime> WsgiRuntime::load(const config::Config& config, std::string& error) {
  std::unique_ptr<WsgiRuntime> runtime(new WsgiRuntime());
  runtime->config_ = &config;
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
  settings.multiprocess = config.workers != 1;
  {
    GilGuard gil;
    runtime->app_ = WsgiApp::load(config.wsgiApp, settings, error);
  }
  if (!runtime->app_) return nullptr;
  return runtime;
}

void WsgiRuntime::startServing(event::EventLoop& loop, std::atomic<uint64_t>* busy) {
  loop_ = &loop;
  executor_ = std::make_unique<Executor>(*app_, config_->threads, busy, &loop);
  const char* tmp = std::getenv("TMPDIR");
  handler_ = std::make_unique<WsgiHandler>(loop, *executor_, config_->wsgiMount,
                                           tmp && *tmp ? tmp : "/tmp");
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

void WsgiRuntime::onSaturation(std::function<void(bool)> hook) {
  executor_->setSaturationHook(*loop_, std::move(hook));
}

void WsgiRuntime::beforeFork() {
  PyGILState_STATE state = PyGILState_Ensure();
  forkGilState_ = static_cast<int>(state);
  PyOS_BeforeFork();
}

void WsgiRuntime::afterForkInParent() {
  PyOS_AfterFork_Parent();
  PyGILState_Release(static_cast<PyGILState_STATE>(forkGilState_));
}

void WsgiRuntime::afterForkInChild() {
  PyOS_AfterFork_Child();
  PyGILState_Release(static_cast<PyGILState_STATE>(forkGilState_));
}

void WsgiRuntime::dumpStacksOn(int signo, int fd) {
  GilGuard gil;
  PyRef faulthandler = PyRef::steal(PyImport_ImportModule("faulthandler"));
  PyRef result;
  if (faulthandler) {
    result = PyRef::steal(PyObject_CallMethod(faulthandler.get(), "register", "iiii", signo, fd,
                                              1 /* all_threads */, 0 /* chain */));
  }
  if (!result) logWarning("cannot install the stack dump for timeouts: " + Interpreter::takeTraceback());
}

}  // namespace portico::python
