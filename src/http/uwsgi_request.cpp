#include "http/uwsgi_request.h"

#include <atomic>

#include "http/parser.h"

namespace portico::http {

namespace {

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

// Digits only, no overflow past 2^63 - 1 (nginx's bound on a length).
bool parseLength(std::string_view text, uint64_t& out) {
  if (text.empty() || text.size() > 18) return false;
  uint64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  out = n;
  return true;
}

// HTTP_ACCEPT_ENCODING → "Accept-Encoding" (nginx made the var from the header's name).
std::string headerName(std::string_view var) {
  std::string name;
  name.reserve(var.size());
  bool upper = true;
  for (char c : var) {
    if (c == '_') {
      name.push_back('-');
      upper = true;
      continue;
    }
    if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    name.push_back(c);
    upper = false;
  }
  return name;
}

bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (c <= ' ' || c >= 0x7f) return false;
    switch (c) {
      case '(': case ')': case '<': case '>': case '@': case ',': case ';': case ':':
      case '\\': case '"': case '/': case '[': case ']': case '?': case '=': case '{':
      case '}':
        return false;
      default:
        break;
    }
  }
  return true;
}

}  // namespace

ParseEvent UwsgiRequestDecoder::fail(std::string reason) {
  errorStatus_ = 400;
  errorReason_ = std::move(reason);
  return ParseEvent::kError;
}

ParseEvent UwsgiRequestDecoder::parse(std::string_view data, size_t& consumed) {
  consumed = 0;
  switch (state_) {
    case State::kDone:
      state_ = State::kHead;  // one request per connection; a next packet would start over
      [[fallthrough]];
    case State::kHead: {
      if (!data.empty() && data[0] != 0) {
        // Refused as soon as the byte arrives: only modifier1 0 (a WSGI request) is served.
        return fail("uwsgi modifier1 " + std::to_string(static_cast<unsigned char>(data[0])) +
                    " is not supported (only 0, WSGI)");
      }
      uwsgi::Packet packet;
      if (uwsgi::findPacket(data, packet) == uwsgi::PacketStatus::kNeedMore) {
        return ParseEvent::kNeedMore;
      }
      if (!buildRequest(packet)) return ParseEvent::kError;
      consumed = packet.size;
      state_ = State::kBody;
      return ParseEvent::kHeadComplete;
    }
    case State::kBody:
      if (remaining_ == 0) {
        state_ = State::kDone;
        return ParseEvent::kMessageComplete;
      }
      if (data.empty()) return ParseEvent::kNeedMore;
      body_ = data.substr(0, remaining_ < data.size() ? remaining_ : data.size());
      consumed = body_.size();
      remaining_ -= body_.size();
      return ParseEvent::kBodyData;
  }
  return ParseEvent::kNeedMore;
}

bool UwsgiRequestDecoder::buildRequest(const uwsgi::Packet& packet) {
  std::string error;
  if (!uwsgi::parseVars(packet.vars, vars_, error)) {
    fail("malformed uwsgi packet: " + error);
    return false;
  }
  if (request_.use_count() > 1) {
    request_ = std::make_shared<Request>();  // a job holds the last
  } else {
    // The last other owner (a Python thread done with its job) released its reference with a
    // release decrement; this fence orders its reads of the old head before our writes.
    std::atomic_thread_fence(std::memory_order_acquire);
  }
  Request& r = *request_;
  r = Request{};
  // One allocation each, not a growth per var (a packet holds a few dozen).
  r.headers.reserve(vars_.size());
  r.params.reserve(vars_.size());
  haveRemote_ = false;
  https_ = false;
  remoteAddr_.clear();
  remotePort_ = 0;
  std::string_view requestUri;
  std::string_view pathInfo;
  std::string_view query;
  std::string_view scheme;
  std::string_view httpsVar;
  bool havePathInfo = false;
  bool haveQuery = false;
  for (const uwsgi::Var& v : vars_) {
    const std::string_view k = v.key;
    if (startsWith(k, "HTTP_") && k.size() > 5) {
      if (k == "HTTP_HOST") r.host.assign(v.value);
      r.headers.push_back(Header{headerName(k.substr(5)), std::string(v.value)});
    } else if (k == "REQUEST_METHOD") {
      r.method.assign(v.value);
    } else if (k == "REQUEST_URI") {
      requestUri = v.value;
    } else if (k == "PATH_INFO") {
      pathInfo = v.value;
      havePathInfo = true;
    } else if (k == "QUERY_STRING") {
      query = v.value;
      haveQuery = true;
    } else if (k == "SERVER_PROTOCOL") {
      r.versionMinor = v.value == "HTTP/1.0" ? 0 : 1;
    } else if (k == "CONTENT_TYPE" || k == "CONTENT_LENGTH") {
      if (v.value.empty()) {
        // nginx's uwsgi_params send "" for a request without a body: uWSGI's environ keeps it.
        r.params.push_back(Header{std::string(k), std::string()});
        continue;
      }
      if (k == "CONTENT_TYPE") {
        r.headers.push_back(Header{"Content-Type", std::string(v.value)});
        continue;
      }
      uint64_t length = 0;
      if (!parseLength(v.value, length)) {
        fail("invalid CONTENT_LENGTH in uwsgi packet");
        return false;
      }
      r.contentLength = length;
      r.headers.push_back(Header{"Content-Length", std::string(v.value)});
    } else if (k == "REMOTE_ADDR") {
      remoteAddr_.assign(v.value);
      haveRemote_ = !v.value.empty();
    } else if (k == "REMOTE_PORT") {
      uint64_t port = 0;
      if (parseLength(v.value, port) && port <= 65535) remotePort_ = static_cast<uint16_t>(port);
    } else {
      // uWSGI's wsgi.url_scheme: UWSGI_SCHEME, else HTTPS "on" or "1".
      if (k == "UWSGI_SCHEME") scheme = v.value;
      if (k == "HTTPS") httpsVar = v.value;
      r.params.push_back(Header{std::string(k), std::string(v.value)});
    }
  }
  if (!isToken(r.method)) {
    fail(r.method.empty() ? "no REQUEST_METHOD in uwsgi packet"
                          : "invalid REQUEST_METHOD in uwsgi packet");
    return false;
  }
  // The target as the client sent it ($request_uri); without one, the path and arguments.
  if (!requestUri.empty()) {
    r.target.assign(requestUri);
  } else {
    r.target.assign(havePathInfo && !pathInfo.empty() ? pathInfo : std::string_view("/"));
    if (haveQuery && !query.empty()) r.target.append("?").append(query);
  }
  std::string_view target = r.target;
  target = target.substr(0, target.find('#'));
  const size_t q = target.find('?');
  std::string_view rawPath = target.substr(0, q);
  if (rawPath.empty() || rawPath.front() != '/') {
    if (!havePathInfo) {
      fail("invalid REQUEST_URI in uwsgi packet");
      return false;
    }
    rawPath = "/";
  }
  r.rawPath.assign(rawPath);
  // nginx's PATH_INFO is its $document_uri: decoded, and rewritten if nginx rewrote the URI;
  // uWSGI gives it to the app, and portico routes on it too.
  if (havePathInfo && !pathInfo.empty()) {
    r.path.assign(pathInfo);
  } else if (!percentDecode(rawPath, r.path)) {
    fail("bad percent-encoding in REQUEST_URI of uwsgi packet");
    return false;
  }
  if (haveQuery) {
    r.query.assign(query);
  } else if (q != std::string_view::npos) {
    r.query.assign(target.substr(q + 1));
  }
  https_ = !scheme.empty() ? scheme == "https"
                           : (httpsVar == "1" || iequals(httpsVar, "on"));
  remaining_ = r.contentLength.value_or(0);
  return true;
}

void UwsgiRequestDecoder::describeClient(ConnectionInfo& info) const {
  if (haveRemote_) {
    info.peerAddress = remoteAddr_;
    info.peerPort = remotePort_;
  }
  info.scheme = https_ ? "https" : "http";
}

}  // namespace portico::http
