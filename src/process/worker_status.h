#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/request_metrics.h"
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
  // Refreshed by the worker's heartbeat, for the metrics: its resident memory and its Python
  // threads (how many, how many in a request, how many in one past --timeout).
  std::atomic<uint64_t> rssBytes{0};
  std::atomic<uint32_t> pythonThreads{0};
  std::atomic<uint32_t> pythonBusy{0};
  std::atomic<uint32_t> pythonStuck{0};
  std::atomic<uint64_t> startedUnixMs{0};
  std::atomic<uint32_t> exitCause{0};  // RestartCause the worker stops for (max requests, memory)
  RequestMetrics metrics;        // this worker's request counters
  ThreadActivity activity[kActivityThreads];  // what its Python threads run (the status page)
  // Its Python threads' stacks on demand (the status page): a reader bumps stacksAsked; the
  // worker's heartbeat sees it and a helper thread of the worker writes stacksText (cut to
  // fit, NUL-terminated) and stacksUnixMs under stacksSeq (odd while it writes), then sets
  // stacksAnswered to the number it served.
  static constexpr size_t kStacksTextBytes = 16 * 1024;
  mutable std::atomic<uint32_t> stacksAsked{0};  // bumped by readers: see askStacks()
  std::atomic<uint32_t> stacksAnswered{0};
  std::atomic<uint32_t> stacksSeq{0};
  std::atomic<uint64_t> stacksUnixMs{0};
  char stacksText[kStacksTextBytes];
  // Writes a dump (any thread of the worker); readStacks copies the last one (false: none yet,
  // or it was being written).
  void askStacks() const { stacksAsked.fetch_add(1, std::memory_order_release); }
  void writeStacks(uint32_t answered, std::string_view text, uint64_t unixMs);
  bool readStacks(std::string& text, uint64_t& unixMs) const;
};

enum class WorkerState : uint32_t { kFree = 0, kBooting = 1, kReady = 2, kDraining = 3 };

// Why a worker was replaced, counted by the master (portico_worker_restarts_total).
enum class RestartCause : uint32_t {
  kNone = 0,
  kCrash,        // exited with an error or killed by a signal it was not sent
  kTimeout,      // killed by the master: a request stuck past --timeout, or a silent loop
  kMaxRequests,  // recycled itself after --max-requests
  kMemory,       // recycled itself over --max-worker-memory
  kReload,       // replaced by a reload (HUP), retired by TTOU, or its code changed (--reload)
  kCount
};
const char* restartCauseName(RestartCause cause);

// What the master runs as (the health endpoints and the metrics read it).
enum class MasterState : uint32_t { kStarting = 0, kRunning = 1, kReloading = 2, kStopping = 3 };

// The master's part of the board, for the metrics: the counts of workers that are gone (so the
// totals never go back when a worker is replaced), the restarts by cause and the master's
// state. Written by the master only; `foldSeq` is odd while it adds a dead worker's counts, so
// a reader that sums the live slots and these retries rather than count a worker twice.
struct BoardTotals {
  std::atomic<uint64_t> foldSeq{0};
  std::atomic<uint32_t> masterState{0};  // MasterState
  std::atomic<int32_t> masterPid{0};
  std::atomic<uint64_t> masterHeartbeatMs{0};  // CLOCK_MONOTONIC ms, each master tick
  // The master ticks every 200 ms; silent longer than this it is taken for gone or frozen
  // (health_live's 503, the status page's "alive").
  static constexpr uint64_t kMasterSilentLimitMs = 5000;
  // How long the master has been silent at `now`, when past the limit; 0 while it ticks.
  uint64_t masterSilentMs(uint64_t now) const {
    uint64_t beat = masterHeartbeatMs.load(std::memory_order_relaxed);
    return beat != 0 && now > beat && now - beat > kMasterSilentLimitMs ? now - beat : 0;
  }
  std::atomic<uint64_t> startedUnixMs{0};
  std::atomic<uint64_t> reloads{0};
  std::atomic<uint64_t> generation{0};
  std::atomic<uint32_t> targetWorkers{0};
  std::atomic<uint64_t> restarts[static_cast<size_t>(RestartCause::kCount)] = {};
  std::atomic<uint64_t> accepted{0}, handled{0}, requests{0};  // of the dead workers
  RequestMetrics retired;                                 // of the dead workers
  // The status page's charts: every kHistoryEveryMs the master adds the totals so far; point
  // i is at i % kHistoryPoints, written before `historyCount` moves past it.
  static constexpr size_t kHistoryPoints = 120;
  static constexpr uint64_t kHistoryEveryMs = 5000;  // 10 minutes of history
  struct HistoryPoint {
    std::atomic<uint64_t> unixMs{0};
    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> errors{0};  // 5xx
    std::atomic<uint64_t> durationMicros{0};
    std::atomic<uint64_t> buckets[kDurationBuckets] = {};
    // The totals of `metrics` at `unixMs`.
    void store(const RequestMetrics& metrics, uint64_t at);
  };
  HistoryPoint history[kHistoryPoints];
  std::atomic<uint64_t> historyCount{0};
};

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
  const WorkerStatus& slot(size_t i) const { return slotAt(i); }
  BoardTotals& totals() const;
  // The master, before it frees a dead worker's slot: its counts join totals().retired.
  void retire(size_t i);
  // Every live worker's counts plus the retired ones, consistent with a fold in progress.
  // The master: adds the totals so far to the history (the status page's charts).
  void recordHistory(uint64_t unixMs, RequestMetrics& scratch);
  // `metrics` may be null (stub_status wants the connections alone).
  void sum(RequestMetrics* metrics, http::ConnectionCounters& connections) const;
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
  WorkerStatus& slotAt(size_t i) const;
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
uint64_t wallMs();  // CLOCK_REALTIME ms

}  // namespace portico::process
