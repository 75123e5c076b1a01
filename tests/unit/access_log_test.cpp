#include "http/access_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

namespace portico::http {
namespace {

// 22/Nov/2026:13:16:46 UTC.
std::time_t fixedTime() {
  std::tm tm{};
  tm.tm_year = 2026 - 1900;
  tm.tm_mon = 10;
  tm.tm_mday = 22;
  tm.tm_hour = 13;
  tm.tm_min = 16;
  tm.tm_sec = 46;
  return timegm(&tm);
}

class AccessLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("TZ", "UTC", 1);
    tzset();
    request_.method = "GET";
    request_.target = "/path/a%20b?q=1&r=2";
    request_.rawPath = "/path/a%20b";
    request_.path = "/path/a b";
    request_.query = "q=1&r=2";
    request_.versionMajor = 1;
    request_.versionMinor = 1;
    request_.headers = {{"Host", "example.com:8080"},
                        {"Referer", "http://example.com/from"},
                        {"User-Agent", "curl/8.5.0"},
                        {"X-Trace", "abc"}};
    request_.host = "example.com:8080";
    connection_.peerAddress = "192.0.2.7";
    connection_.peerPort = 54321;
    connection_.localAddress = "0.0.0.0";
    connection_.localPort = 8080;
    responseHeaders_ = {{"Content-Type", "text/html"}, {"ETag", "\"xyz\""}};
    entry_.request = &request_;
    entry_.connection = &connection_;
    entry_.status = 200;
    entry_.bodyBytesSent = 1234;
    entry_.responseHeaders = &responseHeaders_;
    entry_.startTime = fixedTime();
    entry_.durationMicros = 1234567;
  }

  std::string line(const std::string& format) {
    AccessLogFormatter formatter(format);
    EXPECT_TRUE(formatter.valid()) << formatter.error();
    return formatter.format(entry_);
  }

  Request request_;
  ConnectionInfo connection_;
  std::vector<Header> responseHeaders_;
  AccessLogEntry entry_;
};

TEST_F(AccessLogTest, CombinedIsTheDefault) {
  EXPECT_EQ(line(""),
            "192.0.2.7 - - [22/Nov/2026:13:16:46 +0000] \"GET /path/a%20b?q=1&r=2 HTTP/1.1\" 200 "
            "1234 \"http://example.com/from\" \"curl/8.5.0\"");
  AccessLogFormatter defaulted;
  EXPECT_TRUE(defaulted.valid());
  EXPECT_EQ(defaulted.format(entry_), line(""));
}

TEST_F(AccessLogTest, CombinedWithoutRefererOrUserAgent) {
  request_.headers = {{"Host", "h"}};
  request_.versionMinor = 0;
  entry_.status = 304;
  entry_.bodyBytesSent = 0;
  EXPECT_EQ(line(""),
            "192.0.2.7 - - [22/Nov/2026:13:16:46 +0000] \"GET /path/a%20b?q=1&r=2 HTTP/1.0\" 304 0 "
            "\"-\" \"-\"");
}

TEST_F(AccessLogTest, CombinedUnixPeerBasicUserAndNoRequest) {
  connection_.isUnix = true;
  connection_.peerAddress = "";
  request_.headers.push_back({"Authorization", "Basic YWxpY2U6c2VjcmV0"});  // alice:secret
  EXPECT_EQ(line(""),
            "unix: - alice [22/Nov/2026:13:16:46 +0000] \"GET /path/a%20b?q=1&r=2 HTTP/1.1\" 200 "
            "1234 \"http://example.com/from\" \"curl/8.5.0\"");
  entry_.request = nullptr;
  entry_.connection = nullptr;
  entry_.status = 400;
  entry_.bodyBytesSent = 150;
  EXPECT_EQ(line(""), "- - - [22/Nov/2026:13:16:46 +0000] \"-\" 400 150 \"-\" \"-\"");
}

TEST_F(AccessLogTest, UnixPeerNamedByAFrontServer) {
  // A uwsgi socket's client is the one nginx named (REMOTE_ADDR), not "unix:".
  connection_.isUnix = true;
  connection_.peerAddress = "192.0.2.9";
  EXPECT_EQ(line("").substr(0, 10), "192.0.2.9 ");
}

TEST_F(AccessLogTest, BasicAuthUserEdgeCases) {
  struct Case {
    std::string authorization;
    std::string user;
  };
  const std::vector<Case> cases = {
      {"Basic YWxpY2U6c2VjcmV0", "alice"},
      {"basic   YWxpY2U6c2VjcmV0  ", "alice"},
      {"Basic Ym9iOg==", "bob"},         // bob: (empty password)
      {"Basic Ym9i", "-"},               // no ':'
      {"Basic OnB3", "-"},               // empty user
      {"Basic !!!!", "-"},               // not base64
      {"Basic YWxpY2U6c2VjcmV0=", "-"},  // bad length
      {"Bearer YWxpY2U6c2VjcmV0", "-"},
      {"Basic", "-"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.authorization);
    request_.headers = {{"Authorization", tc.authorization}};
    EXPECT_EQ(line("%(u)s"), tc.user);
  }
}

TEST_F(AccessLogTest, CombinedEscapesLikeNginx) {
  request_.target = "/a\"b\\c";
  request_.headers = {{"User-Agent", "evil\"\n127.0.0.1 - - fake\x01\x7f\xc3\xa9"},
                      {"Referer", "x\\y"}};
  EXPECT_EQ(line(""),
            "192.0.2.7 - - [22/Nov/2026:13:16:46 +0000] \"GET /a\\x22b\\x5Cc HTTP/1.1\" 200 1234 "
            "\"x\\x5Cy\" \"evil\\x22\\x0A127.0.0.1 - - fake\\x01\\x7F\\xC3\\xA9\"");
}

TEST_F(AccessLogTest, TimeUsesTheLocalZone) {
  setenv("TZ", "XYZ+05", 1);  // POSIX: five hours west of UTC
  tzset();
  entry_.startTime = fixedTime() + 1;  // a second the per-thread cache has not seen
  EXPECT_EQ(line("%(t)s"), "[22/Nov/2026:08:16:47 -0500]");
  setenv("TZ", "ABC-05:30", 1);
  tzset();
  entry_.startTime = fixedTime() + 2;
  EXPECT_EQ(line("%(t)s"), "[22/Nov/2026:18:46:48 +0530]");
}

TEST_F(AccessLogTest, GunicornDefaultFormat) {
  EXPECT_EQ(line("%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\""),
            "192.0.2.7 - - [22/Nov/2026:13:16:46 +0000] \"GET /path/a%20b?q=1&r=2 HTTP/1.1\" 200 "
            "1234 \"http://example.com/from\" \"curl/8.5.0\"");
}

TEST_F(AccessLogTest, EveryGunicornAtom) {
  setenv("PORTICO_ACCESS_LOG_TEST", "from-env", 1);
  struct Case {
    std::string format;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"%(h)s", "192.0.2.7"},
      {"%(l)s", "-"},
      {"%(u)s", "-"},
      {"%(t)s", "[22/Nov/2026:13:16:46 +0000]"},
      {"%(r)s", "GET /path/a%20b?q=1&r=2 HTTP/1.1"},
      {"%(m)s", "GET"},
      {"%(U)s", "/path/a b"},
      {"%(q)s", "q=1&r=2"},
      {"%(H)s", "HTTP/1.1"},
      {"%(s)s", "200"},
      {"%(B)s", "1234"},
      {"%(b)s", "1234"},
      {"%(f)s", "http://example.com/from"},
      {"%(a)s", "curl/8.5.0"},
      {"%(T)s", "1"},
      {"%(M)s", "1234"},
      {"%(D)s", "1234567"},
      {"%(L)s", "1.234567"},
      {"%(p)s", "<" + std::to_string(getpid()) + ">"},
      {"%({x-trace}i)s", "abc"},
      {"%({X-TRACE}i)s", "abc"},
      {"%({User-Agent}I)s", "curl/8.5.0"},
      {"%({x-missing}i)s", "-"},
      {"%({content-type}o)s", "text/html"},
      {"%({etag}o)s", "\\\"xyz\\\""},
      {"%({x-missing}o)s", "-"},
      {"%({REQUEST_METHOD}e)s", "GET"},
      {"%({raw_uri}e)s", "/path/a%20b?q=1&r=2"},
      {"%({PATH_INFO}e)s", "/path/a b"},
      {"%({QUERY_STRING}e)s", "q=1&r=2"},
      {"%({SERVER_PROTOCOL}e)s", "HTTP/1.1"},
      {"%({REMOTE_ADDR}e)s", "192.0.2.7"},
      {"%({REMOTE_PORT}e)s", "54321"},
      {"%({SERVER_NAME}e)s", "example.com"},
      {"%({SERVER_PORT}e)s", "8080"},
      {"%({wsgi.url_scheme}e)s", "http"},
      {"%({HTTP_USER_AGENT}e)s", "curl/8.5.0"},
      {"%({HTTP_X_TRACE}e)s", "abc"},
      {"%({PORTICO_ACCESS_LOG_TEST}e)s", "from-env"},
      {"%({PORTICO_NOT_SET_ANYWHERE}e)s", "-"},
      {"%(zz)s", "-"},
      {"%(S)s", "-"},  // atoms are case sensitive
      {"%({x-trace})s", "-"},
      {"%()s", "-"},
      {"100%% %(s)s", "100% 200"},
      {"%%(h)s", "%(h)s"},
      {"no atoms", "no atoms"},
      {"%(s)d %(B)i %(D)u", "200 1234 1234567"},
      {"[%(s)6s]", "[   200]"},
      {"[%(m)-6s]", "[GET   ]"},
      {"[%(B)08d]", "[00001234]"},
      {"[%(m).2s]", "[GE]"},
      {"%(m)r %(s)r", "'GET' 200"},
      {"%(m)ls", "GET"},  // Python ignores length modifiers
      {"%((a))s", "-"},   // nested parentheses belong to the key
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.format);
    EXPECT_EQ(line(tc.format), tc.expected);
  }
  unsetenv("PORTICO_ACCESS_LOG_TEST");
}

TEST_F(AccessLogTest, GunicornAtomsWithoutRequestOrResponseHeaders) {
  entry_.request = nullptr;
  entry_.responseHeaders = nullptr;
  EXPECT_EQ(line("%(r)s|%(m)s|%(U)s|%(q)s|%(H)s|%(f)s|%(a)s|%({x}i)s|%({x}o)s|%({path_info}e)s"),
            "-|-|-|-|-|-|-|-|-|-");
}

TEST_F(AccessLogTest, GunicornEscaping) {
  request_.headers = {{"User-Agent", "a\"b\\c\r\nforged line\t\x7f\xc3\xa9"}};
  // gunicorn's own '"' → \" escaping, plus control bytes so a value can never end a line.
  EXPECT_EQ(line("\"%(a)s\""), "\"a\\\"b\\c\\x0D\\x0Aforged line\\x09\\x7F\xc3\xa9\"");
  request_.path = std::string("/nul\0byte", 9);
  EXPECT_EQ(line("%(U)s"), "/nul\\x00byte");
  // Literal text of the format is not touched.
  EXPECT_EQ(line("\"\t%(s)s"), "\"\t200");
}

TEST_F(AccessLogTest, InvalidFormats) {
  struct Case {
    std::string format;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"100%",
       "invalid access log format: incomplete format: a lone '%' at the end (write %% "
       "for '%')"},
      {"%s",
       "invalid access log format: format requires a mapping key at offset 0: write atoms "
       "as %(h)s, and '%' as %%"},
      {"a %(h", "invalid access log format: incomplete format key at offset 2"},
      {"%(h)", "invalid access log format: incomplete format at offset 0"},
      {"%(h)-", "invalid access log format: incomplete format at offset 0"},
      {"%(h)x",
       "invalid access log format: unsupported format character 'x' at offset 4 "
       "(portico supports %(key)s, %(key)d and %(key)r)"},
      {"%(h)*s", "invalid access log format: '*' width cannot be used with %(key)"},
      {"%(h).*s", "invalid access log format: '*' precision cannot be used with %(key)"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.format);
    AccessLogFormatter formatter(tc.format);
    EXPECT_FALSE(formatter.valid());
    EXPECT_EQ(formatter.error(), tc.error);
    EXPECT_EQ(formatter.format(entry_), "");  // never crashes
  }
}

TEST_F(AccessLogTest, FormatterIsUsableFromManyThreads) {
  AccessLogFormatter formatter("%(t)s %(s)s %(a)s");
  ASSERT_TRUE(formatter.valid());
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      AccessLogEntry entry = entry_;
      for (int i = 0; i < 2000; ++i) {
        entry.startTime = fixedTime() + (i % 3) * 60 + t;
        entry.status = 200 + t;
        std::string expected = "[22/Nov/2026:13:" + std::to_string(16 + i % 3) + ":" +
                               std::to_string(46 + t) + " +0000] " + std::to_string(200 + t) +
                               " curl/8.5.0";
        if (formatter.format(entry) != expected) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace portico::http
