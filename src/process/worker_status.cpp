#include "process/worker_status.h"

#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace portico::process {

namespace {
constexpr size_t kTakerWords = StatusBoard::kMaxTakerSlots / 64;
// The taker mask, on cache lines of its own before the totals, then the slots.
constexpr size_t kMaskBytes = (kTakerWords * sizeof(std::atomic<uint64_t>) + 63) / 64 * 64;
constexpr size_t kHeaderBytes = kMaskBytes + (sizeof(BoardTotals) + 63) / 64 * 64;
}  // namespace

const char* restartCauseName(RestartCause cause) {
  switch (cause) {
    case RestartCause::kCrash: return "crash";
    case RestartCause::kTimeout: return "timeout";
    case RestartCause::kMaxRequests: return "max_requests";
    case RestartCause::kMemory: return "memory";
    case RestartCause::kReload: return "reload";
    case RestartCause::kNone:
    case RestartCause::kCount: break;
  }
  return "none";
}

uint64_t monotonicMs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

uint64_t wallMs() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

StatusBoard::StatusBoard(size_t slots) : slots_(slots) {
  bytes_ = kHeaderBytes + stride() * slots_;
  void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  base_ = static_cast<char*>(p);
  for (size_t i = 0; i < kTakerWords; ++i) new (&takerMask()[i]) std::atomic<uint64_t>(0);
  new (&totals()) BoardTotals();
  for (size_t i = 0; i < slots_; ++i) {
    // Default-initialised: every member has its initialiser but stacksText, whose 16 KiB stay
    // untouched (the mapping's zeroes, not resident) until the worker is asked for its stacks.
    new (&slot(i)) WorkerStatus;
  }
}

StatusBoard::~StatusBoard() {
  if (base_) ::munmap(base_, bytes_);
}

size_t StatusBoard::stride() const {
  return (sizeof(WorkerStatus) + 63) / 64 * 64;  // one cache line apart, so workers do not share lines
}

WorkerStatus& StatusBoard::slot(size_t i) { return slotAt(i); }

WorkerStatus& StatusBoard::slotAt(size_t i) const {
  return *reinterpret_cast<WorkerStatus*>(base_ + kHeaderBytes + stride() * i);
}

BoardTotals& StatusBoard::totals() const {
  return *reinterpret_cast<BoardTotals*>(base_ + kMaskBytes);
}

void StatusBoard::retire(size_t i) {
  BoardTotals& t = totals();
  WorkerStatus& s = slotAt(i);
  t.foldSeq.fetch_add(1, std::memory_order_acq_rel);  // odd: a fold is under way
  t.accepted.fetch_add(s.connections.accepted.load(), std::memory_order_relaxed);
  t.handled.fetch_add(s.connections.handled.load(), std::memory_order_relaxed);
  t.requests.fetch_add(s.connections.requests.load(), std::memory_order_relaxed);
  t.retired.add(s.metrics);
  s.state.store(static_cast<uint32_t>(WorkerState::kFree));
  t.foldSeq.fetch_add(1, std::memory_order_acq_rel);
}

void BoardTotals::HistoryPoint::store(const RequestMetrics& metrics, uint64_t at) {
  unixMs.store(at, std::memory_order_relaxed);
  uint64_t total = 0;
  for (const auto& c : metrics.byClass) total += c.load(std::memory_order_relaxed);
  requests.store(total, std::memory_order_relaxed);
  errors.store(metrics.byClass[5].load(std::memory_order_relaxed), std::memory_order_relaxed);
  durationMicros.store(metrics.durationMicros.load(std::memory_order_relaxed),
                       std::memory_order_relaxed);
  for (size_t b = 0; b < kDurationBuckets; ++b) {
    buckets[b].store(metrics.duration[b].load(std::memory_order_relaxed),
                     std::memory_order_relaxed);
  }
}

void StatusBoard::recordHistory(uint64_t unixMs, RequestMetrics& scratch) {
  BoardTotals& t = totals();
  http::ConnectionCounters connections;
  sum(&scratch, connections);
  uint64_t n = t.historyCount.load(std::memory_order_relaxed);
  t.history[n % BoardTotals::kHistoryPoints].store(scratch, unixMs);
  t.historyCount.store(n + 1, std::memory_order_release);
}

void StatusBoard::sum(RequestMetrics* metrics, http::ConnectionCounters& connections) const {
  const BoardTotals& t = totals();
  for (int attempt = 0;; ++attempt) {
    uint64_t seq = t.foldSeq.load(std::memory_order_acquire);
    if (seq % 2 == 1 && attempt < 100) continue;  // the master folds a few KB: a short wait
    connections = {};
    if (metrics) {
      metrics->clear();
      metrics->add(t.retired);
    }
    connections.accepted = t.accepted.load(std::memory_order_relaxed);
    connections.handled = t.handled.load(std::memory_order_relaxed);
    connections.requests = t.requests.load(std::memory_order_relaxed);
    for (size_t i = 0; i < slots_; ++i) {
      const WorkerStatus& s = slotAt(i);
      if (s.state.load(std::memory_order_acquire) == static_cast<uint32_t>(WorkerState::kFree)) {
        continue;
      }
      if (metrics) metrics->add(s.metrics);
      http::ConnectionCounters c = http::snapshotOf(s.connections);
      connections.accepted += c.accepted;
      connections.handled += c.handled;
      connections.requests += c.requests;
      connections.active += c.active;
      connections.reading += c.reading;
      connections.writing += c.writing;
      connections.waiting += c.waiting;
    }
    if (t.foldSeq.load(std::memory_order_acquire) == seq || attempt >= 100) return;
  }
}

std::atomic<uint64_t>* StatusBoard::takerMask() const {
  return reinterpret_cast<std::atomic<uint64_t>*>(base_);
}

void StatusBoard::setTaker(size_t i, bool takes) {
  slot(i).takesHandOffs.store(takes ? 1 : 0, std::memory_order_relaxed);
  if (i >= kMaxTakerSlots) return;
  uint64_t bit = uint64_t{1} << (i % 64);
  if (takes) {
    takerMask()[i / 64].fetch_or(bit, std::memory_order_release);
  } else {
    takerMask()[i / 64].fetch_and(~bit, std::memory_order_release);
  }
}

bool StatusBoard::otherTaker(size_t i) const {
  size_t words = std::min(kTakerWords, (slots_ + 63) / 64);
  for (size_t w = 0; w < words; ++w) {
    uint64_t mask = takerMask()[w].load(std::memory_order_acquire);
    if (i < kMaxTakerSlots && i / 64 == w) mask &= ~(uint64_t{1} << (i % 64));
    if (mask) return true;
  }
  return false;
}

size_t StatusBoard::claim() {
  for (size_t i = 0; i < slots_; ++i) {
    WorkerStatus& s = slot(i);
    if (s.state.load() != static_cast<uint32_t>(WorkerState::kFree)) continue;
    s.pid = 0;
    s.requests = 0;
    new (&s.connections) http::ConnectionStats();
    s.metrics.clear();
    s.rssBytes = 0;
    s.pythonThreads = 0;
    s.pythonBusy = 0;
    s.pythonStuck = 0;
    s.startedUnixMs = 0;
    s.exitCause = 0;
    for (auto& a : s.activity) a.sinceMs = 0;
    s.stacksAsked = 0;
    s.stacksAnswered = 0;
    s.stacksUnixMs = 0;
    s.heartbeatMs = monotonicMs();
    s.state = static_cast<uint32_t>(WorkerState::kBooting);
    setTaker(i, false);
    return i;
  }
  return SIZE_MAX;
}

BusyBoard::BusyBoard(size_t slots, int threadsPerWorker)
    : slots_(slots), threads_(threadsPerWorker < 1 ? 1 : threadsPerWorker) {
  bytes_ = stride() * slots_;
  void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  base_ = static_cast<char*>(p);
  for (size_t i = 0; i < slots_; ++i) {
    for (int t = 0; t < threads_; ++t) new (&busy(i)[t]) std::atomic<uint64_t>(0);
  }
}

BusyBoard::~BusyBoard() {
  if (base_) ::munmap(base_, bytes_);
}

size_t BusyBoard::stride() const {
  size_t s = sizeof(std::atomic<uint64_t>) * static_cast<size_t>(threads_);
  return (s + 63) / 64 * 64;  // one cache line apart, so workers do not share lines
}

std::atomic<uint64_t>* BusyBoard::busy(size_t i) {
  return reinterpret_cast<std::atomic<uint64_t>*>(base_ + stride() * i);
}

void BusyBoard::reset(size_t i) {
  for (int t = 0; t < threads_; ++t) busy(i)[t].store(0, std::memory_order_relaxed);
}

void WorkerStatus::writeStacks(uint32_t answered, std::string_view text, uint64_t unixMs) {
  stacksSeq.fetch_add(1, std::memory_order_acq_rel);
  size_t n = std::min(text.size(), kStacksTextBytes - 1);
  std::memcpy(stacksText, text.data(), n);
  stacksText[n] = '\0';
  stacksUnixMs.store(unixMs, std::memory_order_relaxed);
  stacksSeq.fetch_add(1, std::memory_order_release);
  stacksAnswered.store(answered, std::memory_order_release);
}

bool WorkerStatus::readStacks(std::string& text, uint64_t& unixMs) const {
  for (int attempt = 0; attempt < 4; ++attempt) {
    uint32_t seq = stacksSeq.load(std::memory_order_acquire);
    if (seq % 2) continue;
    unixMs = stacksUnixMs.load(std::memory_order_relaxed);
    if (unixMs == 0) return false;
    std::string copy(stacksText, ::strnlen(stacksText, kStacksTextBytes));
    std::atomic_thread_fence(std::memory_order_acquire);
    if (stacksSeq.load(std::memory_order_relaxed) != seq) continue;
    text = std::move(copy);
    return true;
  }
  return false;
}

}  // namespace portico::process
