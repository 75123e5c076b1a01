#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pipeline/content.h"
#include "python/wsgi_runtime.h"

namespace portico::process {

// The wsgi_app content module, registered with the pipeline by the Server (the composition
// root): claims the locations with `wsgi_app` and gives each a handler that forwards to the
// app's WsgiHandler once the app is imported (after the privilege drop; the site is built
// before). Owned by the Server; event-loop thread.
class WsgiContentModule : public pipeline::ContentModule {
 public:
  bool claims(const config::LocationSettings& settings) const override;
  std::unique_ptr<pipeline::ContentHandler> create(const config::LocationSettings& settings,
                                                   std::string& error) override;
  // As nginx's uwsgi_pass: "/app" gets a 301 to a `location /app/ { wsgi_app ...; }`.
  bool autoRedirect() const override { return true; }
  // Points every handler made so far at its app's handler in `runtime` (null: none loaded);
  // false with nginx-style `error` when an app is missing.
  bool resolve(python::WsgiRuntime* runtime, std::string& error);

 private:
  class Forwarder;
  std::vector<Forwarder*> made_;  // owned by the SiteHandler, which the Server outlives with us
};

}  // namespace portico::process
