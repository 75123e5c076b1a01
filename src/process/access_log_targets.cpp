#include "process/access_log_targets.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>

namespace portico::process {

std::string gzipMember(std::string_view data, int level) {
  z_stream z{};
  // windowBits 15 + 16: zlib writes the gzip header and trailer (one member).
  if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out(deflateBound(&z, static_cast<uLong>(data.size())) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&z, Z_FINISH);
  size_t produced = out.size() - z.avail_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return {};
  out.resize(produced);
  return out;
}

UniqueFd openLogForAppend(const std::string& path) {
  return UniqueFd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
}

bool appendToFile(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void LogFileCache::expire(std::time_t now) {
  // ngx_expire_old_cached_files: drop what was not used within `inactive`, oldest first.
  while (!lru_.empty()) {
    auto it = entries_.find(lru_.back());
    if (now - it->second.lastUsed <= settings_.inactiveSeconds) break;
    lru_.pop_back();
    entries_.erase(it);
  }
}

bool LogFileCache::write(const std::string& path, std::string_view data, std::time_t now) {
  expire(now);
  auto it = entries_.find(path);
  if (it == entries_.end()) {
    // A path that cannot be opened is not remembered (nginx does not cache log open errors).
    UniqueFd fd = openLogForAppend(path);
    if (!fd) return false;
    // Past `max`, the least recently used path is forgotten (its descriptor closed).
    if (static_cast<int>(entries_.size()) >= settings_.max && !lru_.empty()) {
      entries_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(path);
    Entry& e = entries_.emplace(path, Entry{}).first->second;
    e.lru = lru_.begin();
    e.uses = 1;
    e.lastUsed = now;
    bool ok = appendToFile(fd.get(), data);
    if (e.uses >= settings_.minUses) {
      e.fd = std::move(fd);
      e.opened = now;
    }
    return ok;
  }
  Entry& e = it->second;
  lru_.splice(lru_.begin(), lru_, e.lru);
  e.lastUsed = now;
  ++e.uses;
  if (e.fd && now - e.opened < settings_.validSeconds) return appendToFile(e.fd.get(), data);
  // Not kept open yet, or kept past `valid`: the path is opened again.
  UniqueFd fd = openLogForAppend(path);
  if (!fd) {
    int saved = errno;
    lru_.erase(e.lru);
    entries_.erase(it);
    errno = saved;
    return false;
  }
  bool ok = appendToFile(fd.get(), data);
  if (e.uses >= settings_.minUses) {
    e.fd = std::move(fd);
    e.opened = now;
  } else {
    e.fd.reset();
  }
  return ok;
}

}  // namespace portico::process
