#pragma once

// The state of nginx's limit_req and limit_conn modules for one zone, kept in a fixed-size
// region of memory that every worker process maps (MAP_SHARED, created by the master before
// the forks): a hash table of nodes keyed by the evaluated key, an LRU list (limit_req expires
// the oldest nodes when the zone is full, as nginx does) and a process-shared robust mutex. The
// algorithms follow ngx_http_limit_req_module.c (the leaky bucket in milli-requests: excess,
// last, delay) and ngx_http_limit_conn_module.c. Pure apart from the lock: time is a parameter
// (CLOCK_MONOTONIC ms in the server, a fake clock in tests).

#include <pthread.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace portico::http {

// A view over one zone's region; the region is owned by whoever mapped it (pipeline::LimitZones).
// Any thread of any process that maps the region; every call takes the zone's lock.
class LimitZone {
 public:
  enum class Kind : uint32_t { kReq = 1, kConn = 2 };
  // The smallest region format() accepts (nginx: 8 pages).
  static constexpr size_t kMinSize = 8 * 4096;

  // Lays out an empty zone in [base, base + size) (base 8-byte aligned); false when too small.
  static bool format(void* base, size_t size, Kind kind);
  // A view over a region format() laid out (in this or a parent process).
  explicit LimitZone(void* base);

  Kind kind() const;
  size_t nodes() const;  // for tests: the nodes in the zone

  // ngx_http_limit_req_lookup. kOk: accounted (account=true); kAgain: the node is held
  // (count+1) for a later account() or release(); kBusy: over the burst; kError: no memory
  // even after expiring the oldest nodes ("could not allocate node").
  enum class ReqResult { kOk, kAgain, kBusy, kError };
  ReqResult lookupReq(std::string_view key, uint64_t rate, uint64_t burst, bool account,
                      uint64_t nowMs, uint64_t& excess, uint64_t& node);
  // ngx_http_limit_req_account's part for one held node: charges the request, drops the hold
  // and returns the node's new excess.
  uint64_t accountReq(uint64_t node, uint64_t rate, uint64_t nowMs);
  // Drops a hold without charging (ngx_http_limit_req_unlock).
  void releaseReq(uint64_t node);

  // limit_conn: one more connection for `key` unless it has `limit` already.
  enum class ConnResult { kOk, kBusy, kNoMemory };
  ConnResult acquireConn(std::string_view key, uint32_t limit, uint64_t& node);
  // The request that acquired `node` ended (nginx's pool cleanup): the node goes at zero.
  void releaseConn(uint64_t node);

 private:
  struct Header;
  struct Node;
  Header* header() const { return static_cast<Header*>(base_); }
  Node* at(uint64_t offset) const;
  uint64_t find(std::string_view key, uint32_t hash) const;
  uint64_t allocate(size_t bytes);
  void free(uint64_t node);
  uint64_t insert(std::string_view key, uint32_t hash);  // 0: no memory
  void remove(uint64_t node);
  void lruUnlink(uint64_t node);
  void lruPushFront(uint64_t node);
  void expire(uint64_t rate, int n, uint64_t nowMs);

  void* base_;
};

// One limit_req of a location, for evaluateLimitReq: its zone, the zone's rate, the rule's
// burst and delay (milli-requests) and the request's key ("" is not limited).
struct LimitReqCheck {
  LimitZone* zone = nullptr;
  uint64_t rate = 0;
  uint64_t burst = 0;
  uint64_t delay = 0;
  std::string key;
};

// What ngx_http_limit_req_handler decides for all the limit_req of a location.
struct LimitReqVerdict {
  enum class Kind { kDeclined, kPassed, kDelayed, kRejected, kNoMemory };
  Kind kind = Kind::kDeclined;
  size_t limit = 0;      // the limit named in the log line (rejecting, or the longest delay)
  uint64_t excess = 0;   // milli-requests, logged as "%u.%03u"
  uint64_t delayMs = 0;  // kDelayed
};

// nginx's handler: every limit is looked up (the last one charges the request if all pass),
// the first over its burst rejects (the holds taken are dropped), otherwise each held node is
// charged and the longest delay applies. Keys longer than 65535 bytes are skipped.
LimitReqVerdict evaluateLimitReq(std::vector<LimitReqCheck>& limits, uint64_t nowMs);

// One limit_conn of a location: its zone, the rule's number and the request's key.
struct LimitConnCheck {
  LimitZone* zone = nullptr;
  uint32_t conn = 0;
  std::string key;
};

// What ngx_http_limit_conn_handler decides: kDeclined (every key empty), kPassed (`held`
// lists the (zone, node) counts to release at the request's end), kRejected (`limit` is the
// zone that refused; nothing is held) or kNoMemory (the zone is full; nothing is held).
struct LimitConnVerdict {
  enum class Kind { kDeclined, kPassed, kRejected, kNoMemory };
  Kind kind = Kind::kDeclined;
  size_t limit = 0;
  std::vector<std::pair<LimitZone*, uint64_t>> held;
};
LimitConnVerdict evaluateLimitConn(const std::vector<LimitConnCheck>& limits);

}  // namespace portico::http
