#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/log.h"
#include "event/event_loop.h"
#include "http/gzip_filter.h"
#include "http/mime_types.h"
#include "http/rewrite.h"
#include "http/router.h"
#include "http/site_map.h"
#include "http/variables.h"
#include "pipeline/access_log_targets.h"
#include "pipeline/access_phase.h"
#include "pipeline/content.h"
#include "pipeline/limit_zones.h"

namespace portico::pipeline {

// A location's (or a server level's) runtime: its settings with the templates compiled, its
// content (the app's handler, or the files of its root/alias) and its connection limits.
struct LocationRuntime {
  const config::LocationSettings* settings = nullptr;
  const http::LocationNode* node = nullptr;  // null: the server level itself
  std::string prefix;                        // the location's pattern (alias replaces it)
  bool regex = false;                        // a ~ / ~* location (alias is then the whole path)
  const http::MimeTypes* mimes = nullptr;
  // The registered content handler (an app, stub_status, ...); null: the files of its
  // root/alias (index, autoindex, static).
  ContentHandler* content = nullptr;
  int metricsIndex = -1;  // this location's entry in the per-location metrics (metricLocations())
  // `limit_except`: the runtime of the block's implicit location, for the methods it limits
  // (settings->limitExceptAllowed lets the others through); null: none.
  const LocationRuntime* limitExcept = nullptr;
  // root or alias: constant → one handler; with variables → a handler per request.
  std::optional<http::Template> directory;
  bool alias = false;
  std::string aliasPrefix;  // what the alias replaces (an enclosing location's, when inherited)
  bool aliasRegex = false;  // the alias names the whole file (it was written in a regex location)
  DocumentRoot* files = nullptr;  // for a constant directory
  FileOptions fileOptions;
  std::optional<http::GzipPolicy> gzip;       // `gzip on`: responses go through a GzipExchange
  // The rewrite module's program of this level (rewrite, return, set, break, if).
  std::optional<http::RewriteProgram> rewrites;
  bool rewriteLog = false;
  bool warnUninitialized = true;
  std::vector<http::Template> tryFiles;
  std::vector<http::Template> index;  // the index directive's names ($variables expanded)
  std::optional<http::Template> tryFallback;
  std::vector<std::pair<const config::AddHeader*, http::Template>> addHeaders;
  std::vector<std::pair<const config::AddHeader*, http::Template>> addTrailers;
  std::optional<http::Template> limitRate, limitRateAfter;  // limit_rate, limit_rate_after
  std::optional<http::Template> expiresValue;  // `expires` with variables
  std::vector<std::pair<http::Template, const config::ErrorPage*>> errorPages;
  struct Log {
    LogFile* file = nullptr;             // null when the path has variables
    const http::Template* format = nullptr;
    http::VariableEscape escape = http::VariableEscape::kDefault;
    std::optional<http::Template> path;       // a path with variables, expanded per line
    std::optional<http::Template> condition;  // if=
    int gzipLevel = 0;                        // gzip[=LEVEL]: each line one gzip member
    LogFileCache* cache = nullptr;            // open_log_file_cache for a variable path
    SyslogSender* syslog = nullptr;           // syslog:... instead of a file
  };
  std::vector<Log> accessLogs;
  std::vector<ErrorLogTarget> errorLogs;  // error_log of the level; empty: the main log
  bool accessLogOff = false;  // `access_log off;` (the flags' log is process-level)
  http::RouteLimits limits;
  AuthBasicRuntime auth;  // auth_basic realm and user file, compiled
  const LocationLimits* limit = nullptr;  // limit_req / limit_conn (null: none)
};

// nginx's request pipeline: turns the HTTP model into responses as nginx's phases do. Picks the
// server (by the connection's address and Host), runs the server's rewrite directives, matches
// the location, runs its rewrite directives (again after `last`), realip, limit_req/limit_conn,
// access, try_files, then the content: the location's registered content handler, or the
// files beneath its root/alias (index, autoindex, static); with internal redirects (try_files,
// index, error_page), output filters (add_header, expires, gzip) and the log phase. Built once
// per worker by process::Server, which registers the content modules; loop thread only.
class SiteHandler : public http::RequestRouter {
 public:
  // `loop` runs the on-the-fly gzip filter's deferred work; null (unit tests) when no
  // location has `gzip on`.
  SiteHandler(const config::Config& config, const http::SiteMap& map,
              event::EventLoop* loop = nullptr);
  ~SiteHandler() override;

  // Compiles every level and makes each location's content with `content`'s modules (the
  // first that claims it) or its files with `content.files`.
  bool build(const ContentModules& content, std::string& error);
  // The group a listener opened for `key` serves (see SiteMap::groupFor).
  const http::ServerGroup* groupForKey(const std::string& key) const { return map_.groupByKey(key); }

  std::unique_ptr<http::RequestRoute> route(const http::Request& request,
                                            const http::ConnectionInfo& connection) const override;

  // nginx logs a request refused while its head was read with the access log of the default
  // server of the address:port it came to (its server level: no location was matched).
  void logUnrouted(const http::AccessLogEntry& entry) const override;
  void filterUnrouted(http::ResponseHead& head, const http::Request& failedHead,
                      const http::ConnectionInfo& connection) const override;

  bool reopenLogs(std::string& error);
  // Writes the access-log lines of `rt` for a finished request (if=, gzip, variable paths).
  void writeAccessLogs(const LocationRuntime& rt, const http::VariableContext& vars) const;

  // Internals for SiteRequest.
  const LocationRuntime& runtimeOf(const http::ServerNode& server,
                                   const http::LocationNode* node) const;
  const http::SiteMap& map() const { return map_; }
  // The labels of the per-location metrics, by LocationRuntime::metricsIndex: every location
  // (by LocationNode::id), then each server's own level (location "").
  struct MetricLocation {
    std::string server;
    std::string location;
  };
  const std::vector<MetricLocation>& metricLocations() const { return metricLocations_; }
  const std::string& prefix() const { return config_.prefix; }
  // SiteMap::groupFor, remembered for the last local address asked about (a worker's
  // connections mostly share one listener, and the lookup builds strings).
  const http::ServerGroup* groupFor(const http::ConnectionInfo& connection) const;
  // The server a request refused before routing belongs to: the one a complete Host line
  // chose, else the address's default server (null: none).
  const http::ServerNode* unroutedServer(const http::Request& failedHead,
                                         const http::ConnectionInfo& connection) const;
  event::EventLoop* loop() const { return loop_; }
  // The runtime of an `if` block's implicit location (its settings are in the model).
  const LocationRuntime& ifRuntime(const config::LocationSettings* settings) const {
    return *ifRuntimes_.at(settings);
  }
  const http::VariableRegistry& userVariables() const { return userVariables_; }
  const std::string& serverHeader(bool tokens) const { return tokens ? tokensOn_ : tokensOff_; }
  const http::MimeTypes& mimesFor(const config::LocationSettings& settings);
  // The files beneath `directory` for a location whose root or alias has variables (made per
  // request, as nginx maps the URI per request).
  std::unique_ptr<DocumentRoot> makeFiles(std::string directory, const LocationRuntime& rt) const;

 private:
  bool compile(LocationRuntime& rt, const config::LocationSettings& settings,
               const http::LocationNode* node, std::string& error);
  // The content handler of a location's settings: the first module that claims them makes
  // it; null (no error) when none does.
  ContentHandler* makeContent(const config::LocationSettings& settings,
                              const http::LocationNode* node, std::string& error);
  bool claimed(const config::LocationSettings& settings) const;
  // The runtime of an implicit location (`if`, `limit_except`) of `parent`: its own pass, or
  // the parent's content.
  bool implicitLocation(LocationRuntime& rt, const config::LocationSettings& settings,
                        const LocationRuntime& parent, const http::LocationNode* node,
                        std::string& error);
  LogFile* logFile(const std::string& path, std::string& error);

  const config::Config& config_;
  const http::SiteMap& map_;
  std::vector<MetricLocation> metricLocations_;
  event::EventLoop* loop_;
  std::vector<LocationRuntime> locations_;  // by LocationNode::id
  std::vector<LocationRuntime> servers_;    // by ServerNode::index
  // The implicit locations of `if` and `limit_except` blocks, by their settings in the model.
  std::map<const config::LocationSettings*, std::unique_ptr<LocationRuntime>> ifRuntimes_;
  http::VariableRegistry userVariables_;  // `set` and `map` variables
  std::vector<std::unique_ptr<http::VariableProducer>> maps_;
  std::vector<ContentModule*> modules_;  // registered by the composition root, in order
  DocumentRootFactory filesFactory_;
  std::vector<std::unique_ptr<ContentHandler>> contents_;  // one per location with a content
  std::map<std::string, std::unique_ptr<http::MimeTypes>> mimes_;
  std::map<std::string, std::unique_ptr<DocumentRoot>> files_;
  std::vector<std::unique_ptr<http::GzipPolicy>> policies_;  // per location with gzip/gzip_static
  std::map<std::string, std::unique_ptr<LogFile>> logFiles_;
  // open_log_file_cache, one per directive (file:line), shared by the levels inheriting it.
  std::map<std::string, std::unique_ptr<LogFileCache>> logCaches_;
  std::vector<std::unique_ptr<SyslogSender>> syslogs_;  // one per syslog access_log
  std::map<std::string, std::pair<http::Template, http::VariableEscape>> logFormats_;
  std::vector<std::string> captureNames_;
  LimitCompiler limitCompiler_;
  struct GroupCache {
    bool valid = false;
    bool isUnix = false;
    uint16_t localPort = 0;
    std::string localAddress;
    const http::ServerGroup* group = nullptr;
  };
  mutable GroupCache groupCache_;  // loop thread only
  std::string tokensOn_;
  std::string tokensOff_ = "portico";
};

// The 301 Location for a redirect nginx builds itself (directory, auto_redirect, a relative
// `return` URL): absolute per absolute_redirect / server_name_in_redirect / port_in_redirect.
// `host` is the validated Host ("" when absent). Pure.
std::string buildRedirectLocation(std::string_view path, const config::LocationSettings& settings,
                                  std::string_view host, std::string_view serverName,
                                  const http::ConnectionInfo& connection);

}  // namespace portico::pipeline
