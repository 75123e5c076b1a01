#pragma once

// On-the-fly gzip as nginx 1.22's ngx_http_gzip_filter_module does it: the decision (which
// responses, which clients — ngx_http_gzip_ok), the header edits, a streaming zlib encoder, and an
// Exchange decorator that compresses a handler's body (memory bytes and file ranges) with
// backpressure.

#include <cstdint>
#include <ctime>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/site.h"
#include "core/body_chunk.h"
#include "core/regex.h"
#include "event/event_loop.h"
#include "http/exchange.h"

namespace portico::http {

// A streaming gzip encoder (RAII around a zlib deflate stream): bytes in, gzip bytes out.
// Parameters follow nginx so the output is byte-identical to nginx's for the same input: zlib's
// gzip wrapper, window and memLevel shrunk for small known lengths. One owner, one thread.
class GzipEncoder {
 public:
  // `level` 1..9 (clamped). `lengthHint`: the input length when known (nginx's window sizing).
  explicit GzipEncoder(int level, std::optional<uint64_t> lengthHint = std::nullopt);
  ~GzipEncoder();
  GzipEncoder(const GzipEncoder&) = delete;
  GzipEncoder& operator=(const GzipEncoder&) = delete;

  // Compresses `input`, appending whatever output zlib releases to `out` (maybe nothing).
  void write(std::string_view input, std::string& out);
  // Ends the stream: appends the rest of the deflate data and the gzip trailer. Once only.
  void finish(std::string& out);

  bool finished() const { return finished_; }
  uint64_t bytesIn() const { return bytesIn_; }
  uint64_t bytesOut() const { return bytesOut_; }

 private:
  struct Stream;
  void run(std::string_view input, bool last, std::string& out);
  std::unique_ptr<Stream> stream_;
  bool finished_ = false;
  uint64_t bytesIn_ = 0;
  uint64_t bytesOut_ = 0;
};

// nginx's Accept-Encoding test (ngx_http_gzip_accept_encoding and its "gzip," fast path): the
// first "gzip" token (case-insensitive, at the start or after ',' or ' ') decides; "gzip;q=0",
// "gzip;q=0.000", a q with more than three decimals or above 1, and malformed parameters refuse.
// "x-gzip" and "*" do not count. `value` is the first Accept-Encoding header.
bool acceptEncodingAllowsGzip(std::string_view value);
// The same for a request (its first Accept-Encoding header, as nginx 1.22 keeps).
bool acceptEncodingAllowsGzip(const Request& request);

// nginx's MSIE 4-6 detection of a User-Agent (gzip_disable msie6): "MSIE 4.", "MSIE 5.",
// "MSIE 6." without "SV1"; never for Opera.
bool isMsie6(std::string_view userAgent);

// The media type nginx matches gzip_types against, from a Content-Type value: the part before a
// ";" followed by "charset=", else the whole value (so "text/plain; foo=bar" matches nothing).
std::string_view gzipMatchType(std::string_view contentType);

// Where a response comes from. nginx's static module only materializes Last-Modified after the
// gzip filter ran, so `gzip_proxied no_last_modified` never sees it on static files.
enum class GzipSource { kUpstream, kStaticFile };

// What the filter does with one response.
struct GzipDecision {
  bool vary = false;      // add "Vary: Accept-Encoding" (gzip_vary, response gzip-able by type)
  bool compress = false;  // compress the body
};

// One location's gzip settings, compiled (gzip_disable regexes, gzip_types set, gzip_proxied
// flags). Built once when the server starts; immutable, so it may be shared by every request.
class GzipPolicy {
 public:
  // nullopt with `error` set when a gzip_disable regex or a gzip_proxied value is invalid.
  static std::optional<GzipPolicy> compile(const config::GzipSettings& settings,
                                           std::string& error);

  const config::GzipSettings& settings() const { return settings_; }
  bool enabled() const { return settings_.enabled; }

  // ngx_http_gzip_ok: may this client get gzip? Accept-Encoding, msie6, gzip_http_version, and
  // for requests with Via, gzip_proxied against the response's Expires/Date/Cache-Control/
  // Last-Modified/ETag and the request's Authorization; then gzip_disable on User-Agent. Also
  // what gzip_static on consults (with an empty head: nothing of the response exists yet).
  bool gzipOk(const Request& request, const ResponseHead& head,
              GzipSource source = GzipSource::kUpstream, std::time_t now = std::time(nullptr)) const;
  // gzip_types against a Content-Type value ("text/html" always, "*" anything, even none).
  bool typeMatches(const std::string* contentType) const;
  // The whole header-filter decision for a response about to be sent (status 200/403/404, no
  // Content-Encoding, Content-Length >= gzip_min_length, type), then gzipOk. A static handler
  // asks this with its 200 head before honouring Range: nginx compresses the whole file instead
  // of a 206 when compress is true, and adds Vary to the 206 when vary is.
  GzipDecision decide(const Request& request, const ResponseHead& head,
                      GzipSource source = GzipSource::kUpstream,
                      std::time_t now = std::time(nullptr)) const;

 private:
  explicit GzipPolicy(const config::GzipSettings& settings) : settings_(settings) {}
  enum Proxied : unsigned {
    kOff = 1u << 0, kExpired = 1u << 1, kNoCache = 1u << 2, kNoStore = 1u << 3,
    kPrivate = 1u << 4, kNoLastModified = 1u << 5, kNoEtag = 1u << 6, kAuth = 1u << 7,
    kAny = 1u << 8,
  };
  config::GzipSettings settings_;
  std::vector<std::string> types_;  // lower case
  bool anyType_ = false;
  unsigned proxied_ = kOff;
  bool disableMsie6_ = false;
  std::vector<Regex> disable_;
};

// Decides and edits `head` as nginx's gzip header filter: "Vary: Accept-Encoding" when the
// decision says so (once), and when compressing "Content-Encoding: gzip", no Content-Length
// (the connection chunks or closes), no Accept-Ranges, a strong ETag made weak (a malformed one
// dropped). Returns whether the body must be compressed.
bool maybeCompress(const GzipPolicy& policy, const Request& request, ResponseHead& head,
                   GzipSource source = GzipSource::kUpstream);

// An Exchange decorator that compresses the response body when maybeCompress() says so at
// sendHead, and forwards everything unchanged otherwise. Memory chunks are compressed as they
// come; file ranges are read with pread in 64 KiB blocks only while the inner exchange is
// writable (at most 1 MiB per loop turn), so a 1 GB file never sits in memory and a client that
// reads slowly holds back the reading. Created per request by the pipeline (its output chain), event-loop
// thread only; it outlives the handler's finish() until the compressed body is out, and says
// when it is done through onDone. Safe if the client goes away mid-file.
class GzipExchange : public Exchange, public event::Deferrable {
 public:
  GzipExchange(Exchange& inner, const GzipPolicy& policy, event::EventLoop& loop,
               GzipSource source = GzipSource::kUpstream);
  ~GzipExchange() override;
  GzipExchange(const GzipExchange&) = delete;
  GzipExchange& operator=(const GzipExchange&) = delete;

  // Runs once when this exchange no longer needs the inner one (response finished, aborted, or
  // the client gone); the owner may then destroy it (deferred: a caller may still be on stack).
  void onDone(std::function<void()> callback) { onDone_ = std::move(callback); }
  bool compressing() const { return compressing_; }
  bool done() const { return done_; }

  const Request& request() const override { return inner_.request(); }
  std::shared_ptr<const Request> sharedRequest() const override { return inner_.sharedRequest(); }
  const ConnectionInfo& connection() const override { return inner_.connection(); }
  std::string_view signature() const override { return inner_.signature(); }
  void sendHead(ResponseHead head) override;
  void sendBody(BodyChunk chunk) override;
  void finish() override;
  void setTrailers(std::vector<Header> trailers) override {
    inner_.setTrailers(std::move(trailers));  // kept by the connection until the end
  }
  bool writable() const override;
  void onWritable(std::function<void()> callback) override;
  void readBody(BodyReader* reader) override { inner_.readBody(reader); }
  void onAbort(std::function<void()> callback) override { handlerAbort_ = std::move(callback); }
  void abort() override;

  static constexpr size_t kReadBlock = 64 * 1024;
  static constexpr size_t kInputPerTurn = 1024 * 1024;

 private:
  void pump();
  bool compressFileBlock(FileRange& range, std::string& out);
  void armInner();
  void onInnerWritable();
  void onInnerAbort();
  void continueLater();
  void fireHandlerWritable();
  void fail(const std::string& message);
  void stopEarly();
  void complete();

  Exchange& inner_;
  const GzipPolicy& policy_;
  event::EventLoop& loop_;
  GzipSource source_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // callbacks check it
  std::unique_ptr<GzipEncoder> encoder_;
  std::deque<BodyChunk> pending_;  // input not yet compressed, in order
  std::string readBuffer_;
  std::function<void()> handlerWritable_;
  std::function<void()> handlerAbort_;
  std::function<void()> onDone_;
  bool headSent_ = false;
  bool compressing_ = false;
  bool dropBody_ = false;         // HEAD: the headers say gzip, no body is produced
  bool handlerFinished_ = false;  // the handler called finish() (or abort())
  bool done_ = false;             // nothing more goes to the inner exchange
  bool pumping_ = false;
  bool continuePosted_ = false;
};

}  // namespace portico::http
