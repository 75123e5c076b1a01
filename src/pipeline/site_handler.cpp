#include "pipeline/site_handler.h"

#include <sys/stat.h>
#include <openssl/ssl.h>
#include <sys/time.h>

#include <cctype>
#include <cstring>
#include <ctime>
#include <utility>

#include "config/conf_values.h"
#include "config/version.h"
#include "core/block_cache.h"
#include "http/autoindex.h"
#include "http/http_date.h"
#include "http/parser.h"
#include "http/user_agent.h"
#include "transport/tls_variables.h"

namespace portico::pipeline {

namespace {

// A location's label in the metrics: its match as written ("= /metrics", "~* \\.png$", "/").
std::string metricLocationName(const config::Location& location) {
  using Match = config::Location::Match;
  switch (location.match) {
    case Match::kExact: return "= " + location.pattern;
    case Match::kPrefixNoRegex: return "^~ " + location.pattern;
    case Match::kRegex: return "~ " + location.pattern;
    case Match::kRegexCaseless: return "~* " + location.pattern;
    case Match::kPrefix:
    case Match::kNamed: break;
  }
  return location.pattern;
}


constexpr int kMaxUriChanges = 10;  // nginx's NGX_HTTP_MAX_URI_CHANGES

bool isRedirectCode(int code) {
  return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
}

// add_header (without `always`) and expires only touch these statuses.
bool isHeaderFilterStatus(int code) {
  switch (code) {
    case 200: case 201: case 204: case 206: case 301: case 302: case 303: case 304: case 307:
    case 308:
      return true;
    default:
      return false;
  }
}

// add_header's part of the header filter: the lines of `addHeaders` that apply to the status
// (`filtered`: one of isHeaderFilterStatus's; else only `always` ones), expanded in `vars`,
// empty values left out as nginx does; ETag and Last-Modified replace the response's own.
void applyAddHeaders(const std::vector<std::pair<const config::AddHeader*, http::Template>>&
                         addHeaders,
                     bool filtered, const http::VariableContext& vars, http::ResponseHead& head) {
  for (const auto& [spec, value] : addHeaders) {
    if (!filtered && !spec->always) continue;
    std::string v = value.expand(vars);
    if (http::iequals(spec->name, "ETag") || http::iequals(spec->name, "Last-Modified")) {
      // ngx_http_set_response_header: these replace the response's own, "" removes it.
      const std::string& name = spec->name;  // (a lambda may not capture a binding: clang)
      std::erase_if(head.headers,
                    [&name](const http::Header& h) { return http::iequals(h.name, name); });
    }
    if (!v.empty()) head.add(spec->name, std::move(v));  // nginx skips empty values
  }
}

// nginx ends keep-alive after these answers of its own (ngx_http_special_response_handler),
// also when an error_page answers in their place.
bool closesConnection(int code) {
  return code == 400 || code == 413 || code == 414 || code == 500 || code == 501 ||
         (code >= 495 && code <= 497);
}

// The statuses ngx_http_special_response_handler has a page for.
bool hasNginxErrorPage(int code) {
  if (code >= 301 && code <= 308) return code != 304 && code != 305 && code != 306;
  if (code >= 400 && code <= 416) return true;
  if (code == 421 || code == 429 || (code >= 494 && code <= 497)) return true;
  return code >= 500 && code <= 508 && code != 506;
}


uint64_t ms(double seconds) { return seconds <= 0 ? 0 : static_cast<uint64_t>(seconds * 1000.0); }

// limit_req's clock: CLOCK_MONOTONIC milliseconds, the same in every worker (its zones are
// shared).
uint64_t monotonicMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

uint64_t wallMicros() {
  timeval tv{};
  ::gettimeofday(&tv, nullptr);
  return static_cast<uint64_t>(tv.tv_sec) * 1000000 + static_cast<uint64_t>(tv.tv_usec);
}

}  // namespace

std::string buildRedirectLocation(std::string_view path, const config::LocationSettings& settings,
                                  std::string_view host, std::string_view serverName,
                                  const http::ConnectionInfo& connection) {
  std::string out;
  if (!path.starts_with('/') || !settings.absoluteRedirect) {
    out.assign(path);
    return out;
  }
  std::string scheme = connection.scheme.empty() ? "http" : connection.scheme;
  out = scheme + "://";
  std::string_view name;
  if (settings.serverNameInRedirect) {
    name = serverName;
  } else if (!host.empty()) {
    name = host;
  }
  if (!name.empty()) {
    out += name;
  } else if (connection.isUnix || connection.localAddress.empty()) {
    out += "localhost";
  } else if (connection.localAddress.find(':') != std::string::npos) {
    out += "[" + connection.localAddress + "]";
  } else {
    out += connection.localAddress;
  }
  if (settings.portInRedirect && !connection.isUnix && connection.localPort != 0) {
    bool standard = (connection.localPort == 80 && scheme == "http") ||
                    (connection.localPort == 443 && scheme == "https");
    if (!standard) out += ":" + std::to_string(connection.localPort);
  }
  out += path;
  return out;
}

// One request's trip through the site: the route the connection holds, and the Exchange the
// content sees (its request may be rewritten by internal redirects; its response goes through
// error_page interception and the header filters). Loop thread; owned by the connection.
class SiteRequest : public http::RequestRoute, public http::Exchange {
 public:
  SiteRequest(const SiteHandler& site, const http::Request& request,
              const http::ConnectionInfo& connection)
      : site_(site), original_(request), connection_(connection),
        users_(site.userVariables()) {}
  ~SiteRequest() override {
    if (delayTimer_ != event::TimerId{} && site_.loop()) site_.loop()->cancelTimer(delayTimer_);
  }
  // Made and freed once per request, and larger than malloc's per-thread cache serves.
  static void* operator new(size_t size) { return BlockCache<SiteRequest>::take(size); }
  static void operator delete(void* block, size_t size) {
    BlockCache<SiteRequest>::give(block, size);
  }

  // Server selection and the first location match; false: answer `failStatus_` at once.
  void prepare() {
    startMicros_ = wallMicros();
    if (!original_.host.empty() || original_.header("Host") != nullptr) {
      // An empty Host header is as invalid as a malformed one (nginx: 400).
      auto host = http::validateHost(original_.host);
      if (!host) {
        failStatus_ = 400;  // nginx: "client sent invalid host header"
      } else {
        host_ = std::move(*host);
      }
    }
    const http::ServerGroup* group = site_.groupFor(connection_);
    if (!group && !site_.map().groups().empty()) group = site_.map().groups().front().get();
    if (!group) {
      failStatus_ = 500;
      return;
    }
    server_ = group->select(host_, &serverCaptures_);
    misdirected_ = misdirected(*group);
    applyRealip(*site_.runtimeOf(*server_, nullptr).settings);  // post-read: the server's settings
    if (!serverCaptures_.groups.empty()) captures_ = serverCaptures_;
    if (!original_.path.empty() && original_.path[0] == '/' &&
        http::normalizePath(original_.path, uri_, server_->config->mergeSlashes)) {
      args_ = original_.query;
      quotedUri_ = original_.rawPath.find_first_of("%+") != std::string::npos;
      // The rewrite phases run now: the location they end in sets the body limits.
      if (failStatus_ == 0) {
        if (!routeRequest(true, nullptr)) pendingRewrite_ = true;
      } else {
        match(uri_);
      }
    } else if (failStatus_ == 0) {
      failStatus_ = 400;
    }
    if (!location_) location_ = &site_.runtimeOf(*server_, nullptr);
    limits_ = location_->limits;
    if (const std::string* agent = original_.header("User-Agent");
        agent && http::keepaliveDisabled(location_->settings->keepaliveDisable, *agent,
                                         original_.method == "POST")) {
      limits_.keepAliveTimeoutMs = 0;  // ngx_http_update_location_config: no keep-alive
    }
  }

  // RequestRoute
  const http::RouteLimits& limits() const override { return limits_; }
  // A location that may hand the request on (try_files to `@app`, error_page) keeps the body
  // for whoever answers; only plain static locations let the connection discard it first.
  bool readsBody() const override {
    return location_ && ((location_->content && location_->content->readsBody()) ||
                         !location_->tryFiles.empty() ||
                         location_->tryFallback || !location_->errorPages.empty());
  }
  void run(http::Exchange& exchange) override {
    next_ = &exchange;
    ErrorLogScope scope(*this);
    if (!location_) {
      exchange.respondError(500);  // no server at all for this address (an empty site)
      return;
    }
    if (failStatus_ != 0) {
      finalize(failStatus_);
      return;
    }
    if (misdirected_) {
      logInfo("client attempted to request the server name different from the one that was"
              " negotiated");
      finalize(421);
      return;
    }
    if (connection_.plainOnTls) {
      logInfo("client sent plain HTTP request to HTTPS port");
      finalize(497);
      return;
    }
    if (int status = clientCertificateRefusal(); status != 0) {
      finalize(status);
      return;
    }
    if (refusedAsInternal()) return;
    if (pendingRewrite_) {
      pendingRewrite_ = false;
      answerRewrite();
      return;
    }
    content();
  }

  void reject(int status, http::Exchange& exchange) override {
    next_ = &exchange;
    ErrorLogScope scope(*this);
    if (!location_) {
      exchange.respondError(status);
      return;
    }
    rewritten_ = original_;
    rewritten_->method = original_.isHead() ? "HEAD" : "GET";  // no body will be read
    finalize(status);
  }

  // Exchange: what the content sees.
  const http::Request& request() const override { return rewritten_ ? *rewritten_ : original_; }
  // The connection's own head when it is the one the content sees (no copy per WSGI job).
  std::shared_ptr<const http::Request> sharedRequest() const override {
    if (!rewritten_ && next_ && &next_->request() == &original_) return next_->sharedRequest();
    return http::Exchange::sharedRequest();
  }
  // The answering location's server_tokens (the connection knows the first location's only).
  std::string_view signature() const override {
    return location_ && location_->limits.serverHeader ? *location_->limits.serverHeader
                                                       : next_ ? next_->signature() : "portico";
  }
  // The client after realip (as nginx replaces the connection's address for the request).
  const http::ConnectionInfo& connection() const override {
    return realClient_ ? *realClient_ : connection_;
  }
  const http::ConnectionInfo& socketConnection() const override { return connection_; }

  void sendHead(http::ResponseHead head) override {
    if (swallowing_) return;
    if (head.special && inErrorPage_) {
      // ngx_http_special_response_handler sets err_status: the error page's own error or
      // redirect is what the client gets (with its Location).
      errStatus_ = head.status;
    }
    if (head.special && (!upstream() || head.gateway) && closesConnection(head.status)) {
      closes_ = true;  // also an upstream answer proxy_intercept_errors hands to error_page
    }
    int pageStatus = std::exchange(internalStatus_, 0);
    if (pageStatus == 0) pageStatus = head.status;
    if (head.special && (!upstream() || head.gateway) && head.status >= 300 &&
        head.status != 304 && !inErrorPage_) {
      if (const config::ErrorPage* page = errorPageFor(pageStatus)) {
        if (head.gateway && head.status == 401) {
          // An upstream 401 proxy_intercept_errors hands over keeps its challenge (nginx
          // copies WWW-Authenticate to the page's response).
          for (const http::Header& h : head.headers) {
            if (http::iequals(h.name, "WWW-Authenticate")) wwwAuthenticate_ = h.value;
          }
        }
        swallowing_ = true;
        pendingPage_ = page;
        pendingStatus_ = pageStatus;
        // nginx keeps r->headers_out.location over the internal redirect: `return 302 URL`
        // answered by an error_page still says where to go.
        if (const std::string* location = head.header("Location")) keptLocation_ = *location;
        return;
      }
    }
    if (errStatus_ != 0) {
      head.status = errStatus_;
      head.reason.clear();
    }
    if (!keptLocation_.empty() && !head.header("Location")) {
      head.add("Location", std::move(keptLocation_));
    }
    if (!accelHeaders_.empty() && !head.special) keepAccelHeaders(head);
    if (closes_ || (!upstream() && closesConnection(head.status))) head.close = true;
    if (head.status == 401 && !wwwAuthenticate_.empty()) {
      head.add("WWW-Authenticate", wwwAuthenticate_);
    }
    status_ = head.status;
    applyHeaderFilters(head);
    applyLimitRate();
    output().sendHead(std::move(head));
  }
  void setLimitRate(uint64_t bytesPerSecond) override { limitRate_ = bytesPerSecond; }
  void sendBody(BodyChunk chunk) override {
    if (swallowing_) return;
    bodyBytes_ += chunk.size();
    output().sendBody(std::move(chunk));
  }
  void finish() override {
    if (swallowing_) {
      swallowing_ = false;
      runErrorPage();
      return;
    }
    sendTrailers();
    // Logged by the connection's logResponse once the response has left (or was cut short).
    output().finish();
  }
  bool writable() const override { return output_ ? output_->writable() : next_->writable(); }
  void onWritable(std::function<void()> callback) override {
    output().onWritable(std::move(callback));
  }
  void readBody(http::BodyReader* reader) override { next_->readBody(reader); }
  void abortOnClientClose() override { next_->abortOnClientClose(); }
  // A 101 makes the connection a raw stream: the connection's own business, under the chain.
  bool canUpgrade() const override { return next_ && next_->canUpgrade(); }
  bool upgrade(http::RawStreamPeer* peer) override { return next_ && next_->upgrade(peer); }
  void pauseUpgradedInput(bool paused) override { next_->pauseUpgradedInput(paused); }
  // X-Accel-Redirect: an internal redirect (GET unless HEAD) or a named location, from the
  // proxied location's content; the kept upstream headers go into the response made there.
  bool accelRedirect(const std::string& uri, const std::string& args,
                     std::vector<http::Header> keep) override {
    if (!location_ || !next_) return false;
    ErrorLogScope scope(*this);
    accelHeaders_ = std::move(keep);
    if (uri.starts_with('@')) {
      namedRedirect(uri);
    } else {
      internalRedirect(uri, args, true);
    }
    return true;
  }
  std::string expand(const http::Template& value) const override {
    return value.expand(variables());
  }
  std::string expandWithCaptures(const http::Template& value,
                                 const Regex::Match& captures) const override {
    http::VariableContext context = variables();
    context.captures = &captures;
    return value.expand(context);
  }
  std::string absoluteLocation(std::string_view path) const override {
    return redirectLocation(path);
  }
  http::UpstreamVariables* upstreamVariables() override {
    if (!upstreamVars_) upstreamVars_.emplace();
    return &*upstreamVars_;
  }
  std::string_view currentUri() const override { return uri_; }
  bool uriIsOriginal() const override { return !rewritten_; }
  bool locationValid() const override { return locationValid_; }
  std::string errorContext() const override {
    std::string out = ", client: ";
    out += connection().isUnix && connection().peerAddress.empty() ? "unix:"
                                                                   : connection().peerAddress;
    out += ", server: " + server_->primaryName;
    out += ", request: \"" + original_.method + " " + original_.target + " " +
           std::string(original_.versionString()) + "\"";
    return out;
  }
  // Registered through the output chain, so a filter that watches the connection itself (gzip)
  // still tells the content.
  void onAbort(std::function<void()> callback) override { output().onAbort(std::move(callback)); }
  void abort() override {
    writeLogs();
    limitState_.release();
    (output_ ? output_ : next_)->abort();
  }
  int metricsLocation() const override { return location_ ? location_->metricsIndex : -1; }
  void logResponse(const http::AccessLogEntry& entry) override {
    if (logged_ || !location_) return;
    if (status_ == 0) status_ = entry.status;  // no head left: the session's 499
    bodyBytes_ = entry.bodyBytesSent;  // what left, after gzip, as nginx's $body_bytes_sent
    bytesSent_ = entry.bytesSent;
    writeLogs();
    limitState_.release();  // the request is finalized (nginx's pool cleanup)
  }
  void logConnectionAnswer(const http::AccessLogEntry& entry) override {
    if (logged_ || !location_) return;
    status_ = entry.status;
    bodyBytes_ = entry.bodyBytesSent;
    bytesSent_ = entry.bytesSent;
    if (entry.responseHeaders) responseHeaders_ = *entry.responseHeaders;
    writeLogs();
    limitState_.release();
  }

 private:
  // The answering location's content is an upstream's (an app): its answers are its own.
  bool upstream() const { return location_->content && location_->content->upstream(); }

  // The output chain of the location that answers: [gzip] → connection.
  // Built at the content's first use (its onAbort, or the first head that is not swallowed).
  http::Exchange& output() {
    if (output_) return *output_;
    http::Exchange* out = next_;
    if (location_->gzip && site_.loop()) {
      gzip_ = std::make_unique<http::GzipExchange>(
          *out, *location_->gzip, *site_.loop(),
          upstream() ? http::GzipSource::kUpstream : http::GzipSource::kStaticFile);
      out = gzip_.get();
    }
    output_ = out;
    return *output_;
  }

  // nginx's ngx_http_update_location_config: a method the location's `limit_except` limits is
  // served with the block's implicit location (its rewrite directives are the block's: none).
  void enterLocation(const LocationRuntime* rt) {
    location_ = rt;
    if (!rt->limitExcept) return;
    const std::vector<std::string>& allowed = rt->settings->limitExceptAllowed;
    const std::string& method = request().method;
    if (std::find(allowed.begin(), allowed.end(), method) == allowed.end()) {
      location_ = rt->limitExcept;
    }
  }

  void match(std::string_view uri) {
    lookup_ = http::SiteMap::match(*server_, uri);
    if (lookup_.hasCaptures) captures_ = lookup_.captures;
    enterLocation(&site_.runtimeOf(*server_, lookup_.node));
    if (inErrorLogScope_) ErrorLog::setRequestTargets(errorLogTargets());
  }

  // The error_log targets of the current location (null: the process-wide log).
  const std::vector<ErrorLogTarget>* errorLogTargets() const {
    return location_ && !location_->errorLogs.empty() ? &location_->errorLogs : nullptr;
  }

  // While the request's phases run synchronously, what they log goes to the location's
  // error_log (nginx's r->connection->log follows the location); restored afterwards.
  class ErrorLogScope {
   public:
    explicit ErrorLogScope(SiteRequest& r)
        : request_(r), outer_(r.inErrorLogScope_),
          previous_(ErrorLog::setRequestTargets(r.errorLogTargets())) {
      r.inErrorLogScope_ = true;
    }
    ~ErrorLogScope() {
      request_.inErrorLogScope_ = outer_;
      ErrorLog::setRequestTargets(previous_);
    }
    ErrorLogScope(const ErrorLogScope&) = delete;
    ErrorLogScope& operator=(const ErrorLogScope&) = delete;

   private:
    SiteRequest& request_;
    bool outer_;
    const std::vector<ErrorLogTarget>* previous_;
  };

  // nginx's ngx_http_set_virtual_server: a Host other than the server name the handshake
  // chose (by SNI) may not reach a server that verifies client certificates, whose check the
  // handshake may have skipped (421). Approximation of nginx's "SNI found a server by name":
  // SNI selects a server other than the default, or names the default server.
  bool misdirected(const http::ServerGroup& group) const {
    using Verify = config::TlsServerSettings::VerifyClient;
    if (!connection_.tls || host_.empty() || failStatus_ != 0) return false;
    const char* sni = SSL_get_servername(connection_.tls, TLSEXT_NAMETYPE_host_name);
    if (!sni || !*sni) return false;
    std::string name(sni);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == host_) return false;
    const http::ServerNode* bySni = group.select(name, nullptr);
    if (!bySni || (bySni == group.defaultServer && bySni->primaryName != name)) return false;
    return server_->config->tls.verifyClient != Verify::kOff;
  }

  // nginx's ssl_verify_client check in ngx_http_process_request, with the request's server
  // (chosen by Host): 495 or 496 (answered 400, or by error_page), or 0.
  int clientCertificateRefusal() {
    using Verify = config::TlsServerSettings::VerifyClient;
    const Verify verify = server_->config->tls.verifyClient;
    if (!connection_.tls || verify == Verify::kOff) return 0;
    std::string line;
    int status = transport::clientCertificateStatus(connection_.tls, verify == Verify::kOn,
                                                    verify == Verify::kOptionalNoCa, line);
    if (status == 0) return 0;
    // ngx_http_log_error's context, as nginx writes it while the head is being read.
    line += " while reading client request headers, client: ";
    line += connection_.isUnix ? "unix:" : connection_.peerAddress;
    line += ", server: " + server_->primaryName;
    line += ", request: \"" + original_.method + " " + original_.target + " " +
            std::string(original_.versionString()) + "\"";
    if (const std::string* host = original_.header("Host")) line += ", host: \"" + *host + "\"";
    logInfo(line);
    return status;
  }

  http::VariableContext variables() const {
    http::VariableContext c;
    c.request = &request();
    c.connection = &connection();
    c.realipConnection = &connection_;
    c.uri = uri_;
    c.args = args_;
    c.host = host_;
    c.serverName = server_->primaryName;
    c.documentRoot = documentRoot_;
    if (c.documentRoot.empty() && location_ && location_->directory &&
        location_->directory->constant()) {
      // Before (or without) a file lookup — a proxied location's params — a constant root is
      // $document_root all the same (nginx reads the location's root).
      c.documentRoot = location_->directory->source();
    }
    c.captures = captures_ ? &*captures_ : nullptr;
    c.status = status_;
    c.bodyBytesSent = bodyBytes_;
    c.startMicros = startMicros_;
    c.durationMicros = wallMicros() - startMicros_;
    c.users = &users_;
    c.warnUninitialized = location_ ? location_->warnUninitialized : true;
    if (location_) {
      c.requestFilename = [this](std::string_view uri) { return requestFilename(uri); };
    }
    c.limitReqStatus = limitState_.reqStatus();
    c.limitConnStatus = limitState_.connStatus();
    c.upstream = upstreamVars_ ? &*upstreamVars_ : nullptr;
    c.limitRate = limitRate_.value_or(0);
    return c;
  }

  // $request_filename (ngx_http_map_uri_to_path): root + URI, or the alias with the URI's rest
  // (a regex location's alias is the whole path). No side effects: `if (-f ...)` runs before
  // the content.
  std::string requestFilename(std::string_view uri) const {
    const LocationRuntime& rt = *location_;
    if (!rt.directory) return std::string(uri);
    std::string directory;
    if (rt.directory->constant()) {
      directory = rt.directory->source();
    } else {
      directory = rt.directory->expand(variables());
      if (!directory.empty() && directory[0] != '/') directory.insert(0, site_.prefix());
    }
    if (rt.alias && rt.aliasRegex) return directory;
    std::string_view rest = uri;
    if (rt.alias && rest.starts_with(rt.aliasPrefix)) rest.remove_prefix(rt.aliasPrefix.size());
    return directory + std::string(rest);
  }

  // Answers with an nginx-generated status (error_page may take it over).
  void finalize(int status) {
    if (status == 444) {
      next_->abort();  // nginx's "close the connection without a response"
      return;
    }
    if (!hasNginxErrorPage(status)) {
      // nginx has pages for the common codes only; the rest (418, 204, 2xx) go out empty.
      http::ResponseHead head;
      head.status = status;
      head.special = true;
      respond(std::move(head), std::string());
      return;
    }
    if (status >= 494 && status <= 497) internalStatus_ = status;
    respondError(status);
  }

  std::string redirectLocation(std::string_view path) const {
    return buildRedirectLocation(path, *location_->settings, host_, server_->primaryName,
                                 connection_);
  }

  void redirect(int status, std::string location) {
    http::ResponseHead head;
    head.status = status;
    head.add("Content-Type", "text/html");
    head.add("Location", std::move(location));
    head.special = true;
    respond(std::move(head), errorPage(status));
  }

  // nginx's server rewrite, find config, location rewrite and post-rewrite phases from the
  // current URI: the server's rewrite directives (when `serverPhase`), then the location
  // (`start`, a named location, or the match of the URI) and its directives, matching again
  // after `last` or a changed URI. False: answer rewriteResult_ (return, redirect, 500).
  bool routeRequest(bool serverPhase, const http::LocationNode* start) {
    // The URI and args before the first program (copied only when one runs: most sites have
    // none), to tell the request whether they changed.
    std::optional<std::pair<std::string, std::string>> before;
    bool answered = false;
    auto runProgram = [&](const LocationRuntime& rt) -> http::RewriteResult {
      if (!before) before.emplace(uri_, args_);
      // Copies: what the program reads through variables() (a map, $request_filename) sees
      // the request as it stood before the program.
      http::RewriteState state;
      state.uri = uri_;
      state.args = args_;
      state.captures = captures_;
      state.quotedUri = quotedUri_;
      state.limitRate = limitRate_;
      http::RewriteResult result = rt.rewrites->run(state, variables(), rt.rewriteLog);
      limitRate_ = state.limitRate;
      uri_ = std::move(state.uri);
      args_ = std::move(state.args);
      captures_ = std::move(state.captures);
      if (state.ifSettings) {
        location_ = &site_.ifRuntime(state.ifSettings);
        // nginx keeps the content handler of the last `if` that set one while the settings
        // are the last `if`'s: a later block without a pass of that kind (and a location
        // without one to inherit) leaves the handler with no upstream, nginx's 500.
        const config::LocationSettings* own = state.ifContent;
        const config::LocationSettings* now = state.ifSettings;
        if (own && own != now &&
            !((own->proxy.pass && now->proxy.pass) || (own->uwsgi.pass && now->uwsgi.pass))) {
          logError("no upstream configuration");
          http::RewriteResult failed;
          failed.action = http::RewriteResult::Action::kError;
          return failed;
        }
      }
      if (result.action == http::RewriteResult::Action::kDone && state.uriChanged) {
        result.action = http::RewriteResult::Action::kLast;
      }
      return result;
    };
    auto answers = [](const http::RewriteResult& r) {
      using Action = http::RewriteResult::Action;
      return r.action == Action::kReturn || r.action == Action::kRedirect ||
             r.action == Action::kError;
    };
    if (serverPhase) {
      const LocationRuntime& rt = site_.runtimeOf(*server_, nullptr);
      if (rt.rewrites && !rt.rewrites->empty()) {
        location_ = &rt;
        rewriteResult_ = runProgram(rt);
        answered = answers(rewriteResult_);
      }
    }
    while (!answered) {
      if (start) {
        lookup_ = {};
        lookup_.node = start;
        enterLocation(&site_.runtimeOf(*server_, start));
        start = nullptr;
      } else {
        match(uri_);
      }
      const LocationRuntime& rt = *location_;
      locationValid_ = true;
      if (!rt.rewrites || rt.rewrites->empty()) break;
      std::string matched = uri_;  // (only where the location has rewrite directives)
      rewriteResult_ = runProgram(rt);
      if (answers(rewriteResult_)) {
        answered = true;
        break;
      }
      if (rewriteResult_.action == http::RewriteResult::Action::kBreak && uri_ != matched) {
        // nginx's valid_location = 0: the URI no longer matches the location that serves it.
        locationValid_ = false;
      }
      if (rewriteResult_.action != http::RewriteResult::Action::kLast) break;
      if (++uriChanges_ > kMaxUriChanges) {
        logError("rewrite or internal redirection cycle while processing \"" + uri_ + "\"");
        rewriteResult_ = {};
        rewriteResult_.action = http::RewriteResult::Action::kError;
        inErrorPage_ = true;
        answered = true;
      }
    }
    if (before && (uri_ != before->first || args_ != before->second)) {
      // The content (an app's PATH_INFO, QUERY_STRING) sees the rewritten URI; $request_uri
      // and REQUEST_URI stay the request's (nginx's unparsed_uri).
      if (!rewritten_) rewritten_ = original_;
      rewritten_->path = uri_;
      rewritten_->rawPath = uri_;
      rewritten_->query = args_;
    }
    return !answered;
  }

  // The answer of a return, a rewrite redirect or a rewrite failure.
  void answerRewrite() {
    const http::RewriteResult& r = rewriteResult_;
    switch (r.action) {
      case http::RewriteResult::Action::kReturn:
        doReturn(r.status, r.hasText, r.text);
        return;
      case http::RewriteResult::Action::kRedirect:
        redirect(r.status, redirectLocation(r.text));
        return;
      default:
        finalize(500);
        return;
    }
  }

  // `return` (its text already expanded by the rewrite program).
  void doReturn(int code, bool hasText, std::string value) {
    if (!hasText && (code >= 400 || isRedirectCode(code))) {
      finalize(code);
      return;
    }
    // ngx_http_script_return_code: below 400 (or with text) the answer is
    // ngx_http_send_response's, with the URI's type even when empty (`return 200;`).
    if (isRedirectCode(code)) {
      redirect(code, redirectLocation(value));
      return;
    }
    http::ResponseHead head;
    head.status = code;
    // As ngx_http_send_response: the type of the URI's extension, else default_type (none on
    // a 204, whose header filter drops it).
    if (code != 204) head.add("Content-Type", std::string(location_->mimes->lookup(uri_)));
    respond(std::move(head), std::move(value));
  }

  // `internal`: a location only internal redirects reach; the client's own request gets 404
  // (nginx's find-config phase). True when it answered.
  bool refusedAsInternal() {
    if (!location_->settings->internal || internal_) return false;
    finalize(404);
    return true;
  }

  // The upstream headers an X-Accel-Redirect keeps (nginx copies them into headers_out before
  // the redirect): the upstream's Content-Type stands (the static module sets a type only when
  // none is set), Accept-Ranges replaces the file's, the others are added.
  void keepAccelHeaders(http::ResponseHead& head) {
    for (const http::Header& kept : accelHeaders_) {
      if (http::iequals(kept.name, "Content-Type") || http::iequals(kept.name, "Accept-Ranges")) {
        const std::string& name = kept.name;
        std::erase_if(head.headers,
                      [&name](const http::Header& h) { return http::iequals(h.name, name); });
      }
      head.headers.push_back(kept);
    }
  }

  // The content phase of the current location.
  void content() {
    if (refusedAsInternal()) return;
    if (lookup_.redirectToSlash) {
      std::string path;
      http::appendEscapedPath(path, uri_);
      path += '/';
      if (!args_.empty()) path += "?" + args_;
      redirect(301, redirectLocation(path));
      return;
    }
    const config::LocationSettings& s = *location_->settings;
    applyRealip(s);  // realip runs first in nginx's preaccess phase
    if (location_->limit && !preaccess()) return;
    if (!accessPhase()) return;
    if (!location_->tryFiles.empty() || location_->tryFallback) {
      if (tryFiles()) return;
    }
    if (location_->content) {
      location_->content->handle(*this);  // the registered content (an app, stub_status, ...)
      return;
    }
    serveFiles();
  }

  // realip (config/access_conf.h): once per request, at post-read with the server's settings
  // or else at preaccess with the location's.
  void applyRealip(const config::LocationSettings& settings) {
    if (realClient_) return;
    realClient_ = realClient(settings.access, original_, connection_);
  }

  // nginx's preaccess (realip) and access phases (allow/deny, auth_basic, satisfy); false when
  // the request was answered (or will be, after auth_delay).
  bool accessPhase() {
    applyRealip(*location_->settings);
    AccessVerdict verdict = runAccessPhase(location_->settings->access, location_->auth,
                                           connection(), request(), variables());
    if (verdict.status == 0) return true;
    wwwAuthenticate_ = std::move(verdict.wwwAuthenticate);
    if (verdict.status == 401 && verdict.delayMs > 0 && site_.loop()) {
      logInfo("delaying unauthorized request");
      delayTimer_ = site_.loop()->addTimer(verdict.delayMs, [this] {
        delayTimer_ = {};
        finalize(401);
      });
      return false;
    }
    finalize(verdict.status);
    return false;
  }

  // The directory (root or alias) and the path beneath it for `name` (a URI). As
  // ngx_http_map_uri_to_path, the path is the directory and the URI's rest concatenated as
  // they are: `location /b { alias /dir; }` maps "/bf.txt" to "/dirf.txt", and `alias
  // /dir/y.html` names a file. The lookup is then confined to the alias's parent directory.
  // A regex location's alias names the whole file, unless try_files found `name` beneath it
  // (nginx's add_uri_to_alias): then the URI is appended.
  DocumentRoot* filesFor(std::string_view name, std::string& relative,
                                       bool addUri = false) {
    const LocationRuntime& rt = *location_;
    // A constant root or alias is used in place (the site owns it): no copy per request.
    std::string_view directory;
    if (rt.directory) {
      if (rt.directory->constant()) {
        directory = rt.directory->source();
      } else {
        documentRootOwned_ = rt.directory->expand(variables());
        // As nginx (ngx_get_full_name per request): a value that expanded to a relative path
        // is under the prefix; the builder already applied it to values not starting with a
        // variable.
        if (!documentRootOwned_.empty() && documentRootOwned_[0] != '/') {
          documentRootOwned_.insert(0, site_.prefix());
        }
        directory = documentRootOwned_;
      }
    }
    documentRoot_ = directory;
    std::string_view rest = name;
    if (rt.alias && rt.aliasRegex) {
      if (!addUri) rest = {};
    } else if (rt.alias) {
      if (rest.starts_with(rt.aliasPrefix)) rest.remove_prefix(rt.aliasPrefix.size());
    }
    std::string_view base = directory;
    if (rt.alias && !directory.ends_with('/') && !rest.starts_with('/')) {
      // The last component of the alias and the rest form one name in its parent.
      size_t slash = directory.rfind('/');
      base = directory.substr(0, slash == std::string_view::npos ? 0 : slash + 1);
      relative.assign(directory.substr(base.size()));
      relative.append(rest);
    } else {
      relative.assign(rest);
    }
    if (rt.files && base == directory) return rt.files;
    if (!perRequestFiles_ || perRequestFor_ != &rt || perRequestFiles_->directory() != base) {
      perRequestFiles_ = site_.makeFiles(std::string(base), rt);
      perRequestFor_ = &rt;
    }
    return perRequestFiles_.get();
  }

  // try_files: true when it answered (or redirected); false to go on with the content.
  bool tryFiles() {
    for (const http::Template& entry : location_->tryFiles) {
      // As nginx, the entry as written decides: a trailing '/' tests for a directory (and is
      // not part of the name tested); "$uri" of "/dir/" is tested as a file and fails.
      bool wantDirectory = entry.source().ends_with('/');
      std::string name = entry.expand(variables());
      if (wantDirectory && !name.empty()) name.pop_back();
      std::string relative;
      DocumentRoot* files = filesFor(name, relative, true);
      auto kind = files->probe(relative);
      if (wantDirectory ? kind == FileKind::kDirectory
                        : (kind == FileKind::kFile ||
                           kind == FileKind::kOther)) {
        if (!location_->alias) {
          // As nginx: the URI becomes the entry found, without the slash that asked for a
          // directory (so "$uri/" for "/dir" then redirects to the slash form).
          uri_ = name.empty() ? std::string("/") : name;
          rewrite(uri_, args_, false);
        } else if (location_->aliasRegex) {
          // ngx_http_try_files_handler: a file found beneath a regex location's alias is
          // served as the alias and the entry (add_uri_to_alias).
          if (!wantDirectory) {
            uri_ = name;
            rewrite(uri_, args_, false);
            addUriToAlias_ = true;
          }
        } else if (!name.starts_with(location_->aliasPrefix)) {
          // The entry was tried beneath the alias as it is: the URI keeps the prefix.
          uri_ = location_->aliasPrefix + name;
          rewrite(uri_, args_, false);
        }
        return false;
      }
    }
    if (!location_->tryFallback) return false;
    std::string fallback = location_->tryFallback->expand(variables());
    if (fallback.size() > 1 && fallback[0] == '=') {
      finalize(std::atoi(fallback.c_str() + 1));
      return true;
    }
    if (fallback.starts_with('@')) {
      namedRedirect(fallback);
      return true;
    }
    std::string args;
    size_t q = fallback.find('?');
    if (q != std::string::npos) {
      args = fallback.substr(q + 1);
      fallback.resize(q);
    }
    internalRedirect(fallback, args, false);
    return true;
  }

  void serveFiles() {
    if (!uri_.empty() && uri_.back() == '/') {
      // The index module: the first existing index file, reached by an internal redirect;
      // the directory is tested once an index file is missing (ngx_http_index_handler).
      std::string relative;
      DocumentRoot* files = filesFor(uri_, relative);
      bool dirTested = false;
      for (const http::Template& name : location_->index) {
        // As ngx_http_index_handler: names with variables are expanded per request.
        std::string index = name.constant() ? name.source() : name.expand(variables());
        if (index.starts_with('/')) {
          internalRedirect(index, args_, false);
          return;
        }
        auto kind = files->probe(relative + index);
        if (kind == FileKind::kFile ||
            kind == FileKind::kOther) {
          internalRedirect(uri_ + index, args_, false);
          return;
        }
        if (kind == FileKind::kForbidden) {
          finalize(403);
          return;
        }
        if (!dirTested) {
          auto dir = files->probe(relative);
          if (dir != FileKind::kDirectory) {
            bool forbidden = dir == FileKind::kForbidden;
            if (!forbidden && location_->settings->logNotFound) {
              // ngx_http_index_test_dir's line for a missing directory.
              std::string path = files->directory();
              if (!path.empty() && path.back() != '/' && !relative.empty()) path += '/';
              path += relative;
              logError("\"" + path + "\" is not found (2: No such file or directory)");
            }
            finalize(forbidden ? 403 : 404);
            return;
          }
          dirTested = true;
        }
      }
      if (autoindex()) return;
      finalize(403);  // "directory index of ... is forbidden"
      return;
    }
    std::string relative;
    DocumentRoot* files = filesFor(uri_, relative, addUriToAlias_);
    // add_header ETag/Last-Modified replace the file's validators before If-Range is judged.
    std::optional<FileValidators> validators;
    for (const auto& [spec, value] : location_->addHeaders) {
      bool etag = http::iequals(spec->name, "ETag");
      if (!etag && !http::iequals(spec->name, "Last-Modified")) continue;
      if (!validators) validators.emplace();
      (etag ? validators->etag : validators->lastModified) = value.expand(variables());
    }
    files->serve(
        *this, relative,
        [this] {
          std::string path;
          http::appendEscapedPath(path, uri_);
          path += '/';
          if (!args_.empty()) path += "?" + args_;
          return redirectLocation(path);
        },
        validators ? &*validators : nullptr);
  }

  // The autoindex module (http/autoindex.h), after the index module found no index file; false
  // when it declines (off, or not GET/HEAD).
  bool autoindex() {
    using Format = config::AutoindexFormat;
    const config::AccessSettings& a = location_->settings->access;
    if (!a.autoindex || !(request().method == "GET" || request().isHead())) return false;
    Format format = a.autoindexFormat;
    std::string callback;
    if (format == Format::kJsonp) {
      std::string error;
      std::optional<std::string> name = http::jsonpCallback(args_, error);
      if (!name) {
        logInfo(error);
        finalize(400);
        return true;
      }
      callback = std::move(*name);
      if (callback.empty()) format = Format::kJson;
    }
    std::string relative;
    filesFor(uri_, relative);
    std::string path = std::string(documentRoot_) + relative;
    if (path.size() > 1 && path.back() == '/') path.pop_back();
    std::vector<http::AutoindexEntry> entries;
    if (int error = http::readAutoindexDirectory(path, entries)) {
      std::string line = "opendir() \"" + path + "\" failed (" + std::to_string(error) + ": " +
                         std::strerror(error) + ")";
      int status = 500;
      if (error == ENOENT || error == ENOTDIR || error == ENAMETOOLONG) {
        status = 404;
      } else if (error == EACCES) {
        status = 403;
      }
      if (status == 500) {
        logCritical(line);
      } else {
        logError(line);
      }
      finalize(status);
      return true;
    }
    std::string body;
    switch (format) {
      case Format::kJson: body = http::renderAutoindexJson(entries, nullptr); break;
      case Format::kJsonp: body = http::renderAutoindexJson(entries, &callback); break;
      case Format::kXml: body = http::renderAutoindexXml(entries); break;
      case Format::kHtml: {
        int64_t gmtoff = 0;
        if (a.autoindexLocaltime) {
          std::time_t now = std::time(nullptr);
          std::tm local{};
          ::localtime_r(&now, &local);
          gmtoff = local.tm_gmtoff;
        }
        body = http::renderAutoindexHtml(uri_, entries, a.autoindexExactSize, gmtoff);
        break;
      }
    }
    http::ResponseHead head;
    head.status = 200;
    head.add("Content-Type", std::string(http::autoindexContentType(format)));
    // No Content-Length, as nginx's listing (chunked on HTTP/1.1, close-delimited on 1.0).
    sendHead(std::move(head));
    if (!body.empty()) sendBody(std::move(body));
    finish();
    return true;
  }

  void rewrite(const std::string& uri, const std::string& args, bool toGet) {
    // From the request as it stands: an error page's GET survives a later try_files rewrite.
    if (!rewritten_) rewritten_ = original_;
    rewritten_->path = uri;
    rewritten_->rawPath = uri;
    rewritten_->query = args;
    rewritten_->target = args.empty() ? uri : uri + "?" + args;
    if (toGet && !rewritten_->isHead()) rewritten_->method = "GET";
  }

  void internalRedirect(const std::string& uri, const std::string& args, bool toGet) {
    internal_ = true;  // nginx's r->internal: `internal` locations may answer now
    if (++uriChanges_ > kMaxUriChanges) {
      logError("rewrite or internal redirection cycle while internally redirecting to \"" + uri +
               "\"");
      inErrorPage_ = true;
      finalize(500);
      return;
    }
    std::string normalized;
    if (!http::normalizePath(uri, normalized)) normalized = uri;
    uri_ = normalized;
    args_ = args;
    addUriToAlias_ = false;
    rewrite(uri_, args_, toGet);
    // The captures stay (nginx keeps r->captures and the named ones are variables): a
    // server_name regex's $sub still names the index file's directory after the redirect.
    if (!routeRequest(true, nullptr)) {  // an internal redirect runs the rewrite phases again
      answerRewrite();
      return;
    }
    content();
  }

  void namedRedirect(const std::string& name) {
    internal_ = true;
    const http::LocationNode* node = http::SiteMap::named(*server_, name);
    if (!node) {
      logError("named location \"" + name + "\" not found");
      inErrorPage_ = true;
      finalize(500);
      return;
    }
    if (++uriChanges_ > kMaxUriChanges) {
      inErrorPage_ = true;
      finalize(500);
      return;
    }
    if (!routeRequest(false, node)) {  // the named location's rewrite directives
      answerRewrite();
      return;
    }
    content();
  }

  // nginx's preaccess phase (pipeline/limit_zones.cpp): false when limit_req or limit_conn
  // answered, or when limit_req holds the request — a loop timer resumes it, the connection
  // reads nothing meanwhile.
  bool preaccess() {
    using Action = LimitRequestState::Outcome::Action;
    LimitRequestState::Outcome outcome =
        limitState_.run(*location_->limit, variables(), monotonicMs());
    if (outcome.action == Action::kReject) {
      finalize(outcome.status);
      return false;
    }
    if (outcome.action == Action::kDelay && site_.loop()) {
      delayTimer_ = site_.loop()->addTimer(outcome.delayMs, [this] {
        delayTimer_ = {0, 0};
        content();
      });
      return false;
    }
    return true;
  }

  const config::ErrorPage* errorPageFor(int status) const {
    for (const auto& [uri, page] : location_->errorPages) {
      for (int code : page->codes) {
        if (code == status) return page;
      }
    }
    return nullptr;
  }

  const http::Template* errorPageUri(const config::ErrorPage* page) const {
    for (const auto& [uri, p] : location_->errorPages) {
      if (p == page) return &uri;
    }
    return nullptr;
  }

  void runErrorPage() {
    const config::ErrorPage* page = pendingPage_;
    int status = pendingStatus_;
    pendingPage_ = nullptr;
    inErrorPage_ = true;  // no error_page for the error page's own errors (nginx's default)
    std::string uri = errorPageUri(page)->expand(variables());
    if (page->overrideStatus > 0) {
      errStatus_ = page->overrideStatus;
    } else if (page->overrideStatus == 0) {
      errStatus_ = status;
    }  // -1 (`=`): the status of the page's own response
    if (uri.starts_with('@')) {
      namedRedirect(uri);
      return;
    }
    if (!uri.starts_with('/')) {
      // An external URL: a redirect, 302 unless the override names a redirect code.
      int code = isRedirectCode(page->overrideStatus) ? page->overrideStatus : 302;
      errStatus_ = 0;
      redirect(code, uri);
      return;
    }
    std::string args;
    size_t q = uri.find('?');
    if (q != std::string::npos) {
      args = uri.substr(q + 1);
      uri.resize(q);
    }
    internalRedirect(uri, args, true);
  }

  // limit_rate for the response about to start, with the location that answers (nginx sizes it
  // in the write filter, since 1.17.0): a rate X-Accel-Limit-Rate set wins.
  void applyLimitRate() {
    if (!location_) {
      next_->throttle(limitRate_.value_or(0), 0);
      return;
    }
    uint64_t rate = limitRate_ ? *limitRate_ : sizeOf(location_->limitRate);
    uint64_t after = rate != 0 ? sizeOf(location_->limitRateAfter) : 0;
    next_->throttle(rate, after);
  }

  // nginx's ngx_http_complex_value_size with 0 as the default.
  uint64_t sizeOf(const std::optional<http::Template>& value) const {
    if (!value) return 0;
    std::string text = expand(*value);
    std::optional<int64_t> size = config::parseNginxSize(text);
    if (!size) {
      logError("invalid size \"" + text + "\"");
      return 0;
    }
    return static_cast<uint64_t>(*size);
  }

  // The next time the local clock shows `secondsOfDay` after `now` (nginx's ngx_next_time).
  static std::time_t nextTimeOfDay(int64_t secondsOfDay, std::time_t now) {
    std::tm tm{};
    ::localtime_r(&now, &tm);
    tm.tm_hour = static_cast<int>(secondsOfDay / 3600);
    tm.tm_min = static_cast<int>(secondsOfDay % 3600 / 60);
    tm.tm_sec = static_cast<int>(secondsOfDay % 60);
    tm.tm_isdst = -1;
    std::tm today = tm;
    std::time_t next = std::mktime(&today);
    if (next == -1 || next - now > 0) return next;
    tm.tm_mday++;  // mktime normalizes the 32nd
    return std::mktime(&tm);
  }

  // ngx_http_set_expires: Expires and Cache-Control from the location's `expires` (a value
  // with variables that does not parse, or says off, leaves the response alone).
  void applyExpires(http::ResponseHead& head, const config::Expires& configured) {
    using Kind = config::Expires::Kind;
    config::Expires e = configured;
    if (e.variable) {
      if (config::parseExpires(expand(*location_->expiresValue), e) || e.kind == Kind::kOff) {
        return;
      }
    }
    std::optional<std::time_t> lastModified;
    if (e.kind == Kind::kModified) {
      for (const http::Header& h : head.headers) {
        if (http::iequals(h.name, "Last-Modified")) lastModified = http::parseHttpDate(h.value);
      }
    }
    std::erase_if(head.headers, [](const http::Header& h) {
      return http::iequals(h.name, "Expires") || http::iequals(h.name, "Cache-Control");
    });
    if (e.kind == Kind::kEpoch) {
      head.add("Expires", "Thu, 01 Jan 1970 00:00:01 GMT");
      head.add("Cache-Control", "no-cache");
      return;
    }
    if (e.kind == Kind::kMax) {
      head.add("Expires", "Thu, 31 Dec 2037 23:55:55 GMT");
      head.add("Cache-Control", "max-age=315360000");  // 10 years
      return;
    }
    std::time_t now = std::time(nullptr);
    if (e.seconds == 0 && e.kind != Kind::kDaily) {
      head.add("Expires", http::formatHttpDate(now));
      head.add("Cache-Control", "max-age=0");
      return;
    }
    int64_t at = 0;
    int64_t maxAge = 0;
    if (e.kind == Kind::kDaily) {
      at = nextTimeOfDay(e.seconds, now);
      maxAge = at - now;
    } else if (e.kind == Kind::kAfter || !lastModified) {
      maxAge = e.seconds;
      at = now + e.seconds;
    } else {
      at = *lastModified + e.seconds;
      maxAge = at - now;
    }
    head.add("Expires", http::formatHttpDate(static_cast<std::time_t>(at)));
    // nginx compares the configured time (0 when it has variables) and the age.
    bool negative = (!configured.variable && configured.seconds < 0) || maxAge < 0;
    head.add("Cache-Control", negative ? std::string("no-cache")
                                       : "max-age=" + std::to_string(maxAge));
  }

  void applyHeaderFilters(http::ResponseHead& head) {
    const config::LocationSettings& s = *location_->settings;
    bool filtered = isHeaderFilterStatus(head.status);
    if (filtered && s.expires.kind != config::Expires::Kind::kOff) applyExpires(head, s.expires);
    if (!location_->addHeaders.empty()) {
      http::VariableContext vars = variables();
      vars.status = head.status;
      vars.responseHeaders = &head.headers;  // $sent_http_* sees the headers added before
      applyAddHeaders(location_->addHeaders, filtered, vars, head);
    }
    head.noChunked = !s.chunkedTransferEncoding;
    // nginx's expect_trailers: an add_trailer that applies to this status chunks the body.
    for (const auto& [spec, value] : location_->addTrailers) {
      if (filtered || spec->always) {
        head.expectTrailers = true;
        trailersExpected_ = true;
        trailerHeaders_ = head.headers;  // $sent_http_* when the trailers are made
        break;
      }
    }
    if (!location_->accessLogs.empty()) responseHeaders_ = head.headers;  // $sent_http_*
  }

  // ngx_http_trailers_filter: the add_trailer fields at the body's end, each with the
  // variables as they stand then ($sent_trailer_* sees the fields made before it); empty
  // values are left out.
  void sendTrailers() {
    if (!trailersExpected_ || request().isHead()) return;
    bool filtered = isHeaderFilterStatus(status_);
    std::vector<http::Header> trailers;
    http::VariableContext vars = variables();
    vars.status = status_;
    vars.responseHeaders = &trailerHeaders_;
    vars.responseTrailers = &trailers;
    for (const auto& [spec, value] : location_->addTrailers) {
      if (!filtered && !spec->always) continue;
      std::string v = value.expand(vars);
      if (!v.empty()) trailers.push_back({spec->name, std::move(v)});
    }
    output().setTrailers(std::move(trailers));
  }

  void writeLogs() {
    if (logged_) return;
    logged_ = true;
    ErrorLogScope scope(*this);
    if (location_->accessLogs.empty()) return;
    http::VariableContext vars = variables();
    vars.responseHeaders = &responseHeaders_;
    vars.bytesSent = bytesSent_;
    site_.writeAccessLogs(*location_, vars);
  }

  const SiteHandler& site_;
  const http::Request& original_;
  const http::ConnectionInfo& connection_;
  http::Exchange* next_ = nullptr;
  http::Exchange* output_ = nullptr;
  // Kept until the next request: it may still be compressing after the content's finish().
  std::unique_ptr<http::GzipExchange> gzip_;
  std::optional<http::Request> rewritten_;
  std::optional<http::ConnectionInfo> realClient_;  // the client address realip set
  std::string wwwAuthenticate_;                     // auth_basic's challenge for a 401
  event::TimerId delayTimer_{};                     // auth_delay before a 401
  const http::ServerNode* server_ = nullptr;
  const LocationRuntime* location_ = nullptr;
  std::optional<uint64_t> limitRate_;  // X-Accel-Limit-Rate: the response's rate, wherever it ends
  http::LocationMatch lookup_;
  Regex::Match serverCaptures_;
  std::optional<Regex::Match> captures_;
  std::unique_ptr<DocumentRoot> perRequestFiles_;
  const LocationRuntime* perRequestFor_ = nullptr;  // whose options perRequestFiles_ has
  bool addUriToAlias_ = false;  // try_files found the URI beneath a regex location's alias
  std::string host_;
  std::string uri_;
  std::string args_;
  std::string_view documentRoot_;    // a constant root/alias, or documentRootOwned_
  std::string documentRootOwned_;    // an expanded root/alias with variables
  http::RouteLimits limits_;
  std::vector<http::Header> responseHeaders_;
  bool trailersExpected_ = false;            // the head asked for trailers (add_trailer)
  std::vector<http::Header> trailerHeaders_;  // that head's headers, for $sent_http_*
  int failStatus_ = 0;
  int status_ = 0;
  int errStatus_ = 0;
  int uriChanges_ = 0;
  bool quotedUri_ = false;       // the request's path held %XX or '+' (nginx's quoted_uri)
  bool pendingRewrite_ = false;  // the rewrite phases of prepare() ended in rewriteResult_
  http::RewriteResult rewriteResult_;
  mutable http::UserVariableStore users_;  // `set` and `map` values (maps fill it on read)
  bool inErrorPage_ = false;
  bool closes_ = false;  // an answer that ends keep-alive was generated (even if replaced)
  bool swallowing_ = false;
  const config::ErrorPage* pendingPage_ = nullptr;
  int pendingStatus_ = 0;
  std::string keptLocation_;  // the Location of a redirect an error_page took over
  bool locationValid_ = true;  // false: a rewrite ... break changed the URI in the location
  // The nginx-internal code (494-497) of the 400 being answered: error_page looks it up by
  // that code (`error_page 497` catches a plain request to an HTTPS port, `error_page 400`
  // does not), as ngx_http_special_response_handler does.
  int internalStatus_ = 0;
  bool misdirected_ = false;  // 421: see misdirected()
  uint64_t bodyBytes_ = 0;
  uint64_t bytesSent_ = 0;
  uint64_t startMicros_ = 0;
  bool logged_ = false;
  bool inErrorLogScope_ = false;  // an ErrorLogScope is active (match() moves it along)
  LimitRequestState limitState_;
  // The upstream engine's record ($upstream_*), kept across an error_page redirect.
  std::optional<http::UpstreamVariables> upstreamVars_;  // in place: no allocation per proxied request
  bool internal_ = false;  // an internal redirect happened (nginx's r->internal)
  std::vector<http::Header> accelHeaders_;  // an X-Accel-Redirect's kept upstream headers
};

SiteHandler::SiteHandler(const config::Config& config, const http::SiteMap& map,
                         event::EventLoop* loop)
    : config_(config), map_(map), loop_(loop) {
  tokensOn_ = std::string("portico/") + kPorticoVersion;
}

SiteHandler::~SiteHandler() = default;

const http::MimeTypes& SiteHandler::mimesFor(const config::LocationSettings& settings) {
  std::string key = settings.defaultType + "\n";
  if (settings.types) {
    for (const auto& [ext, type] : *settings.types) key += ext + "=" + type + ";";
  } else {
    key += "(builtin)";
  }
  auto& slot = mimes_[key];
  if (!slot) {
    if (settings.types) {
      slot = std::make_unique<http::MimeTypes>();
      for (const auto& [ext, type] : *settings.types) slot->add(type, ext);
    } else {
      slot = std::make_unique<http::MimeTypes>(http::MimeTypes::builtin());
    }
    slot->setDefaultType(settings.defaultType);
  }
  return *slot;
}

LogFile* SiteHandler::logFile(const std::string& path, std::string& error) {
  auto& slot = logFiles_[path];
  if (!slot) {
    slot = std::make_unique<LogFile>();
    // "stderr" names error_log's stderr (an access_log path is always absolute).
    std::string file = path == "/dev/stdout" || path == "stderr" ? "-" : path;
    if (!slot->open(file, path == "stderr" ? stderr : stdout, error)) {
      // nginx's words for it (its -t and start-up say the same).
      int saved = slot->lastErrno();
      error = "open() \"" + path + "\" failed (" + std::to_string(saved) + ": " +
              std::strerror(saved) + ")";
      logFiles_.erase(path);
      return nullptr;
    }
  }
  return slot.get();
}

const http::ServerNode* SiteHandler::unroutedServer(const http::Request& failedHead,
                                                    const http::ConnectionInfo& connection) const {
  const http::ServerGroup* group = groupFor(connection);
  if (!group && !map_.groups().empty()) group = map_.groups().front().get();
  if (!group || !group->defaultServer) return nullptr;
  // As nginx: a Host header that arrived complete before the failure has chosen the server
  // already (ngx_http_process_host); otherwise the default server of the address.
  const http::ServerNode* server = group->defaultServer;
  if (!failedHead.host.empty()) {
    if (std::optional<std::string> host = http::validateHost(failedHead.host)) {
      Regex::Match captures;
      server = group->select(*host, &captures);
    }
  }
  return server;
}

void SiteHandler::filterUnrouted(http::ResponseHead& head, const http::Request& failedHead,
                                 const http::ConnectionInfo& connection) const {
  const http::ServerNode* server = unroutedServer(failedHead, connection);
  if (!server) return;
  const LocationRuntime& rt = runtimeOf(*server, nullptr);
  if (rt.addHeaders.empty()) return;
  http::VariableContext vars;
  vars.request = &failedHead;
  vars.connection = &connection;
  vars.uri = failedHead.path;
  vars.args = failedHead.query;
  vars.serverName = server->primaryName;
  vars.status = head.status;
  vars.responseHeaders = &head.headers;
  applyAddHeaders(rt.addHeaders, isHeaderFilterStatus(head.status), vars, head);
}

void SiteHandler::logUnrouted(const http::AccessLogEntry& entry) const {
  if (entry.connection == nullptr || entry.request == nullptr) return;
  const http::ServerNode* server = unroutedServer(*entry.request, *entry.connection);
  if (!server) return;
  const LocationRuntime& rt = runtimeOf(*server, nullptr);
  if (rt.accessLogs.empty()) return;
  http::VariableContext vars;
  vars.request = entry.request;
  vars.connection = entry.connection;
  vars.uri = entry.request->path;
  vars.args = entry.request->query;
  vars.serverName = server->primaryName;
  vars.status = entry.status;
  vars.bodyBytesSent = entry.bodyBytesSent;
  vars.bytesSent = entry.bytesSent;
  vars.responseHeaders = entry.responseHeaders;
  vars.startMicros = static_cast<uint64_t>(entry.startTime) * 1000000;
  vars.durationMicros = entry.durationMicros;
  writeAccessLogs(rt, vars);
}

void SiteHandler::writeAccessLogs(const LocationRuntime& rt,
                                  const http::VariableContext& vars) const {
  bool rootTested = false, rootMissing = false;
  for (const auto& log : rt.accessLogs) {
    if (log.condition && !accessLogConditionTrue(log.condition->expand(vars))) continue;
    std::string line = log.format->expand(vars, log.escape);
    if (log.syslog) {
      log.syslog->send(line, std::time(nullptr));
      continue;
    }
    if (!log.path && log.gzipLevel == 0) {
      log.file->writeLine(line);
      continue;
    }
    line.push_back('\n');
    if (log.gzipLevel) line = gzipMember(line, log.gzipLevel);
    if (!log.path) {
      int fd = log.file->fileno();
      if (fd >= 0) appendToFile(fd, line);
      continue;
    }
    if (!rootTested) {
      // As ngx_http_log_script_write: a log path with variables is written only when the
      // request's root directory exists (checked once per request).
      rootTested = true;
      std::string root = !vars.documentRoot.empty() || !rt.directory
                             ? std::string(vars.documentRoot)
                             : rt.directory->expand(vars);
      struct stat st {};
      if (::stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        int saved = ::stat(root.c_str(), &st) != 0 ? errno : ENOTDIR;
        logError("testing \"" + root + "\" existence failed (" + std::to_string(saved) + ": " +
                 std::strerror(saved) + ")");
        rootMissing = true;
      }
    }
    if (rootMissing) continue;
    std::string path = log.path->expand(vars);
    bool ok;
    if (log.cache) {
      ok = log.cache->write(path, line, std::time(nullptr));
    } else {
      UniqueFd fd = openLogForAppend(path);
      ok = fd && appendToFile(fd.get(), line);
    }
    if (!ok) {
      // nginx: [crit] open() "PATH" failed (ERRNO: TEXT), and the request goes on.
      int saved = errno;
      logCritical("open() \"" + path + "\" failed (" + std::to_string(saved) + ": " +
                  std::strerror(saved) + ")");
    }
  }
}

bool SiteHandler::reopenLogs(std::string& error) {
  bool ok = true;
  for (auto& [path, file] : logFiles_) ok = file->reopen(error) && ok;
  return ok;
}

bool SiteHandler::compile(LocationRuntime& rt, const config::LocationSettings& s,
                          const http::LocationNode* node, std::string& error) {
  rt.settings = &s;
  rt.node = node;
  if (node) {
    rt.prefix = node->config->pattern;
    rt.regex = node->config->match == config::Location::Match::kRegex ||
               node->config->match == config::Location::Match::kRegexCaseless;
  }
  auto where = [&]() -> std::string {
    if (node && !node->config->source.file.empty()) {
      return " in " + node->config->source.file + ":" + std::to_string(node->config->source.line);
    }
    return {};
  };
  auto compileOne = [&](const std::string& text) -> std::optional<http::Template> {
    std::string message;
    auto t = http::Template::compile(text, message, captureNames_, &userVariables_);
    if (!t) error = message + where();
    return t;
  };
  rt.mimes = &mimesFor(s);
  rt.alias = s.alias.has_value();
  if (rt.alias) {
    bool own = s.aliasPrefix.empty();  // a hand-built model: the alias is this location's
    rt.aliasPrefix = own ? rt.prefix : s.aliasPrefix;
    rt.aliasRegex = own ? rt.regex : s.aliasRegex;
  }
  rt.directory = compileOne(s.alias ? *s.alias : s.root);
  if (!rt.directory) return false;
  // The location's gzip policy, compiled once and owned here (a shared StaticHandler keeps a
  // pointer): the on-the-fly filter's, gzip_static's client check (ngx_http_gzip_ok) and, with
  // `gzip on`, whether a Range is answered whole and compressed (nginx's filter order).
  using Static = config::GzipSettings::Static;
  const http::GzipPolicy* policy = nullptr;
  if (s.gzip.enabled || s.gzip.staticMode != Static::kOff) {
    std::string message;
    std::optional<http::GzipPolicy> compiled = http::GzipPolicy::compile(s.gzip, message);
    if (!compiled) {
      error = message + where();
      return false;
    }
    policies_.push_back(std::make_unique<http::GzipPolicy>(std::move(*compiled)));
    policy = policies_.back().get();
    if (s.gzip.enabled) rt.gzip = *policy;
  }
  rt.fileOptions.gzipStatic = s.gzip.staticMode != Static::kOff;
  rt.fileOptions.gzipStaticAlways = s.gzip.staticMode == Static::kAlways;
  rt.fileOptions.gzipVary = s.gzip.vary;
  rt.fileOptions.sendfile = s.sendfile;
  rt.fileOptions.logNotFound = s.logNotFound;
  rt.fileOptions.gzip = policy;
  rt.fileOptions.ifModifiedSince = s.ifModifiedSince;
  if (rt.directory->constant() && !(rt.alias && rt.aliasRegex)) {
    // Locations with a gzip policy keep their own handler (the policy is per location).
    std::string key = rt.directory->source() + "\n" + std::to_string(rt.fileOptions.gzipStatic) +
                      std::to_string(rt.fileOptions.gzipVary) +
                      std::to_string(rt.fileOptions.sendfile) +
                      std::to_string(rt.fileOptions.logNotFound) +
                      std::to_string(static_cast<int>(s.ifModifiedSince)) + "\n" +
                      std::to_string(reinterpret_cast<uintptr_t>(rt.mimes)) + "\n" +
                      std::to_string(reinterpret_cast<uintptr_t>(policy));
    auto& slot = files_[key];
    if (!slot) {
      slot = makeFiles(rt.directory->source(), rt);
    }
    rt.files = slot.get();
  }
  {
    std::string message;
    rt.rewrites =
        http::RewriteProgram::compile(s.rewrites, captureNames_, &userVariables_, message);
    if (!rt.rewrites) {
      error = message;
      return false;
    }
    rt.rewriteLog = s.rewriteLog;
    rt.warnUninitialized = s.uninitializedVariableWarn;
  }
  for (const std::string& index : s.index) {
    auto t = compileOne(index);
    if (!t) return false;
    rt.index.push_back(std::move(*t));
  }
  if (s.tryFiles) {
    for (const std::string& f : s.tryFiles->files) {
      auto t = compileOne(f);
      if (!t) return false;
      rt.tryFiles.push_back(std::move(*t));
    }
    rt.tryFallback = compileOne(s.tryFiles->fallback);
    if (!rt.tryFallback) return false;
  }
  for (const config::AddHeader& h : s.addHeaders) {
    auto t = compileOne(h.value);
    if (!t) return false;
    rt.addHeaders.emplace_back(&h, std::move(*t));
  }
  for (const config::AddHeader& h : s.addTrailers) {
    auto t = compileOne(h.value);
    if (!t) return false;
    rt.addTrailers.emplace_back(&h, std::move(*t));
  }
  if (s.expires.variable) {
    rt.expiresValue = compileOne(s.expires.value);
    if (!rt.expiresValue) return false;
  }
  if (!s.limitRate.empty()) {
    rt.limitRate = compileOne(s.limitRate);
    if (!rt.limitRate) return false;
  }
  if (!s.limitRateAfter.empty()) {
    rt.limitRateAfter = compileOne(s.limitRateAfter);
    if (!rt.limitRateAfter) return false;
  }
  for (const config::ErrorPage& p : s.errorPages) {
    auto t = compileOne(p.uri);
    if (!t) return false;
    rt.errorPages.emplace_back(std::move(*t), &p);
  }
  for (const config::AccessLogSpec& log : s.accessLogs) {
    auto it = logFormats_.find(log.format);
    if (it == logFormats_.end()) {
      error = "unknown log format \"" + log.format + "\"" + where();
      return false;
    }
    LocationRuntime::Log entry;
    entry.format = &it->second.first;
    entry.escape = it->second.second;
    entry.gzipLevel = log.gzipLevel;
    if (!log.condition.empty()) {
      entry.condition = compileOne(log.condition);
      if (!entry.condition) return false;
    }
    if (log.syslog) {
      syslogs_.push_back(std::make_unique<SyslogSender>(*log.syslog));
      entry.syslog = syslogs_.back().get();
    } else if (log.pathVariables) {
      entry.path = compileOne(log.path);
      if (!entry.path) return false;
      if (s.openLogFileCache) {
        const config::OpenLogFileCache& c = *s.openLogFileCache;
        auto& slot = logCaches_[c.source.file + ":" + std::to_string(c.source.line)];
        if (!slot) slot = std::make_unique<LogFileCache>(c);
        entry.cache = slot.get();
      }
    } else {
      entry.file = logFile(log.path, error);
      if (!entry.file) return false;
    }
    rt.accessLogs.push_back(std::move(entry));
  }
  if (s.access.authBasic && s.access.authBasicUserFile) {
    rt.auth.realm = compileOne(*s.access.authBasic);
    if (!rt.auth.realm) return false;
    rt.auth.userFile = compileOne(*s.access.authBasicUserFile);
    if (!rt.auth.userFile) return false;
  }
  rt.limits.maxBodySize = s.clientMaxBodySize;
  rt.limits.bodyTimeoutMs = ms(s.clientBodyTimeoutSeconds);
  rt.limits.sendTimeoutMs = ms(s.sendTimeoutSeconds);
  rt.limits.keepAliveTimeoutMs = ms(s.keepaliveTimeoutSeconds);
  rt.limits.keepAliveHeaderSeconds =
      s.keepaliveHeaderSeconds ? static_cast<int64_t>(*s.keepaliveHeaderSeconds) : -1;
  rt.limits.keepAliveRequests = s.keepaliveRequests;
  rt.limits.keepAliveTimeMs = ms(s.keepaliveTimeSeconds);
  for (const config::ErrorLogSpec& log : s.errorLogs) {
    LogFile* file = logFile(log.path == "-" ? std::string("stderr") : log.path, error);
    if (!file) return false;
    rt.errorLogs.push_back({file, log.level});
  }
  rt.limits.serverHeader = &serverHeader(s.serverTokens);
  rt.limit = limitCompiler_.compile(s.limit, error);
  if (!rt.limit && !error.empty()) return false;
  return true;
}

namespace {

// The files of a site registered without any (a pipeline under test): nothing is found.
class NoFiles : public DocumentRoot {
 public:
  explicit NoFiles(std::string directory) : directory_(std::move(directory)) {}
  const std::string& directory() const override { return directory_; }
  FileKind probe(std::string_view) const override { return FileKind::kMissing; }
  void serve(http::Exchange& exchange, std::string_view, const std::function<std::string()>&,
             const FileValidators*) const override {
    exchange.respondError(404);
  }

 private:
  std::string directory_;
};

}  // namespace

http::SiteMap::AutoRedirect autoRedirectOf(const ContentModules& content) {
  return [modules = content.modules](const config::LocationSettings& settings) {
    for (ContentModule* module : modules) {
      if (module->claims(settings)) return module->autoRedirect();
    }
    return false;
  };
}

std::unique_ptr<DocumentRoot> SiteHandler::makeFiles(std::string directory,
                                                     const LocationRuntime& rt) const {
  if (!filesFactory_) return std::make_unique<NoFiles>(std::move(directory));
  return filesFactory_(std::move(directory), *rt.mimes, rt.fileOptions);
}

bool SiteHandler::implicitLocation(LocationRuntime& rt, const config::LocationSettings& settings,
                                   const LocationRuntime& parent, const http::LocationNode* node,
                                   std::string& error) {
  if (!compile(rt, settings, node, error)) return false;
  if (settings.ownContent) {
    rt.content = makeContent(settings, node, error);
    return rt.content || error.empty();
  }
  if (claimed(settings)) rt.content = parent.content;
  return true;
}

bool SiteHandler::claimed(const config::LocationSettings& settings) const {
  for (ContentModule* module : modules_) {
    if (module->claims(settings)) return true;
  }
  return false;
}

ContentHandler* SiteHandler::makeContent(const config::LocationSettings& settings,
                                         const http::LocationNode* node, std::string& error) {
  for (ContentModule* module : modules_) {
    if (!module->claims(settings)) continue;
    std::unique_ptr<ContentHandler> handler = module->create(settings, error);
    if (!handler) {
      if (node && !node->config->source.file.empty()) {
        error += " in " + node->config->source.file + ":" +
                 std::to_string(node->config->source.line);
      }
      return nullptr;
    }
    contents_.push_back(std::move(handler));
    return contents_.back().get();
  }
  return nullptr;
}

bool SiteHandler::build(const ContentModules& content, std::string& error) {
  modules_ = content.modules;
  filesFactory_ = content.files;
  const config::HttpSite& site = map_.site();
  // Named captures of every regex are variables everywhere (nginx).
  captureNames_ = http::captureNamesOf(site);
  if (!http::buildUserVariables(site, captureNames_, userVariables_, maps_, error)) return false;
  for (ContentModule* module : modules_) module->setVariables(captureNames_, userVariables_);
  if (!limitCompiler_.build(site, error)) return false;
  for (const auto& [name, format] : site.logFormats) {
    std::string message;
    auto t = http::Template::compile(format.format, message, captureNames_, &userVariables_);
    if (!t) {
      error = message + " in log_format \"" + name + "\"";
      return false;
    }
    http::VariableEscape escape = format.escape == "json"   ? http::VariableEscape::kJson
                                  : format.escape == "none" ? http::VariableEscape::kNone
                                                            : http::VariableEscape::kDefault;
    logFormats_.emplace(name, std::make_pair(std::move(*t), escape));
  }
  if (!logFormats_.count("combined")) {
    std::string message;
    auto t = http::Template::compile(
        "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent "
        "\"$http_referer\" \"$http_user_agent\"",
        message);
    logFormats_.emplace("combined", std::make_pair(std::move(*t), http::VariableEscape::kDefault));
  }

  // The metrics' labels: each location with its server's name, then the server levels.
  const size_t locationCount = map_.locations().size();
  metricLocations_.assign(locationCount + map_.servers().size(), {});
  // A server is its name; one without (the flags' server, a catch-all) its first address.
  auto serverLabel = [](const http::ServerNode& server) {
    if (!server.primaryName.empty() || server.config->listens.empty()) return server.primaryName;
    return server.config->listens.front().spec;
  };
  std::function<void(const std::string&, const std::vector<http::LocationNode>&)> label =
      [&](const std::string& server, const std::vector<http::LocationNode>& nodes) {
        for (const http::LocationNode& node : nodes) {
          metricLocations_[node.id] = {server, metricLocationName(*node.config)};
          label(server, node.children);
        }
      };
  servers_.resize(map_.servers().size());
  for (const auto& server : map_.servers()) {
    LocationRuntime& rt = servers_[server->index];
    // A server level has no content of its own (wsgi_app, stub_status are a location's).
    if (!compile(rt, server->config->settings, nullptr, error)) return false;
    rt.metricsIndex = static_cast<int>(locationCount + server->index);
    metricLocations_[locationCount + server->index] = {serverLabel(*server), ""};
    label(serverLabel(*server), server->locations);
  }
  locations_.resize(locationCount);
  for (const http::LocationNode* node : map_.locations()) {
    LocationRuntime& parent = locations_[node->id];
    if (!compile(parent, node->config->settings, node, error)) return false;
    parent.metricsIndex = static_cast<int>(node->id);
    parent.content = makeContent(node->config->settings, node, error);
    if (!parent.content && !error.empty()) return false;
    // The implicit locations of its `if` blocks keep its content handler (the app).
    for (const config::RewriteStep& step : node->config->settings.rewrites) {
      if (step.kind != config::RewriteStep::Kind::kIf || !step.ifSettings) continue;
      auto rt = std::make_unique<LocationRuntime>();
      if (!implicitLocation(*rt, *step.ifSettings, parent, node, error)) return false;
      rt->metricsIndex = parent.metricsIndex;
      ifRuntimes_[step.ifSettings.get()] = std::move(rt);
    }
    if (const config::LocationSettings* block = node->config->settings.limitExcept.get()) {
      auto rt = std::make_unique<LocationRuntime>();
      if (!implicitLocation(*rt, *block, parent, node, error)) return false;
      rt->metricsIndex = parent.metricsIndex;
      parent.limitExcept = rt.get();
      ifRuntimes_[block] = std::move(rt);
    }
  }
  return true;
}

const http::ServerGroup* SiteHandler::groupFor(const http::ConnectionInfo& connection) const {
  GroupCache& c = groupCache_;
  if (!c.valid || c.isUnix != connection.isUnix || c.localPort != connection.localPort ||
      c.localAddress != connection.localAddress) {
    c.group = map_.groupFor(connection, nullptr);
    c.isUnix = connection.isUnix;
    c.localPort = connection.localPort;
    c.localAddress = connection.localAddress;
    c.valid = true;
  }
  return c.group;
}

const LocationRuntime& SiteHandler::runtimeOf(const http::ServerNode& server,
                                              const http::LocationNode* node) const {
  return node ? locations_[node->id] : servers_[server.index];
}

std::unique_ptr<http::RequestRoute> SiteHandler::route(
    const http::Request& request, const http::ConnectionInfo& connection) const {
  auto r = std::make_unique<SiteRequest>(*this, request, connection);
  r->prepare();
  return r;
}

}  // namespace portico::pipeline
