#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http/request.h"
#include "http/response.h"

// The HTTP/1.x wire format of responses, as pure functions: which framing a response gets,
// its serialized head, and the chunked encoding. The request side is RequestParser
// (http/parser.h). No I/O, no state: the HTTP/1 session calls these and queues the bytes.
namespace portico::http::http1 {

// How one response goes on the wire, decided from its head and its request.
struct ResponseFraming {
  bool dropBody = false;  // HEAD, 1xx, 204, 304: the handler's body bytes are not sent
  bool chunked = false;   // Transfer-Encoding: chunked (HTTP/1.1, length unknown)
  bool close = false;     // the connection closes after it ("Connection: close")
  bool lengthHeader = false;  // a Content-Length line goes out (head.contentLength)
};

// The framing of `head` answering a request of `versionMinor` (HTTP/1.0 or 1.1), a HEAD
// request when `headRequest`; `close` is true when the connection already will not be kept
// (the request's own Connection, a limit, a drain, head.close). Length unknown: chunked on
// HTTP/1.1, close-delimited on HTTP/1.0.
inline ResponseFraming chooseFraming(const ResponseHead& head, bool headRequest,
                                     int versionMinor, bool close) {
  ResponseFraming framing;
  framing.close = close || head.close;
  framing.dropBody = headRequest || statusHasNoBody(head.status);
  // 1xx and 204 never carry framing headers; a 304 neither (its Content-Length would describe
  // the cached entity).
  bool noFraming = (head.status >= 100 && head.status < 200) || head.status == 204;
  bool chunkable = versionMinor == 1 && !head.noChunked;
  if (!noFraming && !framing.dropBody) {
    if (head.expectTrailers && chunkable) {
      framing.chunked = true;  // nginx's chunked filter: trailers need the chunked framing
    } else if (!head.contentLength) {
      if (chunkable) {
        framing.chunked = true;
      } else {
        framing.close = true;  // HTTP/1.0 (or chunking off): the end of the body is the close
      }
    }
  }
  framing.lengthHeader = !noFraming && head.status != 304 && head.contentLength.has_value() &&
                         !framing.chunked;
  return framing;
}

// True when the client waits for "100 Continue" before it sends its body: an HTTP/1.1
// request with a body and Expect: 100-continue (RequestParser::expectContinue).
inline bool wantsContinue(const Request& request, bool expectContinue) {
  return expectContinue && request.versionMinor == 1 && request.hasBody();
}

// What the session adds to every head besides the handler's headers.
struct HeadOptions {
  bool serverHeader = true;         // send a Server line
  std::string_view serverValue;     // its value
  std::string_view date;            // the Date value (an IMF-fixdate)
  int64_t keepAliveSeconds = -1;    // >= 0: "Keep-Alive: timeout=N" on a kept connection
};

// Headers the session owns: a handler's copies are dropped so framing can never be split.
inline bool isFramingHeader(std::string_view name) {
  // By length first: every header of every response passes here.
  switch (name.size()) {
    case 4: return iequals(name, "Date");
    case 6: return iequals(name, "Server");
    case 10: return iequals(name, "Connection") || iequals(name, "Keep-Alive");
    case 14: return iequals(name, "Content-Length");
    case 17: return iequals(name, "Transfer-Encoding");
    default: return false;
  }
}

// The serialized head: status line (always HTTP/1.1, as nginx), Server, Date, the handler's
// headers minus framing headers, Content-Length or Transfer-Encoding per `framing` (none for
// 1xx, 204 and 304), Keep-Alive, Connection, and the empty line.
std::string serializeHead(const ResponseHead& head, const ResponseFraming& framing,
                          const HeadOptions& options);

// The chunked encoding: a chunk is chunkHeader(size), the bytes, kChunkEnd; kLastChunk ends it.
std::string chunkHeader(uint64_t size);
inline constexpr std::string_view kChunkEnd = "\r\n";
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// The last chunk with trailer fields (RFC 9112 7.1.2), written as the head's fields are (CR,
// LF, NUL in a value become spaces; a name holding one, or empty, leaves the field out).
std::string lastChunkWithTrailers(const std::vector<Header>& trailers);

// The interim answer to Expect: 100-continue.
inline constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace portico::http::http1
