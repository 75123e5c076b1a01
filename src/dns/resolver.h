#pragma once

// nginx's resolver (ngx_resolver.c) for one `resolver` directive in one worker: a name is
// looked up with an A and (unless ipv6=off) an AAAA query sent over UDP to the configured
// servers in turn, over TCP to the same server when the UDP answer comes truncated, and resent
// to the next server every 5 s while a request waits for it. Answers are cached by lower-case
// name for their least TTL (or valid=), CNAMEs are followed (at most 50 in a row, cached one by
// one), errors are not cached, and each waiting request has its own resolver_timeout. An answer
// is matched to its query by question name, type and ID; whatever else arrives is logged and
// dropped. Owned by the worker's proxy content module; loop thread.

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/unique_fd.h"
#include "dns/dns_message.h"
#include "event/event_loop.h"

namespace portico::dns {

// One name server of a `resolver` line.
struct ServerAddress {
  sockaddr_storage addr{};
  socklen_t length = 0;
  std::string text;  // "127.0.0.1:53", for messages
};

struct ResolverOptions {
  std::vector<ServerAddress> servers;
  uint32_t validSeconds = 0;  // valid=: overrides the answers' TTL (0: the TTL)
  bool ipv4 = true;
  bool ipv6 = true;
};

// What a lookup ends with: addresses, or a code (a DNS rcode, kTimedOut).
struct Result {
  int code = 0;
  std::vector<Address> addresses;
};

class Resolver {
 public:
  using Callback = std::function<void(const Result&)>;
  struct Node;
  class Connection;

  // One request's wait for a name: `done` is called once, unless the Lookup is destroyed
  // first (which cancels the wait). Owned by the waiting request; loop thread.
  class Lookup {
   public:
    ~Lookup();
    Lookup(const Lookup&) = delete;
    Lookup& operator=(const Lookup&) = delete;

   private:
    friend class Resolver;
    Lookup() = default;
    Resolver* resolver_ = nullptr;  // null once answered or the resolver is gone
    Node* node_ = nullptr;          // the name being waited for
    int recursion_ = 0;             // CNAMEs followed so far
    event::TimerId timer_{0, 0};
    Callback done_;
  };

  // The most names kept; beyond, the oldest answers are dropped first.
  static constexpr size_t kMaxNodes = 4096;
  static constexpr uint64_t kResendMs = 5000;
  static constexpr int kMaxRecursion = 50;

  Resolver(event::EventLoop& loop, ResolverOptions options);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Looks `name` up. When the answer is known at once (cached, or a name that cannot be
  // asked), returns null with `now` filled; else a Lookup whose `done` runs later, at the
  // latest after `timeoutMs`.
  std::unique_ptr<Lookup> resolve(std::string_view name, uint64_t timeoutMs, Callback done,
                                  Result& now);


 private:
  // One message from a server (`from`: whose sockets it came on).
  void onMessage(std::string_view message, bool tcp, Connection& from);
  // Either an answer now, or the node to wait on.
  Node* find(std::string name, int& recursion, Result& now);
  Node* startQuery(const std::string& name);
  void sendQueries(Node& node, bool firstTime);
  bool sendTo(size_t server, const std::string& query, bool tcp);
  void resend(Node& node);
  void attach(Lookup& lookup, Node& node);
  void detach(Lookup& lookup);
  void complete(Node& node);
  void fail(Node& node, int code);
  void follow(Node& node);
  void deliver(Lookup& lookup, const Result& result);
  void drain(Node& node, const std::function<void(Lookup&)>& each);
  std::vector<Address> rotated(Node& node);
  void trim();
  uint16_t nextId();

  event::EventLoop& loop_;
  ResolverOptions options_;
  std::vector<std::unique_ptr<Connection>> connections_;  // one per server
  size_t nextServer_ = 0;
  std::unordered_map<std::string, std::unique_ptr<Node>> nodes_;
  std::vector<uint16_t> ids_;  // random query IDs not yet used
};

}  // namespace portico::dns
