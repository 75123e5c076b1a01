#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>

namespace portico {

// A growable byte buffer with a consumed front, for socket input; owned by one connection,
// one thread. Unlike std::string it never zero-fills the space a read() is about to fill.
class ByteBuffer {
 public:
  ByteBuffer() = default;
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;
  ~ByteBuffer() { std::free(data_); }

  std::string_view view() const { return {data_ + start_, end_ - start_}; }
  size_t size() const { return end_ - start_; }
  bool empty() const { return start_ == end_; }
  size_t capacity() const { return cap_; }

  void consume(size_t n) {
    start_ += n;
    if (start_ == end_) start_ = end_ = 0;
  }
  // Makes room for at least `n` more bytes at the back and returns where to write them.
  char* prepare(size_t n) {
    if (cap_ - end_ >= n) return data_ + end_;
    if (start_ > 0) {  // slide the unconsumed bytes to the front first
      std::memmove(data_, data_ + start_, end_ - start_);
      end_ -= start_;
      start_ = 0;
      if (cap_ - end_ >= n) return data_ + end_;
    }
    if (!data_ && n <= kBlockSize) {
      if (BlockCache& cache = blockCache(); cache.count > 0) {
        data_ = cache.blocks[--cache.count];
        cap_ = kBlockSize;
        return data_;
      }
    }
    size_t want = cap_ ? cap_ * 2 : std::max(n, kBlockSize);
    while (want - end_ < n) want *= 2;
    char* grown = static_cast<char*>(std::realloc(data_, want));
    if (!grown) throw std::bad_alloc();
    data_ = grown;
    cap_ = want;
    return data_ + end_;
  }
  size_t writable() const { return cap_ - end_; }
  void commit(size_t n) { end_ += n; }
  // Gives the memory back when nothing is buffered (idle keep-alive connections hold no
  // buffer). A block of the usual size goes to this thread's small cache, so a busy connection
  // that empties its buffer after every request does not pay for a malloc each time.
  void releaseIfEmpty() {
    if (start_ == end_ && data_) {
      BlockCache& cache = blockCache();
      if (cap_ == kBlockSize && cache.count < kCachedBlocks) {
        cache.blocks[cache.count++] = data_;
      } else {
        std::free(data_);
      }
      data_ = nullptr;
      cap_ = start_ = end_ = 0;
    }
  }

  static constexpr size_t kBlockSize = 16 * 1024;  // the first allocation (a socket read)

 private:
  static constexpr size_t kCachedBlocks = 32;  // at most 512 KiB kept per thread
  // Free blocks of kBlockSize, per thread (a buffer belongs to one thread); freed at exit.
  struct BlockCache {
    char* blocks[kCachedBlocks];
    size_t count = 0;
    ~BlockCache() {
      while (count > 0) std::free(blocks[--count]);
    }
  };
  static BlockCache& blockCache() {
    static thread_local BlockCache cache;
    return cache;
  }

  char* data_ = nullptr;
  size_t start_ = 0;
  size_t end_ = 0;
  size_t cap_ = 0;
};

}  // namespace portico
