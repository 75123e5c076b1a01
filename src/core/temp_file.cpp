#include "core/temp_file.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

namespace portico {

TempFile::TempFile(TempFile&& other) noexcept
    : fd_(std::move(other.fd_)), path_(std::move(other.path_)), keep_(other.keep_) {
  other.path_.clear();
}

TempFile& TempFile::operator=(TempFile&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = std::move(other.fd_);
    path_ = std::move(other.path_);
    keep_ = other.keep_;
    other.path_.clear();
  }
  return *this;
}

void TempFile::reset() {
  fd_.reset();
  if (!path_.empty() && !keep_) ::unlink(path_.c_str());
  path_.clear();
}

TempFile TempFile::create(const std::string& directory, bool keep, std::string& error) {
  // nginx numbers its temp files (ngx_create_temp_file: ten digits, retried on EEXIST); a
  // random start per process keeps two workers apart.
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::string dir = tempDirectory(directory);
  int err = 0;
  for (int attempt = 0; attempt < 16; ++attempt) {
    char name[16];
    std::snprintf(name, sizeof name, "%010llu",
                  static_cast<unsigned long long>(random() % 10000000000ULL));
    std::string path = dir + "/" + name;
    int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) {
      TempFile file;
      file.fd_.reset(fd);
      file.path_ = std::move(path);
      file.keep_ = keep;
      return file;
    }
    err = errno;
    if (err != EEXIST) {
      error = "open() \"" + path + "\" failed (" + std::to_string(err) + ": " +
              std::strerror(err) + ")";
      return TempFile();
    }
  }
  error = "open() \"" + dir + "/...\" failed (" + std::to_string(err) + ": " +
          std::strerror(err) + ")";
  return TempFile();
}

std::string tempDirectory(const std::string& configured) {
  if (!configured.empty()) return configured;
  const char* tmp = std::getenv("TMPDIR");
  return tmp && *tmp ? std::string(tmp) : std::string("/tmp");
}

}  // namespace portico
