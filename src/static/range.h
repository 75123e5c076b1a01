#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>
#include <vector>

namespace portico::staticfiles {

// One satisfiable byte range, already clipped to the representation: [offset, offset + length).
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;

  uint64_t last() const { return offset + length - 1; }
  bool operator==(const ByteRange&) const = default;
};

// The Range header must be ignored: absent, another unit, syntactically invalid, or (as nginx)
// asking for more than kMaxRanges ranges or more bytes in total than the representation has.
struct RangeIgnored {
  bool operator==(const RangeIgnored&) const = default;
};

// Valid, but no range overlaps the representation → 416 with "Content-Range: bytes */size".
struct RangeUnsatisfiable {
  bool operator==(const RangeUnsatisfiable&) const = default;
};

// The satisfiable ranges in request order (unsatisfiable ones dropped; overlaps kept, as nginx).
using ByteRanges = std::vector<ByteRange>;

using RangeResult = std::variant<RangeIgnored, ByteRanges, RangeUnsatisfiable>;

// More ranges than this in one request are treated as abuse and the Range header is ignored.
inline constexpr size_t kMaxRanges = 100;

// Parses a Range header value (RFC 9110 §14.1.2: "bytes=" 1#( first-last / first- / -suffix ))
// against a representation of `size` bytes. Pure; never fails on any input.
RangeResult parseRange(std::string_view header, uint64_t size);

}  // namespace portico::staticfiles
