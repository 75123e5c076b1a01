#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/request.h"

namespace portico::http {

// The head of a response as a handler describes it. The connection adds Date, Server,
// Connection and framing (Content-Length or Transfer-Encoding) itself; handlers must not.
struct ResponseHead {
  int status = 200;
  std::string reason;  // the reason phrase; empty: the standard one for `status`
  std::vector<Header> headers;
  // The body's length when known (also for HEAD: the length a GET would have sent).
  // nullopt: unknown → chunked on HTTP/1.1, close-delimited on HTTP/1.0.
  std::optional<uint64_t> contentLength;
  // Ask the connection to close after this response.
  bool close = false;
  // An answer the server generates itself (an error or a redirect, nginx's "special
  // response"): error_page may take it over. A response with its own body (a file, `return
  // CODE "text"`, an app's) is never replaced.
  bool special = false;
  // An answer the server makes itself about an upstream it could not use (proxy_pass's 502,
  // 504): error_page takes it over even in a location whose content is an upstream, as nginx
  // finalizes such a request with a special response.
  bool gateway = false;
  // add_trailer applies (nginx's expect_trailers): on HTTP/1.1 the body is chunked even when
  // its length is known, so that trailers (Exchange::setTrailers) can follow it.
  bool expectTrailers = false;
  // chunked_transfer_encoding off: an unknown length is delimited by the close on HTTP/1.1 too.
  bool noChunked = false;

  void add(std::string name, std::string value) {
    headers.push_back({std::move(name), std::move(value)});
  }
  // The first header of that name (case-insensitive), or null.
  const std::string* header(std::string_view name) const {
    for (const Header& h : headers) {
      if (iequals(h.name, name)) return &h.value;
    }
    return nullptr;
  }
};

// The standard reason phrase for a status code ("Unknown" if none).
std::string_view reasonPhrase(int status);

// True for statuses that never carry a body (1xx, 204, 304).
inline bool statusHasNoBody(int status) {
  return (status >= 100 && status < 200) || status == 204 || status == 304;
}

// Appends `path` percent-encoding everything but RFC 3986 pchar and '/', so a decoded path
// (which may hold CR, LF, '?', '%' ...) can never break out of a Location header or its URL.
void appendEscapedPath(std::string& out, std::string_view path);

// The small HTML body nginx sends for an error status.
// `signature` is the footer's product ("portico", or "portico/VERSION" with server_tokens on,
// as nginx signs its pages with its Server header's value).
// `padding` appends nginx's msie_padding comments (see wantsErrorPadding).
std::string errorPageBody(int status, std::string_view signature = "portico",
                          bool padding = false);

}  // namespace portico::http
