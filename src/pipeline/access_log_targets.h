#pragma once

// What nginx's log module does between a formatted access-log line and the disk, beyond a
// plain file: `if=` conditions, `gzip[=LEVEL]` output, paths with variables and
// `open_log_file_cache`. Used by SiteHandler for every location's access_log.

#include <ctime>
#include <list>
#include <map>
#include <string>
#include <string_view>

#include "config/site.h"
#include "core/unique_fd.h"

namespace portico::pipeline {

// nginx's `if=` rule: a condition that expands to "" or "0" skips the line. Pure.
inline bool accessLogConditionTrue(std::string_view value) {
  return !(value.empty() || value == "0");
}

// `data` as one complete gzip member at `level` (1..9), as nginx's buffered gzip log writes a
// buffer: members concatenate into a valid gzip file (gunzip reads them all). Pure.
std::string gzipMember(std::string_view data, int level);

// The descriptors of access logs whose path has variables (`open_log_file_cache`), following
// ngx_open_cached_file: a path used `min_uses` times (within `inactive`) keeps its descriptor
// until `valid` runs out; at most `max` paths are remembered, the least recently used is
// forgotten first. Without a cache every line opens and closes its file. One per cache
// directive per worker; loop thread only.
class LogFileCache {
 public:
  explicit LogFileCache(const config::OpenLogFileCache& settings) : settings_(settings) {}

  // Appends `data` to `path` (created 0644 as nginx does); false with errno set on failure.
  bool write(const std::string& path, std::string_view data, std::time_t now);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    UniqueFd fd;               // open once the path reached min_uses
    int uses = 0;
    std::time_t lastUsed = 0;
    std::time_t opened = 0;    // when fd was opened (valid= counts from here)
    std::list<std::string>::iterator lru;
  };
  void expire(std::time_t now);

  config::OpenLogFileCache settings_;
  std::map<std::string, Entry> entries_;
  std::list<std::string> lru_;  // most recently used first
};

// nginx's syslog target: each line one datagram, "<PRI>Mmm dd hh:mm:ss HOST TAG: LINE" (RFC 3164
// as ngx_syslog_add_header writes it; local time, the host name unless `nohostname`). The
// socket is made at the first line; a send that fails is dropped, as nginx's. One per
// access_log per worker; loop thread only.
class SyslogSender {
 public:
  explicit SyslogSender(const config::SyslogSpec& spec) : spec_(spec) {}
  void send(std::string_view line, std::time_t now);
  // The datagram for `line` (pure; for tests).
  static std::string message(const config::SyslogSpec& spec, std::string_view line,
                             std::time_t now, std::string_view hostname);

 private:
  config::SyslogSpec spec_;
  UniqueFd fd_;
};

// Writes all of `data` to `fd` (one write(2) unless interrupted); false with errno set.
bool appendToFile(int fd, std::string_view data);
// Opens `path` for appending as nginx opens log files (O_WRONLY|O_APPEND|O_CREAT, 0644).
UniqueFd openLogForAppend(const std::string& path);

}  // namespace portico::pipeline
