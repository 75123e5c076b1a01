// libFuzzer driver for the upstream ResponseParser: feeds the input whole and in small pieces
// (the first byte picks the piece size and the head bound) and checks that the outcome — head,
// body, error — does not depend on the split, and that the body never exceeds the input.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "upstream/response_parser.h"

namespace {

using portico::upstream::ResponseParser;

std::string run(std::string_view input, size_t step, size_t maxHead) {
  ResponseParser parser(maxHead, false);
  std::string buffer, body, trace;
  bool inBody = false;
  ResponseParser::Status st = ResponseParser::Status::kNeedMore;
  for (size_t at = 0; at < input.size(); at += step) {
    buffer.append(input.substr(at, step));
    size_t consumed = 0;
    if (!inBody) {
      st = parser.parseHead(buffer, consumed);
      buffer.erase(0, consumed);
      if (st == ResponseParser::Status::kHead) {
        inBody = true;
        trace += "H" + std::to_string(parser.head().status) + "/" +
                 std::to_string(parser.head().headers.size()) + "/" +
                 std::to_string(static_cast<int>(parser.head().framing));
      }
    }
    if (inBody) {
      st = parser.parseBody(buffer, consumed, body);
      buffer.erase(0, consumed);
    }
    if (st == ResponseParser::Status::kError || st == ResponseParser::Status::kDone) break;
  }
  if (st == ResponseParser::Status::kNeedMore && inBody) st = parser.onClose();
  if (body.size() > input.size()) std::abort();
  return trace + "|" + std::to_string(static_cast<int>(st)) + "|" + body + "|" + parser.error();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  size_t step = 1 + data[0] % 7;
  size_t maxHead = 64 + data[0] * 4;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string whole = run(input, input.size() ? input.size() : 1, maxHead);
  std::string pieces = run(input, step, maxHead);
  if (whole != pieces) {
    std::fprintf(stderr, "split changed the outcome:\n%s\n%s\n", whole.c_str(), pieces.c_str());
    std::abort();
  }
  return 0;
}
