#include "http/parser.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <utility>

#include "http/char_tables.h"

namespace portico::http {

namespace {

// Parser states (RequestParser::state_ is a plain int so the header stays implementation-free).
enum State : int {
  kStateRequestLine = 0,
  kStateHeaders,
  kStateBodyStart,   // head delivered; the next call decides how the body is framed
  kStateBodyLength,  // Content-Length body
  kStateChunkSize,
  kStateChunkData,
  kStateChunkDataEnd,  // the CRLF after chunk data
  kStateTrailers,
  kStateMessageDone,   // body delivered; the next call reports kMessageComplete
  kStateFailed,
};

constexpr size_t kNpos = std::string_view::npos;
// Longest chunk extension we accept; real clients send none, so this only bounds abuse.
constexpr size_t kMaxChunkExt = 4096;
constexpr size_t kMaxChunkSizeDigits = 16;
// A partial request line whose first bytes are not a method is refused before its end arrives
// (a TLS ClientHello starts with 0x16); methods are short, so only this many bytes are looked at.
constexpr size_t kMethodScan = 32;
constexpr uint64_t kMaxContentLength = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

inline unsigned char u8(char c) { return static_cast<unsigned char>(c); }
inline bool isTchar(char c) { return kCharTables.tchar[u8(c)]; }
inline bool isOws(char c) { return c == ' ' || c == '\t'; }

bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!isTchar(c)) return false;
  }
  return true;
}

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && isOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isOws(s.back())) s.remove_suffix(1);
  return s;
}

// Calls fn(element) for each OWS-trimmed element of a comma-separated list (empty ones too).
template <typename Fn>
bool forEachListElement(std::string_view value, Fn&& fn) {
  for (;;) {
    size_t comma = value.find(',');
    if (!fn(trimOws(value.substr(0, comma)))) return false;
    if (comma == kNpos) return true;
    value.remove_prefix(comma + 1);
  }
}

// True if every byte is allowed in a field value. Header values are the bulk of a request
// head, so eight bytes are screened at a time for the rare CTL/DEL before looking closer.
bool validFieldValue(std::string_view v) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHighs = 0x8080808080808080ull;
  size_t i = 0;
  for (; i + 8 <= v.size(); i += 8) {
    uint64_t x;
    std::memcpy(&x, v.data() + i, 8);
    uint64_t below20 = (x - kOnes * 0x20) & ~x & kHighs;  // some byte < 0x20
    uint64_t y = x ^ (kOnes * 0x7F);
    uint64_t isDel = (y - kOnes) & ~y & kHighs;  // some byte == 0x7F
    if ((below20 | isDel) == 0) continue;
    for (size_t k = i; k < i + 8; ++k) {
      if (!kCharTables.fieldValue[u8(v[k])]) return false;
    }
  }
  for (; i < v.size(); ++i) {
    if (!kCharTables.fieldValue[u8(v[i])]) return false;
  }
  return true;
}

bool validAuthority(std::string_view a) {
  for (char c : a) {
    if (!kCharTables.authority[u8(c)]) return false;
  }
  return true;
}

}  // namespace

ParseEvent RequestParser::fail(int status, std::string reason) {
  state_ = kStateFailed;
  errorStatus_ = status;
  errorReason_ = std::move(reason);
  return ParseEvent::kError;
}

// Makes next_ an object this parser alone owns, ready to be overwritten.
void RequestParser::reclaimNext() {
  if (next_.use_count() == 1) {
    // The last other owner (a Python thread done with its job) released its reference with a
    // release decrement; this fence orders its reads of the old head before our writes.
    std::atomic_thread_fence(std::memory_order_acquire);
  } else {
    next_ = std::make_shared<Request>();  // still read elsewhere: leave it to its owners
  }
}

void RequestParser::reset() {
  // Both objects are replaced: the current head may be shared with a handler.
  request_ = std::make_shared<Request>();
  next_ = std::make_shared<Request>();
  trailers_.clear();
  body_ = {};
  remaining_ = 0;
  errorStatus_ = 0;
  errorReason_.clear();
  keepAlive_ = true;
  expectContinue_ = false;
  state_ = kStateRequestLine;
  headBytes_ = 0;
  chunkRemaining_ = 0;
  chunkedDeclared_ = 0;
  leadingEmptyLines_ = 0;
  scanFrom_ = 0;
  trailerBytes_ = 0;
  hostCount_ = 0;
  teCodings_ = 0;
  teChunked_ = false;
  uniqueSeen_ = 0;
  hostFromTarget_ = false;
  connClose_ = connKeepAlive_ = expect100_ = false;
}

size_t RequestParser::findLineEnd(std::string_view data, size_t pos) {
  // scanFrom_ is only non-zero while the pending partial line starts at data[0].
  size_t from = pos + scanFrom_;
  if (from > data.size()) from = pos;
  const void* lf = nullptr;
  if (from < data.size()) lf = std::memchr(data.data() + from, '\n', data.size() - from);
  if (lf == nullptr) {
    scanFrom_ = data.size() - pos;
    return kNpos;
  }
  scanFrom_ = 0;
  return static_cast<size_t>(static_cast<const char*>(lf) - data.data());
}

void RequestParser::beginRequest() {
  reclaimNext();
  // Keep the old header objects so their buffers serve the next request's fields.
  for (auto& h : next_->headers) spare_.push_back(std::move(h));
  next_->headers.clear();
  next_->method.clear();
  next_->target.clear();
  next_->rawPath.clear();
  next_->path.clear();
  next_->query.clear();
  next_->authority.clear();
  next_->host.clear();
  next_->versionMajor = 1;
  next_->versionMinor = 1;
  next_->chunked = false;
  next_->contentLength.reset();
  chunkRemaining_ = 0;
  chunkedDeclared_ = 0;
  trailerBytes_ = 0;
  hostCount_ = 0;
  teCodings_ = 0;
  teChunked_ = false;
  uniqueSeen_ = 0;
  hostFromTarget_ = false;
  connClose_ = connKeepAlive_ = expect100_ = false;
}

void RequestParser::finishMessage() {
  state_ = kStateRequestLine;
  leadingEmptyLines_ = 0;
  headBytes_ = 0;
}

bool RequestParser::onRequestLine(std::string_view line) {
  beginRequest();
  // A CR inside the line is refused as the partial-line check refuses it (earlyError), so the
  // verdict does not depend on whether the line arrived whole (it would otherwise be a 505
  // when only the version is checked before the target).
  if (std::memchr(line.data(), '\r', line.size()) != nullptr) return failB(400, "bare CR");
  size_t sp1 = line.find(' ');
  if (sp1 == kNpos || sp1 == 0) return failB(400, "malformed request line");
  std::string_view method = line.substr(0, sp1);
  if (!isToken(method)) return failB(400, "invalid method");
  std::string_view rest = line.substr(sp1 + 1);
  size_t sp2 = rest.find(' ');
  if (sp2 == kNpos || sp2 == 0) return failB(400, "malformed request line");
  std::string_view target = rest.substr(0, sp2);
  std::string_view version = rest.substr(sp2 + 1);

  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !digit(version[5]) ||
      version[6] != '.' || !digit(version[7])) {
    return failB(400, "malformed HTTP version");
  }
  int major = version[5] - '0';
  int minor = version[7] - '0';
  if (major != 1 || minor > 1) return failB(505, "unsupported HTTP version");
  next_->versionMajor = major;
  next_->versionMinor = minor;
  next_->method.assign(method);
  return onTarget(target, method == "CONNECT", method == "OPTIONS");
}

bool RequestParser::onTarget(std::string_view target, bool isConnect, bool isOptions) {
  for (char c : target) {
    if (!kCharTables.target[u8(c)]) return failB(400, "invalid character in request target");
  }
  next_->target.assign(target);
  // A fragment is the client's business: nginx drops it from the URI and the arguments
  // ($request_uri keeps it).
  target = target.substr(0, target.find('#'));
  if (target.empty()) return failB(400, "malformed request target");

  std::string_view pathAndQuery;
  if (target.front() == '/') {
    pathAndQuery = target;
  } else if (target == "*") {
    if (!isOptions) return failB(400, "asterisk-form is only for OPTIONS");
    next_->rawPath.assign(target);
    next_->path.assign(target);
    return true;
  } else if (startsWithCaseless(target, "http://") || startsWithCaseless(target, "https://")) {
    std::string_view rest = target.substr(target.find(':') + 3);
    size_t end = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, end);
    if (authority.empty() || !validAuthority(authority)) {
      return failB(400, "invalid authority in absolute-form target");
    }
    next_->authority.assign(authority);
    next_->host.assign(authority);
    hostFromTarget_ = true;
    pathAndQuery = end == kNpos ? std::string_view() : rest.substr(end);
  } else if (isConnect) {
    size_t colon = target.rfind(':');
    if (colon == kNpos || colon == 0 || colon + 1 == target.size() || !validAuthority(target)) {
      return failB(400, "invalid authority-form target");
    }
    for (size_t i = colon + 1; i < target.size(); ++i) {
      if (target[i] < '0' || target[i] > '9') return failB(400, "invalid port in target");
    }
    next_->authority.assign(target);
    next_->host.assign(target);
    hostFromTarget_ = true;
    return true;
  } else {
    return failB(400, "malformed request target");
  }

  size_t q = pathAndQuery.find('?');
  std::string_view rawPath = pathAndQuery.substr(0, q);
  if (q != kNpos) next_->query.assign(pathAndQuery.substr(q + 1));
  if (rawPath.empty()) rawPath = "/";
  next_->rawPath.assign(rawPath);
  if (!percentDecode(rawPath, next_->path)) return failB(400, "bad percent-encoding in path");
  return true;
}

bool RequestParser::onFieldLine(std::string_view line, bool trailer) {
  if (isOws(line.front())) return failB(400, "obsolete line folding");
  const void* colonPtr = std::memchr(line.data(), ':', line.size());
  size_t colon = colonPtr ? static_cast<size_t>(static_cast<const char*>(colonPtr) - line.data())
                          : line.size();
  // Branch-free accumulation: names are short and the early-exit loop mispredicts a lot.
  if (colon == 0 || colon == line.size()) return failB(400, "invalid header field name");
  bool nameOk = true;
  bool plain = true;  // letters, digits and '-' only: valid under both rules
  for (size_t i = 0; i < colon; ++i) {
    nameOk &= isTchar(line[i]);
    plain &= kCharTables.nginxName[u8(line[i])];
  }
  bool invalid = false;
  if (!plain) {
    if (!limits_.nginxNames) {
      if (!nameOk) return failB(400, "invalid header field name");
      invalid = !limits_.underscores && std::memchr(line.data(), '_', colon) != nullptr;
    } else {
      for (size_t i = 0; i < colon; ++i) {
        unsigned char c = u8(line[i]);
        if (c <= 0x20 || c == 0x7F) return failB(400, "invalid header field name");
        if (!kCharTables.nginxName[c] && !(c == '_' && limits_.underscores)) invalid = true;
      }
    }
  }
  std::string_view name = line.substr(0, colon);
  std::string_view value = trimOws(line.substr(colon + 1));
  if (!validFieldValue(value)) return failB(400, "invalid character in header value");
  if (invalid && limits_.ignoreInvalid) return true;  // nginx: "client sent invalid header line"
  std::vector<Header>& fields = trailer ? trailers_ : next_->headers;
  if (fields.size() >= limits_.maxHeaderCount) return failB(431, "too many header fields");
  if (!spare_.empty()) {
    fields.push_back(std::move(spare_.back()));
    spare_.pop_back();
  } else {
    fields.emplace_back();
  }
  fields.back().name.assign(name);
  fields.back().value.assign(value);
  // Trailers never change framing or routing; they are only recorded.
  return trailer || onSpecialHeader(name, value);
}

bool RequestParser::onSpecialHeader(std::string_view name, std::string_view value) {
  // nginx's ngx_http_process_unique_header_line: a second one of these is a 400 ("client sent
  // duplicate header line"), whatever its value.
  static constexpr std::string_view kUnique[] = {
      "content-length", "content-range", "transfer-encoding", "expect", "authorization",
      "if-modified-since", "if-unmodified-since", "if-match", "if-none-match", "if-range"};
  if (name.size() >= 6 && name.size() <= 19) {
    for (size_t i = 0; i < std::size(kUnique); ++i) {
      if (name.size() != kUnique[i].size() || !iequals(name, kUnique[i])) continue;
      if (uniqueSeen_ & (1u << i)) return failB(400, "duplicate header line");
      uniqueSeen_ |= 1u << i;
      break;
    }
  }
  switch (name.size()) {
    case 4:
      if (iequals(name, "host")) {
        if (++hostCount_ > 1) return failB(400, "more than one Host header");
        for (char c : value) {
          if (c == '/' || c == '\\' || isOws(c)) return failB(400, "invalid Host header");
        }
        if (!hostFromTarget_) next_->host.assign(value);
      }
      return true;
    case 6:
      if (iequals(name, "expect")) expect100_ = iequals(value, "100-continue");
      return true;
    case 10:
      if (iequals(name, "connection")) onConnection(value);
      return true;
    case 14:
      if (iequals(name, "content-length")) return onContentLength(value);
      return true;
    case 17:
      if (iequals(name, "transfer-encoding")) return onTransferEncoding(value);
      return true;
    default:
      return true;
  }
}

bool RequestParser::onContentLength(std::string_view value) {
  // nginx's ngx_atoof: digits only (a list such as "5, 5" is invalid too).
  if (value.empty()) return failB(400, "invalid Content-Length");
  uint64_t n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return failB(400, "invalid Content-Length");
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (n > (kMaxContentLength - d) / 10) return failB(400, "Content-Length too large");
    n = n * 10 + d;
  }
  next_->contentLength = n;
  return true;
}

bool RequestParser::onTransferEncoding(std::string_view value) {
  // nginx: exactly "chunked" (any case) is chunked; any other value is a 501 once the head is
  // complete (a 1.0 request with the header is a 400 first).
  ++teCodings_;
  teChunked_ = iequals(value, "chunked");
  return true;
}

void RequestParser::onConnection(std::string_view value) {
  forEachListElement(value, [this](std::string_view token) {
    if (iequals(token, "close")) {
      connClose_ = true;
    } else if (iequals(token, "keep-alive")) {
      connKeepAlive_ = true;
    }
    return true;
  });
}

bool RequestParser::onHeadComplete() {
  Request& r = *next_;
  bool http11 = r.versionMinor == 1;
  if (http11 && hostCount_ == 0) return failB(400, "missing Host header");
  // nginx's ngx_http_process_request_header, in its order.
  if (teCodings_ > 0) {
    if (!http11) return failB(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (!teChunked_) return failB(501, "unknown Transfer-Encoding");
    if (r.contentLength) return failB(400, "both Content-Length and Transfer-Encoding");
    r.chunked = true;
  }
  // nginx (1.21.1+) refuses CONNECT, and TRACE, which would echo the request (cookies
  // included) to a script: 405, and the connection closes.
  if (r.method == "CONNECT") return failB(405, "CONNECT method");
  if (r.method == "TRACE") return failB(405, "TRACE method");
  keepAlive_ = http11 ? !connClose_ : (connKeepAlive_ && !connClose_);
  expectContinue_ = http11 && expect100_;
  // Publish the new head; the previous one stayed intact while this one was being parsed (and
  // stays so while a handler shares it: reclaimNext() checks before the next head overwrites it).
  request_.swap(next_);
  trailers_.clear();
  remaining_ = request_->contentLength.value_or(0);
  return true;
}

bool RequestParser::onChunkSizeLine(std::string_view line) {
  size_t i = 0;
  uint64_t size = 0;
  for (; i < line.size(); ++i) {
    int h = kCharTables.hex[u8(line[i])];
    if (h < 0) break;
    // nginx's bound (NGX_MAX_OFF_T_VALUE / 16 before each digit): a size past off_t's range
    // is refused at once instead of awaiting bytes no client will send.
    if (i >= kMaxChunkSizeDigits || size > kMaxContentLength / 16) {
      return failB(400, "chunk size too large");
    }
    size = (size << 4) | static_cast<uint64_t>(h);
  }
  if (i == 0) return failB(400, "invalid chunk size");
  if (line.size() - i > kMaxChunkExt) return failB(400, "chunk extension too long");
  // chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
  auto skipBws = [&] {
    while (i < line.size() && isOws(line[i])) ++i;
  };
  auto token = [&] {
    size_t start = i;
    while (i < line.size() && isTchar(line[i])) ++i;
    return i > start;
  };
  while (i < line.size()) {
    skipBws();
    if (i == line.size() || line[i] != ';') return failB(400, "invalid chunk extension");
    ++i;
    skipBws();
    if (!token()) return failB(400, "invalid chunk extension");
    size_t afterName = i;
    skipBws();
    if (i < line.size() && line[i] == '=') {
      ++i;
      skipBws();
      if (i < line.size() && line[i] == '"') {
        ++i;
        bool closed = false;
        while (i < line.size()) {
          unsigned char c = u8(line[i]);
          if (c == '"') {
            closed = true;
            ++i;
            break;
          }
          if (c == '\\') {
            if (++i == line.size()) break;
            c = u8(line[i]);
          }
          if (!kCharTables.fieldValue[c]) break;
          ++i;
        }
        if (!closed) return failB(400, "invalid chunk extension");
      } else if (!token()) {
        return failB(400, "invalid chunk extension");
      }
    } else {
      i = afterName;
    }
  }
  chunkRemaining_ = size;
  // Saturating: each size is at most 2^63 - 1, the sum of two such sizes still fits.
  chunkedDeclared_ = size > std::numeric_limits<uint64_t>::max() - chunkedDeclared_
                         ? std::numeric_limits<uint64_t>::max()
                         : chunkedDeclared_ + size;
  return true;
}

// The shortest prefix of the line at [pos, end) that breaks a limit, with the status; kNpos if
// none does. Exact prefix lengths keep the verdict independent of how the bytes were split.
size_t RequestParser::limitViolation(std::string_view data, size_t pos, size_t end, bool complete,
                                     int& status, const char*& reason) const {
  size_t lenLimit;
  size_t rawLimit = kNpos;  // bytes of the line, CRLF included, that fit in the head's budget
  int lenStatus = 431;
  const char* lenReason;
  const char* rawReason = "request head too large";
  switch (state_) {
    case kStateRequestLine:
      lenLimit = limits_.maxRequestLine;
      lenStatus = 414;
      lenReason = "request line too long";
      rawLimit = limits_.maxHeaderTotal;
      break;
    case kStateHeaders:
      lenLimit = limits_.maxHeaderFieldSize;
      lenReason = "header field too large";
      rawLimit = limits_.maxHeaderTotal - std::min(headBytes_, limits_.maxHeaderTotal);
      break;
    case kStateTrailers:
      lenLimit = limits_.maxHeaderFieldSize;
      lenReason = "trailer field too large";
      rawLimit = limits_.maxHeaderTotal - std::min(trailerBytes_, limits_.maxHeaderTotal);
      rawReason = "trailers too large";
      break;
    default:
      lenLimit = kMaxChunkSizeDigits + kMaxChunkExt;
      lenStatus = 400;
      lenReason = "chunk size line too long";
      break;
  }
  size_t n = end - pos;
  size_t raw = complete ? n + 1 : n;
  size_t len = n - (n > 0 && data[end - 1] == '\r' ? 1 : 0);
  size_t lenAt = kNpos;
  if (len > lenLimit) {
    // A trailing CR does not count until the byte after it shows it is not a line end.
    lenAt = data[pos + lenLimit] == '\r' ? lenLimit + 2 : lenLimit + 1;
  }
  size_t rawAt = rawLimit != kNpos && raw > rawLimit ? rawLimit + 1 : kNpos;
  if (lenAt == kNpos && rawAt == kNpos) return kNpos;
  if (lenAt <= rawAt) {
    status = lenStatus;
    reason = lenReason;
    return lenAt;
  }
  status = 431;
  reason = rawReason;
  return rawAt;
}

// The shortest prefix of the line at [pos, end) (no LF in it) that no continuation can make
// valid, or kNpos: a CR followed by anything but LF, or a request line that does not start
// with a method. Bytes before `from` were looked at by an earlier call (CRs only).
size_t RequestParser::earlyError(std::string_view data, size_t pos, size_t from,
                                 size_t end) const {
  size_t found = kNpos;
  if (state_ == kStateRequestLine) {
    size_t stop = std::min(end, pos + kMethodScan);
    for (size_t i = pos; i < stop; ++i) {
      char c = data[i];
      if (isTchar(c)) continue;
      if ((c == ' ' && i > pos) || c == '\r') break;
      found = i + 1 - pos;
      break;
    }
  }
  size_t crFrom = from > pos ? from - 1 : pos;
  if (end > 0 && crFrom < end - 1) {
    const void* cr = std::memchr(data.data() + crFrom, '\r', end - 1 - crFrom);
    if (cr != nullptr) {
      size_t at = static_cast<size_t>(static_cast<const char*>(cr) - data.data()) + 2 - pos;
      found = std::min(found, at);
    }
  }
  return found;
}

ParseEvent RequestParser::parse(std::string_view data, size_t& consumed) {
  consumed = 0;
  if (state_ == kStateFailed) return ParseEvent::kError;
  if (scanFrom_ > data.size()) scanFrom_ = 0;
  size_t pos = 0;
  for (;;) {
    switch (state_) {
      case kStateRequestLine:
      case kStateHeaders:
      case kStateChunkSize:
      case kStateTrailers: {
        size_t scanned = pos + scanFrom_ <= data.size() ? pos + scanFrom_ : pos;
        size_t lf = findLineEnd(data, pos);
        // The limits are checked before anything else, on partial lines too, so an endless
        // line cannot grow the caller's buffer. Of a limit and a line that is invalid already
        // (a bare CR, no method), the one a shorter prefix shows wins, so the verdict does not
        // depend on how the bytes were split.
        size_t end = lf == kNpos ? data.size() : lf;
        int limitStatus = 0;
        const char* limitReason = nullptr;
        size_t limitAt = limitViolation(data, pos, end, lf != kNpos, limitStatus, limitReason);
        if (limitAt != kNpos) {
          size_t early = earlyError(data, pos, pos, std::min(end, pos + limitAt));
          if (early != kNpos && early <= limitAt) return fail(400, "invalid line");
          return fail(limitStatus, limitReason);
        }
        if (lf == kNpos) {
          // Refused at once rather than held until a timeout: nothing can make it valid.
          if (earlyError(data, pos, scanned, end) != kNpos) return fail(400, "invalid line");
          consumed = pos;
          return ParseEvent::kNeedMore;
        }
        // A bare LF ends a line as CRLF does (RFC 9112 2.2 allows it; nginx accepts it and
        // nginx-tests sends nothing else). A CR anywhere else in a line stays an error.
        size_t lineEnd = lf > pos && data[lf - 1] == '\r' ? lf - 1 : lf;
        std::string_view line = data.substr(pos, lineEnd - pos);
        size_t lineBytes = lf + 1 - pos;
        pos = lf + 1;

        if (state_ == kStateRequestLine) {
          if (line.empty()) {
            if (++leadingEmptyLines_ > 2) return fail(400, "too many empty lines");
            continue;
          }
          headBytes_ = lineBytes;
          if (!onRequestLine(line)) return ParseEvent::kError;
          state_ = kStateHeaders;
        } else if (state_ == kStateHeaders) {
          headBytes_ += lineBytes;
          if (line.empty()) {
            if (!onHeadComplete()) return ParseEvent::kError;
            state_ = kStateBodyStart;
            consumed = pos;
            return ParseEvent::kHeadComplete;
          }
          if (!onFieldLine(line, false)) return ParseEvent::kError;
        } else if (state_ == kStateTrailers) {
          trailerBytes_ += lineBytes;
          if (line.empty()) {
            finishMessage();
            consumed = pos;
            return ParseEvent::kMessageComplete;
          }
          if (!onFieldLine(line, true)) return ParseEvent::kError;
        } else {
          if (!onChunkSizeLine(line)) return ParseEvent::kError;
          state_ = chunkRemaining_ == 0 ? kStateTrailers : kStateChunkData;
        }
        continue;
      }

      case kStateBodyStart:
        if (request_->chunked) {
          state_ = kStateChunkSize;
        } else if (remaining_ > 0) {
          state_ = kStateBodyLength;
        } else {
          finishMessage();
          consumed = pos;
          return ParseEvent::kMessageComplete;
        }
        continue;

      case kStateBodyLength:
      case kStateChunkData: {
        if (pos == data.size()) {
          consumed = pos;
          return ParseEvent::kNeedMore;
        }
        uint64_t& left = state_ == kStateBodyLength ? remaining_ : chunkRemaining_;
        size_t n = data.size() - pos;
        if (left < n) n = static_cast<size_t>(left);
        body_ = data.substr(pos, n);
        left -= n;
        pos += n;
        if (left == 0) state_ = state_ == kStateBodyLength ? kStateMessageDone : kStateChunkDataEnd;
        consumed = pos;
        return ParseEvent::kBodyData;
      }

      case kStateChunkDataEnd: {
        // CRLF or, as nginx's chunked parser accepts, a bare LF.
        size_t avail = data.size() - pos;
        if (avail > 0 && data[pos] == '\n') {
          pos += 1;
          state_ = kStateChunkSize;
          continue;
        }
        if (avail > 0 && data[pos] != '\r') return fail(400, "missing CRLF after chunk data");
        if (avail > 1 && data[pos + 1] != '\n') return fail(400, "missing CRLF after chunk data");
        if (avail < 2) {
          consumed = pos;
          return ParseEvent::kNeedMore;
        }
        pos += 2;
        state_ = kStateChunkSize;
        continue;
      }

      case kStateMessageDone:
        finishMessage();
        consumed = pos;
        return ParseEvent::kMessageComplete;

      default:
        return ParseEvent::kError;
    }
  }
}

uint64_t RequestParser::rawBodyWanted() const {
  if (state_ == kStateBodyLength) return remaining_;
  if (state_ == kStateChunkData) return chunkRemaining_;
  return 0;
}

void RequestParser::skipBody(uint64_t n) {
  uint64_t& left = state_ == kStateBodyLength ? remaining_ : chunkRemaining_;
  if (n > rawBodyWanted()) n = rawBodyWanted();  // never past the body: a caller bug
  left -= n;
  if (n > 0 && left == 0) {
    state_ = state_ == kStateBodyLength ? kStateMessageDone : kStateChunkDataEnd;
  }
}

bool percentDecode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    const void* pct = std::memchr(in.data() + i, '%', in.size() - i);
    size_t next = pct ? static_cast<size_t>(static_cast<const char*>(pct) - in.data()) : in.size();
    out.append(in.data() + i, next - i);
    if (next == in.size()) break;
    if (next + 2 >= in.size()) return false;
    int hi = kCharTables.hex[u8(in[next + 1])];
    int lo = kCharTables.hex[u8(in[next + 2])];
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>((hi << 4) | lo));
    i = next + 3;
  }
  return true;
}

bool normalizePath(std::string_view in, std::string& out, bool mergeSlashes) {
  if (mergeSlashes) return normalizePath(in, out);
  out.clear();
  if (in.empty() || in.front() != '/') return false;
  out.reserve(in.size());
  // Segments between single slashes, empty ones included; `out` holds "/seg" per segment.
  size_t i = 1;
  bool trailingSlash = false;
  for (;;) {
    size_t end = in.find('/', i);
    bool last = end == kNpos;
    if (last) end = in.size();
    std::string_view seg = in.substr(i, end - i);
    if (seg == ".") {
      trailingSlash = true;
    } else if (seg == "..") {
      if (out.empty()) return false;
      out.resize(out.rfind('/'));
      trailingSlash = true;
    } else if (last && seg.empty()) {
      trailingSlash = true;
    } else {
      out.push_back('/');
      out.append(seg);
      trailingSlash = false;
    }
    if (last) break;
    i = end + 1;
  }
  if (out.empty() || trailingSlash) out.push_back('/');
  return true;
}

bool normalizePath(std::string_view in, std::string& out) {
  out.clear();
  if (in.empty() || in.front() != '/') return false;
  out.reserve(in.size());
  bool trailingSlash = false;
  size_t i = 0;
  while (i < in.size()) {
    while (i < in.size() && in[i] == '/') ++i;
    if (i == in.size()) {
      trailingSlash = true;
      break;
    }
    size_t end = in.find('/', i);
    if (end == kNpos) end = in.size();
    std::string_view seg = in.substr(i, end - i);
    i = end;
    if (seg == ".") {
      trailingSlash = true;
    } else if (seg == "..") {
      if (out.empty()) return false;
      out.resize(out.rfind('/'));
      trailingSlash = true;
    } else {
      out.push_back('/');
      out.append(seg);
      trailingSlash = false;
    }
  }
  if (out.empty() || trailingSlash) out.push_back('/');
  return true;
}

}  // namespace portico::http
