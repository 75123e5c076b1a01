#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/unique_fd.h"
#include "python/wsgi_job.h"

namespace portico::python {

// The memory that request bodies are kept in, for one worker: a budget of bytes shared by
// every body being received or read (a body that does not fit goes to a temporary file
// instead) and a small cache of free blocks, so a steady stream of uploads neither faults in
// fresh pages nor hands them back to the kernel per request. Owned by the WsgiRuntime and
// shared by the bodies (which may outlive it on a Python thread); thread-safe: collectors take
// blocks on the loop thread, bodies give them back from Python threads.
class BodyMemory {
 public:
  static constexpr size_t kBlockSize = 256 * 1024;

  // `budget`: bytes of blocks out at once; `maxCached`: free blocks kept for reuse.
  BodyMemory(uint64_t budget, size_t maxCached) : budget_(budget), maxCached_(maxCached) {}
  ~BodyMemory();
  BodyMemory(const BodyMemory&) = delete;
  BodyMemory& operator=(const BodyMemory&) = delete;

  // A block of kBlockSize bytes counted against the budget; null when the budget is spent.
  char* take();
  void give(char* block);
  uint64_t inUse() const;

 private:
  mutable std::mutex mutex_;
  const uint64_t budget_;
  const size_t maxCached_;
  uint64_t inUse_ = 0;
  std::vector<char*> cached_;
};

// One run of body bytes in memory.
struct BodySegment {
  char* data = nullptr;
  size_t size = 0;      // bytes filled
  size_t capacity = 0;
  bool pooled = false;  // a BodyMemory block (else malloc'd, outside the budget)
};

// Owns body segments: gives pooled ones back to their BodyMemory and frees the others when it
// dies. Movable; one owner (thread) at a time.
class BodySegments {
 public:
  explicit BodySegments(std::shared_ptr<BodyMemory> memory) : memory_(std::move(memory)) {}
  BodySegments(BodySegments&& other) noexcept = default;
  BodySegments& operator=(BodySegments&&) = delete;
  ~BodySegments() { clear(); }

  std::vector<BodySegment>& list() { return list_; }
  const std::vector<BodySegment>& list() const { return list_; }
  BodyMemory* memory() const { return memory_.get(); }
  // Appends a pooled block (false when the budget is spent) or a malloc'd segment.
  bool addPooled();
  void addMalloced(size_t capacity);
  // Gives back every segment but the one at `keep`.
  void keepOnly(size_t keep);
  void clear();

 private:
  void release(const BodySegment& segment);

  std::shared_ptr<BodyMemory> memory_;
  std::vector<BodySegment> list_;
};

// A body held in memory: the segments a BodyBuilder filled, read in place.
class MemoryBody : public RequestBody {
 public:
  MemoryBody(BodySegments segments, uint64_t size);
  // A body copied from `data` (small bodies, tests).
  explicit MemoryBody(std::string_view data);
  uint64_t size() const override { return size_; }
  size_t read(uint64_t offset, char* dst, size_t n) const override;
  std::string_view span(uint64_t offset) const override;
  bool fileBacked() const override { return false; }

 private:
  BodySegments segments_;
  std::vector<uint64_t> starts_;  // body offset of each segment
  uint64_t size_;
};

// A body in an unlinked temporary file (nginx's client_body_temp_path), read with pread.
class FileBody : public RequestBody {
 public:
  FileBody(UniqueFd fd, uint64_t size) : fd_(std::move(fd)), size_(size) {}
  uint64_t size() const override { return size_; }
  size_t read(uint64_t offset, char* dst, size_t n) const override;
  bool fileBacked() const override { return true; }

 private:
  UniqueFd fd_;
  uint64_t size_;
};

// A body whose first part was received by the loop (`head`: memory or file) and whose rest is
// lent by the connection while all of it sits in the kernel's receive queue (http::SocketTail):
// reads past the head receive from the socket straight into the caller's memory, in order (a
// read elsewhere in the tail gets nothing). Dying, it closes its duplicate of the socket and
// gives the tail back with the count received, so the connection reads on from there. Made on
// the loop thread, read and destroyed on the job's Python thread.
class TailedBody : public RequestBody {
 public:
  TailedBody(std::shared_ptr<const RequestBody> head, http::SocketTail tail);
  ~TailedBody() override;
  TailedBody(const TailedBody&) = delete;
  TailedBody& operator=(const TailedBody&) = delete;
  uint64_t size() const override { return headSize_ + tailSize_; }
  size_t read(uint64_t offset, char* dst, size_t n) const override;
  std::string_view span(uint64_t offset) const override;
  bool fileBacked() const override { return head_->fileBacked(); }

 private:
  std::shared_ptr<const RequestBody> head_;
  uint64_t headSize_;
  uint64_t tailSize_;
  std::shared_ptr<http::SocketTailLender> lender_;
  mutable std::mutex mutex_;  // reads of the tail (an app may read from two threads)
  mutable UniqueFd fd_;
  mutable uint64_t received_ = 0;
  mutable bool broken_ = false;  // the client went away mid-tail: the rest reads as empty
};

// Builds one request body as it arrives. In memory while it stays within `memoryLimit` and
// the worker's BodyMemory has blocks for it: a first malloc'd segment of at most kSmallSize
// (as small bodies always were), then pooled blocks. Otherwise in an unlinked O_TMPFILE file
// in `tempDirectory`: what is in memory is written in one pwritev, and the rest goes through
// one block-sized staging segment, so the file sees few large writes. The connection receives
// straight into space() (one copy); onBodyData's bytes are copied in by append(). Loop thread;
// one builder per request.
class BodyBuilder {
 public:
  static constexpr size_t kSmallSize = 64 * 1024;

  // `expectedSize`: the Content-Length (none for a chunked body).
  BodyBuilder(std::shared_ptr<BodyMemory> memory, std::string tempDirectory,
              std::optional<uint64_t> expectedSize, uint64_t memoryLimit);
  // client_body_in_file_only: the body goes to the file from its first byte; `keepNamed`: a
  // named file left in place after the request (nginx's `on`), else an unlinked one.
  void fileOnly(bool keepNamed) {
    fileOnly_ = true;
    keepNamed_ = keepNamed;
  }

  // Room for up to `max` more bytes (at least one when max > 0); empty after a failure.
  std::span<char> space(size_t max);
  // `n` bytes were written at the start of the last space().
  void commit(size_t n);
  void append(std::string_view data);
  // The complete body, or null after a failure (logged: the temporary file could not be
  // made or written).
  std::shared_ptr<const RequestBody> finish();

  bool failed() const { return failed_; }
  bool inFile() const { return static_cast<bool>(file_); }
  uint64_t size() const { return size_; }

 private:
  bool addSegment();
  bool spill();
  bool flushStage();
  bool writeAt(const iovec* iov, int count, uint64_t offset);
  void fail(const std::string& what);

  BodySegments segments_;  // in file mode: exactly one, the staging segment
  std::string tempDirectory_;
  std::optional<uint64_t> expectedSize_;
  uint64_t memoryLimit_;
  UniqueFd file_;
  uint64_t fileSize_ = 0;  // bytes written to file_
  uint64_t size_ = 0;
  bool failed_ = false;
  bool fileOnly_ = false;
  bool keepNamed_ = false;
};

}  // namespace portico::python
