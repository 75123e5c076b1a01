#pragma once

// nginx's post-read/preaccess realip handler and its access phase (the access and auth_basic
// modules under `satisfy`), as functions of a location's settings and the request: the site
// handler calls them and acts on the verdict (answer, delay, go on). Loop thread; the user file
// is read per request as nginx does (no cache), so a changed file applies at once.

#include <cstdint>
#include <optional>
#include <string>

#include "config/access_conf.h"
#include "http/exchange.h"
#include "http/request.h"
#include "http/variables.h"

namespace portico::pipeline {

// The compiled auth_basic values of one location (realm and user file may hold variables).
struct AuthBasicRuntime {
  std::optional<http::Template> realm;
  std::optional<http::Template> userFile;
};

// The client address after realip for `settings` (set_real_ip_from, real_ip_header,
// real_ip_recursive), or nullopt when realip does not apply.
std::optional<http::ConnectionInfo> realClient(const config::AccessSettings& settings,
                                               const http::Request& request,
                                               const http::ConnectionInfo& client);

// What the access phase decided: go on (status 0), or answer `status`; a 401 carries its
// `WWW-Authenticate` value and nginx's auth_delay.
struct AccessVerdict {
  int status = 0;
  std::string wwwAuthenticate;
  uint64_t delayMs = 0;
};

// Runs allow/deny then auth_basic with satisfy all|any, writing nginx's error-log lines.
// `client` is the address after realip; a user file that expands to a relative path is beneath
// the settings' conf prefix.
AccessVerdict runAccessPhase(const config::AccessSettings& settings, const AuthBasicRuntime& auth,
                             const http::ConnectionInfo& client, const http::Request& request,
                             const http::VariableContext& variables);

}  // namespace portico::pipeline
