#include "static/static_handler.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "http/gzip_filter.h"
#include "http/parser.h"
#include "http/response.h"
#include "config/site_from_flags.h"
#include "fake_exchange.h"
#include "pipeline/site_handler.h"

namespace portico::staticfiles {
namespace {

namespace fs = std::filesystem;

constexpr std::time_t kMtime = 1600000000;  // 0x5f5e1000
constexpr const char* kMtimeText = "Sun, 13 Sep 2020 12:26:40 GMT";
constexpr const char* kHello = "Hello, world!";  // 13 bytes → ETag "5f5e1000-d"
constexpr const char* kLetters = "abcdefghijklmnopqrstuvwxyz";
constexpr const char* kSecret = "TOP-SECRET-CONTENT";

using portico::unit::FakeExchange;

// Serves `ex` on the live path: the site the gunicorn-style flags make of one --static mount
// (`location PREFIX { alias DIR; gzip_static on; gzip_vary on; }`, config/site_from_flags.h),
// answered by the pipeline's SiteHandler, which maps the URI and asks a StaticHandler.
void serve(FakeExchange& ex, std::string prefix, std::string directory) {
  config::Config config;
  config::GunicornFlags flags;
  flags.statics.push_back({std::move(prefix), std::move(directory)});
  config::siteFromFlags(flags, config);
  std::string error;
  std::unique_ptr<http::SiteMap> map = http::SiteMap::build(config.site, error);
  ASSERT_TRUE(map) << error;
  pipeline::SiteHandler site(config, *map);
  ASSERT_TRUE(site.build({{}, documentRoots()}, error)) << error;
  std::unique_ptr<http::RequestRoute> route = site.route(ex.request(), ex.conn);
  route->run(ex);
}

void setRequest(FakeExchange& ex, std::string method, std::string target,
                std::vector<http::Header> headers = {}) {
  http::Request& r = ex.req;
  r.method = std::move(method);
  r.target = target;
  size_t q = target.find('?');
  r.rawPath = target.substr(0, q);
  r.query = q == std::string::npos ? "" : target.substr(q + 1);
  ASSERT_TRUE(http::percentDecode(r.rawPath, r.path)) << target;
  r.host = "example.com";
  r.headers = {{"Host", "example.com"}};
  for (auto& h : headers) r.headers.push_back(std::move(h));
  ex.conn.localAddress = "127.0.0.1";
  ex.conn.localPort = 8080;
  ex.conn.peerAddress = "127.0.0.1";
}

void writeFile(const fs::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  out.close();
  ASSERT_TRUE(out.good()) << path;
  struct timespec times[2] = {{kMtime, 0}, {kMtime, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

class StaticHandlerTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = testing::TempDir() + "/portico_static_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    base_ = new fs::path(tmpl);
    const fs::path& base = *base_;
    const fs::path root = base / "root";
    fs::create_directories(root / "sub");
    fs::create_directories(root / "empty");
    fs::create_directories(root / "a b");
    fs::create_directories(root / "gzdir.css.gz");
    fs::create_directories(base / "rootsibling");
    writeFile(root / "hello.txt", kHello);
    writeFile(root / "letters.txt", kLetters);
    writeFile(root / "empty.txt", "");
    writeFile(root / "Upper.HTML", "<p>upper</p>");
    writeFile(root / "noext", kHello);
    writeFile(root / "style.css", "body { color: red; }");
    writeFile(root / "style.css.gz", "GZDATA");  // stands in for compressed bytes
    writeFile(root / "only.js.gz", "GZJS");
    writeFile(root / "gzdir.css", "p{}");
    writeFile(root / "big.bin", std::string(16 * 1024 + 1, 'b'));
    writeFile(root / "linked.css", "a{}");
    fs::create_symlink("style.css.gz", root / "linked.css.gz");  // a sibling through a link
    writeFile(root / "sub" / "page.css", "b{}");
    writeFile(root / "sub" / "page.css.gz", "GZPAGE");
    writeFile(root / "sub" / "index.html", "<h1>index</h1>");
    writeFile(root / "sub" / "index.html.gz", "GZINDEX");
    writeFile(root / "sub" / "page.html", "<p>page</p>");
    writeFile(base / "secret.txt", kSecret);
    writeFile(base / "rootsibling" / "secret.txt", kSecret);
    fs::create_symlink("hello.txt", root / "link-inside");
    fs::create_symlink("sub", root / "link-dir");
    fs::create_symlink("../secret.txt", root / "link-outside");
    fs::create_symlink(base / "secret.txt", root / "link-abs");
    fs::create_symlink("/etc/passwd", root / "link-passwd");
    fs::create_symlink("../../secret.txt", root / "sub" / "escape");
    fs::create_symlink("../secret.txt", root / "secret.txt.gz");  // escaping .gz sibling
    writeFile(root / "secret.txt", "inside");
    fs::create_symlink("/proc/self/root/etc/passwd", root / "magic");
    ASSERT_EQ(::mkfifo((root / "fifo").c_str(), 0644), 0);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*base_, ec);
    delete base_;
    base_ = nullptr;
  }

  static std::string root() { return (*base_ / "root").string() + "/"; }

  // Runs one request through a fresh handler on the fixture's directory.
  static FakeExchange run(std::string method, std::string target,
                          std::vector<http::Header> headers = {},
                          std::string prefix = "/static/") {
    FakeExchange ex;
    setRequest(ex, std::move(method), std::move(target), std::move(headers));
    serve(ex, std::move(prefix), root());
    EXPECT_EQ(ex.headCalls, 1);
    EXPECT_TRUE(ex.finished);
    // The declared length is exactly what a GET sends.
    if (ex.head && ex.head->contentLength && !ex.req.isHead() &&
        !http::statusHasNoBody(ex.status())) {
      EXPECT_EQ(*ex.head->contentLength, ex.bodySize()) << ex.req.target;
    }
    return ex;
  }
  static FakeExchange get(std::string target, std::vector<http::Header> headers = {}) {
    return run("GET", std::move(target), std::move(headers));
  }

  static fs::path* base_;
};

fs::path* StaticHandlerTest::base_ = nullptr;

TEST_F(StaticHandlerTest, GetServesFileWithNginxHeaders) {
  FakeExchange ex = get("/static/hello.txt");
  ASSERT_EQ(ex.status(), 200);
  EXPECT_EQ(ex.header("Content-Type"), "text/plain");
  EXPECT_EQ(ex.header("Last-Modified"), kMtimeText);
  EXPECT_EQ(ex.header("ETag"), "\"5f5e1000-d\"");
  EXPECT_EQ(ex.header("Accept-Ranges"), "bytes");
  EXPECT_EQ(ex.header("Vary"), std::nullopt);
  EXPECT_EQ(ex.header("Content-Encoding"), std::nullopt);
  EXPECT_EQ(ex.header("Content-Length"), std::nullopt);  // framing is the connection's job
  EXPECT_EQ(ex.header("Date"), std::nullopt);
  ASSERT_TRUE(ex.head->contentLength.has_value());
  EXPECT_EQ(*ex.head->contentLength, 13u);
  ASSERT_EQ(ex.chunks.size(), 1u);
  EXPECT_FALSE(ex.chunks[0].isFile());  // a small file is read, to leave with its head
  EXPECT_EQ(ex.body, kHello);
}

TEST_F(StaticHandlerTest, LargerFilesAreSentFromTheFile) {
  FakeExchange ex = get("/static/big.bin");
  ASSERT_EQ(ex.status(), 200);
  ASSERT_EQ(ex.chunks.size(), 1u);
  EXPECT_TRUE(ex.chunks[0].isFile());  // sendfile path, above 16 KiB
  EXPECT_EQ(ex.body, std::string(16 * 1024 + 1, 'b'));
  EXPECT_EQ(*ex.head->contentLength, 16u * 1024 + 1);
}

TEST_F(StaticHandlerTest, ContentTypes) {
  struct Case {
    const char* target;
    const char* type;
  } cases[] = {
      {"/static/style.css", "text/css"},
      {"/static/Upper.HTML", "text/html"},
      {"/static/noext", "application/octet-stream"},
      {"/static/link-inside", "application/octet-stream"},  // named by the URL, not the target
      {"/static/sub/page.html", "text/html"},
      {"/static/link-dir/page.html", "text/html"},
  };
  for (const Case& c : cases) {
    FakeExchange ex = get(c.target);
    EXPECT_EQ(ex.status(), 200) << c.target;
    EXPECT_EQ(ex.header("Content-Type"), c.type) << c.target;
  }
}

TEST_F(StaticHandlerTest, EmptyFile) {
  FakeExchange ex = get("/static/empty.txt");
  ASSERT_EQ(ex.status(), 200);
  EXPECT_EQ(ex.head->contentLength, 0u);
  EXPECT_TRUE(ex.chunks.empty());
  EXPECT_EQ(ex.header("ETag"), "\"5f5e1000-0\"");
}

TEST_F(StaticHandlerTest, HeadHasGetHeadersWithoutBody) {
  FakeExchange ex = run("HEAD", "/static/hello.txt");
  ASSERT_EQ(ex.status(), 200);
  EXPECT_EQ(ex.head->contentLength, 13u);
  EXPECT_EQ(ex.header("ETag"), "\"5f5e1000-d\"");
  EXPECT_EQ(ex.header("Content-Type"), "text/plain");
  EXPECT_TRUE(ex.chunks.empty());

  // Range is defined for GET only.
  FakeExchange ranged = run("HEAD", "/static/letters.txt", {{"Range", "bytes=0-1"}});
  EXPECT_EQ(ranged.status(), 200);
  EXPECT_EQ(ranged.head->contentLength, 26u);
  EXPECT_EQ(ranged.header("Content-Range"), std::nullopt);
}

TEST_F(StaticHandlerTest, MethodsOtherThanGetAndHeadAre405) {
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get"}) {
    FakeExchange ex = run(method, "/static/hello.txt");
    EXPECT_EQ(ex.status(), 405) << method;
    EXPECT_EQ(ex.header("Allow"), "GET, HEAD") << method;
    EXPECT_EQ(ex.body, http::errorPageBody(405));
  }
}

struct ConditionalCase {
  std::vector<http::Header> headers;
  int status;
};

TEST_F(StaticHandlerTest, Conditionals) {
  const std::string etag = "\"5f5e1000-d\"";
  const ConditionalCase cases[] = {
      // If-None-Match (weak comparison).
      {{{"If-None-Match", etag}}, 304},
      {{{"If-None-Match", "W/" + etag}}, 304},
      {{{"If-None-Match", "\"nope\", " + etag}}, 304},
      {{{"If-None-Match", "\"nope\""}, {"If-None-Match", etag}}, 304},  // several fields
      {{{"If-None-Match", "*"}}, 304},
      {{{"If-None-Match", "\"nope\""}}, 200},
      {{{"If-None-Match", "5f5e1000-d"}}, 200},  // unquoted: malformed
      {{{"If-None-Match", "\"5f5e1000-e\""}}, 200},
      // If-Modified-Since: only without If-None-Match.
      {{{"If-Modified-Since", kMtimeText}}, 304},
      {{{"If-Modified-Since", "Sun, 13 Sep 2020 12:26:41 GMT"}}, 304},
      {{{"If-Modified-Since", "Sun, 13 Sep 2020 12:26:39 GMT"}}, 200},
      {{{"If-Modified-Since", "Sunday, 13-Sep-20 12:26:40 GMT"}}, 304},  // RFC 850
      {{{"If-Modified-Since", "garbage"}}, 200},
      {{{"If-None-Match", "\"nope\""}, {"If-Modified-Since", kMtimeText}}, 200},
      {{{"If-None-Match", etag}, {"If-Modified-Since", "Sun, 13 Sep 2020 12:00:00 GMT"}}, 304},
      // If-Match (strong comparison) and If-Unmodified-Since.
      {{{"If-Match", etag}}, 200},
      {{{"If-Match", "\"a\", " + etag}}, 200},
      {{{"If-Match", "*"}}, 200},
      {{{"If-Match", "\"nope\""}}, 412},
      {{{"If-Match", "W/" + etag}}, 412},
      {{{"If-Match", "garbage"}}, 412},
      {{{"If-Unmodified-Since", kMtimeText}}, 200},
      {{{"If-Unmodified-Since", "Sun, 13 Sep 2020 12:26:39 GMT"}}, 412},
      {{{"If-Unmodified-Since", "garbage"}}, 200},
      {{{"If-Match", etag}, {"If-Unmodified-Since", "Sun, 13 Sep 2020 12:00:00 GMT"}}, 200},
      // 412 is decided before 304.
      {{{"If-Match", "\"nope\""}, {"If-None-Match", etag}}, 412},
      {{{"If-Match", etag}, {"If-None-Match", etag}}, 304},
  };
  for (const ConditionalCase& c : cases) {
    std::string description;
    for (const auto& h : c.headers) description += h.name + ": " + h.value + "; ";
    FakeExchange ex = get("/static/hello.txt", c.headers);
    ASSERT_EQ(ex.status(), c.status) << description;
    if (c.status == 304) {
      EXPECT_EQ(ex.header("ETag"), etag);
      EXPECT_EQ(ex.header("Last-Modified"), kMtimeText);
      EXPECT_EQ(ex.header("Content-Type"), std::nullopt);
      EXPECT_EQ(ex.head->contentLength, std::nullopt);
      EXPECT_TRUE(ex.chunks.empty());
    } else if (c.status == 200) {
      EXPECT_EQ(ex.body, kHello) << description;
    } else {
      EXPECT_EQ(ex.body, http::errorPageBody(c.status));
    }
    // HEAD evaluates the same preconditions.
    FakeExchange head = run("HEAD", "/static/hello.txt", c.headers);
    EXPECT_EQ(head.status(), c.status) << "HEAD " << description;
  }
}

TEST_F(StaticHandlerTest, SingleRange) {
  FakeExchange ex = get("/static/letters.txt", {{"Range", "bytes=2-5"}});
  ASSERT_EQ(ex.status(), 206);
  EXPECT_EQ(ex.header("Content-Range"), "bytes 2-5/26");
  EXPECT_EQ(ex.header("Content-Type"), "text/plain");
  EXPECT_EQ(ex.header("ETag"), "\"5f5e1000-1a\"");
  EXPECT_EQ(ex.head->contentLength, 4u);
  ASSERT_EQ(ex.chunks.size(), 1u);
  EXPECT_TRUE(ex.chunks[0].isFile());
  EXPECT_EQ(ex.body, "cdef");

  FakeExchange suffix = get("/static/letters.txt", {{"Range", "bytes=-3"}});
  ASSERT_EQ(suffix.status(), 206);
  EXPECT_EQ(suffix.header("Content-Range"), "bytes 23-25/26");
  EXPECT_EQ(suffix.body, "xyz");

  FakeExchange open = get("/static/letters.txt", {{"Range", "bytes=20-"}});
  ASSERT_EQ(open.status(), 206);
  EXPECT_EQ(open.header("Content-Range"), "bytes 20-25/26");
  EXPECT_EQ(open.body, "uvwxyz");
}

TEST_F(StaticHandlerTest, MultipleRangesAreMultipartByteranges) {
  FakeExchange ex = get("/static/letters.txt", {{"Range", "bytes=0-1,4-5,-2"}});
  ASSERT_EQ(ex.status(), 206);
  EXPECT_EQ(ex.header("Content-Range"), std::nullopt);
  std::optional<std::string> type = ex.header("Content-Type");
  ASSERT_TRUE(type.has_value());
  const std::string prefix = "multipart/byteranges; boundary=";
  ASSERT_EQ(type->substr(0, prefix.size()), prefix);
  std::string boundary = type->substr(prefix.size());
  EXPECT_EQ(boundary.size(), 20u);
  EXPECT_EQ(boundary.find_first_not_of("0123456789"), std::string::npos);

  std::string expected;
  auto part = [&](const char* range, const char* data) {
    expected += "\r\n--" + boundary + "\r\nContent-Type: text/plain\r\nContent-Range: bytes " +
                range + "/26\r\n\r\n" + data;
  };
  part("0-1", "ab");
  part("4-5", "ef");
  part("24-25", "yz");
  expected += "\r\n--" + boundary + "--\r\n";
  EXPECT_EQ(ex.body, expected);
  EXPECT_EQ(ex.head->contentLength, expected.size());
  // Data travels as file ranges between the in-memory part headers.
  ASSERT_EQ(ex.chunks.size(), 7u);
  for (size_t i = 0; i < ex.chunks.size(); ++i) EXPECT_EQ(ex.chunks[i].isFile(), i % 2 == 1);

  // A second response gets another boundary.
  FakeExchange again = get("/static/letters.txt", {{"Range", "bytes=0-1,4-5"}});
  EXPECT_NE(again.header("Content-Type"), type);
}

TEST_F(StaticHandlerTest, UnsatisfiableRangeIs416) {
  FakeExchange ex = get("/static/letters.txt", {{"Range", "bytes=26-"}});
  ASSERT_EQ(ex.status(), 416);
  EXPECT_EQ(ex.header("Content-Range"), "bytes */26");
  EXPECT_EQ(ex.body, http::errorPageBody(416));

  FakeExchange empty = get("/static/empty.txt", {{"Range", "bytes=1-"}});
  ASSERT_EQ(empty.status(), 416);
  EXPECT_EQ(empty.header("Content-Range"), "bytes */0");

  // As nginx's range filter, a malformed byte-range set is 416 too.
  for (const char* range : {"bytes=5-3", "bytes=x"}) {
    FakeExchange bad = get("/static/letters.txt", {{"Range", range}});
    EXPECT_EQ(bad.status(), 416) << range;
  }
}

TEST_F(StaticHandlerTest, OtherUnitsOrOversizedRangesAreIgnored) {
  for (const char* range : {"pages=1-2", "bytes=0-,0-"}) {
    FakeExchange ex = get("/static/letters.txt", {{"Range", range}});
    EXPECT_EQ(ex.status(), 200) << range;
    EXPECT_EQ(ex.body, kLetters) << range;
  }
  FakeExchange empty = get("/static/empty.txt", {{"Range", "bytes=0-"}});
  EXPECT_EQ(empty.status(), 200);  // a range from 0 of an empty file: the whole (empty) file
}

TEST_F(StaticHandlerTest, IfRange) {
  struct Case {
    const char* ifRange;
    int status;
  } cases[] = {
      {"\"5f5e1000-1a\"", 206},
      {"\"5f5e1000-1b\"", 200},
      {"W/\"5f5e1000-1a\"", 200},  // weak tags never match for If-Range
      {kMtimeText, 206},
      {"Sun, 13 Sep 2020 12:26:41 GMT", 200},  // must be exactly Last-Modified
      {"garbage", 200},
  };
  for (const Case& c : cases) {
    FakeExchange ex = get("/static/letters.txt", {{"Range", "bytes=0-2"}, {"If-Range", c.ifRange}});
    EXPECT_EQ(ex.status(), c.status) << c.ifRange;
    EXPECT_EQ(ex.body, c.status == 206 ? std::string("abc") : std::string(kLetters));
  }
}

TEST_F(StaticHandlerTest, DirectoryWithoutSlashRedirects) {
  FakeExchange ex = get("/static/sub?x=1&y=%20");
  ASSERT_EQ(ex.status(), 301);
  EXPECT_EQ(ex.header("Location"), "http://example.com:8080/static/sub/?x=1&y=%20");
  EXPECT_EQ(ex.header("Content-Type"), "text/html");
  EXPECT_EQ(ex.body, http::errorPageBody(301));

  FakeExchange plain = get("/static/sub");
  EXPECT_EQ(plain.header("Location"), "http://example.com:8080/static/sub/");
  FakeExchange merged = get("/static//link-dir");
  EXPECT_EQ(merged.header("Location"), "http://example.com:8080/static/link-dir/");
  FakeExchange spaced = get("/static/a%20b");
  EXPECT_EQ(spaced.header("Location"), "http://example.com:8080/static/a%20b/");

  // HTTP/1.0 without Host: the listener's address (port_in_redirect: not the default 80).
  FakeExchange noHost;
  setRequest(noHost, "GET", "/static/sub");
  noHost.req.host.clear();
  noHost.req.headers.clear();
  serve(noHost, "/static/", root());
  EXPECT_EQ(noHost.header("Location"), "http://127.0.0.1:8080/static/sub/");
  FakeExchange v6;
  setRequest(v6, "GET", "/static/sub");
  v6.req.host.clear();
  v6.req.headers.clear();
  v6.conn.localAddress = "::1";
  v6.conn.localPort = 80;
  serve(v6, "/static/", root());
  EXPECT_EQ(v6.header("Location"), "http://[::1]/static/sub/");
}

TEST_F(StaticHandlerTest, DecodedControlCharactersCannotSplitLocation) {
  std::error_code ec;
  fs::create_directory(*base_ / "root" / "cr\r\nlf", ec);
  FakeExchange ex = get("/static/cr%0D%0Alf");
  ASSERT_EQ(ex.status(), 301);
  EXPECT_EQ(ex.header("Location"), "http://example.com:8080/static/cr%0D%0Alf/");
}

TEST_F(StaticHandlerTest, DirectoryIndex) {
  FakeExchange ex = get("/static/sub/");
  ASSERT_EQ(ex.status(), 200);
  EXPECT_EQ(ex.header("Content-Type"), "text/html");
  EXPECT_EQ(ex.body, "<h1>index</h1>");
  EXPECT_EQ(ex.header("Vary"), "Accept-Encoding");  // index.html.gz exists

  FakeExchange gz = get("/static/sub/", {{"Accept-Encoding", "gzip"}});
  ASSERT_EQ(gz.status(), 200);
  EXPECT_EQ(gz.header("Content-Encoding"), "gzip");
  EXPECT_EQ(gz.header("Content-Type"), "text/html");
  EXPECT_EQ(gz.body, "GZINDEX");

  FakeExchange link = get("/static/link-dir/");
  EXPECT_EQ(link.status(), 200);
  EXPECT_EQ(link.body, "<h1>index</h1>");
}

TEST_F(StaticHandlerTest, DirectoryWithoutIndexIs403AndMissingIs404) {
  struct Case {
    const char* target;
    int status;
  } cases[] = {
      {"/static/", 403},   // the mount root has no index.html
      {"/static/empty/", 403},
      {"/static/missing/", 404},
      {"/static/hello.txt/", 404},
      {"/static/missing", 404},
      {"/static/sub/missing.html", 404},
      {"/static/hello.txt/x", 404},
      {"/static/fifo", 404},  // not a regular file; must not block either
      {"/other/hello.txt", 404},
      {"/static", 404},       // outside the "/static/" prefix
  };
  for (const Case& c : cases) {
    FakeExchange ex = get(c.target);
    EXPECT_EQ(ex.status(), c.status) << c.target;
    EXPECT_EQ(ex.body, http::errorPageBody(c.status)) << c.target;
  }
}

TEST_F(StaticHandlerTest, SymlinksInsideAreFollowed) {
  FakeExchange ex = get("/static/link-inside");
  EXPECT_EQ(ex.status(), 200);
  EXPECT_EQ(ex.body, kHello);
  FakeExchange dir = get("/static/link-dir/page.html");
  EXPECT_EQ(dir.status(), 200);
  EXPECT_EQ(dir.body, "<p>page</p>");
}

// Every way out of the directory; none may produce the secret (or a 200 at all).
void expectNoEscape(const std::function<FakeExchange(std::string)>& fetch) {
  struct Case {
    const char* target;
    int status;
  } cases[] = {
      {"/static/../secret.txt", 404},
      {"/static/%2e%2e/secret.txt", 404},
      {"/static/%2E%2E/%2e%2e/secret.txt", 400},  // above the root: nginx's 400
      {"/static/sub/%2e%2e/%2e%2e/secret.txt", 404},
      {"/static/sub/../../secret.txt", 404},
      {"/static//../secret.txt", 404},
      {"/static/./../secret.txt", 404},
      {"/static/link-dir/../../secret.txt", 404},
      {"/static/..%2fsecret.txt", 404},
      {"/static/..%2Fsecret.txt", 404},
      {"/static/sub%2f..%2f..%2fsecret.txt", 404},
      {"/static/..%5csecret.txt", 404},
      {"/static/..%5Csecret.txt", 404},
      {"/static/hello.txt%00.png", 404},
      {"/static/%00", 404},
      {"/static//etc/passwd", 404},
      {"/static/link-outside", 403},
      {"/static/link-abs", 403},
      {"/static/link-passwd", 403},
      {"/static/sub/escape", 403},
      {"/static/magic", 403},
  };
  for (const Case& c : cases) {
    FakeExchange ex = fetch(c.target);
    EXPECT_EQ(ex.status(), c.status) << c.target;
    std::string body = ex.body;
    EXPECT_EQ(body.find(kSecret), std::string::npos) << c.target;
    EXPECT_EQ(body.find("root:"), std::string::npos) << c.target;
  }
}

TEST_F(StaticHandlerTest, TraversalNeverEscapes) {
  expectNoEscape([](std::string target) { return get(std::move(target)); });
  // With gzip accepted, an escaping ".gz" sibling is not served either.
  FakeExchange gz = get("/static/secret.txt", {{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(gz.status(), 200);
  EXPECT_EQ(gz.body, "inside");
  EXPECT_EQ(gz.header("Content-Encoding"), std::nullopt);
  EXPECT_EQ(gz.header("Vary"), std::nullopt);
}

TEST_F(StaticHandlerTest, DecodedNulIsRefused) {
  FakeExchange ex;
  setRequest(ex, "GET", "/static/hello.txt");
  ex.req.path = std::string("/static/hello.txt\0.png", 22);
  serve(ex, "/static/", root());
  EXPECT_EQ(ex.status(), 404);
}

TEST_F(StaticHandlerTest, PrefixWithoutSlashCannotClimb) {
  // nginx's classic `location /static { alias DIR/; }` hole: "/static../x" → DIR/../x.
  for (const char* target : {"/static../secret.txt", "/static../rootsibling/secret.txt",
                             "/static..%2fsecret.txt"}) {
    FakeExchange ex = run("GET", target, {}, "/static");
    EXPECT_NE(ex.status(), 200) << target;
    EXPECT_EQ(ex.body.find(kSecret), std::string::npos) << target;
  }
  FakeExchange ok = run("GET", "/static/hello.txt", {}, "/static");
  EXPECT_EQ(ok.status(), 200);
  EXPECT_EQ(ok.body, kHello);
  FakeExchange alias = run("GET", "/statichello.txt", {}, "/static");  // alias semantics
  EXPECT_EQ(alias.status(), 200);
  FakeExchange root = run("GET", "/static", {}, "/static");
  EXPECT_EQ(root.status(), 301);
  EXPECT_EQ(root.header("Location"), "http://example.com:8080/static/");
}

TEST_F(StaticHandlerTest, RealpathFallbackAlsoConfines) {
  StaticHandler::forceResolveFallbackForTesting(true);
  expectNoEscape([](std::string target) { return get(std::move(target)); });
  FakeExchange ok = get("/static/link-dir/page.html");
  EXPECT_EQ(ok.status(), 200);
  EXPECT_EQ(ok.body, "<p>page</p>");
  EXPECT_EQ(get("/static/sub/").body, "<h1>index</h1>");
  EXPECT_EQ(get("/static/empty/").status(), 403);
  EXPECT_EQ(get("/static/hello.txt/").status(), 404);
  EXPECT_EQ(get("/static/sub").status(), 301);
  StaticHandler::forceResolveFallbackForTesting(false);
}

struct GzipCase {
  const char* acceptEncoding;  // nullptr: no header
  bool compressed;
};

TEST_F(StaticHandlerTest, GzipStaticNegotiation) {
  const GzipCase cases[] = {
      {"gzip", true},
      {"gzip, deflate, br", true},
      {"deflate, GZIP;Q=0.5", true},
      // As nginx (ngx_http_gzip_ok): only a "gzip" token counts, not "x-gzip" nor "*".
      {"x-gzip", false},
      {"*", false},
      {"br;q=1.0, *;q=0.1", false},
      {"gzip;q=0", false},
      {"gzip; q=0.000", false},
      {"gzip;q=0, *", false},  // an explicit refusal beats the wildcard
      {"*;q=0", false},
      {"gzip;q=2", false},     // malformed qvalue: refused
      {"deflate, br", false},
      {"identity", false},
      {"gzipx", false},
      {"", false},
      {nullptr, false},
  };
  for (const GzipCase& c : cases) {
    std::vector<http::Header> headers;
    if (c.acceptEncoding) headers.push_back({"Accept-Encoding", c.acceptEncoding});
    const char* label = c.acceptEncoding ? c.acceptEncoding : "(none)";
    FakeExchange ex = get("/static/style.css", headers);
    ASSERT_EQ(ex.status(), 200) << label;
    EXPECT_EQ(ex.header("Content-Type"), "text/css") << label;
    EXPECT_EQ(ex.header("Vary"), "Accept-Encoding") << label;  // a .gz sibling exists
    if (c.compressed) {
      EXPECT_EQ(ex.header("Content-Encoding"), "gzip") << label;
      EXPECT_EQ(ex.header("ETag"), "\"5f5e1000-6\"") << label;  // the .gz file's validators
      EXPECT_EQ(ex.body, "GZDATA") << label;
    } else {
      EXPECT_EQ(ex.header("Content-Encoding"), std::nullopt) << label;
      EXPECT_EQ(ex.header("ETag"), "\"5f5e1000-14\"") << label;
      EXPECT_EQ(ex.body, "body { color: red; }") << label;
    }
  }
}

// The location's gzip policy: gzip_static asks its client check, and with `gzip on` a Range of
// a file the filter compresses is answered whole (nginx's gzip filter precedes its range filter).
TEST_F(StaticHandlerTest, GzipPolicyDecidesStaticSiblingsAndRanges) {
  config::GzipSettings settings;
  settings.types = {"text/plain", "text/css"};
  settings.minLength = 20;
  settings.vary = true;
  settings.disable = {"curl"};
  std::string error;
  std::optional<http::GzipPolicy> policy = http::GzipPolicy::compile(settings, error);
  ASSERT_TRUE(policy) << error;
  StaticHandler::Options options;
  options.gzip = &*policy;
  auto serve = [&](std::string target, std::vector<http::Header> headers,
                   const StaticHandler::Options& o, int minor = 1) {
    StaticHandler handler((*base_ / "root").string(), http::MimeTypes::builtin(), o);
    FakeExchange ex;
    setRequest(ex, "GET", target, std::move(headers));
    ex.req.versionMinor = minor;
    handler.serve(ex, target.substr(1), [] { return std::string("/"); }, nullptr);
    EXPECT_TRUE(ex.finished) << target;
    return ex;
  };
  const http::Header gz{"Accept-Encoding", "gzip"};
  // gzip_static: gzip_disable and gzip_http_version refuse the sibling (Vary stays).
  EXPECT_EQ(serve("/style.css", {gz}, options).body, "GZDATA");
  FakeExchange curl = serve("/style.css", {gz, {"User-Agent", "curl/8"}}, options);
  EXPECT_EQ(curl.body, "body { color: red; }");
  EXPECT_EQ(curl.header("Vary"), "Accept-Encoding");
  EXPECT_EQ(serve("/style.css", {gz}, options, 0).body, "body { color: red; }");
  // gzip_static always: the sibling for everyone, without Vary.
  StaticHandler::Options always = options;
  always.gzipStaticAlways = true;
  FakeExchange plain = serve("/style.css", {}, always);
  EXPECT_EQ(plain.body, "GZDATA");
  EXPECT_EQ(plain.header("Vary"), std::nullopt);

  // gzip off: Range as before.
  const http::Header range{"Range", "bytes=0-3"};
  EXPECT_EQ(serve("/letters.txt", {gz, range}, options).status(), 206);
  settings.enabled = true;
  policy = http::GzipPolicy::compile(settings, error);
  ASSERT_TRUE(policy) << error;
  FakeExchange whole = serve("/letters.txt", {gz, range}, options);
  EXPECT_EQ(whole.status(), 200);  // the filter compresses the whole file
  EXPECT_EQ(whole.body, kLetters);
  FakeExchange part = serve("/letters.txt", {range}, options);
  EXPECT_EQ(part.status(), 206);
  EXPECT_EQ(part.header("Vary"), "Accept-Encoding");
  FakeExchange unsatisfiable = serve("/letters.txt", {{"Range", "bytes=99-"}}, options);
  EXPECT_EQ(unsatisfiable.status(), 416);
  EXPECT_EQ(unsatisfiable.header("Vary"), "Accept-Encoding");
  // Too short for gzip_min_length: the filter would not touch it, so neither Vary nor 200.
  FakeExchange small = serve("/hello.txt", {gz, range}, options);
  EXPECT_EQ(small.status(), 206);
  EXPECT_EQ(small.header("Vary"), std::nullopt);
}

TEST_F(StaticHandlerTest, GzipEdgeCases) {
  // Only the .gz exists: served to gzip clients (as gzip_static), 404 to others.
  FakeExchange only = get("/static/only.js", {{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(only.status(), 200);
  EXPECT_EQ(only.header("Content-Type"), "application/javascript");
  EXPECT_EQ(only.body, "GZJS");
  EXPECT_EQ(get("/static/only.js").status(), 404);

  // A ".gz" that is a directory is no sibling: no Vary, original served.
  for (const char* ae : {"gzip", "br"}) {
    FakeExchange dir = get("/static/gzdir.css", {{"Accept-Encoding", ae}});
    EXPECT_EQ(dir.status(), 200) << ae;
    EXPECT_EQ(dir.header("Vary"), std::nullopt) << ae;
    EXPECT_EQ(dir.body, "p{}") << ae;
  }

  // No sibling, no Vary.
  EXPECT_EQ(get("/static/hello.txt", {{"Accept-Encoding", "gzip"}}).header("Vary"), std::nullopt);

  // 304 of the compressed variant keeps Vary; ranges apply to the compressed bytes.
  FakeExchange notModified = get("/static/style.css", {{"Accept-Encoding", "gzip"},
                                                       {"If-None-Match", "\"5f5e1000-6\""}});
  EXPECT_EQ(notModified.status(), 304);
  EXPECT_EQ(notModified.header("Vary"), "Accept-Encoding");
  FakeExchange stale = get("/static/style.css", {{"If-None-Match", "\"5f5e1000-6\""}});
  EXPECT_EQ(stale.status(), 200);  // that tag belongs to the other variant
  FakeExchange ranged = get("/static/style.css", {{"Accept-Encoding", "gzip"},
                                                  {"Range", "bytes=0-1"}});
  EXPECT_EQ(ranged.status(), 206);
  EXPECT_EQ(ranged.header("Content-Range"), "bytes 0-1/6");
  EXPECT_EQ(ranged.header("Content-Encoding"), "gzip");
  EXPECT_EQ(ranged.body, "GZ");
}

// gzip_vary: a client without gzip still hears Vary when a regular ".gz" sibling exists, as
// ngx_http_gzip_static_module says it — found by the confined lookup, never through a link
// that leaves the directory.
TEST_F(StaticHandlerTest, VaryForClientsWithoutGzipFollowsTheConfinedSibling) {
  EXPECT_EQ(get("/static/style.css").header("Vary"), "Accept-Encoding");  // regular sibling
  EXPECT_EQ(get("/static/linked.css").header("Vary"), "Accept-Encoding");  // link inside
  EXPECT_EQ(get("/static/sub/page.css").header("Vary"), "Accept-Encoding");  // nested
  FakeExchange escaping = get("/static/secret.txt");  // secret.txt.gz leads outside
  EXPECT_EQ(escaping.status(), 200);
  EXPECT_EQ(escaping.body, "inside");
  EXPECT_EQ(escaping.header("Vary"), std::nullopt);
  EXPECT_EQ(get("/static/gzdir.css").header("Vary"), std::nullopt);  // a directory
  EXPECT_EQ(get("/static/hello.txt").header("Vary"), std::nullopt);  // none
  FakeExchange plain = get("/static/linked.css");
  EXPECT_EQ(plain.body, "a{}");
  EXPECT_EQ(plain.header("Content-Encoding"), std::nullopt);
}

TEST_F(StaticHandlerTest, MissingRootDirectoryIs404) {
  FakeExchange ex;
  setRequest(ex, "GET", "/static/hello.txt");
  serve(ex, "/static/", (*base_ / "does-not-exist").string() + "/");
  EXPECT_EQ(ex.status(), 404);
}

TEST_F(StaticHandlerTest, UnreadableFileIs403) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads everything";
  fs::path locked = *base_ / "root" / "locked.txt";
  writeFile(locked, "locked");
  ASSERT_EQ(::chmod(locked.c_str(), 0), 0);
  EXPECT_EQ(get("/static/locked.txt").status(), 403);
  ::chmod(locked.c_str(), 0644);
}

}  // namespace
}  // namespace portico::staticfiles
