#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace portico::process {

// One worker's line in the master's status board: written by the worker (its loop thread and
// its Python threads), read by the master. Lives in shared memory mapped before the forks;
// every field is a lock-free atomic.
struct WorkerStatus {
  std::atomic<int32_t> pid{0};
  std::atomic<uint64_t> requests{0};     // requests completed
  std::atomic<uint64_t> heartbeatMs{0};  // CLOCK_MONOTONIC ms, refreshed by the worker's loop
  std::atomic<uint32_t> state{0};        // WorkerState
  // Followed in memory by `threads` atomics: when each Python thread's current request started
  // (CLOCK_MONOTONIC ms), 0 while it is idle.
};

enum class WorkerState : uint32_t { kFree = 0, kBooting = 1, kReady = 2, kDraining = 3 };

// The shared-memory array of worker slots (MAP_SHARED|MAP_ANONYMOUS), created by the master.
class StatusBoard {
 public:
  StatusBoard(size_t slots, int threadsPerWorker);
  ~StatusBoard();
  StatusBoard(const StatusBoard&) = delete;
  StatusBoard& operator=(const StatusBoard&) = delete;

  bool ok() const { return base_ != nullptr; }
  size_t slots() const { return slots_; }
  int threads() const { return threads_; }
  WorkerStatus& slot(size_t i);
  std::atomic<uint64_t>* busy(size_t i);  // `threads()` entries
  // A free slot (state kFree) or SIZE_MAX; reset to zeroes.
  size_t claim();

 private:
  size_t stride() const;
  char* base_ = nullptr;
  size_t slots_;
  int threads_;
  size_t bytes_ = 0;
};

uint64_t monotonicMs();

}  // namespace portico::process
