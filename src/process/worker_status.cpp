#include "process/worker_status.h"

#include <sys/mman.h>
#include <time.h>

#include <new>

namespace portico::process {

uint64_t monotonicMs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

StatusBoard::StatusBoard(size_t slots, int threadsPerWorker)
    : slots_(slots), threads_(threadsPerWorker < 1 ? 1 : threadsPerWorker) {
  bytes_ = stride() * slots_;
  void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  base_ = static_cast<char*>(p);
  for (size_t i = 0; i < slots_; ++i) {
    new (&slot(i)) WorkerStatus();
    for (int t = 0; t < threads_; ++t) new (&busy(i)[t]) std::atomic<uint64_t>(0);
  }
}

StatusBoard::~StatusBoard() {
  if (base_) ::munmap(base_, bytes_);
}

size_t StatusBoard::stride() const {
  size_t s = sizeof(WorkerStatus) + sizeof(std::atomic<uint64_t>) * static_cast<size_t>(threads_);
  return (s + 63) / 64 * 64;  // one cache line apart, so workers do not share lines
}

WorkerStatus& StatusBoard::slot(size_t i) {
  return *reinterpret_cast<WorkerStatus*>(base_ + stride() * i);
}

std::atomic<uint64_t>* StatusBoard::busy(size_t i) {
  return reinterpret_cast<std::atomic<uint64_t>*>(base_ + stride() * i + sizeof(WorkerStatus));
}

size_t StatusBoard::claim() {
  for (size_t i = 0; i < slots_; ++i) {
    WorkerStatus& s = slot(i);
    if (s.state.load() != static_cast<uint32_t>(WorkerState::kFree)) continue;
    s.pid = 0;
    s.requests = 0;
    s.heartbeatMs = monotonicMs();
    s.state = static_cast<uint32_t>(WorkerState::kBooting);
    for (int t = 0; t < threads_; ++t) busy(i)[t] = 0;
    return i;
  }
  return SIZE_MAX;
}

}  // namespace portico::process
