#pragma once

// Per-request counters for the Prometheus metrics: requests by status class, a duration
// histogram, bytes in and out, per location, TLS handshakes and the Python threads' GIL waits.
// Each process counts into its RequestMetrics (the loop thread at each request's end, Python
// threads for the GIL); a worker's lives in the master's shared status board, so a scrape on
// any worker reads every worker's, as stub_status's counters (http/stub_status.h). In core, below
// the transports (TLS handshakes) and Python (GIL waits) that count into it.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace portico {

// Upper bounds of the duration histogram's buckets, microseconds (+Inf follows).
inline constexpr uint64_t kDurationBoundsMicros[] = {1000,   2500,    5000,    10000,   25000,
                                                     50000,  100000,  250000,  500000,  1000000,
                                                     2500000, 5000000, 10000000};
inline constexpr size_t kDurationBuckets = std::size(kDurationBoundsMicros) + 1;
// 0: no status (a connection cut before an answer), 1..5: 1xx..5xx.
inline constexpr size_t kStatusClasses = 6;
// Locations counted one by one per process; a site with more counts the rest as "(other)".
inline constexpr size_t kMetricLocations = 128;
inline constexpr size_t kMetricServerBytes = 64;
inline constexpr size_t kMetricLocationBytes = 128;

size_t statusClassOf(int status);
size_t durationBucketOf(uint64_t micros);

// One location's counters and its labels (NUL-terminated, cut to fit).
struct LocationMetrics {
  char server[kMetricServerBytes] = {};
  char location[kMetricLocationBytes] = {};
  std::atomic<uint64_t> byClass[kStatusClasses] = {};
  std::atomic<uint64_t> durationMicros{0};
};

// Upstream servers counted one by one per process (proxy_pass, uwsgi_pass); the rest as
// "(other)".
inline constexpr size_t kMetricUpstreams = 64;

// One upstream server's tries: its labels (the upstream's name, the server's address) and
// counters.
struct UpstreamMetrics {
  char upstream[64] = {};
  char server[64] = {};
  std::atomic<uint64_t> tries{0};
  std::atomic<uint64_t> failures{0};  // an error, a timeout or an invalid response
  std::atomic<uint64_t> responseMicros{0};
  // Passive health, not summed: in a worker, until when (CLOCK_MONOTONIC ms) it skips the
  // server (max_fails reached within fail_timeout; 0 or past: it tries it); in a snapshot,
  // how many workers skip it now.
  std::atomic<uint64_t> unavailableUntilMs{0};
  std::atomic<uint32_t> unavailableIn{0};
};

// One process's counters: lock-free atomics, so the master and the siblings may read them from
// shared memory; at most one writer per field group (the loop thread; fetch_add where Python
// threads write).
struct RequestMetrics {
  std::atomic<uint64_t> byClass[kStatusClasses] = {};
  std::atomic<uint64_t> duration[kDurationBuckets] = {};  // per bucket, not cumulative
  std::atomic<uint64_t> durationMicros{0};
  std::atomic<uint64_t> bytesIn{0};   // request heads and bodies ($request_length)
  std::atomic<uint64_t> bytesOut{0};  // response heads and bodies ($bytes_sent)
  std::atomic<uint64_t> tlsHandshakes{0};
  std::atomic<uint64_t> tlsHandshakeFailures{0};
  std::atomic<uint64_t> tlsResumed{0};
  std::atomic<uint64_t> gilWaitMicros{0};  // Python threads' waits for the GIL (fetch_add)
  std::atomic<uint64_t> gilWaits{0};
  std::atomic<uint32_t> locationCount{0};  // labelled entries in `locations`
  LocationMetrics locations[kMetricLocations];
  std::atomic<uint32_t> upstreamCount{0};  // labelled entries in `upstreams`
  UpstreamMetrics upstreams[kMetricUpstreams];

  // Zeroes every counter and label (a slot claimed for a new worker).
  void clear();
  // Labels entry `index` (< kMetricLocations); the last entry is "(other)".
  void nameLocation(size_t index, std::string_view server, std::string_view location);
  // Adds `from` to this (a dead worker's counts kept by the master): the locations and the
  // upstream servers by their labels, a label this has no room for to "(other)".
  void add(const RequestMetrics& from);
  // The entry of a location's label, added when new ("(other)" once the table is full).
  size_t locationEntry(std::string_view server, std::string_view location);
  // The entry of an upstream server, added when new ("(other)" once the table is full).
  size_t upstreamEntry(std::string_view upstream, std::string_view server);
};

// What one Python thread runs now, for the status page: written by that thread (a sequence
// count, odd while it writes, lets a reader in another process skip a torn row), read by any.
struct ThreadActivity {
  std::atomic<uint32_t> seq{0};
  std::atomic<uint64_t> sinceMs{0};  // CLOCK_MONOTONIC ms the request began; 0: idle
  std::atomic<uint64_t> ident{0};    // the thread's pthread_t: Python's threading.get_ident()
  char method[16] = {};
  char path[112] = {};  // the path, percent-encoded, without the query; cut to fit
};
inline constexpr size_t kActivityThreads = 16;  // a worker's first 16 Python threads are shown

// Where this process's Python threads publish what they run (a worker's status board slot);
// unset: nowhere.
void setThreadActivities(ThreadActivity* rows, size_t count);
void noteActivity(size_t thread, std::string_view method, std::string_view path, uint64_t sinceMs);
void clearActivity(size_t thread);
// One row as it stands; false when the thread is idle (or was being written).
bool readActivity(const ThreadActivity& row, std::string& method, std::string& path,
                  uint64_t& sinceMs, uint64_t& ident);

// This process's counters: a process-local object until a worker points them into shared
// memory with setRequestMetrics (before it accepts anything).
RequestMetrics& requestMetrics();
void setRequestMetrics(RequestMetrics* metrics);

// One request's end, on the loop thread: `location` is the answering location's index (its
// SiteHandler's metricsIndex), negative for none.
void recordRequest(int status, uint64_t bytesIn, uint64_t bytesOut, uint64_t durationMicros,
                   int location);
void recordTlsHandshake(bool ok, bool resumed);
// One try of an upstream server ended (loop thread). `entry` caches the server's entry in this
// process's table (-1 at first; the caller keeps it with the server).
// The server's passive health in this worker after a try (see UpstreamMetrics); `entry` as
// recordUpstreamTry left it (nothing when still -1).
void recordUpstreamHealth(int entry, uint64_t unavailableUntilMs);
void recordUpstreamTry(int& entry, std::string_view upstream, std::string_view server,
                       bool failed, uint64_t micros);
// A Python thread waited `micros` for the GIL (any thread).
void recordGilWait(uint64_t micros);

}  // namespace portico
