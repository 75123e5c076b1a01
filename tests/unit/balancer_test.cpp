// Peer selection of upstreams (src/upstream/balancer.*): nginx 1.22's smooth weighted round
// robin, passive health (max_fails / fail_timeout), down, backup, max_conns, least_conn,
// ip_hash, hash and consistent hash.

#include "upstream/balancer.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <map>
#include <string>

#include "config/upstream_address.h"
#include "upstream/crc32.h"

namespace portico {
namespace {

using config::UpstreamServerSpec;
using config::UpstreamSpec;
using upstream::Attempt;
using upstream::Balancer;
using upstream::Clock;
using upstream::Peer;
using upstream::PickKey;

UpstreamServerSpec server(const std::string& address, int weight = 1) {
  UpstreamServerSpec s;
  s.name = address;
  std::vector<config::UpstreamAddress> out;
  EXPECT_FALSE(config::resolveUpstreamAddress(address, 80, out)) << address;
  s.addresses = out;
  s.weight = weight;
  return s;
}

Clock::time_point at(int seconds) { return Clock::time_point{} + std::chrono::seconds(1000000 + seconds); }

std::string name(const Peer* peer) { return peer == nullptr ? "-" : peer->address->text; }

// One request: pick, release as succeeded, the name.
std::string once(Balancer& b, const PickKey& key = {}, Clock::time_point now = at(0)) {
  Attempt a;
  const Peer* p = b.pick(a, key, now);
  if (p != nullptr) b.release(p, false, now);
  return name(p);
}

std::string letter(const std::string& text) {
  static const std::map<std::string, std::string> kLetters = {
      {"127.0.0.1:8081", "a"}, {"127.0.0.1:8082", "b"}, {"127.0.0.1:8083", "c"},
      {"127.0.0.1:8084", "d"}, {"127.0.0.1:8085", "e"}, {"-", "-"}};
  auto it = kLetters.find(text);
  return it == kLetters.end() ? text : it->second;
}

std::string sequence(Balancer& b, int n, const PickKey& key = {}) {
  std::string out;
  for (int i = 0; i < n; ++i) out += letter(once(b, key));
  return out;
}

TEST(Crc32, MatchesTheStandardCheckValue) {
  EXPECT_EQ(upstream::crc32("123456789"), 0xcbf43926u);
  EXPECT_EQ(upstream::crc32(""), 0u);
}

TEST(RoundRobin, SmoothWeightedAsNginx) {
  UpstreamSpec spec;
  spec.servers = {server("127.0.0.1:8081", 5), server("127.0.0.1:8082"), server("127.0.0.1:8083")};
  auto b = Balancer::create(spec);
  EXPECT_EQ(b->peerCount(), 3u);
  EXPECT_EQ(sequence(*b, 14), "aabacaaaabacaa");
}

TEST(RoundRobin, EqualWeightsAlternate) {
  UpstreamSpec spec;
  spec.servers = {server("127.0.0.1:8081"), server("127.0.0.1:8082")};
  auto b = Balancer::create(spec);
  EXPECT_EQ(sequence(*b, 6), "ababab");
}

TEST(RoundRobin, OneRequestNeverTriesAPeerTwice) {
  UpstreamSpec spec;
  spec.servers = {server("127.0.0.1:8081"), server("127.0.0.1:8082"), server("127.0.0.1:8083")};
  auto b = Balancer::create(spec);
  Attempt a;
  std::string seen;
  for (int i = 0; i < 3; ++i) {
    const Peer* p = b->pick(a, {}, at(0));
    ASSERT_NE(p, nullptr);
    seen += letter(name(p));
    b->release(p, false, at(0));
  }
  EXPECT_EQ(seen, "abc");
  EXPECT_EQ(a.tries, 3u);
  EXPECT_EQ(b->pick(a, {}, at(0)), nullptr);
}

TEST(RoundRobin, FailedPeerIsSkippedForFailTimeoutThenRetried) {
  UpstreamSpec spec;
  spec.servers = {server("127.0.0.1:8081"), server("127.0.0.1:8082")};
  spec.servers[0].failTimeoutSeconds = 10;
  auto b = Balancer::create(spec);
  Attempt a;
  const Peer* p = b->pick(a, {}, at(0));
  ASSERT_EQ(letter(name(p)), "a");
  b->release(p, true, at(0));  // max_fails=1: a is out for 10 s
  const Peer* q = b->pick(a, {}, at(0));
  EXPECT_EQ(letter(name(q)), "b");
  b->release(q, false, at(0));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(letter(once(*b, {}, at(5))), "b");
  EXPECT_EQ(letter(once(*b, {}, at(10))), "b");  // still within fail_timeout (<=)
  // After fail_timeout a gets a chance again; its success clears the failure.
  std::string later;
  for (int i = 0; i < 4; ++i) later += letter(once(*b, {}, at(11)));
  EXPECT_NE(later.find('a'), std::string::npos);
  EXPECT_EQ(later.find("aa"), std::string::npos);
}

TEST(RoundRobin, FailureAfterRecoveryDisablesAgainAtOnce) {
  UpstreamSpec spec;
  spec.servers = {server("127.0.0.1:8081"), server("127.0.0.1:8082")};
  auto b = Balancer::create(spec);
  Attempt a;
  const Peer* p = b->pick(a, {}, at(0));
  b->release(p, true, at(0));
  // At 20 s, a is tried again (checked moves) and fails: out for another fail_timeout.
  std::string seen;
  for (int i = 0; i < 4; ++i) {
    Attempt r;
    const Peer* q = b->pick(r, {}, at(20));
    seen += letter(name(q));
    b->release(q, letter(name(q)) == "a", at(20));
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 'a'), 1) << seen;
}

TEST(RoundRobin, MaxFailsCountsFailuresWithinTheWindow) {
  UpstreamSpec spec;
  spec.servers = {server("127.0.0.1:8081"), server("127.0.0.1:8082")};
  spec.servers[0].maxFails = 2;
  auto b = Balancer::create(spec);
  // One failure of a: still used (max_fails=2).
  Attempt a;
  const Peer* p = b->pick(a, {}, at(0));
  ASSERT_EQ(letter(name(p)), "a");
  b->release(p, true, at(0));
  std::string seen = sequence(*b, 6);
  EXPECT_NE(seen.find('a'), std::string::npos) << seen;
}

TEST(RoundRobin, MaxFailsZeroNeverMarksFailed) {
  UpstreamSpec spec;
  spec.servers = {server("127.0.0.1:8081"), server("127.0.0.1:8082")};
  spec.servers[0].maxFails = 0;
  auto b = Balancer::create(spec);
  for (int i = 0; i < 3; ++i) {
    Attempt a;
    const Peer* p = b->pick(a, {}, at(0));
    b->release(p, true, at(0));
  }
  EXPECT_NE(sequence(*b, 4).find('a'), std::string::npos);
}

TEST(RoundRobin, AllFailedGivesNoLiveUpstreams) {
  UpstreamSpec spec;
  spec.servers = {server("127.0.0.1:8081"), server("127.0.0.1:8082")};
  auto b = Balancer::create(spec);
  Attempt a;
  b->release(b->pick(a, {}, at(0)), true, at(0));
  b->release(b->pick(a, {}, at(0)), true, at(0));
  EXPECT_EQ(b->pick(a, {}, at(0)), nullptr);
  EXPECT_EQ(once(*b, {}, at(1)), "-");
  EXPECT_NE(once(*b, {}, at(11)), "-");
}

TEST(RoundRobin, ALonePeerIsUsedEvenWhenFailed) {
  UpstreamSpec spec;
  spec.servers = {server("127.0.0.1:8081")};
  auto b = Balancer::create(spec);
  Attempt a;
  const Peer* p = b->pick(a, {}, at(0));
  ASSERT_NE(p, nullptr);
  b->release(p, true, at(0));
  EXPECT_EQ(b->pick(a, {}, at(0)), nullptr);  // but never twice in one request
  EXPECT_EQ(letter(once(*b, {}, at(1))), "a");
}

TEST(RoundRobin, DownPeersAreNeverPicked) {
  UpstreamSpec spec;
  spec.servers = {server("127.0.0.1:8081"), server("127.0.0.1:8082"), server("127.0.0.1:8083")};
  spec.servers[1].down = true;
  auto b = Balancer::create(spec);
  EXPECT_EQ(sequence(*b, 6), "acacac");
  UpstreamSpec lone;
  lone.servers = {server("127.0.0.1:8081")};
  lone.servers[0].down = true;
  auto c = Balancer::create(lone);
  EXPECT_EQ(once(*c), "-");
}

TEST(RoundRobin, BackupsOnlyWhenThePrimariesGiveNothing) {
  UpstreamSpec spec;
  spec.servers = {server("127.0.0.1:8081"), server("127.0.0.1:8082"), server("127.0.0.1:8083")};
  spec.servers[2].backup = true;
  auto b = Balancer::create(spec);
  EXPECT_EQ(b->peerCount(), 3u);
  EXPECT_EQ(sequence(*b, 6), "ababab");
  // One request whose primaries both fail ends on the backup.
  Attempt a;
  std::string seen;
  for (const Peer* p = b->pick(a, {}, at(0)); p != nullptr; p = b->pick(a, {}, at(0))) {
    seen += letter(name(p));
    b->release(p, !p->backup, at(0));
  }
  EXPECT_EQ(seen, "abc");
  // The primaries are out for fail_timeout: the backup serves; then the primaries again.
  EXPECT_EQ(sequence(*b, 3), "ccc");
  EXPECT_NE(letter(once(*b, {}, at(11))), "c");
}

TEST(RoundRobin, MaxConnsLimitsConcurrentPicks) {
  UpstreamSpec spec;
  spec.servers = {server("127.0.0.1:8081"), server("127.0.0.1:8082")};
  spec.servers[0].maxConns = 1;
  spec.servers[1].maxConns = 1;
  auto b = Balancer::create(spec);
  Attempt r1, r2, r3;
  const Peer* p1 = b->pick(r1, {}, at(0));
  const Peer* p2 = b->pick(r2, {}, at(0));
  ASSERT_NE(p1, nullptr);
  ASSERT_NE(p2, nullptr);
  EXPECT_NE(p1, p2);
  EXPECT_EQ(b->pick(r3, {}, at(0)), nullptr);
  b->release(p1, false, at(0));
  Attempt r4;
  EXPECT_EQ(b->pick(r4, {}, at(0)), p1);
}

TEST(RoundRobin, MaxConnsOfALonePeer) {
  UpstreamSpec spec;
  spec.servers = {server("127.0.0.1:8081")};
  spec.servers[0].maxConns = 1;
  auto b = Balancer::create(spec);
  Attempt r1, r2;
  const Peer* p = b->pick(r1, {}, at(0));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(b->pick(r2, {}, at(0)), nullptr);
  b->release(p, false, at(0));
  Attempt r3;
  EXPECT_NE(b->pick(r3, {}, at(0)), nullptr);
}

TEST(RoundRobin, FailureLowersEffectiveWeightWhichRecovers) {
  UpstreamSpec spec;
  spec.servers = {server("127.0.0.1:8081", 4), server("127.0.0.1:8082", 4)};
  spec.servers[0].maxFails = 4;  // each failure costs weight / max_fails = 1
  auto b = Balancer::create(spec);
  for (int i = 0; i < 3; ++i) {
    // Fail a three times (fails < max_fails: still usable, effective weight 4 -> 1).
    for (;;) {
      Attempt a;
      const Peer* p = b->pick(a, {}, at(0));
      bool isA = letter(name(p)) == "a";
      b->release(p, isA, at(0));
      if (isA) break;
    }
  }
  // Right after, b is preferred; the effective weight of a climbs back by one a pick.
  std::string seen = sequence(*b, 4);
  EXPECT_EQ(seen, "baba");  // effective weight of a: 1, then +1 at each pick it is considered
  std::string later = sequence(*b, 16);
  EXPECT_EQ(std::count(later.begin(), later.end(), 'a'), 8) << later;
}


// ---- the other methods; the sequences marked "nginx" were recorded from Debian's nginx 1.22
// with the same servers (ports 27181-27184: the consistent hash hashes the server's name) ----

UpstreamSpec threeOn(UpstreamSpec::Method method, int thirdWeight = 1) {
  UpstreamSpec spec;
  spec.method = method;
  spec.servers = {server("127.0.0.1:27181"), server("127.0.0.1:27182"),
                  server("127.0.0.1:27183", thirdWeight)};
  return spec;
}

std::string digit(const Peer* p) {
  return p == nullptr ? "-" : std::string(1, p->address->text.back());
}

std::string byKeys(Balancer& b, int from, int to) {
  std::string out;
  for (int k = from; k <= to; ++k) {
    std::string key = std::to_string(k);
    PickKey pk;
    pk.hashKey = key;
    Attempt a;
    const Peer* p = b.pick(a, pk, at(0));
    out += digit(p);
    if (p != nullptr) b.release(p, false, at(0));
  }
  return out;
}

TEST(Hash, MapsKeysAsNginx) {
  UpstreamSpec spec = threeOn(UpstreamSpec::Method::kHash);
  spec.hashKey = "$arg_a";
  auto b = Balancer::create(spec);
  EXPECT_EQ(byKeys(*b, 1, 30), "232121133131332312232231222231");  // nginx
  EXPECT_EQ(byKeys(*b, 1, 30), "232121133131332312232231222231");  // stable
}

TEST(Hash, ConsistentMapsKeysAsNginx) {
  UpstreamSpec spec = threeOn(UpstreamSpec::Method::kHash);
  spec.hashConsistent = true;
  auto b = Balancer::create(spec);
  EXPECT_EQ(byKeys(*b, 1, 30), "121233223111221211233113333323");  // nginx
  UpstreamSpec weighted = threeOn(UpstreamSpec::Method::kHash, 10);
  weighted.hashConsistent = true;
  auto w = Balancer::create(weighted);
  EXPECT_EQ(byKeys(*w, 1, 30), "333333323311323213333113333333");  // nginx
}

TEST(Hash, EmptyKeyFallsBackToRoundRobin) {
  for (bool consistent : {false, true}) {
    UpstreamSpec spec = threeOn(UpstreamSpec::Method::kHash);
    spec.hashConsistent = consistent;
    auto b = Balancer::create(spec);
    EXPECT_EQ(sequence(*b, 6), "127.0.0.1:27181127.0.0.1:27182127.0.0.1:27183"
                               "127.0.0.1:27181127.0.0.1:27182127.0.0.1:27183");
  }
}

// upstream_hash.t's property: with one of three servers removed, consistent hashing moves only
// the keys of the removed one (about a third); plain hashing moves others too.
TEST(Hash, RemovingAServerMovesOnlyItsKeysWhenConsistent) {
  for (bool consistent : {true, false}) {
    UpstreamSpec three = threeOn(UpstreamSpec::Method::kHash);
    three.hashConsistent = consistent;
    UpstreamSpec two = three;
    two.servers.erase(two.servers.begin() + 1);
    auto b3 = Balancer::create(three);
    auto b2 = Balancer::create(two);
    std::string with = byKeys(*b3, 1, 3000);
    std::string without = byKeys(*b2, 1, 3000);
    int moved = 0, movedOthers = 0;
    for (size_t i = 0; i < with.size(); ++i) {
      if (with[i] == without[i]) continue;
      ++moved;
      if (with[i] != '2') ++movedOthers;
    }
    if (consistent) {
      EXPECT_EQ(movedOthers, 0);
      EXPECT_GT(moved, 3000 / 3 - 300);
      EXPECT_LT(moved, 3000 / 3 + 300);
    } else {
      EXPECT_GT(movedOthers, 0);
    }
  }
}

TEST(Hash, AFailedPeerSendsItsKeysElsewhere) {
  for (bool consistent : {false, true}) {
    UpstreamSpec spec;
    spec.method = UpstreamSpec::Method::kHash;
    spec.hashConsistent = consistent;
    spec.servers = {server("127.0.0.1:27181"), server("127.0.0.1:27184")};
    auto b = Balancer::create(spec);
    // Every request whose key lands on 27184 fails there and goes on to 27181 (upstream_hash.t's
    // "all hashed peers - bad").
    for (int k = 1; k <= 20; ++k) {
      std::string key = std::to_string(k);
      PickKey pk;
      pk.hashKey = key;
      Attempt a;
      const Peer* p = b->pick(a, pk, at(0));
      ASSERT_NE(p, nullptr);
      if (digit(p) == "4") {
        b->release(p, true, at(0));
        p = b->pick(a, pk, at(0));
        ASSERT_NE(p, nullptr);
      }
      EXPECT_EQ(digit(p), "1");
      b->release(p, false, at(0));
    }
    // Both failed within fail_timeout: no live upstreams.
    PickKey pk;
    pk.hashKey = "7";
    Attempt a;
    const Peer* p = b->pick(a, pk, at(1));
    ASSERT_NE(p, nullptr);
    b->release(p, true, at(1));
    EXPECT_EQ(b->pick(a, pk, at(1)), nullptr);
  }
}

sockaddr_storage v4(const char* text) {
  sockaddr_storage ss{};
  auto* in = reinterpret_cast<sockaddr_in*>(&ss);
  in->sin_family = AF_INET;
  inet_pton(AF_INET, text, &in->sin_addr);
  return ss;
}

sockaddr_storage v6(const char* text) {
  sockaddr_storage ss{};
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  in6->sin6_family = AF_INET6;
  inet_pton(AF_INET6, text, &in6->sin6_addr);
  return ss;
}

std::string ipHashOf(Balancer& b, const sockaddr_storage& client) {
  PickKey pk;
  pk.client = &client;
  Attempt a;
  const Peer* p = b.pick(a, pk, at(0));
  if (p != nullptr) b.release(p, false, at(0));
  return digit(p);
}

TEST(IpHash, MapsClientsAsNginxByTheirSlash24) {
  UpstreamSpec spec = threeOn(UpstreamSpec::Method::kIpHash);  // outlives the balancer
  auto b = Balancer::create(spec);
  std::string seen;
  for (int k = 0; k <= 15; ++k) {
    std::string ip = "127." + std::to_string(k) + ".7.9";
    seen += ipHashOf(*b, v4(ip.c_str()));
  }
  EXPECT_EQ(seen, "1321321321321321");  // nginx
  for (const char* ip : {"127.3.7.1", "127.3.7.50", "127.3.7.200"}) {
    EXPECT_EQ(ipHashOf(*b, v4(ip)), "1") << ip;  // nginx: the same /24, the same server
  }
}

TEST(IpHash, IPv6HashesTheWholeAddress) {
  UpstreamSpec spec = threeOn(UpstreamSpec::Method::kIpHash);  // outlives the balancer
  auto b = Balancer::create(spec);
  std::map<std::string, int> count;
  for (int k = 0; k < 60; ++k) {
    std::string ip = "2001:db8::" + std::to_string(k);
    std::string first = ipHashOf(*b, v6(ip.c_str()));
    EXPECT_EQ(ipHashOf(*b, v6(ip.c_str())), first);
    ++count[first];
  }
  EXPECT_EQ(count.size(), 3u);  // the last group differs: spread over every server
}

TEST(IpHash, AFailedPeerMovesItsClientsAndTheyComeBack) {
  UpstreamSpec spec = threeOn(UpstreamSpec::Method::kIpHash);  // outlives the balancer
  auto b = Balancer::create(spec);
  sockaddr_storage client = v4("127.3.7.9");
  PickKey pk;
  pk.client = &client;
  Attempt a;
  const Peer* p = b->pick(a, pk, at(0));
  ASSERT_EQ(digit(p), "1");
  b->release(p, true, at(0));
  const Peer* q = b->pick(a, pk, at(0));
  ASSERT_NE(q, nullptr);
  EXPECT_NE(digit(q), "1");
  b->release(q, false, at(0));
  std::string during = ipHashOf(*b, client);
  EXPECT_NE(during, "1");
  EXPECT_EQ(ipHashOf(*b, client), during);
  // After fail_timeout the client is back on its server.
  Attempt later;
  const Peer* r = b->pick(later, pk, at(11));
  EXPECT_EQ(digit(r), "1");
}

TEST(IpHash, DownServersKeepTheOthersMapping) {
  UpstreamSpec spec = threeOn(UpstreamSpec::Method::kIpHash);
  spec.servers[1].down = true;  // nginx: mark down instead of removing, to keep the hashing
  auto b = Balancer::create(spec);
  std::string seen;
  for (int k = 0; k <= 15; ++k) {
    std::string ip = "127." + std::to_string(k) + ".7.9";
    seen += ipHashOf(*b, v4(ip.c_str()));
  }
  for (size_t i = 0; i < seen.size(); ++i) {
    char before = "1321321321321321"[i];
    if (before != '2') {
      EXPECT_EQ(seen[i], before) << i;
    } else {
      EXPECT_NE(seen[i], '2') << i;
    }
  }
}

TEST(LeastConn, PicksTheFewestConnectionsPerWeight) {
  UpstreamSpec spec;
  spec.method = UpstreamSpec::Method::kLeastConn;
  spec.servers = {server("127.0.0.1:8081"), server("127.0.0.1:8082"), server("127.0.0.1:8083", 2)};
  auto b = Balancer::create(spec);
  // Held connections: each pick goes where conns/weight is least; ties by weighted round robin.
  std::vector<const Peer*> held;
  std::string seen;
  for (int i = 0; i < 8; ++i) {
    Attempt a;
    const Peer* p = b->pick(a, {}, at(0));
    ASSERT_NE(p, nullptr);
    held.push_back(p);
    seen += letter(name(p));
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 'c'), 4) << seen;
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 'a'), 2) << seen;
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 'b'), 2) << seen;
  // Releasing b's two connections makes b the least loaded.
  for (const Peer* p : held) {
    if (letter(name(p)) == "b") b->release(p, false, at(0));
  }
  Attempt a;
  EXPECT_EQ(letter(name(b->pick(a, {}, at(0)))), "b");
}

TEST(LeastConn, WithoutLoadItIsRoundRobin) {
  UpstreamSpec spec;
  spec.method = UpstreamSpec::Method::kLeastConn;
  spec.servers = {server("127.0.0.1:8081"), server("127.0.0.1:8082")};
  auto b = Balancer::create(spec);
  EXPECT_EQ(sequence(*b, 6), "ababab");  // upstream_least_conn.t's "balanced"
}

TEST(LeastConn, BackupsAndFailures) {
  UpstreamSpec spec;
  spec.method = UpstreamSpec::Method::kLeastConn;
  spec.servers = {server("127.0.0.1:8081"), server("127.0.0.1:8082")};
  spec.servers[1].backup = true;
  auto b = Balancer::create(spec);
  EXPECT_EQ(sequence(*b, 3), "aaa");
  Attempt a;
  b->release(b->pick(a, {}, at(0)), true, at(0));
  EXPECT_EQ(letter(name(b->pick(a, {}, at(0)))), "b");
  EXPECT_EQ(sequence(*b, 2), "bb");
}


// upstream_max_conns.t: picks while every earlier request still holds its connection.
std::string held(Balancer& b, int n, const sockaddr_storage* client = nullptr,
                 std::string_view key = {}) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    PickKey pk;
    pk.client = client;
    pk.hashKey = key;
    Attempt a;
    out += letter(name(b.pick(a, pk, at(0))));
  }
  return out;
}

TEST(MaxConns, AsUpstreamMaxConnsT) {
  using M = UpstreamSpec::Method;
  auto make = [](M method, std::vector<std::pair<int, bool>> lines) {
    UpstreamSpec spec;
    spec.method = method;
    int port = 8081;
    for (auto [maxConns, backup] : lines) {
      spec.servers.push_back(server("127.0.0.1:" + std::to_string(port++)));
      spec.servers.back().maxConns = maxConns;
      spec.servers.back().backup = backup;
    }
    return spec;
  };
  EXPECT_EQ(held(*Balancer::create(make(M::kRoundRobin, {{3, false}})), 4), "aaa-");  // single
  EXPECT_EQ(held(*Balancer::create(make(M::kRoundRobin, {{2, false}, {0, true}})), 6), "aabbbb");
  EXPECT_EQ(held(*Balancer::create(make(M::kRoundRobin, {{2, false}, {3, true}})), 6), "aabbb-");
  EXPECT_EQ(held(*Balancer::create(make(M::kRoundRobin, {{1, false}, {1, false}})), 4), "ab--");
  EXPECT_EQ(held(*Balancer::create(make(M::kLeastConn, {{2, false}, {0, true}})), 6), "aabbbb");
  EXPECT_EQ(held(*Balancer::create(make(M::kLeastConn, {{2, false}, {3, true}})), 6), "aabbb-");
  std::string lc = held(*Balancer::create(make(M::kLeastConn, {{1, false}, {0, false}})), 4);
  EXPECT_EQ(std::count(lc.begin(), lc.end(), 'a'), 1) << lc;
  sockaddr_storage client = v4("127.0.0.1");
  for (M method : {M::kIpHash, M::kHash}) {
    for (bool consistent : {false, true}) {
      if (method == M::kIpHash && consistent) continue;
      UpstreamSpec spec = make(method, {{1, false}, {2, false}});
      spec.hashConsistent = consistent;
      std::string seen = held(*Balancer::create(spec), 4, &client, "127.0.0.1");
      EXPECT_EQ(std::count(seen.begin(), seen.end(), 'a'), 1) << seen;
      EXPECT_EQ(std::count(seen.begin(), seen.end(), 'b'), 2) << seen;
    }
  }
}


// upstream.t "failures": max_fails=3 fail_timeout=10s, the first server fails every third
// request it gets; a success does not clear earlier failures within the window, so after its
// ninth request it is out: 6 answers from it, 24 from the other.
TEST(RoundRobin, FailuresAsUpstreamT) {
  UpstreamSpec spec;
  spec.servers = {server("127.0.0.1:8081"), server("127.0.0.1:8082")};
  for (auto& s : spec.servers) {
    s.maxFails = 3;
    s.failTimeoutSeconds = 10;
  }
  auto b = Balancer::create(spec);
  int gotA = 0, answersA = 0, answersB = 0;
  for (int i = 0; i < 30; ++i) {
    Attempt a;
    for (const Peer* p = b->pick(a, {}, at(0)); p != nullptr; p = b->pick(a, {}, at(0))) {
      if (letter(name(p)) == "a") {
        bool fail = ++gotA % 3 == 0;
        b->release(p, fail, at(0));
        if (fail) continue;  // proxy_next_upstream error
        ++answersA;
      } else {
        b->release(p, false, at(0));
        ++answersB;
      }
      break;
    }
  }
  EXPECT_EQ(answersA, 6);
  EXPECT_EQ(answersB, 24);
}

TEST(PeerSet, InPlaceUpTo64PeersAndBeyond) {
  for (size_t n : {3, 64, 65, 130}) {
    upstream::PeerSet set;
    set.reset(n);
    EXPECT_EQ(set.size(), n);
    for (size_t i = 0; i < n; ++i) EXPECT_FALSE(set.contains(i));
    set.insert(0);
    set.insert(n - 1);
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(set.contains(i), i == 0 || i == n - 1) << n << " " << i;
    set.reset(n);
    EXPECT_FALSE(set.contains(n - 1));
  }
}

}  // namespace
}  // namespace portico
