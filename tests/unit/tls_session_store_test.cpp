#include "transport/tls_session_store.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <vector>

using portico::transport::TlsSessionStore;

namespace {

// An in-process region, 8-byte aligned.
struct Region {
  explicit Region(size_t size) : bytes(size / 8 + 1), size(size) {}
  void* base() { return bytes.data(); }
  std::vector<uint64_t> bytes;
  size_t size;
};

std::string idOf(int i) {
  std::string id(32, '\0');
  for (int k = 0; k < 4; ++k) id[k] = static_cast<char>((i >> (8 * k)) & 0xff);
  id[31] = 'x';
  return id;
}

TEST(TlsSessionStoreTest, RefusesATooSmallRegion) {
  Region small(TlsSessionStore::kMinSize - 8);
  EXPECT_FALSE(TlsSessionStore::format(small.base(), small.size));
  Region ok(TlsSessionStore::kMinSize);
  EXPECT_TRUE(TlsSessionStore::format(ok.base(), ok.size));
}

TEST(TlsSessionStoreTest, StoresFindsReplacesAndRemoves) {
  Region r(64 * 1024);
  ASSERT_TRUE(TlsSessionStore::format(r.base(), r.size));
  TlsSessionStore store(r.base());
  EXPECT_TRUE(store.add("abc", "session-1", 1000, 0));
  std::string out;
  ASSERT_TRUE(store.find("abc", 10, out));
  EXPECT_EQ(out, "session-1");
  EXPECT_FALSE(store.find("abd", 10, out));
  EXPECT_TRUE(store.add("abc", "session-2", 1000, 20));
  ASSERT_TRUE(store.find("abc", 30, out));
  EXPECT_EQ(out, "session-2");
  EXPECT_EQ(store.entries(), 1u);
  store.remove("abc");
  EXPECT_FALSE(store.find("abc", 40, out));
  EXPECT_EQ(store.entries(), 0u);
}

TEST(TlsSessionStoreTest, EntriesExpire) {
  Region r(64 * 1024);
  ASSERT_TRUE(TlsSessionStore::format(r.base(), r.size));
  TlsSessionStore store(r.base());
  ASSERT_TRUE(store.add("id", "s", 1000, 0));
  std::string out;
  EXPECT_TRUE(store.find("id", 999, out));
  EXPECT_FALSE(store.find("id", 1000, out));
  EXPECT_EQ(store.entries(), 0u);
}

TEST(TlsSessionStoreTest, TooBigSessionsAreNotCached) {
  Region r(64 * 1024);
  ASSERT_TRUE(TlsSessionStore::format(r.base(), r.size));
  TlsSessionStore store(r.base());
  EXPECT_FALSE(store.add("id", std::string(TlsSessionStore::kMaxSession + 1, 'x'), 10, 0));
  EXPECT_FALSE(store.add(std::string(33, 'i'), "s", 10, 0));
  EXPECT_TRUE(store.add("id", std::string(TlsSessionStore::kMaxSession, 'x'), 10, 0));
}

// A full cache evicts its oldest entries first, and what it holds stays bounded by its size.
TEST(TlsSessionStoreTest, FullCacheEvictsTheOldest) {
  Region r(TlsSessionStore::kMinSize);
  ASSERT_TRUE(TlsSessionStore::format(r.base(), r.size));
  TlsSessionStore store(r.base());
  const std::string session(200, 's');
  const int total = 2000;  // far more than fit
  for (int i = 0; i < total; ++i) {
    ASSERT_TRUE(store.add(idOf(i), session + std::to_string(i), 1'000'000, i));
  }
  size_t held = store.entries();
  EXPECT_GT(held, 50u);
  EXPECT_LT(held * 200, store.capacity());
  std::string out;
  // The newest `held` are all there, everything older is gone.
  for (int i = total - static_cast<int>(held); i < total; ++i) {
    ASSERT_TRUE(store.find(idOf(i), total, out)) << i;
    EXPECT_EQ(out, session + std::to_string(i));
  }
  for (int i = 0; i < total - static_cast<int>(held); ++i) {
    EXPECT_FALSE(store.find(idOf(i), total, out)) << i;
  }
}

// Sessions of varying sizes wrap around the log many times without losing the newest one.
TEST(TlsSessionStoreTest, VaryingSizesWrapAround) {
  Region r(TlsSessionStore::kMinSize);
  ASSERT_TRUE(TlsSessionStore::format(r.base(), r.size));
  TlsSessionStore store(r.base());
  std::srand(7);
  for (int i = 0; i < 5000; ++i) {
    std::string session(static_cast<size_t>(1 + std::rand() % TlsSessionStore::kMaxSession),
                        static_cast<char>('a' + i % 26));
    ASSERT_TRUE(store.add(idOf(i), session, 1'000'000, i));
    std::string out;
    ASSERT_TRUE(store.find(idOf(i), i, out));
    ASSERT_EQ(out, session);
    if (i % 3 == 0) store.remove(idOf(i));
  }
  EXPECT_LE(store.entries(), store.capacity() / 64);
}

// Expired entries at the old end are dropped by the next add, before anything live is evicted.
TEST(TlsSessionStoreTest, ExpiredOldestGoFirst) {
  Region r(TlsSessionStore::kMinSize);
  ASSERT_TRUE(TlsSessionStore::format(r.base(), r.size));
  TlsSessionStore store(r.base());
  ASSERT_TRUE(store.add(idOf(1), "old", 100, 0));
  ASSERT_TRUE(store.add(idOf(2), "new", 10'000, 0));
  ASSERT_TRUE(store.add(idOf(3), "newer", 10'000, 500));
  EXPECT_EQ(store.entries(), 2u);
  std::string out;
  EXPECT_TRUE(store.find(idOf(2), 600, out));
}

// Two processes share one MAP_SHARED region: what a child stores, the parent finds.
TEST(TlsSessionStoreTest, SharedAcrossProcesses) {
  size_t size = 64 * 1024;
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(base, MAP_FAILED);
  ASSERT_TRUE(TlsSessionStore::format(base, size));
  pid_t pid = ::fork();
  if (pid == 0) {
    TlsSessionStore child(base);
    ::_exit(child.add("from-child", "payload", 1000, 0) ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  TlsSessionStore parent(base);
  std::string out;
  EXPECT_TRUE(parent.find("from-child", 1, out));
  EXPECT_EQ(out, "payload");
  ::munmap(base, size);
}

}  // namespace
