#pragma once

#include "config/cli.h"
#include "config/config.h"

namespace portico::config {

// Writes the gunicorn-style flags into the HTTP model (config.site), as the equivalent nginx
// configuration would read: one server listening on every --bind (127.0.0.1:8000 by default,
// --backlog), `location PREFIX { alias DIR/; gzip_static on; gzip_vary on; }` per --static,
// `location MOUNT { wsgi_app APP; }` for the app, the flags' body limit, timeouts and head
// limits, and `location / { return 404; }` when no app answers "/" (nothing else is served);
// what nginx cannot say (gunicorn's access log, --no-server-header, the --static directories'
// existence) as the site's own settings. Replaces config.site; parseCommandLine calls it.
void siteFromFlags(const GunicornFlags& flags, Config& config);

// "127.0.0.1, 10.0.0.1" → {"127.0.0.1", "10.0.0.1"} (gunicorn's validate_string_to_list, for
// --forwarded-allow-ips and --proxy-allow-from).
std::vector<std::string> splitAllowIps(std::string_view text);

}  // namespace portico::config
