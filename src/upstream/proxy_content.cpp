#include "upstream/proxy_content.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string_view>

#include "config/upstream_address.h"
#include "core/block_cache.h"
#include "core/log.h"
#include "core/request_metrics.h"
#include "core/temp_file.h"
#include "core/unique_fd.h"
#include "dns/resolver.h"
#include "http/variables.h"
#include "transport/plain_transport.h"
#include "transport/tls_client.h"
#include "upstream/accel_redirect.h"
#include "upstream/balancer.h"
#include "upstream/keepalive_pool.h"
#include "upstream/proxy_ssl.h"
#include "upstream/proxy_tunnel.h"
#include "upstream/proxy_rewrite.h"
#include "upstream/proxy_target.h"
#include "upstream/response_parser.h"
#include "upstream/response_spool.h"
#include "upstream/uwsgi_request.h"

namespace portico::upstream {
namespace {

using config::ProxySettings;

// nginx's ngx_escape_uri(NGX_ESCAPE_URI): " ", "#", "%", "?", controls and non-ASCII.
std::string escapeUri(std::string_view uri) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(uri.size());
  for (char ch : uri) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == '#' || c == '%' || c == '?' || c >= 0x7f) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

// The response headers nginx's proxy module hides by default (ngx_http_proxy_hide_headers),
// and the upstream's hop-by-hop and framing headers, never passed on.
constexpr std::string_view kDefaultHidden[] = {
    "Date", "Server", "X-Pad", "X-Accel-Expires", "X-Accel-Redirect", "X-Accel-Limit-Rate",
    "X-Accel-Buffering", "X-Accel-Charset",
};
constexpr std::string_view kHopByHop[] = {
    "Connection", "Keep-Alive", "Transfer-Encoding", "Content-Length", "Upgrade", "TE",
    "Trailer", "Proxy-Connection",
};

std::string errnoText(int error) {
  return "(" + std::to_string(error) + ": " + std::strerror(error) + ")";
}

std::string seconds3(std::chrono::steady_clock::duration d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms < 0) ms = 0;
  // "S.mmm", as nginx's "%T.%03M"; by hand, since snprintf cost ~1,200 instructions a call and
  // three are made per proxied request.
  std::string text = std::to_string(ms / 1000);
  const auto frac = static_cast<unsigned>(ms % 1000);
  text += '.';
  text += static_cast<char>('0' + frac / 100);
  text += static_cast<char>('0' + frac / 10 % 10);
  text += static_cast<char>('0' + frac % 10);
  return text;
}

void appendEntry(std::string& list, std::string_view value) {
  if (!list.empty()) list += ", ";
  list += value;
}

// One proxy_set_header (or nginx default) of a location, compiled once.
struct HeaderRule {
  std::string name;
  http::Template value;
  bool contentLength = false;  // nginx's $proxy_internal_body_length
};

}  // namespace

// One location's proxy_pass: its settings, compiled templates and peers. Owned by the
// SiteHandler (made by ProxyContentModule::create); loop thread.
class ProxyHandler : public pipeline::ContentHandler {
 public:
  ProxyHandler(event::EventLoop* loop, const config::LocationSettings& settings)
      : loop_(loop), settings_(settings.uwsgi.pass ? settings.uwsgi : settings.proxy),
        pass_(*settings_.pass),
        bodyBufferSize_(settings.clientBodyBufferSize),
        tempPath_(settings.clientBodyTempPath), sendfile_(settings.sendfile),
        bodyInFile_(settings.clientBodyInFileOnly) {
    if (settings.uwsgi.pass) settings_.uwsgi = true;  // a hand-built model may not say it
  }

  bool compile(const std::vector<std::string>* captures, const http::VariableRegistry* users,
               std::string& error);
  void handle(http::Exchange& exchange) override;
  bool readsBody() const override { return true; }
  bool upstream() const override { return true; }

  event::EventLoop* loop_;
  ProxySettings settings_;
  config::ProxyPass pass_;
  uint64_t bodyBufferSize_;
  std::string tempPath_;
  std::vector<HeaderRule> headers_;
  std::vector<std::string> setNames_;  // every header name the rules set (lower-case compare)
  std::optional<http::Template> method_;
  std::optional<http::Template> body_;
  Balancer* balancer_ = nullptr;  // the upstream's peers (owned by the module, per worker)
  std::optional<http::Template> hashKey_;  // `hash KEY` of the upstream
  KeepalivePool* pool_ = nullptr;  // the upstream's idle connections (null: none cached)
  const config::UpstreamSpec* spec_ = nullptr;  // the upstream proxied to
  bool sendfile_;  // `sendfile`: a spilled response's file goes as file ranges, else read()
  config::LocationSettings::BodyInFile bodyInFile_;  // client_body_in_file_only
  std::optional<UwsgiParams> uwsgi_;  // uwsgi_pass: the codec's params (null: HTTP/1)
  // proxy_redirect / proxy_cookie_* (null: none); proxy_intercept_errors: the statuses the
  // location's error_page names (empty: nothing intercepted).
  std::unique_ptr<ProxyHeaderRewrites> rewrites_;
  std::vector<int> interceptStatuses_;
  // A pass with variables (proxy_pass's URL, uwsgi_pass's address): the template, and every
  // upstream a name may select (its balancer, pool and hash key), made once per location.
  struct UpstreamChoice {
    Balancer* balancer = nullptr;
    KeepalivePool* pool = nullptr;
    std::optional<http::Template> hashKey;
  };
  std::optional<http::Template> passUrl_;
  const std::vector<config::UpstreamSpec>* upstreams_ = nullptr;
  std::vector<UpstreamChoice> choices_;  // parallel to *upstreams_
  std::optional<http::Template> bind_;  // proxy_bind (nullopt: off)
  std::unique_ptr<UpstreamTls> tls_;  // proxy_pass https:// (upstream/proxy_ssl.h); else null
  // The location's `resolver` for a host name no upstream names (null: nginx's "no resolver
  // defined") and its resolver_timeout.
  dns::Resolver* resolver_ = nullptr;
  uint64_t resolverTimeoutMs_ = 30000;
};

namespace {

// One proxied request: owns its upstream connection, deletes itself (deferred) when the
// exchange is finished, aborted or the client went away. Loop thread.
class ProxyRequest final : public event::IoWatcher, public http::BodyReader, public event::Deferrable {
 public:
  ProxyRequest(ProxyHandler& handler, http::Exchange& exchange)
      : h_(handler), ex_(&exchange), loop_(*handler.loop_),
        parser_(handler.settings_.bufferSize, exchange.request().isHead()),
        pass_(&handler.pass_), balancer_(handler.balancer_), pool_(handler.pool_),
        hashKeyTemplate_(handler.hashKey_ ? &*handler.hashKey_ : nullptr) {}
  ~ProxyRequest() override { closeUpstream(); }
  // Made and freed once per request, and larger than malloc's per-thread cache serves.
  static void* operator new(size_t size) { return BlockCache<ProxyRequest>::take(size); }
  static void operator delete(void* block, size_t size) {
    BlockCache<ProxyRequest>::give(block, size);
  }

  void start(std::unique_ptr<ProxyRequest> self);

  // BodyReader
  void onBodyData(std::string_view data) override;
  void onBodyEnd() override;
  // IoWatcher
  void onIoEvent(uint32_t events) override;

 private:
  enum class State { kBody, kConnecting, kSending, kHead, kResponse, kDone, kHandshaking };
  enum class Failure { kError, kTimeout, kInvalidHeader };

  void connectNext();
  void connectTo(bool fresh);
  void onConnected();
  void sendMore();
  void readMore();
  void process();
  void deliver(std::string bytes);
  void flushPending();
  void pumpSpool();
  void waitWritable();
  std::string spoolLogContext() const;
  void responseEnded();
  void fail(Failure kind, int status, const std::string& message);
  // This request speaks TLS to its upstream: proxy_pass https://, or an https:// URL a pass
  // with variables made.
  bool usesTls() const { return h_.tls_ && pass_->ssl; }
  void finishWith(int status);
  void log(const std::string& message);
  void closeUpstream();
  void destroy();
  // `what`: a string literal (kept until the timer fires).
  void armTimer(double seconds, Failure kind, int status, const char* what);
  bool mayRetry(unsigned condition) const;
  void releasePeer(bool failed);
  // The try of peer_ ended: the $upstream_* lists and the metrics (`failed`: an error, a
  // timeout, an invalid response).
  void recordAttempt(const std::string& status, bool failed = false);
  void recordHead(int status);
  bool mayUpgrade() const;
  void startTunnel();
  void accelRedirect(const std::string& value);
  void intercept(const UpstreamHead& head);
  // proxy_pass with variables: where this request goes. kResolving: a host name is being
  // looked up, and resolved() goes on.
  enum class Choice { kReady, kFailed, kResolving };
  Choice chooseTarget();
  void resolved(const dns::Result& result);
  bool useAddresses(const dns::Result& result);
  void begin();
  std::string buildHead();
  std::string requestUri() const;
  std::string upstreamUrl() const;

  ProxyHandler& h_;
  http::Exchange* ex_;  // null once finished or aborted
  event::EventLoop& loop_;
  std::unique_ptr<ProxyRequest> self_;
  State state_ = State::kBody;
  ResponseParser parser_;

  // The request body, in memory up to client_body_buffer_size, else (or always, with
  // client_body_in_file_only) in a temp file: $request_body_file names it.
  std::string bodyMemory_;
  TempFile bodyFile_;
  uint64_t bodySize_ = 0;
  std::string head_;  // the request's head (and a proxy_set_body body), built once
  std::string setBody_;
  bool hasBody_ = false;

  // The connection to the current peer.
  const config::UpstreamAddress* peer_ = nullptr;
  const Peer* current_ = nullptr;  // the balancer's peer being tried (released after the try)
  Attempt attempt_;
  sockaddr_storage client_{};
  std::unique_ptr<transport::Transport> conn_;
  // conn_'s loop registration (null: not registered); it moves with the connection to and
  // from the keep-alive pool, so neither hand-over is an epoll_ctl.
  std::unique_ptr<UpstreamWatch> watch_;
  uint64_t sent_ = 0;  // bytes of head + body written
  std::string fileChunk_;
  uint64_t fileChunkOffset_ = UINT64_MAX;
  event::TimerId timer_{0, 0};
  Failure timerKind_ = Failure::kTimeout;  // what timer_ reports when it fires (armTimer)
  int timerStatus_ = 504;
  const char* timerWhat_ = "";
  int tries_ = 0;
  std::chrono::steady_clock::time_point firstTry_, tryStart_;
  bool headSent_ = false;  // the client has the response head: errors now cut it short
  bool reused_ = false;    // conn_ came from the keep-alive pool
  bool received_ = false;  // a byte of the response arrived on conn_
  // epoll (edge-triggered) reported conn_ readable and no read has found it empty since: only
  // then is a read tried as the request goes out (else it would find nothing, one recv a request).
  bool readable_ = false;
  bool sentClose_ = false;  // the request said "Connection: close"
  uint64_t connRequests_ = 0;  // requests conn_ served before this one
  uint64_t connBornMs_ = 0;    // when conn_ was connected (keepalive_time), the loop's clock
  bool headRecorded_ = false;  // recordHead wrote this try's address and status
  // This try's $upstream_connect_time / $upstream_header_time entries are written.
  bool connectRecorded_ = false;
  bool headerTimeRecorded_ = false;

  std::string in_;       // upstream bytes not yet parsed
  std::string pending_;  // body bytes waiting for the client (proxy_buffering's read-ahead)
  bool upstreamDone_ = false;
  bool waitingWritable_ = false;
  int lastFailStatus_ = 502;
  std::string hashKey;
  bool clientSet_ = false;
  uint64_t bodyReceived_ = 0;  // response body bytes of the current try
  // The response is buffered (proxy_buffering, or the upstream's X-Accel-Buffering): its body
  // goes through spool_ (memory, then a temporary file) so the upstream is read at its speed.
  bool buffering_ = true;
  std::unique_ptr<ResponseSpool> spool_;
  bool spoolPaused_ = false;  // reading stopped: the spool's memory and file are full
  // proxy_limit_rate: the body bytes read since the response began (rateStartMs_), and the
  // timer that resumes reading once they have waited their time.
  uint64_t rateRead_ = 0;
  uint64_t rateStartMs_ = 0;
  event::TimerId rateTimer_{0, 0};

  // What this request proxies to: the handler's, or (proxy_pass with variables) chosen by
  // chooseTarget — then an address's one-server upstream is this request's own.
  const config::ProxyPass* pass_;
  Balancer* balancer_;
  KeepalivePool* pool_;
  const http::Template* hashKeyTemplate_;
  std::unique_ptr<PassTarget> target_;
  std::unique_ptr<config::UpstreamSpec> ownSpec_;  // before ownBalancer_: its peers point here
  std::unique_ptr<Balancer> ownBalancer_;
  std::unique_ptr<dns::Resolver::Lookup> lookup_;  // the host name being resolved
  uint64_t bytesRead_ = 0;  // bytes read from the current try's connection
  // proxy_request_buffering off: the body is sent as it is stored (chunk-framed when
  // chunkedUpstream_); bodyDone_ once the client's body ended.
  bool streaming_ = false;
  // Streaming to a chunked upstream: the body as the client sent it, while it fits
  // client_body_buffer_size ($request_body).
  std::string streamedBody_;
  bool streamedBodyFits_ = true;
  std::string chunkGather_;  // this read's bytes, framed as one chunk after it
  bool flushQueued_ = false;
  bool bodyEnded_ = false;  // the client's body ended (bodyDone_: and its end is stored)
  bool chunkedUpstream_ = false;
  bool bodyDone_ = false;
  void startStreaming();
  void paceRead(uint64_t ms);
  void flushStreamSoon();
  void storeBody(std::string_view data);
  // proxy_pass https://: the TLS handshake after the TCP connect, within proxy_connect_timeout.
  void connected();
  void handshake();
  transport::TlsClientTransport* tls_ = nullptr;  // conn_ when it is a TLS one being set up
  std::string sslName_;  // this try's proxy_ssl_name
};

void ProxyRequest::start(std::unique_ptr<ProxyRequest> self) {
  self_ = std::move(self);
  if (h_.passUrl_) {
    Choice choice = chooseTarget();
    if (choice == Choice::kFailed) return;
    if (choice == Choice::kResolving) {
      // A client that goes away while the name is looked up ends the wait (the answer, when
      // it comes, is still cached for the next request).
      ex_->onAbort([this] {
        lookup_.reset();
        ex_ = nullptr;
        destroy();
      });
      ex_->abortOnClientClose();
      return;
    }
  }
  begin();
}

// The target is known: the request goes on to its body and the first try.
void ProxyRequest::begin() {
  http::UpstreamVariables* vars = ex_->upstreamVariables();
  if (vars) {
    vars->proxyHost = pass_->proxyHost;
    vars->proxyPort = pass_->proxyPort;
  }
  ex_->onAbort([this] {
    // The client went away during a try: it is recorded for the log line still to come
    // (nginx finalizes the upstream state with its response time).
    if (peer_ && !upstreamDone_ && state_ != State::kBody && state_ != State::kDone) {
      recordAttempt("-");
    }
    ex_ = nullptr;
    destroy();
  });
  ex_->abortOnClientClose();  // proxy_ignore_client_abort off
  firstTry_ = std::chrono::steady_clock::now();
  const http::Request& r = ex_->request();
  if (h_.body_) {
    setBody_ = ex_->expand(*h_.body_);
    hasBody_ = true;
  } else if (h_.settings_.passRequestBody && r.hasBody()) {
    hasBody_ = true;
    if (!h_.settings_.requestBuffering && (!r.chunked || h_.settings_.httpVersionMinor == 1)) {
      startStreaming();
      return;
    }
    ex_->readBody(this);  // onBodyEnd connects
    return;
  } else if (h_.settings_.passRequestBody && r.contentLength) {
    hasBody_ = true;  // Content-Length: 0 is passed on as such
  }
  onBodyEnd();
}

// proxy_request_buffering off: the head goes out with the client's length (or chunked), the
// connection is made at once, and the body follows as it arrives (onBodyData → sendMore).
void ProxyRequest::startStreaming() {
  streaming_ = true;
  chunkedUpstream_ = ex_->request().chunked;
  head_ = buildHead();
  connectNext();
  if (ex_) ex_->readBody(this);
}

void ProxyRequest::onBodyData(std::string_view data) {
  if (!ex_ || data.empty()) return;
  if (!streaming_) {
    storeBody(data);
    return;
  }
  if (chunkedUpstream_) {
    // $request_body (nginx keeps the body's buffers when it fits client_body_buffer_size):
    // memory holds it chunk-framed, so a plain copy is kept while it fits.
    if (streamedBodyFits_ && streamedBody_.size() + data.size() <= h_.bodyBufferSize_) {
      streamedBody_.append(data);
    } else if (streamedBodyFits_) {
      streamedBodyFits_ = false;
      std::string().swap(streamedBody_);
    }
    // What one read brought (several client chunks, perhaps) becomes one upstream chunk, as
    // nginx frames it: gathered here, framed once the read's bytes are all in.
    chunkGather_.append(data);
  } else {
    storeBody(data);
  }
  flushStreamSoon();
}

// Streaming: the bytes one read delivered (and the body's end, when it came with them) go to
// the upstream together, after the read (one chunk and one write, not one per piece).
void ProxyRequest::flushStreamSoon() {
  if (flushQueued_) return;
  flushQueued_ = true;
  loop_.defer([this] {
    flushQueued_ = false;
    if (!ex_) return;
    if (!chunkGather_.empty()) {
      std::string data = std::move(chunkGather_);
      chunkGather_.clear();
      char size[32];
      std::snprintf(size, sizeof size, "%zx\r\n", data.size());
      storeBody(size);
      if (ex_) storeBody(data);
      if (ex_) storeBody("\r\n");
    }
    if (ex_ && bodyEnded_ && !bodyDone_) {
      if (chunkedUpstream_) storeBody("0\r\n\r\n");
      bodyDone_ = true;
    }
    if (ex_ && state_ == State::kSending) sendMore();
  });
}

// Keeps body bytes for sending: in memory up to client_body_buffer_size, then in the file.
void ProxyRequest::storeBody(std::string_view data) {
  if (!ex_) return;
  bodySize_ += data.size();
  const bool inFileOnly = h_.bodyInFile_ != config::LocationSettings::BodyInFile::kOff;
  if (!bodyFile_ && (streaming_ || !inFileOnly) &&
      bodyMemory_.size() + data.size() <= h_.bodyBufferSize_) {
    bodyMemory_.append(data);
    return;
  }
  if (!bodyFile_) {
    // A named file (nginx's client_body_temp), removed when the request ends unless
    // client_body_in_file_only on keeps it.
    std::string error;
    bodyFile_ = TempFile::create(
        h_.tempPath_, h_.bodyInFile_ == config::LocationSettings::BodyInFile::kOn && !streaming_,
        error);
    if (!bodyFile_) {
      log(error);
      finishWith(500);
      return;
    }
    std::string memory = std::move(bodyMemory_);  // what came before goes first
    bodyMemory_.clear();
    std::string_view first = memory;
    while (!first.empty()) {
      ssize_t n = ::write(bodyFile_.fd(), first.data(), first.size());
      if (n <= 0) {
        log("write() to a temporary file failed " + errnoText(errno));
        finishWith(500);
        return;
      }
      first.remove_prefix(static_cast<size_t>(n));
    }
  }
  while (!data.empty()) {
    ssize_t n = ::write(bodyFile_.fd(), data.data(), data.size());
    if (n <= 0) {
      log("write() to a temporary file failed " + errnoText(errno));
      finishWith(500);
      return;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void ProxyRequest::onBodyEnd() {
  if (!ex_) return;
  if (streaming_) {
    if (http::UpstreamVariables* vars = ex_->upstreamVariables()) {
      if (chunkedUpstream_ && streamedBodyFits_) {
        vars->requestBody = std::move(streamedBody_);
      } else if (!chunkedUpstream_ && !bodyFile_) {
        vars->requestBody = bodyMemory_;
      }
    }
    bodyEnded_ = true;
    flushStreamSoon();
    return;
  }
  // $request_body: the body read, when it stayed in memory (nginx: not from a temp file);
  // $request_body_file: the temp file's name when it did not.
  if (hasBody_ && !h_.body_) {
    if (http::UpstreamVariables* vars = ex_->upstreamVariables()) {
      if (!bodyFile_) vars->requestBody = bodyMemory_;
      else vars->requestBodyFile = bodyFile_.path();
    }
  }
  head_ = buildHead();
  if (head_.empty()) {
    finishWith(500);  // a uwsgi packet that cannot be built
    return;
  }
  connectNext();
}

std::string ProxyRequest::requestUri() const {
  const http::Request& r = ex_->request();
  const config::ProxyPass& p = *pass_;
  std::string uri;
  if (p.variables && p.hasUri) {
    return p.uri;  // the expanded URL's URI part is sent as it is (ngx_http_proxy_create_request)
  } else if (p.hasUri && !ex_->locationValid()) {
    // The URI was rewritten (break) inside the location: the URI part is left out and the
    // changed URI passed whole (ngx_http_proxy_create_request copies vars.uri only while
    // r->valid_location).
    uri = escapeUri(ex_->currentUri());
  } else if (p.hasUri) {
    // The location's prefix is replaced by the URI part (ngx_http_proxy_create_request).
    std::string_view current = ex_->currentUri();
    size_t prefix = std::min(p.locationPrefix.size(), current.size());
    uri = p.uri + escapeUri(current.substr(prefix));
  } else if (ex_->uriIsOriginal()) {
    // The client's own URI, unchanged (r->unparsed_uri).
    std::string_view target = r.target;
    if (!target.starts_with('/')) {
      size_t scheme = target.find("://");
      size_t slash = scheme == std::string_view::npos ? 0 : target.find('/', scheme + 3);
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
    size_t hash = target.find('#');
    return std::string(target.substr(0, hash));
  } else {
    uri = escapeUri(ex_->currentUri());
  }
  if (!r.query.empty()) uri += "?" + r.query;
  return uri;
}

std::string ProxyRequest::buildHead() {
  const http::Request& r = ex_->request();
  if (h_.uwsgi_) {
    // uwsgi_pass: one packet of the params and headers; the body follows it as for HTTP/1.
    // The connection is never kept (nginx's uwsgi module never sets u->keepalive; uWSGI closes).
    sentClose_ = true;
    if (http::UpstreamVariables* vars = ex_->upstreamVariables(); vars && hasBody_ &&
        !r.header("Content-Length")) {
      vars->requestBodyLength = std::to_string(bodySize_);  // $content_length, as nginx
    }
    std::string packet, error;
    if (!h_.uwsgi_->build([this](const http::Template& t) { return ex_->expand(t); },
                          h_.settings_.passRequestHeaders ? &r.headers : nullptr,
                          static_cast<uint8_t>(h_.settings_.uwsgiModifier1),
                          static_cast<uint8_t>(h_.settings_.uwsgiModifier2), packet, error)) {
      log(error);  // nginx: [alert] "uwsgi request is too big", then 500
    }
    return packet;
  }
  std::string method = h_.method_ ? ex_->expand(*h_.method_) : r.method;
  std::string out = method + " " + requestUri() + " HTTP/1." +
                    std::to_string(h_.settings_.httpVersionMinor) + "\r\n";
  uint64_t bodyLength = h_.body_ ? setBody_.size() : bodySize_;
  for (const HeaderRule& rule : h_.headers_) {
    if (rule.contentLength) {
      if (chunkedUpstream_) {
        out += "Transfer-Encoding: chunked\r\n";
      } else if (hasBody_) {
        uint64_t length = streaming_ ? r.contentLength.value_or(0) : bodyLength;
        out += "Content-Length: " + std::to_string(length) + "\r\n";
      }
      continue;
    }
    std::string value = rule.value.constant() ? rule.value.source() : ex_->expand(rule.value);
    if (value.empty()) continue;  // an empty value removes the header, as nginx
    // A value with CR or LF (from a variable) could split the request: such a line is dropped.
    if (value.find_first_of("\r\n") != std::string::npos) continue;
    if (http::iequals(rule.name, "Connection") && http::iequals(value, "close")) sentClose_ = true;
    out += rule.name + ": " + value + "\r\n";
  }
  if (h_.settings_.passRequestHeaders) {
    for (const http::Header& header : r.headers) {
      bool set = false;
      for (const std::string& name : h_.setNames_) {
        if (http::iequals(name, header.name)) {
          set = true;
          break;
        }
      }
      if (!set) out += header.name + ": " + header.value + "\r\n";
    }
  }
  out += "\r\n";
  return out;
}

std::string ProxyRequest::upstreamUrl() const {
  std::string text = peer_ ? peer_->text : pass_->upstream;
  if (h_.uwsgi_) return (pass_->ssl ? "suwsgi://" : "uwsgi://") + text;
  return (pass_->ssl ? "https://" : "http://") + text + requestUri();
}

void ProxyRequest::log(const std::string& message) {
  std::string line = message;
  if (ex_) {
    line += ex_->errorContext();
    if (state_ != State::kBody && peer_) line += ", upstream: \"" + upstreamUrl() + "\"";
    if (const std::string* host = ex_->request().header("Host")) {
      line += ", host: \"" + *host + "\"";
    }
  }
  logError(line);
}

// The try whose head goes to the client: its address and status are known now, and nginx's
// header filters (add_header $upstream_addr) see them there.
void ProxyRequest::recordHead(int status) {
  if (!ex_ || !peer_) return;
  http::UpstreamVariables* vars = ex_->upstreamVariables();
  if (!vars) return;
  appendEntry(vars->addr, peer_->text);
  appendEntry(vars->status, std::to_string(status));
  appendEntry(vars->responseTime, "-");  // until the try ends (recordAttempt)
  headRecorded_ = true;
}

void ProxyRequest::recordAttempt(const std::string& status, bool failed) {
  if (!ex_ || !peer_) return;
  if (current_) {
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - tryStart_);
    recordUpstreamTry(current_->metricsEntry, pass_->upstream, peer_->text, failed,
                      static_cast<uint64_t>(micros.count()));
  }
  http::UpstreamVariables* vars = ex_->upstreamVariables();
  if (!vars) return;
  // Every list keeps one entry per try, "-" for what the try never reached (nginx's state).
  if (!std::exchange(connectRecorded_, true)) appendEntry(vars->connectTime, "-");
  if (!std::exchange(headerTimeRecorded_, true)) appendEntry(vars->headerTime, "-");
  if (std::exchange(headRecorded_, false)) {
    vars->responseTime.pop_back();  // recordHead's "-"
    vars->responseTime += seconds3(std::chrono::steady_clock::now() - tryStart_);
  } else {
    appendEntry(vars->addr, peer_->text);
    appendEntry(vars->status, status);
    appendEntry(vars->responseTime, seconds3(std::chrono::steady_clock::now() - tryStart_));
  }
  appendEntry(vars->responseLength, std::to_string(bodyReceived_));
  appendEntry(vars->bytesSent, std::to_string(sent_));
  appendEntry(vars->bytesReceived, std::to_string(bytesRead_));
}

void ProxyRequest::connectNext() {
  if (!ex_) return;
  closeUpstream();
  connectRecorded_ = headerTimeRecorded_ = false;
  PickKey key;
  if (hashKeyTemplate_) hashKey = ex_->expand(*hashKeyTemplate_);
  key.hashKey = hashKey;
  if (!clientSet_) {
    clientSet_ = true;
    const http::ConnectionInfo& c = ex_->connection();
    auto* v4 = reinterpret_cast<sockaddr_in*>(&client_);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&client_);
    if (::inet_pton(AF_INET, c.peerAddress.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
    } else if (::inet_pton(AF_INET6, c.peerAddress.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
    } else {
      client_.ss_family = AF_UNIX;
    }
  }
  key.client = &client_;
  current_ = balancer_ ? balancer_->pick(attempt_, key, Clock::now()) : nullptr;
  if (!current_) {
    log("no live upstreams while connecting to upstream");
    if (ex_) {
      if (http::UpstreamVariables* vars = ex_->upstreamVariables()) {
        appendEntry(vars->addr, pass_->upstream);
        appendEntry(vars->status, "502");
      }
    }
    finishWith(tries_ > 0 ? lastFailStatus_ : 502);
    return;
  }
  peer_ = current_->address;
  ++tries_;
  connectTo(false);
}

// Connects to peer_: a cached connection first unless `fresh`.
void ProxyRequest::connectTo(bool fresh) {
  closeUpstream();
  tls_ = nullptr;
  tryStart_ = std::chrono::steady_clock::now();
  state_ = State::kConnecting;
  sent_ = 0;
  in_.clear();
  received_ = false;
  readable_ = false;  // a pooled connection's earlier readiness was its pool's to handle
  bodyReceived_ = 0;
  bytesRead_ = 0;
  reused_ = false;
  connRequests_ = 0;
  connBornMs_ = loop_.nowMs();
  if (pool_ && !fresh) {
    // Taken still registered, its events now coming here, as it was given back.
    if (auto cached = pool_->take(peer_, connRequests_, connBornMs_, this, watch_)) {
      if ((cached->tlsSession() != nullptr) != usesTls()) {
        // A connection of the other kind (the upstream is also proxied to over plain HTTP,
        // or over TLS): not this request's; closed.
        UpstreamWatch::remove(loop_, cached->fd(), std::move(watch_));
        cached.reset();
        connectTo(true);
        return;
      }
      conn_ = std::move(cached);
      reused_ = true;
      onConnected();
      return;
    }
  }
  int family = peer_->addr.ss_family;
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    log("socket() failed " + errnoText(errno) + " while connecting to upstream");
    finishWith(502);
    return;
  }
  tls_ = nullptr;
  if (usesTls()) {
    auto tls = std::make_unique<transport::TlsClientTransport>(UniqueFd(fd), family != AF_UNIX,
                                                               h_.tls_->context, peer_->text);
    tls_ = tls.get();
    conn_ = std::move(tls);
  } else {
    conn_ = std::make_unique<transport::PlainTransport>(UniqueFd(fd), family != AF_UNIX);
  }
  conn_->start();
  if (h_.bind_) {
    std::string message;
    bool bound = bindLocal(fd, ex_ ? ex_->expand(*h_.bind_) : std::string(), message);
    if (!message.empty()) log(message + " while connecting to upstream");
    if (!bound) {
      finishWith(500);
      return;
    }
  }
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&peer_->addr), peer_->length);
  if (rc != 0 && errno != EINPROGRESS) {
    int error = errno;
    fail(Failure::kError, 502,
         "connect() failed " + errnoText(error) + " while connecting to upstream");
    return;
  }
  watch_ = UpstreamWatch::add(loop_, fd, this);
  if (!watch_) {
    fail(Failure::kError, 502, "epoll_ctl() failed while connecting to upstream");
    return;
  }
  armTimer(h_.settings_.connectTimeoutSeconds, Failure::kTimeout, 504,
           "upstream timed out (110: Connection timed out) while connecting to upstream");
  if (rc == 0) connected();
}

void ProxyRequest::armTimer(double seconds, Failure kind, int status, const char* what) {
  uint64_t ms = seconds <= 0 ? 1 : static_cast<uint64_t>(seconds * 1000.0);
  // What the timer reports is kept here, so the callback holds `this` alone: std::function
  // keeps so small a capture in place, and a pending timer is moved rather than replaced
  // (connect, send and read timeouts of one try cost one timer node).
  timerKind_ = kind;
  timerStatus_ = status;
  timerWhat_ = what;
  if (loop_.rearmTimer(timer_, ms)) return;
  timer_ = loop_.addTimer(ms, [this] {
    timer_ = {0, 0};
    fail(timerKind_, timerStatus_, timerWhat_);
  });
}

void ProxyRequest::onIoEvent(uint32_t events) {
  if (!conn_ || !ex_) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable_ = true;
  if (state_ == State::kConnecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int error = 0;
    socklen_t len = sizeof error;
    ::getsockopt(conn_->fd(), SOL_SOCKET, SO_ERROR, &error, &len);
    if (error != 0) {
      fail(Failure::kError, 502,
           "connect() failed " + errnoText(error) + " while connecting to upstream");
      return;
    }
    connected();
    return;
  }
  if (state_ == State::kHandshaking) {
    handshake();
    return;
  }
  if (state_ == State::kSending && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) sendMore();
  if ((state_ == State::kHead || state_ == State::kResponse) &&
      (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
    readMore();
  }
}

void ProxyRequest::onConnected() {
  if (ex_) {
    if (http::UpstreamVariables* vars = ex_->upstreamVariables()) {
      if (!connectRecorded_) {
        appendEntry(vars->connectTime, seconds3(std::chrono::steady_clock::now() - tryStart_));
      }
      connectRecorded_ = true;
    }
  }
  loop_.cancelTimer(timer_);
  state_ = State::kSending;
  sendMore();
}

void ProxyRequest::sendMore() {
  const uint64_t headSize = head_.size();
  const uint64_t bodyLength = h_.body_ ? setBody_.size() : bodySize_;
  while (sent_ < headSize + bodyLength) {
    iovec iov[2];
    int count = 0;
    if (sent_ < headSize) {
      iov[count++] = {head_.data() + sent_, static_cast<size_t>(headSize - sent_)};
    }
    uint64_t bodyOffset = sent_ > headSize ? sent_ - headSize : 0;
    if (h_.body_) {
      iov[count++] = {setBody_.data() + bodyOffset, setBody_.size() - bodyOffset};
    } else if (!bodyFile_) {
      if (bodyOffset < bodyMemory_.size()) {
        iov[count++] = {bodyMemory_.data() + bodyOffset, bodyMemory_.size() - bodyOffset};
      }
    } else if (bodyOffset < bodySize_) {
      // The file body is read 64 KiB at a time into one buffer.
      constexpr size_t kChunk = 64 * 1024;
      uint64_t chunkStart = bodyOffset - bodyOffset % kChunk;
      // (Streaming, the file grows: a chunk read short is read again.)
      if (fileChunkOffset_ != chunkStart ||
          fileChunk_.size() < std::min<uint64_t>(kChunk, bodySize_ - chunkStart)) {
        fileChunk_.resize(static_cast<size_t>(std::min<uint64_t>(kChunk, bodySize_ - chunkStart)));
        ssize_t n = ::pread(bodyFile_.fd(), fileChunk_.data(), fileChunk_.size(),
                            static_cast<off_t>(chunkStart));
        if (n != static_cast<ssize_t>(fileChunk_.size())) {
          log("pread() of the request body failed " + errnoText(errno));
          finishWith(500);
          return;
        }
        fileChunkOffset_ = chunkStart;
      }
      size_t within = static_cast<size_t>(bodyOffset - chunkStart);
      iov[count++] = {fileChunk_.data() + within, fileChunk_.size() - within};
    }
    transport::IoResult r = conn_->writev(iov, count, false);
    if (r.status == transport::IoStatus::kDone) {
      sent_ += r.bytes;
      continue;
    }
    if (r.status == transport::IoStatus::kInterrupted) continue;
    if (r.status == transport::IoStatus::kError) {
      fail(Failure::kError, 502,
           ioFailureText(*conn_, "writev()", "SSL_write()", r.error) +
               " while sending request to upstream");
      return;
    }
    armTimer(h_.settings_.sendTimeoutSeconds, Failure::kTimeout, 504,
             "upstream timed out (110: Connection timed out) while sending request to upstream");
    return;
  }
  if (streaming_ && !bodyDone_) {
    loop_.cancelTimer(timer_);  // all the body so far is out: the next bytes resume sending
    return;
  }
  state_ = State::kHead;
  armTimer(h_.settings_.readTimeoutSeconds, Failure::kTimeout, 504,
           "upstream timed out (110: Connection timed out) while reading response header from "
           "upstream");
  // The answer can hardly be there yet: read when epoll says so (an edge that came while the
  // request was going out, or while connecting, was noted). TLS may hold records already read.
  if (readable_ || conn_->tlsSession() != nullptr) readMore();
}

void ProxyRequest::readMore() {
  char buffer[16384];
  while (conn_ && ex_ && (state_ == State::kHead || state_ == State::kResponse)) {
    // Backpressure: with the client slow, read ahead only up to proxy_buffers (none with
    // proxy_buffering off), then wait for it.
    if (state_ == State::kResponse && spool_ && !spool_->canAccept()) {
      loop_.cancelTimer(timer_);  // memory and the temporary file are full: the client drains
      spoolPaused_ = true;
      return;
    }
    if (state_ == State::kResponse && !buffering_ && !pending_.empty()) {
      loop_.cancelTimer(timer_);  // unbuffered: what the client has not taken waits first
      return;
    }
    size_t room = sizeof buffer;
    const bool paced = state_ == State::kResponse && buffering_ && h_.settings_.limitRate != 0;
    if (paced) {
      // nginx's event pipe: limit_rate × (seconds since the start + 1) − bytes read.
      if (rateTimer_.second != 0) return;
      const uint64_t rate = h_.settings_.limitRate;
      const uint64_t elapsed = loop_.nowMs() - rateStartMs_;
      const uint64_t allowed = rate * (elapsed + 1000) / 1000;
      if (allowed <= rateRead_) {
        paceRead((rateRead_ - allowed) * 1000 / rate + 1);
        return;
      }
      room = static_cast<size_t>(std::min<uint64_t>(room, allowed - rateRead_));
    }
    if (state_ == State::kHead) {
      // The head never grows past proxy_buffer_size (+1 to see it is too big).
      uint64_t limit = h_.settings_.bufferSize + 1;
      room = in_.size() >= limit ? 1 : std::min<size_t>(room, limit - in_.size());
    }
    transport::IoResult r = conn_->read(buffer, room);
    if (r.status == transport::IoStatus::kDone) {
      received_ = true;
      bytesRead_ += r.bytes;
      in_.append(buffer, r.bytes);
      process();
      if (paced && conn_ && ex_ && state_ == State::kResponse) {
        rateRead_ += r.bytes;
        uint64_t ms = r.bytes * 1000 / h_.settings_.limitRate;
        if (ms > 0) {
          paceRead(ms);
          return;
        }
      }
      continue;
    }
    if (r.status == transport::IoStatus::kInterrupted) continue;
    if (r.status == transport::IoStatus::kWouldBlock) readable_ = false;
    if (r.status == transport::IoStatus::kEof) {
      ResponseParser::Status st = ResponseParser::Status::kError;
      if (state_ == State::kResponse) st = parser_.onClose();
      if (st == ResponseParser::Status::kDone) {
        responseEnded();
      } else if (state_ == State::kHead) {
        fail(Failure::kError, 502,
             "upstream prematurely closed connection while reading response header from "
             "upstream");
      } else {
        fail(Failure::kError, 502, "upstream prematurely closed connection while reading upstream");
      }
      return;
    }
    if (r.status == transport::IoStatus::kError) {
      fail(Failure::kError, 502,
           ioFailureText(*conn_, "recv()", "SSL_read()", r.error) +
               (state_ == State::kHead ? " while reading response header from upstream"
                                       : " while reading upstream"));
      return;
    }
    armTimer(h_.settings_.readTimeoutSeconds, Failure::kTimeout, 504,
             state_ == State::kHead
                 ? "upstream timed out (110: Connection timed out) while reading response "
                   "header from upstream"
                 : "upstream timed out (110: Connection timed out) while reading upstream");
    return;
  }
}

// proxy_limit_rate: reading waits `ms` (the read timeout does not run meanwhile, as nginx's
// delayed read), then goes on.
void ProxyRequest::paceRead(uint64_t ms) {
  loop_.cancelTimer(timer_);
  timer_ = {0, 0};
  rateTimer_ = loop_.addTimer(ms, [this] {
    rateTimer_ = {0, 0};
    if (!conn_ || !ex_ || state_ != State::kResponse) return;
    armTimer(h_.settings_.readTimeoutSeconds, Failure::kTimeout, 504,
             "upstream timed out (110: Connection timed out) while reading upstream");
    readMore();
  });
}

void ProxyRequest::process() {
  if (state_ == State::kHead) {
    size_t consumed = 0;
    ResponseParser::Status st = parser_.parseHead(in_, consumed);
    if (st == ResponseParser::Status::kError) {
      fail(Failure::kInvalidHeader, 502,
           parser_.error() + " while reading response header from upstream");
      return;
    }
    in_.erase(0, consumed);
    if (st == ResponseParser::Status::kNeedMore) return;
    const UpstreamHead& uh = parser_.head();
    if (uh.status == 101 && !mayUpgrade()) {
      fail(Failure::kInvalidHeader, 502,
           "upstream sent an unrequested 101 while reading response header from upstream");
      return;
    }
    // proxy_next_upstream http_5xx/403/404/429: a response it names is not passed on while
    // another peer may answer.
    unsigned condition = 0;
    switch (uh.status) {
      case 500: condition = ProxySettings::kNextHttp500; break;
      case 502: condition = ProxySettings::kNextHttp502; break;
      case 503: condition = ProxySettings::kNextHttp503; break;
      case 504: condition = ProxySettings::kNextHttp504; break;
      case 403: condition = ProxySettings::kNextHttp403; break;
      case 404: condition = ProxySettings::kNextHttp404; break;
      case 429: condition = ProxySettings::kNextHttp429; break;
      default: break;
    }
    if (condition && mayRetry(condition)) {
      // ngx_http_upstream_next: a 404 is NGX_PEER_NEXT, not a failure of the server.
      recordAttempt(std::to_string(uh.status), condition != ProxySettings::kNextHttp404);
      releasePeer(condition != ProxySettings::kNextHttp404);
      parser_ = ResponseParser(h_.settings_.bufferSize, ex_->request().isHead());
      connectNext();
      return;
    }
    // proxy_intercept_errors: a status >= 300 the location has an error_page for is answered
    // by that page (ngx_http_upstream_intercept_errors).
    if (uh.status >= 300 && std::find(h_.interceptStatuses_.begin(), h_.interceptStatuses_.end(),
                                      uh.status) != h_.interceptStatuses_.end()) {
      intercept(uh);
      return;
    }
    http::UpstreamVariables* vars = ex_->upstreamVariables();
    if (vars) {
      appendEntry(vars->headerTime, seconds3(std::chrono::steady_clock::now() - tryStart_));
      headerTimeRecorded_ = true;
    }
    if (!h_.settings_.ignores(ProxySettings::kIgnoreXAccelLimitRate)) {
      // nginx's ngx_http_upstream_process_limit_rate: a decimal number of bytes per second sets
      // the response's rate (kept across an X-Accel-Redirect); anything else is ignored.
      for (const http::Header& header : uh.headers) {
        if (!http::iequals(header.name, "X-Accel-Limit-Rate")) continue;
        const std::string& v = header.value;
        bool digits = !v.empty() && v.size() <= 18 &&
                      std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (digits) ex_->setLimitRate(std::stoull(v));
      }
    }
    if (const std::string* xar = accelRedirectHeader(uh.headers);
        xar && !accelRedirectIgnored(h_.settings_)) {
      if (vars) vars->headers = uh.headers;  // $upstream_http_* in the redirected request
      accelRedirect(*xar);
      return;
    }
    http::ResponseHead head;
    head.status = uh.status;
    head.reason = uh.reason;
    head.headers.reserve(uh.headers.size());
    for (const http::Header& header : uh.headers) {
      bool drop = false;
      for (std::string_view name : kHopByHop) drop = drop || http::iequals(header.name, name);
      // A 101's Upgrade names the protocol switched to (nginx copies it as any header).
      if (uh.status == 101 && http::iequals(header.name, "Upgrade")) drop = false;
      for (std::string_view name : kDefaultHidden) {
        if (!http::iequals(header.name, name)) continue;
        drop = true;
        for (const std::string& pass : h_.settings_.passHeaders) {
          if (http::iequals(pass, header.name)) drop = false;
        }
      }
      for (const std::string& hide : h_.settings_.hideHeaders) {
        drop = drop || http::iequals(hide, header.name);
      }
      if (!drop) head.headers.push_back(header);
    }
    if (h_.rewrites_) h_.rewrites_->apply(head.headers, *ex_);
    bool hasLength = false;
    for (const http::Header& header : uh.headers) {
      hasLength = hasLength || http::iequals(header.name, "Content-Length");
    }
    if (uh.framing == BodyFraming::kLength ||
        (uh.framing == BodyFraming::kNone && hasLength && !http::statusHasNoBody(uh.status))) {
      head.contentLength = uh.contentLength;
    }
    buffering_ = h_.settings_.ignores(ProxySettings::kIgnoreXAccelBuffering)
                     ? h_.settings_.buffering
                     : responseBuffering(h_.settings_.buffering, uh.headers);
    state_ = State::kResponse;
    rateStartMs_ = loop_.nowMs();
    headSent_ = true;
    recordHead(uh.status);
    const bool upgrade = uh.status == 101;
    // $upstream_http_*: the parsed fields move there, read no more here (uh.headers is empty).
    if (vars) vars->headers = parser_.takeHeaders();
    ex_->sendHead(std::move(head));
    if (!ex_) return;
    if (upgrade) {
      startTunnel();
      return;
    }
  }
  if (state_ != State::kResponse) return;
  std::string out;
  size_t consumed = 0;
  ResponseParser::Status st = parser_.parseBody(in_, consumed, out);
  in_.erase(0, consumed);
  bodyReceived_ += out.size();
  if (!out.empty()) deliver(std::move(out));
  if (st == ResponseParser::Status::kError) {
    fail(Failure::kError, 502, parser_.error() + " while reading upstream");
    return;
  }
  if (st == ResponseParser::Status::kDone) responseEnded();
}

void ProxyRequest::deliver(std::string bytes) {
  if (!ex_) return;
  if (buffering_) {
    // Nothing held and the client takes it: straight out. The spool (memory, then a temporary
    // file) is made when bytes must wait for the client; most responses never need it.
    if ((!spool_ || spool_->empty()) && ex_->writable()) {
      ex_->sendBody(BodyChunk(std::move(bytes)));
      return;
    }
    if (!spool_) spool_ = std::make_unique<ResponseSpool>(spoolLimits(h_.settings_));
    spool_->push(std::move(bytes));
    pumpSpool();
    return;
  }
  if (pending_.empty() && ex_->writable()) {
    ex_->sendBody(BodyChunk(std::move(bytes)));
    return;
  }
  pending_ += bytes;
  if (!waitingWritable_) {
    waitingWritable_ = true;
    ex_->onWritable([this] {
      waitingWritable_ = false;
      flushPending();
    });
  }
}

void ProxyRequest::flushPending() {
  if (!ex_) return;
  if (spool_) {
    pumpSpool();
    if (!ex_) return;
    if (upstreamDone_ && spool_->empty() && !waitingWritable_) {
      state_ = State::kDone;
      http::Exchange* ex = std::exchange(ex_, nullptr);
      ex->finish();
      destroy();
      return;
    }
    // Reading resumes once the client made room (only then: the read timeout keeps running
    // while the upstream is silent, however the client reads).
    if (spoolPaused_ && state_ == State::kResponse && !upstreamDone_ && spool_->canAccept()) {
      spoolPaused_ = false;
      readMore();
    }
    return;
  }
  if (!pending_.empty()) ex_->sendBody(BodyChunk(std::move(pending_)));
  pending_.clear();
  if (upstreamDone_) {
    state_ = State::kDone;
    http::Exchange* ex = std::exchange(ex_, nullptr);
    ex->finish();
    destroy();
    return;
  }
  // Reading resumes (the pause left the socket's readiness unreported: edge-triggered).
  if (state_ == State::kResponse) readMore();
}

void ProxyRequest::waitWritable() {
  if (waitingWritable_ || !ex_) return;
  waitingWritable_ = true;
  ex_->onWritable([this] {
    waitingWritable_ = false;
    flushPending();
  });
}

// Hands the client what the spool holds, as fast as the connection takes it: memory while it
// is writable, the file as one range at a time (sendfile, or read by the connection where the
// transport cannot), or read here in 64 KiB pieces with `sendfile off`.
void ProxyRequest::pumpSpool() {
  while (ex_ && !spool_->empty()) {
    ResponseSpool::Next next = spool_->peek();
    if (!ex_->writable() || next == ResponseSpool::Next::kFileBusy) {
      waitWritable();
      break;
    }
    if (next == ResponseSpool::Next::kFile && !h_.sendfile_) {
      constexpr uint64_t kPiece = 64 * 1024;
      BodyChunk chunk = spool_->take(kPiece);
      const FileRange& range = std::get<FileRange>(chunk.data);
      std::string piece(static_cast<size_t>(range.length), '\0');
      ssize_t n;
      do {
        n = ::pread(range.file->get(), piece.data(), piece.size(), static_cast<off_t>(range.offset));
      } while (n < 0 && errno == EINTR);
      if (n != static_cast<ssize_t>(piece.size())) {
        log("pread() of a temporary file failed " + errnoText(n < 0 ? errno : EIO) +
            " while sending to client");
        http::Exchange* ex = std::exchange(ex_, nullptr);
        ex->abort();  // the head is out: a truncated response, never a wrong one
        destroy();
        return;
      }
      ex_->sendBody(BodyChunk(std::move(piece)));
      continue;
    }
    ex_->sendBody(spool_->take());
  }
  std::string notice = spool_->takeNotice();
  if (!notice.empty()) logWarning(notice + " while reading upstream" + spoolLogContext());
  std::string error = spool_->takeError();
  if (!error.empty()) logCritical(error + " while reading upstream" + spoolLogContext());
}

// What log() appends, for the spool's warning and critical lines (nginx's levels for them).
std::string ProxyRequest::spoolLogContext() const {
  std::string line;
  if (!ex_) return line;
  line += ex_->errorContext();
  if (peer_) line += ", upstream: \"" + upstreamUrl() + "\"";
  if (const std::string* host = ex_->request().header("Host")) line += ", host: \"" + *host + "\"";
  return line;
}

void ProxyRequest::responseEnded() {
  loop_.cancelTimer(timer_);
  recordAttempt(std::to_string(parser_.head().status));
  releasePeer(false);
  // A connection is cached only after a response read to its end by its framing, with nothing
  // after it, that both sides meant to keep.
  const UpstreamHead& head = parser_.head();
  if (pool_ && conn_ && head.keepAlive && head.framing != BodyFraming::kClose &&
      in_.empty() && !sentClose_) {
    // The registration goes with it: the pool takes it over as it is (no epoll_ctl).
    pool_->put(peer_, std::move(conn_), connRequests_ + 1, connBornMs_, std::move(watch_));
  }
  closeUpstream();
  upstreamDone_ = true;
  if (!ex_) {
    destroy();
    return;
  }
  if (!pending_.empty() || waitingWritable_) return;  // flushPending finishes
  if (spool_ && !spool_->empty()) return;  // the client drains it: flushPending finishes
  state_ = State::kDone;
  http::Exchange* ex = std::exchange(ex_, nullptr);
  ex->finish();
  destroy();
}

// nginx's u->upgrade: the upstream's 101 is passed on only when the client asked for an
// Upgrade (and the connection can become a raw stream: HTTP/1).
bool ProxyRequest::mayUpgrade() const {
  return ex_ && ex_->request().header("Upgrade") != nullptr && ex_->canUpgrade();
}

// The 101 head is out: the client's connection and the upstream's become one byte tunnel
// (upstream/proxy_tunnel.h), which owns them from now on.
void ProxyRequest::startTunnel() {
  loop_.cancelTimer(timer_);
  recordAttempt("101");
  releasePeer(false);
  UpstreamWatch::remove(loop_, conn_->fd(), std::move(watch_));
  std::string context = ex_->errorContext() + ", upstream: \"" + upstreamUrl() + "\"";
  if (const std::string* host = ex_->request().header("Host")) {
    context += ", host: \"" + *host + "\"";
  }
  TunnelSettings tunnel;
  tunnel.readTimeoutSeconds = h_.settings_.readTimeoutSeconds;
  tunnel.sendTimeoutSeconds = h_.settings_.sendTimeoutSeconds;
  tunnel.bufferSize = static_cast<size_t>(h_.settings_.bufferSize);
  std::unique_ptr<transport::Transport> upstream = std::move(conn_);
  std::string pending = std::move(in_);
  in_.clear();
  state_ = State::kDone;
  http::Exchange* ex = std::exchange(ex_, nullptr);
  if (!startProxyTunnel(loop_, *ex, upstream, std::move(pending), tunnel, std::move(context))) {
    ex->abort();  // the 101 is out but the connection cannot be handed over: cut it
  }
  destroy();
}

// X-Accel-Redirect: the upstream's body is not wanted (its connection is closed), and the
// request goes on at the URI it names, as nginx's ngx_http_upstream_process_headers.
void ProxyRequest::accelRedirect(const std::string& value) {
  loop_.cancelTimer(timer_);
  recordAttempt(std::to_string(parser_.head().status));
  releasePeer(false);
  closeUpstream();
  AccelTarget target = parseAccelRedirect(value);
  if (target.kind == AccelTarget::Kind::kUnsafe) {
    log("unsafe URI \"" + value + "\" was detected");
    finishWith(404);
    return;
  }
  std::vector<http::Header> keep = accelKeptHeaders(parser_.head().headers);
  state_ = State::kDone;
  http::Exchange* ex = std::exchange(ex_, nullptr);
  ex->onAbort(nullptr);  // the new content answers; this request is gone
  if (!ex->accelRedirect(target.uri, target.args, std::move(keep))) {
    ex->respondError(502);  // no pipeline to redirect in (not reached from a site)
  }
  destroy();
}

bool ProxyRequest::mayRetry(unsigned condition) const {
  const ProxySettings& s = h_.settings_;
  if (!(s.nextUpstream & condition) || headSent_ || !ex_) return false;
  size_t peers = balancer_ ? balancer_->peerCount() : 0;
  size_t limit = s.nextUpstreamTries > 0 ? static_cast<size_t>(s.nextUpstreamTries) : peers;
  if (static_cast<size_t>(tries_) >= std::min(limit, peers)) return false;
  if (s.nextUpstreamTimeoutSeconds > 0 &&
      std::chrono::steady_clock::now() - firstTry_ >=
          std::chrono::milliseconds(static_cast<int64_t>(s.nextUpstreamTimeoutSeconds * 1000))) {
    return false;
  }
  // A request that reached the upstream is not sent again unless it is idempotent
  // (nginx 1.9.13+), or non_idempotent says so.
  std::string_view method = ex_->request().method;
  bool idempotent = method != "POST" && method != "LOCK" && method != "PATCH";
  if (sent_ > 0 && !idempotent && !(s.nextUpstream & ProxySettings::kNextNonIdempotent)) {
    return false;
  }
  // proxy_request_buffering off: a body that began to go is not sent again.
  if (streaming_ && sent_ > head_.size()) return false;
  return true;
}

void ProxyRequest::fail(Failure kind, int status, const std::string& message) {
  loop_.cancelTimer(timer_);
  if (!ex_) {
    destroy();
    return;
  }
  std::string_view method = ex_->request().method;
  bool idempotent = method != "POST" && method != "LOCK" && method != "PATCH";
  if (reused_ && !received_ && kind == Failure::kError && !headSent_ &&
      !(streaming_ && sent_ > head_.size()) &&
      (idempotent || sent_ == 0 ||
       (h_.settings_.nextUpstream & ProxySettings::kNextNonIdempotent))) {
    // A cached connection the upstream had closed meanwhile: the request goes again on a
    // fresh connection to the same peer, as nginx does, without counting a try.
    connectTo(true);
    return;
  }
  log(message);
  recordAttempt(std::to_string(status), true);
  releasePeer(true);
  closeUpstream();
  unsigned condition = kind == Failure::kTimeout        ? ProxySettings::kNextTimeout
                       : kind == Failure::kInvalidHeader ? ProxySettings::kNextInvalidHeader
                                                         : ProxySettings::kNextError;
  lastFailStatus_ = status;
  if (!headSent_ && mayRetry(condition)) {
    parser_ = ResponseParser(h_.settings_.bufferSize, ex_->request().isHead());
    connectNext();
    return;
  }
  if (headSent_) {
    // The head is out: the client gets a truncated response, never a wrong one.
    http::Exchange* ex = std::exchange(ex_, nullptr);
    ex->abort();
    destroy();
    return;
  }
  finishWith(status);
}

// proxy_pass with variables: the URL expanded and parsed, then an address, an upstream that
// names the host, or the host looked up with the location's resolver; nginx's errors (500 for
// a bad URL, 502 for a name without a resolver).
ProxyRequest::Choice ProxyRequest::chooseTarget() {
  std::string url = ex_->expand(*h_.passUrl_);
  std::string error;
  std::optional<PassTarget> parsed =
      h_.uwsgi_ ? parseUwsgiTarget(url, error) : parsePassTarget(url, error);
  if (!parsed) {
    log(error);
    finishWith(500);
    return Choice::kFailed;
  }
  target_ = std::make_unique<PassTarget>(std::move(*parsed));
  pass_ = &target_->pass;
  hashKeyTemplate_ = nullptr;
  pool_ = nullptr;
  if (target_->address) {
    ownSpec_ = std::make_unique<config::UpstreamSpec>(singleServerUpstream(*target_));
    ownBalancer_ = Balancer::create(*ownSpec_);
    balancer_ = ownBalancer_.get();
    return Choice::kReady;
  }
  int index = h_.upstreams_ ? findUpstream(*h_.upstreams_, *target_) : -1;
  if (index >= 0) {
    const ProxyHandler::UpstreamChoice& choice = h_.choices_[static_cast<size_t>(index)];
    balancer_ = choice.balancer;
    pool_ = choice.pool;
    if (choice.hashKey) hashKeyTemplate_ = &*choice.hashKey;
    return Choice::kReady;
  }
  if (!h_.resolver_) {
    log("no resolver defined to resolve " + target_->host);
    finishWith(502);
    return Choice::kFailed;
  }
  if (h_.uwsgi_ && target_->noPort) {
    // uwsgi has no default port: a name without one is an upstream's or nothing.
    log("no port in upstream \"" + target_->host + "\"");
    finishWith(500);
    return Choice::kFailed;
  }
  dns::Result now;
  lookup_ = h_.resolver_->resolve(
      target_->host, h_.resolverTimeoutMs_,
      [this](const dns::Result& result) { resolved(result); }, now);
  if (lookup_) return Choice::kResolving;
  return useAddresses(now) ? Choice::kReady : Choice::kFailed;
}

// The resolver's answer for a request that waited for it (nginx's
// ngx_http_upstream_resolve_handler).
void ProxyRequest::resolved(const dns::Result& result) {
  lookup_.reset();
  if (ex_ && useAddresses(result)) begin();
}

// A resolved name is an upstream of its own, one peer per address with the URL's port, as
// nginx's ngx_http_upstream_create_round_robin_peer: tried in turn by proxy_next_upstream.
// A name not resolved is nginx's 502 (false).
bool ProxyRequest::useAddresses(const dns::Result& result) {
  if (result.code != 0) {
    log(target_->host + " could not be resolved (" + std::to_string(result.code) + ": " +
        std::string(dns::errorText(result.code)) + ")");
    finishWith(502);
    return false;
  }
  const std::vector<dns::Address>& addresses = result.addresses;
  ownSpec_ = std::make_unique<config::UpstreamSpec>(singleServerUpstream(*target_));
  config::UpstreamServerSpec& server = ownSpec_->servers.front();
  server.addresses.clear();
  for (const dns::Address& a : addresses) {
    config::UpstreamAddress address;
    if (a.v6) {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&address.addr);
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = htons(target_->port);
      std::memcpy(&sin6->sin6_addr, a.bytes.data(), 16);
      address.length = sizeof(sockaddr_in6);
    } else {
      auto* sin = reinterpret_cast<sockaddr_in*>(&address.addr);
      sin->sin_family = AF_INET;
      sin->sin_port = htons(target_->port);
      std::memcpy(&sin->sin_addr, a.bytes.data(), 4);
      address.length = sizeof(sockaddr_in);
    }
    address.text = config::upstreamAddressText(address.addr, address.length);
    server.addresses.push_back(std::move(address));
  }
  ownBalancer_ = Balancer::create(*ownSpec_);
  balancer_ = ownBalancer_.get();
  return true;
}

void ProxyRequest::intercept(const UpstreamHead& uh) {
  if (http::UpstreamVariables* vars = ex_->upstreamVariables()) {
    appendEntry(vars->headerTime, seconds3(std::chrono::steady_clock::now() - tryStart_));
    headerTimeRecorded_ = true;
    vars->headers = uh.headers;
  }
  loop_.cancelTimer(timer_);
  recordAttempt(std::to_string(uh.status));
  releasePeer(false);
  closeUpstream();  // the upstream's body is not read: the connection is not reused
  state_ = State::kDone;
  http::Exchange* ex = std::exchange(ex_, nullptr);
  http::ResponseHead head;
  head.status = uh.status;
  head.special = true;
  head.gateway = true;  // the error_page takes it over, as nginx finalizes with the status
  head.add("Content-Type", "text/html");
  if (uh.status == 401) {
    for (const http::Header& header : uh.headers) {
      if (http::iequals(header.name, "WWW-Authenticate")) {
        head.add(header.name, header.value);
        break;
      }
    }
  }
  std::string page = ex->errorPage(uh.status);
  ex->respond(std::move(head), std::move(page));
  destroy();
}

void ProxyRequest::finishWith(int status) {
  loop_.cancelTimer(timer_);
  closeUpstream();
  if (!ex_) {
    destroy();
    return;
  }
  state_ = State::kDone;
  http::Exchange* ex = std::exchange(ex_, nullptr);
  http::ResponseHead head;
  head.status = status;
  head.special = true;
  head.gateway = true;
  head.add("Content-Type", "text/html");
  std::string page = ex->errorPage(status);
  ex->respond(std::move(head), std::move(page));
  destroy();
}

void ProxyRequest::closeUpstream() {
  if (!conn_) return;
  UpstreamWatch::remove(loop_, conn_->fd(), std::move(watch_));
  conn_.reset();
}

void ProxyRequest::releasePeer(bool failed) {
  if (current_ && balancer_) {
    Clock::time_point now = Clock::now();
    balancer_->release(current_, failed, now);
    // The status page and the metrics show which workers skip the server now.
    Clock::time_point until = balancer_->unavailableUntil(current_, now);
    recordUpstreamHealth(current_->metricsEntry,
                         until == Clock::time_point{}
                             ? 0
                             : static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   until.time_since_epoch()).count()));
  }
  current_ = nullptr;
}

void ProxyRequest::destroy() {
  lookup_.reset();
  releasePeer(false);
  loop_.cancelTimer(timer_);
  loop_.cancelTimer(rateTimer_);
  rateTimer_ = {0, 0};
  closeUpstream();
  if (self_) loop_.deferDelete(std::move(self_));
}

// The TCP connection is up: the request goes at once, or (proxy_pass https://) after the TLS
// handshake, which runs in what is left of proxy_connect_timeout, as nginx's
// ngx_http_upstream_ssl_init_connection keeps the connect timer.
void ProxyRequest::connected() {
  if (!tls_) {
    onConnected();
    return;
  }
  sslName_ = upstreamSslName(*h_.tls_, ex_, target_ ? &target_->pass.upstream : nullptr);
  std::string error;
  if (!tls_->begin(upstreamSni(*h_.tls_, sslName_), error)) {
    fail(Failure::kError, 502, error + " while SSL handshaking to upstream");
    return;
  }
  if (!useRequestCertificate(*h_.tls_, tls_->ssl(), ex_, error)) {
    log(error + " while SSL handshaking to upstream");
    finishWith(500);
    return;
  }
  state_ = State::kHandshaking;
  double left = h_.settings_.connectTimeoutSeconds -
                std::chrono::duration<double>(std::chrono::steady_clock::now() - tryStart_).count();
  armTimer(left > 0.001 ? left : 0.001, Failure::kTimeout, 504,
           "upstream timed out (110: Connection timed out) while SSL handshaking to upstream");
  handshake();
}

// One step of the handshake (ngx_http_upstream_ssl_handshake): a failure, or a certificate
// proxy_ssl_verify refuses, is an `error` for proxy_next_upstream.
void ProxyRequest::handshake() {
  transport::IoResult r = tls_->handshake();
  if (r.status == transport::IoStatus::kInterrupted) r = tls_->handshake();
  if (r.status == transport::IoStatus::kError) {
    fail(Failure::kError, 502, tls_->handshakeError() + " while SSL handshaking to upstream");
    return;
  }
  if (r.status != transport::IoStatus::kDone) return;  // the next readiness goes on
  std::string refused = verifyUpstream(*h_.tls_, tls_->ssl(), sslName_);
  if (!refused.empty()) {
    fail(Failure::kError, 502, refused + " while SSL handshaking to upstream");
    return;
  }
  tls_ = nullptr;
  onConnected();
}

}  // namespace

bool ProxyHandler::compile(const std::vector<std::string>* captures,
                           const http::VariableRegistry* users, std::string& error) {
  static const std::vector<std::string> kNone;
  const std::vector<std::string>& names = captures ? *captures : kNone;
  if (settings_.uwsgi) {
    uwsgi_.emplace();
    if (!uwsgi_->compile(settings_.uwsgiParams, names, users, error)) return false;
  }
  auto one = [&](const std::string& text) -> std::optional<http::Template> {
    std::string message;
    auto t = http::Template::compile(text, message, names, users);
    if (!t) error = message;
    return t;
  };
  // The location's proxy_set_header lines, then nginx's defaults they do not name
  // (ngx_http_proxy_headers).
  std::vector<std::pair<std::string, std::string>> rules = settings_.setHeaders;
  static const std::pair<const char*, const char*> kDefaults[] = {
      {"Host", "$proxy_host"}, {"Connection", "close"}, {"Content-Length", ""},
      {"Transfer-Encoding", ""}, {"TE", ""}, {"Keep-Alive", ""}, {"Expect", ""},
      {"Upgrade", ""},
  };
  for (const auto& [name, value] : kDefaults) {
    bool set = false;
    for (const auto& rule : settings_.setHeaders) set = set || http::iequals(rule.first, name);
    if (!set) rules.emplace_back(name, value);
  }
  for (const auto& [name, value] : rules) {
    setNames_.push_back(name);
    HeaderRule rule;
    rule.name = name;
    if (http::iequals(name, "Content-Length")) {
      rule.contentLength = true;  // the body's real length, whatever the client said
    } else if (http::iequals(name, "Transfer-Encoding")) {
      continue;  // the body is always sent with a Content-Length
    } else {
      auto t = one(value);
      if (!t) return false;
      rule.value = std::move(*t);
    }
    headers_.push_back(std::move(rule));
  }
  if (settings_.method) {
    method_ = one(*settings_.method);
    if (!method_) return false;
  }
  if (settings_.setBody) {
    body_ = one(*settings_.setBody);
    if (!body_) return false;
  }
  if (!spec_ && pass_.implicit) spec_ = &*pass_.implicit;
  if (spec_ && spec_->method == config::UpstreamSpec::Method::kHash) {
    hashKey_ = one(spec_->hashKey);
    if (!hashKey_) return false;
  }
  return true;
}

void ProxyHandler::handle(http::Exchange& exchange) {
  auto request = std::make_unique<ProxyRequest>(*this, exchange);
  ProxyRequest* raw = request.get();
  raw->start(std::move(request));
}

bool ProxyContentModule::createChoices(ProxyHandler& handler, std::string& error) {
  static const std::vector<std::string> kNone;
  const std::vector<std::string>& names = captureNames_ ? *captureNames_ : kNone;
  handler.passUrl_ = http::Template::compile(handler.pass_.url, error, names, users_);
  if (!handler.passUrl_) return false;
  handler.upstreams_ = upstreams_;
  if (!upstreams_) return true;
  for (const config::UpstreamSpec& spec : *upstreams_) {
    ProxyHandler::UpstreamChoice choice;
    std::unique_ptr<Balancer>& balancer = balancers_[&spec];
    if (!balancer) balancer = Balancer::create(spec);
    choice.balancer = balancer.get();
    if (spec.keepalive > 0) {
      std::unique_ptr<KeepalivePool>& pool = pools_[&spec];
      if (!pool) pool = std::make_unique<KeepalivePool>(*loop_, spec);
      choice.pool = pool.get();
    }
    if (spec.method == config::UpstreamSpec::Method::kHash) {
      choice.hashKey = http::Template::compile(spec.hashKey, error, names, users_);
      if (!choice.hashKey) return false;
    }
    handler.choices_.push_back(std::move(choice));
  }
  return true;
}

ProxyContentModule::ProxyContentModule(event::EventLoop* loop) : loop_(loop) {}

ProxyContentModule::~ProxyContentModule() = default;

dns::Resolver* ProxyContentModule::resolver(int index) {
  if (index < 0 || !resolverSpecs_ || static_cast<size_t>(index) >= resolverSpecs_->size()) {
    return nullptr;
  }
  const config::ResolverSpec& spec = (*resolverSpecs_)[static_cast<size_t>(index)];
  if (spec.servers.empty() || !loop_) return nullptr;
  std::unique_ptr<dns::Resolver>& made = resolvers_[index];
  if (!made) {
    dns::ResolverOptions options;
    for (const config::UpstreamAddress& server : spec.servers) {
      options.servers.push_back({server.addr, server.length, server.text});
    }
    options.validSeconds = spec.validSeconds;
    options.ipv4 = spec.ipv4;
    options.ipv6 = spec.ipv6;
    made = std::make_unique<dns::Resolver>(*loop_, std::move(options));
  }
  return made.get();
}

bool ProxyContentModule::claims(const config::LocationSettings& settings) const {
  return settings.proxy.pass.has_value() || settings.uwsgi.pass.has_value();
}

std::unique_ptr<pipeline::ContentHandler> ProxyContentModule::create(
    const config::LocationSettings& settings, std::string& error) {
  const config::ProxySettings& chosen = settings.uwsgi.pass ? settings.uwsgi : settings.proxy;
  auto handler = std::make_unique<ProxyHandler>(loop_, settings);
  const config::ProxyPass& pass = handler->pass_;
  if (pass.variables && !createChoices(*handler, error)) return nullptr;
  if (pass.variables) {
    handler->resolver_ = resolver(settings.resolver);
    handler->resolverTimeoutMs_ = static_cast<uint64_t>(settings.resolverTimeoutSeconds * 1000);
  }
  if (pass.upstreamIndex >= 0 && upstreams_ &&
      static_cast<size_t>(pass.upstreamIndex) < upstreams_->size()) {
    handler->spec_ = &(*upstreams_)[static_cast<size_t>(pass.upstreamIndex)];
  }
  if (!handler->compile(captureNames_, users_, error)) return nullptr;
  static const std::vector<std::string> kNoCaptures;
  if (pass.ssl || pass.variables) {
    // With variables the scheme is known per request: the context is there for an https://
    // one (nginx makes it for any proxy_pass with variables).
    handler->tls_ =
        makeUpstreamTls(chosen, captureNames_ ? *captureNames_ : kNoCaptures, users_, error);
    if (!handler->tls_) return nullptr;
  }
  handler->rewrites_ = ProxyHeaderRewrites::create(
      chosen, captureNames_ ? *captureNames_ : kNoCaptures, users_, error);
  if (!handler->rewrites_ && !error.empty()) return nullptr;
  if (!chosen.bind.empty()) {
    handler->bind_ = http::Template::compile(
        chosen.bind, error, captureNames_ ? *captureNames_ : kNoCaptures, users_);
    if (!handler->bind_) return nullptr;
  }
  if (chosen.interceptErrors) {
    for (const config::ErrorPage& page : settings.errorPages) {
      for (int code : page.codes) handler->interceptStatuses_.push_back(code);
    }
  }
  const config::UpstreamSpec* spec = handler->spec_;
  if (spec) {
    std::unique_ptr<Balancer>& balancer = balancers_[spec];
    if (!balancer) balancer = Balancer::create(*spec);
    handler->balancer_ = balancer.get();
  }
  if (spec && spec->keepalive > 0) {
    std::unique_ptr<KeepalivePool>& pool = pools_[spec];
    if (!pool) pool = std::make_unique<KeepalivePool>(*loop_, *spec);
    handler->pool_ = pool.get();
  }
  return handler;
}

}  // namespace portico::upstream
