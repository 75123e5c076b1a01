// The proxied response's spool: bytes come out in the order they went in whatever mix of
// memory, temporary file and memory again they took; memory and file stay within their bounds;
// the file is never visible in its directory; one file range is out at a time.
#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <string>

#include "upstream/response_spool.h"

namespace portico::upstream {
namespace {

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char name[] = "/tmp/spool_test_XXXXXX";
    ASSERT_NE(::mkdtemp(name), nullptr);
    dir_ = name;
  }
  void TearDown() override { ::rmdir(dir_.c_str()); }

  size_t entries() const {
    size_t count = 0;
    DIR* d = ::opendir(dir_.c_str());
    while (dirent* e = ::readdir(d)) {
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++count;
    }
    ::closedir(d);
    return count;
  }

  SpoolLimits limits(uint64_t memory, uint64_t maxFile, uint64_t writeSize) const {
    SpoolLimits l;
    l.memory = memory;
    l.maxFile = maxFile;
    l.writeSize = writeSize;
    l.directory = dir_;
    return l;
  }

  std::string dir_;
};

// Reads what a chunk holds (a file range with pread, as a connection without sendfile does).
std::string bytesOf(const BodyChunk& chunk) {
  if (auto* s = std::get_if<std::string>(&chunk.data)) return *s;
  const FileRange& r = std::get<FileRange>(chunk.data);
  std::string out(r.length, '\0');
  EXPECT_EQ(::pread(r.file->get(), out.data(), out.size(), static_cast<off_t>(r.offset)),
            static_cast<ssize_t>(out.size()));
  return out;
}

std::string piece(size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// Drains everything the spool can give now, releasing each file range at once (a fast client).
std::string drain(ResponseSpool& spool) {
  std::string out;
  while (!spool.empty()) {
    ResponseSpool::Next next = spool.peek();
    EXPECT_NE(next, ResponseSpool::Next::kFileBusy);  // every range was released
    out += bytesOf(spool.take());
  }
  return out;
}

TEST_F(SpoolTest, FastClientStaysInMemory) {
  ResponseSpool spool(limits(32768, 1 << 20, 8192));
  std::string sent;
  for (unsigned i = 0; i < 100; ++i) {
    std::string p = piece(16384, i);
    sent += p;
    spool.push(p);
    EXPECT_TRUE(spool.canAccept());
    EXPECT_EQ(spool.peek(), ResponseSpool::Next::kMemory);
    EXPECT_EQ(bytesOf(spool.take()), p);
  }
  EXPECT_EQ(spool.fileSize(), 0u);
  EXPECT_TRUE(spool.empty());
}

TEST_F(SpoolTest, SlowClientSpillsInOrderAndLeavesNoFile) {
  std::string sent, got;
  {
    ResponseSpool spool(limits(32768, 64 << 20, 8192));
    for (unsigned i = 0; i < 512; ++i) {  // 8 MiB, the client takes nothing meanwhile
      ASSERT_TRUE(spool.canAccept());
      std::string p = piece(16384, i);
      sent += p;
      spool.push(std::move(p));
      EXPECT_EQ(entries(), 0u);  // unlinked from the start
    }
    EXPECT_EQ(spool.takeNotice().rfind(
                  "an upstream response is buffered to a temporary file " + dir_ + "/#", 0),
              0u);
    EXPECT_EQ(spool.takeNotice(), "");  // once
    EXPECT_LE(spool.memoryBytes(), 32768u + 16384u + 8192u);
    EXPECT_GE(spool.fileSize(), sent.size() - 32768u - 16384u - 8192u);
    got = drain(spool);
  }
  EXPECT_EQ(got.size(), sent.size());
  EXPECT_TRUE(got == sent);
  EXPECT_EQ(entries(), 0u);
}

TEST_F(SpoolTest, FileBoundStopsReadingUntilTheClientDrains) {
  ResponseSpool spool(limits(8192, 65536, 8192));
  std::string sent, got;
  unsigned i = 0;
  while (spool.canAccept()) {
    std::string p = piece(4096, i++);
    sent += p;
    spool.push(std::move(p));
    ASSERT_LT(i, 1000u);
  }
  EXPECT_EQ(spool.fileSize(), 65536u);  // exactly the bound, never past it
  EXPECT_LE(spool.memoryBytes(), 8192u + 8192u + 4096u);
  // The client drains a little (the memory before the file, then the file): not enough to
  // accept more while the memory after the file is full.
  while (spool.peek() == ResponseSpool::Next::kMemory && !spool.canAccept()) {
    got += bytesOf(spool.take());
    if (spool.peek() != ResponseSpool::Next::kMemory) break;
  }
  // Then everything, with more pushed whenever there is room: still in order.
  for (unsigned round = 0; round < 50; ++round) {
    if (!spool.empty()) got += bytesOf(spool.take());
    while (spool.canAccept() && i < 200) {
      std::string p = piece(4096, i++);
      sent += p;
      spool.push(std::move(p));
    }
  }
  got += drain(spool);
  EXPECT_LE(spool.fileSize(), 65536u);
  EXPECT_TRUE(got == sent);
}

TEST_F(SpoolTest, ZeroMaxFileNeverSpills) {
  ResponseSpool spool(limits(16384, 0, 8192));
  std::string sent;
  unsigned i = 0;
  while (spool.canAccept()) {
    std::string p = piece(4096, i++);
    sent += p;
    spool.push(std::move(p));
  }
  EXPECT_EQ(sent.size(), 16384u);
  EXPECT_EQ(spool.fileSize(), 0u);
  EXPECT_TRUE(drain(spool) == sent);
}

TEST_F(SpoolTest, OneFileRangeOutAtATime) {
  ResponseSpool spool(limits(4096, 1 << 20, 4096));
  std::string sent;
  for (unsigned i = 0; i < 8; ++i) {
    std::string p = piece(4096, i);
    sent += p;
    spool.push(std::move(p));
  }
  std::string got = bytesOf(spool.take());  // the memory part
  ASSERT_EQ(spool.peek(), ResponseSpool::Next::kFile);
  BodyChunk held = spool.take();  // the connection holds this range
  ASSERT_TRUE(held.isFile());
  for (unsigned i = 8; i < 12; ++i) {
    std::string p = piece(4096, i);
    sent += p;
    spool.push(std::move(p));
  }
  // The client caught up with the file: the next push went to memory again, the rest after it
  // to the file, whose new range waits for the one held.
  got += bytesOf(held);
  ASSERT_EQ(spool.peek(), ResponseSpool::Next::kMemory);
  got += bytesOf(spool.take());
  EXPECT_EQ(spool.peek(), ResponseSpool::Next::kFileBusy);
  held = BodyChunk();  // sent: the connection let it go
  EXPECT_EQ(spool.peek(), ResponseSpool::Next::kFile);
  got += drain(spool);
  EXPECT_TRUE(got == sent);
}

TEST_F(SpoolTest, UnusableDirectoryKeepsEverythingInMemory) {
  SpoolLimits l = limits(4096, 1 << 20, 4096);
  l.directory = dir_ + "/missing";
  ResponseSpool spool(l);
  std::string sent;
  unsigned i = 0;
  while (spool.canAccept() && i < 100) {
    std::string p = piece(4096, i++);
    sent += p;
    spool.push(std::move(p));
  }
  EXPECT_LT(i, 100u);  // reading stops: no file to spill to
  std::string error = spool.takeError();
  EXPECT_NE(error.find("open() \"" + dir_ + "/missing\" failed (2: "), std::string::npos) << error;
  EXPECT_EQ(spool.fileSize(), 0u);
  EXPECT_TRUE(drain(spool) == sent);
}

TEST(ResponseBuffering, XAccelBufferingSwitchesIt) {
  EXPECT_TRUE(responseBuffering(true, {}));
  EXPECT_FALSE(responseBuffering(true, {{"X-Accel-Buffering", "no"}}));
  EXPECT_FALSE(responseBuffering(true, {{"x-accel-buffering", "NO"}}));
  EXPECT_TRUE(responseBuffering(false, {{"X-Accel-Buffering", "yes"}}));
  EXPECT_FALSE(responseBuffering(false, {{"X-Accel-Buffering", "maybe"}}));
  EXPECT_TRUE(responseBuffering(true, {{"X-Accel-Buffering", "no "}}));
}

}  // namespace
}  // namespace portico::upstream
