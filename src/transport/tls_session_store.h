#pragma once

// nginx's shared SSL session cache (ssl_session_cache shared:NAME:SIZE) as a fixed-size region
// that every worker process maps (MAP_SHARED, made by the master before the forks): serialized
// sessions keyed by their session ID, appended to a circular log in the order they were made
// (so the oldest is the one evicted when the region is full, as nginx's expire queue does), a
// hash table over the log, and a process-shared robust mutex. Pure apart from the lock: time is
// a parameter (CLOCK_MONOTONIC ms in the server, a fake clock in tests).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace portico::transport {

// A view over one cache's region; the region is owned by whoever mapped it
// (process::TlsShared). Any thread of any process that maps the region; every call takes the
// region's lock.
class TlsSessionStore {
 public:
  // nginx refuses a smaller zone ("session cache ... is too small": 8 pages).
  static constexpr size_t kMinSize = 8 * 4096;
  // nginx's NGX_SSL_MAX_SESSION_SIZE: a bigger serialized session is not cached.
  static constexpr size_t kMaxSession = 4096;
  static constexpr size_t kMaxId = 32;  // SSL_MAX_SSL_SESSION_ID_LENGTH

  // Lays out an empty cache in [base, base + size) (base 8-byte aligned); false when too small.
  static bool format(void* base, size_t size);
  explicit TlsSessionStore(void* base) : base_(base) {}

  // Stores `session` (i2d_SSL_SESSION's bytes) under `id` until `expireMs`, replacing an entry
  // with the same id and evicting the oldest entries while there is no room. False when the
  // session or id is too big to be cached.
  bool add(std::string_view id, std::string_view session, uint64_t expireMs, uint64_t nowMs);
  // The session stored under `id`, unless removed or expired (then false).
  bool find(std::string_view id, uint64_t nowMs, std::string& session);
  void remove(std::string_view id);

  size_t entries() const;  // live entries (expired ones included until evicted)
  size_t capacity() const;  // bytes of the log

 private:
  struct Header;
  struct Entry;
  Header* header() const { return static_cast<Header*>(base_); }
  Entry* at(uint64_t offset) const;
  uint64_t lookup(std::string_view id, uint32_t hash) const;
  void unlink(uint64_t offset);
  void evictTail();
  bool reserve(uint64_t need);

  void* base_;
};

}  // namespace portico::transport
