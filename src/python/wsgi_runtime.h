#pragma once

#include <atomic>
#include <functional>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "event/event_loop.h"
#include "http/exchange.h"
#include "python/syntax_error.h"

namespace portico::python {

class Interpreter;
class WsgiApp;
class Executor;
class WsgiHandler;
class BodyMemory;

// Everything a serving process needs to run its WSGI apps: one interpreter, every app the
// site's `wsgi_app` locations name (the same app written twice is loaded once), one Executor
// (Python threads) per app and one handler per location (its SCRIPT_NAME). load() runs where
// the apps are imported (a worker after the fork, or the master with --preload);
// startServing() runs in the worker. Torn down in the safe order (threads joined before the
// apps are released, the apps before the interpreter). Main thread, then the worker's loop
// thread for the handlers.
class WsgiRuntime {
 public:
  // How long the master waits, past --timeout, for the worker's own answer to a stuck request
  // (504, then an asynchronous exception in its Python thread: see Executor) to free the
  // thread before it kills the worker.
  static constexpr uint64_t kTimeoutGraceMs = 2000;

  // Starts Python and imports every app of config.site; null with `error` (the traceback) when
  // that fails. The runtime keeps no reference to `config`: a preloaded runtime outlives the
  // configuration it was loaded with (a reload replaces it).
  static std::unique_ptr<WsgiRuntime> load(const config::Config& config, std::string& error);
  // The wsgi_app specs of `site`, in file order (empty: no app to run).
  static std::vector<const config::WsgiSpec*> specsOf(const config::HttpSite& site);
  // The distinct apps of `site`, in file order, ", "-separated ("" when none): for titles and
  // messages.
  static std::string appNames(const config::HttpSite& site);
  // Python threads a worker would run for `site` (the sum over its distinct apps; 0: no app).
  static int totalThreads(const config::HttpSite& site);
  // Python threads this runtime runs once serving (the sum over its loaded apps).
  int threads() const;
  // With --reload: the apps whose import raised SyntaxError, each served by a stand-in that
  // answers 500 with the traceback (empty otherwise).
  const std::vector<ImportSyntaxError>& syntaxErrors() const { return syntaxErrors_; }
  ~WsgiRuntime();

  // Starts the Python threads for `loop`. `busy` (optional) has threads() slots for the
  // master's timeout watch; a request running past `timeoutMs` (0: never) is answered 504.
  void startServing(event::EventLoop& loop, std::atomic<uint64_t>* busy, uint64_t timeoutMs);
  // Request bodies a worker holds in memory at once (beyond, they go to temporary files), and
  // the free memory it keeps for the next ones.
  static constexpr uint64_t kBodyMemoryBudget = 128ull * 1024 * 1024;
  static constexpr uint64_t kBodyMemoryCached = 64ull * 1024 * 1024;
  // The handler of the location `spec` belongs to (SCRIPT_NAME = spec.scriptName, its
  // wsgi_temp_path), made on first use after startServing(); `spec` must outlive the runtime's
  // serving. Null when spec.app is not one of the loaded apps (a preloaded runtime and a
  // reloaded file that names a new app).
  http::Handler* handlerFor(const config::WsgiSpec& spec);
  // See Executor::setSaturationHook; call after startServing().
  void onSaturation(std::function<void(bool)> hook);
  // How long a new request would wait for a Python thread (Executor::expectedWaitUs; the
  // least over the apps, whichever the request is for).
  uint64_t expectedWaitUs() const;

  // Around fork() when the app was preloaded: CPython's own hooks (os.register_at_fork
  // callbacks run in the child; `random` reseeds itself there).
  // A preloaded runtime in a worker of a reloaded configuration: the apps' environment (-e,
  // wsgi_env) as that configuration says, in os.environ too, as gunicorn's master sets it on
  // each reload before forking.
  void applyEnvironment(const config::Config& config);

  void beforeFork();
  void afterForkInParent();
  void afterForkInChild();

  // Installs faulthandler on `signo` so the master can have every Python thread's stack written
  // to `fd` (the error log) before it kills a stuck worker.
  void dumpStacksOn(int signo, int fd);

  // Has a helper thread take every Python thread's stack (traceback.format_stack, most recent
  // call last, each headed "Thread 0x<ident>") and give the text to `sink`, on that thread.
  // Never blocks the caller: the helper waits for the GIL, which a thread stuck in C code may
  // hold for long. False when a dump is under way already (the caller asks again later).
  static bool dumpStacks(std::function<void(std::string)> sink);

 private:
  WsgiRuntime() = default;
  event::EventLoop* loop_ = nullptr;
  std::unique_ptr<Interpreter> interpreter_;
  struct App {
    std::string spec;  // "module:callable"
    int threads = 1;
    std::unique_ptr<WsgiApp> app;
    std::unique_ptr<Executor> executor;
  };
  struct Mount {
    const config::WsgiSpec* spec;  // the serving configuration's
    std::unique_ptr<WsgiHandler> handler;
  };
  std::vector<App> apps_;
  std::vector<Mount> mounts_;
  std::vector<ImportSyntaxError> syntaxErrors_;
  // Memory for the request bodies of every handler of the worker (set by startServing).
  std::shared_ptr<BodyMemory> bodyMemory_;
  int saturated_ = 0;
  int forkGilState_ = 0;  // the PyGILState held across fork()
};

}  // namespace portico::python
