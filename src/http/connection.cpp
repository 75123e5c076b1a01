#include "http/connection.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "http/http1_codec.h"
#include "http/http_date.h"

namespace portico::http {

namespace {

constexpr size_t kReadSize = 16 * 1024;
// The in-memory output one connection may hold before producers are told to wait or spill to
// a file (nginx's proxy_buffers are 8 × 8 KiB): with thousands of slow readers this is what
// memory grows by per connection.
constexpr uint64_t kHighWatermark = 64 * 1024;
constexpr uint64_t kLowWatermark = 32 * 1024;
constexpr size_t kPipelinePrefetch = 16 * 1024;  // bytes read ahead while a response is pending
// A body part at least this large is received straight into its reader's memory (bodySpace):
// never more recv() calls than through the input buffer, and one copy fewer.
constexpr size_t kDirectBodyMin = kReadSize;
constexpr uint64_t kLingerTimeoutMs = 5000;       // nginx lingering_timeout
constexpr uint64_t kLingerTotalMs = 30000;        // nginx lingering_time
constexpr int kMaxIov = 64;
// A file range read into memory per write when the transport cannot sendfile (TLS without
// kernel TLS): a few TLS records' worth.
constexpr size_t kFileReadSize = 64 * 1024;

// Monotonic microseconds: a request's duration ($request_time, gunicorn's %(D)s) is measured
// with this, since the loop's cached clock has only millisecond steps.
uint64_t monotonicMicros() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

// nginx's $connection: a serial number per connection (nginx counts in shared memory across
// workers; portico counts per worker process).
std::atomic<uint64_t> connectionCounter{0};

}  // namespace

Connection::Connection(event::EventLoop& loop, std::unique_ptr<transport::Transport> transport,
                       ConnectionInfo info, const ConnectionSettings& settings,
                       ConnectionOwner& owner)
    : loop_(loop),
      transport_(std::move(transport)),
      info_(std::move(info)),
      settings_(settings),
      owner_(owner),
      parser_(settings.limits) {
  limits_.maxBodySize = settings.maxBodySize;
  limits_.bodyTimeoutMs = settings.bodyTimeoutMs;
  limits_.sendTimeoutMs = settings.sendTimeoutMs;
  limits_.keepAliveTimeoutMs = settings.keepAliveTimeoutMs;
  info_.number = ++connectionCounter;
  acceptedMs_ = loop_.nowMs();
  info_.openedMicros = monotonicMicros();
  connectionStats().active.fetch_add(1, std::memory_order_relaxed);
}

Connection::~Connection() {
  loop_.cancelTimer(timer_);
  moveConnectionPhase(phase_, ConnectionPhase::kNone);
  connectionStats().active.fetch_sub(1, std::memory_order_relaxed);
}

void Connection::syncPhase() {
  ConnectionPhase want = ConnectionPhase::kNone;
  if (state_ == State::kReadingHead) {
    want = requestStartMs_ != 0 || !in_.empty() ? ConnectionPhase::kReading
                                                 : ConnectionPhase::kWaiting;
  } else if (state_ == State::kActive) {
    want = ConnectionPhase::kWriting;
  }
  moveConnectionPhase(phase_, want);
  phase_ = want;
}

void Connection::start() {
  transport_->start();
  if (!loop_.add(transport_->fd(), EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, this)) {
    logError(std::string("epoll_ctl: ") + std::strerror(errno));
    closeNow();
    return;
  }
  idleSinceMs_ = loop_.nowMs();
  syncPhase();  // a new connection waits for its first request (stub_status)
  updateTimer();
}

void Connection::adopt(std::string_view buffered, uint64_t requestStartMs,
                       uint64_t requestsServed) {
  if (state_ != State::kReadingHead) return;  // start() failed
  offerHandOff_ = false;
  requestsServed_ = requestsServed;
  sawFirstRequest_ = requestsServed > 0;
  if (!buffered.empty()) {
    std::memcpy(in_.prepare(buffered.size()), buffered.data(), buffered.size());
    in_.commit(buffered.size());
    requestStartMs_ = requestStartMs ? requestStartMs : loop_.nowMs();
  }
  canRead_ = true;  // the rest of the request may be in the socket already
  pump();
  if (state_ != State::kClosed) updateTimer();
}

void Connection::drain() {
  // An idle kept-alive connection is not closed at once: its client may be sending a request
  // right now, and a close would race it (a failed request on reload). It gets one more
  // response, marked "Connection: close", or closes when its drain grace runs out.
  draining_ = true;
  // At most a second: long enough for a request already on its way, short enough that a stop
  // with idle keep-alive connections is prompt.
  drainDeadlineMs_ = loop_.nowMs() + std::min<uint64_t>(limits_.keepAliveTimeoutMs, 1000);
  if (state_ != State::kClosed) updateTimer();
}

void Connection::onIoEvent(uint32_t events) {
  if (state_ == State::kClosed) return;
  if ((events & EPOLLIN) && writeWaitsForRead_) {
    writeWaitsForRead_ = false;
    events |= EPOLLOUT;  // the transport's write waited for input (TLS)
  }
  if ((events & EPOLLOUT) && readWaitsForWrite_) {
    readWaitsForWrite_ = false;
    events |= EPOLLIN;  // the transport's read waited for the socket to be writable (TLS)
  }
  if (events & EPOLLOUT) {
    canWrite_ = true;
    flush();
    if (state_ == State::kClosed) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    canRead_ = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peerHungUp_ = true;
    pump();
  }
  if (state_ != State::kClosed) updateTimer();
}

bool Connection::wantRead() const {
  switch (state_) {
    case State::kReadingHead:
      return in_.size() < settings_.limits.maxHeaderTotal + kReadSize;
    case State::kActive:
      if (!requestComplete_) return true;
      return in_.size() < kPipelinePrefetch;
    case State::kLingering:
      return true;
    default:
      return false;
  }
}

// Reads once into the input buffer; false when nothing more can be read now.
bool Connection::readSome() {
  char* dst = in_.prepare(kReadSize);
  size_t room = in_.writable();
  transport::IoResult result = transport_->read(dst, room);
  if (result.done()) in_.commit(result.bytes);
  return afterRead(result, room);
}

// True when the next body bytes can go straight to the reader: nothing is buffered ahead of
// them, and the parser expects enough raw body bytes (a Content-Length body, a large chunk).
bool Connection::canReadBodyDirect() const {
  return state_ == State::kActive && !requestComplete_ && bodyReader_ && in_.empty() &&
         parser_.rawBodyWanted() >= kDirectBodyMin;
}

// Receives body bytes into the reader's own memory; false when nothing more can be read now.
bool Connection::readBodyDirect() {
  size_t max = static_cast<size_t>(std::min<uint64_t>(parser_.rawBodyWanted(), SIZE_MAX));
  std::span<char> space = bodyReader_->bodySpace(max);
  if (space.empty()) return readSome();
  size_t room = std::min(space.size(), max);
  transport::IoResult result = transport_->read(space.data(), room);
  if (result.done()) {
    const uint64_t n = result.bytes;
    parser_.skipBody(static_cast<uint64_t>(n));
    requestBodyBytes_ += static_cast<uint64_t>(n);
    info_.requestLength += static_cast<uint64_t>(n);
    if (limits_.maxBodySize && requestBodyBytes_ > limits_.maxBodySize) {
      // Not reached (a chunk is checked against the limit when announced), but never trust
      // that: the pump goes on, so a lingering close still drains the socket.
      failRequest(413);
      return true;
    }
    bodyReader_->onBodyReceived(static_cast<size_t>(n));
  }
  return afterRead(result, room);
}

// The bookkeeping after a read of at most `room` bytes; false when nothing more can be read now.
bool Connection::afterRead(const transport::IoResult& result, size_t room) {
  switch (result.status) {
    case transport::IoStatus::kDone:
      lastReadMs_ = loop_.nowMs();
      // A short read drained the socket (edge-triggered: no need to see EAGAIN) — unless the
      // peer also closed, whose EOF only a further read reports, or the transport holds more.
      if (result.bytes < room && !peerHungUp_ && transport_->pendingRead() == 0) {
        canRead_ = false;
      }
      return true;
    case transport::IoStatus::kInterrupted:
      return true;
    case transport::IoStatus::kWantWrite:
      readWaitsForWrite_ = true;
      canRead_ = false;
      return false;
    case transport::IoStatus::kWouldBlock:
    case transport::IoStatus::kWantRead:
      canRead_ = false;
      return false;
    case transport::IoStatus::kEof:
    case transport::IoStatus::kError:  // ECONNRESET and friends: the peer is gone
      readEof_ = true;
      canRead_ = false;
      return false;
  }
  return false;
}

void Connection::pump() {
  if (processing_) return;
  // However pump leaves (the connection is deleted only later, deferred).
  struct PhaseSync {
    Connection* c;
    ~PhaseSync() { c->syncPhase(); }
  } phaseSync{this};
  for (;;) {
    processInput();
    if (state_ == State::kClosed) return;
    if (state_ == State::kLingering) {
      // Discard whatever the client still sends until it closes or lingering times out.
      while (canRead_ && readSome()) in_.consume(in_.size());
      if (readEof_) closeNow();
      return;
    }
    if (!canRead_ || !wantRead()) break;
    if (!(canReadBodyDirect() ? readBodyDirect() : readSome())) break;
  }
  if (state_ == State::kClosed) return;
  if (readEof_) {
    // The client closed its side. Requests already read are still answered (a half-closed
    // client may be waiting for them); anything incomplete is abandoned.
    if (state_ == State::kReadingHead) {
      // Answers already queued still go out; a partial request is abandoned.
      state_ = State::kClosing;
      if (out_.empty()) closeNow();
    } else if (state_ == State::kActive && !requestComplete_) {
      closeNow();
    } else if (state_ == State::kActive) {
      closeAfterResponse_ = true;
    }
  }
  if (state_ == State::kReadingHead || state_ == State::kActive) {
    // Also while a handler works: with many connections the buffers of requests in flight
    // would otherwise stay allocated (16 KiB each); the per-thread cache makes re-taking one
    // cheap.
    if (in_.empty()) in_.releaseIfEmpty();
  }
}

void Connection::processInput() {
  if (processing_) return;
  processing_ = true;
  while (state_ == State::kReadingHead || state_ == State::kActive) {
    if (state_ == State::kActive && requestComplete_) break;  // wait for the response
    if (state_ == State::kReadingHead && in_.empty()) break;
    if (offerHandOff_ && state_ == State::kReadingHead) {
      // A request begins with nothing else in flight: a worker whose Python threads are all
      // busy may give the connection to an idle sibling, so the request does not wait here.
      offerHandOff_ = false;
      if (out_.empty() && !draining_ && transport_->canHandOff() && owner_.offerHandOff(*this)) {
        processing_ = false;
        return;  // given away: closed here
      }
    }
    if (state_ == State::kReadingHead && requestStartMs_ == 0) {
      requestStartMs_ = loop_.nowMs();  // the header timeout runs from a request's first byte
    }
    size_t consumed = 0;
    ParseEvent ev = parser_.parse(in_.view(), consumed);
    info_.requestLength += consumed;
    switch (ev) {
      case ParseEvent::kNeedMore:
        in_.consume(consumed);
        if (chunkOverLimit()) {
          // A chunk announced past the body limit is refused before its bytes (nginx's 413
          // "client intended to send too large chunked body").
          failRequest(413);
          break;
        }
        if (pendingHandler_ || pendingRoute_) dispatchPending();
        processing_ = false;
        return;
      case ParseEvent::kHeadComplete:
        in_.consume(consumed);
        onHeadComplete();
        break;
      case ParseEvent::kBodyData: {
        std::string_view data = parser_.bodyData();
        requestBodyBytes_ += data.size();
        if ((limits_.maxBodySize && requestBodyBytes_ > limits_.maxBodySize) || chunkOverLimit()) {
          in_.consume(consumed);
          failRequest(413);
          break;
        }
        if (bodyReader_) bodyReader_->onBodyData(data);
        in_.consume(consumed);
        break;
      }
      case ParseEvent::kMessageComplete:
        in_.consume(consumed);
        if (pendingHandler_ || pendingRoute_) {
          requestComplete_ = true;
          dispatchPending();
        } else {
          onMessageComplete();
        }
        break;
      case ParseEvent::kError:
        pendingHandler_ = nullptr;
        pendingRoute_ = false;
        failRequest(parser_.errorStatus());
        break;
    }
  }
  processing_ = false;
}

// True when the chunked body being read has announced more than the route's body limit.
bool Connection::chunkOverLimit() const {
  return state_ == State::kActive && !requestComplete_ && limits_.maxBodySize != 0 &&
         parser_.chunkedBodyDeclared() > limits_.maxBodySize;
}

void Connection::onHeadComplete() {
  state_ = State::kActive;
  syncPhase();
  exchangeActive_ = true;
  sawFirstRequest_ = true;
  startMs_ = loop_.nowMs();
  startMicros_ = monotonicMicros();
  startWall_ = std::time(nullptr);
  lastReadMs_ = startMs_;
  info_.requests = requestsServed_ + 1;
  const Request& req = parser_.request();
  if (!req.keepAlive || draining_) closeAfterResponse_ = true;

  if (settings_.site) {
    // Server selection and location matching decide the limits, then the route answers.
    route_ = settings_.site->route(req, info_);
    routed_ = true;
    limits_ = route_->limits();
    if (limits_.keepAliveTimeoutMs == 0 ||
        (limits_.keepAliveRequests && requestsServed_ + 1 >= limits_.keepAliveRequests) ||
        (limits_.keepAliveTimeMs && loop_.nowMs() - acceptedMs_ > limits_.keepAliveTimeMs)) {
      closeAfterResponse_ = true;
    }
    if (limits_.maxBodySize && req.contentLength && *req.contentLength > limits_.maxBodySize) {
      // Before a byte of the body is read, as nginx; the route's error_page may answer it.
      closeAfterResponse_ = true;
      lingerNeeded_ = true;
      requestComplete_ = true;  // nothing more will be parsed on this connection
      route_->reject(413, *this);
      return;
    }
    if (req.hasBody() && !route_->readsBody()) {
      pendingRoute_ = true;  // run once the buffered part of the body is parsed
      return;
    }
    route_->run(*this);
    return;
  }
  // The body limit is checked before a byte of the body is read (nginx's 413).
  if (settings_.maxBodySize && req.contentLength && *req.contentLength > settings_.maxBodySize) {
    failRequest(413);
    return;
  }
  // "100 Continue" is sent lazily: when the body is wanted (readBody), or before a final
  // response that keeps the connection (the body is then read and discarded).
  std::string normalized;
  Handler* handler = nullptr;
  if (!req.path.empty() && req.path[0] == '/' && normalizePath(req.path, normalized)) {
    handler = settings_.router ? settings_.router->route(normalized) : nullptr;
  }
  if (!handler) {
    respondError(404);
    return;
  }
  if (req.hasBody() && !handler->readsBody()) {
    pendingHandler_ = handler;  // dispatched when the buffered part of the body is parsed
    return;
  }
  handler->handle(*this);
}

void Connection::dispatchPending() {
  if (pendingRoute_) {
    pendingRoute_ = false;
    route_->run(*this);
    return;
  }
  Handler* handler = pendingHandler_;
  pendingHandler_ = nullptr;
  handler->handle(*this);
}

void Connection::onMessageComplete() {
  requestComplete_ = true;
  if (bodyReader_) {
    BodyReader* reader = bodyReader_;
    bodyReader_ = nullptr;
    reader->onBodyEnd();
  }
  if (responseFinished_) completeExchange();
}

void Connection::failRequest(int status) {
  // Bad input: answer with the status (if nothing was sent yet) and close, lingering so the
  // client can read the answer even if it is still sending.
  closeAfterResponse_ = true;
  lingerNeeded_ = true;
  if (!exchangeActive_) {
    exchangeActive_ = true;
    state_ = State::kActive;
    startMs_ = loop_.nowMs();
    startMicros_ = monotonicMicros();
    startWall_ = std::time(nullptr);
    info_.requests = requestsServed_ + 1;
  }
  requestComplete_ = true;  // nothing more will be parsed on this connection
  bodyReader_ = nullptr;
  pendingHandler_ = nullptr;
  pendingRoute_ = false;
  if (headSent_) {
    if (!responseFinished_) {
      closeNow();
      return;
    }
    completeExchange();
    return;
  }
  connectionAnswered_ = true;
  if (status == 431 && settings_.headerTooLargeIs400) {
    ResponseHead head;
    head.status = 400;
    head.add("Content-Type", "text/html");
    respond(std::move(head),
            "<html>\r\n<head><title>400 Request Header Or Cookie Too Large</title></head>\r\n"
            "<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n"
            "<center>Request Header Or Cookie Too Large</center>\r\n"
            "<hr><center>" + std::string(signature()) + "</center>\r\n</body>\r\n</html>\r\n");
    return;
  }
  respondError(status);
}

void Connection::queue(BodyChunk chunk) {
  if (out_.empty()) lastWriteMs_ = loop_.nowMs();  // the send timeout counts from here
  uint64_t size = chunk.size();
  queuedTotal_ += size;
  if (!chunk.isFile()) outMemBytes_ += size;
  out_.push_back(std::move(chunk));
  if (!flushScheduled_) {
    // Coalesce everything produced in this loop iteration (pipelined responses) into one write.
    flushScheduled_ = true;
    loop_.defer([this] {
      flushScheduled_ = false;
      if (state_ != State::kClosed) {
        flush();
        if (state_ != State::kClosed) updateTimer();
      }
    });
  }
}

void Connection::queueContinue() {
  if (continueSent_) return;
  continueSent_ = true;
  queue(BodyChunk(std::string(http1::kContinue)));
}

void Connection::sendHead(ResponseHead head) {
  if (!exchangeActive_ || headSent_ || state_ == State::kClosed) return;
  const Request& req = parser_.request();
  headSent_ = true;
  status_ = head.status;
  http1::ResponseFraming framing = http1::chooseFraming(head, req.isHead(), req.versionMinor,
                                                        closeAfterResponse_ || draining_);
  closeAfterResponse_ = framing.close;
  dropBody_ = framing.dropBody;
  chunkedResponse_ = framing.chunked;
  declaredLength_ = head.contentLength;
  if (!requestComplete_ && http1::wantsContinue(req) && !closeAfterResponse_) {
    // The client waits for 100 before it sends the body we must read to keep the connection.
    queueContinue();
  }
  http1::HeadOptions options;
  options.serverHeader = settings_.serverHeader;
  options.serverValue = signature();
  options.date = cachedHttpDate(std::time(nullptr));
  options.keepAliveSeconds = limits_.keepAliveHeaderSeconds;
  std::string out = http1::serializeHead(head, framing, options);
  if (settings_.accessLog) responseHeaders_ = std::move(head.headers);
  headBytes_ = out.size();
  queue(BodyChunk(std::move(out)));
  bodyStartPos_ = queuedTotal_;
}

void Connection::sendBody(BodyChunk chunk) {
  if (!headSent_ || responseFinished_ || state_ == State::kClosed) return;
  uint64_t size = chunk.size();
  if (size == 0) return;
  if (declaredLength_) {
    // Never send more than the declared length: the excess would be read as a next response.
    uint64_t room = *declaredLength_ > bodyBytes_ ? *declaredLength_ - bodyBytes_ : 0;
    if (size > room) {
      logError("response body longer than its Content-Length; truncated");
      closeAfterResponse_ = true;
      if (room == 0) return;
      if (auto* s = std::get_if<std::string>(&chunk.data)) {
        s->resize(room);
      } else {
        std::get<FileRange>(chunk.data).length = room;
      }
      size = room;
    }
  }
  bodyBytes_ += size;
  if (dropBody_) return;
  if (chunkedResponse_) {
    queue(BodyChunk(http1::chunkHeader(size)));
    queue(std::move(chunk));
    queue(BodyChunk(std::string(http1::kChunkEnd)));
  } else {
    queue(std::move(chunk));
  }
}

void Connection::finish() {
  if (!headSent_ || responseFinished_ || state_ == State::kClosed) return;
  responseFinished_ = true;
  if (chunkedResponse_ && !dropBody_) queue(BodyChunk(std::string(http1::kLastChunk)));
  if (declaredLength_ && bodyBytes_ < *declaredLength_ && !dropBody_) {
    // The handler sent less than it promised; the client can only tell from a close.
    logError("response body shorter than its Content-Length; closing the connection");
    closeAfterResponse_ = true;
    lingerNeeded_ = true;
  }
  if (requestComplete_ || closeAfterResponse_) {
    completeExchange();
  } else if (!processing_) {
    // The rest of the request body is read and discarded before the next request.
    loop_.defer([this] {
      if (state_ != State::kClosed) {
        pump();
        if (state_ != State::kClosed) updateTimer();
      }
    });
  }
}

bool Connection::writable() const { return outMemBytes_ < kHighWatermark; }

void Connection::onWritable(std::function<void()> callback) { onWritable_ = std::move(callback); }

void Connection::readBody(BodyReader* reader) {
  bodyReader_ = reader;
  const Request& req = parser_.request();
  if (!requestComplete_ && http1::wantsContinue(req)) {
    queueContinue();
  }
  if (requestComplete_ && reader) {
    bodyReader_ = nullptr;
    reader->onBodyEnd();
  }
}

void Connection::onAbort(std::function<void()> callback) { onAbort_ = std::move(callback); }

void Connection::abort() {
  onAbort_ = nullptr;  // the handler asked for this; it needs no notice
  if (!headSent_ || !exchangeActive_) {
    closeNow();
    return;
  }
  // What the app produced before it failed still goes out; the close (with no chunked
  // terminator, or short of Content-Length) then tells the client the response is truncated.
  responseFinished_ = true;
  closeAfterResponse_ = true;
  lingerNeeded_ = true;
  completeExchange();
}

// What of the current response's body has really been written to the socket.
uint64_t Connection::bodyBytesWritten() const {
  if (writtenTotal_ <= bodyStartPos_) return 0;
  return std::min(bodyBytes_, writtenTotal_ - bodyStartPos_);
}

// A response is being cut short with bytes still queued: say so, as nginx does (at info: the
// client's doing, not the server's), with what the client had asked for.
void Connection::logCutShort(const char* reason) {
  if (out_.empty() || !ErrorLog::instance().enabled(LogLevel::kInfo)) return;
  const Request& req = parser_.request();
  std::string line(reason);
  line.append(" while sending response to client, client: ")
      .append(info_.isUnix ? "unix:" : info_.peerAddress)
      .append(", request: \"")
      .append(req.method)
      .append(" ")
      .append(req.target)
      .append(req.versionMinor == 0 ? " HTTP/1.0\"" : " HTTP/1.1\"");
  logInfo(line);
}

void Connection::writeAccessLog(uint64_t bodySent) {
  // A request refused before any route existed (bad request line, 414, header too large, a
  // slow head's 408) is logged by the site as nginx does (the server level of the address's
  // default server, or of the one a complete Host line chose); one the connection answered
  // after routing (its body) by the route, with its location's logs; a routed response by the
  // route too, now that its bytes have left (or the connection was cut).
  const bool unrouted = settings_.site != nullptr && !routed_;
  const bool routeLogs = routed_ && route_;
  if (!settings_.accessLog && !unrouted && !routeLogs) return;
  AccessLogEntry entry;
  entry.request = &parser_.request();
  entry.connection = &info_;
  entry.status = status_;
  entry.bodyBytesSent = dropBody_ ? 0 : bodySent;
  entry.bytesSent = (headSent_ ? headBytes_ : 0) + entry.bodyBytesSent;
  entry.responseHeaders = &responseHeaders_;
  entry.startTime = startWall_;
  entry.durationMicros = monotonicMicros() - startMicros_;
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
    failed.request = &parser_.pendingRequest();
    settings_.site->logUnrouted(failed);
  }
  if (settings_.accessLog) {
    settings_.accessLog->file.writeLine(settings_.accessLog->formatter.format(entry));
  }
}

void Connection::resetExchange() {
  exchangeActive_ = false;
  headSent_ = false;
  responseFinished_ = false;
  requestComplete_ = false;
  continueSent_ = false;
  chunkedResponse_ = false;
  dropBody_ = false;
  status_ = 0;
  routed_ = false;
  connectionAnswered_ = false;
  declaredLength_.reset();
  bodyBytes_ = 0;
  requestBodyBytes_ = 0;
  headBytes_ = 0;
  info_.requestLength = 0;
  info_.pipelined = false;
  responseHeaders_.clear();
  bodyReader_ = nullptr;
  pendingHandler_ = nullptr;
  pendingRoute_ = false;
  onWritable_ = nullptr;
  onAbort_ = nullptr;
}

void Connection::completeExchange() {
  // The response is finished. When a large part of it is still queued (a file range, or more
  // than the low watermark in memory) the exchange completes once that is written: the access
  // log then says what left, and no idle keep-alive timer can run while a client is reading.
  if (awaitingDrain_) return;  // already completing (a late end of the request body)
  onWritable_ = nullptr;  // no producer is left to wake
  if (!out_.empty()) {
    bool large = outMemBytes_ > kLowWatermark;
    for (auto it = out_.begin(); !large && it != out_.end(); ++it) large = it->isFile();
    if (large) {
      awaitingDrain_ = true;
      if (canWrite_) flush();  // finishes the exchange when the socket takes it all
      return;
    }
  }
  finishExchange();
}

void Connection::finishExchange() {
  writeAccessLog(bodyBytes_);
  ++requestsServed_;
  if (settings_.onRequestDone) settings_.onRequestDone();
  bool close = closeAfterResponse_ || draining_;
  if (close && !requestComplete_) lingerNeeded_ = true;  // unread body may still arrive
  resetExchange();
  if (close) {
    state_ = State::kClosing;
    if (out_.empty()) afterDrained();
    return;
  }
  state_ = State::kReadingHead;
  idleSinceMs_ = loop_.nowMs();
  requestStartMs_ = in_.empty() ? 0 : loop_.nowMs();
  // nginx's r->pipeline: the next request's bytes were read before this one ended.
  info_.pipelined = !in_.empty();
  syncPhase();
  offerHandOff_ = true;
  if (!processing_) {
    // Asynchronous completion: continue with pipelined input once this callback unwinds.
    loop_.defer([this] {
      if (state_ != State::kClosed) {
        pump();
        if (state_ != State::kClosed) updateTimer();
      }
    });
  }
}

// Writes the file range at the front of the queue: sendfile when the transport can, else
// read into fileBuffer_ (kept until written: a TLS write is retried with the same bytes).
// False when the connection was closed (the file shrank, or could not be read).
bool Connection::writeFile(BodyChunk& front, transport::IoResult& result) {
  FileRange& range = std::get<FileRange>(front.data);
  uint64_t left = range.length - outOffset_;
  if (transport_->canSendFile()) {
    size_t count = left > (1u << 30) ? (1u << 30) : static_cast<size_t>(left);
    result = transport_->sendFile(range.file->get(), range.offset + outOffset_, count);
    if (result.done() && result.bytes == 0 && count > 0) {
      // The file shrank under us: the promised length can no longer be met.
      logError("file truncated while being sent; closing the connection");
      closeNow();
      return false;
    }
    return true;
  }
  if (fileBuffer_.empty() || outOffset_ < fileBufferStart_ ||
      outOffset_ >= fileBufferStart_ + fileBuffer_.size()) {
    size_t count = left > kFileReadSize ? kFileReadSize : static_cast<size_t>(left);
    fileBuffer_.resize(count);
    ssize_t n = ::pread(range.file->get(), fileBuffer_.data(), count,
                        static_cast<off_t>(range.offset + outOffset_));
    if (n <= 0) {
      logError(n == 0 ? "file truncated while being sent; closing the connection"
                      : std::string("pread() failed (") + std::strerror(errno) +
                            "); closing the connection");
      fileBuffer_.clear();
      closeNow();
      return false;
    }
    fileBuffer_.resize(static_cast<size_t>(n));
    fileBufferStart_ = outOffset_;
  }
  size_t skip = static_cast<size_t>(outOffset_ - fileBufferStart_);
  iovec iov{fileBuffer_.data() + skip, fileBuffer_.size() - skip};
  result = transport_->writev(&iov, 1, left > iov.iov_len);
  return true;
}

void Connection::flush() {
  while (!out_.empty() && canWrite_) {
    transport::IoResult result;
    BodyChunk& front = out_.front();
    if (front.isFile()) {
      if (!writeFile(front, result)) return;
    } else {
      iovec iov[kMaxIov];
      int cnt = 0;
      bool fileFollows = false;
      uint64_t skip = outOffset_;
      for (auto it = out_.begin(); it != out_.end() && cnt < kMaxIov; ++it) {
        if (it->isFile()) {
          fileFollows = true;
          break;
        }
        auto& s = std::get<std::string>(it->data);
        iov[cnt].iov_base = const_cast<char*>(s.data()) + skip;
        iov[cnt].iov_len = s.size() - skip;
        skip = 0;
        ++cnt;
      }
      // "More follows" before file data: the head and the first file bytes share a segment.
      result = transport_->writev(iov, cnt, fileFollows);
    }
    if (!result.done()) {
      if (result.status == transport::IoStatus::kInterrupted) continue;
      if (result.status == transport::IoStatus::kWouldBlock ||
          result.status == transport::IoStatus::kWantWrite) {
        canWrite_ = false;
        break;
      }
      if (result.status == transport::IoStatus::kWantRead) {
        canWrite_ = false;
        writeWaitsForRead_ = true;
        break;
      }
      // EPIPE, ECONNRESET: the client is gone.
      int err = result.error;
      std::string reason =
          std::string(front.isFile() && transport_->canSendFile() ? "sendfile()" : "writev()") +
          " failed (" + std::to_string(err) + ": " + std::strerror(err) + ")";
      logCutShort(reason.c_str());
      closeNow();
      return;
    }
    lastWriteMs_ = loop_.nowMs();
    uint64_t written = result.bytes;
    writtenTotal_ += written;
    while (written > 0 && !out_.empty()) {
      BodyChunk& c = out_.front();
      uint64_t left = c.size() - outOffset_;
      if (written >= left) {
        written -= left;
        if (c.isFile()) {
          fileBuffer_.clear();
        } else {
          outMemBytes_ -= c.size();
        }
        out_.pop_front();
        outOffset_ = 0;
      } else {
        outOffset_ += written;
        written = 0;
      }
    }
  }
  if (onWritable_ && outMemBytes_ < kLowWatermark) {
    auto callback = std::move(onWritable_);
    onWritable_ = nullptr;
    callback();
    if (state_ == State::kClosed) return;
  }
  if (out_.empty()) afterDrained();
}

void Connection::afterDrained() {
  if (awaitingDrain_) {
    awaitingDrain_ = false;
    finishExchange();
    return;
  }
  if (state_ == State::kClosing) {
    beginClose();
  } else if (state_ == State::kReadingHead && requestStartMs_ == 0) {
    idleSinceMs_ = loop_.nowMs();  // keep-alive idleness starts when the last byte has left
  }
}

void Connection::beginClose() {
  if (!lingerNeeded_ && in_.empty()) {
    closeNow();
    return;
  }
  // Closing with unread input would make the kernel send RST and could destroy the response
  // before the client reads it; half-close and discard input for a while instead (nginx's
  // lingering close).
  transport_->shutdownWrite();
  in_.consume(in_.size());
  state_ = State::kLingering;
  lingerStartMs_ = loop_.nowMs();
  lastReadMs_ = lingerStartMs_;
  if (readEof_) {
    closeNow();
    return;
  }
  canRead_ = true;
  pump();
}

void Connection::closeNow() {
  if (state_ == State::kClosed) return;
  bool aborted = exchangeActive_ && !responseFinished_;
  state_ = State::kClosed;
  loop_.cancelTimer(timer_);
  if (aborted && onAbort_) {
    auto callback = std::move(onAbort_);
    onAbort_ = nullptr;
    callback();
  }
  // An exchange still active was never logged: its response was cut short, or the client left
  // before its request body was complete. Log what really left.
  if (exchangeActive_ && headSent_) writeAccessLog(bodyBytesWritten());
  awaitingDrain_ = false;
  loop_.remove(transport_->fd());
  transport_->close();
  out_.clear();
  fileBuffer_.clear();
  syncPhase();
  owner_.connectionClosed(this);
}

Connection::TimerKind Connection::currentTimer(uint64_t& deadline) const {
  switch (state_) {
    case State::kReadingHead:
      if (!out_.empty()) {
        // The previous response is still leaving: the client has send_timeout between two
        // successful writes, however long the whole takes (never the keep-alive timeout).
        deadline = lastWriteMs_ + limits_.sendTimeoutMs;
        return TimerKind::kSend;
      }
      if (requestStartMs_ == 0) {
        // Nothing of a request yet: a new connection gets the header timeout, a kept-alive one
        // the keep-alive timeout; either way it is closed silently, as nginx does.
        deadline = idleSinceMs_ +
                   (sawFirstRequest_ ? limits_.keepAliveTimeoutMs : settings_.headerTimeoutMs);
        if (draining_ && drainDeadlineMs_ < deadline) deadline = drainDeadlineMs_;
        return TimerKind::kKeepAlive;
      }
      deadline = requestStartMs_ + settings_.headerTimeoutMs;
      return TimerKind::kHeader;
    case State::kActive:
      if (!out_.empty() && !canWrite_) {
        deadline = lastWriteMs_ + limits_.sendTimeoutMs;
        return TimerKind::kSend;
      }
      if (!requestComplete_ && parser_.request().hasBody()) {
        deadline = lastReadMs_ + limits_.bodyTimeoutMs;
        return TimerKind::kBody;
      }
      return TimerKind::kNone;  // a handler at work has no client timeout
    case State::kClosing:
      if (out_.empty()) return TimerKind::kNone;  // closing is already under way
      deadline = lastWriteMs_ + limits_.sendTimeoutMs;
      return TimerKind::kSend;
    case State::kLingering: {
      uint64_t a = lastReadMs_ + kLingerTimeoutMs;
      uint64_t b = lingerStartMs_ + kLingerTotalMs;
      deadline = a < b ? a : b;
      return TimerKind::kLinger;
    }
    case State::kClosed:
      return TimerKind::kNone;
  }
  return TimerKind::kNone;
}

void Connection::updateTimer() {
  uint64_t deadline = 0;
  TimerKind kind = currentTimer(deadline);
  // No deadline now (a handler at work): an armed timer stays, and finds nothing to do if it
  // fires first. Cancelling it would cost a timer removal and insertion per request.
  if (kind == TimerKind::kNone) return;
  // Lazy re-arming: a timer already due earlier simply re-checks when it fires.
  if (timer_.second != 0 && timerDue_ <= deadline) return;
  loop_.cancelTimer(timer_);
  timerDue_ = deadline;
  uint64_t now = loop_.nowMs();
  timer_ = loop_.addTimer(deadline > now ? deadline - now : 0, [this] {
    timer_ = {0, 0};
    onTimer();
  });
}

void Connection::onTimer() {
  if (state_ == State::kClosed) return;
  uint64_t deadline = 0;
  TimerKind kind = currentTimer(deadline);
  if (kind == TimerKind::kNone) return;
  if (loop_.nowMs() < deadline) {
    updateTimer();
    return;
  }
  switch (kind) {
    case TimerKind::kHeader:
    case TimerKind::kBody:
      if (!headSent_) {
        // Part of a request arrived too slowly: say so (408) and close, as nginx logs it.
        failRequest(408);
        if (state_ != State::kClosed) updateTimer();
        return;
      }
      closeNow();
      return;
    case TimerKind::kSend:
      logCutShort("client timed out (110: Connection timed out)");
      closeNow();
      return;
    case TimerKind::kKeepAlive:
    case TimerKind::kLinger:
    case TimerKind::kNone:
      closeNow();
      return;
  }
}

}  // namespace portico::http
