// libFuzzer driver for RequestParser: feeds the input whole and in small pieces (the first byte
// picks the piece size) and checks the parser's invariants, including that the outcome does
// not depend on how the bytes were split.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "http/parser.h"

namespace {

using portico::http::ParseEvent;
using portico::http::ParserLimits;
using portico::http::RequestParser;


// A digest of everything the parser reported, comparable across different splits.
struct Trace {
  std::vector<std::string> items;
  int errorStatus = 0;
};

std::string describeHead(const RequestParser& p) {
  const auto& r = p.request();
  std::string s = "H|" + r.method + "|" + r.target + "|" + r.rawPath + "|" + r.path + "|" +
                  r.query + "|" + r.authority + "|" + r.host + "|" +
                  std::to_string(r.versionMinor) + (p.keepAlive() ? "K" : "k") +
                  (p.expectContinue() ? "E" : "e") + (r.chunked ? "C" : "c") + "|" +
                  (r.contentLength ? std::to_string(*r.contentLength) : "-");
  for (const auto& h : r.headers) s += "|" + h.name + ":" + h.value;
  return s;
}

Trace run(std::string_view input, size_t step, const ParserLimits& limits) {
  RequestParser parser(limits);
  Trace trace;
  std::string buffer;
  std::string body;
  bool inMessage = false;
  size_t offset = 0;
  // Each byte can be consumed once and each call either consumes or ends the inner loop,
  // except the zero-byte events, of which at most two occur per message.
  size_t budget = 4 * input.size() + 16;
  while (true) {
    size_t take = std::min(step, input.size() - offset);
    buffer.append(input.substr(offset, take));
    offset += take;
    for (;;) {
      FUZZ_CHECK(budget-- > 0);
      size_t consumed = SIZE_MAX;
      ParseEvent ev = parser.parse(buffer, consumed);
      FUZZ_CHECK(consumed <= buffer.size());
      if (ev == ParseEvent::kError) {
        // 405: TRACE and CONNECT; 501: a Transfer-Encoding other than chunked (nginx's).
        FUZZ_CHECK(parser.errorStatus() == 400 || parser.errorStatus() == 405 ||
                   parser.errorStatus() == 414 || parser.errorStatus() == 431 ||
                   parser.errorStatus() == 501 || parser.errorStatus() == 505);
        FUZZ_CHECK(!parser.errorReason().empty());
        size_t again = 0;
        FUZZ_CHECK(parser.parse(buffer, again) == ParseEvent::kError);
        FUZZ_CHECK(parser.parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n", again) ==
                   ParseEvent::kError);
        trace.errorStatus = parser.errorStatus();
        return trace;
      }
      switch (ev) {
        case ParseEvent::kHeadComplete: {
          FUZZ_CHECK(!inMessage);
          FUZZ_CHECK(consumed > 0);
          inMessage = true;
          const auto& r = parser.request();
          FUZZ_CHECK(!r.method.empty());
          FUZZ_CHECK(!(r.chunked && r.contentLength));
          FUZZ_CHECK(r.versionMajor == 1 && (r.versionMinor == 0 || r.versionMinor == 1));
          FUZZ_CHECK(r.headers.size() <= limits.maxHeaderCount);
          FUZZ_CHECK(parser.remainingContentLength() == (r.contentLength ? *r.contentLength : 0));
          trace.items.push_back(describeHead(parser));
          break;
        }
        case ParseEvent::kBodyData: {
          FUZZ_CHECK(inMessage);
          std::string_view piece = parser.bodyData();
          FUZZ_CHECK(!piece.empty());
          // The piece must point into the caller's buffer, inside the consumed prefix.
          FUZZ_CHECK(piece.data() >= buffer.data() &&
                     piece.data() + piece.size() <= buffer.data() + consumed);
          body.append(piece);
          break;
        }
        case ParseEvent::kMessageComplete: {
          FUZZ_CHECK(inMessage);
          inMessage = false;
          std::string t = "B|" + body;
          for (const auto& h : parser.trailers()) t += "|" + h.name + ":" + h.value;
          trace.items.push_back(t);
          body.clear();
          break;
        }
        default:
          break;
      }
      buffer.erase(0, consumed);
      if (ev == ParseEvent::kNeedMore) break;
    }
    if (offset == input.size()) break;
  }
  return trace;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t step = 1 + data[0] % 16;
  // Small limits sometimes, so the limit paths get exercised without huge inputs.
  ParserLimits limits;
  if (data[1] & 1) {
    limits.maxRequestLine = 64;
    limits.maxHeaderCount = 4;
    limits.maxHeaderFieldSize = 48;
    limits.maxHeaderTotal = 160;
  }
  // The header-name rules: gunicorn's tokens or nginx's, invalid names dropped or kept.
  limits.nginxNames = data[1] & 2;
  limits.ignoreInvalid = !(data[1] & 4);
  limits.underscores = data[1] & 8;
  std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  Trace whole = run(input, input.size() ? input.size() : 1, limits);
  Trace split = run(input, step, limits);
  FUZZ_CHECK(whole.errorStatus == split.errorStatus);
  FUZZ_CHECK(whole.items == split.items);
  return 0;
}
