#pragma once

// CRC-32 (IEEE 802.3, reflected, as zlib and nginx's ngx_crc32), in nginx's three steps so a
// partial sum can be extended (the consistent hash extends "host\0port" with each point's
// previous hash).

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace portico::upstream {

inline constexpr uint32_t kCrc32Init = 0xffffffffu;

// Extends the running (not yet finalized) sum `crc` with `bytes`.
uint32_t crc32Update(uint32_t crc, const void* bytes, size_t length);
inline uint32_t crc32Final(uint32_t crc) { return crc ^ 0xffffffffu; }
inline uint32_t crc32(std::string_view text) {
  return crc32Final(crc32Update(kCrc32Init, text.data(), text.size()));
}

}  // namespace portico::upstream
