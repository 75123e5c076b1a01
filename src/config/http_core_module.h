#pragma once

// nginx's ngx_http_core_module, what a location's settings hold: where files come from (root,
// alias, try_files, default_type), where request bodies go (client_max_body_size,
// client_body_buffer_size, client_body_timeout, client_body_temp_path, and the other modules'
// *_temp_path, which nginx creates at start as it does the client body's), keep-alive and
// sending (keepalive_*, send_timeout, sendfile, tcp_*), redirects and responses
// (absolute_redirect, server_name_in_redirect, port_in_redirect, server_tokens, error_page,
// log_not_found, if_modified_since), and the resolver a *_pass with variables uses
// (resolver, resolver_timeout); and a server's header reading (client_header_timeout,
// client_header_buffer_size, large_client_header_buffers, connection_pool_size,
// request_pool_size, merge_slashes: http and server, finished into the VirtualServer). Its load
// context holds the temporary directories every *_temp_path named, which the master creates.
// What stays with the walker (conf_builder.cpp): the blocks (server, location, types), listen
// and server_name, error_log, types_hash_max_size and server_names_hash_bucket_size.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/conf_module.h"
#include "config/site.h"

namespace portico::config {

// The load's temporary directories, in the order first named; the walker holds one per load.
struct HttpCoreLoad {
  std::vector<std::string> tempPaths;
  std::vector<ResolverSpec> resolvers;  // every `resolver` line, in file order
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
  std::optional<LocationSettings::BodyInFile> clientBodyInFileOnly;
  std::optional<bool> clientBodyInSingleBuffer;
  std::optional<std::string> limitRate, limitRateAfter;
  std::optional<TryFiles> tryFiles;  // never inherited
  std::optional<std::vector<ErrorPage>> errorPages;
  std::optional<std::string> defaultType;
  std::optional<bool> sendfile, tcpNopush, tcpNodelay, chunkedTransferEncoding;
  std::optional<std::pair<double, std::optional<double>>> keepaliveTimeout;
  std::optional<uint64_t> keepaliveRequests;
  std::optional<unsigned> keepaliveDisable;  // LocationSettings::kKeepaliveDisable* bits
  std::optional<double> keepaliveTime, sendTimeout;
  std::optional<bool> serverTokens, absoluteRedirect, serverNameInRedirect, portInRedirect;
  std::optional<bool> logNotFound;
  std::optional<LocationSettings::IfModifiedSince> ifModifiedSince;
  // http and server only: the server's header reading
  std::optional<double> clientHeaderTimeout;
  std::optional<uint64_t> clientHeaderBufferSize, connectionPoolSize, requestPoolSize;
  std::optional<std::pair<size_t, size_t>> largeHeaderBuffers;
  std::optional<bool> mergeSlashes;
  std::optional<bool> ignoreInvalidHeaders;
  std::optional<bool> underscoresInHeaders;
  // proxy_temp_path (read with the other *_temp_path here; it lands in ProxySettings::tempPath)
  std::optional<std::string> proxyTempPath;
  std::optional<bool> internal;  // `internal` (location)
  std::optional<int> resolver;   // an index into HttpCoreLoad::resolvers
  std::optional<double> resolverTimeout;
};

const std::vector<ModuleLoadDirective<HttpCorePartial, HttpCoreLoad>>& httpCoreDirectives();

void mergeHttpCore(HttpCorePartial& child, const HttpCorePartial& parent);

// `prefix` is nginx's -p: a level without root serves the prefix's "html".
void finishHttpCore(const HttpCorePartial& level, const std::string& prefix,
                    LocationSettings& settings);

// The server's header reading (the walker checks the buffers against the pool size after).
void finishHttpCoreServer(const HttpCorePartial& level, VirtualServer& server);

void finishHttpCoreLoad(const HttpCoreLoad& load, HttpSite& site);

}  // namespace portico::config
