#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/unique_fd.h"

namespace portico::python {

// --reload-engine: gunicorn's `auto` is inotify when it can be had (here: unless the user's
// inotify instances are used up), else poll.
enum class ReloadEngine { kAuto, kInotify, kPoll };
// gunicorn's names; nullopt for anything else.
std::optional<ReloadEngine> parseReloadEngine(std::string_view name);

// gunicorn's COMPILED_EXT_RE: a module whose __file__ ends in "pyc" or "pyo" is watched by its
// source (the last two letters become "py"), made absolute against `cwd` when relative.
std::string sourceFileOf(std::string_view moduleFile, std::string_view cwd);

// The files a worker watches, grouped by directory: inotify watches directories (an editor that
// renames a new file over the old one replaces the inode a file watch would hold) and each event
// names an entry of one. Pure bookkeeping, no system calls; owned by a SourceWatcher and used on
// its thread (tests use it alone).
class WatchedFiles {
 public:
  // Adds an absolute path; false when it was there already.
  bool add(const std::string& path);
  bool contains(const std::string& path) const { return files_.count(path) != 0; }
  const std::vector<std::string>& files() const { return order_; }
  // The directory part of an absolute path ("/" for a file at the root).
  static std::string directoryOf(std::string_view path);
  // Directories holding a watched file that have not been given to setWatch yet.
  std::vector<std::string> unwatchedDirectories() const;
  // The inotify watch of `directory` (-1: it could not be watched; not asked again).
  void setWatch(const std::string& directory, int wd);
  // The watched file an event of watch `wd` about entry `name` concerns, or null. An event
  // without a name (the directory itself deleted or moved) concerns the directory, returned
  // when it holds a watched file.
  const std::string* match(int wd, std::string_view name) const;

 private:
  std::unordered_set<std::string> files_;
  std::vector<std::string> order_;                   // files_, in the order they came
  std::unordered_map<std::string, int> directories_;  // → watch descriptor, or kPending
  std::unordered_map<int, std::string> byWatch_;
  static constexpr int kPending = -2;
};

// gunicorn's reloader, in C++: watches the source files of the modules in sys.modules (read
// again every second, so modules imported later are watched too) and the extra files, by
// inotify or by polling their mtimes every second, and calls `changed` once, with the file,
// when one changes (after 100 ms without further events, so a file being written is whole when
// the next worker imports it). Owned by a worker's Server; its own thread runs the watch and
// takes the GIL only to read sys.modules; `changed` runs on that thread.
// The SyntaxError compiling the Python source `path` raises, as Python formats it (file, line,
// the line with a caret, the message); "" when it compiles, is no .py file or cannot be read
// (the next import reports that). Takes the GIL; the caller must not hold it.
std::string syntaxErrorOf(const std::string& path);

class SourceWatcher {
 public:
  // `changed` returns true when the change is taken (the watch ends), false to go on watching
  // (the file is not fit to import yet: a syntax error).
  SourceWatcher(ReloadEngine engine, std::vector<std::string> extraFiles,
                std::function<bool(const std::string&)> changed);
  ~SourceWatcher();  // stops and joins the thread
  SourceWatcher(const SourceWatcher&) = delete;
  SourceWatcher& operator=(const SourceWatcher&) = delete;

  // Reads sys.modules and sets the watches now (so a change made once the worker serves is
  // seen), then starts the thread. A watched file modified at or after `bootedAtNs` (wall
  // clock, nanoseconds; 0: none) and not in the future changed while the app was imported,
  // before any watch: it is reported at once. The caller must not hold the GIL. False with
  // `error` when inotify or the thread cannot be had.
  bool start(std::string& error, int64_t bootedAtNs = 0);
  // The wall clock in nanoseconds, as start() compares it with the files' mtimes.
  static int64_t wallClockNs();

 private:
  void run();
  // Waits for the next change of a watched file (settled); nullopt when stopping.
  std::optional<std::string> nextChange();
  // Adds the loaded modules' source files (takes the GIL) and watches new directories.
  void refresh();
  void watchDirectories();
  // inotify: the changed file from the events waiting, or nullopt.
  std::optional<std::string> readEvents();
  // poll: the first file whose mtime differs from the one seen before.
  std::optional<std::string> pollMtimes();
  // Waits up to `ms` for the stop request; true when stopping.
  bool waitForStop(int ms);

  ReloadEngine engine_;
  std::function<bool(const std::string&)> changed_;
  WatchedFiles files_;
  std::unordered_map<std::string, int64_t> mtimes_;  // poll: nanoseconds since the epoch
  UniqueFd inotify_;
  UniqueFd stop_;  // an eventfd written by the destructor
  std::string cwd_;
  std::optional<std::string> changedAtBoot_;  // start() found one: run() reports it
  bool warnedLimit_ = false;  // the inotify watch limit was logged once
  std::thread thread_;
};

}  // namespace portico::python
