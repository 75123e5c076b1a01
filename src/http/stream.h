#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/body_chunk.h"
#include "http/connection.h"
#include "http/exchange.h"
#include "http/router.h"

namespace portico::http {

// One request in flight and its response: the part that is the same whatever protocol carries
// it — the route and the limits it sets, the body limit, holding
// the content back while a body it will not read is discarded, the response's byte counts and
// the access log. A session derives its stream from it (Http1Stream; an HTTP/2 session would
// hold one per stream) and implements the wire side of Exchange. Owned by its session, reused
// request after request; event-loop thread only.
class Stream : public Exchange {
 public:
  // What the session does once a head is complete and select() has chosen where it goes.
  enum class Dispatch {
    kRun,           // run() now
    kBodyTooLarge,  // the declared body is over the limit: answer 413 (reject()) before a byte
    kAfterDiscard,  // the content reads no body: run() once the buffered body is discarded
  };

  Stream(const ConnectionSettings& settings, const ConnectionInfo& info);

  const ConnectionInfo& connection() const override { return info_; }
  std::string_view signature() const override {
    return limits_.serverHeader ? *limits_.serverHeader : settings_.serverHeaderValue;
  }
  void onWritable(std::function<void()> callback) override { onWritable_ = std::move(callback); }
  void onAbort(std::function<void()> callback) override { onAbort_ = std::move(callback); }
  void abortOnClientClose() override { abortOnClientClose_ = true; }

  // The limits of the current (or last) request's route: between requests they still govern
  // the connection's keep-alive and send timeouts.
  const RouteLimits& limits() const { return limits_; }
  bool active() const { return active_; }

 protected:
  // A request's head is complete (or the session answers a broken one): the clocks start.
  void begin(uint64_t nowMs);
  // Server selection and locations (the site) decide the request's
  // route and its limits; nothing runs yet.
  Dispatch select(const Request& request);
  // Produces the response: the route (a 500 when the session has no site).
  void run();
  // Answers `status` before the content runs (413): the route's error pages, or a plain page.
  void reject(int status);
  bool pending() const { return pending_; }
  void cancelPending() { pending_ = false; }
  void runPending() {
    pending_ = false;
    run();
  }

  // Counts `n` received body bytes; true when that passes the body limit (413).
  bool bodyOverLimit(uint64_t n) {
    requestBodyBytes_ += n;
    return limits_.maxBodySize != 0 && requestBodyBytes_ > limits_.maxBodySize;
  }
  // A response body part against the declared Content-Length: the bytes that may go (the
  // excess would be read as a next response), or 0; `overran` tells the session to close.
  uint64_t admitBody(BodyChunk& chunk, bool& overran) {
    const uint64_t size = chunk.size();
    if (!declaredLength_ || bodyBytes_ + size <= *declaredLength_) {  // every body but a liar's
      overran = false;
      bodyBytes_ += size;
      return size;
    }
    return truncateBody(chunk, overran);
  }
  // admitBody's rare case: the part passes the declared length and is cut to what is left.
  uint64_t truncateBody(BodyChunk& chunk, bool& overran);
  // The response's body is shorter than its Content-Length: only a close can say so.
  bool bodyShort() const { return declaredLength_ && bodyBytes_ < *declaredLength_ && !dropBody_; }

  // The access log line(s) of the response, with `bodySent` body bytes really written;
  // `request` is the head answered, `failedHead` what arrived of a head that never completed.
  void writeAccessLog(const Request& request, const Request& failedHead, uint64_t bodySent);
  // Ready for the next request (the route stays until the next head, and the limits).
  void reset();

  const ConnectionSettings& settings_;
  const ConnectionInfo& info_;

  bool active_ = false;
  bool headSent_ = false;
  bool responseFinished_ = false;
  bool requestComplete_ = false;
  bool abortOnClientClose_ = false;  // the content asked for abortOnClientClose()
  bool dropBody_ = false;  // HEAD, 1xx, 204, 304: the body's bytes are counted, not sent
  int status_ = 0;
  std::optional<uint64_t> declaredLength_;
  uint64_t bodyBytes_ = 0;
  uint64_t headBytes_ = 0;  // the response head's bytes ($bytes_sent counts them too)
  uint64_t requestBodyBytes_ = 0;
  std::vector<Header> responseHeaders_;  // kept only for the access log
  BodyReader* bodyReader_ = nullptr;
  std::function<void()> onWritable_;
  std::function<void()> onAbort_;
  // The route of the current request (kept until the next head: its exchange decorators may
  // still be on the stack when the response finishes) and the limits it set.
  std::unique_ptr<RequestRoute> route_;
  bool routed_ = false;  // route_ belongs to the current exchange (else the site never saw it)
  bool connectionAnswered_ = false;  // the session answered (bad input), not the route
  bool pending_ = false;             // run() waits for the buffered body to be discarded
  RouteLimits limits_;
  std::time_t startWall_ = 0;
  uint64_t startMs_ = 0;
  uint64_t startMicros_ = 0;  // CLOCK_MONOTONIC µs when the head was complete (durations)
};

// CLOCK_MONOTONIC in microseconds: durations ($request_time, $connection_time), since the
// loop's cached clock has only millisecond steps.
uint64_t monotonicMicros();

}  // namespace portico::http
