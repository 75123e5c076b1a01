#include "pipeline/access_log_targets.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zlib.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace portico::pipeline {

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

std::string SyslogSender::message(const config::SyslogSpec& spec, std::string_view line,
                                  std::time_t now, std::string_view hostname) {
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  localtime_r(&now, &tm);
  char head[96];
  std::snprintf(head, sizeof head, "<%d>%s %2d %02d:%02d:%02d ", spec.facility * 8 + spec.severity,
                kMonths[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  std::string out = head;
  if (!spec.noHostname) {
    out.append(hostname);
    out.push_back(' ');
  }
  out.append(spec.tag).append(": ");
  out.append(line);
  return out;
}

void SyslogSender::send(std::string_view line, std::time_t now) {
  if (!fd_) {
    if (!spec_.unixPath.empty()) {
      fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, spec_.unixPath.c_str(), sizeof addr.sun_path - 1);
      if (fd_ && ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        fd_.reset();
      }
    } else {
      bool v6 = spec_.host.find(':') != std::string::npos;
      fd_.reset(::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      sockaddr_storage storage{};
      socklen_t len = 0;
      if (v6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(spec_.port);
        ::inet_pton(AF_INET6, spec_.host.c_str(), &a->sin6_addr);
        len = sizeof *a;
      } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&storage);
        a->sin_family = AF_INET;
        a->sin_port = htons(spec_.port);
        ::inet_pton(AF_INET, spec_.host.c_str(), &a->sin_addr);
        len = sizeof *a;
      }
      if (fd_ && ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&storage), len) != 0) {
        fd_.reset();
      }
    }
    if (!fd_) return;
  }
  static const std::string hostname = [] {
    char buffer[256] = {};
    if (::gethostname(buffer, sizeof buffer - 1) != 0) return std::string("localhost");
    std::string name(buffer);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return name;
  }();
  std::string datagram = message(spec_, line, now, hostname);
  (void)::send(fd_.get(), datagram.data(), datagram.size(), MSG_NOSIGNAL);
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

}  // namespace portico::pipeline
