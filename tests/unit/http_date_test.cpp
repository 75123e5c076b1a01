#include "http/http_date.h"

#include <gtest/gtest.h>

#include <string>

namespace portico::http {
namespace {

constexpr std::time_t kRfcExample = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT

TEST(HttpDate, FormatKnownValues) {
  struct {
    std::time_t t;
    const char* text;
  } cases[] = {
      {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
      {kRfcExample, "Sun, 06 Nov 1994 08:49:37 GMT"},
      {951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},
      {1700000000, "Tue, 14 Nov 2023 22:13:20 GMT"},
      {4102444799, "Thu, 31 Dec 2099 23:59:59 GMT"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(formatHttpDate(c.t), c.text);
  }
}

TEST(HttpDate, ParseAllThreeForms) {
  struct {
    const char* text;
    std::time_t t;
  } cases[] = {
      {"Sun, 06 Nov 1994 08:49:37 GMT", kRfcExample},
      {"Sunday, 06-Nov-94 08:49:37 GMT", kRfcExample},
      {"Sun Nov  6 08:49:37 1994", kRfcExample},
      {"Thu, 01 Jan 1970 00:00:00 GMT", 0},
      {"Tue, 29 Feb 2000 00:00:00 GMT", 951782400},
      {"Tue Feb 29 00:00:00 2000", 951782400},
      {"Tue, 14 Nov 2023 22:13:20 GMT", 1700000000},
      {"Tuesday, 14-Nov-23 22:13:20 GMT", 1700000000},
      {"Tue Nov 14 22:13:20 2023", 1700000000},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    auto t = parseHttpDate(c.text);
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(*t, c.t);
  }
}

TEST(HttpDate, RoundTrip) {
  for (std::time_t t : {std::time_t{0}, std::time_t{86399}, std::time_t{1234567890},
                        std::time_t{2147483647}, std::time_t{253402300799}}) {
    auto parsed = parseHttpDate(formatHttpDate(t));
    ASSERT_TRUE(parsed.has_value()) << formatHttpDate(t);
    EXPECT_EQ(*parsed, t);
  }
}

TEST(HttpDate, RejectsMalformed) {
  const char* bad[] = {
      "",
      "garbage",
      "Sun, 06 Nov 1994 08:49:37",        // no zone
      "Sun, 06 Nov 1994 08:49:37 UTC",    // wrong zone
      "Sun, 6 Nov 1994 08:49:37 GMT",     // one-digit day
      "Sun, 06 Nov 94 08:49:37 GMT",      // two-digit year in fixdate
      "Sun, 06 Foo 1994 08:49:37 GMT",    // month
      "Sun, 31 Nov 1994 08:49:37 GMT",    // no 31st of November
      "Mon, 29 Feb 1900 00:00:00 GMT",    // 1900 is not a leap year
      "Sun, 06 Nov 1994 24:00:00 GMT",    // hour
      "Sun, 06 Nov 1994 08:60:00 GMT",    // minute
      "Sun, 06 Nov 1994 08:49:61 GMT",    // second
      "Sun, 06 Nov 1994 08:49:37 GMT ",   // trailing junk
      " Sun, 06 Nov 1994 08:49:37 GMT",   // leading junk
      "Sun, 00 Nov 1994 08:49:37 GMT",    // day zero
      "Sunday, 06-Nov-1994 08:49:37 GMT", // RFC 850 with four-digit year
      "Sun Nov 6 08:49:37 1994",          // asctime needs a padded day
      "Sun Nov  6 08:49:37 94",
      "Sun, 06 Nov 1994 8:49:37 GMT",
  };
  for (const char* text : bad) {
    EXPECT_FALSE(parseHttpDate(text).has_value()) << text;
  }
}

TEST(HttpDate, Rfc850CenturyIsWithinFiftyYears) {
  // A two-digit year is never more than 50 years in the future.
  std::time_t now = std::time(nullptr);
  auto t = parseHttpDate("Thursday, 01-Jan-70 00:00:00 GMT");
  ASSERT_TRUE(t.has_value());
  EXPECT_LE(*t, now + std::time_t{51} * 366 * 86400);
  EXPECT_GT(*t, now - std::time_t{51} * 366 * 86400);
}

TEST(HttpDate, CachedDateChangesPerSecond) {
  const std::string& a = cachedHttpDate(kRfcExample);
  EXPECT_EQ(a, "Sun, 06 Nov 1994 08:49:37 GMT");
  const std::string* addr = &cachedHttpDate(kRfcExample);
  EXPECT_EQ(*addr, "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(cachedHttpDate(kRfcExample + 1), "Sun, 06 Nov 1994 08:49:38 GMT");
  EXPECT_EQ(cachedHttpDate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
}

}  // namespace
}  // namespace portico::http
