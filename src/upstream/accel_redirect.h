#pragma once

// X-Accel-Redirect (nginx's ngx_http_upstream_process_headers): an upstream's answer that asks
// the proxy to serve another URI instead — Django's protected downloads. Pure: the parsing of
// the header's value and the choice of the upstream headers the new response keeps.

#include <string>
#include <string_view>
#include <vector>

#include "config/site.h"
#include "http/request.h"

namespace portico::upstream {

// What an X-Accel-Redirect value asks for.
struct AccelTarget {
  enum class Kind {
    kUri,     // an internal redirect to `uri` with `args`
    kNamed,   // a named location: `uri` is "@name"
    kUnsafe,  // nginx's ngx_http_parse_unsafe_uri refused it: 404 ("unsafe URI ... was detected")
  };
  Kind kind = Kind::kUnsafe;
  std::string uri;   // decoded (%XX) as nginx's ngx_unescape_uri
  std::string args;  // after the first '?', as written
};

// nginx 1.22: "@name" → a named location; else ngx_http_parse_unsafe_uri: empty, a leading
// '?', a NUL, or a ".." segment (before or after %-decoding) is unsafe; the args are what
// follows the first '?'; a URI with '%' is decoded.
AccelTarget parseAccelRedirect(std::string_view value);

// The upstream's headers nginx copies into the redirected request's response (its
// ngx_http_upstream_headers_in entries flagged `redirect`): Content-Type, Set-Cookie,
// Content-Disposition, Cache-Control, Expires, Accept-Ranges; in the upstream's order.
std::vector<http::Header> accelKeptHeaders(const std::vector<http::Header>& upstream);

// The value of the upstream's X-Accel-Redirect (the first), or null.
const std::string* accelRedirectHeader(const std::vector<http::Header>& upstream);

// The hook for `proxy_ignore_headers X-Accel-Redirect`: true when the location ignores the
// header (the response is then relayed, the header hidden as ever).
inline bool accelRedirectIgnored(const config::ProxySettings& settings) {
  return settings.ignores(config::ProxySettings::kIgnoreXAccelRedirect);
}

}  // namespace portico::upstream
