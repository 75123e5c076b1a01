#include "transport/tls_session_store.h"

#include <pthread.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "core/robust_mutex.h"

namespace portico::transport {

namespace {
constexpr uint64_t kMagic = 0x706f7274'73736c31ULL;  // "ports sl1"
constexpr uint32_t kDead = 0, kLive = 1, kPad = 2;

uint64_t align8(uint64_t n) { return (n + 7) & ~uint64_t{7}; }

uint32_t hashOf(std::string_view id) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : id) h = (h ^ c) * 16777619u;
  return h;
}
}  // namespace

struct TlsSessionStore::Header {
  uint64_t magic;
  uint64_t size;
  pthread_mutex_t mutex;
  uint64_t buckets;    // offset of the bucket array (uint64_t offsets, 0 = empty)
  uint32_t bucketMask;
  uint64_t logBegin;   // the circular log: [logBegin, logEnd)
  uint64_t logEnd;
  uint64_t head;       // where the next entry goes
  uint64_t tail;       // the oldest entry
  uint64_t used;       // bytes between tail and head (entries and padding)
  uint64_t live;
};

// One record of the log; a kPad record fills the end of the log when the next entry does not
// fit there (the log goes on at logBegin).
struct TlsSessionStore::Entry {
  uint32_t total;  // bytes of the record, 8-aligned
  uint32_t state;  // kDead, kLive, kPad
  uint64_t next;   // the hash chain
  uint64_t expireMs;
  uint32_t hash;
  uint32_t dataLen;
  uint8_t idLen;
  uint8_t id[kMaxId];
  uint8_t pad[7];
  unsigned char data[];
};

bool TlsSessionStore::format(void* base, size_t size) {
  if (size < kMinSize || base == nullptr) return false;
  auto* h = new (base) Header{};
  h->magic = kMagic;
  h->size = size;
  // About one bucket per 512 bytes (two sessions of ~250 bytes), a power of two.
  size_t buckets = 64;
  while (buckets * 512 < size) buckets <<= 1;
  h->bucketMask = static_cast<uint32_t>(buckets - 1);
  h->buckets = (sizeof(Header) + 63) & ~uint64_t{63};
  std::memset(static_cast<char*>(base) + h->buckets, 0, buckets * sizeof(uint64_t));
  h->logBegin = (h->buckets + buckets * sizeof(uint64_t) + 63) & ~uint64_t{63};
  h->logEnd = size & ~uint64_t{7};
  h->head = h->tail = h->logBegin;
  initRobustMutex(&h->mutex);
  return h->logBegin + align8(sizeof(Entry) + kMaxSession) <= h->logEnd;
}

TlsSessionStore::Entry* TlsSessionStore::at(uint64_t offset) const {
  return reinterpret_cast<Entry*>(static_cast<char*>(base_) + offset);
}

uint64_t TlsSessionStore::lookup(std::string_view id, uint32_t hash) const {
  const auto* buckets = reinterpret_cast<const uint64_t*>(static_cast<char*>(base_) + header()->buckets);
  for (uint64_t off = buckets[hash & header()->bucketMask]; off != 0; off = at(off)->next) {
    const Entry* e = at(off);
    if (e->hash == hash && e->idLen == id.size() && std::memcmp(e->id, id.data(), id.size()) == 0) {
      return off;
    }
  }
  return 0;
}

void TlsSessionStore::unlink(uint64_t offset) {
  Entry* e = at(offset);
  auto* buckets = reinterpret_cast<uint64_t*>(static_cast<char*>(base_) + header()->buckets);
  uint64_t* link = &buckets[e->hash & header()->bucketMask];
  while (*link != 0 && *link != offset) link = &at(*link)->next;
  if (*link == offset) *link = e->next;
  e->state = kDead;
  --header()->live;
}

void TlsSessionStore::evictTail() {
  Header* h = header();
  Entry* e = at(h->tail);
  if (e->state == kLive) unlink(h->tail);
  h->used -= e->total;
  h->tail += e->total;
  if (h->tail >= h->logEnd) h->tail = h->logBegin;
  if (h->used == 0) h->head = h->tail = h->logBegin;
}

// Makes `need` contiguous bytes free at head, evicting from the tail (the oldest first).
bool TlsSessionStore::reserve(uint64_t need) {
  Header* h = header();
  if (need > h->logEnd - h->logBegin) return false;
  for (;;) {
    if (h->used == 0) h->head = h->tail = h->logBegin;
    bool after = h->head > h->tail || h->used == 0;  // the free space runs to logEnd
    uint64_t room = after ? h->logEnd - h->head : h->tail - h->head;
    if (room >= need) return true;
    if (after) {
      // The end of the log is too short: pad it, go on at the beginning.
      if (h->head < h->logEnd) {
        Entry* pad = at(h->head);
        pad->total = static_cast<uint32_t>(h->logEnd - h->head);
        pad->state = kPad;
        h->used += pad->total;
      }
      h->head = h->logBegin;
      continue;
    }
    evictTail();
  }
}

bool TlsSessionStore::add(std::string_view id, std::string_view session, uint64_t expireMs,
                          uint64_t nowMs) {
  if (id.empty() || id.size() > kMaxId || session.size() > kMaxSession) return false;
  Header* h = header();
  RobustLock lock(&h->mutex);
  uint32_t hash = hashOf(id);
  if (uint64_t old = lookup(id, hash)) unlink(old);
  // As nginx's ngx_ssl_expire_sessions: the oldest entries go first when dead or expired.
  for (int n = 0; n < 3 && h->used > 0; ++n) {
    Entry* oldest = at(h->tail);
    if (oldest->state == kLive && oldest->expireMs > nowMs) break;
    evictTail();
  }
  uint64_t need = align8(sizeof(Entry) + session.size());
  if (!reserve(need)) return false;
  uint64_t off = h->head;
  Entry* e = at(off);
  e->total = static_cast<uint32_t>(need);
  e->state = kLive;
  e->expireMs = expireMs;
  e->hash = hash;
  e->dataLen = static_cast<uint32_t>(session.size());
  e->idLen = static_cast<uint8_t>(id.size());
  std::memcpy(e->id, id.data(), id.size());
  std::memcpy(e->data, session.data(), session.size());
  auto* buckets = reinterpret_cast<uint64_t*>(static_cast<char*>(base_) + h->buckets);
  e->next = buckets[hash & h->bucketMask];
  buckets[hash & h->bucketMask] = off;
  h->head += need;
  h->used += need;
  ++h->live;
  return true;
}

bool TlsSessionStore::find(std::string_view id, uint64_t nowMs, std::string& session) {
  if (id.empty() || id.size() > kMaxId) return false;
  RobustLock lock(&header()->mutex);
  uint64_t off = lookup(id, hashOf(id));
  if (off == 0) return false;
  Entry* e = at(off);
  if (e->expireMs <= nowMs) {
    unlink(off);  // its bytes go when the tail passes them
    return false;
  }
  session.assign(reinterpret_cast<const char*>(e->data), e->dataLen);
  return true;
}

void TlsSessionStore::remove(std::string_view id) {
  if (id.empty() || id.size() > kMaxId) return;
  RobustLock lock(&header()->mutex);
  if (uint64_t off = lookup(id, hashOf(id))) unlink(off);
}

size_t TlsSessionStore::entries() const {
  RobustLock lock(&header()->mutex);
  return header()->live;
}

size_t TlsSessionStore::capacity() const { return header()->logEnd - header()->logBegin; }

}  // namespace portico::transport
