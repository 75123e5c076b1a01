#pragma once

// nginx's autoindex module: a directory listing in html, xml, json or jsonp, byte for byte as
// ngx_http_autoindex_module writes it (directories first, then byte order of the names; names
// starting with '.' left out). Rendering is pure (unit-tested); readDirectory does the I/O.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/access_conf.h"

namespace portico::http {

struct AutoindexEntry {
  std::string name;
  bool dir = false;
  bool file = false;
  int64_t mtime = 0;  // seconds since the epoch
  int64_t size = 0;
};

// nginx's order: directories first, then strcmp of the names.
void sortAutoindexEntries(std::vector<AutoindexEntry>& entries);

// `uri` is the request's (decoded) URI; `gmtoffSeconds` is added to mtimes with
// autoindex_localtime on.
std::string renderAutoindexHtml(std::string_view uri, const std::vector<AutoindexEntry>& entries,
                                bool exactSize, int64_t gmtoffSeconds);
std::string renderAutoindexXml(const std::vector<AutoindexEntry>& entries);
// `callback`: the jsonp function name, or null for plain json.
std::string renderAutoindexJson(const std::vector<AutoindexEntry>& entries,
                                const std::string* callback);

// The `callback` argument of a jsonp listing: "" when absent (nginx then answers json), nullopt
// when too long (> 128) or not [A-Za-z0-9_.] (nginx: 400, with `error` for the info log line).
std::optional<std::string> jsonpCallback(std::string_view args, std::string& error);

// The Content-Type of a format (xml carries nginx's charset).
std::string_view autoindexContentType(config::AutoindexFormat format);

// Reads `path` (a directory): 0 with the entries (each stat()ed, a dangling link lstat()ed),
// else the errno of opendir; unreadable entries are skipped (logged as nginx does).
int readAutoindexDirectory(const std::string& path, std::vector<AutoindexEntry>& entries);

}  // namespace portico::http
