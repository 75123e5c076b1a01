#pragma once

#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace portico {

// gunicorn's levels with nginx's between them (notice; alert and emerg above critical, which is
// nginx's crit), in order of severity.
enum class LogLevel { kDebug, kInfo, kNotice, kWarning, kError, kCritical, kAlert, kEmerg };

// Parses gunicorn's level names (debug, info, warning, error, critical); false if unknown.
bool parseLogLevel(std::string_view name, LogLevel& out);

// A log destination: "-" means stdout for access logs and stderr for error logs, anything else a
// file opened for append. reopen() (SIGUSR1) re-opens the path; safe from any thread.
class LogFile {
 public:
  LogFile() = default;
  ~LogFile();
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  // Opens `path` ("-" → `dash`); returns false and fills `error` on failure.
  bool open(const std::string& path, FILE* dash, std::string& error);
  // errno of the last open() that failed, for messages in nginx's form.
  int lastErrno() const { return lastErrno_; }
  bool reopen(std::string& error);
  bool isOpen() const { return file_ != nullptr; }
  int fileno();  // the descriptor lines go to, -1 when closed
  // Writes one whole line (a '\n' is appended) with a single write.
  void writeLine(std::string_view line);

 private:
  std::mutex mutex_;
  std::string path_;
  FILE* dash_ = nullptr;
  FILE* file_ = nullptr;
  bool owned_ = false;
  int lastErrno_ = 0;
};

// One `error_log FILE [LEVEL];` of an http/server/location level, opened by the site.
struct ErrorLogTarget {
  LogFile* file = nullptr;
  LogLevel level = LogLevel::kError;
};

// The process-wide error log, gunicorn's format: "[2026-11-22 13:16:46 +0000] [pid] [LEVEL] msg",
// or, for an nginx-style configuration, nginx's: "2026/11/22 13:16:46 [error] PID#0: msg".
// Defaults to stderr at info level until configured. Thread-safe.
class ErrorLog {
 public:
  static ErrorLog& instance();
  bool configure(const std::string& path, LogLevel level, std::string& error);
  bool reopen(std::string& error) { return file_.reopen(error); }
  // Whether a message of `level` is written anywhere (the request's targets, if set).
  bool enabled(LogLevel level) const;
  int fileno() { return file_.fileno(); }
  void write(LogLevel level, std::string_view message);
  // nginx's line format (set once at startup by the nginx-style command line, before threads).
  static void useNginxFormat(bool on);
  // One JSON object per line (time, level, pid, message); set once at startup, before threads.
  static void useJsonFormat(bool on);
  // While a request's location is being served, its error_log targets (null: none; then the
  // process-wide log). Per thread: the loop thread sets it around the request's work.
  static const std::vector<ErrorLogTarget>* setRequestTargets(
      const std::vector<ErrorLogTarget>* targets);

 private:
  LogFile file_;
  LogLevel level_ = LogLevel::kInfo;
};

void logDebug(std::string_view message);
void logInfo(std::string_view message);
void logWarning(std::string_view message);
void logError(std::string_view message);
void logCritical(std::string_view message);

}  // namespace portico
