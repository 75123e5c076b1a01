#include "python/request_body.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <string>

namespace portico::python {
namespace {

constexpr size_t kBlock = BodyMemory::kBlockSize;

std::string randomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

// Feeds `data` the way the connection does: straight into space() in pieces of at most
// `step` bytes (as recv() would fill them), or through append() (bytes from its own buffer).
void feed(BodyBuilder& builder, const std::string& data, size_t step, bool direct) {
  size_t at = 0;
  while (at < data.size()) {
    size_t n = std::min(step, data.size() - at);
    if (direct) {
      std::span<char> room = builder.space(n);
      ASSERT_FALSE(room.empty());
      std::memcpy(room.data(), data.data() + at, room.size());
      builder.commit(room.size());
      at += room.size();
    } else {
      builder.append(std::string_view(data).substr(at, n));
      at += n;
    }
  }
}

// Reads the whole body back through read() in `step`-byte reads, and through span().
void expectBody(const RequestBody& body, const std::string& data, size_t step) {
  ASSERT_EQ(body.size(), data.size());
  std::string back;
  std::string piece(step, '\0');
  for (uint64_t offset = 0;;) {
    size_t got = body.read(offset, piece.data(), step);
    if (got == 0) break;
    back.append(piece.data(), got);
    offset += got;
  }
  EXPECT_TRUE(back == data) << "read() differs";
  if (!body.fileBacked()) {
    std::string spans;
    for (std::string_view s = body.span(0); !s.empty(); s = body.span(spans.size())) spans += s;
    EXPECT_TRUE(spans == data) << "span() differs";
  } else {
    EXPECT_TRUE(body.span(0).empty());
  }
}

struct Case {
  size_t size;
  bool chunked;       // no expected size
  uint64_t budget;    // the worker's BodyMemory
  uint64_t limit;     // per-request memory limit
  bool expectFile;
};

class BodyBuilderCases : public ::testing::TestWithParam<Case> {};

TEST_P(BodyBuilderCases, EveryByteComesBackAndMemoryIsReturned) {
  const Case& c = GetParam();
  for (bool direct : {true, false}) {
    for (size_t step : {size_t{1000}, size_t{65536}, kBlock + 17}) {
      auto memory = std::make_shared<BodyMemory>(c.budget, 4);
      std::string data = randomBytes(c.size, static_cast<unsigned>(c.size + step));
      std::shared_ptr<const RequestBody> body;
      {
        BodyBuilder builder(memory, "/tmp", c.chunked ? std::nullopt : std::optional<uint64_t>(c.size),
                            c.limit);
        feed(builder, data, step, direct);
        EXPECT_EQ(builder.inFile(), c.expectFile) << c.size;
        EXPECT_LE(memory->inUse(), c.budget);
        body = builder.finish();
        ASSERT_TRUE(body);
      }
      EXPECT_EQ(body->fileBacked(), c.expectFile);
      if (c.expectFile) EXPECT_EQ(memory->inUse(), 0u) << "a file body keeps no blocks";
      expectBody(*body, data, 4096);
      expectBody(*body, data, kBlock + 1);
      body.reset();
      EXPECT_EQ(memory->inUse(), 0u) << "blocks go back when the body dies";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Sizes, BodyBuilderCases,
    ::testing::Values(
        Case{10, false, 64 * kBlock, 32 * kBlock, false},           // small: one exact segment
        Case{10, true, 64 * kBlock, 32 * kBlock, false},            // small chunked
        Case{BodyBuilder::kSmallSize, false, 0, 32 * kBlock, false},  // small needs no budget
        Case{5 * kBlock + 3, false, 64 * kBlock, 32 * kBlock, false},  // pooled blocks
        Case{5 * kBlock + 3, true, 64 * kBlock, 32 * kBlock, false},   // chunked in blocks
        Case{5 * kBlock + 3, false, 2 * kBlock, 32 * kBlock, true},    // budget spent: a file
        Case{5 * kBlock + 3, true, 2 * kBlock, 32 * kBlock, true},     // chunked moves to a file
        Case{5 * kBlock + 3, false, 64 * kBlock, 4 * kBlock, true},    // over the limit: a file
        Case{5 * kBlock + 3, true, 64 * kBlock, 4 * kBlock, true},     // chunked past the limit
        Case{5 * kBlock + 3, false, 0, 4 * kBlock, true}));           // a file with no budget

TEST(BodyMemory, BudgetAndCache) {
  BodyMemory memory(2 * kBlock, 1);
  char* a = memory.take();
  char* b = memory.take();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(memory.take(), nullptr);
  EXPECT_EQ(memory.inUse(), 2 * kBlock);
  memory.give(a);  // kept: the cache holds one block
  memory.give(b);  // past the cache: freed
  EXPECT_EQ(memory.inUse(), 0u);
  char* c = memory.take();
  EXPECT_EQ(c, a) << "the cached block is reused";
  memory.give(c);
}

TEST(BodyBuilder, NoTemporaryFileIsAFailure) {
  auto memory = std::make_shared<BodyMemory>(0, 0);
  BodyBuilder builder(memory, "/nonexistent-portico-dir", 5 * kBlock, 4 * kBlock);
  EXPECT_TRUE(builder.space(100).empty());
  EXPECT_TRUE(builder.failed());
  EXPECT_EQ(builder.finish(), nullptr);
}

TEST(MemoryBody, FromBytes) {
  MemoryBody empty{std::string_view()};
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_TRUE(empty.span(0).empty());
  MemoryBody body{std::string_view("hello")};
  expectBody(body, "hello", 2);
  EXPECT_EQ(body.span(3), "lo");
}

// Records what a TailedBody gives back.
class RecordingLender : public http::SocketTailLender {
 public:
  void giveBack(uint64_t consumed) override {
    ++calls;
    given = consumed;
  }
  int calls = 0;
  uint64_t given = 0;
};

// A connected pair: [0] the server's socket (lent), [1] the client's.
struct SocketPair {
  SocketPair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0); }
  ~SocketPair() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  void send(const std::string& data) {
    ASSERT_EQ(::write(fds[1], data.data(), data.size()), static_cast<ssize_t>(data.size()));
  }
  http::SocketTail lend(uint64_t size, std::shared_ptr<RecordingLender> lender) {
    // A duplicate, as the connection lends: fds[0] stays, to see what is left after.
    return http::SocketTail{UniqueFd(::dup(fds[0])), size, std::move(lender)};
  }
  int fds[2] = {-1, -1};
};

TEST(TailedBody, ReadsTheHeadThenTheSocketInOrderAndGivesBackWhatItReceived) {
  const std::string head = randomBytes(1000, 7);
  const std::string tail = randomBytes(70000, 8);
  SocketPair pair;
  pair.send(tail + "GET /next HTTP/1.1\r\n\r\n");  // the next request follows the body
  auto lender = std::make_shared<RecordingLender>();
  {
    TailedBody body(std::make_shared<MemoryBody>(std::string_view(head)),
                    pair.lend(tail.size(), lender));
    EXPECT_EQ(body.size(), head.size() + tail.size());
    EXPECT_FALSE(body.fileBacked());
    EXPECT_EQ(body.span(10), std::string_view(head).substr(10));
    EXPECT_TRUE(body.span(head.size()).empty());  // the tail is not in memory
    std::string out(body.size() + 100, '\0');
    // A read across the boundary, then reads of 4 KiB, then one past the end.
    size_t at = body.read(0, out.data(), 1500);
    EXPECT_EQ(at, 1500u);
    // Elsewhere in the tail than its next byte: nothing (the tail is a stream).
    EXPECT_EQ(body.read(head.size() + 5000, out.data() + at, 10), 0u);
    while (size_t n = body.read(at, out.data() + at, 4096)) at += n;
    EXPECT_EQ(at, body.size());
    out.resize(at);
    EXPECT_EQ(out, head + tail);
    EXPECT_EQ(lender->calls, 0);
  }
  EXPECT_EQ(lender->calls, 1);
  EXPECT_EQ(lender->given, tail.size());
  // Never a byte past the body: the next request is still in the socket for the connection.
  char rest[64];
  EXPECT_EQ(::read(pair.fds[0], rest, sizeof rest), 22);
  EXPECT_EQ(std::string_view(rest, 22), "GET /next HTTP/1.1\r\n\r\n");
}

TEST(TailedBody, AnUnreadTailIsGivenBackWithWhatWasTaken) {
  SocketPair pair;
  pair.send(std::string(5000, 'x'));
  auto lender = std::make_shared<RecordingLender>();
  {
    TailedBody body(std::make_shared<MemoryBody>(std::string_view("head")),
                    pair.lend(5000, lender));
    char buf[100];
    EXPECT_EQ(body.read(0, buf, 100), 100u);
  }
  EXPECT_EQ(lender->calls, 1);
  EXPECT_EQ(lender->given, 96u);
}

TEST(TailedBody, AClientGoneMidTailMakesAShortBody) {
  SocketPair pair;
  pair.send(std::string(300, 'y'));
  ::close(pair.fds[1]);  // the client sent 300 of the 1000 bytes announced, then left
  pair.fds[1] = -1;
  auto lender = std::make_shared<RecordingLender>();
  {
    TailedBody body(std::make_shared<MemoryBody>(std::string_view()), pair.lend(1000, lender));
    std::string out(1000, '\0');
    EXPECT_EQ(body.read(0, out.data(), 1000), 300u);
    EXPECT_EQ(body.read(300, out.data(), 700), 0u);
  }
  EXPECT_EQ(lender->given, 300u);
}

}  // namespace
}  // namespace portico::python
