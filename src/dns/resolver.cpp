#include "dns/resolver.h"

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>

#include "core/log.h"

namespace portico::dns {

// One name the resolver knows: being asked (its A and AAAA queries), or answered (addresses or
// a CNAME, valid until validUntilMs), or failed (kept only while its waiters are told).
struct Resolver::Node {
  enum class State { kQuerying, kAddresses, kCname, kFailed };
  struct Query {
    std::string bytes;  // the message, sent again as it is on resend and over TCP
    uint16_t id = 0;
    bool pending = false;  // sent, not answered
    bool tcp = false;      // its UDP answer came truncated: asked over TCP from now on
  };

  std::string name;
  State state = State::kQuerying;
  Query a, aaaa;
  int code = 0;                // an error one answer brought while the other is awaited
  uint32_t ttl = UINT32_MAX;   // the least TTL of the answers so far
  std::vector<Address> v4, v6;
  std::optional<std::string> cname;
  size_t server = 0;           // the server the queries go to (the next on each resend)
  event::TimerId resendTimer{0, 0};
  std::vector<Lookup*> waiting;
  std::vector<Address> addresses;
  uint64_t validUntilMs = 0;
  uint64_t lastUsedMs = 0;
  size_t rotation = 0;         // cached answers start at the next address each time
  int delivering = 0;          // its waiters are being told: not to be erased meanwhile
};

// The sockets to one name server: a connected UDP socket, and a TCP connection made when an
// answer comes truncated (messages framed by their length, RFC 1035 4.2.2). Owned by the
// Resolver; loop thread.
class Resolver::Connection {
 public:
  Connection(Resolver& resolver, const ServerAddress& server)
      : resolver_(resolver), server_(server), udpWatcher_(*this, false), tcpWatcher_(*this, true) {}
  ~Connection() {
    closeUdp();
    closeTcp();
  }

  bool sendUdp(const std::string& query) {
    if (!udp_) {
      UniqueFd fd(::socket(server_.addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!fd || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&server_.addr),
                           server_.length) != 0) {
        logError("connect() failed (" + std::to_string(errno) + ": " + std::strerror(errno) +
                 ")" + context());
        return false;
      }
      if (!resolver_.loop_.add(fd.get(), EPOLLIN, &udpWatcher_)) return false;
      udp_ = std::move(fd);
    }
    if (::send(udp_.get(), query.data(), query.size(), MSG_NOSIGNAL) < 0) {
      logError("send() failed (" + std::to_string(errno) + ": " + std::strerror(errno) + ")" +
               context());
      closeUdp();
      return false;
    }
    return true;
  }

  bool sendTcp(const std::string& query) {
    if (tcpOut_.size() + query.size() + 2 > kMaxTcpBuffer) return false;
    if (!tcp_) {
      UniqueFd fd(
          ::socket(server_.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!fd) return false;
      int rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&server_.addr),
                         server_.length);
      if (rc != 0 && errno != EINPROGRESS) {
        logError("connect() failed (" + std::to_string(errno) + ": " + std::strerror(errno) +
                 ")" + context());
        return false;
      }
      if (!resolver_.loop_.add(fd.get(), EPOLLIN | EPOLLOUT | EPOLLRDHUP, &tcpWatcher_)) {
        return false;
      }
      tcp_ = std::move(fd);
      tcpConnected_ = rc == 0;
    }
    tcpOut_ += static_cast<char>(query.size() >> 8);
    tcpOut_ += static_cast<char>(query.size() & 0xff);
    tcpOut_ += query;
    if (tcpConnected_) flushTcp();
    return true;
  }

  std::string context() const { return ", resolver: " + server_.text; }

 private:
  static constexpr size_t kMaxTcpBuffer = 65536 + 2;

  struct Watcher final : event::IoWatcher {
    Watcher(Connection& c, bool tcp) : connection(c), isTcp(tcp) {}
    void onIoEvent(uint32_t events) override {
      if (isTcp) {
        connection.onTcp(events);
      } else {
        connection.readUdp();
      }
    }
    Connection& connection;
    bool isTcp;
  };

  void closeUdp() {
    if (udp_) resolver_.loop_.remove(udp_.get());
    udp_.reset();
  }
  void closeTcp() {
    if (tcp_) resolver_.loop_.remove(tcp_.get());
    tcp_.reset();
    tcpConnected_ = false;
    tcpOut_.clear();
    tcpIn_.clear();
  }

  void readUdp() {
    char buffer[65536];
    for (int i = 0; i < 64 && udp_; ++i) {
      ssize_t n = ::recv(udp_.get(), buffer, sizeof buffer, 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        // ECONNREFUSED: nothing listens there; the resend goes to the next server.
        logError("recv() failed (" + std::to_string(errno) + ": " + std::strerror(errno) + ")" +
                 context());
        return;
      }
      resolver_.onMessage(std::string_view(buffer, static_cast<size_t>(n)), false, *this);
    }
  }

  void onTcp(uint32_t events) {
    if (!tcpConnected_ && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      int error = 0;
      socklen_t length = sizeof error;
      ::getsockopt(tcp_.get(), SOL_SOCKET, SO_ERROR, &error, &length);
      if (error != 0) {
        logError("connect() failed (" + std::to_string(error) + ": " + std::strerror(error) +
                 ")" + context());
        closeTcp();
        return;
      }
      tcpConnected_ = true;
    }
    if (events & EPOLLOUT) flushTcp();
    if (tcp_ && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) readTcp();
  }

  void flushTcp() {
    while (tcp_ && !tcpOut_.empty()) {
      ssize_t n = ::send(tcp_.get(), tcpOut_.data(), tcpOut_.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        logError("send() failed (" + std::to_string(errno) + ": " + std::strerror(errno) + ")" +
                 context());
        closeTcp();
        return;
      }
      tcpOut_.erase(0, static_cast<size_t>(n));
    }
  }

  void readTcp() {
    char buffer[16384];
    while (tcp_) {
      ssize_t n = ::recv(tcp_.get(), buffer, sizeof buffer, 0);
      if (n == 0) {
        closeTcp();  // the server closed; what is still asked is resent
        return;
      }
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        logError("recv() failed (" + std::to_string(errno) + ": " + std::strerror(errno) + ")" +
                 context());
        closeTcp();
        return;
      }
      tcpIn_.append(buffer, static_cast<size_t>(n));
      // Whole messages are handed on at once; what remains is less than one message.
      size_t at = 0;
      while (tcpIn_.size() - at >= 2) {
        size_t length = (static_cast<uint8_t>(tcpIn_[at]) << 8) | static_cast<uint8_t>(tcpIn_[at + 1]);
        if (tcpIn_.size() - at - 2 < length) break;
        std::string message = tcpIn_.substr(at + 2, length);
        at += 2 + length;
        resolver_.onMessage(message, true, *this);
        if (!tcp_) return;
      }
      tcpIn_.erase(0, at);
    }
  }

  Resolver& resolver_;
  ServerAddress server_;
  Watcher udpWatcher_, tcpWatcher_;
  UniqueFd udp_, tcp_;
  bool tcpConnected_ = false;
  std::string tcpOut_, tcpIn_;
};

Resolver::Lookup::~Lookup() {
  if (!resolver_) return;
  resolver_->detach(*this);
  resolver_->loop_.cancelTimer(timer_);
}

Resolver::Resolver(event::EventLoop& loop, ResolverOptions options)
    : loop_(loop), options_(std::move(options)) {
  for (const ServerAddress& server : options_.servers) {
    connections_.push_back(std::make_unique<Connection>(*this, server));
  }
}

Resolver::~Resolver() {
  for (auto& [name, node] : nodes_) {
    loop_.cancelTimer(node->resendTimer);
    for (Lookup* lookup : node->waiting) {
      loop_.cancelTimer(lookup->timer_);
      lookup->resolver_ = nullptr;
      lookup->node_ = nullptr;
    }
  }
}

uint16_t Resolver::nextId() {
  if (ids_.empty()) {
    ids_.resize(64);
    if (::getrandom(ids_.data(), ids_.size() * sizeof(uint16_t), 0) !=
        static_cast<ssize_t>(ids_.size() * sizeof(uint16_t))) {
      for (uint16_t& id : ids_) id = static_cast<uint16_t>(::random());
    }
  }
  uint16_t id = ids_.back();
  ids_.pop_back();
  return id;
}

std::unique_ptr<Resolver::Lookup> Resolver::resolve(std::string_view name, uint64_t timeoutMs,
                                                    Callback done, Result& now) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  int recursion = 0;
  Node* node = find(std::move(lower), recursion, now);
  if (!node) return nullptr;
  std::unique_ptr<Lookup> lookup(new Lookup);
  lookup->resolver_ = this;
  lookup->recursion_ = recursion;
  lookup->done_ = std::move(done);
  Lookup* raw = lookup.get();
  lookup->timer_ = loop_.addTimer(timeoutMs, [this, raw] {
    raw->timer_ = {0, 0};
    detach(*raw);
    Result timedOut;
    timedOut.code = kTimedOut;
    deliver(*raw, timedOut);
  });
  attach(*lookup, *node);
  return lookup;
}

Resolver::Node* Resolver::find(std::string name, int& recursion, Result& now) {
  uint64_t nowMs = loop_.nowMs();
  while (true) {
    auto it = nodes_.find(name);
    if (it != nodes_.end()) {
      Node& node = *it->second;
      if (node.state == Node::State::kQuerying) return &node;
      if (node.state == Node::State::kAddresses && nowMs <= node.validUntilMs) {
        node.lastUsedMs = nowMs;
        now.code = 0;
        now.addresses = rotated(node);
        return nullptr;
      }
      if (node.state == Node::State::kCname && nowMs <= node.validUntilMs) {
        node.lastUsedMs = nowMs;
        if (recursion++ >= kMaxRecursion) {
          now.code = kNxDomain;
          return nullptr;
        }
        name = *node.cname;
        continue;
      }
    }
    Node* node = startQuery(name);
    if (!node) now.code = kNxDomain;  // nginx: a name it cannot ask is not found
    return node;
  }
}

Resolver::Node* Resolver::startQuery(const std::string& name) {
  if (connections_.empty()) return nullptr;
  std::optional<std::string> a, aaaa;
  uint16_t idA = nextId(), idAaaa = nextId();
  if (options_.ipv4 && !(a = encodeQuery(idA, name, kTypeA))) return nullptr;
  if (options_.ipv6 && !(aaaa = encodeQuery(idAaaa, name, kTypeAaaa))) return nullptr;
  trim();
  std::unique_ptr<Node>& slot = nodes_[name];
  if (!slot) slot = std::make_unique<Node>();
  Node& node = *slot;
  loop_.cancelTimer(node.resendTimer);
  int delivering = node.delivering;
  std::vector<Lookup*> waiting = std::move(node.waiting);
  node = Node();
  node.delivering = delivering;
  node.waiting = std::move(waiting);
  node.name = name;
  if (a) node.a = {std::move(*a), idA, true, false};
  if (aaaa) node.aaaa = {std::move(*aaaa), idAaaa, true, false};
  node.server = nextServer_;
  nextServer_ = (nextServer_ + 1) % connections_.size();
  sendQueries(node, true);
  Node* raw = &node;
  node.resendTimer = loop_.addTimer(kResendMs, [this, raw] {
    raw->resendTimer = {0, 0};
    resend(*raw);
  });
  return &node;
}

bool Resolver::sendTo(size_t server, const std::string& query, bool tcp) {
  Connection& c = *connections_[server];
  return tcp ? c.sendTcp(query) : c.sendUdp(query);
}

void Resolver::sendQueries(Node& node, bool firstTime) {
  for (int attempt = 0; attempt < (firstTime ? 2 : 1); ++attempt) {
    bool ok = true;
    for (Node::Query* q : {&node.a, &node.aaaa}) {
      if (q->pending && !sendTo(node.server, q->bytes, q->tcp)) ok = false;
    }
    if (ok) return;
    // As nginx: a query that cannot be sent goes to the next server at once, once.
    node.server = (node.server + 1) % connections_.size();
  }
}

void Resolver::resend(Node& node) {
  if (node.waiting.empty() && !node.delivering) {
    // Nobody waits any more: the name is forgotten (nginx frees the node at its resend).
    std::string name = node.name;
    nodes_.erase(name);
    return;
  }
  node.server = (node.server + 1) % connections_.size();
  sendQueries(node, false);
  Node* raw = &node;
  node.resendTimer = loop_.addTimer(kResendMs, [this, raw] {
    raw->resendTimer = {0, 0};
    resend(*raw);
  });
}

void Resolver::attach(Lookup& lookup, Node& node) {
  lookup.node_ = &node;
  node.waiting.push_back(&lookup);
}

void Resolver::detach(Lookup& lookup) {
  if (!lookup.node_) return;
  std::vector<Lookup*>& waiting = lookup.node_->waiting;
  waiting.erase(std::remove(waiting.begin(), waiting.end(), &lookup), waiting.end());
  lookup.node_ = nullptr;
}

void Resolver::deliver(Lookup& lookup, const Result& result) {
  lookup.resolver_ = nullptr;
  loop_.cancelTimer(lookup.timer_);
  // The callback may destroy the lookup (and with it the function): it runs from a copy.
  Callback done = std::move(lookup.done_);
  if (done) done(result);
}

std::vector<Address> Resolver::rotated(Node& node) {
  std::vector<Address> out = node.addresses;
  if (out.size() > 1) {
    std::rotate(out.begin(), out.begin() + static_cast<long>(node.rotation % out.size()),
                out.end());
    ++node.rotation;
  }
  return out;
}

void Resolver::onMessage(std::string_view message, bool tcp, Connection& from) {
  std::string error;
  std::optional<ResponseHead> head = parseHead(message, tcp, error);
  if (!head) {
    logError(error + from.context());
    return;
  }
  auto it = nodes_.find(head->name);
  Node* node = it == nodes_.end() ? nullptr : it->second.get();
  bool v6 = head->type == kTypeAaaa;
  Node::Query* q = node ? (v6 ? &node->aaaa : &node->a) : nullptr;
  if (!node || node->state != Node::State::kQuerying || !q->pending) {
    logError("unexpected DNS response for " + head->name + from.context());
    return;
  }
  if (head->truncated && q->tcp) return;  // a late UDP answer: TCP's is awaited
  if (head->id != q->id) {
    logError("wrong ident " + std::to_string(head->id) + " in DNS response for " + head->name +
             ", expect " + std::to_string(q->id) + from.context());
    return;
  }
  if (head->truncated) {
    if (node->waiting.empty() && !node->delivering) {
      loop_.cancelTimer(node->resendTimer);
      nodes_.erase(it);
      return;
    }
    q->tcp = true;
    sendTo(node->server, q->bytes, true);
    loop_.cancelTimer(node->resendTimer);
    node->resendTimer = loop_.addTimer(kResendMs, [this, node] {
      node->resendTimer = {0, 0};
      resend(*node);
    });
    return;
  }
  int code = head->rcode;
  if (code == 0 && node->code) code = node->code;
  std::optional<Answers> answers;
  if (code == 0) {
    answers = parseAnswers(message, *head, error);
    if (!answers) {
      // Dropped, as nginx: the query is resent, or the waiters time out.
      logError(error + from.context());
      return;
    }
  }
  q->pending = false;
  bool otherPending = (v6 ? node->a : node->aaaa).pending;
  if (code != 0) {
    if (otherPending) {
      node->code = code;
      return;
    }
    fail(*node, code);
    return;
  }
  node->ttl = std::min(node->ttl, answers->ttl);
  (v6 ? node->v6 : node->v4) = std::move(answers->addresses);
  // As nginx, the CNAME followed is the one of the answer that came last: an empty answer
  // after a CNAME of the other type leaves the name without addresses.
  node->cname = std::move(answers->cname);
  if (otherPending) return;
  if (!node->v4.empty() || !node->v6.empty()) {
    complete(*node);
  } else if (node->cname) {
    follow(*node);
  } else {
    fail(*node, kNxDomain);
  }
}

// Hands each waiter of `node` to `each`, one at a time from the node's live list, while the
// node stays in the state it has now: a callback may resolve again (even this name, which
// makes it a query again, keeping the rest waiting for it) or destroy another waiter.
void Resolver::drain(Node& node, const std::function<void(Lookup&)>& each) {
  Node::State state = node.state;
  ++node.delivering;
  while (!node.waiting.empty() && node.state == state) {
    Lookup* lookup = node.waiting.front();
    node.waiting.erase(node.waiting.begin());
    lookup->node_ = nullptr;
    each(*lookup);
  }
  --node.delivering;
}

void Resolver::complete(Node& node) {
  loop_.cancelTimer(node.resendTimer);
  node.state = Node::State::kAddresses;
  node.addresses = std::move(node.v4);
  node.addresses.insert(node.addresses.end(), node.v6.begin(), node.v6.end());
  node.v6.clear();
  node.a.bytes.clear();
  node.aaaa.bytes.clear();
  uint64_t seconds = options_.validSeconds ? options_.validSeconds : node.ttl;
  node.validUntilMs = loop_.nowMs() + std::min<uint64_t>(seconds, 1u << 30) * 1000;
  node.lastUsedMs = loop_.nowMs();
  Result result;
  result.addresses = node.addresses;
  drain(node, [&](Lookup& lookup) { deliver(lookup, result); });
}

void Resolver::fail(Node& node, int code) {
  loop_.cancelTimer(node.resendTimer);
  node.state = Node::State::kFailed;
  Result result;
  result.code = code;
  drain(node, [&](Lookup& lookup) { deliver(lookup, result); });
  // Errors are not cached: the name is asked again by the next request.
  if (node.state == Node::State::kFailed && node.waiting.empty() && !node.delivering) {
    std::string name = node.name;
    nodes_.erase(name);
  }
}

void Resolver::follow(Node& node) {
  loop_.cancelTimer(node.resendTimer);
  node.state = Node::State::kCname;
  node.a.bytes.clear();
  node.aaaa.bytes.clear();
  uint64_t seconds = options_.validSeconds ? options_.validSeconds : node.ttl;
  node.validUntilMs = loop_.nowMs() + std::min<uint64_t>(seconds, 1u << 30) * 1000;
  node.lastUsedMs = loop_.nowMs();
  std::string target = *node.cname;
  drain(node, [&](Lookup& lookup) {
    Result now;
    if (lookup.recursion_++ >= kMaxRecursion) {
      now.code = kNxDomain;
      deliver(lookup, now);
      return;
    }
    Node* next = find(target, lookup.recursion_, now);
    if (next) {
      attach(lookup, *next);
    } else {
      deliver(lookup, now);
    }
  });
}

void Resolver::trim() {
  if (nodes_.size() < kMaxNodes) return;
  uint64_t nowMs = loop_.nowMs();
  std::vector<std::pair<uint64_t, std::string>> answered;
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    Node& node = *it->second;
    bool idle = node.state != Node::State::kQuerying && !node.delivering && node.waiting.empty();
    if (idle && (node.state == Node::State::kFailed || node.validUntilMs < nowMs)) {
      it = nodes_.erase(it);
      continue;
    }
    if (idle) answered.emplace_back(node.lastUsedMs, it->first);
    ++it;
  }
  if (nodes_.size() < kMaxNodes) return;
  // Still full of valid answers: the least recently used quarter goes.
  std::sort(answered.begin(), answered.end());
  size_t drop = std::min(answered.size(), kMaxNodes / 4);
  for (size_t i = 0; i < drop; ++i) nodes_.erase(answered[i].second);
}

}  // namespace portico::dns
