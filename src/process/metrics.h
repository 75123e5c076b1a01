#pragma once

// portico's Prometheus metrics: a snapshot of the master's status board (every live worker's
// counters, the dead workers' retired totals, the master's state and restarts) and the
// Prometheus text exposition of it (format 0.0.4). A scrape reads shared memory only: no
// message to the master or the siblings.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/request_metrics.h"
#include "http/stub_status.h"
#include "process/listeners.h"
#include "process/worker_status.h"

namespace portico::process {

// One Python thread in a request.
struct ThreadSnapshot {
  size_t thread = 0;
  std::string method;
  std::string path;
  uint64_t runningMs = 0;
  uint64_t ident = 0;  // Python's thread ident, as in the stacks' "Thread 0x…" lines
};

// One point of the board's history (totals so far at `unixMs`).
struct HistorySnapshot {
  uint64_t unixMs = 0, requests = 0, errors = 0, durationMicros = 0;
  uint64_t buckets[kDurationBuckets] = {};
};

// One live worker, as the board shows it.
struct WorkerSnapshot {
  size_t slot = 0;
  pid_t pid = 0;
  WorkerState state = WorkerState::kFree;
  uint64_t requests = 0;
  uint64_t rssBytes = 0;
  uint64_t startedUnixMs = 0;
  uint32_t pythonThreads = 0, pythonBusy = 0, pythonStuck = 0;
  std::vector<ThreadSnapshot> running;  // its Python threads' requests (the first 16 threads)
  // Its Python threads' stacks, when asked for (the status page's "stacks" button): the last
  // dump and when it was taken (0: none); `stacksPending` while a newer one is on its way.
  std::string stacks;
  uint64_t stacksUnixMs = 0;
  bool stacksPending = false;
};

// A listening socket's accept queue, from the kernel (TCP_INFO: tcpi_unacked is the queue of
// a listening socket, tcpi_sacked its limit). Unix sockets show none.
struct ListenQueue {
  std::string listener;
  uint32_t queued = 0;
  uint32_t limit = 0;
};
std::vector<ListenQueue> listenQueues(const std::vector<BoundListener>& listeners);

// Everything one scrape shows. Made per scrape on a worker's loop thread.
struct MetricsSnapshot {
  std::unique_ptr<RequestMetrics> requests = std::make_unique<RequestMetrics>();
  http::ConnectionCounters connections;
  std::vector<WorkerSnapshot> workers;
  std::vector<ListenQueue> listenQueues;
  uint64_t restarts[static_cast<size_t>(RestartCause::kCount)] = {};
  uint64_t reloads = 0;
  uint64_t generation = 0;
  uint32_t targetWorkers = 0;
  MasterState masterState = MasterState::kRunning;
  uint64_t startedUnixMs = 0;
  // The master has beaten within the last few seconds (a board without one: true).
  bool masterAlive = true;
  pid_t masterPid = 0;
  std::vector<HistorySnapshot> history;  // oldest first
};

// The board's snapshot; without a board (a process of its own, unit tests) this process's
// counters alone.
MetricsSnapshot takeSnapshot(const StatusBoard* board);

// The Prometheus text format of `snapshot`.
std::string renderPrometheus(const MetricsSnapshot& snapshot);

// A label value escaped as the text format wants (\\, \", \n).
std::string escapeLabel(std::string_view value);

}  // namespace portico::process
