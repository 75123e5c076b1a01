#pragma once

#include "config/config.h"

namespace portico::config {

// Turns the gunicorn-style flags into the HTTP model (config.site), as the equivalent nginx
// configuration would read: one server listening on every --bind (127.0.0.1:8000 by default,
// --backlog), `location PREFIX { alias DIR/; gzip_static on; gzip_vary on; }` per --static,
// `location MOUNT { wsgi_app APP; }` for the app, the flags' body limit and timeouts, and
// `location / { return 404; }` when no app answers "/" (nothing else is served). Replaces
// config.site; called once the command line is read (and again on reload).
void siteFromFlags(Config& config);

}  // namespace portico::config
