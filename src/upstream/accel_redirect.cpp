#include "upstream/accel_redirect.h"

namespace portico::upstream {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// ngx_unescape_uri(type 0): every valid %XX decoded; a '%' not followed by two hex digits is
// kept as it is.
std::string unescape(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      int hi = hexValue(in[i + 1]);
      int lo = hexValue(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += in[i];
  }
  return out;
}

// The checks both passes of ngx_http_parse_unsafe_uri make: a leading "..", a NUL, "/.." as a
// whole segment.
bool safe(std::string_view uri) {
  auto dotdot = [&](size_t at) {
    return uri.size() >= at + 2 && uri[at] == '.' && uri[at + 1] == '.' &&
           (uri.size() == at + 2 || uri[at + 2] == '/');
  };
  if (dotdot(0)) return false;
  for (size_t i = 0; i < uri.size(); ++i) {
    if (uri[i] == '\0') return false;
    if (uri[i] == '/' && dotdot(i + 1)) return false;
  }
  return true;
}

bool headerIs(const http::Header& h, std::string_view name) { return http::iequals(h.name, name); }

}  // namespace

AccelTarget parseAccelRedirect(std::string_view value) {
  AccelTarget target;
  if (!value.empty() && value[0] == '@') {
    target.kind = AccelTarget::Kind::kNamed;
    target.uri.assign(value);
    return target;
  }
  if (value.empty() || value[0] == '?') return target;  // unsafe
  std::string_view uri = value;
  size_t q = value.find('?');
  if (q != std::string_view::npos) {
    target.args.assign(value.substr(q + 1));
    uri = value.substr(0, q);
  }
  if (!safe(uri)) return target;
  if (uri.find('%') != std::string_view::npos) {
    std::string decoded = unescape(uri);
    if (decoded.empty() || !safe(decoded)) return target;
    target.uri = std::move(decoded);
  } else {
    target.uri.assign(uri);
  }
  target.kind = AccelTarget::Kind::kUri;
  return target;
}

std::vector<http::Header> accelKeptHeaders(const std::vector<http::Header>& upstream) {
  static constexpr std::string_view kKept[] = {
      "Content-Type", "Set-Cookie", "Content-Disposition", "Cache-Control", "Expires",
      "Accept-Ranges",
  };
  std::vector<http::Header> out;
  for (const http::Header& h : upstream) {
    for (std::string_view name : kKept) {
      if (headerIs(h, name)) {
        out.push_back(h);
        break;
      }
    }
  }
  return out;
}

const std::string* accelRedirectHeader(const std::vector<http::Header>& upstream) {
  for (const http::Header& h : upstream) {
    if (headerIs(h, "X-Accel-Redirect")) return &h.value;
  }
  return nullptr;
}

}  // namespace portico::upstream
