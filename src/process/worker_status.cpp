#include "process/worker_status.h"

#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <new>

namespace portico::process {

namespace {
constexpr size_t kTakerWords = StatusBoard::kMaxTakerSlots / 64;
// The taker mask, on cache lines of its own before the slots.
constexpr size_t kHeaderBytes = (kTakerWords * sizeof(std::atomic<uint64_t>) + 63) / 64 * 64;
}  // namespace

uint64_t monotonicMs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

StatusBoard::StatusBoard(size_t slots) : slots_(slots) {
  bytes_ = kHeaderBytes + stride() * slots_;
  void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  base_ = static_cast<char*>(p);
  for (size_t i = 0; i < kTakerWords; ++i) new (&takerMask()[i]) std::atomic<uint64_t>(0);
  for (size_t i = 0; i < slots_; ++i) {
    new (&slot(i)) WorkerStatus();
  }
}

StatusBoard::~StatusBoard() {
  if (base_) ::munmap(base_, bytes_);
}

size_t StatusBoard::stride() const {
  return (sizeof(WorkerStatus) + 63) / 64 * 64;  // one cache line apart, so workers do not share lines
}

WorkerStatus& StatusBoard::slot(size_t i) {
  return *reinterpret_cast<WorkerStatus*>(base_ + kHeaderBytes + stride() * i);
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

}  // namespace portico::process
