#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "core/body_chunk.h"
#include "core/byte_buffer.h"
#include "core/log.h"
#include "core/unique_fd.h"
#include "event/event_loop.h"
#include "http/access_log.h"
#include "http/exchange.h"
#include "http/parser.h"
#include "http/stub_status.h"
#include "http/router.h"
#include "transport/transport.h"

namespace portico::http {

// The access log as the connection sees it: a formatter and where its lines go.
struct AccessLog {
  explicit AccessLog(std::string format) : formatter(std::move(format)) {}
  AccessLogFormatter formatter;
  LogFile file;
};

// Per-listener settings every connection reads; owned by the server, read-only while serving.
struct ConnectionSettings {
  ParserLimits limits;
  uint64_t maxBodySize = 1024 * 1024;  // 0 = unlimited
  uint64_t headerTimeoutMs = 60000;
  uint64_t bodyTimeoutMs = 60000;
  uint64_t sendTimeoutMs = 60000;
  uint64_t keepAliveTimeoutMs = 2000;
  bool serverHeader = true;
  // nginx's answer to a header line past large_client_header_buffers: 400 "Request Header Or
  // Cookie Too Large" (the flags path keeps gunicorn's 431).
  bool headerTooLargeIs400 = false;
  std::string serverHeaderValue = "portico";  // unless a route says otherwise
  const Router* router = nullptr;              // the prefix router (used when `site` is null)
  const RequestRouter* site = nullptr;         // server selection + locations, per request
  AccessLog* accessLog = nullptr;  // null: no access log
  std::function<void()> onRequestDone;  // after each response (worker accounting), may be empty
};

class Connection;

// Told when a connection has closed, so it can be unlinked and deleted (deferred).
class ConnectionOwner {
 public:
  virtual ~ConnectionOwner() = default;
  virtual void connectionClosed(Connection* connection) = 0;
  // Asked when the first bytes of a connection's next request are in and nothing else is in
  // flight on it (no response queued): true when the owner gave the connection to a sibling
  // worker (process/hand_off.h) and closed it here; the connection then does nothing more.
  virtual bool offerHandOff(Connection& connection) {
    (void)connection;
    return false;
  }
};

// One HTTP/1.x client connection: reads and parses requests, runs them one at a time through
// the router's handlers (it is their Exchange), and writes responses in order with writev or
// sendfile. Owned by the server; event-loop thread only; deleted through the loop's deferred
// delete so callbacks may close it from anywhere.
class Connection : public event::IoWatcher, public event::Deferrable, public Exchange {
 public:
  Connection(event::EventLoop& loop, std::unique_ptr<transport::Transport> transport,
             ConnectionInfo info,
             const ConnectionSettings& settings, ConnectionOwner& owner);
  ~Connection() override;

  void start();
  // Graceful stop: idle connections close now, busy ones after their current response.
  void drain();
  // Immediate stop (the server is going away).
  void close() { closeNow(); }

  // What travels when the connection moves to a sibling worker (ConnectionOwner::offerHandOff).
  int fd() const { return transport_->fd(); }
  // False for a transport whose state is not all in the socket (TLS): it cannot move.
  bool canHandOff() const { return transport_->canHandOff(); }
  std::string_view bufferedInput() const { return in_.view(); }
  uint64_t requestStartMs() const { return requestStartMs_; }  // 0 until a request's first byte
  uint64_t requestsServed() const { return requestsServed_; }
  // Kept alive between requests with nothing read, queued or running: it can move as it is.
  bool idleBetweenRequests() const {
    return state_ == State::kReadingHead && in_.empty() && out_.empty() && !exchangeActive_ &&
           requestStartMs_ == 0;
  }
  // A connection taken from a sibling, right after start(): the bytes it had read, when its
  // request began (CLOCK_MONOTONIC ms, shared by the processes) and the responses it has had;
  // reads and serves on from there. It is not offered again before its next request.
  void adopt(std::string_view buffered, uint64_t requestStartMs, uint64_t requestsServed);

  void onIoEvent(uint32_t events) override;

  // Exchange
  const Request& request() const override { return parser_.request(); }
  std::shared_ptr<const Request> sharedRequest() const override { return parser_.sharedRequest(); }
  const ConnectionInfo& connection() const override { return info_; }
  std::string_view signature() const override {
    return limits_.serverHeader ? *limits_.serverHeader : settings_.serverHeaderValue;
  }
  void sendHead(ResponseHead head) override;
  void sendBody(BodyChunk chunk) override;
  void finish() override;
  bool writable() const override;
  void onWritable(std::function<void()> callback) override;
  void readBody(BodyReader* reader) override;
  void onAbort(std::function<void()> callback) override;
  void abort() override;

 private:
  // Moves this connection between stub_status's waiting/reading/writing counters.
  void syncPhase();
  enum class State { kReadingHead, kActive, kClosing, kLingering, kClosed };
  enum class TimerKind { kNone, kHeader, kKeepAlive, kBody, kSend, kLinger };

  void pump();
  bool wantRead() const;
  bool readSome();
  bool canReadBodyDirect() const;
  bool readBodyDirect();
  bool afterRead(const transport::IoResult& result, size_t room);
  bool writeFile(BodyChunk& front, transport::IoResult& result);
  void processInput();
  void onHeadComplete();
  void onMessageComplete();
  void dispatchPending();
  void completeExchange();
  void finishExchange();
  uint64_t bodyBytesWritten() const;
  void logCutShort(const char* reason);
  void failRequest(int status);
  bool chunkOverLimit() const;
  void queue(BodyChunk chunk);
  void queueContinue();
  void flush();
  void afterDrained();
  void beginClose();
  void closeNow();
  void updateTimer();
  void onTimer();
  TimerKind currentTimer(uint64_t& deadline) const;
  void writeAccessLog(uint64_t bodySent);
  void resetExchange();

  event::EventLoop& loop_;
  std::unique_ptr<transport::Transport> transport_;
  ConnectionInfo info_;
  const ConnectionSettings& settings_;
  ConnectionOwner& owner_;
  RequestParser parser_;
  State state_ = State::kReadingHead;

  ByteBuffer in_;
  std::deque<BodyChunk> out_;
  uint64_t outOffset_ = 0;    // bytes of out_.front() already written
  uint64_t outMemBytes_ = 0;  // in-memory bytes queued (the backpressure measure)
  // Byte positions in the connection's output stream: everything ever queued and written. A
  // response's body starts at bodyStartPos_, so what of it really left is known when the
  // connection is cut (the access log's $body_bytes_sent, as nginx counts it).
  uint64_t queuedTotal_ = 0;
  uint64_t writtenTotal_ = 0;
  uint64_t bodyStartPos_ = 0;
  bool canRead_ = false;
  bool canWrite_ = true;
  bool readEof_ = false;
  bool peerHungUp_ = false;  // EPOLLRDHUP seen: read on until recv() reports the EOF
  // The transport's crossed waits (TLS): a read retried when the socket becomes writable, a
  // write when it becomes readable. A plain socket never sets them.
  bool readWaitsForWrite_ = false;
  bool writeWaitsForRead_ = false;
  // File bytes read for a transport without sendfile: [fileBufferStart_, + size) of out_.front().
  std::string fileBuffer_;
  uint64_t fileBufferStart_ = 0;
  bool draining_ = false;
  uint64_t drainDeadlineMs_ = 0;
  bool processing_ = false;
  bool flushScheduled_ = false;

  // The exchange in flight.
  bool exchangeActive_ = false;
  bool headSent_ = false;
  bool responseFinished_ = false;
  bool requestComplete_ = false;
  bool continueSent_ = false;
  bool chunkedResponse_ = false;
  bool dropBody_ = false;
  bool closeAfterResponse_ = false;
  bool lingerNeeded_ = false;
  // The response is finished but a large part of it is still queued: the exchange completes
  // (access log, next request) once it has been written, as nginx finalizes a request only
  // when its output is sent. Small in-memory tails complete at once (pipelining batches).
  bool awaitingDrain_ = false;
  int status_ = 0;
  std::optional<uint64_t> declaredLength_;
  uint64_t bodyBytes_ = 0;
  uint64_t headBytes_ = 0;  // the response head's bytes ($bytes_sent counts them too)
  uint64_t requestBodyBytes_ = 0;
  std::vector<Header> responseHeaders_;  // kept only for the access log
  BodyReader* bodyReader_ = nullptr;
  Handler* pendingHandler_ = nullptr;  // runs once the buffered body bytes are discarded
  bool pendingRoute_ = false;          // route_ runs once the buffered body bytes are discarded
  std::function<void()> onWritable_;
  std::function<void()> onAbort_;
  // The route of the current request (kept until the next head: its exchange decorators may
  // still be on the stack when the response finishes) and the limits it set.
  std::unique_ptr<RequestRoute> route_;
  bool routed_ = false;  // route_ belongs to the current exchange (else the site never saw it)
  bool connectionAnswered_ = false;  // failRequest() answered, not the route
  RouteLimits limits_;
  uint64_t requestsServed_ = 0;
  std::time_t startWall_ = 0;
  uint64_t startMs_ = 0;
  uint64_t startMicros_ = 0;
  uint64_t acceptedMs_ = 0;   // when the connection was made here (keepalive_time)  // CLOCK_MONOTONIC µs when the head was complete (durations)

  // Timeouts: one loop timer, re-armed lazily from the deadline the state implies.
  event::TimerId timer_{0, 0};
  uint64_t timerDue_ = 0;
  uint64_t requestStartMs_ = 0;  // first byte of the current head
  ConnectionPhase phase_ = ConnectionPhase::kNone;  // for stub_status's counters
  uint64_t idleSinceMs_ = 0;
  uint64_t lastReadMs_ = 0;
  uint64_t lastWriteMs_ = 0;
  uint64_t lingerStartMs_ = 0;
  bool sawFirstRequest_ = false;
  // The owner has not yet been offered this request (ConnectionOwner::offerHandOff).
  bool offerHandOff_ = true;
};

}  // namespace portico::http
