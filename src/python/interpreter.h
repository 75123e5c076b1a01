#pragma once

#include <string>
#include <utility>
#include <vector>

namespace portico::python {

// What the embedded interpreter needs before the app is imported.
struct InterpreterOptions {
  std::vector<std::string> pythonPath;  // --pythonpath entries, first on sys.path
  std::string appDirectory;             // the working directory (where the app module lives)
  std::string virtualenv;               // its site-packages are added, as activating it would
};

// Debian's CPython embedded in this process: started once on the main thread, after which the
// main thread holds no GIL (executor threads take it). Finalized at exit only if nothing else
// is still running Python. One per process.
class Interpreter {
 public:
  explicit Interpreter(const InterpreterOptions& options);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // False (with a message) when CPython could not start or the paths could not be set.
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  // Formats the pending Python exception as traceback text and clears it (GIL held).
  static std::string takeTraceback();

 private:
  std::string error_;
  void* mainState_ = nullptr;  // the PyThreadState saved after start-up
};

}  // namespace portico::python
