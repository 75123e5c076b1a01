#include "http/http1_session.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "http/http1_codec.h"
#include "http/http_date.h"
#include "http/uwsgi_request.h"

namespace portico::http {

namespace {

constexpr size_t kReadSize = 16 * 1024;
// The in-memory output one connection may hold before producers are told to wait or spill to
// a file (nginx's proxy_buffers are 8 × 8 KiB): with thousands of slow readers this is what
// memory grows by per connection.
constexpr uint64_t kHighWatermark = 64 * 1024;
constexpr uint64_t kLowWatermark = 32 * 1024;
constexpr size_t kPipelinePrefetch = 16 * 1024;  // bytes read ahead while a response is pending
// The least rest of a body lent to its reader as a SocketTail: below it, reading on costs less
// than the lending (a dup, an ioctl, a message back).
constexpr uint64_t kBodyTailMin = 256 * 1024;
// The receive buffer asked for a large body, so that its tail can be lent (the kernel doubles
// it for its own overhead, and caps it at net.core.rmem_max doubled).
constexpr uint64_t kTailBuffer = 4 * 1024 * 1024;
// A body part at least this large is received straight into its reader's memory (bodySpace):
// never more recv() calls than through the input buffer, and one copy fewer.
constexpr size_t kDirectBodyMin = kReadSize;
constexpr uint64_t kLingerTimeoutMs = 5000;       // nginx lingering_timeout
constexpr uint64_t kLingerTotalMs = 30000;        // nginx lingering_time
// While a closing connection's last bytes are still in the kernel's queue, how often it is
// looked at (SIOCOUTQ; no event says the queue emptied).
constexpr uint64_t kDrainPollMs = 100;
// A closing connection's tail that has been transmitted (only its ACK is awaited) and is at
// most this large is not waited for: the kernel resets an orphan for lack of memory only when
// it queues more than SOCK_MIN_SNDBUF (4.5 KiB of buffers, tcp_out_of_memory), and a few
// hundred bytes on the wire are what every close of a short response has.
constexpr size_t kSmallTail = 1024;
constexpr int kMaxIov = 64;
// A file range read into memory per write when the transport cannot sendfile (TLS without
// kernel TLS): a few TLS records' worth.
constexpr size_t kFileReadSize = 64 * 1024;
// A TLS record's most plaintext (nginx's ssl_buffer_size default): a head shorter than this goes
// out in one record with the first file bytes, as nginx's 16 KiB SSL buffer sends them.
constexpr size_t kRecordSize = 16 * 1024;

// nginx's $connection: a serial number per connection (nginx counts in shared memory across
// workers; portico counts per worker process).
std::atomic<uint64_t> connectionCounter{0};

}  // namespace

// The session's side of a lent body tail: the reader's giveBack comes to the loop as a message,
// and finds the session unless it closed meanwhile. Shared by the session and the reader.
class Http1Session::TailLender final : public SocketTailLender,
                                       public std::enable_shared_from_this<TailLender> {
 public:
  TailLender(event::EventLoop& loop, Http1Session* session) : loop_(loop), session_(session) {}
  void giveBack(uint64_t consumed) override {
    loop_.post([self = shared_from_this(), consumed] {
      if (self->session_) self->session_->returnBodyTail(consumed);
    });
  }
  void sessionGone() { session_ = nullptr; }

 private:
  event::EventLoop& loop_;
  Http1Session* session_;  // loop thread only; null once the session closed
};

Http1Session::Http1Session(event::EventLoop& loop,
                           std::unique_ptr<transport::Transport> transport, ConnectionInfo info,
                           const ConnectionSettings& settings, ConnectionOwner& owner)
    : loop_(loop),
      transport_(std::move(transport)),
      info_(std::move(info)),
      settings_(settings),
      owner_(owner),
      uwsgi_(settings.uwsgi ? std::make_unique<UwsgiRequestDecoder>() : nullptr),
      parser_(uwsgi_ ? *uwsgi_ : static_cast<RequestDecoder&>(http_.emplace(settings.limits))),
      stream_(*this, settings, info_) {
  info_.number = ++connectionCounter;
  acceptedMs_ = loop_.nowMs();
  info_.openedMicros = monotonicMicros();
  connectionStats().active.fetch_add(1, std::memory_order_relaxed);
}

Http1Session::~Http1Session() {
  if (tailLender_) tailLender_->sessionGone();
  loop_.cancelTimer(timer_);
  loop_.cancelTimer(rateTimer_);
  moveConnectionPhase(phase_, ConnectionPhase::kNone);
  connectionStats().active.fetch_sub(1, std::memory_order_relaxed);
}

void Http1Session::syncPhase() {
  ConnectionPhase want = ConnectionPhase::kNone;
  if (state_ == State::kReadingHead) {
    want = requestStartMs_ != 0 || !in_.empty() ? ConnectionPhase::kReading
                                                 : ConnectionPhase::kWaiting;
  } else if (state_ == State::kActive || state_ == State::kUpgraded) {
    want = ConnectionPhase::kWriting;
  }
  moveConnectionPhase(phase_, want);
  phase_ = want;
}

// A client sends its request with the connection, as a rule, so it is read without waiting for
// epoll; the socket joins epoll only when the session first has to wait (watchIfWaiting). A
// request answered without waiting — a front server's one request per connection, or a client
// without keep-alive — so costs no EPOLL_CTL_ADD, and no DEL at the close. The read comes after
// the loop's current batch of events, not inside the accept: what that batch reported first (a
// client closing another connection, which frees its limit_conn slot) is handled first, as in
// nginx, which reads a new connection's first request at a later event.
void Http1Session::start() {
  begin();
  canRead_ = true;
  updateTimer();
  loop_.defer([this] {
    if (state_ == State::kClosed) return;
    pump();
    if (state_ != State::kClosed) updateTimer();
  });
}

void Http1Session::begin() {
  transport_->start();
  info_.tls = transport_->tlsSession();
  idleSinceMs_ = loop_.nowMs();
  syncPhase();  // a new connection waits for its first request (stub_status)
}

// Registers the socket with epoll (edge-triggered; the registration reports what is already
// ready, so an edge that came before it is not lost). False when that failed and the
// connection is closed.
bool Http1Session::watch() {
  if (registered_ || state_ == State::kClosed) return state_ != State::kClosed;
  if (!loop_.add(transport_->fd(), EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, this)) {
    logError(std::string("epoll_ctl: ") + std::strerror(errno));
    closeNow();
    return false;
  }
  registered_ = true;
  return true;
}

// After a pump: the session needs events unless all it has left to do is write, to a socket
// that takes it — waiting for its content (the request whole, a client's close of no concern)
// or closing once the queued answer is out; a write that would block registers (flush).
void Http1Session::watchIfWaiting() {
  if (registered_ || state_ == State::kClosed) return;
  const bool onlyWrites =
      (state_ == State::kActive && stream_.requestComplete_ && !stream_.abortOnClientClose_) ||
      state_ == State::kClosing;
  if (onlyWrites && canWrite_) return;
  watch();
}

void Http1Session::adopt(std::string_view buffered, uint64_t requestStartMs,
                       uint64_t requestsServed) {
  begin();
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

void Http1Session::drain() {
  // An idle kept-alive connection is not closed at once: its client may be sending a request
  // right now, and a close would race it (a failed request on reload). It gets one more
  // response, marked "Connection: close", or closes when its drain grace runs out.
  draining_ = true;
  // At most a second: long enough for a request already on its way, short enough that a stop
  // with idle keep-alive connections is prompt.
  drainDeadlineMs_ = loop_.nowMs() + std::min<uint64_t>(stream_.limits().keepAliveTimeoutMs, 1000);
  if (state_ != State::kClosed) updateTimer();
}

void Http1Session::onIoEvent(uint32_t events) {
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

bool Http1Session::wantRead() const {
  if (tailLender_) return false;  // the body's reader has the socket's input
  switch (state_) {
    case State::kReadingHead:
      return in_.size() < std::max(settings_.limits.maxHeaderTotal, parser_.headBufferLimit()) +
                              kReadSize;
    case State::kActive:
      if (!stream_.requestComplete_) return true;
      return in_.size() < kPipelinePrefetch;
    case State::kLingering:
      return true;
    case State::kUpgraded:
      return !rawPaused_;
    default:
      return false;
  }
}

// Reads once into the input buffer; false when nothing more can be read now.
bool Http1Session::readSome() {
  char* dst = in_.prepare(kReadSize);
  size_t room = in_.writable();
  transport::IoResult result = transport_->read(dst, room);
  if (result.done()) in_.commit(result.bytes);
  return afterRead(result, room);
}

// True when the next body bytes can go straight to the reader: nothing is buffered ahead of
// them, and the parser expects enough raw body bytes (a Content-Length body, a large chunk).
bool Http1Session::canReadBodyDirect() const {
  return state_ == State::kActive && !stream_.requestComplete_ && stream_.bodyReader_ &&
         in_.empty() &&
         parser_.rawBodyWanted() >= kDirectBodyMin;
}

// Whether `reader`'s body may end in a lent tail: a reader that takes one, on a plain socket, a
// Content-Length body with at least kBodyTailMin left.
bool Http1Session::tailLendable(const BodyReader& reader) const {
  return reader.takesSocketTail() && !parser_.request().chunked &&
         parser_.remainingContentLength() >= kBodyTailMin && transport_->canHandOff();
}

// Lends the rest of the body to its reader (SocketTail) when all of it is in the kernel's receive
// queue already: the reader receives it itself, straight into the memory it reads it for, in
// place of a receive into the body's buffer here and a copy out of it there. Only then — a
// client still sending holds no reader's thread. True when lent.
bool Http1Session::lendBodyTail() {
  BodyReader* reader = stream_.bodyReader_;
  const uint64_t rest = parser_.rawBodyWanted();
  if (!tailLendable(*reader) || rest != parser_.remainingContentLength()) return false;
  int queued = 0;
  if (::ioctl(transport_->fd(), FIONREAD, &queued) != 0 || queued < 0 ||
      static_cast<uint64_t>(queued) < rest) {
    return false;
  }
  UniqueFd dup(::fcntl(transport_->fd(), F_DUPFD_CLOEXEC, 0));
  if (!dup) return false;
  tailLender_ = std::make_shared<TailLender>(loop_, this);
  stream_.bodyReader_ = nullptr;
  // Counted now: the access log may be written (a response that ends before the reader gives
  // the tail back) while the tail is still lent.
  info_.requestLength += rest;
  reader->onBodyTail(SocketTail{std::move(dup), rest, tailLender_});
  if (state_ != State::kClosed) updateTimer();  // no body timeout while the reader has it
  return true;
}

// The reader is done with the lent tail and took `consumed` bytes of it: reading goes on from
// there (what it left of the body is discarded before the next request, or while lingering).
void Http1Session::returnBodyTail(uint64_t consumed) {
  if (!tailLender_) return;
  tailLender_->sessionGone();
  tailLender_ = nullptr;
  if (state_ == State::kClosed) return;
  if (state_ == State::kActive && !stream_.requestComplete_) {
    const uint64_t wanted = parser_.rawBodyWanted();
    consumed = std::min(consumed, wanted);
    parser_.skipBody(consumed);
    // The whole tail was counted when lent; what the reader left is counted again as it is
    // read and discarded, so it comes off here.
    info_.requestLength -= wanted - consumed;
  }
  lastReadMs_ = loop_.nowMs();  // the body and lingering timeouts run from here, not the lending
  canRead_ = true;  // what followed the tail may be queued, and its edge came while lent
  pump();
  if (state_ != State::kClosed) updateTimer();
}

// Receives body bytes into the reader's own memory; false when nothing more can be read now.
bool Http1Session::readBodyDirect() {
  size_t max = static_cast<size_t>(std::min<uint64_t>(parser_.rawBodyWanted(), SIZE_MAX));
  std::span<char> space = stream_.bodyReader_->bodySpace(max);
  if (space.empty()) return readSome();
  size_t room = std::min(space.size(), max);
  transport::IoResult result = transport_->read(space.data(), room);
  if (result.done()) {
    const uint64_t n = result.bytes;
    parser_.skipBody(static_cast<uint64_t>(n));
    info_.requestLength += static_cast<uint64_t>(n);
    if (stream_.bodyOverLimit(n)) {
      // Not reached (a chunk is checked against the limit when announced), but never trust
      // that: the pump goes on, so a lingering close still drains the socket.
      failRequest(413);
      return true;
    }
    stream_.bodyReader_->onBodyReceived(static_cast<size_t>(n));
  }
  return afterRead(result, room);
}

// The bookkeeping after a read of at most `room` bytes; false when nothing more can be read now.
bool Http1Session::afterRead(const transport::IoResult& result, size_t room) {
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
    case transport::IoStatus::kError:  // ECONNRESET and friends: the peer is gone
      peerReset_ = true;
      [[fallthrough]];
    case transport::IoStatus::kEof:
      readEof_ = true;
      canRead_ = false;
      return false;
  }
  return false;
}

void Http1Session::pump() {
  if (processing_) return;
  // However pump leaves (the connection is deleted only later, deferred): registered with
  // epoll if it now waits for the client.
  struct WatchIfWaiting {
    Http1Session* c;
    ~WatchIfWaiting() { c->watchIfWaiting(); }
  } watchIfWaiting{this};
  if (state_ == State::kUpgraded) {
    pumpUpgraded();
    return;
  }
  struct PhaseSync {
    Http1Session* c;
    ~PhaseSync() { c->syncPhase(); }
  } phaseSync{this};
  for (;;) {
    processInput();
    if (state_ == State::kClosed) return;
    if (state_ == State::kLingering) {
      // Discard whatever the client still sends until it closes or lingering times out.
      while (!tailLender_ && canRead_ && readSome()) in_.consume(in_.size());
      // A client that only half-closed may still be reading the response's tail.
      if (readEof_ && (!drainingKernel_ || peerReset_ || transport_->unsentBytes() == 0)) {
        closeNow();
      }
      return;
    }
    if (!canRead_ || !wantRead()) break;
    const bool direct = canReadBodyDirect();
    if (direct && lendBodyTail()) break;
    if (!(direct ? readBodyDirect() : readSome())) break;
  }
  if (state_ == State::kClosed) return;
  if (readEof_) {
    // The client closed its side. Requests already read are still answered (a half-closed
    // client may be waiting for them); anything incomplete is abandoned.
    if (state_ == State::kReadingHead) {
      // Answers already queued still go out; a partial request is abandoned.
      state_ = State::kClosing;
      if (out_.empty()) closeNow();
    } else if (state_ == State::kActive && !stream_.requestComplete_) {
      closeNow();
    } else if (state_ == State::kActive && stream_.abortOnClientClose_ &&
               !stream_.responseFinished_) {
      // nginx's upstream check of a broken connection: the upstream is let go at once and
      // the request logged 499 (or with what left, once a head was sent).
      if (ErrorLog::instance().enabled(LogLevel::kInfo)) {
        const Request& req = parser_.request();
        logInfo("client prematurely closed connection, so upstream connection is closed too, "
                "client: " + (info_.isUnix ? std::string("unix:") : info_.peerAddress) +
                ", request: \"" + req.method + " " + req.target +
                (req.versionMinor == 0 ? " HTTP/1.0\"" : " HTTP/1.1\""));
      }
      if (!stream_.headSent_) {
        // The content first (it records its upstream try for the log), then the log line.
        auto callback = std::move(stream_.onAbort_);
        stream_.onAbort_ = nullptr;
        if (callback) callback();
        stream_.status_ = 499;
        writeAccessLog(0);
        stream_.active_ = false;  // logged, and the content was told
      }
      closeNow();
      return;
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

void Http1Session::processInput() {
  if (processing_) return;
  processing_ = true;
  while (state_ == State::kReadingHead || state_ == State::kActive) {
    if (state_ == State::kActive && stream_.requestComplete_) break;  // wait for the response
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
        if (stream_.pending()) stream_.runPending();
        processing_ = false;
        return;
      case ParseEvent::kHeadComplete:
        in_.consume(consumed);
        onHeadComplete();
        break;
      case ParseEvent::kBodyData: {
        std::string_view data = parser_.bodyData();
        if (stream_.bodyOverLimit(data.size()) || chunkOverLimit()) {
          in_.consume(consumed);
          failRequest(413);
          break;
        }
        if (stream_.bodyReader_) stream_.bodyReader_->onBodyData(data);
        in_.consume(consumed);
        break;
      }
      case ParseEvent::kMessageComplete:
        in_.consume(consumed);
        if (stream_.pending()) {
          stream_.requestComplete_ = true;
          stream_.runPending();
        } else {
          onMessageComplete();
        }
        break;
      case ParseEvent::kError:
        stream_.cancelPending();
        if (!parser_.answersMalformedHead()) {
          // A front server's broken packet (uwsgi): nothing it could relay is owed; say why and
          // close, as uWSGI does.
          logError(parser_.errorReason() + " while reading request, client: " +
                   (info_.isUnix ? std::string("unix:") : info_.peerAddress));
          closeNow();
          break;
        }
        failRequest(parser_.errorStatus());
        break;
    }
  }
  processing_ = false;
}

// True when the chunked body being read has announced more than the route's body limit.
bool Http1Session::chunkOverLimit() const {
  const uint64_t limit = stream_.limits().maxBodySize;
  return state_ == State::kActive && !stream_.requestComplete_ && limit != 0 &&
         parser_.chunkedBodyDeclared() > limit;
}

void Http1Session::onHeadComplete() {
  state_ = State::kActive;
  syncPhase();
  stream_.begin(loop_.nowMs());
  sawFirstRequest_ = true;
  lastReadMs_ = stream_.startMs_;
  info_.requests = requestsServed_ + 1;
  const Request& req = parser_.request();
  if (!parser_.keepAlive() || draining_) closeAfterResponse_ = true;
  parser_.describeClient(info_);  // a front server's client (uwsgi's REMOTE_ADDR, HTTPS)

  if (transport_->plainOnTls() && !info_.plainOnTls) {
    info_.plainOnTls = true;  // the route answers 497 (nginx's NGX_HTTP_TO_HTTPS)
    info_.scheme = "http";
  }
  // "100 Continue" is sent lazily: when the body is wanted (readBody), or before a final
  // response that keeps the connection (sendHead; the body is then read and discarded).
  Stream::Dispatch dispatch = stream_.select(req);
  if (stream_.routed_) {
    // The route's keep-alive limits (keepalive_timeout 0, keepalive_requests, keepalive_time).
    const RouteLimits& limits = stream_.limits();
    if (limits.keepAliveTimeoutMs == 0 ||
        (limits.keepAliveRequests && requestsServed_ + 1 >= limits.keepAliveRequests) ||
        (limits.keepAliveTimeMs && loop_.nowMs() - acceptedMs_ > limits.keepAliveTimeMs)) {
      closeAfterResponse_ = true;
    }
  }
  switch (dispatch) {
    case Stream::Dispatch::kBodyTooLarge:
      if (!stream_.routed_) {
        failRequest(413);
        return;
      }
      // Before a byte of the body is read, as nginx; the route's error_page may answer it.
      closeAfterResponse_ = true;
      lingerNeeded_ = true;
      stream_.requestComplete_ = true;  // nothing more will be parsed on this connection
      stream_.reject(413);
      return;
    case Stream::Dispatch::kAfterDiscard:
      return;  // runs once the buffered part of the body is parsed
    case Stream::Dispatch::kRun:
      stream_.run();
      return;
  }
}

void Http1Session::onMessageComplete() {
  stream_.requestComplete_ = true;
  if (stream_.bodyReader_) {
    BodyReader* reader = stream_.bodyReader_;
    stream_.bodyReader_ = nullptr;
    reader->onBodyEnd();
  }
  if (stream_.responseFinished_) completeExchange();
}

void Http1Session::failRequest(int status) {
  // Bad input: answer with the status (if nothing was sent yet) and close, lingering so the
  // client can read the answer even if it is still sending.
  closeAfterResponse_ = true;
  lingerNeeded_ = true;
  if (!stream_.active_) {
    state_ = State::kActive;
    stream_.begin(loop_.nowMs());
    info_.requests = requestsServed_ + 1;
  }
  stream_.requestComplete_ = true;  // nothing more will be parsed on this connection
  stream_.bodyReader_ = nullptr;
  stream_.cancelPending();
  if (stream_.headSent_) {
    if (!stream_.responseFinished_) {
      closeNow();
      return;
    }
    completeExchange();
    return;
  }
  stream_.connectionAnswered_ = true;
  ResponseHead head;
  head.status = status >= 494 && status <= 497 ? 400 : status;  // nginx's own 400s
  head.special = true;
  head.add("Content-Type", "text/html");
  std::string page;
  if (status == 431 && settings_.headerTooLargeIs400) {
    head.status = 400;
    head.special = false;
    page = "<html>\r\n<head><title>400 Request Header Or Cookie Too Large</title></head>\r\n"
           "<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n"
           "<center>Request Header Or Cookie Too Large</center>\r\n"
           "<hr><center>" + std::string(stream_.signature()) + "</center>\r\n</body>\r\n</html>\r\n";
  } else {
    page = stream_.errorPage(status);
  }
  // The server level's `add_header ... always` (nginx's header filter runs for these too).
  if (settings_.site) settings_.site->filterUnrouted(head, parser_.pendingRequest(), info_);
  stream_.respond(std::move(head), std::move(page));
}

void Http1Session::queue(BodyChunk chunk) {
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

void Http1Session::queueContinue() {
  if (stream_.continueSent_) return;
  stream_.continueSent_ = true;
  queue(BodyChunk(std::string(http1::kContinue)));
}

void Http1Session::sendHead(ResponseHead&& head) {
  if (!stream_.active_ || stream_.headSent_ || state_ == State::kClosed) return;
  const Request& req = parser_.request();
  stream_.headSent_ = true;
  stream_.status_ = head.status;
  // Never chunked to a front server speaking uwsgi: nginx reads that response to its close.
  http1::ResponseFraming framing =
      http1::chooseFraming(head, req.isHead(), parser_.chunkedResponses() ? req.versionMinor : 0,
                           closeAfterResponse_ || draining_);
  closeAfterResponse_ = framing.close;
  stream_.dropBody_ = framing.dropBody;
  stream_.chunkedResponse_ = framing.chunked;
  stream_.declaredLength_ = head.contentLength;
  if (!stream_.requestComplete_ && http1::wantsContinue(req, parser_.expectContinue()) &&
      !closeAfterResponse_) {
    // The client waits for 100 before it sends the body we must read to keep the connection.
    queueContinue();
  }
  http1::HeadOptions options;
  options.serverHeader = settings_.serverHeader;
  options.serverValue = stream_.signature();
  options.date = cachedHttpDate(std::time(nullptr));
  options.keepAliveSeconds = stream_.limits().keepAliveHeaderSeconds;
  std::string out = http1::serializeHead(head, framing, options);
  if (settings_.accessLog) stream_.responseHeaders_ = std::move(head.headers);
  stream_.headBytes_ = out.size();
  queue(BodyChunk(std::move(out)));
  bodyStartPos_ = queuedTotal_;
}

void Http1Session::sendBody(BodyChunk&& chunk) {
  if (state_ == State::kUpgraded) {
    // A raw stream: the bytes as they are, counted as the response's body ($body_bytes_sent).
    stream_.bodyBytes_ += chunk.size();
    if (chunk.size() > 0) queue(std::move(chunk));
    return;
  }
  if (!stream_.headSent_ || stream_.responseFinished_ || state_ == State::kClosed) return;
  uint64_t size = chunk.size();
  if (size == 0) return;
  bool overran = false;
  size = stream_.admitBody(chunk, overran);
  if (overran) closeAfterResponse_ = true;
  if (size == 0) return;
  if (stream_.dropBody_) return;
  if (stream_.chunkedResponse_) {
    queue(BodyChunk(http1::chunkHeader(size)));
    queue(std::move(chunk));
    queue(BodyChunk(std::string(http1::kChunkEnd)));
  } else {
    queue(std::move(chunk));
  }
}

void Http1Session::finish() {
  if (state_ == State::kUpgraded) {
    finishUpgraded();
    return;
  }
  if (!stream_.headSent_ || stream_.responseFinished_ || state_ == State::kClosed) return;
  stream_.responseFinished_ = true;
  if (stream_.chunkedResponse_ && !stream_.dropBody_) {
    queue(BodyChunk(stream_.trailers_.empty() ? std::string(http1::kLastChunk)
                                              : http1::lastChunkWithTrailers(stream_.trailers_)));
  }
  if (stream_.bodyShort()) {
    // The handler sent less than it promised; the client can only tell from a close.
    logError("response body shorter than its Content-Length; closing the connection");
    closeAfterResponse_ = true;
    lingerNeeded_ = true;
  }
  if (stream_.requestComplete_ || closeAfterResponse_) {
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

bool Http1Session::writable() const { return outMemBytes_ < kHighWatermark; }

void Http1Session::readBody(BodyReader* reader) {
  stream_.bodyReader_ = reader;
  const Request& req = parser_.request();
  if (reader && !stream_.requestComplete_ && tailLendable(*reader)) {
    // The more of the body the kernel may queue, the more of it can be lent (lendBodyTail):
    // the receive buffer is raised for it (the kernel caps it at net.core.rmem_max, doubled),
    // as the autotuning only grows it with what a reader takes, and a new connection starts
    // at 128 KiB.
    int want = static_cast<int>(std::min<uint64_t>(parser_.remainingContentLength(), kTailBuffer));
    int have = 0;
    socklen_t len = sizeof have;
    if (::getsockopt(transport_->fd(), SOL_SOCKET, SO_RCVBUF, &have, &len) == 0 && have < want) {
      ::setsockopt(transport_->fd(), SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    }
  }
  if (!stream_.requestComplete_ && http1::wantsContinue(req, parser_.expectContinue())) {
    queueContinue();
  }
  if (stream_.requestComplete_ && reader) {
    stream_.bodyReader_ = nullptr;
    reader->onBodyEnd();
  }
}

void Http1Session::abort() {
  stream_.onAbort_ = nullptr;  // the handler asked for this; it needs no notice
  if (state_ == State::kUpgraded) {
    raw_ = nullptr;
    state_ = State::kActive;  // completes below as a response cut short
  }
  if (!stream_.headSent_ || !stream_.active_) {
    closeNow();
    return;
  }
  // What the app produced before it failed still goes out; the close (with no chunked
  // terminator, or short of Content-Length) then tells the client the response is truncated.
  stream_.responseFinished_ = true;
  closeAfterResponse_ = true;
  lingerNeeded_ = true;
  completeExchange();
}

// What of the current response's body has really been written to the socket.
uint64_t Http1Session::bodyBytesWritten() const {
  if (writtenTotal_ <= bodyStartPos_) return 0;
  return std::min(stream_.bodyBytes_, writtenTotal_ - bodyStartPos_);
}

// A response is being cut short with bytes still queued: say so, as nginx does (at info: the
// client's doing, not the server's), with what the client had asked for.
void Http1Session::logCutShort(const char* reason) {
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

void Http1Session::writeAccessLog(uint64_t bodySent) {
  stream_.writeAccessLog(parser_.request(), parser_.pendingRequest(), bodySent);
}

void Http1Session::completeExchange() {
  // The response is finished. When a large part of it is still queued (a file range, or more
  // than the low watermark in memory) the exchange completes once that is written: the access
  // log then says what left, and no idle keep-alive timer can run while a client is reading.
  if (awaitingDrain_) return;  // already completing (a late end of the request body)
  stream_.onWritable_ = nullptr;  // no producer is left to wake
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

void Http1Session::finishExchange() {
  writeAccessLog(stream_.bodyBytes_);
  ++requestsServed_;
  if (settings_.onRequestDone) settings_.onRequestDone();
  bool close = closeAfterResponse_ || draining_;
  // Unread body may still arrive (nginx's r->lingering_close). A request without a body is
  // whole once its head is parsed, even when its handler answered before the parser reported
  // the message's end: closing it needs no lingering.
  if (close && !stream_.requestComplete_ &&
      (parser_.request().chunked || parser_.remainingContentLength() > 0)) {
    lingerNeeded_ = true;
  }
  stream_.reset();
  info_.requestLength = 0;
  info_.pipelined = false;
  if (close) {
    state_ = State::kClosing;
    if (out_.empty()) afterDrained();
    return;
  }
  state_ = State::kReadingHead;
  idleSinceMs_ = loop_.nowMs();
  idleAwaitsQueue_ = false;
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
bool Http1Session::writeFile(BodyChunk& front, transport::IoResult& result, uint64_t cap) {
  FileRange& range = std::get<FileRange>(front.data);
  uint64_t left = std::min(range.length - outOffset_, cap);
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
  if (!loadFileBuffer(range, outOffset_, kFileReadSize)) return false;
  size_t skip = static_cast<size_t>(outOffset_ - fileBufferStart_);
  iovec iov{fileBuffer_.get() + skip, std::min<size_t>(fileBufferSize_ - skip, left)};
  result = transport_->writev(&iov, 1, left > iov.iov_len);
  return true;
}

// Makes fileBuffer_ hold `offset` of `range` (reading up to `maxCount` bytes from there when it
// does not). False when the connection was closed (the file shrank, or could not be read).
bool Http1Session::loadFileBuffer(const FileRange& range, uint64_t offset, size_t maxCount) {
  if (fileBufferSize_ > 0 && offset >= fileBufferStart_ &&
      offset < fileBufferStart_ + fileBufferSize_) {
    return true;
  }
  if (!fileBuffer_) fileBuffer_.reset(new char[kFileReadSize]);
  uint64_t left = range.length - offset;
  size_t count = left > maxCount ? maxCount : static_cast<size_t>(left);
  ssize_t n = ::pread(range.file->get(), fileBuffer_.get(), count,
                      static_cast<off_t>(range.offset + offset));
  if (n <= 0) {
    logError(n == 0 ? "file truncated while being sent; closing the connection"
                    : std::string("pread() failed (") + std::strerror(errno) +
                          "); closing the connection");
    fileBufferSize_ = 0;
    closeNow();
    return false;
  }
  fileBufferSize_ = static_cast<size_t>(n);
  fileBufferStart_ = offset;
  return true;
}

void Http1Session::flush() {
  while (!out_.empty() && canWrite_) {
    uint64_t cap = UINT64_MAX;
    if (rate_ != 0) {
      if (rateTimer_.second != 0) break;  // delayed
      cap = rateAllowance();
      if (cap == 0) break;
    }
    const uint64_t before = writtenTotal_;
    transport::IoResult result;
    BodyChunk& front = out_.front();
    if (front.isFile()) {
      if (!writeFile(front, result, cap)) return;
    } else {
      iovec iov[kMaxIov];
      int cnt = 0;
      bool fileFollows = false;
      uint64_t skip = outOffset_;
      size_t memBytes = 0;
      auto it = out_.begin();
      for (; it != out_.end() && cnt < kMaxIov; ++it) {
        if (it->isFile()) {
          fileFollows = true;
          break;
        }
        auto& s = std::get<std::string>(it->data);
        iov[cnt].iov_base = const_cast<char*>(s.data()) + skip;
        iov[cnt].iov_len = s.size() - skip;
        if (memBytes + iov[cnt].iov_len >= cap) {
          // limit_rate: no more than the allowance in this write.
          iov[cnt].iov_len = static_cast<size_t>(cap - memBytes);
          memBytes = cap;
          ++cnt;
          it = out_.end();
          break;
        }
        memBytes += iov[cnt].iov_len;
        skip = 0;
        ++cnt;
      }
      if (fileFollows && cap == UINT64_MAX && !transport_->canSendFile() &&
          memBytes < kRecordSize && cnt < kMaxIov &&
          std::get<FileRange>(it->data).length > 0) {
        // Without sendfile the file is read into memory anyway: its first bytes join the head
        // in one write (TLS: one full record, as nginx's SSL buffer makes, not a record of the
        // head alone). The read is shortened by the head, so later records stay whole.
        const FileRange& range = std::get<FileRange>(it->data);
        if (!loadFileBuffer(range, 0, kFileReadSize - memBytes)) return;
        iov[cnt].iov_base = fileBuffer_.get();
        iov[cnt].iov_len = fileBufferSize_;
        ++cnt;
        fileFollows = range.length > fileBufferSize_ || std::next(it) != out_.end();
      }
      // "More follows" before file data: the head and the first file bytes share a segment.
      result = transport_->writev(iov, cnt, fileFollows);
    }
    if (!result.done()) {
      if (result.status == transport::IoStatus::kInterrupted) continue;
      if (result.status == transport::IoStatus::kWouldBlock ||
          result.status == transport::IoStatus::kWantWrite) {
        canWrite_ = false;
        if (!watch()) return;
        break;
      }
      if (result.status == transport::IoStatus::kWantRead) {
        canWrite_ = false;
        writeWaitsForRead_ = true;
        if (!watch()) return;
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
    if (rate_ != 0 && written > 0) {
      // nginx's write filter: what went past limit_rate_after waits its time at the rate
      // before the next write.
      uint64_t base = rateBase_ + rateAfter_;
      uint64_t from = before > base ? before - base : 0;
      uint64_t to = writtenTotal_ > base ? writtenTotal_ - base : 0;
      uint64_t ms = (to - from) * 1000 / rate_;
      if (ms > 0) rateDelay(ms);
    }
    while (written > 0 && !out_.empty()) {
      BodyChunk& c = out_.front();
      uint64_t left = c.size() - outOffset_;
      if (written >= left) {
        written -= left;
        if (c.isFile()) {
          fileBufferSize_ = 0;
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
  if (stream_.onWritable_ && outMemBytes_ < kLowWatermark) {
    auto callback = std::move(stream_.onWritable_);
    stream_.onWritable_ = nullptr;
    callback();
    if (state_ == State::kClosed) return;
  }
  if (out_.empty()) afterDrained();
}

void Http1Session::throttle(uint64_t bytesPerSecond, uint64_t after) {
  rate_ = bytesPerSecond;
  rateAfter_ = after;
  loop_.cancelTimer(rateTimer_);
  rateTimer_ = {0, 0};
  if (rate_ == 0) return;
  // nginx counts from the request's start (r->start_sec); the response begins after what is
  // still queued of earlier ones.
  rateStartMs_ = requestStartMs_ != 0 ? requestStartMs_ : loop_.nowMs();
  rateBase_ = queuedTotal_;
}

// What the rate allows now (nginx: limit_rate × (seconds since the start + 1) − (bytes sent −
// limit_rate_after)); 0 after arming the delay until more is allowed.
uint64_t Http1Session::rateAllowance() {
  const uint64_t now = loop_.nowMs();
  const uint64_t elapsed = now > rateStartMs_ ? now - rateStartMs_ : 0;
  const uint64_t sent = writtenTotal_ > rateBase_ ? writtenTotal_ - rateBase_ : 0;
  const long double allowed = static_cast<long double>(rate_) * (elapsed + 1000) / 1000 +
                              static_cast<long double>(rateAfter_) - static_cast<long double>(sent);
  if (allowed >= 1) return static_cast<uint64_t>(allowed);
  rateDelay(static_cast<uint64_t>((1 - allowed) * 1000 / rate_) + 1);
  return 0;
}

void Http1Session::rateDelay(uint64_t ms) {
  loop_.cancelTimer(rateTimer_);
  rateTimer_ = loop_.addTimer(ms, [this] {
    rateTimer_ = {0, 0};
    if (state_ == State::kClosed) return;
    flush();
    if (state_ != State::kClosed) updateTimer();
  });
}

void Http1Session::afterDrained() {
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

void Http1Session::beginClose() {
  size_t unsent = 0;
  if (!lingerNeeded_ && in_.empty()) {
    transport_->closeNotify();
    unsent = transport_->unsentBytes();
    if (unsent == 0 ||
        (unsent <= kSmallTail && transport_->untransmittedBytes() == 0)) {
      // Nothing queued, or a small tail that has left already and only waits for its ACK (the
      // usual case: the client has not acknowledged the last segment yet). Closed at once, as
      // nginx closes: the orphan retransmits it if need be, and the kernel's reset under
      // memory pressure spares a socket queueing this little.
      closeNow();
      return;
    }
    // The response's tail is still in the kernel's queue. Closed now, the socket would be an
    // orphan the kernel resets when TCP memory runs short (a slow-read attack makes it so),
    // and the client would lose that tail: half-close and keep the socket until the queue is
    // delivered, the client closes, or it makes no progress for send_timeout.
    drainingKernel_ = true;
    drainUnsent_ = unsent;
    drainProgressMs_ = loop_.nowMs();
  }
  // Closing with unread input would make the kernel send RST and could destroy the response
  // before the client reads it; half-close and discard input for a while instead (nginx's
  // lingering close).
  transport_->shutdownWrite();
  in_.consume(in_.size());
  state_ = State::kLingering;
  lingerStartMs_ = loop_.nowMs();
  lastReadMs_ = lingerStartMs_;
  if (readEof_ && !drainingKernel_) {
    closeNow();
    return;
  }
  canRead_ = true;
  pump();
}

void Http1Session::checkDrain() {
  size_t unsent = transport_->unsentBytes();
  const uint64_t now = loop_.nowMs();
  if (unsent == 0 || peerReset_) {
    closeNow();
    return;
  }
  if (unsent < drainUnsent_) {
    drainUnsent_ = unsent;
    drainProgressMs_ = now;
  } else if (now - drainProgressMs_ >= stream_.limits().sendTimeoutMs) {
    closeNow();  // the client stopped reading: what is left is given up, as send_timeout does
    return;
  }
  drainCheckedMs_ = now;
  updateTimer();
}

void Http1Session::closeNow() {
  if (state_ == State::kClosed) return;
  if (tailLender_) {
    // The reader's duplicate keeps the socket until it has taken the tail.
    tailLender_->sessionGone();
    tailLender_ = nullptr;
  }
  bool aborted = stream_.active_ && !stream_.responseFinished_;
  state_ = State::kClosed;
  loop_.cancelTimer(timer_);
  loop_.cancelTimer(rateTimer_);
  rateTimer_ = {0, 0};
  if (aborted && stream_.onAbort_) {
    auto callback = std::move(stream_.onAbort_);
    stream_.onAbort_ = nullptr;
    callback();
  }
  // An exchange still active was never logged: its response was cut short, or the client left
  // before its request body was complete. Log what really left.
  if (stream_.active_ && stream_.headSent_) writeAccessLog(bodyBytesWritten());
  awaitingDrain_ = false;
  if (registered_) loop_.remove(transport_->fd());
  transport_->close();
  out_.clear();
  fileBufferSize_ = 0;
  syncPhase();
  owner_.connectionClosed(this);
}

// A connection can become a raw stream once its request is whole (nothing of it is left to
// parse) — not on a uwsgi listener, whose front server reads a response to its close.
bool Http1Session::canUpgrade() const {
  return state_ == State::kActive && stream_.requestComplete_ && !settings_.uwsgi &&
         !stream_.responseFinished_;
}

bool Http1Session::upgrade(RawStreamPeer* peer) {
  if (!peer || !canUpgrade() || !stream_.headSent_ || stream_.status_ != 101) return false;
  state_ = State::kUpgraded;
  raw_ = peer;
  rawPaused_ = false;
  rawEnded_ = false;
  closeAfterResponse_ = true;  // never HTTP again on this connection
  stream_.dropBody_ = false;
  stream_.chunkedResponse_ = false;
  stream_.declaredLength_.reset();
  // A tunnel is not paced by limit_rate (nginx's upgraded handler writes past its write filter).
  throttle(0, 0);
  syncPhase();
  // The bytes already read after the request (a client that did not wait for the 101) go to
  // the peer first — once the caller has returned, so it is ready for them.
  loop_.defer([this] {
    // Output a lifted rate delay held back goes now.
    if (state_ == State::kUpgraded && !out_.empty()) flush();
    if (state_ == State::kUpgraded) {
      pump();
      if (state_ != State::kClosed) updateTimer();
    }
  });
  return true;
}

void Http1Session::pauseUpgradedInput(bool paused) {
  if (state_ != State::kUpgraded || rawPaused_ == paused) return;
  rawPaused_ = paused;
  if (paused) return;
  // Edge-triggered: input that arrived meanwhile gave no new event; read it now.
  loop_.defer([this] {
    if (state_ == State::kUpgraded) {
      pump();
      if (state_ != State::kClosed) updateTimer();
    }
  });
}

// Hands the client's bytes to the peer as they come, until it pauses or the client ends.
void Http1Session::pumpUpgraded() {
  while (state_ == State::kUpgraded && !rawPaused_) {
    if (!in_.empty()) {
      std::string data(in_.view());  // the peer may finish (and the buffer go) inside the call
      in_.consume(data.size());
      raw_->onRawData(data);
      continue;
    }
    if (readEof_) {
      if (!rawEnded_) {
        rawEnded_ = true;
        raw_->onRawEnd();
      }
      return;
    }
    if (!canRead_) break;
    readSome();
  }
  if (state_ == State::kUpgraded && in_.empty()) in_.releaseIfEmpty();
}

// The peer is done: the connection closes once the queued bytes have left (logged as the
// response, its body the bytes the stream carried to the client).
void Http1Session::finishUpgraded() {
  raw_ = nullptr;
  in_.consume(in_.size());
  state_ = State::kActive;
  stream_.requestComplete_ = true;
  stream_.responseFinished_ = true;
  closeAfterResponse_ = true;
  completeExchange();
}

Http1Session::TimerKind Http1Session::currentTimer(uint64_t& deadline) const {
  switch (state_) {
    case State::kReadingHead:
      if (!out_.empty()) {
        // The previous response is still leaving: the client has send_timeout between two
        // successful writes, however long the whole takes (never the keep-alive timeout).
        deadline = lastWriteMs_ + stream_.limits().sendTimeoutMs;
        return TimerKind::kSend;
      }
      if (requestStartMs_ == 0) {
        // Nothing of a request yet: a new connection gets the header timeout, a kept-alive one
        // the keep-alive timeout; either way it is closed silently, as nginx does.
        deadline = idleSinceMs_ + (sawFirstRequest_ ? stream_.limits().keepAliveTimeoutMs
                                                    : settings_.headerTimeoutMs);
        if (draining_ && drainDeadlineMs_ < deadline) deadline = drainDeadlineMs_;
        return TimerKind::kKeepAlive;
      }
      deadline = requestStartMs_ + settings_.headerTimeoutMs;
      return TimerKind::kHeader;
    case State::kActive:
      if (!out_.empty() && !canWrite_) {
        deadline = lastWriteMs_ + stream_.limits().sendTimeoutMs;
        return TimerKind::kSend;
      }
      if (!stream_.requestComplete_ && parser_.request().hasBody() && !tailLender_) {
        deadline = lastReadMs_ + stream_.limits().bodyTimeoutMs;
        return TimerKind::kBody;
      }
      return TimerKind::kNone;  // a handler at work has no client timeout
    case State::kClosing:
      if (out_.empty()) return TimerKind::kNone;  // closing is already under way
      deadline = lastWriteMs_ + stream_.limits().sendTimeoutMs;
      return TimerKind::kSend;
    case State::kLingering: {
      // The reader has the lent tail (the app's thread): lingering reads on once it is back.
      if (tailLender_) return TimerKind::kNone;
      if (drainingKernel_) {
        deadline = std::max(drainCheckedMs_, drainProgressMs_) + kDrainPollMs;
        return TimerKind::kDrain;
      }
      uint64_t a = lastReadMs_ + kLingerTimeoutMs;
      uint64_t b = lingerStartMs_ + kLingerTotalMs;
      deadline = a < b ? a : b;
      return TimerKind::kLinger;
    }
    case State::kUpgraded:
      // The peer keeps its own inactivity timeout (proxy_read_timeout); the client has
      // send_timeout between two writes, as nginx's upgraded downstream.
      if (!out_.empty() && !canWrite_) {
        deadline = lastWriteMs_ + stream_.limits().sendTimeoutMs;
        return TimerKind::kSend;
      }
      return TimerKind::kNone;
    case State::kClosed:
      return TimerKind::kNone;
  }
  return TimerKind::kNone;
}

void Http1Session::updateTimer() {
  uint64_t deadline = 0;
  TimerKind kind = currentTimer(deadline);
  // No deadline now (a handler at work): an armed timer stays, and finds nothing to do if it
  // fires first. Cancelling it would cost a timer removal and insertion per request.
  if (kind == TimerKind::kNone) return;
  // Lazy re-arming: a timer already due earlier simply re-checks when it fires.
  if (timer_.second != 0 && timerDue_ <= deadline) return;
  timerDue_ = deadline;
  uint64_t now = loop_.nowMs();
  const uint64_t delay = deadline > now ? deadline - now : 0;
  if (loop_.rearmTimer(timer_, delay)) return;  // moved earlier: no new timer node
  timer_ = loop_.addTimer(delay, [this] {
    timer_ = {0, 0};
    onTimer();
  });
}

// A connection is idle once the client has taken the last response, not when its last byte
// entered the kernel: a slow reader of a large response may still be draining the socket's
// queue (several MiB) when the keep-alive timeout runs out, and its next request would find the
// connection closed. While the queue shrinks the timeout is put off (looked at every second, or
// sooner for a shorter timeout); once it is empty a whole keep-alive period starts; a queue
// that stops moving for send_timeout ends the connection as a send timeout would.
bool Http1Session::keepAliveAwaitsQueue() {
  if (!sawFirstRequest_ || draining_) return false;
  const uint64_t now = loop_.nowMs();
  const uint64_t keepAlive = stream_.limits().keepAliveTimeoutMs;
  size_t unsent = transport_->unsentBytes();
  if (unsent == 0) {
    if (!idleAwaitsQueue_) return false;
    idleAwaitsQueue_ = false;
    idleSinceMs_ = now;
    updateTimer();
    return true;
  }
  if (!idleAwaitsQueue_ || unsent < idleUnsent_) {
    idleAwaitsQueue_ = true;
    idleUnsent_ = unsent;
    idleProgressMs_ = now;
  } else if (now - idleProgressMs_ >= stream_.limits().sendTimeoutMs) {
    return false;
  }
  idleSinceMs_ = now - keepAlive + std::min<uint64_t>(keepAlive, 1000);
  updateTimer();
  return true;
}

void Http1Session::onTimer() {
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
      if (!stream_.headSent_) {
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
    case TimerKind::kDrain:
      checkDrain();
      return;
    case TimerKind::kKeepAlive:
      if (keepAliveAwaitsQueue()) return;
      closeNow();
      return;
    case TimerKind::kLinger:
    case TimerKind::kNone:
      closeNow();
      return;
  }
}

}  // namespace portico::http

namespace portico::http {

// The stream's Exchange: the request is the parser's, the wire work is the session's.
const Request& Http1Stream::request() const { return session_.parser_.request(); }
std::shared_ptr<const Request> Http1Stream::sharedRequest() const {
  return session_.parser_.sharedRequest();
}
void Http1Stream::sendHead(ResponseHead head) { session_.sendHead(std::move(head)); }
void Http1Stream::sendBody(BodyChunk chunk) { session_.sendBody(std::move(chunk)); }
void Http1Stream::finish() { session_.finish(); }
bool Http1Stream::writable() const { return session_.writable(); }
void Http1Stream::readBody(BodyReader* reader) { session_.readBody(reader); }
void Http1Stream::abort() { session_.abort(); }
bool Http1Stream::canUpgrade() const { return session_.canUpgrade(); }
bool Http1Stream::upgrade(RawStreamPeer* peer) { return session_.upgrade(peer); }
void Http1Stream::pauseUpgradedInput(bool paused) { session_.pauseUpgradedInput(paused); }
void Http1Stream::throttle(uint64_t bytesPerSecond, uint64_t after) {
  session_.throttle(bytesPerSecond, after);
}

}  // namespace portico::http
