// The HTTP/1 response codec as pure functions: framing choices, serialized heads, chunks.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http/http1_codec.h"

namespace portico::http::http1 {
namespace {

ResponseHead head(int status, std::optional<uint64_t> length, bool close = false) {
  ResponseHead h;
  h.status = status;
  h.contentLength = length;
  h.close = close;
  return h;
}

struct FramingCase {
  const char* name;
  int status;
  std::optional<uint64_t> length;
  bool headRequest;
  int versionMinor;
  bool close;      // the session's close before the head
  bool headClose;  // ResponseHead::close
  // expected
  bool dropBody;
  bool chunked;
  bool closes;
  bool lengthHeader;
};

TEST(Http1Framing, Table) {
  const std::vector<FramingCase> cases = {
      {"length known, 1.1", 200, 5, false, 1, false, false, false, false, false, true},
      {"length unknown, 1.1: chunked", 200, std::nullopt, false, 1, false, false, false, true,
       false, false},
      {"length unknown, 1.0: close-delimited", 200, std::nullopt, false, 0, false, false, false,
       false, true, false},
      {"length known, 1.0: kept", 200, 0, false, 0, false, false, false, false, false, true},
      {"HEAD, length unknown: no framing, kept", 200, std::nullopt, true, 1, false, false, true,
       false, false, false},
      {"HEAD, length known: its length", 200, 42, true, 1, false, false, true, false, false,
       true},
      {"HEAD on 1.0, length unknown: kept", 200, std::nullopt, true, 0, false, false, true,
       false, false, false},
      {"204: no framing at all", 204, 10, false, 1, false, false, true, false, false, false},
      {"204 unknown length", 204, std::nullopt, false, 1, false, false, true, false, false,
       false},
      {"304: no length line", 304, 10, false, 1, false, false, true, false, false, false},
      {"304 unknown length", 304, std::nullopt, false, 0, false, false, true, false, false,
       false},
      {"101: no framing", 101, std::nullopt, false, 1, false, false, true, false, false, false},
      {"handler asks close", 200, 3, false, 1, false, true, false, false, true, true},
      {"session closes", 404, 3, false, 1, true, false, false, false, true, true},
      {"session closes, chunked", 500, std::nullopt, false, 1, true, false, false, true, true,
       false},
  };
  for (const auto& c : cases) {
    ResponseHead h = head(c.status, c.length, c.headClose);
    ResponseFraming f = chooseFraming(h, c.headRequest, c.versionMinor, c.close);
    EXPECT_EQ(f.dropBody, c.dropBody) << c.name;
    EXPECT_EQ(f.chunked, c.chunked) << c.name;
    EXPECT_EQ(f.close, c.closes) << c.name;
    EXPECT_EQ(f.lengthHeader, c.lengthHeader) << c.name;
  }
}

TEST(Http1Framing, TrailersChunkAKnownLengthAndChunkingOffClosesInstead) {
  struct Case {
    const char* name;
    std::optional<uint64_t> length;
    bool expectTrailers, noChunked, headRequest;
    int versionMinor;
    bool chunked, closes, lengthHeader;
  };
  const std::vector<Case> cases = {
      {"trailers, length known, 1.1: chunked, no length", 5, true, false, false, 1, true, false,
       false},
      {"trailers on 1.0: the length", 5, true, false, false, 0, false, false, true},
      {"trailers, HEAD: the length", 5, true, false, true, 1, false, false, true},
      {"trailers, chunking off: the length", 5, true, true, false, 1, false, false, true},
      {"chunking off, length unknown: close-delimited", std::nullopt, false, true, false, 1,
       false, true, false},
      {"chunking off, length known: kept", 5, false, true, false, 1, false, false, true},
  };
  for (const auto& c : cases) {
    ResponseHead h = head(200, c.length, false);
    h.expectTrailers = c.expectTrailers;
    h.noChunked = c.noChunked;
    ResponseFraming f = chooseFraming(h, c.headRequest, c.versionMinor, false);
    EXPECT_EQ(f.chunked, c.chunked) << c.name;
    EXPECT_EQ(f.close, c.closes) << c.name;
    EXPECT_EQ(f.lengthHeader, c.lengthHeader) << c.name;
  }
}

TEST(Http1Chunked, LastChunkCarriesTrailersButNeverALineBreak) {
  EXPECT_EQ(lastChunkWithTrailers({{"X-A", "1"}, {"X-B", "two words"}}),
            "0\r\nX-A: 1\r\nX-B: two words\r\n\r\n");
  EXPECT_EQ(lastChunkWithTrailers({{"X-A", "a\r\nSet-Cookie: x"}, {"X\nB", "1"}, {"", "v"},
                                   {std::string("X-N"), std::string("a\0b", 3)}, {"X-C", "ok"}}),
            "0\r\nX-A: a  Set-Cookie: x\r\nX-N: a b\r\nX-C: ok\r\n\r\n");
}

struct HeadCase {
  const char* name;
  ResponseHead head;
  bool headRequest;
  int versionMinor;
  bool close;
  HeadOptions options;
  std::string expected;
};

constexpr std::string_view kDate = "Thu, 03 Dec 2026 02:00:00 GMT";

HeadOptions options(bool server = true, std::string_view value = "portico",
                    int64_t keepAlive = -1) {
  HeadOptions o;
  o.serverHeader = server;
  o.serverValue = value;
  o.date = kDate;
  o.keepAliveSeconds = keepAlive;
  return o;
}

TEST(Http1Head, Table) {
  ResponseHead withHeaders = head(200, 2);
  withHeaders.add("Content-Type", "text/plain");
  withHeaders.add("content-length", "999");
  withHeaders.add("Transfer-Encoding", "gzip");
  withHeaders.add("Connection", "upgrade");
  withHeaders.add("Keep-Alive", "timeout=9");
  withHeaders.add("DATE", "yesterday");
  withHeaders.add("server", "other");
  withHeaders.add("X-Server", "kept");
  ResponseHead reason = head(299, 0);
  reason.reason = "Fine";
  const std::vector<HeadCase> cases = {
      {"minimal kept", head(200, 5), false, 1, false, options(),
       "HTTP/1.1 200 OK\r\nServer: portico\r\nDate: Thu, 03 Dec 2026 02:00:00 GMT\r\n"
       "Content-Length: 5\r\nConnection: keep-alive\r\n\r\n"},
      {"chunked", head(200, std::nullopt), false, 1, false, options(),
       "HTTP/1.1 200 OK\r\nServer: portico\r\nDate: Thu, 03 Dec 2026 02:00:00 GMT\r\n"
       "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"},
      {"1.0 close-delimited, still answers HTTP/1.1", head(200, std::nullopt), false, 0, false,
       options(), "HTTP/1.1 200 OK\r\nServer: portico\r\nDate: Thu, 03 Dec 2026 02:00:00 GMT\r\n"
                  "Connection: close\r\n\r\n"},
      {"no Server line, keep-alive timeout", head(404, 0), false, 1, false,
       options(false, "", 75),
       "HTTP/1.1 404 Not Found\r\nDate: Thu, 03 Dec 2026 02:00:00 GMT\r\n"
       "Content-Length: 0\r\nKeep-Alive: timeout=75\r\nConnection: keep-alive\r\n\r\n"},
      {"no Keep-Alive line when closing", head(200, 1), false, 1, true,
       options(true, "portico/1.0", 75),
       "HTTP/1.1 200 OK\r\nServer: portico/1.0\r\nDate: Thu, 03 Dec 2026 02:00:00 GMT\r\n"
       "Content-Length: 1\r\nConnection: close\r\n\r\n"},
      {"framing headers of the handler dropped", withHeaders, false, 1, false, options(),
       "HTTP/1.1 200 OK\r\nServer: portico\r\nDate: Thu, 03 Dec 2026 02:00:00 GMT\r\n"
       "Content-Type: text/plain\r\nX-Server: kept\r\nContent-Length: 2\r\n"
       "Connection: keep-alive\r\n\r\n"},
      {"304 keeps no length", head(304, 10), false, 1, false, options(),
       "HTTP/1.1 304 Not Modified\r\nServer: portico\r\nDate: Thu, 03 Dec 2026 02:00:00 GMT\r\n"
       "Connection: keep-alive\r\n\r\n"},
      {"204", head(204, std::nullopt), false, 1, false, options(),
       "HTTP/1.1 204 No Content\r\nServer: portico\r\nDate: Thu, 03 Dec 2026 02:00:00 GMT\r\n"
       "Connection: keep-alive\r\n\r\n"},
      {"HEAD keeps the GET's length", head(200, 1234), true, 1, false, options(),
       "HTTP/1.1 200 OK\r\nServer: portico\r\nDate: Thu, 03 Dec 2026 02:00:00 GMT\r\n"
       "Content-Length: 1234\r\nConnection: keep-alive\r\n\r\n"},
      {"101 switches: Connection: upgrade, no Keep-Alive", head(101, std::nullopt), false, 1,
       true, options(true, "portico", 75),
       "HTTP/1.1 101 Switching Protocols\r\nServer: portico\r\n"
       "Date: Thu, 03 Dec 2026 02:00:00 GMT\r\nConnection: upgrade\r\n\r\n"},
      {"own reason phrase", reason, false, 1, false, options(),
       "HTTP/1.1 299 Fine\r\nServer: portico\r\nDate: Thu, 03 Dec 2026 02:00:00 GMT\r\n"
       "Content-Length: 0\r\nConnection: keep-alive\r\n\r\n"},
  };
  for (const auto& c : cases) {
    ResponseFraming f = chooseFraming(c.head, c.headRequest, c.versionMinor, c.close);
    EXPECT_EQ(serializeHead(c.head, f, c.options), c.expected) << c.name;
  }
}

TEST(Http1Head, ALineBreakInAFieldNeverStartsALine) {
  ResponseHead h;
  h.status = 200;
  h.contentLength = 0;
  h.add("X-Uri", "/a\r\nSet-Cookie: x");  // add_header X-Uri $uri, "%0d%0a" decoded
  h.add("X-Nul", std::string("a\0b", 3));
  h.add("X\nBad", "v");
  h.add("X-Ok", "fine");
  std::string out = serializeHead(h, chooseFraming(h, false, 1, false), options());
  EXPECT_NE(out.find("\r\nX-Uri: /a  Set-Cookie: x\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("\nSet-Cookie"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nX-Nul: a b\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("Bad"), std::string::npos) << out;  // a name cannot be mended
  EXPECT_NE(out.find("\r\nX-Ok: fine\r\n"), std::string::npos) << out;
}

TEST(Http1Head, FramingHeaderNames) {
  for (const char* name : {"Date", "server", "CONNECTION", "Keep-Alive", "content-length",
                           "Transfer-Encoding"}) {
    EXPECT_TRUE(isFramingHeader(name)) << name;
  }
  for (const char* name : {"", "Dat", "Content-Type", "X-Server", "Keep-Alives", "Upgrade",
                           "Content-Encoding", "Transfer-Encodings"}) {
    EXPECT_FALSE(isFramingHeader(name)) << name;
  }
}

TEST(Http1Chunks, Headers) {
  const std::vector<std::pair<uint64_t, std::string>> cases = {
      {0, "0\r\n"},       {1, "1\r\n"},          {15, "f\r\n"},
      {16, "10\r\n"},     {4096, "1000\r\n"},    {0xabcdef, "abcdef\r\n"},
      {UINT64_MAX, "ffffffffffffffff\r\n"},
  };
  for (const auto& [size, expected] : cases) EXPECT_EQ(chunkHeader(size), expected) << size;
  EXPECT_EQ(kLastChunk, "0\r\n\r\n");
  EXPECT_EQ(kChunkEnd, "\r\n");
  EXPECT_EQ(kContinue, "HTTP/1.1 100 Continue\r\n\r\n");
}

TEST(Http1Continue, OnlyHttp11WithABody) {
  struct Case {
    int minor;
    bool expect;
    bool chunked;
    std::optional<uint64_t> length;
    bool wants;
  };
  const std::vector<Case> cases = {
      {1, true, false, 10, true},  {1, true, true, std::nullopt, true},
      {1, true, false, 0, false},  {1, true, false, std::nullopt, false},
      {0, true, false, 10, false}, {1, false, false, 10, false},
  };
  for (const auto& c : cases) {
    Request r;
    r.versionMinor = c.minor;
    r.chunked = c.chunked;
    r.contentLength = c.length;
    EXPECT_EQ(wantsContinue(r, c.expect), c.wants) << c.minor << c.expect << c.chunked;
  }
}

}  // namespace
}  // namespace portico::http::http1
