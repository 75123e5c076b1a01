#pragma once

#include <sys/stat.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/unique_fd.h"
#include "http/exchange.h"
#include "http/gzip_filter.h"
#include "static/mime_types.h"

namespace portico::staticfiles {

// Serves the files beneath one root or alias directory as ngx_http_static_module (with
// gzip_static): GET/HEAD, conditional requests, byte ranges, precompressed ".gz" siblings.
// Every lookup is confined to the directory by openat2(RESOLVE_BENEATH). The pipeline maps URIs
// to paths beneath it (index, try_files, alias) and calls serve()/probe(). Made per location by
// the composition root's static content module (or per request for a root with variables);
// event-loop thread only.
class StaticHandler {
 public:

  // What the content phase needs beyond the directory (nginx's per-location settings).
  struct Options {
    bool gzipStatic = true;  // gzip_static on: "<file>.gz" for clients that take gzip
    bool gzipStaticAlways = false;  // gzip_static always: "<file>.gz" for every client, no Vary
    bool gzipVary = true;    // gzip_vary on: Vary: Accept-Encoding when a sibling exists
    bool sendfile = true;    // sendfile off: the file is read() into memory chunks
    bool logNotFound = false;  // log_not_found on: a missing file is written to the error log
    // The location's gzip policy (outlives the handler), null for none: gzip_static asks its
    // client check (gzip_http_version, gzip_disable, ...); with `gzip on` a Range of a file the
    // filter would compress is answered whole (nginx's gzip filter runs before its range
    // filter), and a 206 carries the filter's Vary.
    const http::GzipPolicy* gzip = nullptr;
    // if_modified_since: exact (nginx's default) answers 304 only for the file's own date,
    // before for any date not older than the file, off never.
    config::LocationSettings::IfModifiedSince ifModifiedSince =
        config::LocationSettings::IfModifiedSince::kBefore;
  };
  // A handler for a location's root or alias `directory` (absolute); `mimes` must outlive it.
  // A directory that cannot be opened is not an error by itself (a location may never serve
  // files from it): as nginx, each request that reaches it gets 404 with its open() line in
  // the error log (log_not_found), or 403 when access was denied.
  StaticHandler(std::string directory, const MimeTypes& mimes, Options options);

  // What a path beneath the directory is, for try_files and index (nginx's open_file tests).
  enum class Kind { kMissing, kFile, kDirectory, kForbidden, kOther };
  Kind probe(std::string_view relative) const;

  // The validators the location's `add_header ETag|Last-Modified` puts in place of the file's
  // (nginx's headers filter runs before its range filter, so If-Range compares with them);
  // an empty value removes the header (then If-Range by that kind never matches).
  struct Validators {
    std::optional<std::string> etag;
    std::optional<std::string> lastModified;
  };

  // Serves the file at `relative` (no leading '/') for `uri`, as ngx_http_static_module: 405
  // for other methods than GET/HEAD, a directory → 301 to `directoryLocation()`, errors as
  // nginx (404, 403). `relative` must already be free of ".." (it comes from a normalized URI).
  void serve(http::Exchange& exchange, std::string_view relative,
             const std::function<std::string()>& directoryLocation,
             const Validators* validators = nullptr) const;

  const std::string& directory() const { return directory_; }

  // Tests only: pretend the kernel lacks openat2 so the realpath() fallback is exercised.
  static void forceResolveFallbackForTesting(bool force);

 private:
  // An opened candidate file; `error` is an errno value when opening failed.
  struct Opened {
    UniqueFd fd;
    struct stat st {};
    int error = 0;
  };

  // Opens `relative` (no leading '/') beneath the mount root; never escapes it.
  Opened open(const std::string& relative, bool pathOnly) const;
  int openFallback(const std::string& relative, int flags) const;
  // Whether `relative` is a regular file beneath the root (what a confined open would find),
  // without opening it when it can be told more cheaply: the `.gz` sibling probe for Vary.
  bool isRegularFile(const std::string& relative) const;

  void serveFile(http::Exchange& exchange, Opened file, std::string_view typeName, bool gzip,
                 bool vary, const Validators* validators = nullptr) const;
  // Sends the body pieces (file ranges with sendfile, or read() when `sendfile off`), then
  // finishes the response.
  void sendBody(http::Exchange& exchange, std::vector<BodyChunk> body) const;
  void respondErrno(http::Exchange& exchange, int error, std::string_view relative) const;

  // Opens the directory on first use (and again after a failure); false: rootError_ says why.
  bool ensureRoot() const;

  std::string directory_;
  const MimeTypes& mimes_;
  Options options_;
  // Opened lazily by ensureRoot() (loop thread only, hence mutable in const lookups).
  mutable UniqueFd root_;           // O_PATH|O_DIRECTORY descriptor of directory_
  mutable int rootError_ = 0;       // errno of the last attempt to open the root
  mutable std::string rootReal_;    // realpath of the root, for the fallback resolver
  mutable bool useOpenat2_ = true;  // false: the kernel (or seccomp) refuses openat2
};

}  // namespace portico::staticfiles
