#pragma once

// Turns an nginx-style configuration file into the typed model (Config + HttpSite): a table of
// directives (name, contexts, argument rule, handler), nginx's merge rules between http, server
// and nested locations, and nginx's messages for everything wrong.

#include <string>
#include <vector>

#include "config/conf_loader.h"
#include "config/config.h"

namespace portico::config {

// What a load needs besides the files themselves.
struct ConfLoadOptions {
  std::string confFile;          // absolute path of the main file
  std::string prefix;            // absolute, ending in '/': relative root, alias, logs, pid
  std::string globalDirectives;  // -g "DIRECTIVES": main-context text read before the file
  std::string errorLog;          // -e: the error log when the file has no error_log ("-" stderr)
};

// The outcome of one load. `messages` holds nginx-shaped lines without the program name:
// "[warn] duplicate MIME type \"text/html\" in /etc/x.conf:3", and when !ok the last one is the
// error ("[emerg] unknown directive \"x\" in /etc/x.conf:12").
struct ConfLoadResult {
  bool ok = false;
  std::vector<std::string> messages;
  Config config;
};

// Reads options.confFile (and what it includes) through `loader` and builds the configuration.
// Regexes (location ~, server_name ~, gzip_disable) are compiled to validate them; listen host
// names are resolved (as nginx does at load time). Never throws.
ConfLoadResult loadConf(const ConfLoadOptions& options, ConfLoader& loader);

// The directives portico knows to be nginx's but does not implement yet ("proxy_pass",
// "ssl_certificate", ...): they are rejected with "is not supported by portico yet".
bool isUnsupportedNginxDirective(const std::string& name);
// What portico offers instead of such a directive, for the refusal ("" when nothing is said).
std::string nginxDirectiveAlternative(const std::string& name);

}  // namespace portico::config
