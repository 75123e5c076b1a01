#pragma once

// A strict parser of an upstream's HTTP/1.x response (what proxy_pass reads back): the status
// line, the header fields and the body framing of RFC 9112 §6.3. Whatever could let a
// malformed or smuggling response through is an error (502 for the engine), never passed on:
// obs-fold, a bare CR, NUL or other controls in a value, a header beyond the buffer, a
// Content-Length that is not one number, Content-Length with Transfer-Encoding, a coding other
// than chunked, a malformed chunk. Pure: no I/O; unit-tested and fuzzed.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/request.h"

namespace portico::upstream {

// How the response's body is delimited.
enum class BodyFraming {
  kNone,     // no body: 1xx, 204, 304, an answer to HEAD
  kLength,   // Content-Length
  kChunked,  // Transfer-Encoding: chunked
  kClose,    // read until the upstream closes (HTTP/1.0 style)
};

// One response's head as the upstream sent it (interim 1xx heads skipped).
struct UpstreamHead {
  int status = 0;
  std::string reason;
  int versionMinor = 1;               // HTTP/1.<minor>
  std::vector<http::Header> headers;  // as received, names' case kept, values trimmed
  BodyFraming framing = BodyFraming::kClose;
  uint64_t contentLength = 0;         // kLength: the length
  bool keepAlive = false;             // the upstream lets the connection be reused after it
};

// Parses one response from bytes fed in any split; owned by one upstream request, any thread.
class ResponseParser {
 public:
  enum class Status { kNeedMore, kHead, kDone, kError };

  // `maxHead`: the bound of the head (proxy_buffer_size; nginx: "upstream sent too big
  // header"); `headRequest`: the request was HEAD, so the response has no body.
  ResponseParser(size_t maxHead, bool headRequest) : maxHead_(maxHead), headRequest_(headRequest) {}

  // Head phase: parses from `data` (everything received and not yet consumed). kNeedMore: no
  // complete head yet (`consumed` = 0 or interim heads skipped); kHead: head() is ready and
  // `consumed` bytes were its own; kError: error() says why.
  Status parseHead(std::string_view data, size_t& consumed);
  const UpstreamHead& head() const { return head_; }
  // The head's fields, moved out (head().headers is empty after): for a caller done with them.
  std::vector<http::Header> takeHeaders() { return std::exchange(head_.headers, {}); }

  // Body phase: decodes from `data`, appending payload bytes to `out`. kNeedMore: more is
  // needed; kDone: the response ended (bytes after it are not consumed); kError.
  Status parseBody(std::string_view data, size_t& consumed, std::string& out);
  // The upstream closed the connection: kDone when that ends the body (close-delimited, or
  // already done), else kError ("upstream prematurely closed connection").
  Status onClose();
  bool done() const { return state_ == State::kDone; }

  // nginx's wording of the error ("upstream sent too big header", ...).
  const std::string& error() const { return error_; }
  // True when the error is the head's size (too big header) rather than its syntax.
  bool tooBig() const { return tooBig_; }

 private:
  enum class State { kHead, kBody, kChunkSize, kChunkData, kChunkDataEnd, kTrailers, kDone, kError };
  Status fail(std::string text);
  Status parseOneHead(std::string_view data, size_t& consumed, bool& complete);
  Status finishHead();
  static std::optional<std::string_view> takeLine(std::string_view data, size_t& pos,
                                                  bool* strayCr = nullptr);

  size_t maxHead_;
  bool headRequest_;
  UpstreamHead head_;
  State state_ = State::kHead;
  uint64_t remaining_ = 0;  // kLength / kChunkData: bytes left
  size_t trailerBytes_ = 0;
  std::string error_;
  bool tooBig_ = false;
};

}  // namespace portico::upstream
