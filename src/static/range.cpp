#include "static/range.h"

#include <algorithm>
#include <limits>

namespace portico::staticfiles {

namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isOws(char c) { return c == ' ' || c == '\t'; }

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && isOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isOws(s.back())) s.remove_suffix(1);
  return s;
}

// Takes the leading digits of `s`; the value saturates at UINT64_MAX, which is beyond any file.
std::string_view takeDigits(std::string_view& s, uint64_t& value) {
  size_t n = 0;
  value = 0;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  while (n < s.size() && isDigit(s[n])) {
    uint64_t digit = static_cast<uint64_t>(s[n] - '0');
    value = value > (kMax - digit) / 10 ? kMax : value * 10 + digit;
    ++n;
  }
  std::string_view digits = s.substr(0, n);
  s.remove_prefix(n);
  return digits;
}

// Exact order of two decimal digit strings, so that saturated values still compare correctly.
bool decimalLess(std::string_view a, std::string_view b) {
  while (a.size() > 1 && a.front() == '0') a.remove_prefix(1);
  while (b.size() > 1 && b.front() == '0') b.remove_prefix(1);
  if (a.size() != b.size()) return a.size() < b.size();
  return a < b;
}

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

RangeResult parseRange(std::string_view header, uint64_t size) {
  header = trimOws(header);
  if (!startsWithBytesUnit(header)) return RangeIgnored{};
  std::string_view rest = header.substr(6);

  ByteRanges ranges;
  size_t specs = 0;
  while (true) {
    size_t comma = rest.find(',');
    std::string_view spec = trimOws(rest.substr(0, comma));
    if (!spec.empty()) {  // the list syntax tolerates empty elements ("a,,b")
      if (++specs > kMaxRanges) return RangeIgnored{};
      if (spec.front() == '-') {
        spec.remove_prefix(1);
        uint64_t suffix = 0;
        if (takeDigits(spec, suffix).empty() || !spec.empty()) return RangeIgnored{};
        // A zero suffix, or any range of an empty file, selects nothing: unsatisfiable.
        if (suffix > 0 && size > 0) {
          uint64_t length = std::min(suffix, size);
          ranges.push_back({size - length, length});
        }
      } else {
        uint64_t first = 0;
        uint64_t last = 0;
        std::string_view firstDigits = takeDigits(spec, first);
        if (firstDigits.empty() || spec.empty() || spec.front() != '-') return RangeIgnored{};
        spec.remove_prefix(1);
        std::string_view lastDigits = takeDigits(spec, last);
        if (!spec.empty()) return RangeIgnored{};
        if (!lastDigits.empty() && decimalLess(lastDigits, firstDigits)) return RangeIgnored{};
        if (first < size) {
          uint64_t end = lastDigits.empty() ? size - 1 : std::min(last, size - 1);
          ranges.push_back({first, end - first + 1});
        }
      }
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (specs == 0) return RangeIgnored{};
  if (ranges.empty()) return RangeUnsatisfiable{};
  // As nginx: asking for more bytes than the whole file (overlaps) is not worth honouring.
  uint64_t total = 0;
  for (const ByteRange& range : ranges) {
    if (range.length > size - total) return RangeIgnored{};
    total += range.length;
  }
  return ranges;
}

}  // namespace portico::staticfiles
