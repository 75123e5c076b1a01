#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// The uwsgi protocol's packet (https://uwsgi-docs.readthedocs.io/en/latest/Protocol.html), as
// pure functions: a 4-byte head (modifier1, datasize as u16 little-endian, modifier2) and, for
// modifier1 0 (a WSGI request), a vars block of `datasize` bytes: repeated (u16 LE key size,
// key, u16 LE value size, value). nginx's uwsgi_pass sends one packet, then the request body
// of CONTENT_LENGTH bytes. No I/O, no state: the session (UwsgiRequestDecoder) reads with
// these and the uwsgi_pass client will write with serializePacket.
namespace portico::http::uwsgi {

inline constexpr size_t kHeadSize = 4;
// The largest vars block a u16 can announce: what bounds a request's head.
inline constexpr size_t kMaxVarsSize = 65535;
inline constexpr size_t kMaxPacketSize = kHeadSize + kMaxVarsSize;

// One packet found at the start of some bytes; `vars` points into them.
struct Packet {
  uint8_t modifier1 = 0;
  uint8_t modifier2 = 0;
  std::string_view vars;  // the datasize bytes after the head
  size_t size = 0;        // head + vars: the bytes the packet takes
};

enum class PacketStatus { kNeedMore, kComplete };

// Looks for a whole packet at the start of `data`: kNeedMore until its head and all its
// datasize bytes are there (a partial packet is never more than kMaxPacketSize bytes).
PacketStatus findPacket(std::string_view data, Packet& out);

// One var of a vars block (views into the block).
struct Var {
  std::string_view key;
  std::string_view value;
};

// Splits a vars block into its vars, in order; false with `error` set when the block is
// malformed (a size that runs past the block's end, a stray byte after the last var, an empty
// key). `out` is cleared first.
bool parseVars(std::string_view vars, std::vector<Var>& out, std::string& error);

// Appends one var (key size, key, value size, value); false when the key is empty or either
// part is longer than 65535 bytes.
bool appendVar(std::string& out, std::string_view key, std::string_view value);

// A whole packet: head + vars; false (and `out` unchanged) when a var cannot be encoded or
// the vars block would exceed kMaxVarsSize.
bool serializePacket(const std::vector<std::pair<std::string, std::string>>& vars,
                     std::string& out, uint8_t modifier1 = 0, uint8_t modifier2 = 0);

}  // namespace portico::http::uwsgi
