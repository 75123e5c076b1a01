#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ascii.h"

namespace portico::http {

// One header field as received (name case preserved, value with surrounding whitespace trimmed).
struct Header {
  std::string name;
  std::string value;
};

// ASCII case-insensitive comparison, for header names and tokens (core/ascii.h).
using portico::iequals;

// The head of one request, produced by RequestParser; owned by the connection.
struct Request {
  std::string method;          // e.g. "GET"; any valid token
  std::string target;          // the raw request-target, exactly as received
  std::string rawPath;         // path part of the target, still percent-encoded
  std::string path;            // rawPath percent-decoded (may contain any byte, even NUL)
  std::string query;           // raw query string without '?', empty when absent
  std::string authority;       // host[:port] of an absolute-form target, else empty
  int versionMajor = 1;
  int versionMinor = 1;
  std::vector<Header> headers;
  std::string host;            // authority if absolute-form, else the Host header value
  // Transfer-Encoding: chunked (the body's length is unknown until its end). The other
  // HTTP/1 framing facts (persistence, Expect: 100-continue) are the parser's
  // (RequestParser::keepAlive, expectContinue): they concern the connection, not the request.
  bool chunked = false;
  std::optional<uint64_t> contentLength;  // Content-Length, when present
  // CGI variables a front server passed besides the request itself (uwsgi: nginx's
  // SERVER_NAME, SERVER_PORT, DOCUMENT_ROOT, a uwsgi_param of the site's own ...): the WSGI
  // environ gets them as given, over portico's own values, as uWSGI's does. Empty for HTTP/1.
  std::vector<Header> params;

  bool isHead() const { return method == "HEAD"; }
  bool hasBody() const { return chunked || (contentLength && *contentLength > 0); }
  // First value of a header, case-insensitive; nullptr when absent.
  const std::string* header(std::string_view name) const;
  std::string_view versionString() const {
    return versionMinor == 0 ? "HTTP/1.0" : "HTTP/1.1";
  }
};

}  // namespace portico::http
