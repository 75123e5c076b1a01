// core/json.h: JSON string literals for the JSON error log and the status page.

#include <gtest/gtest.h>

#include <string>

#include "core/json.h"

namespace portico {
namespace {

TEST(JsonQuote, EscapesWhatJsonNeeds) {
  EXPECT_EQ(jsonQuote(""), "\"\"");
  EXPECT_EQ(jsonQuote("plain /path?x=1"), "\"plain /path?x=1\"");
  EXPECT_EQ(jsonQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(jsonQuote("l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
  EXPECT_EQ(jsonQuote(std::string("\x01\x1f\x7f", 3)), "\"\\u0001\\u001f\\u007f\"");
  // A byte >= 0x80 is not trusted as UTF-8: its Latin-1 code point keeps the document valid.
  EXPECT_EQ(jsonQuote("caf\xc3\xa9"), "\"caf\\u00c3\\u00a9\"");
  EXPECT_EQ(jsonQuote(std::string("nul\0x", 5)), "\"nul\\u0000x\"");
}

}  // namespace
}  // namespace portico
