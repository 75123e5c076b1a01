#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/access_log.h"
#include "http/exchange.h"

namespace portico::http {

// The per-request connection settings a route decides (nginx's per-server/per-location
// client_max_body_size, timeouts, keep-alive and server_tokens).
struct RouteLimits {
  uint64_t maxBodySize = 1024 * 1024;  // 0 = unlimited
  uint64_t bodyTimeoutMs = 60000;
  uint64_t sendTimeoutMs = 60000;
  uint64_t keepAliveTimeoutMs = 2000;  // 0: no keep-alive
  int64_t keepAliveHeaderSeconds = -1; // keepalive_timeout's 2nd argument → "Keep-Alive: timeout=N"
  uint64_t keepAliveRequests = 0;      // close after this many requests (0 = no limit)
  uint64_t keepAliveTimeMs = 0;        // keepalive_time: no keep-alive past this age (0 = none)
  const std::string* serverHeader = nullptr;  // the Server value; null: the connection's default
};

// What the connection runs for one request, chosen once its head is in: owned by the
// request's Stream (http/stream.h) until the next request (or the connection) replaces it.
// Loop thread.
class RequestRoute {
 public:
  virtual ~RequestRoute() = default;
  virtual const RouteLimits& limits() const = 0;
  // False when the content never reads a body (static files): the connection discards it.
  virtual bool readsBody() const = 0;
  // Produces the response through `exchange` (the connection).
  virtual void run(Exchange& exchange) = 0;
  // Answers `status` instead (a body over the limit), through the route's error pages.
  virtual void reject(int status, Exchange& exchange) { exchange.respondError(status); }
  // The connection answered the request itself after routing (a body that timed out or broke
  // its framing): the route logs it as its location logs (nginx), unless it already did.
  virtual void logConnectionAnswer(const AccessLogEntry& entry) { (void)entry; }
  // The route's own response is complete — written to the client, or cut short — and
  // `entry.bodyBytesSent` says how much of its body left: the route logs it (nginx logs a
  // request when it is finalized, after its output is sent).
  virtual void logResponse(const AccessLogEntry& entry) { (void)entry; }
  // The answering location's index in the per-location metrics (core/request_metrics.h),
  // negative for none.
  virtual int metricsLocation() const { return -1; }
};

// Picks the route of each request (server selection and location matching); built by the
// composition root, outlives every connection; loop thread.
class RequestRouter {
 public:
  virtual ~RequestRouter() = default;
  virtual std::unique_ptr<RequestRoute> route(const Request& request,
                                              const ConnectionInfo& connection) const = 0;
  // Logs a response the connection gave before any route existed (malformed request line,
  // 414, header too large, a slow head's 408); `entry.request` is what was parsed so far.
  virtual void logUnrouted(const AccessLogEntry& entry) const { (void)entry; }
  // The header filter of such an answer (nginx runs it with the server level's settings):
  // adds the server's `add_header ... always` fields to `head`; `failedHead` is what was parsed.
  virtual void filterUnrouted(ResponseHead& head, const Request& failedHead,
                              const ConnectionInfo& connection) const {
    (void)head;
    (void)failedHead;
    (void)connection;
  }
};

}  // namespace portico::http
