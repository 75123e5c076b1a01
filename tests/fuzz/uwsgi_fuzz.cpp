// libFuzzer driver for the uwsgi side: the packet codec (http/uwsgi_codec.h) and the request
// decoder on it (http/uwsgi_request.h). The input is fed whole and in small pieces (the first
// byte picks the piece size); the outcome must not depend on the split, a packet is never
// waited for past its bound, and the vars of a parsed packet serialize back to the same bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_check.h"
#include "http/uwsgi_codec.h"
#include "http/uwsgi_request.h"

namespace {

using portico::http::ParseEvent;
using portico::http::UwsgiRequestDecoder;
namespace uwsgi = portico::http::uwsgi;


std::string run(std::string_view input, size_t step) {
  UwsgiRequestDecoder decoder;
  std::string trace;
  std::string body;
  std::string buffer;
  size_t offset = 0;
  size_t budget = 4 * input.size() + 16;
  for (;;) {
    size_t take = std::min(step, input.size() - offset);
    buffer.append(input.substr(offset, take));
    offset += take;
    for (;;) {
      FUZZ_CHECK(budget-- > 0);
      size_t consumed = 0;
      ParseEvent ev = decoder.parse(buffer, consumed);
      FUZZ_CHECK(consumed <= buffer.size());
      if (ev == ParseEvent::kNeedMore) {
        // Never waits for more than one packet's bytes (the session's read bound).
        FUZZ_CHECK(buffer.size() - consumed < uwsgi::kMaxPacketSize ||
                   decoder.rawBodyWanted() > 0);
        buffer.erase(0, consumed);
        break;
      }
      if (ev == ParseEvent::kError) {
        FUZZ_CHECK(!decoder.errorReason().empty());
        return trace + "#" + body + "E:" + decoder.errorReason();
      }
      if (ev == ParseEvent::kHeadComplete) {
        const auto& r = decoder.request();
        trace += "H|" + r.method + "|" + r.target + "|" + r.rawPath + "|" + r.path + "|" +
                 r.query + "|" + r.host + "|" + std::to_string(r.versionMinor) + "|" +
                 (r.contentLength ? std::to_string(*r.contentLength) : "-");
        for (const auto& h : r.headers) trace += "|" + h.name + ":" + h.value;
        for (const auto& p : r.params) trace += "|" + p.name + "=" + p.value;
        FUZZ_CHECK(!r.path.empty());
      } else if (ev == ParseEvent::kBodyData) {
        FUZZ_CHECK(!decoder.bodyData().empty());
        body.append(decoder.bodyData());  // pieces depend on the split; their sum must not
      } else if (ev == ParseEvent::kMessageComplete) {
        trace += "M";
      }
      buffer.erase(0, consumed);
      if (ev == ParseEvent::kMessageComplete) return trace + "#" + body;
    }
    if (offset >= input.size()) return trace + "#" + body + "N";
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t step = 1 + data[0] % 16;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  FUZZ_CHECK(run(input, input.size() + 1) == run(input, step));

  // Codec round trip: a packet whose vars parse serializes back to the same bytes.
  uwsgi::Packet packet;
  if (uwsgi::findPacket(input, packet) == uwsgi::PacketStatus::kComplete) {
    std::vector<uwsgi::Var> vars;
    std::string error;
    if (uwsgi::parseVars(packet.vars, vars, error)) {
      std::vector<std::pair<std::string, std::string>> pairs;
      for (const auto& v : vars) pairs.emplace_back(std::string(v.key), std::string(v.value));
      std::string out;
      FUZZ_CHECK(uwsgi::serializePacket(pairs, out, packet.modifier1, packet.modifier2));
      FUZZ_CHECK(out == input.substr(0, packet.size));
    } else {
      FUZZ_CHECK(!error.empty());
    }
  }
  return 0;
}
