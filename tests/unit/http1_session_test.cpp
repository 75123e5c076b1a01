// Http1Session driven over a socketpair: a fake route answers, the test is the client, and the
// event loop runs until the client has what it waits for. No timing: the loop is stepped.

#include <dirent.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cctype>
#include <fstream>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/http1_session.h"
#include "http/router.h"
#include "http/uwsgi_codec.h"
#include "transport/plain_transport.h"

namespace portico::http {
namespace {

// FNV-1a: a whole received body compared with what was sent, without keeping both.
uint64_t fnv(std::string_view data, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  return h;
}

// The bytes of body `i` of a streamed response: varied so a lost or repeated part shows.
std::string part(size_t i, size_t size) {
  std::string s(size, 'a');
  for (size_t k = 0; k < size; ++k) s[k] = static_cast<char>('a' + (i * 7 + k) % 26);
  return s;
}

// The content of every request: a function of the exchange, run as the route runs.
using Content = std::function<void(Exchange&)>;

class FakeRoute : public RequestRoute {
 public:
  FakeRoute(const RouteLimits& limits, Content content, bool readsBody)
      : limits_(limits), content_(std::move(content)), readsBody_(readsBody) {}
  const RouteLimits& limits() const override { return limits_; }
  bool readsBody() const override { return readsBody_; }
  void run(Exchange& exchange) override { content_(exchange); }

 private:
  const RouteLimits& limits_;
  Content content_;
  bool readsBody_;
};

class FakeSite : public RequestRouter {
 public:
  std::unique_ptr<RequestRoute> route(const Request& request,
                                      const ConnectionInfo& connection) const override {
    (void)connection;
    ++routed;
    return std::make_unique<FakeRoute>(limits, content, readsBody);
  }
  RouteLimits limits;
  Content content;
  bool readsBody = true;
  mutable int routed = 0;
};

// A plain socket that says it cannot sendfile (as TLS without kernel TLS): the session must
// read file ranges itself.
class NoSendFileTransport final : public transport::Transport {
 public:
  explicit NoSendFileTransport(UniqueFd fd) : plain_(std::move(fd), false) {}
  int fd() const override { return plain_.fd(); }
  void start() override { plain_.start(); }
  transport::IoResult read(char* dst, size_t size) override { return plain_.read(dst, size); }
  transport::IoResult writev(const iovec* iov, int count, bool more) override {
    ++writes;
    return plain_.writev(iov, count, more);
  }
  bool canSendFile() const override { return false; }
  void shutdownWrite() override { plain_.shutdownWrite(); }
  void close() override { plain_.close(); }
  bool canHandOff() const override { return false; }
  int writes = 0;

 private:
  transport::PlainTransport plain_;
};

// A plain socket whose next write waits for input first (as a TLS write can, mid
// renegotiation): kWantRead once, then writes as usual.
class WriteWaitsForReadTransport final : public transport::Transport {
 public:
  explicit WriteWaitsForReadTransport(UniqueFd fd) : plain_(std::move(fd), false) {}
  int fd() const override { return plain_.fd(); }
  void start() override { plain_.start(); }
  transport::IoResult read(char* dst, size_t size) override { return plain_.read(dst, size); }
  transport::IoResult writev(const iovec* iov, int count, bool more) override {
    if (waitOnce) {
      waitOnce = false;
      waited = true;
      return {transport::IoStatus::kWantRead, 0, 0};
    }
    return plain_.writev(iov, count, more);
  }
  bool canSendFile() const override { return true; }
  transport::IoResult sendFile(int fileFd, uint64_t offset, size_t count) override {
    return plain_.sendFile(fileFd, offset, count);
  }
  void shutdownWrite() override { plain_.shutdownWrite(); }
  void close() override { plain_.close(); }
  bool canHandOff() const override { return false; }
  bool waitOnce = true;
  bool waited = false;

 private:
  transport::PlainTransport plain_;
};

class Owner : public ConnectionOwner {
 public:
  explicit Owner(event::EventLoop& loop) : loop_(loop) {}
  void connectionClosed(Connection* connection) override {
    (void)connection;
    closed = true;
    loop_.deferDelete(std::unique_ptr<event::Deferrable>(owned.release()));
  }
  std::unique_ptr<Http1Session> owned;
  bool closed = false;

 private:
  event::EventLoop& loop_;
};

// Collects the body of a request as the session delivers it.
class Collect : public BodyReader {
 public:
  explicit Collect(std::function<void(std::string)> done) : done_(std::move(done)) {}
  void onBodyData(std::string_view data) override { body_.append(data); }
  void onBodyEnd() override { done_(std::move(body_)); }

 private:
  std::string body_;
  std::function<void(std::string)> done_;
};

// A response whose body is `parts` pieces of `size` bytes, sent as the exchange can take them
// (writable/onWritable), with or without a Content-Length.
class Streamer {
 public:
  Streamer(Exchange& exchange, size_t parts, size_t size, bool length)
      : exchange_(exchange), parts_(parts), size_(size) {
    ResponseHead head;
    head.add("Content-Type", "text/plain");
    if (length) head.contentLength = parts * size;
    exchange_.onAbort([this] { aborted = true; });
    exchange_.sendHead(std::move(head));
    more();
  }
  void more() {
    while (next_ < parts_ && exchange_.writable()) {
      exchange_.sendBody(BodyChunk(part(next_, size_)));
      ++next_;
    }
    if (next_ < parts_) {
      exchange_.onWritable([this] { more(); });
    } else {
      finished = true;
      exchange_.finish();
    }
  }
  bool aborted = false;
  bool finished = false;

 private:
  Exchange& exchange_;
  size_t parts_;
  size_t size_;
  size_t next_ = 0;
};

class Http1SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    settings_.site = &site_;
    site_.limits.keepAliveTimeoutMs = 60000;
    site_.limits.keepAliveHeaderSeconds = -1;
  }
  void TearDown() override {
    client_.reset();
    if (owner_.owned && !owner_.closed) owner_.owned->close();  // the loop deletes it
  }

  // A session on one end of a socketpair, the client on the other.
  // `first`: bytes the client has sent before the session starts.
  void open(int serverSendBuffer = 0, bool sendFile = true, bool writeWaits = false,
            std::string_view first = {}) {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    serverFd_ = fds[0];
    if (!first.empty()) {
      ASSERT_EQ(::write(fds[1], first.data(), first.size()), static_cast<ssize_t>(first.size()));
    }
    if (serverSendBuffer > 0) {
      ::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &serverSendBuffer, sizeof serverSendBuffer);
      ::setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &serverSendBuffer, sizeof serverSendBuffer);
    }
    client_ = UniqueFd(fds[1]);
    ConnectionInfo info;
    info.isUnix = true;
    std::unique_ptr<transport::Transport> transport;
    if (writeWaits) {
      auto fake = std::make_unique<WriteWaitsForReadTransport>(UniqueFd(fds[0]));
      writeWaits_ = fake.get();
      transport = std::move(fake);
    } else if (sendFile) {
      transport = std::make_unique<transport::PlainTransport>(UniqueFd(fds[0]), false);
    } else {
      auto fake = std::make_unique<NoSendFileTransport>(UniqueFd(fds[0]));
      noSendFile_ = fake.get();
      transport = std::move(fake);
    }
    owner_.owned =
        std::make_unique<Http1Session>(loop_, std::move(transport), info, settings_, owner_);
    owner_.owned->start();
  }

  // Whether the session's socket is registered with an epoll instance of this process (the
  // test's loop is the only one): /proc lists each instance's registered descriptors.
  bool inEpoll() const {
    DIR* dir = ::opendir("/proc/self/fd");
    if (!dir) return false;
    bool found = false;
    while (dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      char target[64] = {};
      if (::readlink(("/proc/self/fd/" + name).c_str(), target, sizeof target - 1) <= 0 ||
          std::string_view(target) != "anon_inode:[eventpoll]") {
        continue;
      }
      std::ifstream info("/proc/self/fdinfo/" + name);
      std::string line;
      while (std::getline(info, line)) {
        if (line.rfind("tfd: ", 0) == 0 && std::stoi(line.substr(5)) == serverFd_) found = true;
      }
    }
    ::closedir(dir);
    return found;
  }

  void send(std::string_view bytes) {
    ASSERT_EQ(::write(client_.get(), bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
  }

  // One step of a client script: wait until `until` holds, then do `then`.
  struct Step {
    std::function<bool()> until;
    std::function<void()> then;
  };
  // Runs the loop (once: a stopped loop does not run again) through the steps, reading at most
  // `perTurn` bytes per turn into received_; returns how many steps completed.
  size_t play(const std::vector<Step>& steps, size_t perTurn = 65536) {
    size_t done = 0;
    int turns = 0;
    std::string buffer(perTurn, '\0');
    std::function<void()> tick = [&] {
      if (client_ && !eof_) {
        ssize_t n = ::read(client_.get(), buffer.data(), perTurn);
        if (n > 0) received_.append(buffer.data(), static_cast<size_t>(n));
        if (n == 0) eof_ = true;
      }
      while (done < steps.size() && steps[done].until()) {
        if (steps[done].then) steps[done].then();
        ++done;
      }
      if (done == steps.size() || ++turns > 100000) {
        loop_.stop();
        return;
      }
      loop_.post(tick);
    };
    loop_.post(tick);
    loop_.run();
    return done;
  }

  // Responses parsed off the front of received_.
  struct Response {
    std::string head;
    std::string body;
  };
  // One complete response (Content-Length or chunked framing) at `at` in received_, if there
  // is one; `at` moves past it.
  std::optional<Response> parse(size_t& at) const {
    size_t end = received_.find("\r\n\r\n", at);
    if (end == std::string::npos) return std::nullopt;
    Response r;
    r.head = received_.substr(at, end + 4 - at);
    size_t pos = end + 4;
    size_t length = r.head.find("Content-Length: ");
    if (length != std::string::npos) {
      size_t size = std::stoul(r.head.substr(length + 16));
      if (received_.size() < pos + size) return std::nullopt;
      r.body = received_.substr(pos, size);
      pos += size;
    } else if (r.head.find("Transfer-Encoding: chunked") != std::string::npos) {
      for (;;) {
        size_t eol = received_.find("\r\n", pos);
        if (eol == std::string::npos) return std::nullopt;
        size_t size = std::stoul(received_.substr(pos, eol - pos), nullptr, 16);
        if (received_.size() < eol + 2 + size + 2) return std::nullopt;
        r.body += received_.substr(eol + 2, size);
        pos = eol + 2 + size + 2;
        if (size == 0) break;
      }
    }
    at = pos;
    return r;
  }
  std::optional<Response> takeResponse() {
    size_t at = 0;
    auto r = parse(at);
    if (r) received_.erase(0, at);
    return r;
  }
  bool hasResponses(size_t n) const {
    size_t at = 0;
    size_t count = 0;
    while (count < n && parse(at)) ++count;
    return count >= n;
  }

  // The fake content: the path, as "<path>" with a Content-Length.
  static void echoPath(Exchange& exchange) {
    ResponseHead head;
    head.add("Content-Type", "text/plain");
    exchange.respond(std::move(head), exchange.request().path);
  }

  event::EventLoop loop_;
  Owner owner_{loop_};
  FakeSite site_;
  ConnectionSettings settings_;
  UniqueFd client_;
  std::string received_;
  bool eof_ = false;
  NoSendFileTransport* noSendFile_ = nullptr;
  WriteWaitsForReadTransport* writeWaits_ = nullptr;
  int serverFd_ = -1;
};

TEST_F(Http1SessionTest, SimpleGet) {
  site_.content = echoPath;
  open();
  send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  std::optional<Response> r;
  bool keptAlive = false;
  EXPECT_EQ(play({{[&] { return hasResponses(1); },
                   [&] {
                     r = takeResponse();
                     keptAlive = !owner_.closed;
                     client_.reset();  // the client goes: the session follows
                   }},
                  {[&] { return owner_.closed; }, nullptr}}),
            2u);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->head.rfind("HTTP/1.1 200 OK\r\nServer: portico\r\nDate: ", 0), 0u) << r->head;
  EXPECT_NE(r->head.find("\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n"
                         "Connection: keep-alive\r\n\r\n"),
            std::string::npos)
      << r->head;
  EXPECT_EQ(r->body, "/hello");
  EXPECT_TRUE(keptAlive);
}

TEST_F(Http1SessionTest, ARequestThereAtTheStartIsServedBeforeTheSocketJoinsEpoll) {
  // Read at once and answered later (from the loop): the session waits for its content only,
  // with no epoll registration; it registers when it has to wait for the client's next request.
  std::vector<bool> registered;
  site_.content = [&](Exchange& exchange) {
    registered.push_back(inEpoll());
    loop_.defer([&] {
      registered.push_back(inEpoll());
      echoPath(exchange);
    });
  };
  open(0, true, false, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
  // Not read inside start(): after the loop's current batch (events it reported come first).
  EXPECT_TRUE(registered.empty());
  EXPECT_EQ(site_.routed, 0);
  EXPECT_FALSE(inEpoll());
  std::optional<Response> first, second;
  EXPECT_EQ(play({{[&] { return hasResponses(1); },
                   [&] {
                     first = takeResponse();
                     registered.push_back(inEpoll());
                     send("GET /second HTTP/1.1\r\nHost: x\r\n\r\n");
                   }},
                  {[&] { return hasResponses(1); },
                   [&] {
                     second = takeResponse();
                     client_.reset();
                   }},
                  {[&] { return owner_.closed; }, nullptr}}),
            3u);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->body, "/first");
  EXPECT_EQ(second->body, "/second");
  // The first answer: not registered; then waiting for the next request: registered.
  EXPECT_EQ(registered, (std::vector<bool>{false, false, true, true, true}));
}

TEST_F(Http1SessionTest, ASessionWithNothingToReadAtTheStartJoinsEpollAtOnce) {
  site_.content = echoPath;
  open();
  // The first read (after the loop's batch) finds nothing: registered before any request.
  ASSERT_EQ(play({{[&] { return inEpoll(); },
                   [&] { send("GET /later HTTP/1.1\r\nHost: x\r\n\r\n"); }},
                  {[&] { return hasResponses(1); }, nullptr}}),
            2u);
  auto r = takeResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "/later");
}

TEST_F(Http1SessionTest, AResponseThatFillsTheSocketJoinsEpollAndArrivesWhole) {
  // Read at start, answered at once with more than the socket takes: the blocked write
  // registers, and the rest follows the client's reads.
  constexpr size_t kParts = 64;
  constexpr size_t kSize = 8 * 1024;
  std::unique_ptr<Streamer> streamer;
  bool registeredWhenRouted = true;
  site_.content = [&](Exchange& exchange) {
    registeredWhenRouted = inEpoll();
    streamer = std::make_unique<Streamer>(exchange, kParts, kSize, true);
  };
  open(4096, true, false, "GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  bool registeredMidResponse = false;
  ASSERT_EQ(play({{[&] { return !received_.empty(); },
                   [&] { registeredMidResponse = inEpoll(); }},  // the write blocked
                  {[&] { return eof_; }, [&] { client_.reset(); }},
                  {[&] { return owner_.closed; }, nullptr}},
                 1000),
            3u);
  EXPECT_FALSE(registeredWhenRouted);
  EXPECT_TRUE(registeredMidResponse);
  auto r = takeResponse();
  ASSERT_TRUE(r);
  ASSERT_EQ(r->body.size(), kParts * kSize);
  uint64_t expected = 1469598103934665603ull;
  for (size_t i = 0; i < kParts; ++i) expected = fnv(part(i, kSize), expected);
  EXPECT_EQ(fnv(r->body), expected);
  EXPECT_TRUE(streamer->finished);
}

TEST_F(Http1SessionTest, PipelinedRequestsAreAnsweredInOrder) {
  // The first answer comes later (from the loop), the others at once: the order still holds.
  site_.content = [this](Exchange& exchange) {
    if (exchange.request().path == "/a") {
      loop_.defer([&exchange] { echoPath(exchange); });
    } else {
      echoPath(exchange);
    }
  };
  open();
  send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
       "GET /c HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(play({{[&] { return hasResponses(3); }, nullptr}}), 1u);
  for (const char* path : {"/a", "/b", "/c"}) {
    auto r = takeResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, path);
    EXPECT_NE(r->head.find("Connection: keep-alive"), std::string::npos);
  }
  EXPECT_TRUE(received_.empty());
  EXPECT_EQ(site_.routed, 3);
}

TEST_F(Http1SessionTest, KeepAliveThenClose) {
  site_.content = echoPath;
  open();
  send("GET /one HTTP/1.1\r\nHost: x\r\n\r\n");
  std::optional<Response> first;
  bool openAfterFirst = false;
  EXPECT_EQ(play({{[&] { return hasResponses(1); },
                   [&] {
                     first = takeResponse();
                     openAfterFirst = !owner_.closed;
                     send("GET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                   }},
                  // The server half-closes after its answer (a lingering close: it drains
                  // what the client may still send), and closes once the client has.
                  {[&] { return eof_; }, [&] { client_.reset(); }},
                  {[&] { return owner_.closed; }, nullptr}}),
            3u);
  ASSERT_TRUE(first);
  EXPECT_NE(first->head.find("Connection: keep-alive"), std::string::npos);
  EXPECT_TRUE(openAfterFirst);
  auto second = takeResponse();  // then the server closed
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body, "/two");
  EXPECT_NE(second->head.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(received_.empty());
}

TEST_F(Http1SessionTest, ExpectContinueIsAnsweredWhenTheBodyIsWanted) {
  std::unique_ptr<Collect> reader;
  site_.content = [&](Exchange& exchange) {
    reader = std::make_unique<Collect>([&exchange](std::string body) {
      exchange.respond(ResponseHead{}, "got " + body);
    });
    exchange.readBody(reader.get());
  };
  open();
  send("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  std::string interim;
  EXPECT_EQ(play({{[&] { return received_.size() >= 25; },
                   [&] {
                     interim = received_;
                     received_.clear();
                     send("hello");
                   }},
                  {[&] { return hasResponses(1); }, nullptr}}),
            2u);
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  auto r = takeResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_EQ(r->body, "got hello");
}

TEST_F(Http1SessionTest, ChunkedRequestBodyArrivesDechunked) {
  std::unique_ptr<Collect> reader;
  std::string seen;
  site_.content = [&](Exchange& exchange) {
    if (exchange.request().path == "/after") return echoPath(exchange);
    EXPECT_TRUE(exchange.request().chunked);
    reader = std::make_unique<Collect>([&exchange, &seen](std::string body) {
      seen = body;
      exchange.respond(ResponseHead{}, std::to_string(body.size()));
    });
    exchange.readBody(reader.get());
  };
  open();
  send("POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
  EXPECT_EQ(play({{[&] { return reader != nullptr; },
                   [&] {
                     // The rest in pieces, with an extension and trailers, and the next
                     // request right behind the body.
                     send("1;ext=1\r\n \r\n10\r\n0123456789abcdef\r\n");
                     send("0\r\nTrailer: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n");
                   }},
                  {[&] { return hasResponses(2); }, nullptr}}),
            2u);
  EXPECT_EQ(seen, "hello 0123456789abcdef");
  auto r = takeResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "22");
  auto after = takeResponse();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->body, "/after");
}

// Takes a request body's tail from the socket when the session lends it.
class TailTaker : public BodyReader {
 public:
  void onBodyData(std::string_view data) override { received.append(data); }
  void onBodyEnd() override { ended = true; }
  bool takesSocketTail() const override { return true; }
  void onBodyTail(SocketTail lent) override { tail = std::move(lent); }
  std::string received;  // what the session read itself
  bool ended = false;
  SocketTail tail;
};

TEST_F(Http1SessionTest, AQueuedBodyTailIsLentAndWhatIsLeftOfItIsDiscardedWhenGivenBack) {
  std::string body(400 * 1024, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 23);
  TailTaker taker;
  Exchange* upload = nullptr;
  site_.content = [&](Exchange& exchange) {
    if (exchange.request().path == "/after") return echoPath(exchange);
    upload = &exchange;
    exchange.readBody(&taker);
  };
  open();
  int big = 1 << 20;
  ::setsockopt(client_.get(), SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  // All of it queued before the session reads a byte: the body, then a pipelined request.
  send("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
       "\r\n\r\n" + body + "GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string fromTail;
  EXPECT_EQ(play({{[&] { return static_cast<bool>(taker.tail.fd); },
                   [&] {
                     EXPECT_EQ(taker.tail.size, body.size() - taker.received.size());
                     // The reader takes 1000 bytes of the tail, then gives it back.
                     fromTail.resize(1000);
                     EXPECT_EQ(::recv(taker.tail.fd.get(), fromTail.data(), 1000, 0), 1000);
                     taker.tail.fd.reset();
                     taker.tail.lender->giveBack(1000);
                     ResponseHead head;
                     upload->respond(std::move(head), "ok");
                   }},
                  {[&] { return hasResponses(2); }, nullptr}}),
            2u);
  EXPECT_FALSE(taker.ended);  // the tail ended the body, not onBodyEnd
  EXPECT_EQ(taker.received + fromTail, body.substr(0, taker.received.size() + 1000));
  auto r = takeResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "ok");
  auto after = takeResponse();
  ASSERT_TRUE(after);  // the rest of the body was discarded, the next request parsed
  EXPECT_EQ(after->body, "/after");
}

TEST_F(Http1SessionTest, SlowReaderGetsTheWholeBody) {
  constexpr size_t kParts = 256;
  constexpr size_t kSize = 8 * 1024;  // 2 MiB through a small socket buffer
  std::unique_ptr<Streamer> streamer;
  site_.content = [&](Exchange& exchange) {
    streamer = std::make_unique<Streamer>(exchange, kParts, kSize, false);
  };
  open(4096);
  send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  // The client takes 1000 bytes per turn: the session must wait for it, part after part.
  ASSERT_EQ(play({{[&] { return received_.ends_with("\r\n0\r\n\r\n"); }, nullptr}}, 1000),
            1u);
  auto r = takeResponse();
  ASSERT_TRUE(r);
  EXPECT_NE(r->head.find("Transfer-Encoding: chunked"), std::string::npos);
  ASSERT_EQ(r->body.size(), kParts * kSize);
  uint64_t expected = 1469598103934665603ull;
  for (size_t i = 0; i < kParts; ++i) expected = fnv(part(i, kSize), expected);
  EXPECT_EQ(fnv(r->body), expected);
  EXPECT_TRUE(streamer->finished);
  EXPECT_FALSE(streamer->aborted);
  EXPECT_FALSE(owner_.closed);
}

TEST_F(Http1SessionTest, ClientClosingMidResponseAbortsTheExchange) {
  std::unique_ptr<Streamer> streamer;
  site_.content = [&](Exchange& exchange) {
    streamer = std::make_unique<Streamer>(exchange, 1024, 16 * 1024, true);  // 16 MiB
  };
  open(4096);
  send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(play({{[&] { return received_.size() > 64 * 1024; },
                   [&] { client_.reset(); }},  // gone mid-response
                  {[&] { return owner_.closed; }, nullptr}},
                 4096),
            2u);
  ASSERT_TRUE(streamer);
  EXPECT_TRUE(streamer->aborted);
  EXPECT_FALSE(streamer->finished);
}

// The raw-stream seam (Exchange::upgrade): after a 101 the connection is a byte pipe to the
// peer — the bytes pipelined behind the request first — until the peer finishes.
class UpperEcho : public RawStreamPeer {
 public:
  explicit UpperEcho(Exchange& exchange) : exchange_(exchange) {}
  void onRawData(std::string_view data) override {
    std::string out(data);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    received += data;
    exchange_.sendBody(BodyChunk(std::move(out)));
  }
  void onRawEnd() override {
    ended = true;
    exchange_.finish();
  }
  std::string received;
  bool ended = false;

 private:
  Exchange& exchange_;
};

TEST_F(Http1SessionTest, UpgradedConnectionIsARawStream) {
  std::unique_ptr<UpperEcho> peer;
  bool could = false;
  bool upgraded = false;
  bool refusedBeforeHead = false;
  site_.content = [&](Exchange& exchange) {
    Exchange* ex = &exchange;
    // As an upstream's 101: later, once the request is whole (no upgrade before its end).
    loop_.defer([&, ex] {
      could = ex->canUpgrade();
      refusedBeforeHead = !ex->upgrade(nullptr);
      ResponseHead head;
      head.status = 101;
      head.add("Upgrade", "foo");
      ex->sendHead(std::move(head));
      peer = std::make_unique<UpperEcho>(*ex);
      upgraded = ex->upgrade(peer.get());
    });
  };
  open();
  // The pipelined bytes arrive with the head, in one write.
  send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: foo\r\n\r\nearly ");
  EXPECT_EQ(play({{[&] { return received_.find("EARLY ") != std::string::npos; },
                   [&] { send("later"); }},
                  {[&] { return received_.find("LATER") != std::string::npos; },
                   [&] { ::shutdown(client_.get(), SHUT_WR); }},
                  {[&] { return owner_.closed; }, nullptr}}),
            3u);
  EXPECT_TRUE(could);
  EXPECT_TRUE(refusedBeforeHead);
  ASSERT_TRUE(peer);
  EXPECT_TRUE(upgraded);
  EXPECT_EQ(peer->received, "early later");
  EXPECT_TRUE(peer->ended);
  size_t end = received_.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos);
  std::string head = received_.substr(0, end + 4);
  EXPECT_EQ(head.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n"), std::string::npos)
      << head;
  EXPECT_EQ(received_.substr(end + 4), "EARLY LATER");
}

TEST_F(Http1SessionTest, FileRangesAreReadWhenTheTransportCannotSendfile) {
  // 300 KB of a file, from offset 1000, through a transport without sendfile and a small
  // socket buffer: the session preads pieces and keeps each until the transport took it.
  char path[] = "/tmp/portico-session-XXXXXX";
  UniqueFd file(::mkstemp(path));
  ASSERT_TRUE(file);
  ::unlink(path);
  std::string content;
  for (size_t i = 0; content.size() < 301000; ++i) content += part(i, 997);
  ASSERT_EQ(::write(file.get(), content.data(), content.size()),
            static_cast<ssize_t>(content.size()));
  auto shared = std::make_shared<const UniqueFd>(std::move(file));
  site_.content = [&](Exchange& exchange) {
    ResponseHead head;
    head.contentLength = 300000;
    exchange.sendHead(std::move(head));
    exchange.sendBody(BodyChunk(FileRange{shared, 1000, 300000}));
    exchange.finish();
  };
  open(4096, false);
  send("GET /file HTTP/1.1\r\nHost: x\r\n\r\nGET /file HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(play({{[&] { return hasResponses(2); }, nullptr}}, 3000), 1u);
  for (int i = 0; i < 2; ++i) {
    auto r = takeResponse();
    ASSERT_TRUE(r);
    ASSERT_EQ(r->body.size(), 300000u);
    EXPECT_TRUE(r->body == content.substr(1000, 300000));
  }
  ASSERT_NE(noSendFile_, nullptr);
  EXPECT_GT(noSendFile_->writes, 2);
}

TEST_F(Http1SessionTest, AWriteThatWaitsForInputIsRetriedWhenInputArrives) {
  site_.content = echoPath;
  open(0, true, true);
  send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
  bool nothingYet = false;
  EXPECT_EQ(play({{[&] { return writeWaits_->waited; },
                   [&] {
                     nothingYet = received_.empty();
                     // Input arrives (the next request's first bytes): the write goes again.
                     send("GET /second HTTP/1.1\r\n");
                   }},
                  {[&] { return hasResponses(1); },
                   [&] { send("Host: x\r\n\r\n"); }},
                  {[&] { return hasResponses(2); }, nullptr}}),
            3u);
  EXPECT_TRUE(nothingYet);
  auto first = takeResponse();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body, "/first");
  auto second = takeResponse();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body, "/second");
}

// A uwsgi listener (listen ... uwsgi): the request is a packet and its body, the client is
// the one the vars name, and the response of unknown length is ended by the close, never chunked.
TEST_F(Http1SessionTest, UwsgiPacketIsServedAndTheConnectionCloses) {
  std::unique_ptr<Collect> reader;
  std::string seen;
  site_.content = [&](Exchange& exchange) {
    reader = std::make_unique<Collect>([&exchange, &seen](std::string body) {
      const Request& r = exchange.request();
      seen = r.method + " " + r.path + "?" + r.query + " from " +
             exchange.connection().peerAddress + ":" +
             std::to_string(exchange.connection().peerPort) + " " +
             exchange.connection().scheme;
      exchange.sendHead(ResponseHead{});  // no length
      exchange.sendBody(BodyChunk("got " + body));
      exchange.finish();
    });
    exchange.readBody(reader.get());
  };
  settings_.uwsgi = true;
  open();
  std::string packet;
  ASSERT_TRUE(uwsgi::serializePacket({{"REQUEST_METHOD", "POST"},
                                      {"REQUEST_URI", "/up?x=1"},
                                      {"PATH_INFO", "/up"},
                                      {"QUERY_STRING", "x=1"},
                                      {"CONTENT_LENGTH", "5"},
                                      {"REMOTE_ADDR", "192.0.2.1"},
                                      {"REMOTE_PORT", "4000"},
                                      {"HTTPS", "on"}},
                                     packet));
  // The packet and its body in two writes, split inside the packet.
  send(packet.substr(0, 7));
  int turns = 0;
  EXPECT_EQ(play({{[&] { return ++turns > 20; },  // the session has the partial packet
                   [&] {
                     EXPECT_TRUE(received_.empty());
                     send(packet.substr(7) + "hello");
                   }},
                  {[&] { return eof_; }, [&] { client_.reset(); }},
                  {[&] { return owner_.closed; }, nullptr}}),
            3u);
  EXPECT_EQ(seen, "POST /up?x=1 from 192.0.2.1:4000 https");
  EXPECT_EQ(received_.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << received_;
  EXPECT_EQ(received_.find("Transfer-Encoding"), std::string::npos) << received_;
  EXPECT_NE(received_.find("Connection: close\r\n\r\ngot hello"), std::string::npos) << received_;
}

TEST_F(Http1SessionTest, AUwsgiPacketThereAtTheStartIsServedWithoutEpoll) {
  // A front server's request: one per connection, there when it is accepted. Answered and
  // closed without the socket ever joining epoll.
  bool registeredWhenRouted = true;
  site_.content = [&](Exchange& exchange) {
    registeredWhenRouted = inEpoll();
    echoPath(exchange);
  };
  settings_.uwsgi = true;
  std::string packet;
  ASSERT_TRUE(uwsgi::serializePacket(
      {{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/u"}, {"PATH_INFO", "/u"}}, packet));
  open(0, true, false, packet);
  bool everRegistered = false;
  EXPECT_EQ(play({{[&] {
                     everRegistered = everRegistered || (!owner_.closed && inEpoll());
                     return owner_.closed && eof_;
                   },
                   nullptr}}),
            1u);
  EXPECT_FALSE(registeredWhenRouted);
  EXPECT_FALSE(everRegistered);
  EXPECT_EQ(received_.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << received_;
  EXPECT_TRUE(received_.ends_with("\r\n\r\n/u")) << received_;
}

TEST_F(Http1SessionTest, MalformedUwsgiPacketClosesWithoutAnAnswer) {
  site_.content = echoPath;
  settings_.uwsgi = true;
  open();
  send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");  // HTTP on a uwsgi socket: modifier1 'G'
  EXPECT_EQ(play({{[&] { return eof_; }, [&] { client_.reset(); }},
                  {[&] { return owner_.closed; }, nullptr}}),
            2u);
  EXPECT_TRUE(received_.empty()) << received_;
  EXPECT_EQ(site_.routed, 0);
}

}  // namespace
}  // namespace portico::http
