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
#include "http/mime_types.h"
#include "pipeline/content.h"

namespace portico::staticfiles {

// Serves the files beneath one root or alias directory as ngx_http_static_module (with
// gzip_static): GET/HEAD, conditional requests, byte ranges, precompressed ".gz" siblings.
// Every lookup is confined to the directory by openat2(RESOLVE_BENEATH). The pipeline maps URIs
// to paths beneath it (index, try_files, alias) and calls serve()/probe(). Made per location by
// the composition root's static content module (or per request for a root with variables);
// event-loop thread only.
class StaticHandler : public pipeline::DocumentRoot {
 public:
  using Options = pipeline::FileOptions;
  using Kind = pipeline::FileKind;
  using Validators = pipeline::FileValidators;

  // A handler for a location's root or alias `directory` (absolute); `mimes` must outlive it.
  // A directory that cannot be opened is not an error by itself (a location may never serve
  // files from it): as nginx, each request that reaches it gets 404 with its open() line in
  // the error log (log_not_found), or 403 when access was denied.
  StaticHandler(std::string directory, const http::MimeTypes& mimes, Options options);

  // What a path beneath the directory is, for try_files and index (nginx's open_file tests).
  Kind probe(std::string_view relative) const override;

  // Serves the file at `relative` (no leading '/'), as ngx_http_static_module: 405 for other
  // methods than GET/HEAD (POST once the file is found), a directory → 301 to
  // `directoryLocation()`, errors as nginx (404, 403). `relative` must already be free of ".."
  // (it comes from a normalized URI).
  void serve(http::Exchange& exchange, std::string_view relative,
             const std::function<std::string()>& directoryLocation,
             const Validators* validators) const override;

  const std::string& directory() const override { return directory_; }

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
  const http::MimeTypes& mimes_;
  Options options_;
  // Opened lazily by ensureRoot() (loop thread only, hence mutable in const lookups).
  mutable UniqueFd root_;           // O_PATH|O_DIRECTORY descriptor of directory_
  mutable int rootError_ = 0;       // errno of the last attempt to open the root
  mutable std::string rootReal_;    // realpath of the root, for the fallback resolver
  mutable bool useOpenat2_ = true;  // false: the kernel (or seccomp) refuses openat2
};

// The static module's registration with the pipeline: a StaticHandler per root or alias
// directory (the files every location without a content handler serves).
pipeline::DocumentRootFactory documentRoots();

}  // namespace portico::staticfiles
