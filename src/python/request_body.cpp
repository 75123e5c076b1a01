#include "python/request_body.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/log.h"
#include "core/temp_file.h"

namespace portico::python {

// ---------------------------------------------------------------------------------------------
// BodyMemory

BodyMemory::~BodyMemory() {
  for (char* block : cached_) std::free(block);
}

char* BodyMemory::take() {
  {
    std::lock_guard lock(mutex_);
    if (inUse_ + kBlockSize > budget_) return nullptr;
    inUse_ += kBlockSize;
    if (!cached_.empty()) {
      char* block = cached_.back();
      cached_.pop_back();
      return block;
    }
  }
  // Outside the lock: a fresh block may fault in its pages on first use, not here, but malloc
  // itself may take a while.
  char* block = static_cast<char*>(std::malloc(kBlockSize));
  if (!block) {
    std::lock_guard lock(mutex_);
    inUse_ -= kBlockSize;
  }
  return block;
}

void BodyMemory::give(char* block) {
  {
    std::lock_guard lock(mutex_);
    inUse_ -= kBlockSize;
    if (cached_.size() < maxCached_) {
      cached_.push_back(block);
      return;
    }
  }
  std::free(block);
}

uint64_t BodyMemory::inUse() const {
  std::lock_guard lock(mutex_);
  return inUse_;
}

// ---------------------------------------------------------------------------------------------
// BodySegments

bool BodySegments::addPooled() {
  char* block = memory_ ? memory_->take() : nullptr;
  if (!block) return false;
  list_.push_back({block, 0, BodyMemory::kBlockSize, true});
  return true;
}

void BodySegments::addMalloced(size_t capacity) {
  char* data = static_cast<char*>(std::malloc(capacity));
  if (!data) throw std::bad_alloc();
  list_.push_back({data, 0, capacity, false});
}

void BodySegments::keepOnly(size_t keep) {
  for (size_t i = 0; i < list_.size(); ++i) {
    if (i != keep) release(list_[i]);
  }
  BodySegment kept = list_[keep];
  list_.assign(1, kept);
}

void BodySegments::clear() {
  for (const BodySegment& segment : list_) release(segment);
  list_.clear();
}

void BodySegments::release(const BodySegment& segment) {
  if (segment.pooled) {
    memory_->give(segment.data);
  } else {
    std::free(segment.data);
  }
}

// ---------------------------------------------------------------------------------------------
// MemoryBody

MemoryBody::MemoryBody(BodySegments segments, uint64_t size)
    : segments_(std::move(segments)), size_(size) {
  uint64_t at = 0;
  for (const BodySegment& segment : segments_.list()) {
    starts_.push_back(at);
    at += segment.size;
  }
}

MemoryBody::MemoryBody(std::string_view data) : segments_(nullptr), size_(data.size()) {
  if (data.empty()) return;
  segments_.addMalloced(data.size());
  BodySegment& segment = segments_.list().back();
  std::memcpy(segment.data, data.data(), data.size());
  segment.size = data.size();
  starts_.push_back(0);
}

std::string_view MemoryBody::span(uint64_t offset) const {
  if (offset >= size_) return {};
  // The segment holding `offset`: the last one starting at or before it (segments are never
  // empty except possibly the last, which then starts at size_).
  size_t i = static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end(), offset) -
                                 starts_.begin()) - 1;
  const BodySegment& segment = segments_.list()[i];
  size_t at = static_cast<size_t>(offset - starts_[i]);
  return {segment.data + at, segment.size - at};
}

size_t MemoryBody::read(uint64_t offset, char* dst, size_t n) const {
  size_t done = 0;
  while (done < n) {
    std::string_view piece = span(offset + done);
    if (piece.empty()) break;
    size_t take = std::min(piece.size(), n - done);
    std::memcpy(dst + done, piece.data(), take);
    done += take;
  }
  return done;
}

// ---------------------------------------------------------------------------------------------
// FileBody

size_t FileBody::read(uint64_t offset, char* dst, size_t n) const {
  if (offset >= size_) return 0;
  size_t want = static_cast<size_t>(std::min<uint64_t>(n, size_ - offset));
  for (;;) {
    ssize_t got = ::pread(fd_.get(), dst, want, static_cast<off_t>(offset));
    if (got >= 0) return static_cast<size_t>(got);
    if (errno != EINTR) return 0;
  }
}

// ---------------------------------------------------------------------------------------------
// TailedBody

TailedBody::TailedBody(std::shared_ptr<const RequestBody> head, http::SocketTail tail)
    : head_(std::move(head)),
      headSize_(head_->size()),
      tailSize_(tail.size),
      lender_(std::move(tail.lender)),
      fd_(std::move(tail.fd)) {}

TailedBody::~TailedBody() {
  fd_.reset();  // before the connection reads on: no receive can follow the give-back
  if (lender_) lender_->giveBack(received_);
}

std::string_view TailedBody::span(uint64_t offset) const {
  return offset < headSize_ ? head_->span(offset) : std::string_view();
}

size_t TailedBody::read(uint64_t offset, char* dst, size_t n) const {
  size_t done = 0;
  if (offset < headSize_) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, headSize_ - offset));
    done = head_->read(offset, dst, want);
    if (done < want) return done;
  }
  if (done == n) return done;
  std::lock_guard lock(mutex_);
  // The tail is a stream: only its next unread byte can be read.
  if (broken_ || offset + done != headSize_ + received_) return done;
  size_t want = static_cast<size_t>(std::min<uint64_t>(n - done, tailSize_ - received_));
  while (want > 0) {
    ssize_t got = ::recv(fd_.get(), dst + done, want, MSG_DONTWAIT);
    if (got > 0) {
      received_ += static_cast<uint64_t>(got);
      done += static_cast<size_t>(got);
      want -= static_cast<size_t>(got);
    } else if (got < 0 && errno == EINTR) {
      continue;
    } else {
      // The client reset the connection (or closed it early); never EAGAIN, as the whole tail
      // was queued when it was lent. The app sees a short body.
      broken_ = true;
      break;
    }
  }
  return done;
}

// ---------------------------------------------------------------------------------------------
// BodyBuilder

BodyBuilder::BodyBuilder(std::shared_ptr<BodyMemory> memory, std::string tempDirectory,
                         std::optional<uint64_t> expectedSize, uint64_t memoryLimit)
    : segments_(std::move(memory)),
      tempDirectory_(std::move(tempDirectory)),
      expectedSize_(expectedSize),
      memoryLimit_(memoryLimit) {}

std::span<char> BodyBuilder::space(size_t max) {
  if (failed_ || max == 0) return {};
  if (!file_) {
    bool full = segments_.list().empty() ||
                segments_.list().back().size == segments_.list().back().capacity;
    if (full && !addSegment() && !spill()) return {};
  }
  if (file_ && segments_.list().back().size == segments_.list().back().capacity &&
      !flushStage()) {
    return {};
  }
  BodySegment& segment = segments_.list().back();
  return {segment.data + segment.size, std::min(max, segment.capacity - segment.size)};
}

void BodyBuilder::commit(size_t n) {
  segments_.list().back().size += n;
  size_ += n;
}

void BodyBuilder::append(std::string_view data) {
  while (!data.empty()) {
    std::span<char> room = space(data.size());
    if (room.empty()) return;  // failed: the rest is dropped, finish() reports it
    std::memcpy(room.data(), data.data(), room.size());
    commit(room.size());
    data.remove_prefix(room.size());
  }
}

// In memory mode, with the last segment full (or none yet): adds the next one. False when the
// body must go to the file instead.
bool BodyBuilder::addSegment() {
  if (fileOnly_) return false;
  if (segments_.list().empty()) {
    if (expectedSize_ && *expectedSize_ > memoryLimit_) return false;  // straight to the file
    if (!expectedSize_ || *expectedSize_ <= kSmallSize) {
      // A small body (or the start of a chunked one) costs what it always did, outside the
      // budget: its exact size, or kSmallSize.
      segments_.addMalloced(expectedSize_ ? static_cast<size_t>(*expectedSize_) : kSmallSize);
      return true;
    }
  }
  if (size_ >= memoryLimit_) return false;  // a chunked body that grew past the limit
  return segments_.addPooled();
}

// Moves the body to a temporary file: what memory holds so far is written in one go, and the
// largest segment stays as the staging buffer for the rest.
bool BodyBuilder::spill() {
  if (keepNamed_) {
    std::string error;
    TempFile named = TempFile::create(tempDirectory_, true, error);
    if (!named) {
      fail("cannot create a temporary file for a request body: " + error);
      return false;
    }
    file_ = named.release();
  } else {
    file_ = UniqueFd(::open(tempDirectory_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  }
  if (!file_) {
    fail("cannot create a temporary file for a request body in " + tempDirectory_ + ": " +
         std::strerror(errno));
    return false;
  }
  std::vector<BodySegment>& list = segments_.list();
  std::vector<struct iovec> iov;
  for (const BodySegment& segment : list) {
    if (segment.size > 0) iov.push_back({segment.data, segment.size});
  }
  for (size_t at = 0; at < iov.size(); at += IOV_MAX) {
    int count = static_cast<int>(std::min<size_t>(IOV_MAX, iov.size() - at));
    uint64_t offset = 0;
    for (size_t i = 0; i < at; ++i) offset += iov[i].iov_len;
    if (!writeAt(iov.data() + at, count, offset)) return false;
  }
  fileSize_ = size_;
  if (list.empty()) {
    // Straight to the file: a block to stage in, or a small buffer past the budget.
    if (!segments_.addPooled()) segments_.addMalloced(kSmallSize);
  } else {
    size_t keep = 0;
    for (size_t i = 1; i < list.size(); ++i) {
      if (list[i].capacity > list[keep].capacity) keep = i;
    }
    segments_.keepOnly(keep);
  }
  segments_.list().back().size = 0;
  return true;
}

// File mode: writes the staging segment out and empties it.
bool BodyBuilder::flushStage() {
  BodySegment& stage = segments_.list().back();
  if (stage.size == 0) return true;
  struct iovec iov = {stage.data, stage.size};
  if (!writeAt(&iov, 1, fileSize_)) return false;
  fileSize_ += stage.size;
  stage.size = 0;
  return true;
}

bool BodyBuilder::writeAt(const struct iovec* iov, int count, uint64_t offset) {
  std::vector<struct iovec> rest(iov, iov + count);
  size_t first = 0;
  while (first < rest.size()) {
    ssize_t n = ::pwritev(file_.get(), rest.data() + first, static_cast<int>(rest.size() - first),
                          static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      fail(std::string("cannot write a request body to its temporary file: ") +
           (n < 0 ? std::strerror(errno) : "no space written"));
      return false;
    }
    offset += static_cast<uint64_t>(n);
    size_t done = static_cast<size_t>(n);
    while (first < rest.size() && done >= rest[first].iov_len) {
      done -= rest[first].iov_len;
      ++first;
    }
    if (first < rest.size()) {
      rest[first].iov_base = static_cast<char*>(rest[first].iov_base) + done;
      rest[first].iov_len -= done;
    }
  }
  return true;
}

void BodyBuilder::fail(const std::string& what) {
  logError(what);
  failed_ = true;
  file_.reset();
  segments_.clear();
}

std::shared_ptr<const RequestBody> BodyBuilder::finish() {
  if (failed_) return nullptr;
  if (file_) {
    if (!flushStage()) return nullptr;
    segments_.clear();
    return std::make_shared<FileBody>(std::move(file_), size_);
  }
  return std::make_shared<MemoryBody>(std::move(segments_), size_);
}

}  // namespace portico::python
