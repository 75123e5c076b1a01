#include "upstream/response_spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/temp_file.h"

namespace portico::upstream {
namespace {

std::string errnoText(int error) {
  return "(" + std::to_string(error) + ": " + std::strerror(error) + ")";
}


}  // namespace

UniqueFd openUnlinkedTempFile(const std::string& configured, std::string& name,
                              std::string& error) {
  std::string directory = tempDirectory(configured);
  UniqueFd fd(::open(directory.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (fd) {
    struct stat st{};
    ::fstat(fd.get(), &st);
    name = directory + "/#" + std::to_string(st.st_ino);
    return fd;
  }
  int err = errno;
  if (err == EOPNOTSUPP || err == EISDIR || err == EINVAL) {
    // A file system without O_TMPFILE: a named file, unlinked at once.
    name = directory + "/portico-proxy-XXXXXX";
    fd.reset(::mkostemp(name.data(), O_CLOEXEC));
    if (fd) {
      ::unlink(name.c_str());
      return fd;
    }
    err = errno;
  }
  error = "open() \"" + directory + "\" failed " + errnoText(err);
  return UniqueFd();
}

uint64_t ResponseSpool::fileRoom() const {
  if (limits_.maxFile == 0 || spillFailed_) return 0;
  uint64_t used = fileWritten_ + writeBuf_.size();
  return used >= limits_.maxFile ? 0 : limits_.maxFile - used;
}

void ResponseSpool::push(std::string bytes) {
  if (bytes.empty()) return;
  if (!fileInPlay() && memBytes_ < limits_.memory) {
    memBytes_ += bytes.size();
    mem_.push_back(std::move(bytes));
    return;
  }
  // Memory is full (the client is slower than the upstream): the rest goes to the file, in
  // order after what memory holds, while the file has room.
  uint64_t room = tailBytes_ > 0 ? 0 : fileRoom();
  if (room > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(room, bytes.size()));
    writeBuf_.append(bytes.data(), n);
    if (writeBuf_.size() >= limits_.writeSize || fileRoom() == 0) writeOut();
    if (n == bytes.size()) return;
    bytes.erase(0, n);
  }
  tailBytes_ += bytes.size();
  tail_.push_back(std::move(bytes));
}

bool ResponseSpool::canAccept() const {
  if (!fileInPlay() && memBytes_ < limits_.memory) return true;
  if (tailBytes_ == 0 && fileRoom() > 0) return true;
  // The file is full (or failed): reading waits until the client drains memory (nginx's
  // behaviour once max_temp_file_size is reached).
  return memBytes_ + tailBytes_ < limits_.memory;
}

void ResponseSpool::writeOut() {
  if (writeBuf_.empty() || spillFailed_) return;
  if (!file_) {
    std::string name;
    UniqueFd fd = openUnlinkedTempFile(limits_.directory, name, error_);
    if (!fd) {
      spillFailed_ = true;  // writeBuf_ stays in memory, in its place
      return;
    }
    notice_ = "an upstream response is buffered to a temporary file " + name;
    file_ = std::make_shared<const UniqueFd>(std::move(fd));
  }
  size_t done = 0;
  while (done < writeBuf_.size()) {
    ssize_t n = ::pwrite(file_->get(), writeBuf_.data() + done, writeBuf_.size() - done,
                         static_cast<off_t>(fileWritten_ + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ = "pwrite() to a temporary file failed " + errnoText(n < 0 ? errno : ENOSPC);
      spillFailed_ = true;
      // What was written counts; the rest stays in memory, in its place.
      fileWritten_ += done;
      writeBuf_.erase(0, done);
      return;
    }
    done += static_cast<size_t>(n);
  }
  fileWritten_ += done;
  writeBuf_.clear();
}

ResponseSpool::Next ResponseSpool::peek() const {
  if (memBytes_ > 0) return Next::kMemory;
  if (fileSent_ < fileWritten_) return file_.use_count() > 1 ? Next::kFileBusy : Next::kFile;
  if (!writeBuf_.empty() || tailBytes_ > 0) return Next::kMemory;
  return Next::kNothing;
}

SpoolLimits spoolLimits(const config::ProxySettings& settings) {
  SpoolLimits limits;
  limits.memory = static_cast<uint64_t>(settings.buffersNumber) * settings.buffersSize;
  limits.maxFile = settings.maxTempFileSize;
  limits.writeSize = settings.tempFileWriteSize;
  limits.directory = settings.tempPath;
  return limits;
}

bool responseBuffering(bool configured, const std::vector<http::Header>& headers) {
  bool buffering = configured;
  for (const http::Header& header : headers) {
    if (!http::iequals(header.name, "X-Accel-Buffering")) continue;
    if (http::iequals(header.value, "no")) buffering = false;
    if (http::iequals(header.value, "yes")) buffering = true;
  }
  return buffering;
}

BodyChunk ResponseSpool::take(uint64_t maxFile) {
  if (memBytes_ > 0) {
    std::string out = std::move(mem_.front());
    mem_.pop_front();
    memBytes_ -= out.size();
    return BodyChunk(std::move(out));
  }
  if (fileSent_ < fileWritten_) {
    uint64_t length = std::min(maxFile, fileWritten_ - fileSent_);
    FileRange range{file_, fileSent_, length};
    fileSent_ += length;
    return BodyChunk(std::move(range));
  }
  if (!writeBuf_.empty()) {
    // The client caught up with the file: the piece not yet written goes from memory.
    return BodyChunk(std::exchange(writeBuf_, std::string()));
  }
  if (tailBytes_ > 0) {
    std::string out = std::move(tail_.front());
    tail_.pop_front();
    tailBytes_ -= out.size();
    return BodyChunk(std::move(out));
  }
  return BodyChunk();
}

}  // namespace portico::upstream
