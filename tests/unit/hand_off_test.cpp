// The hand-off queue (a connection's descriptor, listener and buffered bytes from one worker to
// another) and the status board's taker mask.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "process/hand_off.h"
#include "process/worker_status.h"

namespace portico::process {
namespace {

struct SocketPair {
  SocketPair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    client = UniqueFd(fds[0]);
    server = UniqueFd(fds[1]);
  }
  UniqueFd client, server;
};

TEST(HandOffQueue, CarriesTheProxyProtocolAddresses) {
  std::string error;
  auto queue = HandOffQueue::create(error);
  ASSERT_TRUE(queue) << error;
  SocketPair pair;
  ASSERT_TRUE(queue->send(pair.server.get(), "l", "GET", 1, 2, 3, "192.0.2.1 123 192.0.2.2 80"));
  ASSERT_TRUE(queue->send(pair.server.get(), "m", "PUT", 1, 2, 3));
  HandOffQueue::Message message;
  ASSERT_EQ(queue->receive(message), HandOffQueue::Receive::kMessage);
  EXPECT_EQ(message.proxy, "192.0.2.1 123 192.0.2.2 80");
  EXPECT_EQ(message.buffered, "GET");
  ASSERT_EQ(queue->receive(message), HandOffQueue::Receive::kMessage);
  EXPECT_EQ(message.proxy, "");
  EXPECT_EQ(message.buffered, "PUT");
}

TEST(HandOffQueue, CarriesTheDescriptorListenerAndBytes) {
  std::string error;
  auto queue = HandOffQueue::create(error);
  ASSERT_TRUE(queue) << error;
  SocketPair pair;
  std::string buffered = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\n";
  ASSERT_TRUE(queue->send(pair.server.get(), "http://127.0.0.1:8000", buffered, 1234, 7, 99));
  pair.server.reset();  // the sender's copy goes: the queued message keeps the socket

  uint64_t sent = 0;
  ASSERT_TRUE(queue->oldestSentMs(sent));
  EXPECT_EQ(sent, 99u);
  HandOffQueue::Message message;
  ASSERT_EQ(queue->receive(message), HandOffQueue::Receive::kMessage);
  EXPECT_EQ(message.listener, "http://127.0.0.1:8000");
  EXPECT_EQ(message.buffered, buffered);
  EXPECT_EQ(message.requestStartMs, 1234u);
  EXPECT_EQ(message.requestsServed, 7u);
  EXPECT_EQ(message.sentMs, 99u);
  // The received descriptor is the same connection: bytes go both ways.
  ASSERT_TRUE(message.fd);
  ASSERT_EQ(::write(message.fd.get(), "pong", 4), 4);
  char got[4];
  ASSERT_EQ(::read(pair.client.get(), got, 4), 4);
  EXPECT_EQ(std::string(got, 4), "pong");
  ASSERT_EQ(::write(pair.client.get(), "ping", 4), 4);
  ASSERT_EQ(::read(message.fd.get(), got, 4), 4);
  EXPECT_EQ(std::string(got, 4), "ping");

  EXPECT_FALSE(queue->oldestSentMs(sent));
  EXPECT_EQ(queue->receive(message), HandOffQueue::Receive::kEmpty);
}

TEST(HandOffQueue, KeepsOrderAndRefusesWhatDoesNotFit) {
  std::string error;
  auto queue = HandOffQueue::create(error);
  ASSERT_TRUE(queue) << error;
  SocketPair pair;
  EXPECT_FALSE(queue->send(pair.server.get(), "l", std::string(HandOffQueue::kMaxBuffered + 1, 'x'),
                           0, 0, 0));
  ASSERT_TRUE(queue->send(pair.server.get(), "first", "", 0, 0, 1));
  ASSERT_TRUE(queue->send(pair.server.get(), "second", std::string(HandOffQueue::kMaxBuffered, 'y'),
                          0, 0, 2));
  HandOffQueue::Message message;
  ASSERT_EQ(queue->receive(message), HandOffQueue::Receive::kMessage);
  EXPECT_EQ(message.listener, "first");
  EXPECT_TRUE(message.buffered.empty());
  ASSERT_EQ(queue->receive(message), HandOffQueue::Receive::kMessage);
  EXPECT_EQ(message.listener, "second");
  EXPECT_EQ(message.buffered.size(), HandOffQueue::kMaxBuffered);
  // A full queue says so instead of blocking: the sender keeps the connection.
  bool refused = false;
  for (int i = 0; i < 100000 && !refused; ++i) {
    refused = !queue->send(pair.server.get(), "l", std::string(16 * 1024, 'z'), 0, 0, 0);
  }
  EXPECT_TRUE(refused);
}

TEST(StatusBoard, TakerMaskSeesOnlyOtherWorkers) {
  StatusBoard board(70);
  ASSERT_TRUE(board.ok());
  EXPECT_FALSE(board.otherTaker(0));
  board.setTaker(3, true);
  EXPECT_TRUE(board.otherTaker(0));
  EXPECT_FALSE(board.otherTaker(3));  // itself does not count
  EXPECT_EQ(board.slot(3).takesHandOffs.load(), 1u);
  board.setTaker(65, true);  // second word of the mask
  EXPECT_TRUE(board.otherTaker(3));
  board.setTaker(3, false);
  board.setTaker(65, false);
  EXPECT_FALSE(board.otherTaker(0));
  // A slot claimed afresh starts as no taker.
  board.setTaker(0, true);
  board.slot(0).state = static_cast<uint32_t>(WorkerState::kFree);
  EXPECT_EQ(board.claim(), 0u);
  EXPECT_FALSE(board.otherTaker(1));
}

}  // namespace
}  // namespace portico::process
