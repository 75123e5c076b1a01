#include "python/source_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "core/file_time.h"
#include "core/log.h"
#include "python/py_ref.h"

namespace portico::python {
namespace {

constexpr int kRefreshMs = 1000;  // gunicorn's reloader interval
constexpr int kSettleMs = 100;    // quiet time after a change before the worker goes
constexpr int kSettleMaxMs = 1000;
// What an edit can look like: written in place, replaced by a rename (vim, most IDEs),
// deleted and created, or touched (IN_ATTRIB: `touch app.py` is a common way to ask a reload).
constexpr uint32_t kEventMask = IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_CREATE | IN_DELETE |
                                IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |
                                IN_ONLYDIR;

// The __file__ of every module in sys.modules, as bytes in the file system encoding. Takes
// the GIL; the caller must not hold it.
std::vector<std::string> loadedModuleFiles() {
  std::vector<std::string> out;
  if (!Py_IsInitialized()) return out;  // a worker without an app: only the extra files
  GilGuard gil;
  PyObject* modules = PyImport_GetModuleDict();  // borrowed
  // A copy first: reading __file__ may run Python (a module's __getattr__), which may import.
  PyRef values = PyRef::steal(modules ? PyDict_Values(modules) : nullptr);
  if (!values) {
    PyErr_Clear();
    return out;
  }
  out.reserve(static_cast<size_t>(PyList_GET_SIZE(values.get())));
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values.get()); ++i) {
    PyRef file = PyRef::steal(PyObject_GetAttrString(PyList_GET_ITEM(values.get(), i), "__file__"));
    if (!file || !PyUnicode_Check(file.get())) {
      PyErr_Clear();
      continue;
    }
    PyRef bytes = PyRef::steal(PyUnicode_EncodeFSDefault(file.get()));
    char* data = nullptr;
    Py_ssize_t size = 0;
    if (!bytes || PyBytes_AsStringAndSize(bytes.get(), &data, &size) != 0 || size == 0) {
      PyErr_Clear();
      continue;
    }
    out.emplace_back(data, static_cast<size_t>(size));
  }
  return out;
}

}  // namespace

std::optional<ReloadEngine> parseReloadEngine(std::string_view name) {
  if (name == "auto") return ReloadEngine::kAuto;
  if (name == "inotify") return ReloadEngine::kInotify;
  if (name == "poll") return ReloadEngine::kPoll;
  return std::nullopt;
}

std::string sourceFileOf(std::string_view moduleFile, std::string_view cwd) {
  std::string path(moduleFile);
  if (path.size() >= 3 && (path.ends_with("pyc") || path.ends_with("pyo"))) {
    path.replace(path.size() - 3, 3, "py");
  }
  if (!path.empty() && path.front() != '/' && !cwd.empty()) {
    path = (std::filesystem::path(cwd) / path).lexically_normal().string();
  }
  return path;
}

std::string WatchedFiles::directoryOf(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

bool WatchedFiles::add(const std::string& path) {
  if (path.empty() || path.front() != '/' || path.back() == '/') return false;
  if (!files_.insert(path).second) return false;
  order_.push_back(path);
  directories_.emplace(directoryOf(path), kPending);
  return true;
}

std::vector<std::string> WatchedFiles::unwatchedDirectories() const {
  std::vector<std::string> out;
  for (const auto& [directory, wd] : directories_) {
    if (wd == kPending) out.push_back(directory);
  }
  return out;
}

void WatchedFiles::setWatch(const std::string& directory, int wd) {
  directories_[directory] = wd;
  if (wd >= 0) byWatch_[wd] = directory;
}

const std::string* WatchedFiles::match(int wd, std::string_view name) const {
  auto it = byWatch_.find(wd);
  if (it == byWatch_.end()) return nullptr;
  if (name.empty()) return &it->second;  // the directory itself went
  std::string path = it->second == "/" ? "/" + std::string(name) : it->second + "/" + std::string(name);
  auto file = files_.find(path);
  return file == files_.end() ? nullptr : &*file;
}

SourceWatcher::SourceWatcher(ReloadEngine engine, std::vector<std::string> extraFiles,
                             std::function<bool(const std::string&)> changed)
    : engine_(engine), changed_(std::move(changed)) {
  std::error_code ec;
  cwd_ = std::filesystem::current_path(ec).string();
  // Taken as named (gunicorn watches an extra file as given, even one ending in .pyc).
  for (const std::string& file : extraFiles) {
    files_.add(file.empty() || file.front() == '/'
                   ? file
                   : (std::filesystem::path(cwd_) / file).lexically_normal().string());
  }
}

SourceWatcher::~SourceWatcher() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  ssize_t n = ::write(stop_.get(), &one, sizeof one);
  (void)n;
  thread_.join();
}

int64_t SourceWatcher::wallClockNs() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

bool SourceWatcher::start(std::string& error, int64_t bootedAtNs) {
  stop_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_) {
    error = std::string("--reload: eventfd: ") + std::strerror(errno);
    return false;
  }
  if (engine_ != ReloadEngine::kPoll) {
    inotify_.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (inotify_) {
      engine_ = ReloadEngine::kInotify;
    } else if (engine_ == ReloadEngine::kAuto) {
      // EMFILE: fs.inotify.max_user_instances (128 by default) used up by other programs.
      logWarning(std::string("--reload: inotify_init1: ") + std::strerror(errno) +
                 "; watching by polling instead");
      engine_ = ReloadEngine::kPoll;
    } else {
      error = std::string("--reload: inotify_init1: ") + std::strerror(errno) +
              " (--reload-engine poll does without)";
      return false;
    }
  }
  refresh();
  if (bootedAtNs > 0) {
    // An edit saved while the worker imported the app (a Django import takes seconds) came
    // before the watches: the worker may run the old code. A future mtime (a clock skew, an
    // archive's) is left out, or every new worker would go at once again.
    int64_t now = wallClockNs();
    for (const std::string& file : files_.files()) {
      std::optional<int64_t> mtime = modifiedTimeNs(file);
      if (mtime && *mtime >= bootedAtNs && *mtime <= now) {
        changedAtBoot_ = file;
        break;
      }
    }
  }
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    error = std::string("--reload: cannot start the watcher thread: ") + e.what();
    return false;
  }
  return true;
}

void SourceWatcher::refresh() {
  for (const std::string& file : loadedModuleFiles()) files_.add(sourceFileOf(file, cwd_));
  if (engine_ == ReloadEngine::kInotify) {
    watchDirectories();
    return;
  }
  for (const std::string& file : files_.files()) {
    if (mtimes_.count(file)) continue;
    // gunicorn: a file not there yet is skipped.
    if (std::optional<int64_t> mtime = modifiedTimeNs(file)) mtimes_.emplace(file, *mtime);
  }
}

void SourceWatcher::watchDirectories() {
  for (const std::string& directory : files_.unwatchedDirectories()) {
    int wd = ::inotify_add_watch(inotify_.get(), directory.c_str(), kEventMask);
    if (wd < 0 && (errno == ENOSPC || errno == ENOMEM) && !warnedLimit_) {
      warnedLimit_ = true;
      logWarning("--reload: cannot watch " + directory + ": " + std::strerror(errno) +
                 " (raise fs.inotify.max_user_watches, or use --reload-engine poll)");
    }
    // A directory that is not there (a module from a zip file) is not asked again.
    files_.setWatch(directory, wd);
  }
}

std::optional<std::string> SourceWatcher::readEvents() {
  alignas(inotify_event) char buffer[16 * 1024];
  std::optional<std::string> found;
  for (;;) {
    ssize_t n = ::read(inotify_.get(), buffer, sizeof buffer);
    if (n <= 0) break;  // EAGAIN: drained
    for (ssize_t at = 0; at < n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
      at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      if (found || (event->mask & IN_IGNORED) != 0) continue;
      std::string_view name = event->len > 0 ? std::string_view(event->name) : std::string_view();
      if (name.empty() && (event->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) == 0) continue;
      if (const std::string* file = files_.match(event->wd, name)) found = *file;
    }
  }
  return found;
}

std::optional<std::string> SourceWatcher::pollMtimes() {
  for (auto& [file, seen] : mtimes_) {
    std::optional<int64_t> mtime = modifiedTimeNs(file);
    if (mtime && *mtime != seen) {
      seen = *mtime;  // reported once: a change refused (a syntax error) waits for the next
      return file;
    }
  }
  return std::nullopt;
}

bool SourceWatcher::waitForStop(int ms) {
  pollfd fd{stop_.get(), POLLIN, 0};
  return ::poll(&fd, 1, ms) > 0;
}

void SourceWatcher::run() {
  std::optional<std::string> changed = changedAtBoot_;
  for (;;) {
    if (!changed) changed = nextChange();
    if (!changed) return;  // stopping
    if (changed_(*changed)) return;
    changed.reset();
  }
}

std::optional<std::string> SourceWatcher::nextChange() {
  std::optional<std::string> changed;
  while (!changed) {
    if (engine_ == ReloadEngine::kPoll) {
      if (waitForStop(kRefreshMs)) return std::nullopt;
      changed = pollMtimes();
      if (!changed) refresh();
      continue;
    }
    pollfd fds[2] = {{stop_.get(), POLLIN, 0}, {inotify_.get(), POLLIN, 0}};
    int ready = ::poll(fds, 2, kRefreshMs);
    if (ready < 0 && errno != EINTR) {
      logError(std::string("--reload: poll: ") + std::strerror(errno));
      return std::nullopt;
    }
    if (fds[0].revents != 0) return std::nullopt;
    if (fds[1].revents != 0) changed = readEvents();
    if (!changed) refresh();
  }
  // An editor's save is several events (truncate, writes, close, a rename): the file is whole
  // once they stop.
  for (int waited = 0; waited < kSettleMaxMs; waited += kSettleMs) {
    if (engine_ == ReloadEngine::kInotify) {
      pollfd fds[2] = {{stop_.get(), POLLIN, 0}, {inotify_.get(), POLLIN, 0}};
      if (::poll(fds, 2, kSettleMs) <= 0) break;
      if (fds[0].revents != 0) return std::nullopt;
      readEvents();
    } else {
      if (waitForStop(kSettleMs)) return std::nullopt;
      break;
    }
  }
  return changed;
}

std::string syntaxErrorOf(const std::string& path) {
  if (!path.ends_with(".py") || !Py_IsInitialized()) return {};
  GilGuard gil;
  static constexpr const char* kCheck =
      "import traceback\n"
      "result = ''\n"
      "try:\n"
      "    with open(path, 'rb') as f:\n"
      "        compile(f.read(), path, 'exec', dont_inherit=True)\n"
      "except SyntaxError as error:\n"
      "    result = ''.join(traceback.format_exception_only(type(error), error))\n"
      "except Exception:\n"
      "    pass\n";
  PyRef globals = PyRef::steal(PyDict_New());
  PyRef name = PyRef::steal(PyUnicode_DecodeFSDefault(path.c_str()));
  if (!globals || !name || PyDict_SetItemString(globals.get(), "path", name.get()) != 0 ||
      PyDict_SetItemString(globals.get(), "__builtins__", PyEval_GetBuiltins()) != 0) {
    PyErr_Clear();
    return {};
  }
  PyRef done = PyRef::steal(PyRun_String(kCheck, Py_file_input, globals.get(), globals.get()));
  if (!done) {
    PyErr_Clear();
    return {};
  }
  PyObject* result = PyDict_GetItemString(globals.get(), "result");  // borrowed
  const char* text = result && PyUnicode_Check(result) ? PyUnicode_AsUTF8(result) : nullptr;
  if (!text) PyErr_Clear();
  return text ? std::string(text) : std::string();
}

}  // namespace portico::python
