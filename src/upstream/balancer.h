#pragma once

// Peer selection of one upstream, per worker (nginx's ngx_http_upstream_round_robin and the
// least_conn, ip_hash and hash modules): which server a request tries next, and the passive
// health of each (max_fails within fail_timeout marks a server failed for fail_timeout).

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "config/upstream.h"

namespace portico::upstream {

using Clock = std::chrono::steady_clock;

// One peer: one resolved address of one server line. Owned by its Balancer; loop thread.
struct Peer {
  const config::UpstreamAddress* address = nullptr;  // points into the UpstreamSpec
  size_t index = 0;                               // position among the balancer's peers
  bool backup = false;
  // Its entry in this process's upstream metrics (core/request_metrics.h), found at its first
  // try; loop thread.
  mutable int metricsEntry = -1;
};

// A set of peer indexes below size(): one word in place for up to 64 peers, so a request's
// walk over a usual upstream allocates nothing. Owned by its Attempt.
class PeerSet {
 public:
  size_t size() const { return size_; }
  // Empties the set and sizes it for `n` peers.
  void reset(size_t n) {
    size_ = n;
    word_ = 0;
    if (n > 64) {
      more_.assign((n + 63) / 64, 0);
    } else {
      more_.clear();
    }
  }
  bool contains(size_t i) const {
    return size_ <= 64 ? (word_ >> i & 1) != 0 : (more_[i / 64] >> (i % 64) & 1) != 0;
  }
  void insert(size_t i) {
    if (size_ <= 64) {
      word_ |= uint64_t{1} << i;
    } else {
      more_[i / 64] |= uint64_t{1} << (i % 64);
    }
  }

 private:
  size_t size_ = 0;
  uint64_t word_ = 0;
  std::vector<uint64_t> more_;  // over 64 peers: every index's bit
};

// One request's walk over the peers: which it tried (never twice), how many tries are left.
// Owned by the request; loop thread.
struct Attempt {
  PeerSet tried;  // by Peer::index, sized by the balancer
  size_t tries = 0;         // peers picked so far
  // The balancer's own walk state (nginx keeps it in the request's peer data): whether the
  // primaries gave nothing and the walk moved on to the backups, and the hashing methods' running
  // hash and their count of rehashes (after 20 they fall back to round robin).
  bool inBackups = false;
  bool hashStarted = false;
  uint32_t hash = 0;
  size_t rehash = 0;
  size_t hashTries = 0;
};

// What hashing methods hash: ip_hash the client's address (IPv4: its first three octets, as
// nginx), hash the expanded key.
struct PickKey {
  const sockaddr_storage* client = nullptr;
  std::string_view hashKey;
};

// The peers of one upstream and their state; one per upstream per worker, owned by the upstream
// engine; loop thread.
class Balancer {
 public:
  virtual ~Balancer() = default;
  // The peers point into `spec`, which must outlive the balancer (the site does).
  static std::unique_ptr<Balancer> create(const config::UpstreamSpec& spec);

  // The next peer for `attempt` (marked tried), or null when none is usable: all tried, down,
  // failed within fail_timeout, or at max_conns — after the primaries, the backups (nginx: not
  // with hash/ip_hash). As nginx 1.22, a lone peer (one address, no backups) is used even when
  // failed (its failures are not counted); with several peers all failed, null: 502 "no live
  // upstreams". The spec given to create() must outlive the balancer (peers point into it).
  virtual const Peer* pick(Attempt& attempt, const PickKey& key, Clock::time_point now) = 0;
  // The request is done with `peer` (its connection counted for least_conn/max_conns is
  // released); `failed` counts toward max_fails within fail_timeout (nginx's
  // NGX_PEER_FAILED: an error, a timeout, or a response proxy_next_upstream names).
  virtual void release(const Peer* peer, bool failed, Clock::time_point now) = 0;
  // Until when `peer` is skipped for its failures (max_fails within fail_timeout); the epoch
  // (a default time point) when it is not.
  virtual Clock::time_point unavailableUntil(const Peer* peer, Clock::time_point now) const = 0;
  // The peers a request may try, primaries and backups not marked `down` (nginx's
  // peers->tries), for proxy_next_upstream_tries = 0 (unlimited).
  virtual size_t peerCount() const = 0;
};

}  // namespace portico::upstream
