#include "http/parser.h"
#include "http/response.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace portico::http {
namespace {

// One fully parsed message as a connection would see it.
struct Message {
  Request request;
  std::string body;
  std::vector<Header> trailers;
  bool keepAlive = true;         // the parser's framing facts for this head
  bool expectContinue = false;
};

// What feeding a whole input produced.
struct Outcome {
  std::vector<Message> messages;
  int errorStatus = 0;
  std::string errorReason;
  bool incomplete = false;  // a message was still in progress at the end
};

// Feeds `input` in pieces of `step` bytes (0 = all at once) the way a connection does: append
// to a buffer, parse until kNeedMore, drop the consumed prefix.
Outcome feed(const std::string& input, size_t step, ParserLimits limits = {}) {
  RequestParser parser(limits);
  Outcome out;
  std::string buffer;
  bool inMessage = false;
  size_t offset = 0;
  if (step == 0) step = input.size() == 0 ? 1 : input.size();
  while (offset < input.size() || offset == 0) {
    buffer.append(input, offset, step);
    offset += step;
    for (int guard = 0;; ++guard) {
      if (guard > 100000) {
        ADD_FAILURE() << "parser does not make progress";
        return out;
      }
      size_t consumed = 12345;
      ParseEvent ev = parser.parse(buffer, consumed);
      EXPECT_LE(consumed, buffer.size());
      if (ev == ParseEvent::kError) {
        out.errorStatus = parser.errorStatus();
        out.errorReason = parser.errorReason();
        size_t again = 0;
        EXPECT_EQ(parser.parse(buffer, again), ParseEvent::kError);
        EXPECT_EQ(parser.parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n", again), ParseEvent::kError);
        return out;
      }
      std::string_view body = parser.bodyData();
      std::string chunk = ev == ParseEvent::kBodyData ? std::string(body) : std::string();
      buffer.erase(0, consumed);
      if (ev == ParseEvent::kNeedMore) break;
      if (ev == ParseEvent::kHeadComplete) {
        EXPECT_FALSE(inMessage);
        inMessage = true;
        out.messages.push_back({parser.request(), {}, {}, parser.keepAlive(),
                                parser.expectContinue()});
      } else if (ev == ParseEvent::kBodyData) {
        EXPECT_TRUE(inMessage);
        EXPECT_FALSE(chunk.empty());
        if (!out.messages.empty()) out.messages.back().body += chunk;
      } else if (ev == ParseEvent::kMessageComplete) {
        EXPECT_TRUE(inMessage);
        inMessage = false;
        if (!out.messages.empty()) out.messages.back().trailers = parser.trailers();
      }
    }
    if (offset >= input.size()) break;
  }
  out.incomplete = inMessage;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Valid requests.

struct ValidCase {
  const char* name;
  std::string input;
  size_t count;  // messages expected
  // Checks on the first message.
  std::string method;
  std::string target;
  std::string rawPath;
  std::string path;
  std::string query;
  std::string host;
  std::string authority;
  int minor;
  bool keepAlive;
  bool expectContinue;
  bool chunked;
  std::string body;
  size_t trailerCount;
};

std::vector<ValidCase> validCases() {
  return {
      {"simple_get", "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", 1, "GET", "/", "/", "/", "",
       "example.com", "", 1, true, false, false, "", 0},
      {"get_with_query", "GET /a%20b/c?x=1&y=%41 HTTP/1.1\r\nHost: h:8080\r\nAccept: */*\r\n\r\n",
       1, "GET", "/a%20b/c?x=1&y=%41", "/a%20b/c", "/a b/c", "x=1&y=%41", "h:8080", "", 1, true,
       false, false, "", 0},
      {"leading_empty_lines", "\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n", 1, "GET", "/x", "/x",
       "/x", "", "h", "", 1, true, false, false, "", 0},
      {"absolute_form", "GET http://Example.org:81 HTTP/1.1\r\nHost: other\r\n\r\n", 1, "GET",
       "http://Example.org:81", "/", "/", "", "Example.org:81", "Example.org:81", 1, true, false,
       false, "", 0},
      {"absolute_form_https_path",
       "GET HTTPS://h.example/p/q?z HTTP/1.1\r\nHost: h.example\r\n\r\n", 1, "GET",
       "HTTPS://h.example/p/q?z", "/p/q", "/p/q", "z", "h.example", "h.example", 1, true, false,
       false, "", 0},
      {"absolute_form_query_only", "GET http://h?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", 1, "GET",
       "http://h?q=1", "/", "/", "q=1", "h", "h", 1, true, false, false, "", 0},
      {"options_star", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 1, "OPTIONS", "*", "*", "*", "",
       "h", "", 1, true, false, false, "", 0},
      // Bare LF ends a line as CRLF does (RFC 9112 2.2; nginx), in every part of a message.
      {"bare_lf_everywhere", "\nPOST /b HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\n\n"
       "5\nhello\n0\nX: y\n\n", 1, "POST", "/b", "/b", "/b", "", "h", "", 1, true, false, true,
       "hello", 1},
      {"bare_lf_mixed", "GET /m HTTP/1.1\r\nHost: h\nA: b\r\n\n", 1, "GET", "/m", "/m", "/m", "",
       "h", "", 1, true, false, false, "", 0},
      // A fragment is dropped from the URI and the arguments; the target keeps it.
      {"fragment_in_target", "GET /a?x=1#frag HTTP/1.1\r\nHost: h\r\n\r\n", 1, "GET",
       "/a?x=1#frag", "/a", "/a", "x=1", "h", "", 1, true, false, false, "", 0},
      {"fragment_after_path", "GET /a/#f?g HTTP/1.1\r\nHost: h\r\n\r\n", 1, "GET", "/a/#f?g",
       "/a/", "/a/", "", "h", "", 1, true, false, false, "", 0},
      {"http10_default_close", "GET / HTTP/1.0\r\n\r\n", 1, "GET", "/", "/", "/", "", "", "", 0,
       false, false, false, "", 0},
      {"http10_keep_alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1, "GET", "/",
       "/", "/", "", "", "", 0, true, false, false, "", 0},
      {"http10_expect_ignored", "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
       1, "POST", "/", "/", "/", "", "", "", 0, false, false, false, "", 0},
      {"http11_close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, CLOSE\r\n\r\n", 1, "GET",
       "/", "/", "/", "", "h", "", 1, false, false, false, "", 0},
      {"http11_close_and_keepalive",
       "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", 1,
       "GET", "/", "/", "/", "", "h", "", 1, false, false, false, "", 0},
      {"expect_continue",
       "PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\nabc", 1,
       "PUT", "/u", "/u", "/u", "", "h", "", 1, true, true, false, "abc", 0},
      {"expect_other_ignored", "GET / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n", 1, "GET",
       "/", "/", "/", "", "h", "", 1, true, false, false, "", 0},
      {"content_length_body",
       "POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world", 1, "POST", "/f",
       "/f", "/f", "", "h", "", 1, true, false, false, "hello world", 0},
      {"content_length_zero", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 1, "POST",
       "/", "/", "/", "", "h", "", 1, true, false, false, "", 0},
      {"chunked_simple",
       "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
       1, "POST", "/c", "/c", "/c", "", "h", "", 1, true, false, true, "hello world", 0},
      {"chunked_ext_trailers",
       "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
       "A;name=value;flag\r\n0123456789\r\n"
       "3 ; q=\"a \\\"b\\\" c\"\r\nabc\r\n"
       "000;last\r\nX-Checksum: 42\r\nX-Other:  v  \r\n\r\n",
       1, "POST", "/c", "/c", "/c", "", "h", "", 1, true, false, true, "0123456789abc", 2},
      {"chunked_uppercase_hex",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
       "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
       1, "POST", "/", "/", "/", "", "h", "", 1, true, false, true, "abcdefghijklmnopqrstuvwxyz",
       0},
      {"header_value_obs_text_and_tab",
       "GET / HTTP/1.1\r\nHost: h\r\nX-A:\t\xC3\xA9t\xC3\xA9 \t x\r\nX-Empty:\r\n\r\n", 1, "GET",
       "/", "/", "/", "", "h", "", 1, true, false, false, "", 0},
      {"empty_host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 1, "GET", "/", "/", "/", "", "", "", 1,
       true, false, false, "", 0},
      {"custom_method_token", "M-SEARCH /x HTTP/1.1\r\nHost: h\r\n\r\n", 1, "M-SEARCH", "/x",
       "/x", "/x", "", "h", "", 1, true, false, false, "", 0},
      {"encoded_nul_and_slash", "GET /a%00b%2Fc HTTP/1.1\r\nHost: h\r\n\r\n", 1, "GET",
       "/a%00b%2Fc", "/a%00b%2Fc", std::string("/a\0b/c", 6), "", "h", "", 1, true, false, false,
       "", 0},
      {"dot_segments_not_normalized", "GET /a/../b/./c//d HTTP/1.1\r\nHost: h\r\n\r\n", 1, "GET",
       "/a/../b/./c//d", "/a/../b/./c//d", "/a/../b/./c//d", "", "h", "", 1, true, false, false,
       "", 0},
      {"two_requests",
       "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nz",
       2, "GET", "/1", "/1", "/1", "", "h", "", 1, true, false, false, "", 0},
  };
}

void checkFirst(const ValidCase& c, const Outcome& o) {
  ASSERT_EQ(o.errorStatus, 0) << o.errorReason;
  ASSERT_EQ(o.messages.size(), c.count);
  EXPECT_FALSE(o.incomplete);
  const Message& m = o.messages[0];
  const Request& r = m.request;
  EXPECT_EQ(r.method, c.method);
  EXPECT_EQ(r.target, c.target);
  EXPECT_EQ(r.rawPath, c.rawPath);
  EXPECT_EQ(r.path, c.path);
  EXPECT_EQ(r.query, c.query);
  EXPECT_EQ(r.host, c.host);
  EXPECT_EQ(r.authority, c.authority);
  EXPECT_EQ(r.versionMajor, 1);
  EXPECT_EQ(r.versionMinor, c.minor);
  EXPECT_EQ(m.keepAlive, c.keepAlive);
  EXPECT_EQ(m.expectContinue, c.expectContinue);
  EXPECT_EQ(r.chunked, c.chunked);
  EXPECT_EQ(m.body, c.body);
  EXPECT_EQ(m.trailers.size(), c.trailerCount);
}

TEST(ParserValid, WholeBuffer) {
  for (const auto& c : validCases()) {
    SCOPED_TRACE(c.name);
    checkFirst(c, feed(c.input, 0));
  }
}

TEST(ParserValid, ByteAtATimeAndOtherSplits) {
  for (const auto& c : validCases()) {
    for (size_t step : {1, 2, 3, 7, 13}) {
      SCOPED_TRACE(std::string(c.name) + " step " + std::to_string(step));
      checkFirst(c, feed(c.input, step));
    }
  }
}

TEST(ParserValid, ChunkedTrailerValues) {
  std::string input;
  for (const auto& c : validCases()) {
    if (std::string(c.name) == "chunked_ext_trailers") input = c.input;
  }
  Outcome o = feed(input, 1);
  ASSERT_EQ(o.messages.size(), 1u);
  const auto& t = o.messages[0].trailers;
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].name, "X-Checksum");
  EXPECT_EQ(t[0].value, "42");
  EXPECT_EQ(t[1].name, "X-Other");
  EXPECT_EQ(t[1].value, "v");
  // Trailers are not mixed into the head.
  EXPECT_EQ(o.messages[0].request.header("X-Checksum"), nullptr);
}

TEST(ParserValid, HeadersPreservedInOrder) {
  Outcome o = feed(
      "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nContent-Type:text/plain  \r\n\r\n", 0);
  ASSERT_EQ(o.messages.size(), 1u);
  const Request& r = o.messages[0].request;
  ASSERT_EQ(r.headers.size(), 4u);
  EXPECT_EQ(r.headers[1].name, "X-A");
  EXPECT_EQ(r.headers[2].name, "x-a");
  EXPECT_EQ(r.headers[3].value, "text/plain");
  ASSERT_NE(r.header("x-A"), nullptr);
  EXPECT_EQ(*r.header("x-A"), "1");
  EXPECT_EQ(*r.header("content-type"), "text/plain");
  EXPECT_EQ(r.header("missing"), nullptr);
}

TEST(ParserValid, Pipelined16) {
  std::string input;
  for (int i = 0; i < 16; ++i) {
    if (i % 3 == 0) {
      input += "POST /p" + std::to_string(i) + "?n=" + std::to_string(i) +
               " HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody";
    } else if (i % 3 == 1) {
      input += "PUT /p" + std::to_string(i) +
               " HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n";
    } else {
      input += "GET /p" + std::to_string(i) + " HTTP/1.1\r\nHost: h" + std::to_string(i) +
               "\r\n\r\n";
    }
  }
  for (size_t step : {0, 1, 5, 64}) {
    SCOPED_TRACE(step);
    Outcome o = feed(input, step);
    ASSERT_EQ(o.errorStatus, 0) << o.errorReason;
    ASSERT_EQ(o.messages.size(), 16u);
    for (int i = 0; i < 16; ++i) {
      const Message& m = o.messages[static_cast<size_t>(i)];
      EXPECT_EQ(m.request.path, "/p" + std::to_string(i));
      if (i % 3 == 0) {
        EXPECT_EQ(m.body, "body");
        EXPECT_EQ(m.request.query, "n=" + std::to_string(i));
        EXPECT_FALSE(m.request.chunked);
      } else if (i % 3 == 1) {
        EXPECT_EQ(m.body, "ab");
        EXPECT_TRUE(m.request.chunked);
        EXPECT_FALSE(m.request.contentLength.has_value());
        EXPECT_EQ(m.request.query, "");  // cleared from the previous request
      } else {
        EXPECT_EQ(m.body, "");
        EXPECT_EQ(m.request.host, "h" + std::to_string(i));
        EXPECT_EQ(m.request.headers.size(), 1u);
        EXPECT_FALSE(m.request.chunked);
      }
    }
  }
}

TEST(ParserEvents, NoBodyCompletesOnNextCallWithEmptyInput) {
  RequestParser p;
  size_t consumed = 0;
  std::string in = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  ASSERT_EQ(p.parse(in, consumed), ParseEvent::kHeadComplete);
  EXPECT_EQ(consumed, in.size());
  EXPECT_FALSE(p.request().hasBody());
  ASSERT_EQ(p.parse("", consumed), ParseEvent::kMessageComplete);
  EXPECT_EQ(consumed, 0u);
  ASSERT_EQ(p.parse("", consumed), ParseEvent::kNeedMore);
  EXPECT_EQ(consumed, 0u);
}

TEST(ParserEvents, ContentLengthBodyInPieces) {
  RequestParser p;
  size_t consumed = 0;
  std::string head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n";
  ASSERT_EQ(p.parse(head + "0123", consumed), ParseEvent::kHeadComplete);
  EXPECT_EQ(consumed, head.size());
  EXPECT_EQ(p.remainingContentLength(), 10u);
  ASSERT_EQ(p.parse("0123", consumed), ParseEvent::kBodyData);
  EXPECT_EQ(consumed, 4u);
  EXPECT_EQ(p.bodyData(), "0123");
  EXPECT_EQ(p.remainingContentLength(), 6u);
  ASSERT_EQ(p.parse("", consumed), ParseEvent::kNeedMore);
  // Only the remaining six bytes belong to the body; the rest is the next request.
  ASSERT_EQ(p.parse("456789GET", consumed), ParseEvent::kBodyData);
  EXPECT_EQ(consumed, 6u);
  EXPECT_EQ(p.bodyData(), "456789");
  ASSERT_EQ(p.parse("GET", consumed), ParseEvent::kMessageComplete);
  EXPECT_EQ(consumed, 0u);
  ASSERT_EQ(p.parse("GET", consumed), ParseEvent::kNeedMore);
  EXPECT_EQ(consumed, 0u);
}

TEST(ParserEvents, ChunkedConsumedCounts) {
  RequestParser p;
  size_t consumed = 0;
  std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  ASSERT_EQ(p.parse(head, consumed), ParseEvent::kHeadComplete);
  EXPECT_EQ(p.remainingContentLength(), 0u);
  ASSERT_EQ(p.parse("5\r\nhel", consumed), ParseEvent::kBodyData);
  EXPECT_EQ(consumed, 6u);
  EXPECT_EQ(p.bodyData(), "hel");
  ASSERT_EQ(p.parse("lo\r", consumed), ParseEvent::kBodyData);
  EXPECT_EQ(consumed, 2u);
  ASSERT_EQ(p.parse("\r", consumed), ParseEvent::kNeedMore);
  EXPECT_EQ(consumed, 0u);
  ASSERT_EQ(p.parse("\r\n0\r\n", consumed), ParseEvent::kNeedMore);
  EXPECT_EQ(consumed, 5u);
  ASSERT_EQ(p.parse("\r\n", consumed), ParseEvent::kMessageComplete);
  EXPECT_EQ(consumed, 2u);
}

TEST(ParserEvents, ResetAfterErrorAllowsFreshStart) {
  RequestParser p;
  size_t consumed = 0;
  ASSERT_EQ(p.parse("BAD\r\n", consumed), ParseEvent::kError);
  EXPECT_EQ(p.errorStatus(), 400);
  EXPECT_FALSE(p.errorReason().empty());
  p.reset();
  EXPECT_EQ(p.errorStatus(), 0);
  ASSERT_EQ(p.parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n", consumed), ParseEvent::kHeadComplete);
}

TEST(ParserEvents, RequestValidUntilNextHead) {
  RequestParser p;
  size_t consumed = 0;
  ASSERT_EQ(p.parse("GET /first HTTP/1.1\r\nHost: h\r\n\r\n", consumed),
            ParseEvent::kHeadComplete);
  ASSERT_EQ(p.parse("", consumed), ParseEvent::kMessageComplete);
  // A partially parsed next request does not disturb the finished one.
  std::string next = "POST /second?q HTTP/1.0\r\nX-A: 1\r\n";
  ASSERT_EQ(p.parse(next, consumed), ParseEvent::kNeedMore);
  EXPECT_EQ(consumed, next.size());
  EXPECT_EQ(p.request().path, "/first");
  EXPECT_EQ(p.request().method, "GET");
  EXPECT_EQ(p.request().headers.size(), 1u);
  ASSERT_EQ(p.parse("\r\n", consumed), ParseEvent::kHeadComplete);
  EXPECT_EQ(p.request().path, "/second");
  EXPECT_EQ(p.request().query, "q");
  EXPECT_EQ(p.request().versionMinor, 0);
  EXPECT_EQ(p.request().host, "");
  ASSERT_EQ(p.request().headers.size(), 1u);
  EXPECT_EQ(p.request().headers[0].name, "X-A");
}

// ---------------------------------------------------------------------------------------------
// Malformed requests.

struct BadCase {
  const char* name;
  std::string input;
  int status;
};

std::string repeat(char c, size_t n) { return std::string(n, c); }

std::vector<BadCase> badCases() {
  const std::string h = "Host: h\r\n";
  std::vector<BadCase> v = {
      // Request line.
      {"empty_method", " / HTTP/1.1\r\n", 400},
      {"bad_method_char", "GE(T / HTTP/1.1\r\n", 400},
      {"method_only", "GET\r\n", 400},
      {"double_space_after_method", "GET  / HTTP/1.1\r\n", 400},
      {"double_space_before_version", "GET /  HTTP/1.1\r\n", 400},
      {"trailing_space", "GET / HTTP/1.1 \r\n", 400},
      {"tab_separator", "GET\t/ HTTP/1.1\r\n", 400},
      {"missing_version", "GET /\r\n", 400},
      {"lowercase_version", "GET / http/1.1\r\n", 400},
      {"version_garbage", "GET / HTTP/1.1x\r\n", 400},
      {"version_two_digit", "GET / HTTP/10.1\r\n", 400},
      {"version_no_dot", "GET / HTTP/11\r\n", 400},
      {"http2", "GET / HTTP/2.0\r\n", 505},
      {"http09", "GET / HTTP/0.9\r\n", 505},
      {"http12", "GET / HTTP/1.2\r\n", 505},
      {"http3", "GET / HTTP/3.0\r\n", 505},
      {"space_in_target", "GET /a b HTTP/1.1\r\n", 400},
      {"ctl_in_target", "GET /a\x01 HTTP/1.1\r\n" + h + "\r\n", 400},
      {"del_in_target", "GET /a\x7f HTTP/1.1\r\n" + h + "\r\n", 400},
      {"high_byte_in_target", "GET /\xC3\xA9 HTTP/1.1\r\n" + h + "\r\n", 400},
      {"relative_target", "GET a/b HTTP/1.1\r\n" + h + "\r\n", 400},
      {"star_not_options", "GET * HTTP/1.1\r\n" + h + "\r\n", 400},
      {"authority_not_connect", "GET h:80 HTTP/1.1\r\n" + h + "\r\n", 400},
      {"connect_origin_form", "CONNECT / HTTP/1.1\r\n" + h + "\r\n", 405},
      {"connect_authority", "CONNECT h.example:443 HTTP/1.1\r\nHost: h.example:443\r\n\r\n", 405},
      {"trace", "TRACE / HTTP/1.1\r\n" + h + "\r\n", 405},
      // nginx's unique header lines: a second one is a 400 whatever its value.
      {"content_length_repeated",
       "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", 400},
      {"content_length_list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2, 2\r\n\r\nok", 400},
      {"authorization_twice", "GET / HTTP/1.1\r\n" + h + "Authorization: a\r\nAuthorization: a\r\n\r\n", 400},
      {"if_none_match_twice", "GET / HTTP/1.1\r\n" + h + "If-None-Match: a\r\nif-none-match: b\r\n\r\n", 400},
      {"expect_twice", "GET / HTTP/1.1\r\n" + h + "Expect: 100-continue\r\nExpect: x\r\n\r\n", 400},
      {"content_range_twice", "GET / HTTP/1.1\r\n" + h + "Content-Range: a\r\nContent-Range: a\r\n\r\n", 400},
      {"connect_no_port", "CONNECT host HTTP/1.1\r\n" + h + "\r\n", 400},
      {"connect_bad_port", "CONNECT host:8x HTTP/1.1\r\n" + h + "\r\n", 400},
      {"ftp_scheme", "GET ftp://h/ HTTP/1.1\r\n" + h + "\r\n", 400},
      {"absolute_empty_authority", "GET http:///x HTTP/1.1\r\n" + h + "\r\n", 400},
      {"absolute_userinfo", "GET http://u@h/x HTTP/1.1\r\n" + h + "\r\n", 400},
      {"bad_percent", "GET /a%zz HTTP/1.1\r\n" + h + "\r\n", 400},
      {"truncated_percent", "GET /a%4 HTTP/1.1\r\n" + h + "\r\n", 400},
      {"lone_percent", "GET /% HTTP/1.1\r\n" + h + "\r\n", 400},
      {"bare_cr_request_line", "GET / HTTP/1.1\rHost: h\r\n\r\n", 400},
      {"three_leading_empty_lines", "\r\n\r\n\r\nGET / HTTP/1.1\r\n" + h + "\r\n", 400},
      {"request_line_too_long", "GET /" + repeat('a', 5000) + " HTTP/1.1\r\n" + h + "\r\n", 414},
      {"request_line_endless", "GET /" + repeat('a', 5000), 414},
      // Header fields.
      {"space_before_colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
      {"tab_before_colon", "GET / HTTP/1.1\r\n" + h + "X\t: y\r\n\r\n", 400},
      {"empty_field_name", "GET / HTTP/1.1\r\n" + h + ": y\r\n\r\n", 400},
      {"no_colon", "GET / HTTP/1.1\r\n" + h + "NoColon\r\n\r\n", 400},
      {"bad_name_char", "GET / HTTP/1.1\r\n" + h + "X(y): z\r\n\r\n", 400},
      {"obs_fold_space", "GET / HTTP/1.1\r\n" + h + "X: a\r\n b\r\n\r\n", 400},
      {"obs_fold_tab", "GET / HTTP/1.1\r\n" + h + "X: a\r\n\tb\r\n\r\n", 400},
      {"leading_space_first_header", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400},
      {"nul_in_value", std::string("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 35), 400},
      {"bare_cr_in_value", "GET / HTTP/1.1\r\n" + h + "X: a\rb\r\n\r\n", 400},
      {"ctl_in_value", "GET / HTTP/1.1\r\n" + h + "X: a\x1b" "b\r\n\r\n", 400},
      {"del_in_value", "GET / HTTP/1.1\r\n" + h + "X: a\x7f\r\n\r\n", 400},
      {"header_field_too_large", "GET / HTTP/1.1\r\n" + h + "X: " + repeat('v', 9000) + "\r\n\r\n",
       431},
      {"header_field_endless", "GET / HTTP/1.1\r\n" + h + "X: " + repeat('v', 9000), 431},
      // Host.
      {"missing_host_11", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400},
      {"missing_host_absolute_form", "GET http://h/ HTTP/1.1\r\n\r\n", 400},
      {"two_hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
      {"two_hosts_http10", "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400},
      {"host_with_slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
      {"host_with_backslash", "GET / HTTP/1.1\r\nHost: a\\b\r\n\r\n", 400},
      {"host_with_space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
      // Content-Length.
      {"cl_negative", "POST / HTTP/1.1\r\n" + h + "Content-Length: -1\r\n\r\n", 400},
      {"cl_plus", "POST / HTTP/1.1\r\n" + h + "Content-Length: +1\r\n\r\n", 400},
      {"cl_inner_space", "POST / HTTP/1.1\r\n" + h + "Content-Length: 1 2\r\n\r\n", 400},
      {"cl_hex", "POST / HTTP/1.1\r\n" + h + "Content-Length: 0x10\r\n\r\n", 400},
      {"cl_empty", "POST / HTTP/1.1\r\n" + h + "Content-Length:\r\n\r\n", 400},
      {"cl_empty_list_element", "POST / HTTP/1.1\r\n" + h + "Content-Length: 1,,1\r\n\r\n", 400},
      {"cl_overflow", "POST / HTTP/1.1\r\n" + h + "Content-Length: 9223372036854775808\r\n\r\n",
       400},
      {"cl_huge_overflow",
       "POST / HTTP/1.1\r\n" + h + "Content-Length: 99999999999999999999999\r\n\r\n", 400},
      {"cl_differing_list", "POST / HTTP/1.1\r\n" + h + "Content-Length: 1, 2\r\n\r\n", 400},
      {"cl_differing_headers",
       "POST / HTTP/1.1\r\n" + h + "Content-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      // Transfer-Encoding.
      {"te_and_cl",
       "POST / HTTP/1.1\r\n" + h + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"te_gzip", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip\r\n\r\n", 501},
      {"te_identity", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: identity\r\n\r\n", 501},
      {"te_empty", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding:\r\n\r\n", 501},
      {"te_gzip_chunked", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip, chunked\r\n\r\n",
       501},
      {"te_chunked_twice_list",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked, chunked\r\n\r\n", 501},
      {"te_chunked_two_headers",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       400},
      {"te_chunked_trailing_comma",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked,\r\n\r\n", 501},
      {"te_http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"te_with_vertical_tab",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: \x0b" "chunked\r\n\r\n", 400},
  };
  // Chunked body framing.
  const std::string te = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::vector<BadCase> chunked = {
      {"chunk_size_empty", te + "\r\n", 400},
      {"chunk_size_not_hex", te + "g\r\n", 400},
      {"chunk_size_0x", te + "0x5\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_size_leading_space", te + " 5\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_size_trailing_space", te + "5 \r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_size_negative", te + "-5\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_size_17_digits", te + "00000000000000005\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_data_no_crlf", te + "5\r\nhelloX\r\n0\r\n\r\n", 400},
      {"chunk_data_cr_only", te + "5\r\nhello\rX0\r\n\r\n", 400},
      {"chunk_data_too_long", te + "2\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_no_name", te + "5;\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_no_semicolon", te + "5 a\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_bad_value", te + "5;a=\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_unterminated_quote", te + "5;a=\"x\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_ctl", te + "5;a=b\x01\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_too_long", te + "5;a=" + repeat('b', 5000) + "\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_ext_endless", te + "5;a=" + repeat('b', 5000), 400},
      {"trailer_obs_fold", te + "0\r\nX: a\r\n b\r\n\r\n", 400},
      {"trailer_bad_name", te + "0\r\nX y: a\r\n\r\n", 400},
      {"trailer_too_large", te + "0\r\nX: " + repeat('t', 9000) + "\r\n\r\n", 431},
  };
  v.insert(v.end(), chunked.begin(), chunked.end());
  // Count and total limits.
  std::string many = "GET / HTTP/1.1\r\n" + h;
  for (int i = 0; i < 100; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  v.push_back({"too_many_headers", many + "\r\n", 431});
  std::string big = "GET / HTTP/1.1\r\n" + h;
  for (int i = 0; i < 10; ++i) big += "X-" + std::to_string(i) + ": " + repeat('v', 8000) + "\r\n";
  v.push_back({"head_too_large", big + "\r\n", 431});
  std::string manyTrailers = te + "0\r\n";
  for (int i = 0; i < 101; ++i) manyTrailers += "T-" + std::to_string(i) + ": v\r\n";
  v.push_back({"too_many_trailers", manyTrailers + "\r\n", 431});
  return v;
}

TEST(ParserMalformed, WholeBuffer) {
  auto cases = badCases();
  EXPECT_GE(cases.size(), 40u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Outcome o = feed(c.input, 0);
    EXPECT_EQ(o.errorStatus, c.status) << o.errorReason;
    EXPECT_FALSE(o.errorReason.empty());
  }
}

TEST(ParserMalformed, ByteAtATime) {
  for (const auto& c : badCases()) {
    SCOPED_TRACE(c.name);
    Outcome o = feed(c.input, 1);
    EXPECT_EQ(o.errorStatus, c.status) << o.errorReason;
  }
}

TEST(ParserMalformed, ControlByteAnywhereInLongValue) {
  // Long values are screened several bytes at a time; a bad byte must be found at any offset.
  for (size_t at = 0; at < 21; ++at) {
    for (unsigned char bad : {0x00, 0x01, 0x0b, 0x0d, 0x1f, 0x7f}) {
      std::string value(21, 'v');
      value[at] = static_cast<char>(bad);
      std::string in = "GET / HTTP/1.1\r\nHost: h\r\nX: " + value + "\r\n\r\n";
      EXPECT_EQ(feed(in, 0).errorStatus, 400) << "offset " << at << " byte " << int(bad);
    }
    for (unsigned char good : {0x09, 0x20, 0x7e, 0x80, 0xff}) {
      std::string value(21, 'v');
      value[at] = static_cast<char>(good);
      std::string in = "GET / HTTP/1.1\r\nHost: h\r\nX: " + value + "\r\n\r\n";
      EXPECT_EQ(feed(in, 0).errorStatus, 0) << "offset " << at << " byte " << int(good);
    }
  }
}

TEST(ParserLimits, ExactBoundariesAccepted) {
  ParserLimits limits;
  limits.maxRequestLine = 20;
  limits.maxHeaderFieldSize = 10;
  limits.maxHeaderCount = 2;
  limits.maxHeaderTotal = 200;
  // "GET /123456 HTTP/1.1" is exactly 20 bytes; "Host: abcd" exactly 10.
  std::string ok = "GET /123456 HTTP/1.1\r\nHost: abcd\r\nX: 1\r\n\r\n";
  for (size_t step : {0, 1}) {
    Outcome o = feed(ok, step, limits);
    EXPECT_EQ(o.errorStatus, 0) << o.errorReason;
    EXPECT_EQ(o.messages.size(), 1u);
  }
  struct {
    std::string input;
    int status;
  } over[] = {
      {"GET /1234567 HTTP/1.1\r\nHost: abcd\r\n\r\n", 414},
      {"GET /1234567 HTTP/1.1", 414},
      {"GET / HTTP/1.1\r\nHost: abcde\r\n\r\n", 431},
      {"GET / HTTP/1.1\r\nHost: abcde", 431},
      {"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\n\r\n", 431},
  };
  for (const auto& c : over) {
    for (size_t step : {0, 1}) {
      SCOPED_TRACE(c.input);
      EXPECT_EQ(feed(c.input, step, limits).errorStatus, c.status);
    }
  }
  limits.maxHeaderTotal = 40;
  limits.maxHeaderCount = 10;
  // The head total counts every line's CRLF, the final empty line included.
  struct {
    std::string input;
    int status;
  } totals[] = {
      {"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 12\r\n\r\n", 0},     // 40 bytes
      {"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 123\r\n\r\n", 431},  // 41 bytes
      {"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 123456\r\n", 431},
  };
  for (const auto& c : totals) {
    for (size_t step : {0, 1}) {
      SCOPED_TRACE(c.input);
      EXPECT_EQ(feed(c.input, step, limits).errorStatus, c.status);
    }
  }
}

TEST(ParserLimits, ChunkedBodyIsNotLimitedByHeadSize) {
  std::string body = repeat('x', 100000);
  char size[32];
  std::snprintf(size, sizeof size, "%zx", body.size());
  std::string in = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
                   std::string(size) + "\r\n" + body + "\r\n0\r\n\r\n";
  Outcome o = feed(in, 4096);
  ASSERT_EQ(o.errorStatus, 0) << o.errorReason;
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_EQ(o.messages[0].body, body);
}

TEST(ParserLimits, LargestContentLengthAccepted) {
  RequestParser p;
  size_t consumed = 0;
  ASSERT_EQ(p.parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n",
                    consumed),
            ParseEvent::kHeadComplete);
  EXPECT_EQ(*p.request().contentLength, 9223372036854775807ull);
  ASSERT_EQ(p.parse("abc", consumed), ParseEvent::kBodyData);
  EXPECT_EQ(consumed, 3u);
}

TEST(ParserLimits, SixteenHexDigitChunkSizeAccepted) {
  RequestParser p;
  size_t consumed = 0;
  ASSERT_EQ(p.parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", consumed),
            ParseEvent::kHeadComplete);
  ASSERT_EQ(p.parse("000000000000000A\r\n0123456789\r\n0\r\n\r\n", consumed),
            ParseEvent::kBodyData);
  EXPECT_EQ(p.bodyData(), "0123456789");
}

TEST(ParserLimits, ChunkSizePastOffTIsRefused) {
  // nginx's bound: a size over 2^63 - 1 (NGX_MAX_OFF_T_VALUE) is an invalid chunked body (400);
  // 7fffffffffffffff parses, and the connection's body limit refuses it (413).
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const char* size : {"ffffffffffffffff", "8000000000000000", "FFFFFFFFFFFFFFFF"}) {
    for (size_t step : {0, 1}) {
      SCOPED_TRACE(size);
      EXPECT_EQ(feed(head + size + "\r\n", step).errorStatus, 400);
    }
  }
  RequestParser p;
  size_t consumed = 0;
  ASSERT_EQ(p.parse(head, consumed), ParseEvent::kHeadComplete);
  ASSERT_EQ(p.parse("7fffffffffffffff\r\n", consumed), ParseEvent::kNeedMore);
  EXPECT_EQ(p.chunkedBodyDeclared(), 0x7fffffffffffffffull);
  ASSERT_EQ(p.parse("ab", consumed), ParseEvent::kBodyData);
  EXPECT_EQ(p.chunkedBodyDeclared(), 0x7fffffffffffffffull);
}

TEST(ParserLimits, ChunkedBodyDeclaredAddsUpPerMessage) {
  RequestParser p;
  size_t consumed = 0;
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  ASSERT_EQ(p.parse(head, consumed), ParseEvent::kHeadComplete);
  std::string body = "3\r\nabc\r\n10\r\n";
  ASSERT_EQ(p.parse(body, consumed), ParseEvent::kBodyData);
  body.erase(0, consumed);
  EXPECT_EQ(p.parse(body, consumed), ParseEvent::kNeedMore);
  EXPECT_EQ(p.chunkedBodyDeclared(), 3u + 16u);
}

// Input that no continuation can make valid is refused when its bad byte arrives, not held
// until the line's end (which a client speaking another protocol never sends).
TEST(ParserEarly, RefusedBeforeTheLineEnds) {
  struct {
    const char* name;
    std::string input;
  } cases[] = {
      {"tls_client_hello", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)},
      {"nul_first", std::string("\0\0\0\0", 4)},
      {"bad_method_byte", "GE(T"},
      {"leading_space", " GET"},
      {"bare_cr_request_line", "GET / HTTP/1.1\rHost: h\r\r"},
      {"bare_cr_after_empty_line", "\r\r"},
      {"bare_cr_in_header", "GET / HTTP/1.1\r\nHost: h\rX"},
      {"bare_cr_header_end", "GET / HTTP/1.1\r\nHost: h\r\r"},
      {"bare_cr_chunk_size",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\rabc"},
      {"bare_cr_trailer",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: v\rX"},
  };
  for (const auto& c : cases) {
    for (size_t step : {0, 1, 3}) {
      SCOPED_TRACE(std::string(c.name) + " step " + std::to_string(step));
      Outcome o = feed(c.input, step);
      EXPECT_EQ(o.errorStatus, 400) << o.errorReason;
    }
  }
  // Still waiting, not refused: a CR that may yet be followed by LF, a method in progress.
  for (const char* pending : {"GET / HTTP/1.1\r", "GET", "\r", "GET / HTTP/1.1\r\nHost: h\r"}) {
    for (size_t step : {0, 1}) {
      SCOPED_TRACE(pending);
      EXPECT_EQ(feed(pending, step).errorStatus, 0);
    }
  }
}

TEST(ParserEarly, VerdictDoesNotDependOnTheSplit) {
  // A bad CR before the limit is passed is the 400; one after it, the limit's status.
  ParserLimits limits;
  limits.maxRequestLine = 20;
  limits.maxHeaderFieldSize = 10;
  struct {
    std::string input;
    int status;
  } cases[] = {
      {"GET /ab\rcdefghijklmnopqrstuvwxyz HTTP/1.1\r\n", 400},
      {"GET /abcdefghijklmnopqrstuvw\rxyz HTTP/1.1\r\n", 414},
      {"GET /abcdefghijklmno\rxyz", 400},  // the CR is the 21st byte: the 22nd decides both
      {"GET /abcdefghijklmnop\rxyz", 414},
      {"GET / HTTP/1.1\r\nHost: abc\rxyz\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: abcdefghijk\rxyz\r\n", 431},
      {"GET /\rx HTTP/2.0\r\n", 400},  // not 505: the CR comes first
      {std::string("\x16\x03\x01") + std::string(40, 'a'), 400},
  };
  for (const auto& c : cases) {
    for (size_t step : {0, 1, 2, 5}) {
      SCOPED_TRACE(c.input + " step " + std::to_string(step));
      EXPECT_EQ(feed(c.input, step, limits).errorStatus, c.status);
    }
  }
}

TEST(ParserEarly, BareLfEndsALineAsNginx) {
  for (size_t step : {0, 1}) {
    EXPECT_EQ(feed("GET / HTTP/1.1\nHost: h\n\n", step).errorStatus, 0);
    EXPECT_EQ(feed("GET / HTTP/1.1\rHost: h\n\n", step).errorStatus, 400);  // a bare CR is not
  }
}

// ---------------------------------------------------------------------------------------------
// percentDecode / normalizePath.

TEST(PercentDecode, Table) {
  struct {
    std::string in;
    bool ok;
    std::string out;
  } cases[] = {
      {"", true, ""},
      {"/plain", true, "/plain"},
      {"/a%20b", true, "/a b"},
      {"%41%62%7e", true, "Ab~"},
      {"%2F%2f", true, "//"},
      {"%00", true, std::string(1, '\0')},
      {"%ff%FE", true, "\xff\xfe"},
      {"a+b", true, "a+b"},
      {"%", false, ""},
      {"%4", false, ""},
      {"a%", false, ""},
      {"%G1", false, ""},
      {"%1G", false, ""},
      {"%%41", false, ""},
      {"/ok%20then%zz", false, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    std::string out = "garbage";
    EXPECT_EQ(percentDecode(c.in, out), c.ok);
    if (c.ok) {
      EXPECT_EQ(out, c.out);
    }
  }
}

TEST(NormalizePath, Table) {
  struct {
    std::string in;
    bool ok;
    std::string out;
  } cases[] = {
      {"/", true, "/"},
      {"/a", true, "/a"},
      {"/a/b/", true, "/a/b/"},
      {"//", true, "/"},
      {"///a//b///c", true, "/a/b/c"},
      {"/a/./b", true, "/a/b"},
      {"/a/.", true, "/a/"},
      {"/.", true, "/"},
      {"/./", true, "/"},
      {"/a/b/..", true, "/a/"},
      {"/a/b/../", true, "/a/"},
      {"/a/b/../c", true, "/a/c"},
      {"/a/../..", false, ""},
      {"/..", false, ""},
      {"/../a", false, ""},
      {"/a/b/../../..", false, ""},
      {"/a/b/../..", true, "/"},
      {"/a/..//b", true, "/b"},
      {"/...", true, "/..."},
      {"/a/..b/.c", true, "/a/..b/.c"},
      {"/a//../b", true, "/b"},
      {"relative", false, ""},
      {"", false, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    std::string out;
    EXPECT_EQ(normalizePath(c.in, out), c.ok);
    if (c.ok) {
      EXPECT_EQ(out, c.out);
    }
  }
}

TEST(Iequals, Basics) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("abc", "abd"));
  EXPECT_FALSE(iequals("abc", "ab"));
  EXPECT_FALSE(iequals("\xC3", "\xE3"));  // no case folding outside ASCII
}

}  // namespace
}  // namespace portico::http

// The small response helpers live next to the parser (no separate test file owns them).
namespace portico::http {
namespace {

TEST(ResponseHelpers, ReasonPhrases) {
  struct {
    int status;
    const char* phrase;
  } cases[] = {{100, "Continue"},          {101, "Switching Protocols"},
               {200, "OK"},                {206, "Partial Content"},
               {304, "Not Modified"},      {308, "Permanent Redirect"},
               {400, "Bad Request"},       {413, "Content Too Large"},
               {414, "URI Too Long"},      {418, "I'm a teapot"},
               {431, "Request Header Fields Too Large"},
               {451, "Unavailable For Legal Reasons"},
               {505, "HTTP Version Not Supported"},
               {511, "Network Authentication Required"},
               {299, "Unknown"},           {0, "Unknown"}};
  for (const auto& c : cases) EXPECT_EQ(reasonPhrase(c.status), c.phrase) << c.status;
  for (int s : {100, 101, 200, 201, 202, 203, 204, 205, 206, 300, 301, 302, 303, 304, 305, 307,
                308, 421, 422, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 507,
                508, 511}) {
    EXPECT_NE(reasonPhrase(s), "Unknown") << s;
  }
  for (int s = 400; s <= 418; ++s) EXPECT_NE(reasonPhrase(s), "Unknown") << s;
}

TEST(ResponseHelpers, ErrorPageBody) {
  EXPECT_EQ(errorPageBody(404),
            "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
            "<center><h1>404 Not Found</h1></center>\r\n<hr><center>portico</center>\r\n"
            "</body>\r\n</html>\r\n");
  EXPECT_NE(errorPageBody(502).find("<h1>502 Bad Gateway</h1>"), std::string::npos);
}

// A caller that takes raw body bytes itself, as the connection receiving into a reader's
// memory: with its buffer empty and rawBodyWanted() > 0 it takes up to `skipStep` bytes from
// the "socket" and reports them with skipBody(); otherwise it reads `readStep` bytes into its
// buffer and parses. Returns each message's target and body, and counts the skipped bytes.
std::string parseSkippingBodies(const std::string& input, size_t readStep, size_t skipStep,
                                size_t& skipped) {
  RequestParser parser;
  std::string buffer;
  std::string out;
  size_t at = 0;
  skipped = 0;
  for (;;) {
    for (;;) {
      size_t consumed = 0;
      ParseEvent ev = parser.parse(buffer, consumed);
      if (ev == ParseEvent::kBodyData) out += std::string(parser.bodyData());
      buffer.erase(0, consumed);  // after bodyData(), which points into it
      if (ev == ParseEvent::kHeadComplete) out += parser.request().target + "=";
      if (ev == ParseEvent::kMessageComplete) out += ";";
      if (ev == ParseEvent::kError) return out + "<error>";
      if (ev == ParseEvent::kNeedMore) break;
    }
    if (at == input.size()) return out;
    if (uint64_t want = parser.rawBodyWanted(); want > 0 && buffer.empty()) {
      size_t n = std::min<size_t>({static_cast<size_t>(want), skipStep, input.size() - at});
      out += input.substr(at, n);
      parser.skipBody(n);
      skipped += n;
      at += n;
      continue;
    }
    size_t n = std::min(readStep, input.size() - at);
    buffer += input.substr(at, n);
    at += n;
  }
}

TEST(ParserRawBody, SkippedBytesCountAsBody) {
  std::string input =
      "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789"
      "POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nabcde\r\n3\r\nfgh\r\n0\r\n\r\n"
      "GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
  for (size_t readStep : {1, 2, 3, 7, 64, 1000}) {
    for (size_t skipStep : {1, 4, 100}) {
      size_t skipped = 0;
      EXPECT_EQ(parseSkippingBodies(input, readStep, skipStep, skipped),
                "/a=0123456789;/b=abcdefgh;/c=;")
          << readStep << " " << skipStep;
      if (readStep < 10) EXPECT_GT(skipped, 0u) << readStep << " " << skipStep;
    }
  }
}

TEST(ParserRawBody, NothingWantedOutsideABody) {
  RequestParser parser;
  EXPECT_EQ(parser.rawBodyWanted(), 0u);
  std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  size_t consumed = 0;
  ASSERT_EQ(parser.parse(head, consumed), ParseEvent::kHeadComplete);
  EXPECT_EQ(parser.parse("", consumed), ParseEvent::kNeedMore);
  EXPECT_EQ(parser.rawBodyWanted(), 0u);  // a chunk size line comes first
  ASSERT_EQ(parser.parse("10\r\n", consumed), ParseEvent::kNeedMore);
  EXPECT_EQ(parser.rawBodyWanted(), 16u);
  parser.skipBody(16);
  EXPECT_EQ(parser.rawBodyWanted(), 0u);  // the CRLF after the chunk is the parser's
  EXPECT_EQ(parser.parse("\r\n0\r\n\r\n", consumed), ParseEvent::kMessageComplete);
}

}  // namespace
}  // namespace portico::http

namespace portico::http {
namespace {

// Which names a request keeps, fed whole and byte by byte; "400" when it is refused.
std::string namesKept(const std::string& fields, ParserLimits limits) {
  std::string result;
  for (size_t step : {size_t{0}, size_t{1}}) {
    Outcome o = feed("GET / HTTP/1.1\r\nHost: h\r\n" + fields + "\r\n", step, limits);
    std::string names;
    if (o.errorStatus) {
      names = std::to_string(o.errorStatus);
    } else if (o.messages.size() == 1) {
      for (const Header& h : o.messages[0].request.headers) names += (names.empty() ? "" : " ") + h.name;
    }
    if (step == 0) result = names;
    EXPECT_EQ(names, result) << "byte by byte differs";
  }
  return result;
}

ParserLimits nginxRule(bool ignoreInvalid, bool underscores) {
  ParserLimits limits;
  limits.nginxNames = true;
  limits.ignoreInvalid = ignoreInvalid;
  limits.underscores = underscores;
  return limits;
}

TEST(ParserHeaderNames, TokenRuleRefusesNonTokensAndDropsUnderscores) {
  ParserLimits token;  // the flags' (gunicorn's) rule
  EXPECT_EQ(namesKept("X.Dot: 1\r\nX_Under: 2\r\nX-Dash: 3\r\n", token), "Host X.Dot X-Dash");
  EXPECT_EQ(namesKept("</kie>: 1\r\n", token), "400");
  token.underscores = true;
  EXPECT_EQ(namesKept("X_Under: 2\r\n", token), "Host X_Under");
}

TEST(ParserHeaderNames, NginxRuleIgnoresInvalidNamesByDefault) {
  ParserLimits on = nginxRule(true, false);  // ignore_invalid_headers on, underscores off
  EXPECT_EQ(namesKept("x_foo: a\r\n_foo: b\r\nx.foo: c\r\n.foo: d\r\n</kie>: e\r\nX-Ok: f\r\n", on),
            "Host X-Ok");
  EXPECT_EQ(namesKept("X-\xc3\xa9: a\r\n", on), "Host");  // bytes past ASCII: invalid
  ParserLimits under = nginxRule(true, true);  // underscores_in_headers on
  EXPECT_EQ(namesKept("x_foo: a\r\n_foo: b\r\nx.foo: c\r\n", under), "Host x_foo _foo");
}

TEST(ParserHeaderNames, NginxRuleKeepsInvalidNamesWhenNotIgnoring) {
  ParserLimits off = nginxRule(false, false);  // ignore_invalid_headers off
  EXPECT_EQ(namesKept("x_foo: a\r\nx.foo: b\r\n</kie>: c\r\n", off), "Host x_foo x.foo </kie>");
}

TEST(ParserHeaderNames, ControlsSpacesAndAColonFirstAre400UnderEveryRule) {
  for (ParserLimits rule : {ParserLimits{}, nginxRule(true, false), nginxRule(false, true)}) {
    EXPECT_EQ(namesKept(":foo: a\r\n", rule), "400");
    EXPECT_EQ(namesKept("foo : a\r\n", rule), "400");
    EXPECT_EQ(namesKept(std::string("fo\x02o: a\r\n"), rule), "400");
    EXPECT_EQ(namesKept(std::string("fo\x7fo: a\r\n"), rule), "400");
    EXPECT_EQ(namesKept("no colon\r\n", rule), "400");
    // A dropped line's value is still checked.
    EXPECT_EQ(namesKept(std::string("x.foo: a\x01b\r\n"), rule), "400");
  }
}

}  // namespace
}  // namespace portico::http
