#include "static/range.h"

#include <gtest/gtest.h>

#include <string>

namespace portico::staticfiles {
namespace {

struct RangeCase {
  const char* header;
  uint64_t size;
  RangeResult expected;
};

std::string describe(const RangeResult& result) {
  if (std::holds_alternative<RangeIgnored>(result)) return "ignored";
  if (std::holds_alternative<RangeUnsatisfiable>(result)) return "unsatisfiable";
  std::string out = "ranges:";
  for (const ByteRange& r : std::get<ByteRanges>(result)) {
    out += " [" + std::to_string(r.offset) + "+" + std::to_string(r.length) + "]";
  }
  return out;
}

const RangeResult kIgnored = RangeIgnored{};
const RangeResult kUnsatisfiable = RangeUnsatisfiable{};
RangeResult ranges(std::initializer_list<ByteRange> list) { return ByteRanges(list); }

TEST(RangeTest, TableOfHeaders) {
  const RangeCase cases[] = {
      // Single ranges.
      {"bytes=0-0", 10, ranges({{0, 1}})},
      {"bytes=0-9", 10, ranges({{0, 10}})},
      {"bytes=2-5", 10, ranges({{2, 4}})},
      {"bytes=2-", 10, ranges({{2, 8}})},
      {"bytes=9-", 10, ranges({{9, 1}})},
      {"bytes=5-100", 10, ranges({{5, 5}})},  // last clipped to size-1
      {"bytes=-3", 10, ranges({{7, 3}})},
      {"bytes=-10", 10, ranges({{0, 10}})},
      {"bytes=-100", 10, ranges({{0, 10}})},  // suffix longer than file: whole file
      {"BYTES=1-2", 10, ranges({{1, 2}})},    // the unit is case-insensitive
      {"bytes=007-008", 10, ranges({{7, 2}})},
      // Multiple ranges: order and overlaps kept.
      {"bytes=0-1,4-5", 10, ranges({{0, 2}, {4, 2}})},
      {"bytes=4-5, 0-1", 10, ranges({{4, 2}, {0, 2}})},
      {"bytes=0-3,2-5", 10, ranges({{0, 4}, {2, 4}})},
      {"bytes=0-1,-2", 10, ranges({{0, 2}, {8, 2}})},
      {"bytes=0-1,20-30", 10, ranges({{0, 2}})},  // unsatisfiable part dropped
      {"bytes=0-1,5-3", 10, ranges({{0, 2}})},    // so is one ending before it starts
      {"bytes=1 - 2", 10, ranges({{1, 2}})},      // nginx skips spaces around numbers
      {"bytes= 1-2", 10, ranges({{1, 2}})},
      // Not a byte-range header → ignored (200). Every answer below was Debian nginx 1.22's.
      {"", 10, kIgnored},
      {"bytes", 10, kIgnored},
      {"bytes=", 10, kIgnored},
      {"items=0-1", 10, kIgnored},
      {"bytes = 0-1", 10, kIgnored},
      // Malformed → 416, as ngx_http_range_parse (not ignored as RFC 9110 would have it).
      {"bytes=,", 10, kUnsatisfiable},
      {"bytes=0-1,", 10, kUnsatisfiable},
      {"bytes=0-1,,\t,4-5 ,", 10, kUnsatisfiable},
      {"bytes=a-b", 10, kUnsatisfiable},
      {"bytes=1", 10, kUnsatisfiable},
      {"bytes=-", 10, kUnsatisfiable},
      {"bytes=--1", 10, kUnsatisfiable},
      {"bytes=1-2-3", 10, kUnsatisfiable},
      {"bytes=5-3", 10, kUnsatisfiable},
      {"bytes=0x1-2", 10, kUnsatisfiable},
      {"bytes=+1-2", 10, kUnsatisfiable},
      {"bytes=1-2;", 10, kUnsatisfiable},
      // More bytes than the file in total (nginx) → ignored.
      {"bytes=0-,0-", 10, kIgnored},
      {"bytes=0-5,3-9", 10, kIgnored},
      // Unsatisfiable → 416.
      {"bytes=10-", 10, kUnsatisfiable},
      {"bytes=10-20", 10, kUnsatisfiable},
      {"bytes=10-20,30-", 10, kUnsatisfiable},
      {"bytes=-0", 10, kUnsatisfiable},
      {"bytes=1-", 0, kUnsatisfiable},
      // An empty file: a range from 0 selects nothing and the header is ignored.
      {"bytes=0-", 0, kIgnored},
      {"bytes=0-0", 0, kIgnored},
      {"bytes=-5", 0, kIgnored},
      // Numbers past off_t are 416; up to it they compare exactly.
      {"bytes=99999999999999999999999-", 10, kUnsatisfiable},
      {"bytes=0-99999999999999999999999", 10, kUnsatisfiable},
      {"bytes=-99999999999999999999999", 10, kUnsatisfiable},
      {"bytes=18446744073709551615-", 10, kUnsatisfiable},
      {"bytes=1-18446744073709551616", 10, kUnsatisfiable},
      {"bytes=9223372036854775807-", 10, kUnsatisfiable},
      {"bytes=0-9223372036854775807", 10, ranges({{0, 10}})},
  };
  for (const RangeCase& c : cases) {
    RangeResult got = parseRange(c.header, c.size);
    EXPECT_EQ(describe(got), describe(c.expected)) << "header \"" << c.header << "\" size "
                                                   << c.size;
  }
}

TEST(RangeTest, ManyRangesAreIgnoredPastTheLimit) {
  std::string header = "bytes=";
  for (size_t i = 0; i < kMaxRanges; ++i) {
    if (i > 0) header += ",";
    header += std::to_string(i) + "-" + std::to_string(i);
  }
  RangeResult atLimit = parseRange(header, 1000);
  ASSERT_TRUE(std::holds_alternative<ByteRanges>(atLimit));
  EXPECT_EQ(std::get<ByteRanges>(atLimit).size(), kMaxRanges);
  header += ",500-500";
  EXPECT_TRUE(std::holds_alternative<RangeIgnored>(parseRange(header, 1000)));
}

TEST(RangeTest, HugeFileSizesDoNotOverflow) {
  const uint64_t size = static_cast<uint64_t>(INT64_MAX);  // off_t's limit
  RangeResult r = parseRange("bytes=0-,-1", size);
  // The total exceeds the representation: ignored rather than overflowing.
  EXPECT_TRUE(std::holds_alternative<RangeIgnored>(r));
  r = parseRange("bytes=-1", size);
  ASSERT_TRUE(std::holds_alternative<ByteRanges>(r));
  EXPECT_EQ(std::get<ByteRanges>(r).front().offset, size - 1);
  EXPECT_EQ(std::get<ByteRanges>(r).front().last(), size - 1);
}

TEST(RangeTest, LastIsInclusive) {
  ByteRange r{5, 3};
  EXPECT_EQ(r.last(), 7u);
}

}  // namespace
}  // namespace portico::staticfiles
