#include "static/range.h"

#include <algorithm>
#include <limits>

namespace portico::staticfiles {

namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }

bool startsWithBytesUnit(std::string_view s) {
  constexpr std::string_view kUnit = "bytes=";
  if (s.size() < kUnit.size()) return false;
  for (size_t i = 0; i < kUnit.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kUnit[i]) return false;
  }
  return true;
}

}  // namespace

// A port of ngx_http_range_parse (nginx 1.22): malformed specs are 416 (not ignored), spaces
// are allowed around the numbers and the '-', and a range that starts at 0 but selects nothing
// (an empty file) makes the whole header ignored.
RangeResult parseRange(std::string_view header, uint64_t size) {
  // ngx_http_range_header_filter: "bytes=" in any case and at least one more byte.
  if (header.size() < 7 || !startsWithBytesUnit(header)) return RangeIgnored{};
  std::string_view p = header.substr(6);
  constexpr uint64_t kMaxOff = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  auto at = [&p]() { return p.empty() ? '\0' : p.front(); };
  auto skipSpaces = [&]() {
    while (at() == ' ') p.remove_prefix(1);
  };
  // Digits into `value`; false on overflow past off_t (nginx: 416).
  auto number = [&](uint64_t& value) {
    value = 0;
    while (isDigit(at())) {
      uint64_t digit = static_cast<uint64_t>(at() - '0');
      if (value > (kMaxOff - digit) / 10) return false;
      value = value * 10 + digit;
      p.remove_prefix(1);
    }
    return true;
  };

  ByteRanges ranges;
  uint64_t total = 0;
  while (true) {
    uint64_t start = 0;
    uint64_t end = 0;
    bool suffix = false;
    bool openEnd = false;
    skipSpaces();
    if (at() != '-') {
      if (!isDigit(at()) || !number(start)) return RangeUnsatisfiable{};
      skipSpaces();
      if (at() != '-') return RangeUnsatisfiable{};
      p.remove_prefix(1);
      skipSpaces();
      if (at() == ',' || at() == '\0') {
        end = size;
        openEnd = true;
      }
    } else {
      suffix = true;
      p.remove_prefix(1);
    }
    if (!openEnd) {
      if (!isDigit(at()) || !number(end)) return RangeUnsatisfiable{};
      skipSpaces();
      if (at() != ',' && at() != '\0') return RangeUnsatisfiable{};
      if (suffix) {
        start = end < size ? size - end : 0;
        // nginx's content_length - 1 (-1 for an empty file, made 0 below).
        end = size == 0 ? 0 : size - 1;
      }
      end = end >= size ? size : end + 1;
    }
    if (start < end) {
      if (ranges.size() >= kMaxRanges) return RangeIgnored{};
      ranges.push_back({start, end - start});
      total += end - start;
    } else if (start == 0) {
      return RangeIgnored{};
    }
    if (at() != ',') break;
    p.remove_prefix(1);
  }
  if (ranges.empty()) return RangeUnsatisfiable{};
  // As nginx: asking for more bytes than the whole file (overlaps) is not worth honouring.
  if (total > size) return RangeIgnored{};
  return ranges;
}

}  // namespace portico::staticfiles
