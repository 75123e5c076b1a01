#include "process/site_handler.h"

#include <sys/time.h>

#include <cstring>

#include "config/version.h"
#include "http/http_date.h"
#include "http/parser.h"
#include "process/worker_status.h"

namespace portico::process {

namespace {

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

// nginx ends keep-alive after these answers of its own (ngx_http_special_response_handler).
bool closesConnection(int code) {
  return code == 400 || code == 413 || code == 414 || code == 500 || code == 501;
}

// The statuses ngx_http_special_response_handler has a page for.
bool hasNginxErrorPage(int code) {
  if (code >= 301 && code <= 308) return code != 304 && code != 305 && code != 306;
  if (code >= 400 && code <= 416) return true;
  if (code == 421 || code == 429 || (code >= 494 && code <= 497)) return true;
  return code >= 500 && code <= 508 && code != 506;
}


uint64_t ms(double seconds) { return seconds <= 0 ? 0 : static_cast<uint64_t>(seconds * 1000.0); }

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
      : site_(site), original_(request), connection_(connection) {}
  ~SiteRequest() override {
    if (site_.loop()) site_.loop()->cancelTimer(delayTimer_);
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
    if (!serverCaptures_.groups.empty()) captures_ = serverCaptures_;
    if (!original_.path.empty() && original_.path[0] == '/' &&
        http::normalizePath(original_.path, uri_)) {
      args_ = original_.query;
      match(uri_);
    } else if (failStatus_ == 0) {
      failStatus_ = 400;
    }
    if (!location_) location_ = &site_.runtimeOf(*server_, nullptr);
    limits_ = location_->limits;
  }

  // RequestRoute
  const http::RouteLimits& limits() const override { return limits_; }
  // A location that may hand the request on (try_files to `@app`, error_page) keeps the body
  // for whoever answers; only plain static locations let the connection discard it first.
  bool readsBody() const override {
    return location_ && (location_->wsgi != nullptr || !location_->tryFiles.empty() ||
                         location_->tryFallback || !location_->errorPages.empty());
  }
  void run(http::Exchange& exchange) override {
    next_ = &exchange;
    if (!location_) {
      exchange.respondError(500);  // no server at all for this address (an empty site)
      return;
    }
    if (failStatus_ != 0) {
      finalize(failStatus_);
      return;
    }
    const auto& serverReturn = site_.serverReturn(*server_);
    if (serverReturn) {
      const config::LocationSettings& s = *site_.runtimeOf(*server_, nullptr).settings;
      doReturn(*s.returnSpec, *serverReturn);
      return;
    }
    content();
  }

  void reject(int status, http::Exchange& exchange) override {
    next_ = &exchange;
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
  const http::ConnectionInfo& connection() const override { return connection_; }

  void sendHead(http::ResponseHead head) override {
    if (swallowing_) return;
    if (!location_->wsgi && head.status >= 300 && head.status != 304 && !inErrorPage_) {
      if (const config::ErrorPage* page = errorPageFor(head.status)) {
        swallowing_ = true;
        pendingPage_ = page;
        pendingStatus_ = head.status;
        return;
      }
    }
    if (errStatus_ != 0) {
      head.status = errStatus_;
      head.reason.clear();
    }
    if (!location_->wsgi && closesConnection(head.status)) head.close = true;
    status_ = head.status;
    applyHeaderFilters(head);
    output().sendHead(std::move(head));
  }
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
    // Logged by the connection's logResponse once the response has left (or was cut short).
    output().finish();
  }
  bool writable() const override { return output_ ? output_->writable() : next_->writable(); }
  void onWritable(std::function<void()> callback) override {
    output().onWritable(std::move(callback));
  }
  void readBody(http::BodyReader* reader) override { next_->readBody(reader); }
  // Registered through the output chain, so a filter that watches the connection itself (gzip)
  // still tells the content.
  void onAbort(std::function<void()> callback) override { output().onAbort(std::move(callback)); }
  void abort() override {
    writeLogs();
    limitState_.release();
    (output_ ? output_ : next_)->abort();
  }
  void logResponse(const http::AccessLogEntry& entry) override {
    if (logged_ || !location_) return;
    bodyBytes_ = entry.bodyBytesSent;  // what left, after gzip, as nginx's $body_bytes_sent
    writeLogs();
    limitState_.release();  // the request is finalized (nginx's pool cleanup)
  }
  void logConnectionAnswer(const http::AccessLogEntry& entry) override {
    if (logged_ || !location_) return;
    status_ = entry.status;
    bodyBytes_ = entry.bodyBytesSent;
    if (entry.responseHeaders) responseHeaders_ = *entry.responseHeaders;
    writeLogs();
    limitState_.release();
  }

 private:
  // The output chain of the location that answers: [gzip] → [extra filter] → connection.
  // Built at the content's first use (its onAbort, or the first head that is not swallowed).
  http::Exchange& output() {
    if (output_) return *output_;
    http::Exchange* out = next_;
    if (location_->gzip && site_.loop()) {
      gzip_ = std::make_unique<http::GzipExchange>(
          *out, *location_->gzip, *site_.loop(),
          location_->wsgi ? http::GzipSource::kUpstream : http::GzipSource::kStaticFile);
      out = gzip_.get();
    }
    if (site_.outputFilter()) {
      filter_ = site_.outputFilter()(*out, *location_->settings);
      if (filter_) out = filter_.get();
    }
    output_ = out;
    return *output_;
  }

  void match(std::string_view uri) {
    lookup_ = http::SiteMap::match(*server_, uri);
    if (lookup_.hasCaptures) captures_ = lookup_.captures;
    location_ = &site_.runtimeOf(*server_, lookup_.node);
  }

  http::VariableContext variables() const {
    http::VariableContext c;
    c.request = &request();
    c.connection = &connection_;
    c.uri = uri_;
    c.args = args_;
    c.host = host_;
    c.serverName = server_->primaryName;
    c.documentRoot = documentRoot_;
    c.captures = captures_ ? &*captures_ : nullptr;
    c.status = status_;
    c.bodyBytesSent = bodyBytes_;
    c.startMicros = startMicros_;
    c.durationMicros = wallMicros() - startMicros_;
    c.limitReqStatus = limitState_.reqStatus();
    c.limitConnStatus = limitState_.connStatus();
    return c;
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
      respond(std::move(head), std::string());
      return;
    }
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
    respond(std::move(head), http::errorPageBody(status));
  }

  void doReturn(const config::ReturnSpec& spec, const http::Template& text) {
    if (!spec.hasText) {
      finalize(spec.code);
      return;
    }
    std::string value = text.expand(variables());
    if (isRedirectCode(spec.code)) {
      redirect(spec.code, redirectLocation(value));
      return;
    }
    http::ResponseHead head;
    head.status = spec.code;
    // As ngx_http_send_response: the type of the URI's extension, else default_type.
    head.add("Content-Type", std::string(location_->mimes->lookup(uri_)));
    respond(std::move(head), std::move(value));
  }

  // The content phase of the current location.
  void content() {
    if (lookup_.redirectToSlash) {
      std::string path;
      http::appendEscapedPath(path, uri_);
      path += '/';
      if (!args_.empty()) path += "?" + args_;
      redirect(301, redirectLocation(path));
      return;
    }
    const config::LocationSettings& s = *location_->settings;
    if (s.returnSpec && location_->returnText) {
      doReturn(*s.returnSpec, *location_->returnText);
      return;
    }
    if (location_->limit && !preaccess()) return;
    if (!location_->tryFiles.empty() || location_->tryFallback) {
      if (tryFiles()) return;
    }
    if (location_->wsgi) {
      location_->wsgi->handle(*this);
      return;
    }
    serveFiles();
  }

  // The directory (root or alias) and the path beneath it for `name` (a URI).
  staticfiles::StaticHandler* filesFor(std::string_view name, std::string& relative) {
    const LocationRuntime& rt = *location_;
    // A constant root or alias is used in place (the site owns it): no copy per request.
    std::string expanded;
    std::string_view directory;
    if (rt.directory) {
      if (rt.directory->constant()) {
        directory = rt.directory->source();
      } else {
        expanded = rt.directory->expand(variables());
        // As nginx (ngx_get_full_name per request): a value that expanded to a relative path
        // is under the prefix; the builder already applied it to values not starting with a
        // variable.
        if (!expanded.empty() && expanded[0] != '/') expanded.insert(0, site_.prefix());
        directory = expanded;
      }
    }
    if (rt.alias && rt.aliasRegex) {
      // A regex location's alias names the whole file (captures inside).
      size_t slash = directory.rfind('/');
      relative.assign(directory.substr(slash == std::string::npos ? 0 : slash + 1));
      directory = directory.substr(0, slash == std::string::npos ? 0 : slash + 1);
    } else if (rt.alias) {
      std::string_view rest = name;
      if (rest.starts_with(rt.aliasPrefix)) rest.remove_prefix(rt.aliasPrefix.size());
      relative.assign(rest);
    } else {
      relative.assign(name);
    }
    if (rt.directory && !rt.directory->constant()) {
      expanded.resize(directory.size());  // `directory` is a prefix of `expanded`
      documentRootOwned_ = std::move(expanded);
      directory = documentRootOwned_;
    }
    documentRoot_ = directory;
    if (rt.files) return rt.files;
    perRequestFiles_ = std::make_unique<staticfiles::StaticHandler>(
        std::string(directory), *rt.mimes, rt.fileOptions);
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
      staticfiles::StaticHandler* files = filesFor(name, relative);
      auto kind = files->probe(relative);
      if (wantDirectory ? kind == staticfiles::StaticHandler::Kind::kDirectory
                        : (kind == staticfiles::StaticHandler::Kind::kFile ||
                           kind == staticfiles::StaticHandler::Kind::kOther)) {
        if (!location_->alias) {
          // As nginx: the URI becomes the entry found, without the slash that asked for a
          // directory (so "$uri/" for "/dir" then redirects to the slash form).
          uri_ = name.empty() ? std::string("/") : name;
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
    const config::LocationSettings& s = *location_->settings;
    if (!uri_.empty() && uri_.back() == '/') {
      // The index module: the first existing index file, reached by an internal redirect;
      // the directory is tested once an index file is missing (ngx_http_index_handler).
      std::string relative;
      staticfiles::StaticHandler* files = filesFor(uri_, relative);
      bool dirTested = false;
      for (const std::string& index : s.index) {
        if (index.starts_with('/')) {
          internalRedirect(index, args_, false);
          return;
        }
        auto kind = files->probe(relative + index);
        if (kind == staticfiles::StaticHandler::Kind::kFile ||
            kind == staticfiles::StaticHandler::Kind::kOther) {
          internalRedirect(uri_ + index, args_, false);
          return;
        }
        if (kind == staticfiles::StaticHandler::Kind::kForbidden) {
          finalize(403);
          return;
        }
        if (!dirTested) {
          auto dir = files->probe(relative);
          if (dir != staticfiles::StaticHandler::Kind::kDirectory) {
            finalize(dir == staticfiles::StaticHandler::Kind::kForbidden ? 403 : 404);
            return;
          }
          dirTested = true;
        }
      }
      finalize(403);  // "directory index of ... is forbidden" (no autoindex)
      return;
    }
    std::string relative;
    staticfiles::StaticHandler* files = filesFor(uri_, relative);
    files->serve(*this, relative, [this] {
      std::string path;
      http::appendEscapedPath(path, uri_);
      path += '/';
      if (!args_.empty()) path += "?" + args_;
      return redirectLocation(path);
    });
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
    rewrite(uri_, args_, toGet);
    captures_.reset();
    match(uri_);
    content();
  }

  void namedRedirect(const std::string& name) {
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
    lookup_ = {};
    lookup_.node = node;
    location_ = &site_.runtimeOf(*server_, node);
    content();
  }

  // nginx's preaccess phase (process/limit_zones.cpp): false when limit_req or limit_conn
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

  void applyHeaderFilters(http::ResponseHead& head) {
    const config::LocationSettings& s = *location_->settings;
    bool filtered = isHeaderFilterStatus(head.status);
    if (filtered && s.expires.kind != config::Expires::Kind::kOff) {
      std::erase_if(head.headers, [](const http::Header& h) {
        return http::iequals(h.name, "Expires") || http::iequals(h.name, "Cache-Control");
      });
      std::time_t now = std::time(nullptr);
      switch (s.expires.kind) {
        case config::Expires::Kind::kEpoch:
          head.add("Expires", "Thu, 01 Jan 1970 00:00:01 GMT");
          head.add("Cache-Control", "no-cache");
          break;
        case config::Expires::Kind::kMax:
          head.add("Expires", "Thu, 31 Dec 2037 23:55:55 GMT");
          head.add("Cache-Control", "max-age=315360000");
          break;
        case config::Expires::Kind::kAfter:
          head.add("Expires", http::formatHttpDate(now + s.expires.seconds));
          head.add("Cache-Control", s.expires.seconds < 0
                                        ? std::string("no-cache")
                                        : "max-age=" + std::to_string(s.expires.seconds));
          break;
        case config::Expires::Kind::kOff:
          break;
      }
    }
    if (!location_->addHeaders.empty()) {
      http::VariableContext vars = variables();
      vars.status = head.status;
      for (const auto& [spec, value] : location_->addHeaders) {
        if (!filtered && !spec->always) continue;
        std::string v = value.expand(vars);
        if (!v.empty()) head.add(spec->name, std::move(v));  // nginx skips empty values
      }
    }
    if (!location_->accessLogs.empty()) responseHeaders_ = head.headers;  // $sent_http_*
  }

  void writeLogs() {
    if (logged_) return;
    logged_ = true;
    if (location_->accessLogs.empty()) return;
    http::VariableContext vars = variables();
    vars.responseHeaders = &responseHeaders_;
    vars.bytesSent = bodyBytes_;
    for (const auto& log : location_->accessLogs) {
      log.file->writeLine(log.format->expand(vars, log.escape));
    }
  }

  const SiteHandler& site_;
  const http::Request& original_;
  const http::ConnectionInfo& connection_;
  http::Exchange* next_ = nullptr;
  http::Exchange* output_ = nullptr;
  std::unique_ptr<http::GzipExchange> gzip_;  // kept until the next request (it may still be
  std::unique_ptr<http::Exchange> filter_;    // compressing after the content's finish())
  std::optional<http::Request> rewritten_;
  const http::ServerNode* server_ = nullptr;
  const LocationRuntime* location_ = nullptr;
  http::LocationMatch lookup_;
  Regex::Match serverCaptures_;
  std::optional<Regex::Match> captures_;
  std::unique_ptr<staticfiles::StaticHandler> perRequestFiles_;
  std::string host_;
  std::string uri_;
  std::string args_;
  std::string_view documentRoot_;    // a constant root/alias, or documentRootOwned_
  std::string documentRootOwned_;    // an expanded root/alias with variables
  http::RouteLimits limits_;
  std::vector<http::Header> responseHeaders_;
  int failStatus_ = 0;
  int status_ = 0;
  int errStatus_ = 0;
  int uriChanges_ = 0;
  bool inErrorPage_ = false;
  bool swallowing_ = false;
  const config::ErrorPage* pendingPage_ = nullptr;
  int pendingStatus_ = 0;
  uint64_t bodyBytes_ = 0;
  uint64_t startMicros_ = 0;
  bool logged_ = false;
  LimitRequestState limitState_;
  event::TimerId delayTimer_{0, 0};  // a request limit_req holds
};

SiteHandler::SiteHandler(const config::Config& config, const http::SiteMap& map,
                         event::EventLoop* loop)
    : config_(config), map_(map), loop_(loop) {
  tokensOn_ = std::string("portico/") + kPorticoVersion;
}

SiteHandler::~SiteHandler() = default;

const staticfiles::MimeTypes& SiteHandler::mimesFor(const config::LocationSettings& settings) {
  std::string key = settings.defaultType + "\n";
  if (settings.types) {
    for (const auto& [ext, type] : *settings.types) key += ext + "=" + type + ";";
  } else {
    key += "(builtin)";
  }
  auto& slot = mimes_[key];
  if (!slot) {
    if (settings.types) {
      slot = std::make_unique<staticfiles::MimeTypes>();
      for (const auto& [ext, type] : *settings.types) slot->add(type, ext);
    } else {
      slot = std::make_unique<staticfiles::MimeTypes>(staticfiles::MimeTypes::builtin());
    }
    slot->setDefaultType(settings.defaultType);
  }
  return *slot;
}

LogFile* SiteHandler::logFile(const std::string& path, std::string& error) {
  auto& slot = logFiles_[path];
  if (!slot) {
    slot = std::make_unique<LogFile>();
    std::string file = path == "/dev/stdout" ? "-" : path;
    if (!slot->open(file, stdout, error)) {
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

void SiteHandler::logUnrouted(const http::AccessLogEntry& entry) const {
  if (entry.connection == nullptr || entry.request == nullptr) return;
  const http::ServerGroup* group = groupFor(*entry.connection);
  if (!group && !map_.groups().empty()) group = map_.groups().front().get();
  if (!group || !group->defaultServer) return;
  // As nginx: a Host header that arrived complete before the failure has chosen the server
  // already (ngx_http_process_host); otherwise the default server of the address.
  const http::ServerNode* server = group->defaultServer;
  if (!entry.request->host.empty()) {
    if (std::optional<std::string> host = http::validateHost(entry.request->host)) {
      Regex::Match captures;
      server = group->select(*host, &captures);
    }
  }
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
  vars.bytesSent = entry.bodyBytesSent;
  vars.responseHeaders = entry.responseHeaders;
  vars.startMicros = static_cast<uint64_t>(entry.startTime) * 1000000;
  vars.durationMicros = entry.durationMicros;
  for (const auto& log : rt.accessLogs) {
    log.file->writeLine(log.format->expand(vars, log.escape));
  }
}

bool SiteHandler::reopenLogs(std::string& error) {
  bool ok = true;
  for (auto& [path, file] : logFiles_) ok = file->reopen(error) && ok;
  return ok;
}

bool SiteHandler::compile(LocationRuntime& rt, const config::LocationSettings& s,
                          const http::LocationNode* node, const WsgiFactory& wsgi,
                          std::string& error) {
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
    auto t = http::Template::compile(text, message, captureNames_);
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
  if (rt.directory->constant() && !(rt.alias && rt.aliasRegex)) {
    // Locations with a gzip policy keep their own handler (the policy is per location).
    std::string key = rt.directory->source() + "\n" + std::to_string(rt.fileOptions.gzipStatic) +
                      std::to_string(rt.fileOptions.gzipVary) +
                      std::to_string(rt.fileOptions.sendfile) +
                      std::to_string(rt.fileOptions.logNotFound) + "\n" +
                      std::to_string(reinterpret_cast<uintptr_t>(rt.mimes)) + "\n" +
                      std::to_string(reinterpret_cast<uintptr_t>(policy));
    auto& slot = files_[key];
    if (!slot) {
      slot = std::make_unique<staticfiles::StaticHandler>(rt.directory->source(), *rt.mimes,
                                                          rt.fileOptions);
    }
    rt.files = slot.get();
  }
  if (s.returnSpec) {
    rt.returnText = compileOne(s.returnSpec->text);
    if (!rt.returnText) return false;
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
    LogFile* file = logFile(log.path, error);
    if (!file) return false;
    rt.accessLogs.push_back({file, &it->second.first, it->second.second});
  }
  if (s.wsgi) {
    rt.wsgi = wsgi ? wsgi(*s.wsgi) : nullptr;
    if (!rt.wsgi) {
      error = "wsgi_app \"" + s.wsgi->app + "\" is not loaded" + where();
      return false;
    }
  }
  rt.limits.maxBodySize = s.clientMaxBodySize;
  rt.limits.bodyTimeoutMs = ms(s.clientBodyTimeoutSeconds);
  rt.limits.sendTimeoutMs = ms(s.sendTimeoutSeconds);
  rt.limits.keepAliveTimeoutMs = ms(s.keepaliveTimeoutSeconds);
  rt.limits.keepAliveHeaderSeconds =
      s.keepaliveHeaderSeconds ? static_cast<int64_t>(*s.keepaliveHeaderSeconds) : -1;
  rt.limits.keepAliveRequests = s.keepaliveRequests;
  rt.limits.serverHeader = &serverHeader(s.serverTokens);
  rt.limit = limitCompiler_.compile(s.limit, error);
  if (!rt.limit && !error.empty()) return false;
  return true;
}

bool SiteHandler::build(const WsgiFactory& wsgi, std::string& error) {
  const config::HttpSite& site = map_.site();
  // Named captures of every regex are variables everywhere (nginx).
  captureNames_ = http::captureNamesOf(site);
  if (!limitCompiler_.build(site, error)) return false;
  for (const auto& [name, format] : site.logFormats) {
    std::string message;
    auto t = http::Template::compile(format.format, message, captureNames_);
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

  servers_.resize(map_.servers().size());
  serverReturns_.resize(map_.servers().size());
  for (const auto& server : map_.servers()) {
    LocationRuntime& rt = servers_[server->index];
    if (!compile(rt, server->config->settings, nullptr, nullptr, error)) {
      // A server level's own wsgi_app is not a thing (a location's content directive).
      if (!server->config->settings.wsgi) return false;
    }
    if (server->config->settings.returnSpec) {
      std::string message;
      serverReturns_[server->index] =
          http::Template::compile(server->config->settings.returnSpec->text, message, captureNames_);
      if (!serverReturns_[server->index]) {
        error = message;
        return false;
      }
      // The server-level return runs before location matching; the level's own content
      // does not repeat it.
      rt.returnText.reset();
    }
  }
  locations_.resize(map_.locations().size());
  for (const http::LocationNode* node : map_.locations()) {
    if (!compile(locations_[node->id], node->config->settings, node, wsgi, error)) return false;
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

}  // namespace portico::process
