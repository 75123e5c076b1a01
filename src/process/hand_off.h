#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/unique_fd.h"

namespace portico::process {

// The kernel queue of client connections that a busy worker gives away and any worker with a
// free Python thread takes: an AF_UNIX SOCK_SEQPACKET socket pair, one message per connection
// (its descriptor by SCM_RIGHTS, the listener it came from, the bytes already read from it).
// Created by the master before the forks and inherited by every worker; the master keeps its
// copies, so a connection in the queue outlives the worker that sent it and the one that was
// meant to take it. Each process uses its own copy from its loop thread.
class HandOffQueue {
 public:
  // What travels with a connection.
  struct Message {
    UniqueFd fd;
    std::string listener;   // BoundListener::name of the socket that accepted it
    std::string buffered;   // bytes read from the client and not yet parsed
    uint64_t requestStartMs = 0;  // CLOCK_MONOTONIC ms of the request's first byte (0: none)
    uint64_t requestsServed = 0;  // responses the connection has had (keepalive_requests)
    uint64_t sentMs = 0;          // CLOCK_MONOTONIC ms when it was queued
    std::string proxy;            // the PROXY protocol header's addresses, as the sender wrote them
  };
  enum class Receive { kMessage, kEmpty, kDropped };

  // At most this many buffered bytes travel; a connection with more stays where it is.
  static constexpr size_t kMaxBuffered = 64 * 1024;

  // False with a message when the socket pair cannot be made.
  static std::unique_ptr<HandOffQueue> create(std::string& error);

  // Queues `fd` (the caller then closes its copy); false when the queue is full or the
  // message cannot be sent, and the connection stays with the caller.
  bool send(int fd, std::string_view listener, std::string_view buffered, uint64_t requestStartMs,
            uint64_t requestsServed, uint64_t nowMs, std::string_view proxy = {});
  // Takes one connection: kEmpty when there is none, kDropped for a message that arrived
  // without its descriptor (this process is out of descriptors: the kernel closed it).
  Receive receive(Message& out);
  // When the oldest queued connection was sent (CLOCK_MONOTONIC ms), without taking it; false
  // when the queue is empty.
  bool oldestSentMs(uint64_t& sentMs);
  // The end takers watch for EPOLLIN.
  int receiveFd() const { return receiveEnd_.get(); }

 private:
  HandOffQueue(UniqueFd sendEnd, UniqueFd receiveEnd)
      : sendEnd_(std::move(sendEnd)), receiveEnd_(std::move(receiveEnd)) {}
  UniqueFd sendEnd_;
  UniqueFd receiveEnd_;
};

}  // namespace portico::process
