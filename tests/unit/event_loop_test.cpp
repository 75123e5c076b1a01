#include "event/event_loop.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "event/listener.h"

namespace portico::event {
namespace {

TEST(EventLoopTest, TimersFireInDeadlineOrderAndCancelWorks) {
  EventLoop loop;
  std::vector<int> fired;
  loop.addTimer(30, [&] { fired.push_back(3); });
  loop.addTimer(10, [&] { fired.push_back(1); });
  TimerId cancelled = loop.addTimer(20, [&] { fired.push_back(99); });
  loop.addTimer(20, [&] { fired.push_back(2); });
  loop.addTimer(40, [&] { loop.stop(); });
  loop.cancelTimer(cancelled);
  EXPECT_EQ(cancelled, (TimerId{0, 0}));
  loop.cancelTimer(cancelled);  // cancelling twice is harmless
  loop.run();
  EXPECT_EQ(fired, (std::vector<int>{1, 2, 3}));
}

TEST(EventLoopTest, BeforeWaitHooksRunAfterEachBatchAndAtTheEnd) {
  EventLoop loop;
  std::vector<std::string> seen;
  loop.addBeforeWait([&] { seen.push_back("wait"); });
  loop.addTimer(5, [&] {
    seen.push_back("timer");
    loop.defer([&] { seen.push_back("deferred"); });
  });
  loop.addTimer(10, [&] {
    seen.push_back("stop");
    loop.stop();
  });
  loop.run();
  // Before the first wait, after the first timer's batch (its deferred work done first), after
  // the second, and once more as run() returns.
  ASSERT_GE(seen.size(), 6u);
  EXPECT_EQ(seen.front(), "wait");
  auto at = [&](const char* what) {
    return std::find(seen.begin(), seen.end(), what) - seen.begin();
  };
  EXPECT_EQ(seen[at("timer") + 1], "deferred");
  EXPECT_EQ(seen[at("deferred") + 1], "wait");
  EXPECT_EQ(seen.back(), "wait");
  EXPECT_EQ(seen[seen.size() - 2], "stop");
}

TEST(EventLoopTest, RearmMovesAPendingTimerWithItsCallback) {
  EventLoop loop;
  std::vector<int> fired;
  TimerId later = loop.addTimer(60, [&] { fired.push_back(1); });
  TimerId sooner = loop.addTimer(10, [&] { fired.push_back(2); });
  loop.addTimer(30, [&] { fired.push_back(3); });
  loop.addTimer(80, [&] { loop.stop(); });
  TimerId before = later;
  EXPECT_TRUE(loop.rearmTimer(later, 5));  // now first
  EXPECT_NE(later, before);
  EXPECT_TRUE(loop.rearmTimer(sooner, 50));  // now after the 30 ms one
  TimerId none{0, 0};
  EXPECT_FALSE(loop.rearmTimer(none, 5));
  loop.run();
  EXPECT_EQ(fired, (std::vector<int>{1, 3, 2}));
  EXPECT_FALSE(loop.rearmTimer(later, 5));  // fired: nothing to move, the id is reset
  EXPECT_EQ(later, (TimerId{0, 0}));
}

TEST(EventLoopTest, DeferredWorkRunsInOrderAndMayDeferMore) {
  EventLoop loop;
  std::vector<int> order;
  loop.defer([&] {
    order.push_back(1);
    loop.defer([&] {
      order.push_back(3);
      loop.stop();
    });
  });
  loop.defer([&] { order.push_back(2); });
  loop.run();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

struct Tracked : Deferrable {
  explicit Tracked(bool& flag) : deleted(flag) {}
  ~Tracked() override { deleted = true; }
  bool& deleted;
};

TEST(EventLoopTest, DeferredDeleteHappensAfterTheBatch) {
  EventLoop loop;
  bool deleted = false;
  bool seenAlive = false;
  loop.defer([&] {
    loop.deferDelete(std::make_unique<Tracked>(deleted));
    loop.defer([&] { seenAlive = !deleted; });  // same batch: still alive
  });
  loop.addTimer(5, [&] { loop.stop(); });
  loop.run();
  EXPECT_TRUE(seenAlive);
  EXPECT_TRUE(deleted);
}

TEST(EventLoopTest, PostFromAnotherThreadWakesTheLoop) {
  EventLoop loop;
  int value = 0;
  std::thread other([&] {
    loop.post([&] {
      value = 42;
      loop.stop();
    });
  });
  loop.addTimer(5000, [&] { loop.stop(); });  // safety net
  loop.run();
  other.join();
  EXPECT_EQ(value, 42);
}

// A posted message that records its runs and can post itself again from runPosted().
struct Note : Posted {
  Note(EventLoop& loop, std::vector<int>& log, int id) : loop(loop), log(log), id(id) {}
  void runPosted() override {
    log.push_back(id);
    if (again-- > 0) loop.post(static_cast<Posted*>(this));  // allowed once runPosted started
  }
  void discardPosted() override { discarded = true; }
  EventLoop& loop;
  std::vector<int>& log;
  int id;
  int again = 0;
  bool discarded = false;
};

TEST(EventLoopTest, PostedMessagesRunInOrderAndMayBePostedAgain) {
  EventLoop loop;
  std::vector<int> log;
  Note a(loop, log, 1), b(loop, log, 2);
  a.again = 2;
  std::thread other([&] {
    loop.post(static_cast<Posted*>(&a));
    loop.post([&] { log.push_back(10); });  // functions share the one queue and its order
    loop.post(static_cast<Posted*>(&b));
  });
  other.join();
  loop.addTimer(50, [&] { loop.stop(); });
  loop.run();
  // a's re-posts run in later batches, after everything queued before them.
  EXPECT_EQ(log, (std::vector<int>{1, 10, 2, 1, 1}));
}

// A quiet post writes no eventfd: the loop runs it before it sleeps, not only at a later wake-up
// (here the timer ends the loop in its first iteration, so a message left for later never runs).
TEST(EventLoopTest, QuietPostRunsBeforeTheLoopSleeps) {
  EventLoop loop;
  std::vector<int> log;
  Note a(loop, log, 1);
  std::thread other([&] { loop.postQuietly(static_cast<Posted*>(&a)); });
  other.join();
  loop.addTimer(0, [&] { loop.stop(); });
  loop.run();
  EXPECT_EQ(log, (std::vector<int>{1}));
}

// A post after quiet ones still wakes the loop (the queue was not empty, but no wake-up was on
// its way), and everything runs in order.
TEST(EventLoopTest, PostAfterQuietPostsWakesTheLoop) {
  EventLoop loop;
  std::vector<int> log;
  Note a(loop, log, 1);
  bool net = false;
  loop.addTimer(10000, [&] {
    net = true;
    loop.stop();
  });
  std::thread other([&] {
    // The loop is asleep by now (no bound, no timer before the net): only the post wakes it.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    loop.postQuietly(static_cast<Posted*>(&a));
    loop.post([&] {
      log.push_back(2);
      loop.stop();
    });
  });
  loop.run();
  other.join();
  EXPECT_EQ(log, (std::vector<int>{1, 2}));
  EXPECT_FALSE(net);
}

// While a sleep bound is finite, a quiet post made while the loop sleeps runs once the bound
// has passed, with no other event (without it the loop would sleep until the safety net).
TEST(EventLoopTest, SleepBoundLimitsTheSleepForQuietPosts) {
  EventLoop loop;
  struct Stopper : Posted {
    explicit Stopper(EventLoop& loop) : loop(loop) {}
    void runPosted() override { loop.stop(); }
    EventLoop& loop;
  } stopper(loop);
  bool net = false;
  loop.addTimer(10000, [&] {
    net = true;
    loop.stop();
  });
  loop.addSleepBound([] { return -1; });  // no limit: the other bound decides
  loop.addSleepBound([] { return 1; });
  std::thread other([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    loop.postQuietly(static_cast<Posted*>(&stopper));
  });
  loop.run();
  other.join();
  EXPECT_FALSE(net);
}

TEST(EventLoopTest, MessagesStillQueuedAreDiscardedWithTheLoop) {
  std::vector<int> log;
  auto loop = std::make_unique<EventLoop>();
  Note a(*loop, log, 1);
  loop->post(static_cast<Posted*>(&a));
  loop->post([&] { log.push_back(2); });  // its function is destroyed, not run (no leak)
  loop.reset();
  EXPECT_TRUE(a.discarded);
  EXPECT_TRUE(log.empty());
}

struct Reader : IoWatcher {
  void onIoEvent(uint32_t events) override { seen |= events; }
  uint32_t seen = 0;
};

TEST(EventLoopTest, ReportsReadiness) {
  EventLoop loop;
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  UniqueFd a(fds[0]), b(fds[1]);
  Reader reader;
  ASSERT_TRUE(loop.add(a.get(), EPOLLIN, &reader));
  ASSERT_EQ(::write(b.get(), "x", 1), 1);
  loop.addTimer(20, [&] { loop.stop(); });
  loop.run();
  EXPECT_TRUE(reader.seen & EPOLLIN);
  loop.remove(a.get());
}

TEST(ListenerTest, TcpPortZeroGetsAPortAndAccepts) {
  EventLoop loop;
  std::string error;
  UniqueFd fd = listenTcp("127.0.0.1", 0, 16, error);
  ASSERT_TRUE(fd) << error;
  uint16_t port = boundPort(fd.get());
  ASSERT_NE(port, 0);
  int accepted = 0;
  std::string peerHost;
  Listener listener(loop, std::move(fd), [&](UniqueFd client, const sockaddr_storage& peer) {
    ++accepted;
    uint16_t peerPort;
    describeAddress(peer, peerHost, peerPort);
    loop.stop();
  });
  ASSERT_TRUE(listener.start());
  std::thread client([port] {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::close(s);
  });
  loop.addTimer(5000, [&] { loop.stop(); });
  loop.run();
  client.join();
  EXPECT_EQ(accepted, 1);
  EXPECT_EQ(peerHost, "127.0.0.1");
}

// Three clients already in the kernel's queue: multi_accept takes them all on one readiness
// event, without it one (the loop is stopped by the first callback).
TEST(ListenerTest, MultiAcceptTakesEveryPendingConnectionOtherwiseOne) {
  for (bool multi : {true, false}) {
    EventLoop loop;
    std::string error;
    UniqueFd fd = listenTcp("127.0.0.1", 0, 16, error);
    ASSERT_TRUE(fd) << error;
    uint16_t port = boundPort(fd.get());
    std::vector<UniqueFd> clients;
    for (int i = 0; i < 3; ++i) {
      UniqueFd c(::socket(AF_INET, SOCK_STREAM, 0));
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(port);
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ASSERT_EQ(::connect(c.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
      clients.push_back(std::move(c));
    }
    int accepted = 0;
    Listener listener(
        loop, std::move(fd),
        [&](UniqueFd, const sockaddr_storage&) {
          ++accepted;
          loop.stop();
        },
        multi);
    ASSERT_TRUE(listener.start());
    loop.addTimer(5000, [&] { loop.stop(); });
    loop.run();
    EXPECT_EQ(accepted, multi ? 3 : 1) << "multi_accept " << multi;
  }
}

TEST(ListenerTest, BadAddressesFailWithAMessage) {
  std::string error;
  EXPECT_FALSE(listenTcp("256.1.1.1", 80, 16, error));
  EXPECT_FALSE(error.empty());
  error.clear();
  EXPECT_FALSE(listenUnix(std::string(200, 'x'), 16, error));
  EXPECT_NE(error.find("too long"), std::string::npos);
}

}  // namespace
}  // namespace portico::event
