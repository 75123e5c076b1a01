#pragma once

// The part of nginx's ngx_http_core_module that is a module of its own here: where files come
// from (root, alias) and where request bodies go (client_max_body_size, client_body_buffer_size,
// client_body_timeout, client_body_temp_path, and the other modules' *_temp_path, which nginx
// creates at start as it does the client body's). Its load context holds the temporary
// directories every *_temp_path named, which the master creates. The rest of http_core (listen,
// server_name, location, types, keep-alive, error_page, try_files, ...) is still the walker's
// (conf_builder.cpp).

#include <optional>
#include <string>
#include <vector>

#include "config/conf_module.h"
#include "config/site.h"

namespace portico::config {

// The load's temporary directories, in the order first named; the walker holds one per load.
struct HttpCoreLoad {
  std::vector<std::string> tempPaths;
};

// What one level wrote; unset inherits from the enclosing level.
struct HttpCorePartial {
  std::optional<std::string> root;
  std::optional<std::string> alias;  // inherited only by levels that set neither root nor alias
  std::string aliasPrefix;           // the pattern of the location that wrote the alias
  bool aliasRegex = false;           // ... and whether it was a regex location
  SourceRef directorySource;         // where this level's root/alias was written
  std::optional<uint64_t> clientMaxBodySize;
  std::optional<uint64_t> clientBodyBufferSize;
  std::optional<double> clientBodyTimeout;
  std::optional<std::string> clientBodyTempPath;
};

const std::vector<ModuleLoadDirective<HttpCorePartial, HttpCoreLoad>>& httpCoreDirectives();

void mergeHttpCore(HttpCorePartial& child, const HttpCorePartial& parent);

// `prefix` is nginx's -p: a level without root serves the prefix's "html".
void finishHttpCore(const HttpCorePartial& level, const std::string& prefix,
                    LocationSettings& settings);

void finishHttpCoreLoad(const HttpCoreLoad& load, HttpSite& site);

}  // namespace portico::config
