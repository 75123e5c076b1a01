// dns::Resolver on a real EventLoop against a scripted name server (a thread with blocking UDP
// and TCP sockets on one loopback port): answers cached by lower-case name, CNAMEs followed,
// errors not cached, a truncated answer asked again over TCP, a silent server timing out, and
// the lifetimes that must hold — a lookup destroyed by another's callback, a lookup that
// outlives its resolver.

#include "dns/resolver.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "core/unique_fd.h"
#include "loopback_socket.h"

namespace portico::dns {
namespace {

std::string u16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }

struct Record {
  uint16_t type;
  uint32_t ttl;
  std::string rdata;
};

// What the scripted server answers: rcode, records, truncated over UDP, or silence.
struct Script {
  int rcode = 0;
  std::vector<Record> records;
  bool truncateUdp = false;
  bool silent = false;
};

class FakeNameServer {
 public:
  FakeNameServer() {
    testing::LoopbackSocket udp = testing::bindLoopback(SOCK_DGRAM);
    port_ = udp.port;
    udp_ = std::move(udp.fd);
    tcp_ = std::move(testing::bindLoopback(SOCK_STREAM, port_).fd);  // the same port, over TCP
    ::listen(tcp_.get(), 8);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeNameServer() {
    stop_ = true;
    thread_.join();
  }

  ServerAddress address() const {
    ServerAddress s;
    auto* a = reinterpret_cast<sockaddr_in*>(&s.addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(port_);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s.length = sizeof(sockaddr_in);
    s.text = "127.0.0.1:" + std::to_string(port_);
    return s;
  }
  void set(const std::string& name, Script script) {
    std::lock_guard<std::mutex> lock(mutex_);
    scripts_[name] = std::move(script);
  }
  int queries(const std::string& name, uint16_t type, bool tcp = false) {
    std::lock_guard<std::mutex> lock(mutex_);
    return counts_[name + "/" + std::to_string(type) + (tcp ? "/tcp" : "/udp")];
  }

 private:
  std::string answer(const std::string& query, bool tcp, bool& silent) {
    size_t at = 12;
    std::string name;
    while (at < query.size() && query[at]) {
      size_t n = static_cast<uint8_t>(query[at]);
      if (!name.empty()) name += '.';
      name += query.substr(at + 1, n);
      at += 1 + n;
    }
    uint16_t type = static_cast<uint16_t>((static_cast<uint8_t>(query[at + 1]) << 8) |
                                          static_cast<uint8_t>(query[at + 2]));
    Script script;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++counts_[name + "/" + std::to_string(type) + (tcp ? "/tcp" : "/udp")];
      script = scripts_[name];
    }
    silent = script.silent;
    uint16_t flags = static_cast<uint16_t>(0x8180 | script.rcode);
    if (script.truncateUdp && !tcp) flags |= 0x0200;
    std::string records;
    int count = 0;
    for (const Record& r : script.records) {
      if ((r.type == kTypeA || r.type == kTypeAaaa) && r.type != type) continue;
      records += u16(0xc00c) + u16(r.type) + u16(1) + u16(static_cast<uint16_t>(r.ttl >> 16)) +
                 u16(r.ttl & 0xffff) + u16(static_cast<uint16_t>(r.rdata.size())) + r.rdata;
      ++count;
    }
    return query.substr(0, 2) + u16(flags) + u16(1) + u16(static_cast<uint16_t>(count)) + u16(0) +
           u16(0) + query.substr(12, at + 5 - 12) + records;
  }

  void serve() {
    char buffer[65536];
    while (!stop_) {
      pollfd fds[2] = {{udp_.get(), POLLIN, 0}, {tcp_.get(), POLLIN, 0}};
      if (::poll(fds, 2, 50) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        sockaddr_in peer{};
        socklen_t len = sizeof peer;
        ssize_t n = ::recvfrom(udp_.get(), buffer, sizeof buffer, 0,
                               reinterpret_cast<sockaddr*>(&peer), &len);
        bool silent = false;
        std::string reply = answer(std::string(buffer, static_cast<size_t>(n)), false, silent);
        if (!silent) {
          ::sendto(udp_.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer),
                   len);
        }
      }
      if (fds[1].revents & POLLIN) {
        UniqueFd conn(::accept(tcp_.get(), nullptr, nullptr));
        std::string in;
        while (!stop_) {
          pollfd p{conn.get(), POLLIN, 0};
          if (::poll(&p, 1, 200) <= 0) break;
          ssize_t n = ::recv(conn.get(), buffer, sizeof buffer, 0);
          if (n <= 0) break;
          in.append(buffer, static_cast<size_t>(n));
          while (in.size() >= 2) {
            size_t length = (static_cast<uint8_t>(in[0]) << 8) | static_cast<uint8_t>(in[1]);
            if (in.size() < 2 + length) break;
            bool silent = false;
            std::string reply = answer(in.substr(2, length), true, silent);
            in.erase(0, 2 + length);
            if (!silent) {
              std::string framed = u16(static_cast<uint16_t>(reply.size())) + reply;
              ::send(conn.get(), framed.data(), framed.size(), MSG_NOSIGNAL);
            }
          }
        }
      }
    }
  }

  UniqueFd udp_, tcp_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::map<std::string, Script> scripts_;
  std::map<std::string, int> counts_;
};

std::string v4(const char* text) {
  in_addr a{};
  ::inet_pton(AF_INET, text, &a);
  return std::string(reinterpret_cast<const char*>(&a), 4);
}

std::string nameData(const std::string& dotted) {
  std::string out;
  size_t start = 0;
  while (start <= dotted.size()) {
    size_t dot = dotted.find('.', start);
    if (dot == std::string::npos) dot = dotted.size();
    out += static_cast<char>(dot - start);
    out += dotted.substr(start, dot - start);
    start = dot + 1;
  }
  return out + '\0';
}

class ResolverTest : public ::testing::Test {
 protected:
  ResolverTest() {
    loop_.updateTime();
    guard_ = loop_.addTimer(5000, [this] { loop_.stop(); });
  }
  std::unique_ptr<Resolver> make(ResolverOptions options = {}) {
    options.servers = {server_.address()};
    return std::make_unique<Resolver>(loop_, std::move(options));
  }
  // Resolves `names` one after the other (each once the previous one is answered) in one run of
  // the loop (a stopped loop stays stopped); the results, and which came at once (cached).
  std::vector<Result> resolveInTurn(Resolver& r, const std::vector<std::string>& names,
                                    uint64_t timeoutMs = 2000,
                                    std::vector<bool>* immediate = nullptr) {
    std::vector<Result> results;
    std::unique_ptr<Resolver::Lookup> lookup;
    std::function<void()> next = [&] {
      while (results.size() < names.size()) {
        Result now;
        lookup = r.resolve(names[results.size()], timeoutMs, [&](const Result& got) {
          results.push_back(got);
          if (immediate) immediate->push_back(false);
          loop_.defer(next);
        }, now);
        if (lookup) return;
        results.push_back(now);
        if (immediate) immediate->push_back(true);
      }
      loop_.stop();
    };
    next();
    if (results.size() < names.size()) loop_.run();
    return results;
  }

  event::EventLoop loop_;
  event::TimerId guard_;
  FakeNameServer server_;
};

TEST_F(ResolverTest, AnswersAreCachedByLowerCaseName) {
  server_.set("a.test", {0, {{kTypeA, 3600, v4("127.0.0.9")}}});
  auto r = make();
  std::vector<bool> immediate;
  std::vector<Result> results = resolveInTurn(*r, {"a.test", "A.Test"}, 2000, &immediate);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(immediate, (std::vector<bool>{false, true}));
  ASSERT_EQ(results[0].code, 0);
  ASSERT_EQ(results[0].addresses.size(), 1u);
  EXPECT_EQ(results[0].addresses[0].bytes[3], 9);
  EXPECT_EQ(results[1].addresses, results[0].addresses);
  EXPECT_EQ(server_.queries("a.test", kTypeA), 1);
  EXPECT_EQ(server_.queries("a.test", kTypeAaaa), 1);
}

TEST_F(ResolverTest, CnameFollowedAndErrorsNotCached) {
  server_.set("alias.test", {0, {{kTypeCname, 3600, nameData("b.test")}}});
  server_.set("b.test", {0, {{kTypeA, 3600, v4("10.0.0.1")}, {kTypeA, 3600, v4("10.0.0.2")}}});
  server_.set("bad.test", {kServFail, {}});
  ResolverOptions options;
  options.ipv6 = false;
  auto r = make(options);
  std::vector<Result> results =
      resolveInTurn(*r, {"alias.test", "bad.test", "bad.test", "nothing.test", "a..test"});
  ASSERT_EQ(results.size(), 5u);
  ASSERT_EQ(results[0].code, 0);
  EXPECT_EQ(results[0].addresses.size(), 2u);
  EXPECT_EQ(server_.queries("b.test", kTypeAaaa), 0);  // ipv6=off
  EXPECT_EQ(results[1].code, kServFail);
  EXPECT_EQ(results[2].code, kServFail);
  EXPECT_EQ(server_.queries("bad.test", kTypeA), 2);
  EXPECT_EQ(results[3].code, kNxDomain);  // no records at all
  EXPECT_EQ(results[4].code, kNxDomain);  // not even asked
}

TEST_F(ResolverTest, TruncatedAnswerAskedAgainOverTcp) {
  server_.set("big.test", {0, {{kTypeA, 3600, v4("10.1.1.1")}}, true});
  ResolverOptions options;
  options.ipv6 = false;
  auto r = make(options);
  std::vector<Result> results = resolveInTurn(*r, {"big.test"});
  ASSERT_EQ(results.size(), 1u);
  ASSERT_EQ(results[0].code, 0);
  EXPECT_EQ(results[0].addresses[0].bytes[0], 10);
  EXPECT_EQ(server_.queries("big.test", kTypeA, false), 1);
  EXPECT_EQ(server_.queries("big.test", kTypeA, true), 1);
}

TEST_F(ResolverTest, SilentServerTimesOut) {
  Script silent;
  silent.silent = true;
  server_.set("quiet.test", silent);
  auto r = make();
  std::vector<Result> results = resolveInTurn(*r, {"quiet.test"}, 200);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].code, kTimedOut);
}

TEST_F(ResolverTest, LookupDestroyedByAnotherCallbackAndOutlivingTheResolver) {
  server_.set("a.test", {0, {{kTypeA, 3600, v4("127.0.0.9")}}});
  auto r = make();
  std::unique_ptr<Resolver::Lookup> second;
  int calls = 0;
  Result now;
  auto first = r->resolve("a.test", 2000, [&](const Result&) {
    ++calls;
    second.reset();  // the other waiter goes away while waiters are being told
    loop_.stop();
  }, now);
  second = r->resolve("a.test", 2000, [&](const Result&) { ++calls; }, now);
  ASSERT_TRUE(first && second);
  loop_.run();
  EXPECT_EQ(calls, 1);
  // A lookup still waiting when its resolver goes.
  Script silent;
  silent.silent = true;
  server_.set("quiet.test", silent);
  auto pending = r->resolve("quiet.test", 2000, [&](const Result&) { ++calls; }, now);
  ASSERT_TRUE(pending);
  r.reset();
  pending.reset();
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace portico::dns
