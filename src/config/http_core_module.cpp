#include "config/http_core_module.h"

#include <algorithm>

#include "config/conf_values.h"

namespace portico::config {
namespace {

void rootOrAlias(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  bool alias = call.name() == "alias";
  if (level.root || level.alias) {
    if (static_cast<bool>(level.alias) == alias) call.directiveError("is duplicate");
    call.emerg(quote(call.name()) + " directive is duplicate, " +
               quote(level.alias ? "alias" : "root") + " directive was specified earlier");
  }
  const Location::Match* match = call.locationMatch();
  if (alias && match && *match == Location::Match::kNamed) {
    call.emerg("the \"alias\" directive cannot be used inside the named location");
  }
  std::string value = call.arg(0);
  if (value.find("$document_root") != std::string::npos ||
      value.find("${document_root}") != std::string::npos) {
    call.emerg("the $document_root variable cannot be used in the " + quote(call.name()) +
               " directive");
  }
  // Variables are allowed as in nginx; their names are checked with the other templates
  // (http::validateTemplates, at -t and at startup) against directorySource.
  if (!alias && value.size() > 1 && value.back() == '/') value.pop_back();
  // A value that starts with a variable may expand to an absolute path: the prefix waits for
  // the request then (SiteRequest::filesFor, as nginx's ngx_get_full_name).
  if (value.empty() || value[0] != '$') value = call.fullName(value);
  level.directorySource = call.directive().source;
  if (alias) {
    // alias stands in a location only: the walker has told which.
    level.alias = value;
    level.aliasPrefix = call.locationPattern();
    level.aliasRegex = *match == Location::Match::kRegex || *match == Location::Match::kRegexCaseless;
  } else {
    level.root = value;
  }
}

void clientMaxBodySize(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  call.setSize(level.clientMaxBodySize, true);
}

void clientBodyBufferSize(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  call.setSize(level.clientBodyBufferSize, false);
}

void clientBodyTimeout(const DirectiveCall& call, HttpCoreLoad&, HttpCorePartial& level) {
  call.setMsec(level.clientBodyTimeout);
}

// `client_body_temp_path PATH [L1 [L2 [L3]]]` and the other modules' *_temp_path (nginx's
// ngx_conf_set_path_slot). portico writes its temporary files unlinked (O_TMPFILE), so the
// levels, checked as nginx checks them, shape no subdirectories; the directory is created at
// startup as nginx's ngx_create_paths does. Only the client body's is used: the others belong
// to modules portico does not have, whose files they would hold.
void tempPath(const DirectiveCall& call, HttpCoreLoad& load, HttpCorePartial& level) {
  const std::vector<std::string>& args = call.args();
  if (args.size() > 4) {
    call.emerg("invalid number of arguments in " + quote(call.name()) + " directive");
  }
  size_t length = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    auto depth = parseNginxNumber(args[i]);
    if (!depth || *depth == 0) call.directiveError("invalid value");
    length += static_cast<size_t>(*depth) + 1;
  }
  if (length > 10 + (args.size() - 1)) call.directiveError("invalid value");
  std::string path = call.fullName(args[0]);
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (call.name() == "client_body_temp_path") {
    if (level.clientBodyTempPath) call.directiveError("is duplicate");
    level.clientBodyTempPath = path;
  }
  std::vector<std::string>& paths = load.tempPaths;
  if (std::find(paths.begin(), paths.end(), path) == paths.end()) paths.push_back(path);
}

}  // namespace

const std::vector<ModuleLoadDirective<HttpCorePartial, HttpCoreLoad>>& httpCoreDirectives() {
  static const std::vector<ModuleLoadDirective<HttpCorePartial, HttpCoreLoad>> kDirectives = {
      {"root", kHsl | kLocationIf, Args::k1, &rootOrAlias},
      {"alias", kLocation, Args::k1, &rootOrAlias},
      {"client_max_body_size", kHsl, Args::k1, &clientMaxBodySize},
      {"client_body_buffer_size", kHsl, Args::k1, &clientBodyBufferSize},
      {"client_body_timeout", kHsl, Args::k1, &clientBodyTimeout},
      {"client_body_temp_path", kHsl, Args::k1More, &tempPath},
      {"proxy_temp_path", kHsl, Args::k1More, &tempPath},
      {"fastcgi_temp_path", kHsl, Args::k1More, &tempPath},
      {"uwsgi_temp_path", kHsl, Args::k1More, &tempPath},
      {"scgi_temp_path", kHsl, Args::k1More, &tempPath},
  };
  return kDirectives;
}

void mergeHttpCore(HttpCorePartial& c, const HttpCorePartial& p) {
  if (!c.root && !c.alias && (p.root || p.alias)) c.directorySource = p.directorySource;
  if (!c.root && !c.alias && p.alias) {
    // ngx_http_core_merge_loc_conf copies root and alias together: a nested location keeps
    // replacing the enclosing location's prefix with the alias.
    c.alias = p.alias;
    c.aliasPrefix = p.aliasPrefix;
    c.aliasRegex = p.aliasRegex;
  }
  inherit(c.root, p.root);
  inherit(c.clientMaxBodySize, p.clientMaxBodySize);
  inherit(c.clientBodyBufferSize, p.clientBodyBufferSize);
  inherit(c.clientBodyTimeout, p.clientBodyTimeout);
  inherit(c.clientBodyTempPath, p.clientBodyTempPath);
}

void finishHttpCore(const HttpCorePartial& p, const std::string& prefix, LocationSettings& s) {
  s.root = p.root ? *p.root : prefixedPath(prefix, "html");
  s.alias = p.alias;
  s.aliasPrefix = p.aliasPrefix;
  s.aliasRegex = p.aliasRegex;
  s.directorySource = p.directorySource;
  if (p.clientMaxBodySize) s.clientMaxBodySize = *p.clientMaxBodySize;
  if (p.clientBodyBufferSize) s.clientBodyBufferSize = *p.clientBodyBufferSize;
  if (p.clientBodyTimeout) s.clientBodyTimeoutSeconds = *p.clientBodyTimeout;
  if (p.clientBodyTempPath) s.clientBodyTempPath = *p.clientBodyTempPath;
}

void finishHttpCoreLoad(const HttpCoreLoad& load, HttpSite& site) { site.tempPaths = load.tempPaths; }

}  // namespace portico::config
