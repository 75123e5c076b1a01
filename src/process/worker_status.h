#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "http/stub_status.h"

namespace portico::process {

// One worker's line in the master's status board: written by the worker (its loop thread and
// its Python threads), read by the master. Lives in shared memory mapped before the forks;
// every field is a lock-free atomic.
struct WorkerStatus {
  std::atomic<int32_t> pid{0};
  std::atomic<uint64_t> requests{0};     // requests completed
  std::atomic<uint64_t> heartbeatMs{0};  // CLOCK_MONOTONIC ms, refreshed by the worker's loop
  std::atomic<uint32_t> state{0};        // WorkerState
  // The worker has a free Python thread and takes connections from the hand-off queue (its
  // bit in the board's taker mask mirrors it); cleared by the master when the worker is gone.
  std::atomic<uint32_t> takesHandOffs{0};
  std::atomic<uint64_t> handedOff{0};  // connections given to the hand-off queue
  std::atomic<uint64_t> adopted{0};    // connections taken from it
  http::ConnectionStats connections;   // stub_status's counters of this worker
};

enum class WorkerState : uint32_t { kFree = 0, kBooting = 1, kReady = 2, kDraining = 3 };

// The shared-memory array of worker slots (MAP_SHARED|MAP_ANONYMOUS), created by the master
// before the forks and shared by every generation of workers. A slot's Python thread stamps are
// on a BusyBoard, sized per generation.
class StatusBoard {
 public:
  explicit StatusBoard(size_t slots);
  ~StatusBoard();
  StatusBoard(const StatusBoard&) = delete;
  StatusBoard& operator=(const StatusBoard&) = delete;

  bool ok() const { return base_ != nullptr; }
  size_t slots() const { return slots_; }
  WorkerStatus& slot(size_t i);
  // A free slot (state kFree) or SIZE_MAX; reset to zeroes.
  size_t claim();

  // Hand-off takers (workers with a free Python thread that watch the hand-off queue): the
  // worker in `slot` says whether it takes; the master withdraws a dead worker. Slots past
  // kMaxTakerSlots never take (they still give). One atomic bit per slot, so a sender's
  // question costs a few loads and a worker killed mid-update leaves no half-made state.
  static constexpr size_t kMaxTakerSlots = 256;
  void setTaker(size_t slot, bool takes);
  // True when a worker other than the one in `slot` takes hand-offs now.
  bool otherTaker(size_t slot) const;

 private:
  size_t stride() const;
  std::atomic<uint64_t>* takerMask() const;  // kMaxTakerSlots / 64 words before the slots
  char* base_ = nullptr;
  size_t slots_;
  size_t bytes_ = 0;
};

// When each Python thread of a worker began its current request (CLOCK_MONOTONIC ms, 0 while
// idle), one row of `threads()` stamps per StatusBoard slot, in shared memory: written by the
// worker's Python threads, read by the master's timeout watch. Sized from the threads one
// generation of workers really runs, so a reload that changes the count maps a new board for
// the new workers; the master keeps the old one (the workers forked with it keep their own
// mapping) until the last of its workers is gone. Made by the master; shared_ptr-owned by the
// master and its Worker records.
class BusyBoard {
 public:
  BusyBoard(size_t slots, int threadsPerWorker);
  ~BusyBoard();
  BusyBoard(const BusyBoard&) = delete;
  BusyBoard& operator=(const BusyBoard&) = delete;

  bool ok() const { return base_ != nullptr; }
  size_t slots() const { return slots_; }
  int threads() const { return threads_; }
  std::atomic<uint64_t>* busy(size_t slot);  // `threads()` entries
  void reset(size_t slot);                   // every stamp of `slot` to 0 (idle)

 private:
  size_t stride() const;
  char* base_ = nullptr;
  size_t slots_;
  int threads_;
  size_t bytes_ = 0;
};

uint64_t monotonicMs();

}  // namespace portico::process
