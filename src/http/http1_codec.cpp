#include "http/http1_codec.h"

#include <algorithm>

namespace portico::http::http1 {

namespace {

void appendDecimal(std::string& out, uint64_t v) {
  char buf[24];
  char* p = buf + sizeof buf;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  out.append(p, static_cast<size_t>(buf + sizeof buf - p));
}

// A field name or value that can be written as one line: no CR, LF or NUL. Values made from
// variables (`add_header X $uri` with a decoded "%0d%0a") could otherwise split the response;
// nginx writes them as they are.
bool breaksLine(char c) { return c == '\r' || c == '\n' || c == '\0'; }

bool oneLine(std::string_view s) {
  for (char c : s) {
    // One compare for nearly every byte (std::none_of with breaksLine called it per byte).
    if (static_cast<unsigned char>(c) <= '\r' && breaksLine(c)) return false;
  }
  return true;
}

// One field line. A name that is not one line leaves the field out; in a value CR, LF and NUL
// become spaces (as Go's net/http writes them): a configured "\n" or $ssl_client_cert's folded
// lines still arrive as text, and nothing a client sent can start a line of its own.
void appendField(std::string& out, const Header& h) {
  if (!oneLine(h.name)) return;
  out.append(h.name);
  out.append(": ");
  if (oneLine(h.value)) {
    out.append(h.value);
  } else {
    for (char c : h.value) out.push_back(breaksLine(c) ? ' ' : c);
  }
  out.append("\r\n");
}

}  // namespace

std::string serializeHead(const ResponseHead& head, const ResponseFraming& framing,
                          const HeadOptions& options) {
  std::string out;
  out.reserve(256 + head.headers.size() * 48);
  out.append("HTTP/1.1 ");
  appendDecimal(out, static_cast<uint64_t>(head.status));
  out.push_back(' ');
  out.append(head.reason.empty() ? reasonPhrase(head.status) : std::string_view(head.reason));
  out.append("\r\n");
  if (options.serverHeader) {
    out.append("Server: ");
    out.append(options.serverValue);
    out.append("\r\n");
  }
  out.append("Date: ");
  out.append(options.date);
  out.append("\r\n");
  for (const auto& h : head.headers) {
    if (!isFramingHeader(h.name)) appendField(out, h);
  }
  if (framing.lengthHeader) {
    out.append("Content-Length: ");
    appendDecimal(out, *head.contentLength);
    out.append("\r\n");
  } else if (framing.chunked) {
    out.append("Transfer-Encoding: chunked\r\n");
  }
  if (head.status == 101) {
    // Switching Protocols: the connection is the new protocol's (nginx's header filter).
    out.append("Connection: upgrade\r\n\r\n");
    return out;
  }
  if (!framing.close && options.keepAliveSeconds >= 0) {
    out.append("Keep-Alive: timeout=");
    appendDecimal(out, static_cast<uint64_t>(options.keepAliveSeconds));
    out.append("\r\n");
  }
  out.append(framing.close ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n");
  return out;
}

std::string lastChunkWithTrailers(const std::vector<Header>& trailers) {
  std::string out = "0\r\n";
  for (const Header& h : trailers) {
    if (!h.name.empty()) appendField(out, h);
  }
  out.append("\r\n");
  return out;
}

std::string chunkHeader(uint64_t size) {
  static const char kDigits[] = "0123456789abcdef";
  char buf[20];
  char* p = buf + sizeof buf;
  do {
    *--p = kDigits[size & 15];
    size >>= 4;
  } while (size);
  std::string out(p, static_cast<size_t>(buf + sizeof buf - p));
  out.append("\r\n");
  return out;
}

}  // namespace portico::http::http1
