#pragma once

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
    size_t want = cap_ ? cap_ * 2 : n;
    while (want - end_ < n) want *= 2;
    char* grown = static_cast<char*>(std::realloc(data_, want));
    if (!grown) throw std::bad_alloc();
    data_ = grown;
    cap_ = want;
    return data_ + end_;
  }
  size_t writable() const { return cap_ - end_; }
  void commit(size_t n) { end_ += n; }
  // Frees the memory when nothing is buffered (idle keep-alive connections hold no buffer).
  void releaseIfEmpty() {
    if (start_ == end_ && data_) {
      std::free(data_);
      data_ = nullptr;
      cap_ = start_ = end_ = 0;
    }
  }

 private:
  char* data_ = nullptr;
  size_t start_ = 0;
  size_t end_ = 0;
  size_t cap_ = 0;
};

}  // namespace portico
