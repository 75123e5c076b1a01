#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace portico {

// gunicorn's statsd instrumentation (--statsd-host, --statsd-prefix, --dogstatsd-tags): metrics
// as UDP datagrams in statsd's line format, sent (never blocking, errors dropped, as gunicorn)
// from the process where they happen — each request's count, status and duration from its
// worker, log lines by level from any process, the worker count from the master. One client per
// process: the master configures it before it forks (and again on reload) and the workers
// inherit it; any thread may send.
class Statsd {
 public:
  // "HOST:PORT" resolved now (UDP, connected); false with `error` when it cannot be. An empty
  // host turns it off.
  static bool configure(const std::string& hostPort, const std::string& prefix,
                        const std::string& tags, std::string& error);
  static bool enabled();

  static void increment(std::string_view name, int64_t value = 1);
  static void gauge(std::string_view name, int64_t value);
  static void histogram(std::string_view name, double milliseconds);
  // One request as gunicorn's Statsd.access reports it: its three metrics, a line each, in one
  // datagram — or, on a thread that batches, gathered with the next requests' until flush()
  // or until a datagram would pass kMaxDatagram.
  static void request(int status, uint64_t durationMicros);
  // The calling thread gathers its requests' metrics from now on; it must call flush() (an
  // event loop does before each wait). Other threads send each request at once.
  static void batchOnThisThread();
  // Sends what this thread gathered.
  static void flush();
  // statsd's advice for a datagram that crosses a network: it fits an Ethernet frame.
  static constexpr size_t kMaxDatagram = 1432;
  // That datagram (tests).
  static std::string requestDatagram(std::string_view prefix, std::string_view tags, int status,
                                     uint64_t durationMicros);

  // The datagram for a metric, as gunicorn's Statsd formats it (tests).
  static std::string line(std::string_view prefix, std::string_view name, std::string_view value,
                          std::string_view type, std::string_view tags);
  // gunicorn's prefix rule: one trailing '.', none when empty ("app..", "app." and "app" alike).
  static std::string prefixOf(std::string_view prefix);
  // A float as Python's str() writes it: the shortest form that reads back, ".0" when whole.
  static std::string pythonFloat(double value);
};

}  // namespace portico
