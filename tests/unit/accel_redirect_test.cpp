// X-Accel-Redirect's pure part: nginx 1.22's ngx_http_parse_unsafe_uri on the header's value
// and the upstream headers an internal redirect keeps.
#include "upstream/accel_redirect.h"

#include <gtest/gtest.h>

namespace portico::upstream {
namespace {

using Kind = AccelTarget::Kind;

TEST(AccelRedirect, UriAndArgs) {
  AccelTarget t = parseAccelRedirect("/protected/file.pdf");
  EXPECT_EQ(t.kind, Kind::kUri);
  EXPECT_EQ(t.uri, "/protected/file.pdf");
  EXPECT_EQ(t.args, "");
  t = parseAccelRedirect("/protected/f?a=1&b=%20?c");
  EXPECT_EQ(t.kind, Kind::kUri);
  EXPECT_EQ(t.uri, "/protected/f");
  EXPECT_EQ(t.args, "a=1&b=%20?c");  // args as written
}

TEST(AccelRedirect, NamedLocation) {
  AccelTarget t = parseAccelRedirect("@files");
  EXPECT_EQ(t.kind, Kind::kNamed);
  EXPECT_EQ(t.uri, "@files");
}

TEST(AccelRedirect, DecodesQuotedUri) {
  AccelTarget t = parseAccelRedirect("/protected/a%20b%2Fc.txt");
  EXPECT_EQ(t.kind, Kind::kUri);
  EXPECT_EQ(t.uri, "/protected/a b/c.txt");
  t = parseAccelRedirect("/p/100%");  // a stray '%' stays
  EXPECT_EQ(t.kind, Kind::kUri);
  EXPECT_EQ(t.uri, "/p/100%");
}

TEST(AccelRedirect, UnsafeUris) {
  for (const char* value : {"", "?a=1", "..", "../etc/passwd", "/a/../b", "/a/..", "/%2e%2e/x",
                            "/a%2F..%2Fb", "/x%00y"}) {
    EXPECT_EQ(parseAccelRedirect(value).kind, Kind::kUnsafe) << value;
  }
  // Dots that are not a whole ".." segment are fine.
  for (const char* value : {"/a/..b", "/a/b..", "/.hidden", "/a/./b"}) {
    EXPECT_EQ(parseAccelRedirect(value).kind, Kind::kUri) << value;
  }
  // Only the path is checked: ".." after '?' is an argument.
  EXPECT_EQ(parseAccelRedirect("/a?x=/../").kind, Kind::kUri);
}

TEST(AccelRedirect, KeptHeaders) {
  std::vector<http::Header> upstream = {
      {"Content-Type", "application/pdf"}, {"X-Accel-Redirect", "/p/f"},
      {"Set-Cookie", "a=1"},               {"Set-Cookie", "b=2"},
      {"Content-Disposition", "attachment"}, {"Cache-Control", "private"},
      {"Expires", "Thu, 01 Jan 1970 00:00:01 GMT"}, {"Accept-Ranges", "none"},
      {"Content-Length", "12"},            {"X-Other", "dropped"},
      {"Last-Modified", "dropped too"},
  };
  std::vector<http::Header> kept = accelKeptHeaders(upstream);
  ASSERT_EQ(kept.size(), 7u);
  EXPECT_EQ(kept[0].name, "Content-Type");
  EXPECT_EQ(kept[1].value, "a=1");
  EXPECT_EQ(kept[2].value, "b=2");
  EXPECT_EQ(kept[6].name, "Accept-Ranges");
  const std::string* value = accelRedirectHeader(upstream);
  ASSERT_NE(value, nullptr);
  EXPECT_EQ(*value, "/p/f");
  EXPECT_EQ(accelRedirectHeader({}), nullptr);
}

}  // namespace
}  // namespace portico::upstream
