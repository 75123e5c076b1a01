#include "static/static_handler.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <utility>

#include "core/log.h"
#include "http/gzip_filter.h"
#include "http/http_date.h"
#include "http/parser.h"
#include "static/range.h"

#ifndef SYS_openat2
#define SYS_openat2 437  // same number on every Linux architecture
#endif

namespace portico::staticfiles {

namespace {

std::atomic<bool> forceFallbackForTesting{false};

// Files up to this size are read into the response instead of being sent with sendfile.
constexpr uint64_t kInlineFileMax = 16 * 1024;

bool isHexPair(char hi, char lo, char wantHi, char wantLo) {
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  return lower(hi) == wantHi && lower(lo) == wantLo;
}

// Encoded '/', '\' and NUL smuggle separators or terminators past decoding; nginx-with-alias
// setups are routinely probed with them, so such URLs never reach the file system.
bool hasForbiddenEscape(std::string_view raw) {
  for (size_t i = raw.find('%'); i != std::string_view::npos && i + 2 < raw.size();
       i = raw.find('%', i + 1)) {
    char hi = raw[i + 1];
    char lo = raw[i + 2];
    if (isHexPair(hi, lo, '2', 'f') || isHexPair(hi, lo, '5', 'c') || isHexPair(hi, lo, '0', '0')) {
      return true;
    }
  }
  return false;
}

bool hasDotDotSegment(std::string_view path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    size_t end = slash == std::string_view::npos ? path.size() : slash;
    if (path.substr(start, end - start) == "..") return true;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return false;
}

bool isOws(char c) { return c == ' ' || c == '\t'; }

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && isOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isOws(s.back())) s.remove_suffix(1);
  return s;
}

char* appendHex(char* out, unsigned long long value) {
  char digits[16];
  int n = 0;
  do {
    digits[n++] = "0123456789abcdef"[value & 0xf];
    value >>= 4;
  } while (value != 0);
  while (n > 0) *out++ = digits[--n];
  return out;
}

// nginx's ETag: hex mtime and size, e.g. "5f5e1000-d". Built by hand: snprintf costs more
// than the rest of a small file's response head.
std::string makeEtag(const struct stat& st) {
  char buffer[40];
  char* p = buffer;
  *p++ = '"';
  p = appendHex(p, static_cast<unsigned long long>(st.st_mtime));
  *p++ = '-';
  p = appendHex(p, static_cast<unsigned long long>(st.st_size));
  *p++ = '"';
  return std::string(buffer, static_cast<size_t>(p - buffer));
}

// Last-Modified of the mtime served last: a site's files share few mtimes, and formatting a
// date is the dearest part of a small file's head. Per thread (each worker loop has its own).
const std::string& lastModifiedText(std::time_t mtime) {
  thread_local std::time_t cachedFor = 0;
  thread_local std::string cached;
  if (cached.empty() || cachedFor != mtime) {
    cached = http::formatHttpDate(mtime);
    cachedFor = mtime;
  }
  return cached;
}

// The request headers serveFile() consults, found in one pass over the request's headers
// (the first of each name, as Request::header) instead of a scan per name.
struct ConditionalHeaders {
  const std::string* ifMatch = nullptr;
  const std::string* ifUnmodifiedSince = nullptr;
  const std::string* ifNoneMatch = nullptr;
  const std::string* ifModifiedSince = nullptr;
  const std::string* range = nullptr;
  const std::string* ifRange = nullptr;

  explicit ConditionalHeaders(const http::Request& request) {
    for (const http::Header& h : request.headers) {
      const std::string** slot = slotFor(h.name);
      if (slot != nullptr && *slot == nullptr) *slot = &h.value;
    }
  }

 private:
  const std::string** slotFor(std::string_view name) {
    switch (name.size()) {
      case 5:
        return http::iequals(name, "Range") ? &range : nullptr;
      case 8:
        if (http::iequals(name, "If-Match")) return &ifMatch;
        return http::iequals(name, "If-Range") ? &ifRange : nullptr;
      case 13:
        return http::iequals(name, "If-None-Match") ? &ifNoneMatch : nullptr;
      case 17:
        return http::iequals(name, "If-Modified-Since") ? &ifModifiedSince : nullptr;
      case 19:
        return http::iequals(name, "If-Unmodified-Since") ? &ifUnmodifiedSince : nullptr;
      default:
        return nullptr;
    }
  }
};

// Whether any entity-tag listed in any `name` header matches `etag` (a strong tag, quotes
// included). "*" matches, since the representation exists. Parsing stops at a malformed element.
bool etagListMatches(const http::Request& request, std::string_view name, std::string_view etag,
                     bool strongComparison) {
  for (const http::Header& header : request.headers) {
    if (!http::iequals(header.name, name)) continue;
    std::string_view list = header.value;
    while (true) {
      while (!list.empty() && (isOws(list.front()) || list.front() == ',')) list.remove_prefix(1);
      if (list.empty()) break;
      if (list.front() == '*') return true;
      bool weak = false;
      if (list.size() >= 2 && list[0] == 'W' && list[1] == '/') {
        weak = true;
        list.remove_prefix(2);
      }
      if (list.empty() || list.front() != '"') break;
      size_t close = list.find('"', 1);
      if (close == std::string_view::npos) break;
      std::string_view tag = list.substr(0, close + 1);
      list.remove_prefix(close + 1);
      if (tag == etag && !(strongComparison && weak)) return true;
    }
  }
  return false;
}

// If-Range as ngx_http_range_header_filter: a value ending in '"' is an entity-tag equal to
// the ETag byte for byte (none: no match), anything else a date equal to Last-Modified (none,
// or an unparsable one: no match).
bool ifRangeMatches(std::string_view value, std::optional<std::string_view> etag,
                    std::optional<std::time_t> mtime) {
  value = trimOws(value);
  if (value.size() >= 2 && value.back() == '"') {
    return etag && value == *etag;
  }
  if (!mtime) return false;
  std::optional<std::time_t> date = http::parseHttpDate(value);
  return date && *date == *mtime;
}

// multipart/byteranges boundaries, 20 digits as nginx; randomly seeded so that file contents
// cannot predict them.
std::string nextBoundary() {
  static std::atomic<uint64_t> counter{[] {
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32 | device()) % 10000000000000000000ULL;
  }()};
  char buffer[24];
  int n = std::snprintf(buffer, sizeof(buffer), "%020llu",
                        static_cast<unsigned long long>(counter.fetch_add(1)));
  return std::string(buffer, static_cast<size_t>(n));
}

}  // namespace

void StaticHandler::forceResolveFallbackForTesting(bool force) {
  forceFallbackForTesting = force;
}

StaticHandler::StaticHandler(std::string directory, const http::MimeTypes& mimes, Options options)
    : directory_(std::move(directory)), mimes_(mimes), options_(options) {}

// Every location has a root ("html" by default) whether or not it serves files, so the
// directory is opened when a request first needs it, not at start: a missing one is reported
// only by the requests that reach it (nginx's open() line), and one created later is served.
bool StaticHandler::ensureRoot() const {
  if (root_) return true;
  int fd = ::open(directory_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    rootError_ = errno;  // tried again by the next request, as nginx opens per request
    return false;
  }
  rootError_ = 0;
  root_.reset(fd);
  char resolved[PATH_MAX];
  int realpathError = 0;
  if (::realpath(directory_.c_str(), resolved) != nullptr) {
    rootReal_ = resolved;
  } else {
    realpathError = errno;
  }

  // Probe once: old kernels say ENOSYS, and some container seccomp profiles say EPERM.
  useOpenat2_ = !forceFallbackForTesting;
  if (useOpenat2_) {
    struct open_how how {};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long probe = ::syscall(SYS_openat2, root_.get(), ".", &how, sizeof(how));
    if (probe >= 0) {
      ::close(static_cast<int>(probe));
    } else if (errno == ENOSYS || errno == EPERM) {
      useOpenat2_ = false;
      logWarning("static: openat2 unavailable, resolving \"" + directory_ +
                 "\" with realpath() checks instead");
    }
  }
  if (!useOpenat2_ && rootReal_.empty()) {
    rootError_ = realpathError;
    root_.reset();
    return false;
  }
  return true;
}

StaticHandler::Opened StaticHandler::open(const std::string& relative, bool pathOnly) const {
  Opened result;
  // O_NONBLOCK: opening a FIFO for reading must not stall the event loop. openat2 rejects
  // any flag but O_CLOEXEC/O_DIRECTORY/O_NOFOLLOW next to O_PATH (EINVAL).
  int flags = pathOnly ? (O_PATH | O_CLOEXEC) : (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  int fd;
  if (useOpenat2_) {
    struct open_how how {};
    how.flags = static_cast<uint64_t>(flags);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    const char* path = relative.empty() ? "." : relative.c_str();
    fd = static_cast<int>(::syscall(SYS_openat2, root_.get(), path, &how, sizeof(how)));
  } else {
    fd = openFallback(relative, flags);
  }
  if (fd < 0) {
    result.error = errno;
    return result;
  }
  result.fd.reset(fd);
  if (::fstat(fd, &result.st) != 0) {
    result.error = errno;
    result.fd.reset();
  }
  return result;
}

bool StaticHandler::isRegularFile(const std::string& relative) const {
  if (relative.find('/') == std::string::npos) {
    // One component beneath the root: nothing to escape through, and a failing fstatat
    // costs half a failing openat2 (which allocates a file before the lookup).
    struct stat st {};
    if (::fstatat(root_.get(), relative.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
    if (!S_ISLNK(st.st_mode)) return S_ISREG(st.st_mode);
    // A symlink: where it leads is for the confined open to say.
  }
  Opened file = open(relative, true);
  return file.error == 0 && S_ISREG(file.st.st_mode);
}

// Without openat2 the check is realpath() then open() of the resolved name: racy against a
// concurrent symlink swap inside the directory, but never follows a link on the final open.
int StaticHandler::openFallback(const std::string& relative, int flags) const {
  std::string full = rootReal_;
  full += '/';
  full += relative;
  char resolved[PATH_MAX];
  if (::realpath(full.c_str(), resolved) == nullptr) return -1;
  std::string_view target(resolved);
  bool inside = target == rootReal_ ||
                (target.starts_with(rootReal_) &&
                 (rootReal_ == "/" || target[rootReal_.size()] == '/'));
  if (!inside) {
    errno = EXDEV;
    return -1;
  }
  if (!relative.empty() && relative.back() == '/') flags |= O_DIRECTORY;
  return ::open(resolved, flags | O_NOFOLLOW);
}

void StaticHandler::respondErrno(http::Exchange& exchange, int error,
                                 std::string_view relative) const {
  switch (error) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
      if (options_.logNotFound) {
        // nginx's log_not_found line (error level), with the request it answered.
        const http::Request& request = exchange.request();
        std::string path = directory_;
        if (!path.empty() && path.back() != '/' && !relative.empty()) path += '/';
        path += relative;
        logError("open() \"" + path + "\" failed (" + std::to_string(error) + ": " +
                 std::strerror(error) + "), request: \"" + request.method + " " +
                 request.target + " " + std::string(request.versionString()) + "\"");
      }
      exchange.respondError(404);
      return;
    case EXDEV:  // RESOLVE_BENEATH: the path (through a symlink or "..") leaves the directory
    case ELOOP:
    case EACCES:
    case EPERM:
      exchange.respondError(403);
      return;
    default:
      logError("static: open \"" + directory_ + std::string(relative) +
               "\" failed: " + std::strerror(error));
      exchange.respondError(500);
      return;
  }
}

StaticHandler::Kind StaticHandler::probe(std::string_view relative) const {
  if (!ensureRoot()) return Kind::kMissing;
  std::string name(relative);
  while (!name.empty() && name.front() == '/') name.erase(0, 1);
  if (hasDotDotSegment(name)) return Kind::kForbidden;
  Opened file = open(name, true);
  if (file.error != 0) {
    return (file.error == ENOENT || file.error == ENOTDIR || file.error == ENAMETOOLONG)
               ? Kind::kMissing
               : Kind::kForbidden;
  }
  if (S_ISDIR(file.st.st_mode)) return Kind::kDirectory;
  if (S_ISREG(file.st.st_mode)) return Kind::kFile;
  return Kind::kOther;
}

void StaticHandler::serve(http::Exchange& exchange, std::string_view relativeIn,
                          const std::function<std::string()>& directoryLocation,
                          const Validators* validators) const {
  const http::Request& request = exchange.request();
  auto notAllowed = [&] {
    http::ResponseHead head;
    head.status = 405;
    head.add("Content-Type", "text/html");
    head.add("Allow", "GET, HEAD");  // nginx omits it; RFC 9110 asks for it, the tests check it
    head.special = true;
    exchange.respond(std::move(head), exchange.errorPage(405));
  };
  // As ngx_http_static_handler: other methods are refused at once; POST only once the file is
  // found (a missing file stays a 404, a directory a 301).
  const bool post = request.method == "POST";
  if (request.method != "GET" && request.method != "HEAD" && !post) {
    notAllowed();
    return;
  }
  std::string name(relativeIn);
  while (!name.empty() && name.front() == '/') name.erase(0, 1);
  if (hasForbiddenEscape(request.rawPath) || name.find('\0') != std::string::npos ||
      hasDotDotSegment(name)) {
    exchange.respondError(404);
    return;
  }
  if (!ensureRoot()) {
    respondErrno(exchange, rootError_, name);
    return;
  }
  const size_t nameLength = name.size();
  // gzip_static: "always" serves the sibling to everyone; "on" asks ngx_http_gzip_ok (nothing
  // of the response exists yet, hence the empty head).
  bool wantsGzip =
      options_.gzipStatic &&
      (options_.gzipStaticAlways ||
       (options_.gzip ? options_.gzip->gzipOk(request, http::ResponseHead{},
                                              http::GzipSource::kStaticFile)
                      : http::acceptEncodingAllowsGzip(request)));
  if (wantsGzip && !name.empty()) {
    name += ".gz";
    Opened gz = open(name, false);
    name.resize(nameLength);
    if (gz.error == 0 && S_ISREG(gz.st.st_mode)) {
      if (post) {
        notAllowed();
        return;
      }
      serveFile(exchange, std::move(gz), name, true,
                options_.gzipVary && !options_.gzipStaticAlways, validators);
      return;
    }
  }
  Opened file = open(name, false);
  if (file.error != 0) {
    respondErrno(exchange, file.error, name);
    return;
  }
  if (S_ISDIR(file.st.st_mode)) {
    http::ResponseHead head;
    head.status = 301;
    head.add("Content-Type", "text/html");
    head.add("Location", directoryLocation());
    head.special = true;
    exchange.respond(std::move(head), exchange.errorPage(301));
    return;
  }
  if (!S_ISREG(file.st.st_mode)) {
    exchange.respondError(404);
    return;
  }
  if (post) {
    notAllowed();
    return;
  }
  bool vary = false;
  if (options_.gzipStatic && options_.gzipVary && !wantsGzip && !name.empty()) {
    // As ngx_http_gzip_static_module with gzip_vary on: the sibling is looked for also for
    // clients that do not take gzip, to say Vary.
    name += ".gz";
    vary = isRegularFile(name);
    name.resize(nameLength);
  }
  serveFile(exchange, std::move(file), name, false, vary, validators);
}

void StaticHandler::serveFile(http::Exchange& exchange, Opened file, std::string_view typeName,
                              bool gzip, bool vary, const Validators* validators) const {
  const http::Request& request = exchange.request();
  const uint64_t size = static_cast<uint64_t>(file.st.st_size);
  const std::time_t mtime = file.st.st_mtime;
  const std::string etag = makeEtag(file.st);
  const std::string& lastModified = lastModifiedText(mtime);
  const ConditionalHeaders conditions(request);

  // RFC 9110 §13.2.2: If-Match, else If-Unmodified-Since; then If-None-Match, else
  // If-Modified-Since; Range (with If-Range) last. Unparsable dates are ignored.
  bool failed = false;
  if (conditions.ifMatch != nullptr) {
    failed = !etagListMatches(request, "If-Match", etag, true);
  } else if (const std::string* value = conditions.ifUnmodifiedSince) {
    std::optional<std::time_t> date = http::parseHttpDate(*value);
    failed = date && mtime > *date;
  }
  if (failed) {
    exchange.respondError(412);
    return;
  }
  bool notModified = false;
  if (conditions.ifNoneMatch != nullptr) {
    notModified = etagListMatches(request, "If-None-Match", etag, false);
  } else if (const std::string* value = conditions.ifModifiedSince) {
    std::optional<std::time_t> date = http::parseHttpDate(*value);
    using Ims = config::LocationSettings::IfModifiedSince;
    switch (options_.ifModifiedSince) {  // ngx_http_test_if_modified
      case Ims::kOff: notModified = false; break;
      case Ims::kExact: notModified = date && mtime == *date; break;
      case Ims::kBefore: notModified = date && mtime <= *date; break;
    }
  }
  if (notModified) {
    http::ResponseHead head;
    head.status = 304;
    head.contentLength = std::nullopt;
    head.add("Last-Modified", lastModified);
    head.add("ETag", etag);
    if (vary) head.add("Vary", "Accept-Encoding");
    exchange.sendHead(std::move(head));
    exchange.finish();
    return;
  }

  // Range is defined for GET only (RFC 9110 §14.2); HEAD gets the 200 headers.
  RangeResult ranges = RangeIgnored{};
  if (!request.isHead()) {
    if (const std::string* range = conditions.range) {
      const std::string* ifRange = conditions.ifRange;
      // If-Range compares with the validators the response will carry (add_header's).
      std::optional<std::string_view> rangeEtag = etag;
      std::optional<std::time_t> rangeTime = mtime;
      if (validators && validators->etag) {
        rangeEtag = validators->etag->empty() ? std::nullopt
                                              : std::optional<std::string_view>(*validators->etag);
      }
      if (validators && validators->lastModified) {
        rangeTime = http::parseHttpDate(*validators->lastModified);
      }
      if (ifRange == nullptr || ifRangeMatches(*ifRange, rangeEtag, rangeTime)) {
        ranges = parseRange(*range, size);
      }
    }
  }
  const std::string_view type = mimes_.lookup(typeName);
  // nginx's gzip header filter runs before its range filter: when it would compress the whole
  // 200, the Range is not honoured (200, the whole file compressed by the location's filter);
  // otherwise its Vary stays on the 206/416.
  if (!gzip && options_.gzip && options_.gzip->enabled() &&
      !std::holds_alternative<RangeIgnored>(ranges)) {
    http::ResponseHead whole;
    whole.status = 200;
    whole.contentLength = size;
    whole.add("Content-Type", std::string(type));
    whole.add("ETag", etag);
    http::GzipDecision decision =
        options_.gzip->decide(request, whole, http::GzipSource::kStaticFile);
    if (decision.compress) {
      ranges = RangeIgnored{};
    } else if (decision.vary) {
      vary = true;
    }
  }
  if (std::holds_alternative<RangeUnsatisfiable>(ranges)) {
    http::ResponseHead head;
    head.status = 416;
    head.add("Content-Type", "text/html");
    head.add("Content-Range", "bytes */" + std::to_string(size));
    if (vary) head.add("Vary", "Accept-Encoding");
    head.special = true;
    exchange.respond(std::move(head), exchange.errorPage(416));
    return;
  }

  const ByteRanges* parts = std::get_if<ByteRanges>(&ranges);
  const bool multipart = parts != nullptr && parts->size() > 1;
  std::string boundary;

  http::ResponseHead head;
  head.status = parts != nullptr ? 206 : 200;
  head.headers.reserve(8);  // one allocation for all of them
  if (multipart) {
    boundary = nextBoundary();
    head.add("Content-Type", "multipart/byteranges; boundary=" + boundary);
  } else {
    head.add("Content-Type", std::string(type));
  }
  head.add("Last-Modified", lastModified);
  head.add("ETag", etag);
  if (gzip) head.add("Content-Encoding", "gzip");
  if (vary) head.add("Vary", "Accept-Encoding");
  head.add("Accept-Ranges", "bytes");

  if (parts == nullptr) {
    head.contentLength = size;
    exchange.sendHead(std::move(head));
    if (request.isHead() || size == 0) {
      exchange.finish();
      return;
    }
    if (size <= kInlineFileMax) {
      // A small file goes out in the head's write: one pread instead of a second send (the
      // connection gathers head and body into one sendmsg). Measured on this VM for 13 B:
      // sendmsg(MSG_MORE) + sendfile cost 2.4 us more than pread + one sendmsg.
      std::string bytes(static_cast<size_t>(size), '\0');
      ssize_t n = ::pread(file.fd.get(), bytes.data(), bytes.size(), 0);
      if (n == static_cast<ssize_t>(size)) {
        exchange.sendBody(std::move(bytes));
        exchange.finish();
        return;
      }
      // Changed under us: the file range below sends what is there, or fails as it would.
    }
    BodyChunk whole(FileRange{std::make_shared<const UniqueFd>(std::move(file.fd)), 0, size});
    if (options_.sendfile) {
      exchange.sendBody(std::move(whole));  // the common case: no vector, no sender
      exchange.finish();
      return;
    }
    std::vector<BodyChunk> body;
    body.push_back(std::move(whole));
    sendBody(exchange, std::move(body));
    return;
  }
  auto shared = std::make_shared<const UniqueFd>(std::move(file.fd));
  const std::string sizeText = std::to_string(size);
  std::vector<BodyChunk> body;
  if (!multipart) {
    const ByteRange& range = parts->front();
    head.add("Content-Range", "bytes " + std::to_string(range.offset) + "-" +
                                  std::to_string(range.last()) + "/" + sizeText);
    head.contentLength = range.length;
    exchange.sendHead(std::move(head));
    body.emplace_back(FileRange{shared, range.offset, range.length});
    sendBody(exchange, std::move(body));
    return;
  }

  // multipart/byteranges laid out as nginx does: each part "CRLF--boundary CRLF headers CRLF
  // CRLF data", then "CRLF--boundary--CRLF"; the length is known before anything is sent.
  uint64_t length = 0;
  for (const ByteRange& range : *parts) {
    std::string part = "\r\n--" + boundary + "\r\nContent-Type: " + std::string(type) +
                       "\r\nContent-Range: bytes " + std::to_string(range.offset) + "-" +
                       std::to_string(range.last()) + "/" + sizeText + "\r\n\r\n";
    length += part.size() + range.length;
    body.emplace_back(std::move(part));
    body.emplace_back(FileRange{shared, range.offset, range.length});
  }
  std::string tail = "\r\n--" + boundary + "--\r\n";
  length += tail.size();
  body.emplace_back(std::move(tail));
  head.contentLength = length;
  exchange.sendHead(std::move(head));
  sendBody(exchange, std::move(body));
}

namespace {

// `sendfile off`: file ranges are read() in 64 KiB pieces as the connection drains, so a large
// file never sits in memory whole. Kept alive by the onWritable callback it registers; freed
// with it if the client goes away.
class ReadingSender : public std::enable_shared_from_this<ReadingSender> {
 public:
  ReadingSender(http::Exchange& exchange, std::vector<BodyChunk> body)
      : exchange_(exchange), body_(std::move(body)) {}

  void pump() {
    constexpr uint64_t kPiece = 64 * 1024;
    while (next_ < body_.size()) {
      if (!exchange_.writable()) {
        auto self = shared_from_this();
        exchange_.onWritable([self] { self->pump(); });
        return;
      }
      BodyChunk& chunk = body_[next_];
      if (!chunk.isFile()) {
        exchange_.sendBody(std::move(chunk));
        ++next_;
        continue;
      }
      FileRange& range = std::get<FileRange>(chunk.data);
      std::string piece(static_cast<size_t>(std::min(kPiece, range.length - done_)), '\0');
      ssize_t n = ::pread(range.file->get(), piece.data(), piece.size(),
                          static_cast<off_t>(range.offset + done_));
      if (n <= 0) {
        logError("static: read() failed or the file shrank; closing the connection");
        exchange_.abort();
        return;
      }
      piece.resize(static_cast<size_t>(n));
      done_ += static_cast<uint64_t>(n);
      exchange_.sendBody(BodyChunk(std::move(piece)));
      if (done_ == range.length) {
        done_ = 0;
        ++next_;
      }
    }
    exchange_.finish();
  }

 private:
  http::Exchange& exchange_;
  std::vector<BodyChunk> body_;
  size_t next_ = 0;
  uint64_t done_ = 0;  // bytes of body_[next_] already read
};

}  // namespace

void StaticHandler::sendBody(http::Exchange& exchange, std::vector<BodyChunk> body) const {
  if (options_.sendfile) {
    for (BodyChunk& chunk : body) exchange.sendBody(std::move(chunk));
    exchange.finish();
    return;
  }
  std::make_shared<ReadingSender>(exchange, std::move(body))->pump();
}

pipeline::DocumentRootFactory documentRoots() {
  return [](std::string directory, const http::MimeTypes& mimes,
            const pipeline::FileOptions& options) -> std::unique_ptr<pipeline::DocumentRoot> {
    return std::make_unique<StaticHandler>(std::move(directory), mimes, options);
  };
}

}  // namespace portico::staticfiles
