#include "upstream/balancer.h"

#include <netinet/in.h>

#include <algorithm>
#include <string>

#include "core/ascii.h"
#include "upstream/crc32.h"

// A faithful port of nginx 1.22's peer selection: ngx_http_upstream_round_robin.c (smooth
// weighted round robin, passive health, backups), ngx_http_upstream_least_conn_module.c,
// ngx_http_upstream_ip_hash_module.c and ngx_http_upstream_hash_module.c (hash and ketama
// consistent hash). Times are whole seconds, as nginx's ngx_time().

namespace portico::upstream {
namespace {

using Method = config::UpstreamSpec::Method;

// One peer's configuration and state (nginx's ngx_http_upstream_rr_peer_t).
struct PeerState {
  Peer peer;
  const std::string* server = nullptr;  // the server line's name, for the consistent hash
  int weight = 1;
  int effectiveWeight = 1;
  int currentWeight = 0;
  int maxFails = 1;
  int64_t failTimeout = 10;
  int maxConns = 0;
  bool down = false;
  int conns = 0;
  int fails = 0;
  int64_t accessed = 0;
  int64_t checked = 0;
};

// A range of the peers: the primaries or the backups (nginx's ngx_http_upstream_rr_peers_t).
struct PeerRange {
  size_t begin = 0;
  size_t end = 0;
  int totalWeight = 0;
  size_t size() const { return end - begin; }
};

// One point of the consistent hash ring.
struct ChashPoint {
  uint32_t hash;
  const std::string* server;
};

int64_t seconds(Clock::time_point now) {
  return std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
}

// Every method of nginx in one class: they share the peers and the round robin they fall back
// to. Owned by the upstream engine, one per upstream per worker; loop thread.
class NginxBalancer final : public Balancer {
 public:
  explicit NginxBalancer(const config::UpstreamSpec& spec) : method_(spec.method) {
    consistent_ = spec.method == Method::kHash && spec.hashConsistent;
    for (int pass = 0; pass < 2; ++pass) {
      PeerRange& range = pass == 0 ? primaries_ : backups_;
      range.begin = peers_.size();
      for (const auto& server : spec.servers) {
        if (server.backup != (pass == 1)) continue;
        for (const auto& address : server.addresses) {
          PeerState state;
          state.peer.address = &address;
          state.peer.index = peers_.size();
          state.peer.backup = server.backup;
          state.server = &server.name;
          state.weight = std::max(1, server.weight);
          state.effectiveWeight = state.weight;
          state.maxFails = server.maxFails;
          state.failTimeout = server.failTimeoutSeconds;
          state.maxConns = server.maxConns;
          state.down = server.down;
          range.totalWeight += state.weight;
          peers_.push_back(state);
        }
      }
      range.end = peers_.size();
    }
    // nginx: a lone primary without backups is "single": used even when failed.
    single_ = primaries_.size() == 1 && backups_.size() == 0;
    if (consistent_) buildPoints();
  }

  const Peer* pick(Attempt& attempt, const PickKey& key, Clock::time_point now) override {
    if (attempt.tried.size() != peers_.size()) attempt.tried.reset(peers_.size());
    PeerState* chosen = nullptr;
    switch (method_) {
      case Method::kRoundRobin:
        chosen = pickRoundRobin(attempt, now);
        break;
      case Method::kLeastConn:
        chosen = pickLeastConn(attempt, now);
        break;
      case Method::kIpHash:
        chosen = pickIpHash(attempt, key, now);
        break;
      case Method::kHash:
        chosen = consistent_ ? pickConsistentHash(attempt, key, now) : pickHash(attempt, key, now);
        break;
    }
    if (chosen == nullptr) return nullptr;
    ++attempt.tries;
    return &chosen->peer;
  }

  void release(const Peer* peer, bool failed, Clock::time_point now) override {
    if (peer == nullptr || peer->index >= peers_.size()) return;
    PeerState& state = peers_[peer->index];
    if (state.conns > 0) --state.conns;
    if (single_) return;  // nginx counts no failures of a lone peer
    if (failed) {
      int64_t t = seconds(now);
      ++state.fails;
      state.accessed = t;
      state.checked = t;
      if (state.maxFails > 0) state.effectiveWeight -= state.weight / state.maxFails;
      if (state.effectiveWeight < 0) state.effectiveWeight = 0;
    } else if (state.accessed < state.checked) {
      state.fails = 0;  // the check after fail_timeout passed: live again
    }
  }

  Clock::time_point unavailableUntil(const Peer* peer, Clock::time_point now) const override {
    if (single_ || peer == nullptr || peer->index >= peers_.size()) return {};
    const PeerState& p = peers_[peer->index];
    int64_t t = seconds(now);
    // usable()'s rule: skipped while t - checked <= fail_timeout, so up to the next second.
    if (p.maxFails <= 0 || p.fails < p.maxFails || t - p.checked > p.failTimeout) return {};
    return Clock::time_point(std::chrono::seconds(p.checked + p.failTimeout + 1));
  }

  size_t peerCount() const override {
    // nginx's peers->tries: the servers not marked `down` (a down one never answers a try).
    size_t n = 0;
    for (const PeerState& p : peers_) n += p.down ? 0 : 1;
    return n;
  }

 private:
  const PeerRange& range(const Attempt& attempt) const {
    return attempt.inBackups ? backups_ : primaries_;
  }

  bool usable(const PeerState& p, const Attempt& attempt, int64_t t) const {
    if (attempt.tried.contains(p.peer.index)) return false;
    if (p.down) return false;
    if (p.maxFails > 0 && p.fails >= p.maxFails && t - p.checked <= p.failTimeout) return false;
    if (p.maxConns > 0 && p.conns >= p.maxConns) return false;
    return true;
  }

  // The bookkeeping of a chosen peer (nginx's tail of every get function).
  PeerState* take(PeerState& p, Attempt& attempt, int64_t t) {
    if (t - p.checked > p.failTimeout) p.checked = t;
    attempt.tried.insert(p.peer.index);
    ++p.conns;
    return &p;
  }

  // ngx_http_upstream_get_round_robin_peer: the primaries, then the backups.
  PeerState* pickRoundRobin(Attempt& attempt, Clock::time_point now) {
    int64_t t = seconds(now);
    if (!attempt.inBackups) {
      if (single_) {
        PeerState& p = peers_[primaries_.begin];
        // The lone peer ignores max_fails (nginx), but is never tried twice.
        if (!attempt.tried.contains(p.peer.index) && !p.down && !(p.maxConns > 0 && p.conns >= p.maxConns)) {
          attempt.tried.insert(p.peer.index);
          ++p.conns;
          return &p;
        }
        return nullptr;
      }
      if (PeerState* best = smoothWeighted(primaries_, attempt, t)) return best;
      if (backups_.size() == 0) return nullptr;
      attempt.inBackups = true;
    }
    return smoothWeighted(backups_, attempt, t);
  }

  // ngx_http_upstream_get_peer: current_weight += effective_weight, the largest wins and loses
  // the total.
  PeerState* smoothWeighted(const PeerRange& r, Attempt& attempt, int64_t t) {
    PeerState* best = nullptr;
    int total = 0;
    for (size_t i = r.begin; i < r.end; ++i) {
      PeerState& p = peers_[i];
      if (!usable(p, attempt, t)) continue;
      p.currentWeight += p.effectiveWeight;
      total += p.effectiveWeight;
      if (p.effectiveWeight < p.weight) ++p.effectiveWeight;
      if (best == nullptr || p.currentWeight > best->currentWeight) best = &p;
    }
    if (best == nullptr) return nullptr;
    best->currentWeight -= total;
    return take(*best, attempt, t);
  }

  // ngx_http_upstream_get_least_conn_peer: fewest connections per weight; ties by smooth
  // weighted round robin among the tied.
  PeerState* pickLeastConn(Attempt& attempt, Clock::time_point now) {
    if (single_) return pickRoundRobin(attempt, now);
    int64_t t = seconds(now);
    if (!attempt.inBackups) {
      if (PeerState* best = leastConn(primaries_, attempt, t)) return best;
      if (backups_.size() == 0) return nullptr;
      attempt.inBackups = true;
    }
    return leastConn(backups_, attempt, t);
  }

  PeerState* leastConn(const PeerRange& r, Attempt& attempt, int64_t t) {
    PeerState* best = nullptr;
    size_t bestIndex = 0;
    bool many = false;
    for (size_t i = r.begin; i < r.end; ++i) {
      PeerState& p = peers_[i];
      if (!usable(p, attempt, t)) continue;
      if (best == nullptr ||
          int64_t{p.conns} * best->weight < int64_t{best->conns} * p.weight) {
        best = &p;
        bestIndex = i;
        many = false;
      } else if (int64_t{p.conns} * best->weight == int64_t{best->conns} * p.weight) {
        many = true;
      }
    }
    if (best == nullptr) return nullptr;
    int total = 0;
    if (many) {
      PeerState* first = best;
      for (size_t i = bestIndex; i < r.end; ++i) {
        PeerState& p = peers_[i];
        if (!usable(p, attempt, t)) continue;
        if (int64_t{p.conns} * first->weight != int64_t{first->conns} * p.weight) continue;
        p.currentWeight += p.effectiveWeight;
        total += p.effectiveWeight;
        if (p.effectiveWeight < p.weight) ++p.effectiveWeight;
        if (p.currentWeight > best->currentWeight) best = &p;
      }
    }
    best->currentWeight -= total;
    return take(*best, attempt, t);
  }

  // The peer a weighted walk lands on: w in [0, total weight) over the range's weights.
  size_t weightedIndex(const PeerRange& r, uint32_t w) const {
    size_t i = r.begin;
    while (i + 1 < r.end && static_cast<int64_t>(w) >= peers_[i].weight) {
      w -= static_cast<uint32_t>(peers_[i].weight);
      ++i;
    }
    return i;
  }

  // ngx_http_upstream_get_ip_hash_peer: the client's /24 (IPv4) or whole address (IPv6)
  // through hash = (hash * 113 + byte) % 6271 from 89; after 20 misses, round robin.
  PeerState* pickIpHash(Attempt& attempt, const PickKey& key, Clock::time_point now) {
    if (attempt.hashTries > 20 || single_) return pickRoundRobin(attempt, now);
    const PeerRange& r = range(attempt);
    if (r.size() == 0 || r.totalWeight == 0) return pickRoundRobin(attempt, now);
    static const unsigned char kPseudo[3] = {0, 0, 0};
    const unsigned char* addr = kPseudo;
    size_t length = 3;
    if (key.client != nullptr && key.client->ss_family == AF_INET) {
      addr = reinterpret_cast<const unsigned char*>(
          &reinterpret_cast<const sockaddr_in*>(key.client)->sin_addr.s_addr);
    } else if (key.client != nullptr && key.client->ss_family == AF_INET6) {
      addr = reinterpret_cast<const sockaddr_in6*>(key.client)->sin6_addr.s6_addr;
      length = 16;
    }
    if (!attempt.hashStarted) {
      attempt.hashStarted = true;
      attempt.hash = 89;
    }
    int64_t t = seconds(now);
    uint32_t hash = attempt.hash;
    for (;;) {
      for (size_t i = 0; i < length; ++i) hash = (hash * 113 + addr[i]) % 6271;
      PeerState& p = peers_[weightedIndex(r, hash % static_cast<uint32_t>(r.totalWeight))];
      if (usable(p, attempt, t)) {
        attempt.hash = hash;
        return take(p, attempt, t);
      }
      if (++attempt.hashTries > 20) return pickRoundRobin(attempt, now);
    }
  }

  // ngx_http_upstream_get_hash_peer: ((crc32([REHASH] KEY) >> 16) & 0x7fff) + PREV_HASH, the
  // Cache::Memcached scheme; after 20 misses, round robin.
  PeerState* pickHash(Attempt& attempt, const PickKey& key, Clock::time_point now) {
    if (attempt.hashTries > 20 || single_ || key.hashKey.empty()) {
      return pickRoundRobin(attempt, now);
    }
    const PeerRange& r = range(attempt);
    if (r.size() == 0 || r.totalWeight == 0) return pickRoundRobin(attempt, now);
    int64_t t = seconds(now);
    for (;;) {
      uint32_t crc = kCrc32Init;
      if (attempt.rehash > 0) {
        std::string prefix = std::to_string(attempt.rehash);
        crc = crc32Update(crc, prefix.data(), prefix.size());
      }
      crc = crc32Final(crc32Update(crc, key.hashKey.data(), key.hashKey.size()));
      attempt.hash += (crc >> 16) & 0x7fff;
      ++attempt.rehash;
      PeerState& p = peers_[weightedIndex(r, attempt.hash % static_cast<uint32_t>(r.totalWeight))];
      if (usable(p, attempt, t)) return take(p, attempt, t);
      if (++attempt.hashTries > 20) return pickRoundRobin(attempt, now);
    }
  }

  // ngx_http_upstream_init_chash: 160 points per weight unit and peer, each
  // crc32(HOST \0 PORT PREV_HASH) (Cache::Memcached::Fast), sorted, duplicates dropped.
  void buildPoints() {
    for (size_t i = primaries_.begin; i < primaries_.end; ++i) {
      const PeerState& p = peers_[i];
      std::string_view server = *p.server;
      std::string_view host = server;
      std::string_view port;
      if (startsWithCaseless(server, "unix:")) {
        host = server.substr(5);
      } else {
        for (size_t j = 0; j < server.size(); ++j) {
          char c = server[server.size() - j - 1];
          if (c == ':') {
            host = server.substr(0, server.size() - j - 1);
            port = server.substr(server.size() - j);
            break;
          }
          if (c < '0' || c > '9') break;
        }
      }
      uint32_t base = crc32Update(kCrc32Init, host.data(), host.size());
      base = crc32Update(base, "", 1);
      base = crc32Update(base, port.data(), port.size());
      uint32_t prev = 0;
      for (int j = 0; j < p.weight * 160; ++j) {
        unsigned char bytes[4] = {static_cast<unsigned char>(prev & 0xff),
                                  static_cast<unsigned char>((prev >> 8) & 0xff),
                                  static_cast<unsigned char>((prev >> 16) & 0xff),
                                  static_cast<unsigned char>((prev >> 24) & 0xff)};
        uint32_t hash = crc32Final(crc32Update(base, bytes, 4));
        points_.push_back({hash, p.server});
        prev = hash;
      }
    }
    std::stable_sort(points_.begin(), points_.end(),
                     [](const ChashPoint& a, const ChashPoint& b) { return a.hash < b.hash; });
    points_.erase(std::unique(points_.begin(), points_.end(),
                              [](const ChashPoint& a, const ChashPoint& b) { return a.hash == b.hash; }),
                  points_.end());
  }

  // ngx_http_upstream_find_chash_point: the first point >= hash.
  uint32_t findPoint(uint32_t hash) const {
    size_t i = 0;
    size_t j = points_.size();
    while (i < j) {
      size_t k = (i + j) / 2;
      if (hash > points_[k].hash) {
        i = k + 1;
      } else if (hash < points_[k].hash) {
        j = k;
      } else {
        return static_cast<uint32_t>(k);
      }
    }
    return static_cast<uint32_t>(i);
  }

  // ngx_http_upstream_get_chash_peer: the server of the key's point on the ring (smooth weighted
  // round robin among its addresses); a miss moves to the next point; after 20, round robin.
  PeerState* pickConsistentHash(Attempt& attempt, const PickKey& key, Clock::time_point now) {
    if (!attempt.hashStarted) {
      attempt.hashStarted = true;
      attempt.hash = points_.empty() ? 0 : findPoint(crc32(key.hashKey));
    }
    if (attempt.hashTries > 20 || single_ || key.hashKey.empty() || points_.empty()) {
      return pickRoundRobin(attempt, now);
    }
    const PeerRange& r = range(attempt);
    int64_t t = seconds(now);
    for (;;) {
      const std::string* server = points_[attempt.hash % points_.size()].server;
      PeerState* best = nullptr;
      int total = 0;
      for (size_t i = r.begin; i < r.end; ++i) {
        PeerState& p = peers_[i];
        if (!usable(p, attempt, t)) continue;
        if (*p.server != *server) continue;
        p.currentWeight += p.effectiveWeight;
        total += p.effectiveWeight;
        if (p.effectiveWeight < p.weight) ++p.effectiveWeight;
        if (best == nullptr || p.currentWeight > best->currentWeight) best = &p;
      }
      if (best != nullptr) {
        best->currentWeight -= total;
        return take(*best, attempt, t);
      }
      ++attempt.hash;
      if (++attempt.hashTries > 20) return pickRoundRobin(attempt, now);
    }
  }

  Method method_;
  bool consistent_ = false;
  bool single_ = false;
  std::vector<PeerState> peers_;  // primaries, then backups
  PeerRange primaries_;
  PeerRange backups_;
  std::vector<ChashPoint> points_;
};

}  // namespace

std::unique_ptr<Balancer> Balancer::create(const config::UpstreamSpec& spec) {
  return std::make_unique<NginxBalancer>(spec);
}

}  // namespace portico::upstream
