#include "http/limit_zone.h"

#include <cerrno>
#include <cstring>
#include <new>

#include "core/robust_mutex.h"

namespace portico::http {

namespace {

constexpr uint64_t kMagic = 0x706f7274696c6d31ULL;  // "portilm1"
constexpr int kClasses = 12;                        // chunks of 64 B .. 128 KiB
constexpr size_t kMinChunk = 64;

// FNV-1a: the bucket of a key (nginx hashes with crc32 into its rbtree; any spread will do).
uint32_t hashKey(std::string_view key) {
  uint32_t h = 2166136261u;
  for (char c : key) {
    h ^= static_cast<unsigned char>(c);
    h *= 16777619u;
  }
  return h;
}

// nginx's (now - last) in ms, with its clamps for a clock that went back.
int64_t elapsed(uint64_t nowMs, uint64_t last) {
  int64_t ms = static_cast<int64_t>(nowMs - last);
  if (ms < -60000) return 1;
  if (ms < 0) return 0;
  return ms;
}

}  // namespace

// The region's first bytes. Offsets (from the region's base) rather than pointers link the
// nodes, so the layout does not depend on where a process mapped it.
struct LimitZone::Header {
  uint64_t magic;
  uint64_t size;
  LimitZone::Kind kind;
  uint32_t bucketMask;
  uint64_t buckets;  // offset of bucketMask + 1 node offsets
  uint64_t lruHead;  // most recently used (limit_req only)
  uint64_t lruTail;
  uint64_t bump;     // first byte never handed out
  uint64_t freeLists[kClasses];
  uint64_t nodes;
  pthread_mutex_t mutex;
};

// One key's state: limit_req's excess/last/count (count: lookups holding it), limit_conn's
// count of connections.
struct LimitZone::Node {
  uint64_t next;  // hash chain
  uint64_t lruPrev;
  uint64_t lruNext;
  uint64_t last;   // ms of the last charged request
  int64_t excess;  // milli-requests
  uint32_t hash;
  uint32_t count;
  uint32_t keyLen;
  uint32_t sizeClass;
  char key[];
};

bool LimitZone::format(void* base, size_t size, Kind kind) {
  if (size < kMinSize || base == nullptr) return false;
  auto* h = new (base) Header{};
  h->magic = kMagic;
  h->size = size;
  h->kind = kind;
  // About one bucket per 512 bytes of zone (a few nodes each when full), a power of two.
  size_t buckets = 64;
  while (buckets * 512 < size) buckets <<= 1;
  h->bucketMask = static_cast<uint32_t>(buckets - 1);
  h->buckets = (sizeof(Header) + 63) & ~uint64_t{63};
  std::memset(static_cast<char*>(base) + h->buckets, 0, buckets * sizeof(uint64_t));
  h->bump = (h->buckets + buckets * sizeof(uint64_t) + 63) & ~uint64_t{63};
  initRobustMutex(&h->mutex);
  return h->bump < size;
}

LimitZone::LimitZone(void* base) : base_(base) {}

LimitZone::Kind LimitZone::kind() const { return header()->kind; }

size_t LimitZone::nodes() const {
  RobustLock lock(&header()->mutex);
  return header()->nodes;
}

LimitZone::Node* LimitZone::at(uint64_t offset) const {
  return reinterpret_cast<Node*>(static_cast<char*>(base_) + offset);
}

uint64_t LimitZone::find(std::string_view key, uint32_t hash) const {
  const auto* buckets =
      reinterpret_cast<const uint64_t*>(static_cast<char*>(base_) + header()->buckets);
  for (uint64_t off = buckets[hash & header()->bucketMask]; off != 0; off = at(off)->next) {
    const Node* n = at(off);
    if (n->hash == hash && n->keyLen == key.size() &&
        std::memcmp(n->key, key.data(), key.size()) == 0) {
      return off;
    }
  }
  return 0;
}

// A chunk of the smallest class that holds `bytes`: from its free list, else fresh memory.
// Freed chunks stay in their class (nginx's slab pool keeps its pages per size too).
uint64_t LimitZone::allocate(size_t bytes) {
  Header* h = header();
  int c = 0;
  while (c < kClasses && (kMinChunk << c) < bytes) ++c;
  if (c == kClasses) return 0;
  uint64_t off = h->freeLists[c];
  if (off != 0) {
    h->freeLists[c] = at(off)->next;
  } else {
    if (h->bump + (kMinChunk << c) > h->size) return 0;
    off = h->bump;
    h->bump += kMinChunk << c;
  }
  at(off)->sizeClass = static_cast<uint32_t>(c);
  return off;
}

void LimitZone::free(uint64_t off) {
  Node* n = at(off);
  n->next = header()->freeLists[n->sizeClass];
  header()->freeLists[n->sizeClass] = off;
}

uint64_t LimitZone::insert(std::string_view key, uint32_t hash) {
  uint64_t off = allocate(sizeof(Node) + key.size());
  if (off == 0) return 0;
  Node* n = at(off);
  uint32_t sizeClass = n->sizeClass;
  std::memset(n, 0, sizeof(Node));
  n->sizeClass = sizeClass;
  n->hash = hash;
  n->keyLen = static_cast<uint32_t>(key.size());
  std::memcpy(n->key, key.data(), key.size());
  auto* buckets = reinterpret_cast<uint64_t*>(static_cast<char*>(base_) + header()->buckets);
  uint64_t& head = buckets[hash & header()->bucketMask];
  n->next = head;
  head = off;
  ++header()->nodes;
  return off;
}

void LimitZone::remove(uint64_t off) {
  Node* n = at(off);
  auto* buckets = reinterpret_cast<uint64_t*>(static_cast<char*>(base_) + header()->buckets);
  uint64_t* link = &buckets[n->hash & header()->bucketMask];
  while (*link != 0 && *link != off) link = &at(*link)->next;
  if (*link == off) *link = n->next;
  --header()->nodes;
  free(off);
}

void LimitZone::lruUnlink(uint64_t off) {
  Header* h = header();
  Node* n = at(off);
  if (n->lruPrev != 0) {
    at(n->lruPrev)->lruNext = n->lruNext;
  } else {
    h->lruHead = n->lruNext;
  }
  if (n->lruNext != 0) {
    at(n->lruNext)->lruPrev = n->lruPrev;
  } else {
    h->lruTail = n->lruPrev;
  }
  n->lruPrev = n->lruNext = 0;
}

void LimitZone::lruPushFront(uint64_t off) {
  Header* h = header();
  Node* n = at(off);
  n->lruPrev = 0;
  n->lruNext = h->lruHead;
  if (h->lruHead != 0) at(h->lruHead)->lruPrev = off;
  h->lruHead = off;
  if (h->lruTail == 0) h->lruTail = off;
}

// ngx_http_limit_req_expire: n == 1 removes up to two idle nodes whose excess has drained
// for a minute; n == 0 first removes the oldest node by force (when the zone is full).
void LimitZone::expire(uint64_t rate, int n, uint64_t nowMs) {
  while (n < 3) {
    uint64_t off = header()->lruTail;
    if (off == 0) return;
    Node* node = at(off);
    // Nodes are bumped on lookup: one still held means the rest are newer.
    if (node->count != 0) return;
    if (n++ != 0) {
      int64_t ms = static_cast<int64_t>(nowMs - node->last);
      if (ms < 0) ms = -ms;
      if (ms < 60000) return;
      int64_t excess = node->excess - static_cast<int64_t>(rate) * ms / 1000;
      if (excess > 0) return;
    }
    lruUnlink(off);
    remove(off);
  }
}

LimitZone::ReqResult LimitZone::lookupReq(std::string_view key, uint64_t rate, uint64_t burst,
                                          bool account, uint64_t nowMs, uint64_t& excessOut,
                                          uint64_t& nodeOut) {
  RobustLock lock(&header()->mutex);
  uint32_t hash = hashKey(key);
  uint64_t off = find(key, hash);
  if (off != 0) {
    Node* n = at(off);
    lruUnlink(off);
    lruPushFront(off);
    int64_t ms = elapsed(nowMs, n->last);
    int64_t excess = n->excess - static_cast<int64_t>(rate) * ms / 1000 + 1000;
    if (excess < 0) excess = 0;
    excessOut = static_cast<uint64_t>(excess);
    if (static_cast<uint64_t>(excess) > burst) return ReqResult::kBusy;
    if (account) {
      n->excess = excess;
      if (ms != 0) n->last = nowMs;
      return ReqResult::kOk;
    }
    ++n->count;
    nodeOut = off;
    return ReqResult::kAgain;
  }
  excessOut = 0;
  expire(rate, 1, nowMs);
  off = insert(key, hash);
  if (off == 0) {
    expire(rate, 0, nowMs);
    off = insert(key, hash);
    if (off == 0) return ReqResult::kError;
  }
  lruPushFront(off);
  Node* n = at(off);
  n->excess = 0;
  if (account) {
    n->last = nowMs;
    n->count = 0;
    return ReqResult::kOk;
  }
  n->last = 0;
  n->count = 1;
  nodeOut = off;
  return ReqResult::kAgain;
}

uint64_t LimitZone::accountReq(uint64_t off, uint64_t rate, uint64_t nowMs) {
  RobustLock lock(&header()->mutex);
  Node* n = at(off);
  int64_t ms = elapsed(nowMs, n->last);
  int64_t excess = n->excess - static_cast<int64_t>(rate) * ms / 1000 + 1000;
  if (excess < 0) excess = 0;
  if (ms != 0) n->last = nowMs;
  n->excess = excess;
  --n->count;
  return static_cast<uint64_t>(excess);
}

void LimitZone::releaseReq(uint64_t off) {
  RobustLock lock(&header()->mutex);
  --at(off)->count;
}

LimitZone::ConnResult LimitZone::acquireConn(std::string_view key, uint32_t limit,
                                             uint64_t& nodeOut) {
  RobustLock lock(&header()->mutex);
  uint32_t hash = hashKey(key);
  uint64_t off = find(key, hash);
  if (off == 0) {
    off = insert(key, hash);
    if (off == 0) return ConnResult::kNoMemory;
    at(off)->count = 1;
  } else {
    Node* n = at(off);
    if (n->count >= limit) return ConnResult::kBusy;
    ++n->count;
  }
  nodeOut = off;
  return ConnResult::kOk;
}

void LimitZone::releaseConn(uint64_t off) {
  RobustLock lock(&header()->mutex);
  Node* n = at(off);
  if (--n->count == 0) remove(off);
}

LimitReqVerdict evaluateLimitReq(std::vector<LimitReqCheck>& limits, uint64_t nowMs) {
  LimitReqVerdict verdict;
  // The nodes held by lookups that passed without charging (nginx's ctx->node per zone).
  std::vector<uint64_t> held(limits.size(), 0);
  using R = LimitZone::ReqResult;
  R rc = R::kOk;
  bool looked = false;
  uint64_t excess = 0;
  size_t n = 0;
  size_t limit = 0;
  for (n = 0; n < limits.size(); ++n) {
    LimitReqCheck& l = limits[n];
    if (l.key.empty() || l.key.size() > 65535) continue;
    looked = true;
    limit = n;
    rc = l.zone->lookupReq(l.key, l.rate, l.burst, n == limits.size() - 1, nowMs, excess,
                           held[n]);
    if (rc != R::kAgain) break;
  }
  if (!looked) return verdict;  // kDeclined
  if (rc == R::kBusy || rc == R::kError) {
    for (size_t i = 0; i < n; ++i) {
      if (held[i] != 0) limits[i].zone->releaseReq(held[i]);
    }
    verdict.kind = rc == R::kBusy ? LimitReqVerdict::Kind::kRejected
                                  : LimitReqVerdict::Kind::kNoMemory;
    verdict.limit = limit;
    verdict.excess = excess;
    return verdict;
  }
  if (rc == R::kAgain) excess = 0;
  // ngx_http_limit_req_account: charge every held node; the longest delay wins.
  uint64_t maxDelay = 0;
  if (excess > limits[limit].delay) {
    maxDelay = (excess - limits[limit].delay) * 1000 / limits[limit].rate;
  }
  while (n-- > 0) {
    if (held[n] == 0) continue;
    uint64_t e = limits[n].zone->accountReq(held[n], limits[n].rate, nowMs);
    if (e <= limits[n].delay) continue;
    uint64_t delay = (e - limits[n].delay) * 1000 / limits[n].rate;
    if (delay > maxDelay) {
      maxDelay = delay;
      excess = e;
      limit = n;
    }
  }
  verdict.limit = limit;
  verdict.excess = excess;
  verdict.delayMs = maxDelay;
  verdict.kind = maxDelay != 0 ? LimitReqVerdict::Kind::kDelayed : LimitReqVerdict::Kind::kPassed;
  return verdict;
}

LimitConnVerdict evaluateLimitConn(const std::vector<LimitConnCheck>& limits) {
  LimitConnVerdict verdict;
  for (size_t i = 0; i < limits.size(); ++i) {
    const LimitConnCheck& l = limits[i];
    if (l.key.empty() || l.key.size() > 255) continue;
    verdict.kind = LimitConnVerdict::Kind::kPassed;
    uint64_t node = 0;
    LimitZone::ConnResult rc = l.zone->acquireConn(l.key, l.conn, node);
    if (rc != LimitZone::ConnResult::kOk) {
      // ngx_http_limit_conn_cleanup_all: what this request took so far goes back.
      for (auto& [zone, held] : verdict.held) zone->releaseConn(held);
      verdict.held.clear();
      verdict.kind = rc == LimitZone::ConnResult::kBusy ? LimitConnVerdict::Kind::kRejected
                                                        : LimitConnVerdict::Kind::kNoMemory;
      verdict.limit = i;
      return verdict;
    }
    verdict.held.emplace_back(l.zone, node);
  }
  return verdict;
}

}  // namespace portico::http
