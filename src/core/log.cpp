#include "core/log.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>

#include "core/json.h"
#include "core/statsd.h"

namespace portico {

namespace {
// Written once at startup, before any thread; read by every writer.
bool nginxFormat = false;
bool jsonFormat = false;  // --log-format json, error_log_format json
}  // namespace


bool parseLogLevel(std::string_view name, LogLevel& out) {
  struct Entry {
    std::string_view name;
    LogLevel level;
  };
  static constexpr Entry kLevels[] = {{"debug", LogLevel::kDebug},     {"info", LogLevel::kInfo},
                                      {"warning", LogLevel::kWarning}, {"warn", LogLevel::kWarning},
                                      {"error", LogLevel::kError},     {"critical", LogLevel::kCritical}};
  for (const auto& e : kLevels) {
    if (e.name.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size(); ++i) {
      char c = name[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != e.name[i]) same = false;
    }
    if (same) {
      out = e.level;
      return true;
    }
  }
  return false;
}

LogFile::~LogFile() {
  if (file_ && owned_) std::fclose(file_);
}

bool LogFile::open(const std::string& path, FILE* dash, std::string& error) {
  std::lock_guard lock(mutex_);
  path_ = path;
  dash_ = dash;
  if (path == "-") {
    if (file_ && owned_) std::fclose(file_);
    file_ = dash;
    owned_ = false;
    return true;
  }
  FILE* f = std::fopen(path.c_str(), "ae");
  if (!f) {
    lastErrno_ = errno;
    error = "cannot open log file " + path + ": " + std::strerror(lastErrno_);
    return false;
  }
  if (file_ && owned_) std::fclose(file_);
  file_ = f;
  owned_ = true;
  return true;
}

bool LogFile::reopen(std::string& error) {
  std::lock_guard lock(mutex_);
  if (!owned_) return true;
  FILE* f = std::fopen(path_.c_str(), "ae");
  if (!f) {
    error = "cannot reopen log file " + path_ + ": " + std::strerror(errno);
    return false;
  }
  std::fclose(file_);
  file_ = f;
  return true;
}

int LogFile::fileno() {
  std::lock_guard lock(mutex_);
  return file_ ? ::fileno(file_) : -1;
}

void LogFile::writeLine(std::string_view line) {
  std::lock_guard lock(mutex_);
  if (!file_) return;
  std::string out;
  out.reserve(line.size() + 1);
  out.append(line);
  out.push_back('\n');
  // One write(2) per line so concurrent processes appending to one file never interleave lines.
  std::fflush(file_);
  const char* p = out.data();
  size_t left = out.size();
  int fd = ::fileno(file_);
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

ErrorLog& ErrorLog::instance() {
  static ErrorLog log;
  static bool init = [] {
    std::string ignored;
    log.file_.open("-", stderr, ignored);
    return true;
  }();
  (void)init;
  return log;
}

bool ErrorLog::configure(const std::string& path, LogLevel level, std::string& error) {
  level_ = level;
  return file_.open(path, stderr, error);
}

namespace {
thread_local const std::vector<ErrorLogTarget>* requestTargets = nullptr;
}  // namespace

const std::vector<ErrorLogTarget>* ErrorLog::setRequestTargets(
    const std::vector<ErrorLogTarget>* targets) {
  return std::exchange(requestTargets, targets);
}

bool ErrorLog::enabled(LogLevel level) const {
  if (const std::vector<ErrorLogTarget>* targets = requestTargets) {
    for (const ErrorLogTarget& t : *targets) {
      if (level >= t.level) return true;
    }
    return false;
  }
  return level >= level_;
}

void ErrorLog::useNginxFormat(bool on) { nginxFormat = on; }
void ErrorLog::useJsonFormat(bool on) { jsonFormat = on; }

void ErrorLog::write(LogLevel level, std::string_view message) {
  if (level >= LogLevel::kWarning && Statsd::enabled()) {
    // gunicorn's Statsd logger counts its warning, error and critical lines, logged or not.
    Statsd::increment(level == LogLevel::kWarning ? "gunicorn.log.warning"
                      : level == LogLevel::kError ? "gunicorn.log.error"
                                                  : "gunicorn.log.critical");
  }
  const std::vector<ErrorLogTarget>* targets = requestTargets;
  if (targets) {
    bool any = false;
    for (const ErrorLogTarget& t : *targets) any = any || level >= t.level;
    if (!any) return;
  } else if (!enabled(level)) {
    return;
  }
  static constexpr const char* kNames[] = {"DEBUG", "INFO",     "INFO",     "WARNING",
                                           "ERROR", "CRITICAL", "CRITICAL", "CRITICAL"};
  static constexpr const char* kNginxNames[] = {"debug", "info", "notice", "warn",
                                                "error", "crit", "alert",  "emerg"};
  std::time_t now = std::time(nullptr);
  struct tm tmv;
  localtime_r(&now, &tmv);
  char stamp[64];
  std::string line;
  line.reserve(message.size() + 64);
  if (jsonFormat) {
    // One object per line: ISO 8601 local time, the level as the text format names it.
    static constexpr const char* kJsonNames[] = {"debug",    "info",     "info",     "warning",
                                                 "error",    "critical", "critical", "critical"};
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S%z", &tmv);
    line.append("{\"time\":\"").append(stamp).append("\",\"level\":\"");
    line.append(nginxFormat ? kNginxNames[static_cast<int>(level)] : kJsonNames[static_cast<int>(level)]);
    line.append("\",\"pid\":").append(std::to_string(::getpid())).append(",\"message\":");
    line.append(jsonQuote(message)).append("}");
  } else if (nginxFormat) {
    std::strftime(stamp, sizeof stamp, "%Y/%m/%d %H:%M:%S", &tmv);
    line.append(stamp).append(" [").append(kNginxNames[static_cast<int>(level)]).append("] ");
    line.append(std::to_string(::getpid())).append("#0: ");
  } else {
    std::strftime(stamp, sizeof stamp, "[%Y-%m-%d %H:%M:%S %z]", &tmv);
    line.append(stamp);
    line.append(" [").append(std::to_string(::getpid())).append("] [");
    line.append(kNames[static_cast<int>(level)]).append("] ");
  }
  if (!jsonFormat) line.append(message);
  if (!targets) {
    file_.writeLine(line);
    return;
  }
  for (const ErrorLogTarget& t : *targets) {
    if (level >= t.level && t.file) t.file->writeLine(line);
  }
}

void logDebug(std::string_view m) { ErrorLog::instance().write(LogLevel::kDebug, m); }
void logInfo(std::string_view m) { ErrorLog::instance().write(LogLevel::kInfo, m); }
void logWarning(std::string_view m) { ErrorLog::instance().write(LogLevel::kWarning, m); }
void logError(std::string_view m) { ErrorLog::instance().write(LogLevel::kError, m); }
void logCritical(std::string_view m) { ErrorLog::instance().write(LogLevel::kCritical, m); }

}  // namespace portico
