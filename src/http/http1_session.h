#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/body_chunk.h"
#include "core/byte_buffer.h"
#include "core/unique_fd.h"
#include "event/event_loop.h"
#include "http/connection.h"
#include "http/exchange.h"
#include "http/parser.h"
#include "http/request_decoder.h"
#include "http/stream.h"
#include "http/stub_status.h"
#include "transport/transport.h"

namespace portico::http {

class Http1Session;

// The request in flight on an HTTP/1 session: the Exchange its content writes through. The
// protocol-neutral part (route, limits, accounting, access log) is its Stream base; this adds
// the HTTP/1 response state (chunked, 100 Continue) and hands the wire work to the session.
// A member of its session, reused for each request; event-loop thread only.
class Http1Stream final : public Stream {
 public:
  Http1Stream(Http1Session& session, const ConnectionSettings& settings,
              const ConnectionInfo& info)
      : Stream(settings, info), session_(session) {}

  const Request& request() const override;
  std::shared_ptr<const Request> sharedRequest() const override;
  void sendHead(ResponseHead head) override;
  void sendBody(BodyChunk chunk) override;
  void finish() override;
  void setTrailers(std::vector<Header> trailers) override { trailers_ = std::move(trailers); }
  bool writable() const override;
  void readBody(BodyReader* reader) override;
  void abort() override;
  bool canUpgrade() const override;
  bool upgrade(RawStreamPeer* peer) override;
  void pauseUpgradedInput(bool paused) override;
  void throttle(uint64_t bytesPerSecond, uint64_t after) override;

 private:
  friend class Http1Session;
  void reset() {
    Stream::reset();
    continueSent_ = false;
    chunkedResponse_ = false;
    trailers_.clear();
  }

  Http1Session& session_;
  bool continueSent_ = false;
  bool chunkedResponse_ = false;
  std::vector<Header> trailers_;  // setTrailers: written after the last chunk
};

// One HTTP/1.x client connection — or a front server's uwsgi connection, whose requests come as
// uwsgi packets (UwsgiRequestDecoder) and whose responses are the same HTTP/1.x bytes, as
// uWSGI answers nginx's uwsgi_pass: reads and parses requests through its transport, runs them
// one at a time (each through its Http1Stream, the Exchange), and writes the responses in
// order, gathered or with sendfile; keep-alive, pipelining, timeouts, lingering close and the
// hand-off to a sibling worker. Owned by the server; event-loop thread only; deleted through
// the loop's deferred delete so callbacks may close it from anywhere.
class Http1Session final : public Connection {
 public:
  Http1Session(event::EventLoop& loop, std::unique_ptr<transport::Transport> transport,
               ConnectionInfo info, const ConnectionSettings& settings, ConnectionOwner& owner);
  ~Http1Session() override;

  // Connection
  void start() override;
  void drain() override;
  void close() override { closeNow(); }
  int fd() const override { return transport_->fd(); }
  std::string_view bufferedInput() const override { return in_.view(); }
  uint64_t requestStartMs() const override { return requestStartMs_; }
  const ConnectionInfo& info() const override { return info_; }
  uint64_t requestsServed() const override { return requestsServed_; }
  bool idleBetweenRequests() const override {
    return state_ == State::kReadingHead && in_.empty() && out_.empty() && !stream_.active() &&
           requestStartMs_ == 0 && transport_->canHandOff();
  }
  void adopt(std::string_view buffered, uint64_t requestStartMs,
             uint64_t requestsServed) override;

  void onIoEvent(uint32_t events) override;

 private:
  friend class Http1Stream;
  // The stream's Exchange calls, on the wire (taken by reference: no second move per call).
  void sendHead(ResponseHead&& head);
  void sendBody(BodyChunk&& chunk);
  void finish();
  bool writable() const;
  void readBody(BodyReader* reader);
  void abort();
  // The connection as a raw byte stream after a 101 (Exchange::upgrade).
  bool canUpgrade() const;
  bool upgrade(RawStreamPeer* peer);
  void pauseUpgradedInput(bool paused);
  void pumpUpgraded();
  void finishUpgraded();

 private:
  // Moves this connection between stub_status's waiting/reading/writing counters.
  void syncPhase();
  // kUpgraded: after a 101 the connection is a raw byte stream to the RawStreamPeer.
  enum class State { kReadingHead, kActive, kClosing, kLingering, kClosed, kUpgraded };
  enum class TimerKind { kNone, kHeader, kKeepAlive, kBody, kSend, kLinger, kDrain };

  // start() and adopt()'s common part: the transport started, the connection counted.
  void begin();
  // The socket joins epoll when the session first waits (not at start: see start()).
  bool watch();
  void watchIfWaiting();
  void pump();
  bool wantRead() const;
  bool readSome();
  bool canReadBodyDirect() const;
  bool readBodyDirect();
  bool tailLendable(const BodyReader& reader) const;
  bool lendBodyTail();
  void returnBodyTail(uint64_t consumed);
  bool afterRead(const transport::IoResult& result, size_t room);
  bool writeFile(BodyChunk& front, transport::IoResult& result, uint64_t cap);
  bool loadFileBuffer(const FileRange& range, uint64_t offset, size_t maxCount);
  void processInput();
  void onHeadComplete();
  void onMessageComplete();
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
  void checkDrain();
  void closeNow();
  void updateTimer();
  void onTimer();
  bool keepAliveAwaitsQueue();
  TimerKind currentTimer(uint64_t& deadline) const;
  void writeAccessLog(uint64_t bodySent);
  void throttle(uint64_t bytesPerSecond, uint64_t after);
  uint64_t rateAllowance();
  void rateDelay(uint64_t ms);

  class TailLender;

  event::EventLoop& loop_;
  std::unique_ptr<transport::Transport> transport_;
  // Set while the request body's tail is lent to its reader (SocketTail): nothing is read
  // from the socket until the reader gives it back.
  std::shared_ptr<TailLender> tailLender_;
  ConnectionInfo info_;
  const ConnectionSettings& settings_;
  ConnectionOwner& owner_;
  // The requests' decoder: HTTP/1 text, or uwsgi packets on a `listen ... uwsgi` address
  // (the responses are HTTP/1.x bytes either way).
  std::optional<RequestParser> http_;  // not made on a uwsgi listener (it allocates)
  std::unique_ptr<RequestDecoder> uwsgi_;
  RequestDecoder& parser_;
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
  bool registered_ = false;  // with the loop's epoll (watch)
  bool canWrite_ = true;
  bool readEof_ = false;
  bool peerHungUp_ = false;  // EPOLLRDHUP seen: read on until recv() reports the EOF
  // The transport's crossed waits (TLS): a read retried when the socket becomes writable, a
  // write when it becomes readable. A plain socket never sets them.
  bool readWaitsForWrite_ = false;
  bool writeWaitsForRead_ = false;
  // File bytes read for a transport without sendfile: [fileBufferStart_, + fileBufferSize_) of
  // the first file range in out_ (the front's, or the one right after the head it joins).
  // Allocated once, never zero-filled (it is always read into before use).
  std::unique_ptr<char[]> fileBuffer_;
  size_t fileBufferSize_ = 0;
  uint64_t fileBufferStart_ = 0;
  bool draining_ = false;
  uint64_t drainDeadlineMs_ = 0;
  bool processing_ = false;
  bool flushScheduled_ = false;

  // What outlives one exchange but ends with its response.
  bool closeAfterResponse_ = false;
  bool lingerNeeded_ = false;
  // The response is finished but a large part of it is still queued: the exchange completes
  // (access log, next request) once it has been written, as nginx finalizes a request only
  // when its output is sent. Small in-memory tails complete at once (pipelining batches).
  bool awaitingDrain_ = false;
  Http1Stream stream_;  // the request in flight (constructed after info_ and settings_)
  uint64_t requestsServed_ = 0;
  uint64_t acceptedMs_ = 0;  // when the connection was made here (keepalive_time)

  // limit_rate (nginx's write filter): the response's bytes past rateAfter_ leave at rate_
  // bytes per second counted from rateStartMs_ (0: no limit); rateBase_ is where the response
  // begins in the output stream. While rateTimer_ runs, nothing is written (nginx's
  // c->write->delayed), however writable the socket.
  uint64_t rate_ = 0;
  uint64_t rateAfter_ = 0;
  uint64_t rateStartMs_ = 0;
  uint64_t rateBase_ = 0;
  event::TimerId rateTimer_{0, 0};

  // Timeouts: one loop timer, re-armed lazily from the deadline the state implies.
  event::TimerId timer_{0, 0};
  uint64_t timerDue_ = 0;
  uint64_t requestStartMs_ = 0;  // first byte of the current head
  ConnectionPhase phase_ = ConnectionPhase::kNone;  // for stub_status's counters
  uint64_t idleSinceMs_ = 0;
  uint64_t lastReadMs_ = 0;
  uint64_t lastWriteMs_ = 0;
  uint64_t lingerStartMs_ = 0;
  // Closing with the response's tail still in the kernel's queue (beginClose): the socket is
  // kept, half-closed, until the queue is delivered (checkDrain).
  bool drainingKernel_ = false;
  bool peerReset_ = false;  // a read failed (ECONNRESET ...): nothing more can be delivered
  size_t drainUnsent_ = 0;
  uint64_t drainProgressMs_ = 0;
  uint64_t drainCheckedMs_ = 0;
  bool sawFirstRequest_ = false;
  // The keep-alive timeout ran out while the last response was still in the kernel's send
  // queue (a slow reader): the idle period is restarted once the queue is empty (onTimer).
  bool idleAwaitsQueue_ = false;
  size_t idleUnsent_ = 0;
  uint64_t idleProgressMs_ = 0;
  // The owner has not yet been offered this request (ConnectionOwner::offerHandOff).
  bool offerHandOff_ = true;
  // An upgraded connection's peer (kUpgraded), whether it paused reading, and whether it was
  // told of the client's end.
  RawStreamPeer* raw_ = nullptr;
  bool rawPaused_ = false;
  bool rawEnded_ = false;
};

}  // namespace portico::http
