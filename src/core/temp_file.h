#pragma once

#include <string>

#include "core/unique_fd.h"

namespace portico {

// A named temporary file in a temp directory (a request body the upstream engine keeps, whose
// name $request_body_file gives): removed when destroyed unless kept (client_body_in_file_only
// on keeps it, as nginx does, for whoever reads it afterwards). Owned by the request that wrote
// it; any one thread.
class TempFile {
 public:
  TempFile() = default;
  TempFile(TempFile&& other) noexcept;
  TempFile& operator=(TempFile&& other) noexcept;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() { reset(); }

  // Creates a new file, mode 0600, in `directory` (nginx's temp names: ten digits); on failure
  // an invalid TempFile and nginx's words in `error` ("open() \"DIR/...\" failed (13: ...)").
  static TempFile create(const std::string& directory, bool keep, std::string& error);

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  explicit operator bool() const { return static_cast<bool>(fd_); }
  // Closes the file; removes it unless it is kept.
  void reset();
  // The descriptor, for a file that is kept (the name is forgotten, the file stays).
  UniqueFd release() {
    path_.clear();
    return std::move(fd_);
  }

 private:
  UniqueFd fd_;
  std::string path_;
  bool keep_ = false;
};

// The directory temp files go to: `configured`, else $TMPDIR, else /tmp.
std::string tempDirectory(const std::string& configured);

}  // namespace portico
