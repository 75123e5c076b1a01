#include "http/gzip_filter.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "core/log.h"
#include "http/http_date.h"

namespace portico::http {

// ---- encoder ---------------------------------------------------------------------------------

struct GzipEncoder::Stream {
  z_stream z{};
  ~Stream() { deflateEnd(&z); }
};

GzipEncoder::GzipEncoder(int level, std::optional<uint64_t> lengthHint)
    : stream_(std::make_unique<Stream>()) {
  level = std::clamp(level, 1, 9);
  // nginx (ngx_http_gzip_filter_memory): window 2^15 and memLevel 8, both shrunk while a known
  // length fits a smaller window ("the actual zlib window size is smaller by 262 bytes").
  int windowBits = MAX_WBITS;
  int memLevel = MAX_MEM_LEVEL - 1;
  if (lengthHint && *lengthHint > 0) {
    // Signed, as nginx's off_t: below 2^8 - 262 the bound is negative and the loop stops at 9.
    const int64_t length = static_cast<int64_t>(std::min<uint64_t>(*lengthHint, INT64_MAX));
    while (length < (int64_t{1} << (windowBits - 1)) - 262) {
      --windowBits;
      --memLevel;
    }
  }
  // +16: zlib writes the gzip header and trailer itself, as nginx 1.22 has it do.
  int rc = deflateInit2(&stream_->z, level, Z_DEFLATED, windowBits + 16, memLevel,
                        Z_DEFAULT_STRATEGY);
  if (rc != Z_OK) {
    stream_.reset();
    if (rc == Z_MEM_ERROR) throw std::bad_alloc();
    throw std::runtime_error("deflateInit2() failed: " + std::to_string(rc));
  }
}

GzipEncoder::~GzipEncoder() = default;

void GzipEncoder::write(std::string_view input, std::string& out) {
  constexpr size_t kSlice = size_t{1} << 30;  // zlib counts input in 32-bit units
  while (!finished_ && !input.empty()) {
    size_t n = std::min(input.size(), kSlice);
    run(input.substr(0, n), false, out);
    input.remove_prefix(n);
  }
}

void GzipEncoder::finish(std::string& out) {
  if (finished_) return;
  run({}, true, out);
  finished_ = true;
}

void GzipEncoder::run(std::string_view input, bool last, std::string& out) {
  constexpr size_t kStep = 16 * 1024;
  z_stream& z = stream_->z;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  z.avail_in = static_cast<uInt>(input.size());
  bytesIn_ += input.size();
  const int flush = last ? Z_FINISH : Z_NO_FLUSH;
  while (true) {
    size_t before = out.size();
    out.resize(before + kStep);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + before);
    z.avail_out = static_cast<uInt>(kStep);
    int rc = deflate(&z, flush);
    size_t produced = kStep - z.avail_out;
    out.resize(before + produced);
    bytesOut_ += produced;
    if (rc == Z_STREAM_END) return;
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      // Only a corrupted stream state can get here; never the input's fault.
      throw std::runtime_error("deflate() failed: " + std::to_string(rc));
    }
    // Done when zlib took all input and had room left (it holds nothing ready to emit).
    if (!last && z.avail_in == 0 && z.avail_out != 0) return;
  }
}

// ---- request-side tests ----------------------------------------------------------------------

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

size_t findCaseless(std::string_view haystack, std::string_view needle, size_t from) {
  if (needle.size() > haystack.size()) return std::string_view::npos;
  for (size_t i = from; i + needle.size() <= haystack.size(); ++i) {
    size_t k = 0;
    while (k < needle.size() && lower(haystack[i + k]) == needle[k]) ++k;
    if (k == needle.size()) return i;
  }
  return std::string_view::npos;
}

// ngx_http_gzip_quantity: "0" / "1" with up to three decimals; the digits are summed, not
// weighted, which only matters for telling zero from non-zero and rejecting > 1.
unsigned quantity(std::string_view v, size_t p) {
  const size_t last = v.size();
  char c = v[p++];
  if (c != '0' && c != '1') return 0;
  unsigned q = static_cast<unsigned>(c - '0') * 100;
  if (p == last) return q;
  c = v[p++];
  if (c == ',' || c == ' ') return q;
  if (c != '.') return 0;
  unsigned n = 0;
  while (p < last) {
    c = v[p++];
    if (c == ',' || c == ' ') break;
    if (c >= '0' && c <= '9') {
      q += static_cast<unsigned>(c - '0');
      ++n;
      continue;
    }
    return 0;
  }
  if (q > 100 || n > 3) return 0;
  return q;
}

// The last header named `name` (nginx keeps the last of an upstream's repeated headers).
const std::string* lastHeader(const std::vector<Header>& headers, std::string_view name) {
  const std::string* found = nullptr;
  for (const Header& h : headers) {
    if (iequals(h.name, name)) found = &h.value;
  }
  return found;
}

// ngx_http_parse_multi_header_lines with no value: a comma-separated element of any
// Cache-Control line starts with `token` (case-insensitive), then spaces, then ',' or the end.
bool cacheControlHas(const std::vector<Header>& headers, std::string_view token) {
  for (const Header& h : headers) {
    if (!iequals(h.name, "Cache-Control")) continue;
    std::string_view v = h.value;
    if (token.size() > v.size()) continue;
    size_t start = 0;
    while (start < v.size()) {
      if (startsWithCaseless(v.substr(start), token)) {
        size_t p = start + token.size();
        while (p < v.size() && v[p] == ' ') ++p;
        if (p == v.size() || v[p] == ',') return true;
      }
      while (start < v.size() && v[start] != ',') ++start;
      for (++start; start < v.size() && v[start] == ' '; ++start) {
      }
    }
  }
  return false;
}

}  // namespace

bool acceptEncodingAllowsGzip(std::string_view value) {
  if (value.size() < 4) return false;
  // The common "gzip, deflate": nginx compares five bytes, so a bare "gzip" takes the long path.
  if (value.starts_with("gzip,")) return true;
  size_t start = 0;
  size_t p;
  while (true) {
    p = findCaseless(value, "gzip", start);
    if (p == std::string_view::npos) return false;
    if (p == 0 || value[p - 1] == ',' || value[p - 1] == ' ') break;
    start = p + 4;
  }
  p += 4;
  const size_t last = value.size();
  while (p < last) {
    switch (value[p++]) {
      case ',':
        return true;
      case ';':
        goto quantity;
      case ' ':
        continue;
      default:
        return false;
    }
  }
  return true;
quantity:
  while (p < last) {
    switch (value[p++]) {
      case 'q':
      case 'Q':
        goto equal;
      case ' ':
        continue;
      default:
        return false;
    }
  }
  return true;
equal:
  if (p + 2 > last || value[p++] != '=') return false;
  return quantity(value, p) != 0;
}

bool acceptEncodingAllowsGzip(const Request& request) {
  const std::string* value = request.header("Accept-Encoding");
  return value != nullptr && acceptEncodingAllowsGzip(*value);
}

bool isMsie6(std::string_view ua) {
  bool msie6 = false;
  size_t m = ua.find("MSIE ");
  if (m != std::string_view::npos && m + 7 < ua.size() && ua[m + 6] == '.') {
    switch (ua[m + 5]) {
      case '4':
      case '5':
        msie6 = true;
        break;
      case '6':
        msie6 = ua.find("SV1", m + 8) == std::string_view::npos;
        break;
      default:
        break;
    }
  }
  if (ua.find("Opera") != std::string_view::npos) msie6 = false;
  return msie6;
}

std::string_view gzipMatchType(std::string_view v) {
  // ngx_http_upstream_process_content_type: only a charset parameter shortens the type.
  for (size_t p = 0; p < v.size(); ++p) {
    if (v[p] != ';') continue;
    size_t semicolon = p;
    do {
      ++p;
    } while (p < v.size() && v[p] == ' ');
    if (p == v.size()) return v;
    if (startsWithCaseless(v.substr(p), "charset=")) return v.substr(0, semicolon);
  }
  return v;
}

// ---- policy ----------------------------------------------------------------------------------

std::optional<GzipPolicy> GzipPolicy::compile(const config::GzipSettings& settings,
                                              std::string& error) {
  GzipPolicy policy(settings);
  policy.types_.push_back("text/html");
  for (const std::string& type : settings.types) {
    if (type == "*") {
      policy.anyType_ = true;
      continue;
    }
    std::string lowered(type);
    for (char& c : lowered) c = lower(c);
    policy.types_.push_back(std::move(lowered));
  }
  unsigned proxied = 0;
  for (const std::string& value : settings.proxied) {
    static const std::pair<std::string_view, unsigned> kNames[] = {
        {"off", kOff},         {"expired", kExpired},           {"no-cache", kNoCache},
        {"no-store", kNoStore}, {"private", kPrivate},          {"no_last_modified", kNoLastModified},
        {"no_etag", kNoEtag},   {"auth", kAuth},                {"any", kAny}};
    auto it = std::find_if(std::begin(kNames), std::end(kNames),
                           [&](const auto& entry) { return entry.first == value; });
    if (it == std::end(kNames)) {
      error = "invalid value \"" + value + "\" in \"gzip_proxied\"";
      return std::nullopt;
    }
    proxied |= it->second;
  }
  policy.proxied_ = proxied == 0 ? kOff : proxied;
  for (const std::string& pattern : settings.disable) {
    if (pattern == "msie6") {
      policy.disableMsie6_ = true;
      continue;
    }
    std::string regexError;
    std::optional<Regex> regex = Regex::compile(pattern, true, regexError);  // caseless, as nginx
    if (!regex) {
      error = "gzip_disable \"" + pattern + "\": " + regexError;
      return std::nullopt;
    }
    policy.disable_.push_back(std::move(*regex));
  }
  return policy;
}

bool GzipPolicy::typeMatches(const std::string* contentType) const {
  if (anyType_) return true;
  if (contentType == nullptr || contentType->empty()) return false;
  std::string_view type = gzipMatchType(*contentType);
  return std::any_of(types_.begin(), types_.end(),
                     [&](const std::string& t) { return iequals(t, type); });
}

bool GzipPolicy::gzipOk(const Request& request, const ResponseHead& head, GzipSource source,
                        std::time_t now) const {
  if (!acceptEncodingAllowsGzip(request)) return false;
  const std::string* userAgent = request.header("User-Agent");
  if (disableMsie6_ && userAgent != nullptr && isMsie6(*userAgent)) return false;
  if (request.versionMajor * 1000 + request.versionMinor < 1000 + settings_.httpVersionMinor) {
    return false;
  }
  if (request.header("Via") != nullptr) {
    // gzip_proxied, in ngx_http_gzip_ok's order; falling through the last tests means yes.
    if (proxied_ & kOff) return false;
    bool ok = (proxied_ & kAny) || ((proxied_ & kAuth) && request.header("Authorization"));
    if (!ok) {
      if (const std::string* expires = lastHeader(head.headers, "Expires")) {
        if (!(proxied_ & kExpired)) return false;
        std::optional<std::time_t> when = parseHttpDate(*expires);
        if (!when) return false;
        std::time_t date = now;
        if (const std::string* dateHeader = lastHeader(head.headers, "Date")) {
          std::optional<std::time_t> parsed = parseHttpDate(*dateHeader);
          if (!parsed) return false;
          date = *parsed;
        }
        if (*when >= date) return false;
      } else if (lastHeader(head.headers, "Cache-Control") != nullptr) {
        bool match = ((proxied_ & kNoCache) && cacheControlHas(head.headers, "no-cache")) ||
                     ((proxied_ & kNoStore) && cacheControlHas(head.headers, "no-store")) ||
                     ((proxied_ & kPrivate) && cacheControlHas(head.headers, "private"));
        if (!match) return false;
      } else {
        if ((proxied_ & kNoLastModified) && source != GzipSource::kStaticFile &&
            lastHeader(head.headers, "Last-Modified") != nullptr) {
          return false;
        }
        if ((proxied_ & kNoEtag) && lastHeader(head.headers, "ETag") != nullptr) return false;
      }
    }
  }
  if (userAgent != nullptr) {
    for (const Regex& regex : disable_) {
      if (regex.matches(*userAgent)) return false;
    }
  }
  return true;
}

GzipDecision GzipPolicy::decide(const Request& request, const ResponseHead& head,
                                GzipSource source, std::time_t now) const {
  GzipDecision decision;
  if (!settings_.enabled) return decision;
  if (head.status != 200 && head.status != 403 && head.status != 404) return decision;
  const std::string* encoding = lastHeader(head.headers, "Content-Encoding");
  if (encoding != nullptr && !encoding->empty()) return decision;
  if (head.contentLength && *head.contentLength < static_cast<uint64_t>(std::max<int64_t>(
                                                      settings_.minLength, 0))) {
    return decision;
  }
  if (!typeMatches(lastHeader(head.headers, "Content-Type"))) return decision;
  decision.vary = settings_.vary;
  decision.compress = gzipOk(request, head, source, now);
  return decision;
}

bool maybeCompress(const GzipPolicy& policy, const Request& request, ResponseHead& head,
                   GzipSource source) {
  GzipDecision decision = policy.decide(request, head, source);
  std::vector<Header>& headers = head.headers;
  if (decision.vary) {
    // nginx emits its Vary ahead of the handler's own; one line is enough when a handler (the
    // gzip_static path) already said the same.
    auto same = std::find_if(headers.begin(), headers.end(), [](const Header& h) {
      return iequals(h.name, "Vary") && iequals(h.value, "Accept-Encoding");
    });
    if (same == headers.end()) {
      auto firstVary = std::find_if(headers.begin(), headers.end(),
                                    [](const Header& h) { return iequals(h.name, "Vary"); });
      headers.insert(firstVary, Header{"Vary", "Accept-Encoding"});
    }
  }
  if (!decision.compress) return false;

  std::erase_if(headers, [](const Header& h) {
    return iequals(h.name, "Content-Encoding") || iequals(h.name, "Content-Length") ||
           iequals(h.name, "Accept-Ranges");
  });
  head.contentLength.reset();
  // ngx_http_weak_etag: the compressed bytes are another representation.
  std::erase_if(headers, [](Header& h) {
    if (!iequals(h.name, "ETag")) return false;
    if (h.value.size() > 2 && h.value[0] == 'W' && h.value[1] == '/') return false;
    if (h.value.empty() || h.value[0] != '"') return true;
    h.value.insert(0, "W/");
    return false;
  });
  headers.push_back({"Content-Encoding", "gzip"});
  return true;
}

// ---- exchange decorator ----------------------------------------------------------------------

GzipExchange::GzipExchange(Exchange& inner, const GzipPolicy& policy, event::EventLoop& loop,
                           GzipSource source)
    : inner_(inner), policy_(policy), loop_(loop), source_(source) {
  std::weak_ptr<bool> alive = alive_;
  inner_.onAbort([this, alive] {
    if (!alive.expired()) onInnerAbort();
  });
}

GzipExchange::~GzipExchange() { *alive_ = false; }

void GzipExchange::sendHead(ResponseHead head) {
  if (headSent_ || done_) return;
  headSent_ = true;
  std::optional<uint64_t> length = head.contentLength;
  compressing_ = maybeCompress(policy_, inner_.request(), head, source_);
  if (compressing_) {
    dropBody_ = inner_.request().isHead();
    if (!dropBody_) encoder_ = std::make_unique<GzipEncoder>(policy_.settings().level, length);
  }
  inner_.sendHead(std::move(head));
}

void GzipExchange::sendBody(BodyChunk chunk) {
  if (!headSent_ || handlerFinished_ || done_) return;
  if (!compressing_) {
    inner_.sendBody(std::move(chunk));
    return;
  }
  if (dropBody_ || chunk.size() == 0) return;
  pending_.push_back(std::move(chunk));
  pump();
}

void GzipExchange::finish() {
  if (handlerFinished_ || done_) return;
  handlerFinished_ = true;
  if (!compressing_ || dropBody_) {
    inner_.finish();
    complete();
    return;
  }
  pump();
}

bool GzipExchange::writable() const {
  if (done_) return false;
  return pending_.empty() && inner_.writable();
}

void GzipExchange::onWritable(std::function<void()> callback) {
  handlerWritable_ = std::move(callback);
  if (!done_ && !continuePosted_) armInner();
}

void GzipExchange::abort() {
  if (done_) return;
  handlerFinished_ = true;
  handlerAbort_ = nullptr;  // the handler asked for this; it needs no notice
  done_ = true;
  inner_.abort();
  complete();
}

void GzipExchange::pump() {
  if (pumping_ || done_) return;
  pumping_ = true;
  size_t budget = kInputPerTurn;
  std::string out;
  while (!done_ && !pending_.empty()) {
    if (!inner_.writable()) {
      armInner();
      break;
    }
    if (budget == 0) {
      continueLater();
      break;
    }
    BodyChunk& front = pending_.front();
    if (auto* bytes = std::get_if<std::string>(&front.data)) {
      budget -= std::min(budget, bytes->size());
      encoder_->write(*bytes, out);
      pending_.pop_front();
    } else {
      FileRange& range = std::get<FileRange>(front.data);
      size_t before = encoder_->bytesIn();
      if (!compressFileBlock(range, out)) break;  // failed: done_ is set
      budget -= std::min(budget, static_cast<size_t>(encoder_->bytesIn() - before));
      if (range.length == 0) pending_.pop_front();
    }
    if (!out.empty()) {
      inner_.sendBody(BodyChunk(std::move(out)));
      out.clear();
    }
  }
  if (!done_ && pending_.empty() && handlerFinished_ && encoder_) {
    encoder_->finish(out);
    if (!out.empty()) inner_.sendBody(BodyChunk(std::move(out)));
    done_ = true;
    inner_.finish();
    complete();
  }
  pumping_ = false;
}

bool GzipExchange::compressFileBlock(FileRange& range, std::string& out) {
  if (readBuffer_.size() < kReadBlock) readBuffer_.resize(kReadBlock);
  size_t want = static_cast<size_t>(std::min<uint64_t>(range.length, kReadBlock));
  ssize_t n;
  do {
    n = ::pread(range.file->get(), readBuffer_.data(), want, static_cast<off_t>(range.offset));
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    fail(std::string("gzip: reading the response file failed: ") + std::strerror(errno));
    return false;
  }
  if (n == 0) {
    fail("gzip: response file truncated while being compressed; closing the connection");
    return false;
  }
  encoder_->write(std::string_view(readBuffer_.data(), static_cast<size_t>(n)), out);
  range.offset += static_cast<uint64_t>(n);
  range.length -= static_cast<uint64_t>(n);
  return true;
}

void GzipExchange::armInner() {
  std::weak_ptr<bool> alive = alive_;
  inner_.onWritable([this, alive] {
    if (!alive.expired()) onInnerWritable();
  });
}

void GzipExchange::onInnerWritable() {
  if (done_) return;
  pump();
  fireHandlerWritable();
}

// Highly compressible input can use up the turn's input budget without filling the output
// queue, so no onWritable would ever come: continue on a later loop iteration instead. post()
// (not defer) so the other connections' events are served in between.
void GzipExchange::continueLater() {
  if (continuePosted_) return;
  continuePosted_ = true;
  std::weak_ptr<bool> alive = alive_;
  loop_.post([this, alive] {
    if (alive.expired()) return;
    continuePosted_ = false;
    if (done_) return;
    pump();
    fireHandlerWritable();
  });
}

// The handler hears "writable" only from a callback of its own registration, never from
// inside its sendBody/finish call.
void GzipExchange::fireHandlerWritable() {
  if (done_ || !handlerWritable_) return;
  if (!writable()) {
    if (!continuePosted_) armInner();
    return;
  }
  auto callback = std::move(handlerWritable_);
  handlerWritable_ = nullptr;
  callback();
}

void GzipExchange::onInnerAbort() {
  // The client is gone; the inner exchange dies right after this callback.
  stopEarly();
  complete();
}

void GzipExchange::fail(const std::string& message) {
  logError(message);
  stopEarly();
  inner_.abort();  // a truncated response, never a wrong one
  complete();
}

// Nothing more goes out; a handler still producing hears it as its exchange's abort.
void GzipExchange::stopEarly() {
  bool tellHandler = !handlerFinished_;
  done_ = true;
  handlerFinished_ = true;
  if (tellHandler && handlerAbort_) {
    auto callback = std::move(handlerAbort_);
    handlerAbort_ = nullptr;
    callback();
  }
}

void GzipExchange::complete() {
  done_ = true;
  pending_.clear();
  encoder_.reset();  // zlib's few hundred KiB go back now, as nginx frees them early
  handlerWritable_ = nullptr;
  if (onDone_) {
    auto callback = std::move(onDone_);
    onDone_ = nullptr;
    callback();
  }
}

}  // namespace portico::http
