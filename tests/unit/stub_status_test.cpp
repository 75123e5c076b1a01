// stub_status's page and its phase bookkeeping (which transitions count a request).

#include "http/stub_status.h"

#include <gtest/gtest.h>

namespace portico::http {
namespace {

TEST(StubStatus, PageIsNginxs) {
  ConnectionCounters c;
  c.active = 2;
  c.accepted = 4;
  c.handled = 4;
  c.requests = 5;
  c.reading = 0;
  c.writing = 1;
  c.waiting = 1;
  EXPECT_EQ(renderStubStatus(c),
            "Active connections: 2 \nserver accepts handled requests\n 4 4 5 \n"
            "Reading: 0 Writing: 1 Waiting: 1 \n");
}

TEST(StubStatus, PhasesCountRequestsOnce) {
  ConnectionStats stats;
  setConnectionStats(&stats);
  using P = ConnectionPhase;
  moveConnectionPhase(P::kNone, P::kWaiting);     // accepted, idle
  moveConnectionPhase(P::kWaiting, P::kReading);  // a partial head: a request
  moveConnectionPhase(P::kReading, P::kWriting);  // head complete: the same request
  moveConnectionPhase(P::kWriting, P::kWaiting);  // keep-alive
  moveConnectionPhase(P::kWaiting, P::kWriting);  // a whole head in one read: a request
  moveConnectionPhase(P::kWriting, P::kReading);  // a pipelined head already buffered
  ConnectionCounters c = snapshotOf(stats);
  EXPECT_EQ(c.requests, 3u);
  EXPECT_EQ(c.reading, 1);
  EXPECT_EQ(c.writing, 0);
  EXPECT_EQ(c.waiting, 0);
  moveConnectionPhase(P::kReading, P::kNone);
  EXPECT_EQ(snapshotOf(stats).reading, 0);
  setConnectionStats(nullptr);
}

}  // namespace
}  // namespace portico::http
