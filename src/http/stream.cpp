#include "http/stream.h"

#include <ctime>

#include "core/log.h"
#include "http/parser.h"
#include "core/request_metrics.h"

namespace portico::http {

uint64_t monotonicMicros() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

Stream::Stream(const ConnectionSettings& settings, const ConnectionInfo& info)
    : settings_(settings), info_(info) {
  limits_.maxBodySize = settings.maxBodySize;
  limits_.bodyTimeoutMs = settings.bodyTimeoutMs;
  limits_.sendTimeoutMs = settings.sendTimeoutMs;
  limits_.keepAliveTimeoutMs = settings.keepAliveTimeoutMs;
}

void Stream::begin(uint64_t nowMs) {
  active_ = true;
  startMs_ = nowMs;
  startMicros_ = monotonicMicros();
  startWall_ = std::time(nullptr);
}

Stream::Dispatch Stream::select(const Request& req) {
  // Server selection and location matching decide the limits, then the route answers. The
  // server always gives a site (a session without one answers 500).
  if (!settings_.site) return Dispatch::kRun;
  route_ = settings_.site->route(req, info_);
  routed_ = true;
  limits_ = route_->limits();
  // Before a byte of the body is read, as nginx; the route's error_page may answer it.
  if (limits_.maxBodySize && req.contentLength && *req.contentLength > limits_.maxBodySize) {
    return Dispatch::kBodyTooLarge;
  }
  if (req.hasBody() && !route_->readsBody()) {
    pending_ = true;  // run once the buffered part of the body is parsed
    return Dispatch::kAfterDiscard;
  }
  return Dispatch::kRun;
}

void Stream::run() {
  if (routed_) {
    route_->run(*this);
  } else {
    respondError(500);  // no site to route to
  }
}

void Stream::reject(int status) {
  if (routed_) {
    route_->reject(status, *this);
    return;
  }
  connectionAnswered_ = true;
  respondError(status);
}

uint64_t Stream::truncateBody(BodyChunk& chunk, bool& overran) {
  // Never send more than the declared length: the excess would be read as a next response.
  uint64_t room = *declaredLength_ > bodyBytes_ ? *declaredLength_ - bodyBytes_ : 0;
  logError("response body longer than its Content-Length; truncated");
  overran = true;
  if (room == 0) return 0;
  if (auto* s = std::get_if<std::string>(&chunk.data)) {
    s->resize(room);
  } else {
    std::get<FileRange>(chunk.data).length = room;
  }
  bodyBytes_ += room;
  return room;
}

void Stream::writeAccessLog(const Request& request, const Request& failedHead,
                            uint64_t bodySent) {
  // A request refused before any route existed (bad request line, 414, header too large, a
  // slow head's 408) is logged by the site as nginx does (the server level of the address's
  // default server, or of the one a complete Host line chose); one the session answered
  // after routing (its body) by the route, with its location's logs; a routed response by the
  // route too, now that its bytes have left (or the connection was cut).
  const bool unrouted = settings_.site != nullptr && !routed_;
  const bool routeLogs = routed_ && route_;
  const uint64_t bodyBytes = dropBody_ ? 0 : bodySent;
  const uint64_t bytesSent = (headSent_ ? headBytes_ : 0) + bodyBytes;
  const uint64_t durationMicros = monotonicMicros() - startMicros_;
  // The metrics count what the access log writes: every request answered or cut short.
  recordRequest(status_, info_.requestLength, bytesSent, durationMicros,
                routeLogs ? route_->metricsLocation() : -1);
  if (!settings_.accessLog && !unrouted && !routeLogs) return;
  AccessLogEntry entry;
  entry.request = &request;
  entry.connection = &info_;
  entry.status = status_;
  entry.bodyBytesSent = bodyBytes;
  entry.bytesSent = bytesSent;
  entry.responseHeaders = &responseHeaders_;
  entry.startTime = startWall_;
  entry.durationMicros = durationMicros;
  if (routeLogs) {
    if (connectionAnswered_) {
      route_->logConnectionAnswer(entry);
    } else {
      route_->logResponse(entry);
    }
  }
  if (unrouted) {
    // The head that failed, not the previous request of the connection.
    AccessLogEntry failed = entry;
    failed.request = &failedHead;
    settings_.site->logUnrouted(failed);
  }
  if (settings_.accessLog) {
    settings_.accessLog->file.writeLine(settings_.accessLog->formatter.format(entry));
  }
}

void Stream::reset() {
  active_ = false;
  headSent_ = false;
  responseFinished_ = false;
  requestComplete_ = false;
  abortOnClientClose_ = false;
  dropBody_ = false;
  status_ = 0;
  routed_ = false;
  connectionAnswered_ = false;
  declaredLength_.reset();
  bodyBytes_ = 0;
  requestBodyBytes_ = 0;
  headBytes_ = 0;
  responseHeaders_.clear();
  bodyReader_ = nullptr;
  pending_ = false;
  onWritable_ = nullptr;
  onAbort_ = nullptr;
}

}  // namespace portico::http
