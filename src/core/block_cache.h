#pragma once

// Freed blocks of one per-request object type, kept for reuse on the thread that freed them.

#include <cstddef>
#include <new>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define PORTICO_BLOCK_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PORTICO_BLOCK_CACHE 0
#endif
#endif
#ifndef PORTICO_BLOCK_CACHE
#define PORTICO_BLOCK_CACHE 1
#endif

namespace portico {

// A per-thread stack of at most kKeep freed blocks of sizeof(T) (as many as requests may be in
// flight at once in a busy worker; a few MiB at most). Objects made and destroyed
// once per request that are larger than glibc's tcache serves (1 KiB) otherwise go through
// malloc's bins every time, and each such request also consolidates its fast bins. A class
// uses it through its own operator new/delete (`take`/`give`). Compiled out under
// AddressSanitizer, whose use-after-free checks need every block freed for real.
template <class T, size_t kKeep = 512>
class BlockCache {
 public:
  static void* take(size_t size) {
#if PORTICO_BLOCK_CACHE
    Blocks& blocks = cache();
    if (size == sizeof(T) && !blocks.free.empty()) {
      void* block = blocks.free.back();
      blocks.free.pop_back();
      return block;
    }
#endif
    return ::operator new(size);
  }

  static void give(void* block, size_t size) noexcept {
#if PORTICO_BLOCK_CACHE
    Blocks& blocks = cache();
    if (size == sizeof(T) && blocks.free.size() < kKeep) {
      blocks.free.push_back(block);  // capacity reserved: never throws
      return;
    }
#endif
    ::operator delete(block);
  }

 private:
  struct Blocks {
    std::vector<void*> free;
    Blocks() { free.reserve(kKeep); }
    ~Blocks() {
      for (void* block : free) ::operator delete(block);
    }
  };
  static Blocks& cache() {
    thread_local Blocks blocks;
    return blocks;
  }
};

}  // namespace portico
