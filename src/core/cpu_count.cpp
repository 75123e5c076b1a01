#include "core/cpu_count.h"

#include <sched.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>

namespace portico {

namespace {

std::string readSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool parseNumber(std::string_view text, long long& value) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

// The tighter of two limits, 0 meaning none.
int tighter(int a, int b) { return a > 0 && (b == 0 || a < b) ? a : b; }

// CPUs from a quota and its period, rounded up; 0 for none (or nonsense).
int cpusOf(long long quota, long long period) {
  if (quota <= 0 || period <= 0) return 0;
  return static_cast<int>((quota + period - 1) / period);
}

// v2: "max 100000" (none) or "150000 100000".
int cpuMaxLimit(const std::string& text) {
  std::string_view t = text;
  size_t space = t.find(' ');
  if (space == std::string_view::npos) return 0;
  long long quota = 0, period = 0;
  if (!parseNumber(t.substr(0, space), quota) || !parseNumber(t.substr(space + 1), period)) {
    return 0;  // "max", or unreadable
  }
  return cpusOf(quota, period);
}

// v1: cpu.cfs_quota_us (-1: none) over cpu.cfs_period_us.
int cfsLimit(const std::string& dir) {
  long long quota = 0, period = 0;
  if (!parseNumber(readSmallFile(dir + "/cpu.cfs_quota_us"), quota) ||
      !parseNumber(readSmallFile(dir + "/cpu.cfs_period_us"), period)) {
    return 0;
  }
  return cpusOf(quota, period);
}

// The tightest limit on `path` and its ancestors under `base`; `limitAt` reads one directory.
template <typename LimitAt>
int tightestOnPath(const std::string& base, std::string path, LimitAt limitAt) {
  int tightest = 0;
  for (;;) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    tightest = tighter(limitAt(path == "/" ? base : base + path), tightest);
    if (path.empty() || path == "/") break;
    size_t slash = path.rfind('/');
    path = slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
  }
  return tightest;
}

}  // namespace

int cgroupCpuLimit(std::string_view procCgroup, const std::string& mountRoot) {
  int tightest = 0;
  size_t start = 0;
  while (start < procCgroup.size()) {
    size_t end = procCgroup.find('\n', start);
    if (end == std::string_view::npos) end = procCgroup.size();
    std::string_view line = procCgroup.substr(start, end - start);
    start = end + 1;
    // "hierarchy-ID:controller-list:path"
    size_t first = line.find(':');
    size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    std::string_view id = line.substr(0, first);
    std::string_view controllers = line.substr(first + 1, second - first - 1);
    std::string path(line.substr(second + 1));
    if (id == "0" && controllers.empty()) {
      tightest = tighter(tightestOnPath(mountRoot, path, [](const std::string& dir) {
        return cpuMaxLimit(readSmallFile(dir + "/cpu.max"));
      }), tightest);
      continue;
    }
    bool cpu = false;
    for (size_t at = 0; at <= controllers.size();) {
      size_t comma = controllers.find(',', at);
      if (comma == std::string_view::npos) comma = controllers.size();
      cpu |= controllers.substr(at, comma - at) == "cpu";
      at = comma + 1;
    }
    if (!cpu) continue;
    // Mounted by its controller list ("cpu,cpuacct", often with a "cpu" link to it) or alone.
    for (const std::string& mount :
         {mountRoot + "/" + std::string(controllers), mountRoot + "/cpu"}) {
      int limit = tightestOnPath(mount, path, cfsLimit);
      if (limit > 0) {
        tightest = tighter(limit, tightest);
        break;
      }
    }
  }
  return tightest;
}

int usableCpuCount() {
  int cpus = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) cpus = CPU_COUNT(&set);
  if (cpus <= 0) {
    long online = ::sysconf(_SC_NPROCESSORS_ONLN);
    cpus = online > 0 ? static_cast<int>(online) : 1;
  }
  int quota = cgroupCpuLimit(readSmallFile("/proc/self/cgroup"), "/sys/fs/cgroup");
  if (quota > 0 && quota < cpus) cpus = quota;
  return cpus > 0 ? cpus : 1;
}

}  // namespace portico
