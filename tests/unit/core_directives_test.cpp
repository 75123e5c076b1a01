// The pure parts of the core directives and variables: connection variables, merge_slashes
// off, nginx's User-Agent quirks, gzip log members and the open_log_file_cache rules.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "http/parser.h"
#include "http/user_agent.h"
#include "http/variables.h"
#include "pipeline/access_log_targets.h"

namespace portico {
namespace {

std::string expand(std::string_view text, const http::VariableContext& c,
                   http::VariableEscape escape = http::VariableEscape::kNone) {
  std::string error;
  auto t = http::Template::compile(text, error);
  EXPECT_TRUE(t) << error;
  return t ? t->expand(c, escape) : std::string();
}

TEST(CoreVariables, ConnectionFacts) {
  http::Request request;
  request.method = "GET";
  http::ConnectionInfo conn;
  conn.peerAddress = "127.0.0.1";
  conn.number = 42;
  conn.requests = 3;
  conn.requestLength = 39;
  http::VariableContext c;
  c.request = &request;
  c.connection = &conn;
  EXPECT_EQ(expand("$connection $connection_requests $request_length $pipe", c), "42 3 39 .");
  conn.pipelined = true;
  EXPECT_EQ(expand("$pipe", c), "p");
  // Four bytes in network order; the default log escaping shows them as nginx does.
  EXPECT_EQ(expand("$binary_remote_addr", c, http::VariableEscape::kDefault),
            "\\x7F\\x00\\x00\\x01");
  conn.peerAddress = "::1";
  EXPECT_EQ(expand("$binary_remote_addr", c).size(), 16u);
  c.durationMicros = 3456;  // $request_time: seconds with milliseconds
  EXPECT_EQ(expand("$request_time", c), "0.003");
  c.durationMicros = 12'345'678;
  EXPECT_EQ(expand("$request_time", c), "12.345");
  std::string msec = expand("$msec", c);
  ASSERT_GT(msec.size(), 4u);
  EXPECT_EQ(msec[msec.size() - 4], '.');
  std::string age = expand("$connection_time", c);  // openedMicros 0: the monotonic clock's age
  EXPECT_NE(age.find('.'), std::string::npos);
}

TEST(MergeSlashes, OffKeepsEmptySegments) {
  struct Case {
    const char* in;
    const char* out;
  } cases[] = {
      {"/foo//../bar", "/foo/bar"},  // merge_slashes.t
      {"/foo///../bar", "/foo//bar"},
      {"//a//b/", "//a//b/"},
      {"/a/./b", "/a/b"},
      {"/a/..", "/"},
      {"/", "/"},
      {"/a/b/", "/a/b/"},
  };
  for (const Case& c : cases) {
    std::string out;
    EXPECT_TRUE(http::normalizePath(c.in, out, false)) << c.in;
    EXPECT_EQ(out, c.out) << c.in;
  }
  std::string out;
  EXPECT_FALSE(http::normalizePath("/..", out, false));
  EXPECT_TRUE(http::normalizePath("/foo//../bar", out, true));
  EXPECT_EQ(out, "/bar");  // merged first, as nginx with merge_slashes on
}

TEST(UserAgent, NginxQuirks) {
  EXPECT_TRUE(http::classifyUserAgent("Mozilla/4.0 (compatible; MSIE 5.0; Windows 98)").msie6);
  EXPECT_TRUE(http::classifyUserAgent("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)").msie6);
  EXPECT_FALSE(
      http::classifyUserAgent("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)").msie6);
  EXPECT_FALSE(http::classifyUserAgent("MSIE 7.0").msie6);
  EXPECT_TRUE(http::classifyUserAgent("MSIE 5.0").msie6);   // http_keepalive.t's
  EXPECT_FALSE(http::classifyUserAgent("MSIE 5.").msie6);   // too short for nginx's check
  EXPECT_FALSE(http::classifyUserAgent("Opera/9 (MSIE 5.0; x)").msie6);
  EXPECT_TRUE(http::classifyUserAgent("Mac OS X Safari/7534.48.3").safari);
  EXPECT_FALSE(http::classifyUserAgent("Mac OS X Chrome/99 Safari/537").safari);
  EXPECT_FALSE(http::classifyUserAgent("Mac OS X Gecko/2010 Safari/1").safari);
  EXPECT_FALSE(http::classifyUserAgent("Safari/7534 (Windows)").safari);
}

std::string gunzip(const std::string& in) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 32), Z_OK);
  std::string out;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  char buf[4096];
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    int rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
    if (rc == Z_STREAM_END) {
      if (z.avail_in == 0) break;
      inflateReset(&z);  // the next member
      continue;
    }
    if (rc != Z_OK) break;
  }
  inflateEnd(&z);
  return out;
}

TEST(AccessLogTargets, GzipMembersConcatenate) {
  std::string a = pipeline::gzipMember("/compressed:200\n", 1);
  std::string b = pipeline::gzipMember("/second:200\n", 9);
  ASSERT_GE(a.size(), 18u);
  EXPECT_EQ(static_cast<unsigned char>(a[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(a[1]), 0x8b);
  EXPECT_EQ(gunzip(a + b), "/compressed:200\n/second:200\n");
}

TEST(AccessLogTargets, ConditionIsNginxs) {
  EXPECT_FALSE(pipeline::accessLogConditionTrue(""));
  EXPECT_FALSE(pipeline::accessLogConditionTrue("0"));
  EXPECT_TRUE(pipeline::accessLogConditionTrue("00"));
  EXPECT_TRUE(pipeline::accessLogConditionTrue("yes"));
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// access_log.t's cache scenario: max=3 min_uses=2, the directory renamed underneath.
TEST(AccessLogTargets, OpenLogFileCacheKeepsTheUsedDescriptors) {
  char tmpl[] = "/tmp/portico-logcache-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string base = tmpl;
  std::string dir = base + "/dir";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  config::OpenLogFileCache settings;
  settings.max = 3;
  settings.minUses = 2;
  settings.inactiveSeconds = 20;
  pipeline::LogFileCache cache(settings);
  auto log = [&](const char* name) { return cache.write(dir + "/" + name, "/\n", 1000); };
  for (const char* name : {"lru", "lru", "once", "first", "first", "second", "second"}) {
    EXPECT_TRUE(log(name)) << name;
  }
  EXPECT_EQ(cache.size(), 3u);  // lru was forgotten when "second" came
  ASSERT_EQ(::rename(dir.c_str(), (base + "/moved").c_str()), 0);
  EXPECT_FALSE(log("lru"));
  EXPECT_FALSE(log("once"));
  EXPECT_TRUE(log("first"));   // written through the kept descriptor
  EXPECT_TRUE(log("second"));
  ASSERT_EQ(::rename((base + "/moved").c_str(), dir.c_str()), 0);
  EXPECT_EQ(slurp(dir + "/lru"), "/\n/\n");
  EXPECT_EQ(slurp(dir + "/once"), "/\n");
  EXPECT_EQ(slurp(dir + "/first"), "/\n/\n/\n");
  EXPECT_EQ(slurp(dir + "/second"), "/\n/\n/\n");
  std::system(("rm -rf " + base).c_str());
}

TEST(AccessLogTargets, OpenLogFileCacheValidReopens) {
  char tmpl[] = "/tmp/portico-logcache-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string base = tmpl;
  config::OpenLogFileCache settings;
  settings.max = 10;
  settings.validSeconds = 60;
  settings.inactiveSeconds = 120;  // else the path is forgotten after 10 s unused
  pipeline::LogFileCache cache(settings);
  std::string path = base + "/a.log";
  EXPECT_TRUE(cache.write(path, "1\n", 1000));
  ASSERT_EQ(::rename(path.c_str(), (base + "/old.log").c_str()), 0);
  EXPECT_TRUE(cache.write(path, "2\n", 1030));  // within valid: the old descriptor
  EXPECT_TRUE(cache.write(path, "3\n", 1061));  // past valid: the path again
  EXPECT_EQ(slurp(base + "/old.log"), "1\n2\n");
  EXPECT_EQ(slurp(path), "3\n");
  std::system(("rm -rf " + base).c_str());
}

}  // namespace
}  // namespace portico

namespace portico {
namespace {

TEST(SyslogSender, MessageIsNginxsHeader) {
  config::SyslogSpec spec;
  std::time_t t = 1600000000;  // local time: TZ is the process's
  std::tm tm{};
  localtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
  EXPECT_EQ(pipeline::SyslogSender::message(spec, "/a 200", t, "host"),
            std::string("<190>") + stamp + " host nginx: /a 200");
  spec.facility = 1;
  spec.severity = 1;
  spec.tag = "SEETHIS";
  spec.noHostname = true;
  EXPECT_EQ(pipeline::SyslogSender::message(spec, "x", t, "host"),
            std::string("<9>") + stamp + " SEETHIS: x");
}

}  // namespace
}  // namespace portico
