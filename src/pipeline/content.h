#pragma once

// The pipeline's content seam: what answers a request once the phases before content (rewrite,
// preaccess, access, try_files) are done. Content handlers are registered by the composition
// root (process/), so the pipeline knows no handler type: a location's content is the handler
// of the first registered module that claims its directives (wsgi_app, stub_status, later
// proxy_pass), else the files beneath its root or alias (index, autoindex, static), read
// through a registered DocumentRoot factory.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/site.h"
#include "http/exchange.h"
#include "http/gzip_filter.h"
#include "http/mime_types.h"
#include "http/site_map.h"
#include "http/user_variables.h"

namespace portico::pipeline {

// A location's content handler (an app, stub_status, ...), made per location by its module and
// owned by the SiteHandler; loop thread.
class ContentHandler {
 public:
  virtual ~ContentHandler() = default;
  // Answers through `exchange` (the pipeline's: error_page, header filters, gzip, logs).
  virtual void handle(http::Exchange& exchange) = 0;
  // True when it reads the request body (else the connection may discard it first).
  virtual bool readsBody() const = 0;
  // An upstream's answers (an app, a proxied server) are its own, as nginx without
  // *_intercept_errors: error_page never takes them over, its error statuses do not end
  // keep-alive, and gzip treats its responses as proxied ones.
  virtual bool upstream() const = 0;
};

// Makes the content handlers of the locations whose directives it claims. Registered with the
// SiteHandler by the composition root, outlives it; loop thread.
class ContentModule {
 public:
  virtual ~ContentModule() = default;
  // Whether `settings` name this module's content (e.g. wsgi_app is set).
  virtual bool claims(const config::LocationSettings& settings) const = 0;
  // The handler for a location that it claims; null with `error` set when it cannot be made.
  virtual std::unique_ptr<ContentHandler> create(const config::LocationSettings& settings,
                                                 std::string& error) = 0;
  // nginx's auto_redirect, which its upstream modules set (proxy_pass, uwsgi_pass): a location
  // of this content whose name ends in '/' answers its name without the slash with a 301.
  virtual bool autoRedirect() const { return false; }
  // Before any create(): the variables the site knows besides the built-in ones (named regex
  // captures, `set` and `map` variables), for a module that compiles templates of its own
  // (proxy_set_header). They outlive the handlers.
  virtual void setVariables(const std::vector<std::string>& captureNames,
                            const http::VariableRegistry& users) {
    (void)captureNames;
    (void)users;
  }
};

// What a path beneath a root or alias directory is, for try_files and index (nginx's
// open_file tests).
enum class FileKind { kMissing, kFile, kDirectory, kForbidden, kOther };

// The validators a location's `add_header ETag|Last-Modified` puts in place of the file's
// (nginx's headers filter runs before its range filter, so If-Range compares with them); an
// empty value removes the header (then If-Range by that kind never matches).
struct FileValidators {
  std::optional<std::string> etag;
  std::optional<std::string> lastModified;
};

// How a location serves its files (nginx's per-location settings of the static module).
struct FileOptions {
  bool gzipStatic = true;  // gzip_static on: "<file>.gz" for clients that take gzip
  bool gzipStaticAlways = false;  // gzip_static always: "<file>.gz" for every client, no Vary
  bool gzipVary = true;    // gzip_vary on: Vary: Accept-Encoding when a sibling exists
  bool sendfile = true;    // sendfile off: the file is read() into memory chunks
  bool logNotFound = false;  // log_not_found on: a missing file is written to the error log
  // The location's gzip policy (outlives the files), null for none: gzip_static asks its
  // client check (gzip_http_version, gzip_disable, ...); with `gzip on` a Range of a file the
  // filter would compress is answered whole (nginx's gzip filter runs before its range
  // filter), and a 206 carries the filter's Vary.
  const http::GzipPolicy* gzip = nullptr;
  // if_modified_since: exact (nginx's default) answers 304 only for the file's own date,
  // before for any date not older than the file, off never.
  config::LocationSettings::IfModifiedSince ifModifiedSince =
      config::LocationSettings::IfModifiedSince::kBefore;
};

// The files beneath one root or alias directory (the static module's side of the content
// phase); the pipeline maps URIs to paths beneath it. Loop thread.
class DocumentRoot {
 public:
  virtual ~DocumentRoot() = default;
  virtual const std::string& directory() const = 0;
  virtual FileKind probe(std::string_view relative) const = 0;
  // Serves the file at `relative` as ngx_http_static_module: a directory → 301 to
  // `directoryLocation()`, errors as nginx (404, 403, 405).
  virtual void serve(http::Exchange& exchange, std::string_view relative,
                     const std::function<std::string()>& directoryLocation,
                     const FileValidators* validators) const = 0;
};

// Makes the DocumentRoot of a directory (absolute) with a location's types and options.
using DocumentRootFactory = std::function<std::unique_ptr<DocumentRoot>(
    std::string directory, const http::MimeTypes& mimes, const FileOptions& options)>;

// What the composition root registers with a SiteHandler: the content modules, asked in order
// for each location, and the factory of the files every other location serves.
struct ContentModules {
  std::vector<ContentModule*> modules;
  DocumentRootFactory files;  // empty: no files (every file request is 404)
};

// For http::SiteMap::build: whether the module that claims a location sets auto_redirect.
http::SiteMap::AutoRedirect autoRedirectOf(const ContentModules& content);

}  // namespace portico::pipeline
