#pragma once

// nginx's stub_status: connection and request counters (ngx_stat_accepted, handled, active,
// requests, reading, writing, waiting), the page that shows them and the $connections_*
// variables. Each process counts into its ConnectionStats (connections update it as they change
// state, on the loop thread); a worker's lives in the master's shared status board, so the page
// shows the sum over every worker, as nginx's shared counters do.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

namespace portico::http {

// One process's counters; lock-free atomics so a sibling may read them from shared memory.
struct ConnectionStats {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> handled{0};
  std::atomic<int64_t> active{0};
  std::atomic<int64_t> reading{0};
  std::atomic<int64_t> writing{0};
  std::atomic<int64_t> waiting{0};
  std::atomic<uint64_t> requests{0};
};

// A snapshot, summed over the workers.
struct ConnectionCounters {
  uint64_t accepted = 0, handled = 0, requests = 0;
  int64_t active = 0, reading = 0, writing = 0, waiting = 0;
};

// This process's counters: a process-local object until a worker points them into shared
// memory with setConnectionStats (before it accepts anything).
ConnectionStats& connectionStats();
void setConnectionStats(ConnectionStats* stats);
// How to read every worker's counters (the master's board); unset: this process's alone.
void setConnectionCountersReader(std::function<ConnectionCounters()> reader);
ConnectionCounters readConnectionCounters();
ConnectionCounters snapshotOf(const ConnectionStats& stats);

// The stub_status page, byte for byte as nginx's.
std::string renderStubStatus(const ConnectionCounters& c);

// Where a connection stands, for the reading/writing/waiting counters and the request count.
enum class ConnectionPhase { kNone, kWaiting, kReading, kWriting };
// Moves one connection from `from` to `to`, counting a request when one begins (entering
// reading, or writing straight from waiting: a head that arrived in one read).
void moveConnectionPhase(ConnectionPhase from, ConnectionPhase to);

}  // namespace portico::http
