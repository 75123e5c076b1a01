#include "python/wsgi_runtime.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <functional>

#include "core/log.h"
#include "core/temp_file.h"
#include "python/executor.h"
#include "python/interpreter.h"
#include "python/py_ref.h"
#include "python/request_body.h"
#include "python/wsgi_app.h"
#include "python/wsgi_handler.h"

namespace portico::python {

std::vector<const config::WsgiSpec*> WsgiRuntime::specsOf(const config::HttpSite& site) {
  std::vector<const config::WsgiSpec*> out;
  std::function<void(const std::vector<config::Location>&)> walk =
      [&](const std::vector<config::Location>& locations) {
        for (const config::Location& l : locations) {
          if (l.settings.wsgi) out.push_back(&*l.settings.wsgi);
          walk(l.children);
        }
      };
  for (const config::VirtualServer& server : site.servers) walk(server.locations);
  return out;
}

std::string WsgiRuntime::appNames(const config::HttpSite& site) {
  std::vector<std::string> seen;
  std::string out;
  for (const config::WsgiSpec* spec : specsOf(site)) {
    if (std::find(seen.begin(), seen.end(), spec->app) != seen.end()) continue;
    seen.push_back(spec->app);
    out += (out.empty() ? "" : ", ") + spec->app;
  }
  return out;
}

std::unique_ptr<WsgiRuntime> WsgiRuntime::load(const config::Config& config, std::string& error) {
  std::unique_ptr<WsgiRuntime> runtime(new WsgiRuntime());
  std::vector<const config::WsgiSpec*> specs = specsOf(config.site);
  // One process, one environment and one working directory: every app's wsgi_env is set
  // (a key two apps set differently keeps the first value, with a warning), and the first
  // wsgi_chdir is the directory the apps start in (gunicorn's --chdir).
  std::vector<std::pair<std::string, std::string>> applied;
  std::string chdirTo;
  for (const config::WsgiSpec* spec : specs) {
    for (const auto& [key, value] : spec->env) {
      auto it = std::find_if(applied.begin(), applied.end(),
                             [&k = key](const auto& kv) { return kv.first == k; });
      if (it != applied.end()) {
        if (it->second != value) {
          logWarning("wsgi_env " + key + ": the apps of one worker share one environment; "
                     "keeping \"" + it->second + "\"");
        }
        continue;
      }
      ::setenv(key.c_str(), value.c_str(), 1);
      applied.emplace_back(key, value);
    }
    if (!spec->chdir.empty()) {
      if (chdirTo.empty()) {
        chdirTo = spec->chdir;
      } else if (chdirTo != spec->chdir) {
        logWarning("wsgi_chdir " + spec->chdir + ": the apps of one worker share one working "
                   "directory; staying in " + chdirTo);
      }
    }
  }
  if (!chdirTo.empty() && chdirTo != config.chdir && ::chdir(chdirTo.c_str()) != 0) {
    error = "cannot change directory to " + chdirTo + ": " + std::strerror(errno);
    return nullptr;
  }

  InterpreterOptions options;
  // One interpreter: the python paths of every app, in order, each once.
  for (const config::WsgiSpec* spec : specs) {
    for (const std::string& path : spec->pythonPath) {
      if (std::find(options.pythonPath.begin(), options.pythonPath.end(), path) ==
          options.pythonPath.end()) {
        options.pythonPath.push_back(path);
      }
    }
  }
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd)) options.appDirectory = cwd;
  for (const config::WsgiSpec* spec : specs) {
    if (options.virtualenv.empty() && !spec->virtualenv.empty()) options.virtualenv = spec->virtualenv;
  }
  if (options.virtualenv.empty()) {
    // As activating it would: gunicorn users run it from an activated virtualenv.
    if (const char* venv = std::getenv("VIRTUAL_ENV"); venv && *venv) options.virtualenv = venv;
  }
  runtime->interpreter_ = std::make_unique<Interpreter>(options);
  if (!runtime->interpreter_->ok()) {
    error = runtime->interpreter_->error();
    return nullptr;
  }
  for (const config::WsgiSpec* spec : specs) {
    bool loaded = false;
    for (const App& app : runtime->apps_) loaded |= app.spec == spec->app;
    if (!loaded) {
      App app;
      app.spec = spec->app;
      app.threads = std::max(1, spec->threads);
      WsgiSettings settings;
      settings.multithread = app.threads > 1;
      settings.multiprocess = config.workers != 1;
      ImportSyntaxError syntaxError;
      {
        GilGuard gil;
        app.app = WsgiApp::load(spec->app, settings, error, config.reload ? &syntaxError : nullptr);
      }
      if (!app.app) return nullptr;
      if (!syntaxError.traceback.empty()) {
        syntaxError.app = spec->app;
        runtime->syntaxErrors_.push_back(std::move(syntaxError));
      }
      runtime->apps_.push_back(std::move(app));
    }
  }
  return runtime;
}

void WsgiRuntime::startServing(event::EventLoop& loop, std::atomic<uint64_t>* busy,
                               uint64_t timeoutMs) {
  loop_ = &loop;
  // The master's timeout board has one slot per thread of the worker, apps in order.
  std::atomic<uint64_t>* slot = busy;
  for (App& app : apps_) {
    app.executor = std::make_unique<Executor>(*app.app, app.threads, slot, &loop, timeoutMs);
    if (slot) slot += app.threads;
  }
  bodyMemory_ = std::make_shared<BodyMemory>(kBodyMemoryBudget,
                                             kBodyMemoryCached / BodyMemory::kBlockSize);
}

int WsgiRuntime::threads() const {
  int total = 0;
  for (const App& app : apps_) total += app.threads;
  return total;
}

int WsgiRuntime::totalThreads(const config::HttpSite& site) {
  std::vector<const config::WsgiSpec*> specs = specsOf(site);
  std::vector<std::string> seen;
  int total = 0;
  for (const config::WsgiSpec* spec : specs) {
    if (std::find(seen.begin(), seen.end(), spec->app) != seen.end()) continue;
    seen.push_back(spec->app);
    total += std::max(1, spec->threads);
  }
  return total;
}

WsgiRuntime::~WsgiRuntime() {
  for (Mount& mount : mounts_) mount.handler.reset();
  bool stuck = false;
  for (App& app : apps_) {
    if (app.executor && !app.executor->stop()) stuck = true;
  }
  if (stuck) {
    // A Python thread is stuck in an app: finalizing would wait for it forever. Leave the
    // interpreter to the process exit.
    logWarning("a Python thread is still busy at exit; not finalizing the interpreter");
    for (App& app : apps_) {
      (void)app.executor.release();
      (void)app.app.release();
    }
    (void)interpreter_.release();
    return;
  }
  for (App& app : apps_) app.executor.reset();
  // A load that failed before the interpreter started (a wsgi_chdir that does not exist) has
  // no Python to take the GIL of.
  if (interpreter_) {
    GilGuard gil;
    for (App& app : apps_) app.app.reset();
  }
  interpreter_.reset();
}

http::Handler* WsgiRuntime::handlerFor(const config::WsgiSpec& spec) {
  for (Mount& mount : mounts_) {
    if (mount.spec == &spec) return mount.handler.get();
  }
  App* app = nullptr;
  for (App& candidate : apps_) {
    if (candidate.spec == spec.app) app = &candidate;
  }
  if (!app || !app->executor) return nullptr;
  // A named location (`location @app`) has no prefix: the app sees the whole URI, as a
  // proxy_pass there passes it.
  std::string prefix = spec.scriptName.starts_with('@') ? std::string() : spec.scriptName;
  std::string temp = tempDirectory(spec.tempPath);
  std::optional<http::ForwardedTrust> trust;
  if (spec.forwardedAllowIps) {
    trust.emplace();
    trust->allowIps = *spec.forwardedAllowIps;
  }
  mounts_.push_back({&spec, std::make_unique<WsgiHandler>(*loop_, *app->executor, prefix,
                                                          std::move(temp), bodyMemory_,
                                                          std::move(trust))});
  mounts_.back().handler->bodyInFileOnly(spec.bodyInFileOnly, spec.keepBodyFile);
  return mounts_.back().handler.get();
}

void WsgiRuntime::onSaturation(std::function<void(bool)> hook) {
  // The worker is saturated when every app's threads are busy (a request for any app waits).
  auto shared = std::make_shared<std::function<void(bool)>>(std::move(hook));
  for (App& app : apps_) {
    app.executor->setSaturationHook(*loop_, [this, shared](bool saturated) {
      int before = saturated_;
      saturated_ += saturated ? 1 : -1;
      int all = static_cast<int>(apps_.size());
      if (saturated_ == all && before != all) (*shared)(true);
      if (saturated_ != all && before == all) (*shared)(false);
    });
  }
}

uint64_t WsgiRuntime::expectedWaitUs() const {
  uint64_t least = UINT64_MAX;
  for (const App& app : apps_) {
    if (app.executor) least = std::min(least, app.executor->expectedWaitUs());
  }
  return least == UINT64_MAX ? 0 : least;
}

void WsgiRuntime::applyEnvironment(const config::Config& config) {
  GilGuard gil;
  PyRef os = PyRef::steal(PyImport_ImportModule("os"));
  PyRef environ = os ? PyRef::steal(PyObject_GetAttrString(os.get(), "environ")) : PyRef();
  for (const config::WsgiSpec* spec : specsOf(config.site)) {
    for (const auto& [key, value] : spec->env) {
      PyRef k = PyRef::steal(PyUnicode_DecodeFSDefault(key.c_str()));
      PyRef v = PyRef::steal(PyUnicode_DecodeFSDefault(value.c_str()));
      // os.environ's __setitem__ calls putenv as well.
      if (!environ || !k || !v || PyObject_SetItem(environ.get(), k.get(), v.get()) != 0) {
        logWarning("cannot set " + key + " in os.environ: " + Interpreter::takeTraceback());
      }
    }
  }
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

namespace {

std::atomic<bool> gStacksInFlight{false};

// Every thread's stack but the helper's own; threads with no Python frame (an idle Python
// thread waits in C) have none to show.
constexpr const char* kStacksScript = R"PY(
import sys, threading, traceback
def portico_stacks():
    names = {t.ident: t.name for t in threading.enumerate()}
    me = threading.get_ident()
    out = []
    for ident, frame in sorted(sys._current_frames().items()):
        if ident == me:
            continue
        name = " (%s)" % names[ident] if ident in names else ""
        out.append("Thread 0x%016x%s, most recent call last:\n%s"
                   % (ident, name, "".join(traceback.format_stack(frame))))
    return "\n".join(out) if out else "No Python thread is running Python code.\n"
)PY";

struct StacksJob {
  std::function<void(std::string)> sink;
};

std::string takeStacks() {
  GilGuard gil;  // first in, last out: every PyRef below is released under it
  PyRef globals = PyRef::steal(PyDict_New());
  if (!globals || PyDict_SetItemString(globals.get(), "__builtins__", PyEval_GetBuiltins()) != 0) {
    return "cannot take the stacks: " + Interpreter::takeTraceback();
  }
  PyRef module = PyRef::steal(PyRun_String(kStacksScript, Py_file_input, globals.get(), globals.get()));
  PyObject* fn = module ? PyDict_GetItemString(globals.get(), "portico_stacks") : nullptr;  // borrowed
  PyRef result = fn ? PyRef::steal(PyObject_CallNoArgs(fn)) : PyRef();
  Py_ssize_t size = 0;
  const char* utf8 = result && PyUnicode_Check(result.get())
                         ? PyUnicode_AsUTF8AndSize(result.get(), &size)
                         : nullptr;
  if (!utf8) return "cannot take the stacks: " + Interpreter::takeTraceback();
  return std::string(utf8, static_cast<size_t>(size));
}

// A plain thread (no std::thread): should the interpreter be finalising while it waits for the
// GIL, CPython ends the thread with pthread_exit, which must not unwind through a noexcept frame.
void* stacksThread(void* arg) {
  std::unique_ptr<StacksJob> job(static_cast<StacksJob*>(arg));
  std::string text = takeStacks();
  job->sink(std::move(text));
  gStacksInFlight.store(false, std::memory_order_release);
  return nullptr;
}

}  // namespace

bool WsgiRuntime::dumpStacks(std::function<void(std::string)> sink) {
  if (gStacksInFlight.exchange(true, std::memory_order_acq_rel)) return false;
  auto job = std::make_unique<StacksJob>(StacksJob{std::move(sink)});
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t thread;
  int rc = pthread_create(&thread, &attr, stacksThread, job.get());
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    gStacksInFlight.store(false, std::memory_order_release);
    logWarning(std::string("cannot start a thread to take the Python stacks: ") + std::strerror(rc));
    return false;
  }
  job.release();  // the thread owns it now
  return true;
}

}  // namespace portico::python
