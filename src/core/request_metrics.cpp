#include "core/request_metrics.h"

#include <pthread.h>

#include <algorithm>
#include <cstring>

#include "core/statsd.h"

namespace portico {
namespace {

RequestMetrics& localMetrics() {
  static RequestMetrics m;
  return m;
}
RequestMetrics* gMetrics = nullptr;

// The loop thread is the only writer of these fields: a plain load and store, no locked add.
inline void bump(std::atomic<uint64_t>& counter, uint64_t by = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

void copyLabel(char* out, size_t size, std::string_view text) {
  size_t n = std::min(text.size(), size - 1);
  std::memcpy(out, text.data(), n);
  out[n] = '\0';
}

constexpr std::string_view kOther = "(other)";

}  // namespace

size_t statusClassOf(int status) {
  if (status < 100 || status > 599) return 0;
  return static_cast<size_t>(status / 100);
}

size_t durationBucketOf(uint64_t micros) {
  const auto* end = std::end(kDurationBoundsMicros);
  return static_cast<size_t>(std::lower_bound(std::begin(kDurationBoundsMicros), end, micros) -
                             std::begin(kDurationBoundsMicros));
}

void RequestMetrics::clear() {
  for (auto& c : byClass) c.store(0, std::memory_order_relaxed);
  for (auto& c : duration) c.store(0, std::memory_order_relaxed);
  for (auto* c : {&durationMicros, &bytesIn, &bytesOut, &tlsHandshakes, &tlsHandshakeFailures,
                  &tlsResumed, &gilWaitMicros, &gilWaits}) {
    c->store(0, std::memory_order_relaxed);
  }
  size_t used = std::min<size_t>(locationCount.load(std::memory_order_relaxed), kMetricLocations);
  for (size_t i = 0; i < used; ++i) {
    LocationMetrics& l = locations[i];
    l.server[0] = l.location[0] = '\0';
    for (auto& c : l.byClass) c.store(0, std::memory_order_relaxed);
    l.durationMicros.store(0, std::memory_order_relaxed);
  }
  locationCount.store(0, std::memory_order_relaxed);
  size_t peers = std::min<size_t>(upstreamCount.load(std::memory_order_relaxed), kMetricUpstreams);
  for (size_t i = 0; i < peers; ++i) {
    UpstreamMetrics& u = upstreams[i];
    u.upstream[0] = u.server[0] = '\0';
    for (auto* c : {&u.tries, &u.failures, &u.responseMicros, &u.unavailableUntilMs}) {
      c->store(0, std::memory_order_relaxed);
    }
    u.unavailableIn.store(0, std::memory_order_relaxed);
  }
  upstreamCount.store(0, std::memory_order_relaxed);
}

size_t RequestMetrics::locationEntry(std::string_view server, std::string_view location) {
  size_t used = std::min<size_t>(locationCount.load(std::memory_order_relaxed), kMetricLocations);
  for (size_t i = 0; i < used; ++i) {
    if (locations[i].server == server && locations[i].location == location) return i;
  }
  // A new label: the next entry, or "(other)" once only the last is left (nameLocation names
  // the last entry so).
  size_t at = used + 1 < kMetricLocations ? used : kMetricLocations - 1;
  if (at < used) return at;  // "(other)" is there already
  nameLocation(at, server, location);
  return at;
}

size_t RequestMetrics::upstreamEntry(std::string_view upstream, std::string_view server) {
  size_t used = std::min<size_t>(upstreamCount.load(std::memory_order_relaxed), kMetricUpstreams);
  for (size_t i = 0; i < used; ++i) {
    if (upstreams[i].upstream == upstream && upstreams[i].server == server) return i;
  }
  size_t at = used + 1 < kMetricUpstreams ? used : kMetricUpstreams - 1;
  if (at == kMetricUpstreams - 1) {
    upstream = "";
    server = kOther;
    if (used == kMetricUpstreams) return at;  // "(other)" is there already
  }
  copyLabel(upstreams[at].upstream, sizeof upstreams[at].upstream, upstream);
  copyLabel(upstreams[at].server, sizeof upstreams[at].server, server);
  upstreamCount.store(static_cast<uint32_t>(at + 1), std::memory_order_release);
  return at;
}

void RequestMetrics::nameLocation(size_t index, std::string_view server,
                                  std::string_view location) {
  if (index >= kMetricLocations) return;
  LocationMetrics& l = locations[index];
  if (index == kMetricLocations - 1) {
    server = "";
    location = kOther;
  }
  copyLabel(l.server, sizeof l.server, server);
  copyLabel(l.location, sizeof l.location, location);
  uint32_t count = locationCount.load(std::memory_order_relaxed);
  if (index + 1 > count) locationCount.store(static_cast<uint32_t>(index + 1), std::memory_order_release);
}

void RequestMetrics::add(const RequestMetrics& from) {
  auto plus = [](std::atomic<uint64_t>& to, const std::atomic<uint64_t>& f) {
    to.fetch_add(f.load(std::memory_order_relaxed), std::memory_order_relaxed);
  };
  for (size_t i = 0; i < kStatusClasses; ++i) plus(byClass[i], from.byClass[i]);
  for (size_t i = 0; i < kDurationBuckets; ++i) plus(duration[i], from.duration[i]);
  plus(durationMicros, from.durationMicros);
  plus(bytesIn, from.bytesIn);
  plus(bytesOut, from.bytesOut);
  plus(tlsHandshakes, from.tlsHandshakes);
  plus(tlsHandshakeFailures, from.tlsHandshakeFailures);
  plus(tlsResumed, from.tlsResumed);
  plus(gilWaitMicros, from.gilWaitMicros);
  plus(gilWaits, from.gilWaits);
  size_t theirs = std::min<size_t>(from.locationCount.load(std::memory_order_acquire),
                                   kMetricLocations);
  for (size_t i = 0; i < theirs; ++i) {
    const LocationMetrics& f = from.locations[i];
    LocationMetrics& l = locations[locationEntry(f.server, f.location)];
    for (size_t c = 0; c < kStatusClasses; ++c) plus(l.byClass[c], f.byClass[c]);
    plus(l.durationMicros, f.durationMicros);
  }
  size_t peers = std::min<size_t>(from.upstreamCount.load(std::memory_order_acquire),
                                  kMetricUpstreams);
  for (size_t i = 0; i < peers; ++i) {
    const UpstreamMetrics& f = from.upstreams[i];
    UpstreamMetrics& u = upstreams[upstreamEntry(f.upstream, f.server)];
    plus(u.tries, f.tries);
    plus(u.failures, f.failures);
    plus(u.responseMicros, f.responseMicros);
  }
}

namespace {
ThreadActivity* gActivities = nullptr;
size_t gActivityCount = 0;
}  // namespace

void setThreadActivities(ThreadActivity* rows, size_t count) {
  gActivities = rows;
  gActivityCount = rows ? count : 0;
}

void noteActivity(size_t thread, std::string_view method, std::string_view path,
                  uint64_t sinceMs) {
  if (thread >= gActivityCount) return;
  ThreadActivity& row = gActivities[thread];
  row.seq.fetch_add(1, std::memory_order_acq_rel);
  copyLabel(row.method, sizeof row.method, method);
  copyLabel(row.path, sizeof row.path, path);
  row.sinceMs.store(sinceMs, std::memory_order_relaxed);
  row.ident.store(static_cast<uint64_t>(::pthread_self()), std::memory_order_relaxed);
  row.seq.fetch_add(1, std::memory_order_release);
}

void clearActivity(size_t thread) {
  if (thread >= gActivityCount) return;
  gActivities[thread].sinceMs.store(0, std::memory_order_release);
}

bool readActivity(const ThreadActivity& row, std::string& method, std::string& path,
                  uint64_t& sinceMs, uint64_t& ident) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    uint32_t seq = row.seq.load(std::memory_order_acquire);
    if (seq % 2) continue;
    sinceMs = row.sinceMs.load(std::memory_order_acquire);
    if (sinceMs == 0) return false;
    ident = row.ident.load(std::memory_order_relaxed);
    char m[sizeof row.method];
    char p[sizeof row.path];
    std::memcpy(m, row.method, sizeof m);
    std::memcpy(p, row.path, sizeof p);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (row.seq.load(std::memory_order_relaxed) != seq) continue;
    m[sizeof m - 1] = p[sizeof p - 1] = '\0';
    method = m;
    path = p;
    return true;
  }
  return false;
}

RequestMetrics& requestMetrics() { return gMetrics ? *gMetrics : localMetrics(); }

void setRequestMetrics(RequestMetrics* metrics) { gMetrics = metrics; }

void recordRequest(int status, uint64_t bytesIn, uint64_t bytesOut, uint64_t durationMicros,
                   int location) {
  Statsd::request(status, durationMicros);  // --statsd-host: gunicorn's per-request metrics
  RequestMetrics& m = requestMetrics();
  size_t cls = statusClassOf(status);
  bump(m.byClass[cls]);
  bump(m.duration[durationBucketOf(durationMicros)]);
  bump(m.durationMicros, durationMicros);
  bump(m.bytesIn, bytesIn);
  bump(m.bytesOut, bytesOut);
  if (location >= 0) {
    size_t i = std::min(static_cast<size_t>(location), kMetricLocations - 1);
    bump(m.locations[i].byClass[cls]);
    bump(m.locations[i].durationMicros, durationMicros);
  }
}

void recordTlsHandshake(bool ok, bool resumed) {
  RequestMetrics& m = requestMetrics();
  bump(ok ? m.tlsHandshakes : m.tlsHandshakeFailures);
  if (ok && resumed) bump(m.tlsResumed);
}

void recordUpstreamTry(int& entry, std::string_view upstream, std::string_view server,
                       bool failed, uint64_t micros) {
  RequestMetrics& m = requestMetrics();
  if (entry < 0) entry = static_cast<int>(m.upstreamEntry(upstream, server));
  UpstreamMetrics& u = m.upstreams[static_cast<size_t>(entry)];
  bump(u.tries);
  if (failed) bump(u.failures);
  bump(u.responseMicros, micros);
}

void recordUpstreamHealth(int entry, uint64_t unavailableUntilMs) {
  if (entry < 0) return;
  requestMetrics().upstreams[static_cast<size_t>(entry)].unavailableUntilMs.store(
      unavailableUntilMs, std::memory_order_relaxed);
}

void recordGilWait(uint64_t micros) {
  RequestMetrics& m = requestMetrics();
  m.gilWaitMicros.fetch_add(micros, std::memory_order_relaxed);
  m.gilWaits.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace portico
