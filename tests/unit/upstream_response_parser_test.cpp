// The strict upstream response parser: framing per RFC 9112 §6.3, what it refuses (502 for the
// engine), and that the outcome does not depend on how the bytes were split.
#include <gtest/gtest.h>

#include <string>

#include "upstream/response_parser.h"

namespace portico::upstream {
namespace {

struct Outcome {
  ResponseParser::Status status = ResponseParser::Status::kNeedMore;
  UpstreamHead head;
  std::string body;
  std::string error;
  std::string rest;  // bytes after the response, not consumed
};

// Feeds `bytes` in pieces of `step` bytes (0: whole); `close`: the upstream closes at the end.
Outcome feed(const std::string& bytes, size_t step = 0, bool close = false, size_t maxHead = 4096,
             bool headRequest = false) {
  ResponseParser parser(maxHead, headRequest);
  Outcome out;
  std::string buffer;
  bool inBody = false;
  size_t at = 0;
  if (step == 0) step = bytes.size() ? bytes.size() : 1;
  while (true) {
    bool last = at >= bytes.size();
    if (!last) {
      buffer.append(bytes, at, step);
      at += step;
    }
    size_t consumed = 0;
    if (!inBody) {
      out.status = parser.parseHead(buffer, consumed);
      buffer.erase(0, consumed);
      if (out.status == ResponseParser::Status::kHead) {
        out.head = parser.head();
        inBody = true;
      }
    }
    if (inBody) {
      out.status = parser.parseBody(buffer, consumed, out.body);
      buffer.erase(0, consumed);
    }
    if (out.status == ResponseParser::Status::kError || out.status == ResponseParser::Status::kDone)
      break;
    if (last) {
      if (close) out.status = parser.onClose();
      break;
    }
  }
  out.error = parser.error();
  out.rest = buffer;
  return out;
}

using S = ResponseParser::Status;

TEST(UpstreamResponseParser, ContentLengthBody) {
  std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhelloEXTRA";
  for (size_t step : {0, 1, 3}) {
    Outcome o = feed(r, step);
    EXPECT_EQ(o.status, S::kDone) << step;
    EXPECT_EQ(o.head.status, 200);
    EXPECT_EQ(o.head.reason, "OK");
    EXPECT_EQ(o.head.framing, BodyFraming::kLength);
    EXPECT_TRUE(o.head.keepAlive);
    EXPECT_EQ(o.body, "hello");
    ASSERT_EQ(o.head.headers.size(), 2u);
    EXPECT_EQ(o.head.headers[1].name, "X-A");
    EXPECT_EQ(o.head.headers[1].value, "b");
  }
}

TEST(UpstreamResponseParser, ChunkedWithExtensionsAndTrailers) {
  std::string r =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n";
  for (size_t step : {0, 1, 2, 7}) {
    Outcome o = feed(r, step);
    EXPECT_EQ(o.status, S::kDone) << step;
    EXPECT_EQ(o.body, "helloabcdefghijklmnopqrstuvwxyz");
    EXPECT_EQ(o.head.framing, BodyFraming::kChunked);
  }
}

TEST(UpstreamResponseParser, CloseDelimited) {
  Outcome o = feed("HTTP/1.0 200 OK\r\nX: y\r\n\r\nall of it", 4, true);
  EXPECT_EQ(o.status, S::kDone);
  EXPECT_EQ(o.body, "all of it");
  EXPECT_FALSE(o.head.keepAlive);
  EXPECT_EQ(o.head.framing, BodyFraming::kClose);
}

TEST(UpstreamResponseParser, PrematureCloseIsAnError) {
  EXPECT_EQ(feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, true).status, S::kError);
  EXPECT_EQ(feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 0, true).status,
            S::kError);
}

TEST(UpstreamResponseParser, InterimResponsesAreSkipped) {
  Outcome o = feed("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\n"
                   "HTTP/1.1 204 No Content\r\n\r\n", 1);
  EXPECT_EQ(o.status, S::kDone);
  EXPECT_EQ(o.head.status, 204);
  EXPECT_EQ(o.head.framing, BodyFraming::kNone);
}

TEST(UpstreamResponseParser, BodilessResponses) {
  Outcome head = feed("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 0, false, 4096, true);
  EXPECT_EQ(head.status, S::kDone);
  EXPECT_EQ(head.head.contentLength, 100u);
  EXPECT_EQ(feed("HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n").status, S::kDone);
}

TEST(UpstreamResponseParser, RefusesSmugglingAndSplitting) {
  using namespace std::string_literals;
  const std::string bad[] = {
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
      // A CR anywhere else in a head line: in a name, before its colon, ending a value, in
      // the status line's reason or where its space belongs.
      "HTTP/1.1 200 OK\r\nX\rY: a\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX\r: a\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\r\r\n\r\n",
      "HTTP/1.1 200 O\rK\r\n\r\n",
      "HTTP/1.1 200\rOK\r\n\r\n",
      "HTTP/1.1 200 OK\r\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n"s,
      "HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
      "HTTP/1.1 200 OK\r\n: a\r\n\r\n",
      "HTTP/1.1 2000 OK\r\n\r\n",
      "HTTP/2.0 200 OK\r\n\r\n",
      "garbage\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\x01\r\nhello\r\n0\r\n\r\n",
      "HTTP/1.1 101 Switching\r\n\r\n" "x",  // 101 is reported; not a 1xx to skip
  };
  for (size_t i = 0; i + 1 < std::size(bad); ++i) {
    const std::string& r = bad[i];
    for (size_t step : {0, 1}) {
      Outcome o = feed(r, step);
      EXPECT_EQ(o.status, S::kError) << i << " step " << step << ": " << r;
      EXPECT_FALSE(o.error.empty());
    }
  }
  Outcome o = feed(bad[std::size(bad) - 1]);
  EXPECT_EQ(o.head.status, 101);
}

TEST(UpstreamResponseParser, IdenticalContentLengthsAreOne) {
  Outcome o = feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nok");
  EXPECT_EQ(o.status, S::kDone);
  EXPECT_EQ(o.body, "ok");
}

TEST(UpstreamResponseParser, HeadBoundedByBufferSize) {
  std::string big = "HTTP/1.1 200 OK\r\nX: " + std::string(5000, 'a') + "\r\n\r\n";
  for (size_t step : {0, 1, 100}) {
    Outcome o = feed(big, step, false, 4096);
    EXPECT_EQ(o.status, S::kError);
    EXPECT_EQ(o.error, "upstream sent too big header");
  }
  EXPECT_EQ(feed(big, 0, false, 8192).status, S::kNeedMore /* a complete head, then a close-delimited body */);
}

TEST(UpstreamResponseParser, ConnectionTokens) {
  EXPECT_FALSE(feed("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                   .head.keepAlive);
  EXPECT_TRUE(feed("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
                  .head.keepAlive);
  EXPECT_FALSE(feed("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").head.keepAlive);
}

TEST(UpstreamResponseParser, LfOnlyLinesAreAccepted) {
  Outcome o = feed("HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 1);
  EXPECT_EQ(o.status, S::kDone);
  EXPECT_EQ(o.body, "ok");
}

}  // namespace
}  // namespace portico::upstream
