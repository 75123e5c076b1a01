// The upstream keep-alive pool against a real event loop: cached connections end when their
// peer closes them, and a connection taken while its own close is pending in the same batch of
// events is not touched after it left the pool (the crash a killed backend caused).

#include "upstream/keepalive_pool.h"
#include "transport/plain_transport.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>

namespace portico::upstream {
namespace {

// A socket pair: `ours` goes into the pool, `theirs` plays the upstream.
struct Pair {
  UniqueFd ours;
  UniqueFd theirs;
  Pair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    ours = UniqueFd(fds[0]);
    theirs = UniqueFd(fds[1]);
  }
};

// A readable descriptor whose event runs `then` (a request arriving in the same batch).
struct Trigger final : event::IoWatcher {
  std::function<void()> then;
  void onIoEvent(uint32_t) override {
    if (then) then();
    then = nullptr;
  }
};

config::UpstreamSpec spec(int keepalive) {
  config::UpstreamSpec s;
  s.name = "backend";
  s.keepalive = keepalive;
  return s;
}

// Runs the loop until it went round once with nothing left to do.
void spin(event::EventLoop& loop) {
  loop.addTimer(20, [&loop] { loop.stop(); });
  loop.run();
}

TEST(KeepalivePool, PeerCloseDropsTheIdleConnection) {
  event::EventLoop loop;
  KeepalivePool pool(loop, spec(4));
  config::UpstreamAddress peer;
  Pair pair;
  pool.put(&peer, std::make_unique<transport::PlainTransport>(std::move(pair.ours), false), 1,
           loop.nowMs());
  EXPECT_EQ(pool.idle(), 1u);
  pair.theirs.reset();
  spin(loop);
  EXPECT_EQ(pool.idle(), 0u);
  uint64_t requests = 0, born = 0;
  EXPECT_EQ(pool.take(&peer, requests, born), nullptr);
}

TEST(KeepalivePool, TakeWhileItsCloseIsInTheSameBatchIsSafe) {
  event::EventLoop loop;
  KeepalivePool pool(loop, spec(4));
  config::UpstreamAddress peer;
  Pair conn;
  pool.put(&peer, std::make_unique<transport::PlainTransport>(std::move(conn.ours), false), 3,
           loop.nowMs());
  // The request's event is ready first, the upstream's close right after: one epoll batch,
  // in that order (made once the loop has passed over the connection's first event, room to
  // write). The request takes the cached connection; the close then reaches the watcher of a
  // connection no longer in the pool.
  Pair request;
  Trigger trigger;
  std::unique_ptr<transport::Transport> taken;
  uint64_t requests = 0, born = 0;
  trigger.then = [&] { taken = pool.take(&peer, requests, born); };
  ASSERT_TRUE(loop.add(request.ours.get(), EPOLLIN, &trigger));
  loop.addTimer(5, [&] {
    EXPECT_EQ(pool.idle(), 1u);
    EXPECT_EQ(::write(request.theirs.get(), "x", 1), 1);
    conn.theirs.reset();
  });
  spin(loop);
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(requests, 3u);
  EXPECT_EQ(pool.idle(), 0u);
  loop.remove(request.ours.get());
  // The taken connection is the caller's: its peer's close is there to be read.
  char byte;
  EXPECT_EQ(::read(taken->fd(), &byte, 1), 0);
}

// A watcher that counts its events.
struct Counter final : event::IoWatcher {
  int events = 0;
  void onIoEvent(uint32_t) override { ++events; }
};

TEST(KeepalivePool, RegistrationTravelsWithTheConnection) {
  // A request gives its registered connection back and a later one takes it: the registration
  // (its UpstreamWatch) goes along, no epoll_ctl either way, and the events go to whoever
  // holds the connection now.
  event::EventLoop loop;
  KeepalivePool pool(loop, spec(4));
  config::UpstreamAddress peer;
  Pair conn;
  Counter first, second;
  auto transport = std::make_unique<transport::PlainTransport>(std::move(conn.ours), false);
  int fd = transport->fd();
  std::unique_ptr<UpstreamWatch> watch = UpstreamWatch::add(loop, fd, &first);
  ASSERT_NE(watch, nullptr);
  UpstreamWatch* raw = watch.get();
  pool.put(&peer, std::move(transport), 1, loop.nowMs(), std::move(watch));
  EXPECT_EQ(pool.idle(), 1u);
  // Registered again, it would fail: it is registered already.
  EXPECT_FALSE(loop.add(fd, EPOLLIN, &first));
  // Room to write (an EPOLLOUT edge, registered for the requests) does not end an idle one.
  raw->onIoEvent(EPOLLOUT);
  EXPECT_EQ(pool.idle(), 1u);
  uint64_t requests = 0, born = 0;
  std::unique_ptr<UpstreamWatch> back;
  std::unique_ptr<transport::Transport> taken = pool.take(&peer, requests, born, &second, back);
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(back.get(), raw);
  EXPECT_EQ(pool.idle(), 0u);
  ASSERT_EQ(::write(conn.theirs.get(), "x", 1), 1);
  spin(loop);
  EXPECT_EQ(first.events, 0);
  EXPECT_EQ(second.events, 1);
  // A connection the pool refuses (keepalive_requests reached) leaves the loop before it
  // closes.
  KeepalivePool full(loop, [] {
    config::UpstreamSpec s = spec(4);
    s.keepaliveRequests = 1;
    return s;
  }());
  full.put(&peer, std::move(taken), 1, loop.nowMs(), std::move(back));
  EXPECT_EQ(full.idle(), 0u);
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);  // closed
}

TEST(KeepalivePool, IdleTimeoutCountsFromTheLastPutOnly) {
  // One idle timer per connection, moved at each put: a connection lent out when its timer
  // fires is not touched, and one put back idles for a whole keepalive_timeout again.
  event::EventLoop loop;
  config::UpstreamSpec s = spec(4);
  s.keepaliveTimeoutMs = 40;
  KeepalivePool pool(loop, s);
  config::UpstreamAddress peer;
  Pair conn;
  Counter holder;
  pool.put(&peer, std::make_unique<transport::PlainTransport>(std::move(conn.ours), false), 1,
           loop.nowMs());
  std::unique_ptr<UpstreamWatch> watch;
  std::unique_ptr<transport::Transport> lent;
  uint64_t requests = 0, born = 0;
  size_t idleAt50 = 99, idleAfter30 = 99, idleAfter60 = 99;
  loop.addTimer(10, [&] { lent = pool.take(&peer, requests, born, &holder, watch); });
  // 40 ms after the put its timer fires while the connection is lent: nothing happens.
  loop.addTimer(50, [&] {
    idleAt50 = pool.idle();
    pool.put(&peer, std::move(lent), 2, born, std::move(watch));  // a new timer: 40 ms
  });
  loop.addTimer(70, [&] {
    lent = pool.take(&peer, requests, born, &holder, watch);
    pool.put(&peer, std::move(lent), 3, born, std::move(watch));  // the pending one, moved
    // Counted from this put (the same clock reading), whenever the loop gets here.
    loop.addTimer(30, [&] { idleAfter30 = pool.idle(); });  // kept
    loop.addTimer(60, [&] {
      idleAfter60 = pool.idle();  // closed
      loop.stop();
    });
  });
  loop.run();
  EXPECT_EQ(idleAt50, 0u);
  EXPECT_EQ(idleAfter30, 1u);
  EXPECT_EQ(idleAfter60, 0u);
  EXPECT_EQ(requests, 2u);
}

TEST(KeepalivePool, OldestGoesWhenFull) {
  event::EventLoop loop;
  KeepalivePool pool(loop, spec(2));
  config::UpstreamAddress a, b, c;
  Pair pa, pb, pc;
  pool.put(&a, std::make_unique<transport::PlainTransport>(std::move(pa.ours), false), 1, loop.nowMs());
  pool.put(&b, std::make_unique<transport::PlainTransport>(std::move(pb.ours), false), 1, loop.nowMs());
  pool.put(&c, std::make_unique<transport::PlainTransport>(std::move(pc.ours), false), 1, loop.nowMs());
  spin(loop);
  EXPECT_EQ(pool.idle(), 2u);
  uint64_t requests = 0, born = 0;
  EXPECT_EQ(pool.take(&a, requests, born), nullptr);
  EXPECT_NE(pool.take(&b, requests, born), nullptr);
  EXPECT_NE(pool.take(&c, requests, born), nullptr);
}

// Over keepalive N, the extra connections stay until the loop's batch is handled: a request
// later in the batch takes one instead of connecting anew; then the least recently used go.
TEST(KeepalivePool, OverCapacityLastsUntilTheBatchEnds) {
  event::EventLoop loop;
  KeepalivePool pool(loop, spec(1));
  config::UpstreamAddress a, b, c;
  Pair pa, pb, pc;
  pool.put(&a, std::make_unique<transport::PlainTransport>(std::move(pa.ours), false), 1, loop.nowMs());
  pool.put(&b, std::make_unique<transport::PlainTransport>(std::move(pb.ours), false), 1, loop.nowMs());
  EXPECT_EQ(pool.idle(), 2u);
  uint64_t requests = 0, born = 0;
  EXPECT_NE(pool.take(&a, requests, born), nullptr);  // given back over capacity, still there
  pool.put(&c, std::make_unique<transport::PlainTransport>(std::move(pc.ours), false), 1, loop.nowMs());
  EXPECT_EQ(pool.idle(), 2u);
  spin(loop);
  EXPECT_EQ(pool.idle(), 1u);
  EXPECT_EQ(pool.take(&b, requests, born), nullptr);  // the least recently used went
  EXPECT_NE(pool.take(&c, requests, born), nullptr);
}

// A pool gone (a reload) before its batch ends leaves nothing behind for the deferred trim.
TEST(KeepalivePool, PoolGoneBeforeTheBatchEnds) {
  event::EventLoop loop;
  config::UpstreamAddress a, b;
  Pair pa, pb;
  {
    KeepalivePool pool(loop, spec(1));
    pool.put(&a, std::make_unique<transport::PlainTransport>(std::move(pa.ours), false), 1, loop.nowMs());
    pool.put(&b, std::make_unique<transport::PlainTransport>(std::move(pb.ours), false), 1, loop.nowMs());
  }
  spin(loop);
  char byte;
  EXPECT_EQ(::read(pa.theirs.get(), &byte, 1), 0);  // both closed with the pool
  EXPECT_EQ(::read(pb.theirs.get(), &byte, 1), 0);
}

}  // namespace
}  // namespace portico::upstream
