#pragma once

// portico's own module: the wsgi_* directives of a location (wsgi_app and its companions),
// what the location wrote, the check at the location's end, and the location's WsgiSpec. Never
// inherited: an app belongs to the location that names it (as nginx's proxy_pass).

#include <optional>
#include <string>
#include <vector>

#include "config/conf_module.h"
#include "config/site.h"

namespace portico::config {

// What one location wrote.
struct WsgiPartial {
  std::optional<WsgiSpec> wsgi;  // holds the companions too; wsgi->app empty until wsgi_app
  bool hasApp = false;
  bool threadsSet = false;
  std::optional<SourceRef> firstCompanion;
  std::string firstCompanionName;
};

const std::vector<ModuleDirective<WsgiPartial>>& wsgiDirectives();

// At the location's closing brace: a companion without wsgi_app is an error. Throws ConfFailure.
void checkWsgi(const WsgiPartial& level);

// The location's app, if it names one; its request bodies are spilled to `tempPath`.
void finishWsgi(const WsgiPartial& level, const std::string& tempPath, LocationSettings& settings);

}  // namespace portico::config
