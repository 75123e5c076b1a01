#include "python/wsgi_handler.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <vector>

#include "core/log.h"
#include "core/unique_fd.h"
#include "python/request_body.h"

namespace portico::python {

namespace {

// Body bytes handed over in memory but not yet queued on the connection. With the connection's
// own watermark this bounds the memory one response pins (nginx's proxy_buffers): a body
// larger than what fits goes to a temporary file at once, so a client that does not read
// costs disk, not RAM, and the Python thread is free again at once.
constexpr uint64_t kMemoryBudget = 64 * 1024;
// nginx's proxy_max_temp_file_size default: beyond this the app waits for the client.
constexpr uint64_t kMaxSpill = 1024ull * 1024 * 1024;

// The channel between one job's Python thread and its exchange on the loop thread. The Python
// thread's calls fill a pending batch under mutex_ and post the channel itself to the loop (one
// intrusive message, no allocation) when it is not queued already; the loop applies the whole
// batch in order — head, body, end — so a response produced faster than the loop runs costs one
// wake-up. Loop-side state (exchange_) is touched only on the loop thread.
class LoopChannel : public ResponseChannel,
                    public event::Posted,
                    public std::enable_shared_from_this<LoopChannel> {
 public:
  LoopChannel(event::EventLoop& loop, http::Exchange& exchange, const std::string& tempDirectory)
      : loop_(loop), exchange_(&exchange), tempDirectory_(tempDirectory) {}

  // Loop thread: the client went away.
  void detach() {
    exchange_ = nullptr;
    gone_.store(true);
    std::lock_guard lock(mutex_);
    cond_.notify_all();
  }

  bool sendHead(http::ResponseHead head) override {
    // Not posted yet: a body, finish or flush always follows and carries it (one wake-up of
    // the loop, and the head and first bytes in one write).
    std::lock_guard lock(mutex_);
    pendingHead_ = std::move(head);
    return !gone_.load();
  }

  void flush() override {
    enqueue([] {});
  }

  bool sendBody(BodyChunk chunk) override {
    if (auto* bytes = std::get_if<std::string>(&chunk.data)) {
      return sendBytes(bytes->data(), bytes->size());
    }
    {
      // A file range (wsgi.file_wrapper) pins no memory: it only keeps its order.
      std::lock_guard lock(mutex_);
      if (gone_.load()) return false;
    }
    return enqueue([&] { pendingChunks_.push_back({std::move(chunk), 0}); });
  }

  bool sendBytes(const char* data, size_t n) override {
    while (n > 0) {
      size_t memory = 0;
      bool spillRest = false;
      {
        std::unique_lock lock(mutex_);
        if (gone_.load()) return false;
        uint64_t room = !blocked_ && inFlight_ < kMemoryBudget ? kMemoryBudget - inFlight_ : 0;
        if (room >= n) {
          memory = n;
        } else if (!spillFailed_ && spilled_ + (n - room) <= kMaxSpill) {
          // The client is slower than the app (or the piece is large): what does not fit in
          // memory is parked in the file and sent with sendfile when the client catches up.
          memory = static_cast<size_t>(room);
          spillRest = true;
        } else {
          // No file to spill to: wait for the client, one budget's worth at a time.
          cond_.wait(lock,
                     [this] { return gone_.load() || (!blocked_ && inFlight_ < kMemoryBudget); });
          if (gone_.load()) return false;
          memory = static_cast<size_t>(std::min<uint64_t>(n, kMemoryBudget - inFlight_));
        }
        inFlight_ += memory;
      }
      if (memory > 0) {
        enqueue([&] { pendingChunks_.push_back({BodyChunk(std::string(data, memory)), memory}); });
        data += memory;
        n -= memory;
      }
      if (spillRest) {
        std::optional<FileRange> range = spillToFile(data, n);
        if (!range) continue;  // spillFailed_ is set: the loop above waits for the client
        return enqueue([&] { pendingChunks_.push_back({BodyChunk(std::move(*range)), 0}); });
      }
    }
    return !gone_.load();
  }

  bool sendWhole(http::ResponseHead head, std::string body) override {
    if (body.size() > kMemoryBudget) return sendWholeLarge(std::move(head), body.data(), body.size());
    return enqueue([&] {
      pendingHead_ = std::move(head);
      pendingWholeBody_ = std::move(body);
      pendingEnd_ = End::kFinish;
    });
  }

  bool sendWholeBytes(http::ResponseHead head, const char* data, size_t n) override {
    if (n > kMemoryBudget) return sendWholeLarge(std::move(head), data, n);
    return sendWhole(std::move(head), std::string(data, n));
  }

  void finish() override {
    enqueue([&] { pendingEnd_ = End::kFinish; });
  }

  void abortConnection() override {
    enqueue([&] { pendingEnd_ = End::kAbort; });
  }

  bool clientGone() const override { return gone_.load(); }

  bool expire() override {
    http::Exchange* ex = exchange_;
    if (!ex) return false;
    exchange_ = nullptr;  // what the app still sends is dropped
    gone_.store(true);
    {
      std::lock_guard lock(mutex_);
      cond_.notify_all();  // an app waiting on backpressure gets false at once
    }
    if (headDelivered_) {
      ex->abort();  // part of the response is out: a truncated response, never a wrong one
    } else {
      ex->respondError(504);  // nginx's answer when its upstream times out
    }
    return true;
  }

  // Loop thread: applies the pending batch.
  void runPosted() override {
    std::shared_ptr<LoopChannel> keep;  // declared first: the channel may die when it goes
    std::optional<http::ResponseHead> head;
    std::string wholeBody;
    End end;
    {
      std::lock_guard lock(mutex_);
      keep = std::move(self_);
      queued_ = false;
      head.swap(pendingHead_);
      wholeBody.swap(pendingWholeBody_);
      chunks_.swap(pendingChunks_);
      end = pendingEnd_;
      pendingEnd_ = End::kNone;
    }
    if (head && exchange_) {
      headDelivered_ = true;
      exchange_->sendHead(std::move(*head));
    }
    if (!wholeBody.empty() && exchange_) exchange_->sendBody(BodyChunk(std::move(wholeBody)));
    if (!chunks_.empty()) deliver();
    if (end != End::kNone && exchange_) {
      http::Exchange* ex = exchange_;
      exchange_ = nullptr;
      if (end == End::kFinish) {
        ex->finish();
      } else {
        ex->abort();
      }
    }
  }

  void discardPosted() override {
    std::shared_ptr<LoopChannel> keep;
    std::lock_guard lock(mutex_);
    keep = std::move(self_);
    queued_ = false;
  }

 private:
  enum class End { kNone, kFinish, kAbort };
  struct PendingChunk {
    BodyChunk chunk;
    uint64_t inFlight;  // bytes counted in inFlight_ until the connection has them
  };

  // Python thread: adds to the pending batch and posts the channel if it is not queued yet.
  template <typename Fill>
  bool enqueue(Fill fill) {
    bool post;
    bool quietly = false;
    {
      std::lock_guard lock(mutex_);
      fill();
      post = !queued_ && (pendingHead_ || !pendingWholeBody_.empty() || !pendingChunks_.empty() ||
                          pendingEnd_ != End::kNone);
      if (post) {
        queued_ = true;
        self_ = shared_from_this();  // alive until the loop has run the batch
      }
      // Before the loop can see the end: the worker then knows this thread is about to be free.
      if (pendingEnd_ != End::kNone) Executor::noteAnswered();
      // A complete response while more jobs wait: no wake-up of its own (the loop's sleep is
      // bounded meanwhile), so a busy worker's responses go out in batches, with its requests.
      quietly = post && pendingEnd_ == End::kFinish && Executor::mayPostQuietly();
    }
    if (quietly) {
      loop_.postQuietly(static_cast<event::Posted*>(this));
    } else if (post) {
      loop_.post(static_cast<event::Posted*>(this));
    }
    return !gone_.load();
  }

  // Loop thread: queue the batch's chunks and apply backpressure from the connection's
  // watermark.
  void deliver() {
    uint64_t delivered = 0;
    for (PendingChunk& p : chunks_) {
      delivered += p.inFlight;
      if (exchange_) exchange_->sendBody(std::move(p.chunk));
    }
    chunks_.clear();
    http::Exchange* ex = exchange_;
    bool block = ex && !ex->writable();
    {
      std::lock_guard lock(mutex_);
      inFlight_ -= delivered;
      blocked_ = block;
    }
    if (block) {
      ex->onWritable([self = shared_from_this()] {
        std::lock_guard lock(self->mutex_);
        self->blocked_ = false;
        self->cond_.notify_all();
      });
    } else {
      cond_.notify_all();
    }
  }

  // Python thread: a whole body larger than the memory budget. Its first budget's worth goes
  // in memory with the head (the first write), the rest to the temporary file before anything
  // is posted, so the loop still gets head, body and finish in one hand-off.
  bool sendWholeLarge(http::ResponseHead head, const char* data, size_t n) {
    std::optional<FileRange> range;
    bool canSpill;
    {
      std::lock_guard lock(mutex_);
      canSpill = !spillFailed_ && spilled_ + (n - kMemoryBudget) <= kMaxSpill;
    }
    if (canSpill) range = spillToFile(data + kMemoryBudget, n - kMemoryBudget);
    if (!range) {
      // No file: stream it with backpressure instead (sendBody waits for the client).
      sendHead(std::move(head));
      bool ok = sendBytes(data, n);
      finish();
      return ok;
    }
    return enqueue([&] {
      pendingHead_ = std::move(head);
      pendingWholeBody_.assign(data, kMemoryBudget);
      pendingChunks_.push_back({BodyChunk(std::move(*range)), 0});
      pendingEnd_ = End::kFinish;
    });
  }

  // Python thread only (one thread runs a job): appends to the response's spill file.
  std::optional<FileRange> spillToFile(const char* data, size_t size) {
    if (!spillFile_) {
      UniqueFd fd(::open(tempDirectory_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
      if (!fd) {
        logError("cannot create a temporary file for a response in " + tempDirectory_ + ": " +
                 std::strerror(errno));
        std::lock_guard lock(mutex_);
        spillFailed_ = true;
        return std::nullopt;
      }
      spillFile_ = std::make_shared<const UniqueFd>(std::move(fd));
    }
    uint64_t offset = spilled_;
    const char* p = data;
    size_t left = size;
    while (left > 0) {
      ssize_t n = ::pwrite(spillFile_->get(), p, left, static_cast<off_t>(offset + (p - data)));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        logError(std::string("cannot write a response to its temporary file: ") +
                 std::strerror(errno));
        std::lock_guard lock(mutex_);
        spillFailed_ = true;
        return std::nullopt;  // nothing was posted for this chunk: it is sent from memory
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    {
      std::lock_guard lock(mutex_);
      spilled_ += size;
    }
    return FileRange{spillFile_, offset, size};
  }

  event::EventLoop& loop_;
  http::Exchange* exchange_;  // loop thread only; null once finished, aborted or detached
  bool headDelivered_ = false;  // loop thread only: the exchange has the head
  std::vector<PendingChunk> chunks_;  // loop thread only: the batch being delivered
  std::string tempDirectory_;
  std::shared_ptr<const UniqueFd> spillFile_;  // Python thread only
  uint64_t spilled_ = 0;                       // bytes written to spillFile_
  bool spillFailed_ = false;
  std::atomic<bool> gone_{false};
  std::mutex mutex_;
  std::condition_variable cond_;
  bool blocked_ = false;
  uint64_t inFlight_ = 0;
  // The pending batch (under mutex_), applied by runPosted in this order.
  std::optional<http::ResponseHead> pendingHead_;
  std::string pendingWholeBody_;
  std::vector<PendingChunk> pendingChunks_;
  End pendingEnd_ = End::kNone;
  bool queued_ = false;                // posted to the loop and not yet run
  std::shared_ptr<LoopChannel> self_;  // set while queued_
};

// Collects the request body on the loop thread (a BodyBuilder: memory within the worker's
// budget, else a temporary file), then submits the job. Owned by the exchange's abort callback
// and the handler's call; loop thread.
class BodyCollector : public http::BodyReader {
 public:
  // `takesTail`: the body may end in a SocketTail (not with client_body_in_file_only, whose
  // body must be a file).
  BodyCollector(Executor& executor, WsgiJob job, BodyBuilder builder, bool takesTail)
      : executor_(executor), job_(std::move(job)), builder_(std::move(builder)),
        takesTail_(takesTail) {}

  void onBodyData(std::string_view data) override { builder_.append(data); }

  std::span<char> bodySpace(size_t max) override { return builder_.space(max); }

  void onBodyReceived(size_t n) override { builder_.commit(n); }

  void onBodyEnd() override { submit(builder_.finish()); }

  bool takesSocketTail() const override { return takesTail_; }

  void onBodyTail(http::SocketTail tail) override {
    std::shared_ptr<const RequestBody> head = builder_.finish();
    if (!head) {
      tail.fd.reset();
      tail.lender->giveBack(0);  // the connection reads the rest and drops it
      submit(nullptr);
      return;
    }
    submit(std::make_shared<TailedBody>(std::move(head), std::move(tail)));
  }

 private:
  // The job with its body; a 500 when the body could not be kept (logged by the builder).
  void submit(std::shared_ptr<const RequestBody> body) {
    if (!body) {
      job_.channel->sendWhole(errorHead(), http::errorPageBody(500));
      return;
    }
    job_.body = std::move(body);
    executor_.submit(std::move(job_));
  }

  static http::ResponseHead errorHead() {
    http::ResponseHead head;
    head.status = 500;
    head.add("Content-Type", "text/html");
    head.contentLength = http::errorPageBody(500).size();
    return head;
  }

  Executor& executor_;
  WsgiJob job_;
  BodyBuilder builder_;
  bool takesTail_;
};

}  // namespace

WsgiHandler::WsgiHandler(event::EventLoop& loop, Executor& executor, std::string mountPrefix,
                         std::string tempDirectory, std::shared_ptr<BodyMemory> bodyMemory,
                         std::optional<http::ForwardedTrust> trust)
    : loop_(loop),
      executor_(executor),
      tempDirectory_(std::move(tempDirectory)),
      bodyMemory_(std::move(bodyMemory)),
      trust_(std::move(trust)) {
  scriptName_ = std::move(mountPrefix);
  while (!scriptName_.empty() && scriptName_.back() == '/') scriptName_.pop_back();
}

void WsgiHandler::handle(http::Exchange& exchange) {
  std::optional<http::ForwardedResult> forwarded;
  if (trust_) {
    forwarded = http::applyForwarded(*trust_, exchange.request(), exchange.connection(),
                                     &exchange.socketConnection());
    if (forwarded->contradictory) {
      // gunicorn's InvalidSchemeHeaders: 400 before the app runs.
      exchange.respondError(400);
      return;
    }
  }
  auto channel = std::make_shared<LoopChannel>(loop_, exchange, tempDirectory_);
  WsgiJob job;
  job.snapshot.request = exchange.sharedRequest();
  const http::Request& request = *job.snapshot.request;
  job.snapshot.connection = forwarded ? std::move(forwarded->connection) : exchange.connection();
  job.snapshot.scriptName = scriptName_;
  std::string_view path = request.path;
  if (!scriptName_.empty() && path.substr(0, scriptName_.size()) == scriptName_) {
    path.remove_prefix(scriptName_.size());
  }
  job.snapshot.pathInfo = path;
  job.channel = channel;

  if (!request.hasBody()) {
    // The client may leave at any time: the channel then tells the Python thread to stop.
    exchange.onAbort([channel] { channel->detach(); });
    static const auto kEmpty = std::make_shared<const MemoryBody>(std::string_view());
    job.body = kEmpty;
    executor_.submit(std::move(job));
    return;
  }
  // The abort callback also keeps the collector alive while the exchange lasts.
  BodyBuilder builder(bodyMemory_, tempDirectory_,
                      request.chunked ? std::nullopt : request.contentLength, kMemoryBodyLimit);
  if (bodyFileOnly_) builder.fileOnly(keepBodyFile_);
  auto collector = std::make_shared<BodyCollector>(executor_, std::move(job), std::move(builder),
                                                   !bodyFileOnly_);
  exchange.onAbort([channel, collector] { channel->detach(); });
  exchange.readBody(collector.get());
}

}  // namespace portico::python
