#include "config/conf_loader.h"

#include <fnmatch.h>
#include <glob.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace portico::config {
namespace {

// nginx's "(2: No such file or directory)" suffix for a failed system call.
std::string errnoText(int err) {
  return "(" + std::to_string(err) + ": " + std::strerror(err) + ")";
}

}  // namespace

void ConfLoader::addMemoryFile(const std::string& path, std::string text) {
  memory_ = true;
  memoryFiles_[path] = std::move(text);
}

bool ConfLoader::readFile(const std::string& path, std::string& text, std::string& error,
                          bool* readFailed) {
  if (readFailed) *readFailed = false;
  if (memory_) {
    auto it = memoryFiles_.find(path);
    if (it == memoryFiles_.end()) {
      error = "open() \"" + path + "\" failed " + errnoText(ENOENT);
      return false;
    }
    text = it->second;
  } else {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      error = "open() \"" + path + "\" failed " + errnoText(errno);
      return false;
    }
    if (S_ISDIR(st.st_mode)) {
      // nginx opens it fine and fails on pread().
      error = "pread() \"" + path + "\" failed " + errnoText(EISDIR);
      if (readFailed) *readFailed = true;
      return false;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      error = "open() \"" + path + "\" failed " + errnoText(errno ? errno : EACCES);
      return false;
    }
    std::ostringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
  }
  for (const ConfFileText& file : files_) {
    if (file.path == path) return true;
  }
  files_.push_back({path, text});
  return true;
}

bool ConfLoader::expandInclude(const std::string& arg, const std::string& confPrefix,
                               std::vector<std::string>& paths, std::string& error) const {
  std::string pattern = !arg.empty() && arg[0] == '/' ? arg : confPrefix + arg;
  paths.clear();
  if (pattern.find_first_of("*?[") == std::string::npos) {
    paths.push_back(pattern);
    return true;
  }
  if (memory_) {
    for (const auto& [path, text] : memoryFiles_) {  // std::map: already sorted, as glob(3)
      if (::fnmatch(pattern.c_str(), path.c_str(), FNM_PATHNAME | FNM_PERIOD) == 0) {
        paths.push_back(path);
      }
    }
    return true;
  }
  glob_t matches{};
  int rc = ::glob(pattern.c_str(), 0, nullptr, &matches);
  if (rc == 0) {
    for (size_t i = 0; i < matches.gl_pathc; ++i) paths.emplace_back(matches.gl_pathv[i]);
  }
  ::globfree(&matches);
  if (rc != 0 && rc != GLOB_NOMATCH) {
    error = "glob() \"" + pattern + "\" failed " + errnoText(errno ? errno : EIO);
    return false;
  }
  return true;
}

}  // namespace portico::config
