// The master's status board and the per-generation thread stamps (BusyBoard): a worker that
// stamps every thread of its row never touches another worker's row or line (issue 13: a
// board sized for 1 thread took the stamps of 8 into the next worker's pid, requests and state).

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "process/worker_status.h"

namespace portico::process {
namespace {

TEST(BusyBoard, RowsHoldTheirThreadsAndDoNotOverlap) {
  for (int threads : {1, 2, 7, 8, 9, 64}) {
    BusyBoard busy(4, threads);
    ASSERT_TRUE(busy.ok());
    EXPECT_EQ(busy.threads(), threads);
    for (size_t slot = 0; slot + 1 < busy.slots(); ++slot) {
      EXPECT_LE(busy.busy(slot) + threads, busy.busy(slot + 1)) << threads << " threads";
    }
    // Every thread of slot 1 busy: slots 0 and 2 stay idle.
    for (int t = 0; t < threads; ++t) busy.busy(1)[t] = 12345;
    for (size_t slot : {size_t{0}, size_t{2}, size_t{3}}) {
      for (int t = 0; t < threads; ++t) EXPECT_EQ(busy.busy(slot)[t].load(), 0u);
    }
    busy.reset(1);
    for (int t = 0; t < threads; ++t) EXPECT_EQ(busy.busy(1)[t].load(), 0u);
  }
}

TEST(BusyBoard, AtLeastOneThread) {
  BusyBoard busy(2, 0);  // a site without an app: the row is still there
  ASSERT_TRUE(busy.ok());
  EXPECT_EQ(busy.threads(), 1);
}

TEST(StatusBoard, ThreadStampsNeverReachAWorkersLine) {
  // A generation of 8 threads beside the lines of workers started with 1: the lines are a
  // mapping of their own, whatever the stamps' size.
  StatusBoard board(4);
  ASSERT_TRUE(board.ok());
  size_t first = board.claim();
  size_t second = board.claim();
  ASSERT_EQ(first, 0u);
  ASSERT_EQ(second, 1u);
  board.slot(second).pid = 4242;
  board.slot(second).requests = 7;
  board.slot(second).state = static_cast<uint32_t>(WorkerState::kReady);
  BusyBoard small(4, 1);
  BusyBoard large(4, 8);
  for (int t = 0; t < large.threads(); ++t) large.busy(first)[t] = UINT64_MAX;
  for (int t = 0; t < large.threads(); ++t) large.busy(first)[t] = 0;
  EXPECT_EQ(board.slot(second).pid.load(), 4242);
  EXPECT_EQ(board.slot(second).requests.load(), 7u);
  EXPECT_EQ(board.slot(second).state.load(), static_cast<uint32_t>(WorkerState::kReady));
  EXPECT_EQ(small.busy(second)[0].load(), 0u);
}

TEST(StatusBoard, StacksAreAskedWrittenCutAndForgottenWithTheSlot) {
  StatusBoard board(2);
  ASSERT_TRUE(board.ok());
  size_t i = board.claim();
  const WorkerStatus& reader = board.slot(i);
  std::string text;
  uint64_t at = 0;
  EXPECT_FALSE(reader.readStacks(text, at));  // none taken yet
  reader.askStacks();
  reader.askStacks();
  EXPECT_EQ(reader.stacksAsked.load(), 2u);
  board.slot(i).writeStacks(2, "Thread 0x1, most recent call last:\n", 1234);
  ASSERT_TRUE(reader.readStacks(text, at));
  EXPECT_EQ(text, "Thread 0x1, most recent call last:\n");
  EXPECT_EQ(at, 1234u);
  EXPECT_EQ(reader.stacksAnswered.load(), 2u);
  // Longer than the slot's text: cut to fit, NUL-terminated.
  board.slot(i).writeStacks(3, std::string(WorkerStatus::kStacksTextBytes * 2, 'x'), 1300);
  ASSERT_TRUE(reader.readStacks(text, at));
  EXPECT_EQ(text.size(), WorkerStatus::kStacksTextBytes - 1);
  // A worker taking the slot next starts with none.
  board.slot(i).state = static_cast<uint32_t>(WorkerState::kFree);
  ASSERT_EQ(board.claim(), i);
  EXPECT_FALSE(reader.readStacks(text, at));
  EXPECT_EQ(reader.stacksAsked.load(), 0u);
}

}  // namespace
}  // namespace portico::process
