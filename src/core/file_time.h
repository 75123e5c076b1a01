#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>

namespace portico {

// A file's modification time in nanoseconds since the epoch; nullopt when it cannot be
// stat()ed (missing, unreadable directory). Watchers compare it (--reload's poll engine,
// --touch-reload).
inline std::optional<int64_t> modifiedTimeNs(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

}  // namespace portico
