#pragma once

// nginx's variables ($uri, $host, $http_NAME, $1 ...) and the templates that hold them
// (`return 301 https://$host$request_uri`, add_header values, try_files entries, log_format).
// Pure: a template is compiled once at startup (an unknown variable is a startup error, as
// nginx's `unknown "x" variable`) and expanded per request from a VariableContext.

#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/site.h"
#include "core/regex.h"
#include "http/exchange.h"
#include "http/request.h"
#include "http/user_variables.h"

namespace portico::http {

// Everything a variable may read for one request; the content phase fills what it knows.
// Unset pointers and empty views expand to "" (nginx's "not found" variables).
struct VariableContext {
  const Request* request = nullptr;
  const ConnectionInfo* connection = nullptr;
  std::string_view uri;           // $uri, $document_uri: the current (possibly rewritten) URI
  std::string_view args;          // $args, $query_string: the current arguments
  std::string_view host;          // the validated, lower-cased Host ("" when absent)
  std::string_view serverName;    // $server_name: the server's first name
  std::string_view documentRoot;  // $document_root: root or alias of the location
  // $request_filename: the file `uri` maps to under the location's root or alias, computed
  // on use (null: the variable is empty).
  std::function<std::string(std::string_view uri)> requestFilename;
  std::string_view hostname;      // $hostname: the machine's name
  const Regex::Match* captures = nullptr;  // $1..$9 and named captures of the last regex
  int status = 0;                          // $status
  uint64_t bodyBytesSent = 0;              // $body_bytes_sent
  uint64_t bytesSent = 0;                  // $bytes_sent (head included)
  uint64_t startMicros = 0;                // wall clock of the request start, µs since epoch
  uint64_t durationMicros = 0;             // $request_time
  const std::vector<Header>* responseHeaders = nullptr;  // $sent_http_NAME
  const std::vector<Header>* responseTrailers = nullptr;  // $sent_trailer_NAME
  // `set` and `map` variables of this request (null: none exist, they expand to "").
  UserVariableStore* users = nullptr;
  bool warnUninitialized = true;  // uninitialized_variable_warn of the current location
  // The connection as accepted, before realip replaced the client ($realip_remote_addr/_port);
  // null: `connection` is it.
  const ConnectionInfo* realipConnection = nullptr;
  std::string_view limitReqStatus;   // $limit_req_status: PASSED, DELAYED, ... ("" not found)
  std::string_view limitConnStatus;  // $limit_conn_status: PASSED, REJECTED, REJECTED_DRY_RUN
  // What the upstream engine recorded ($proxy_host, $upstream_*); null: no upstream.
  const UpstreamVariables* upstream = nullptr;
  uint64_t limitRate = 0;  // $limit_rate: the rate `set $limit_rate` or X-Accel-Limit-Rate set
};

// How a log_format escapes variable values (literal text is never escaped).
enum class VariableEscape { kNone, kDefault, kJson };

// A string with $variables, compiled once; immutable, any thread.
class Template {
 public:
  Template() = default;
  // Compiles `text`; nullopt with `error` = `unknown "x" variable` (or a syntax message).
  // `captureNames` are named regex captures known to the configuration (nginx makes every
  // named capture of every regex a variable).
  // `users` are the `set`/`map` variables of the site (null: none).
  static std::optional<Template> compile(std::string_view text, std::string& error,
                                         const std::vector<std::string>& captureNames = {},
                                         const VariableRegistry* users = nullptr);
  // True for nginx's built-in variables named exactly ("uri", "args"; not $http_NAME): `set`
  // may not redefine them (nginx: `the duplicate "uri" variable`), except $args.
  static bool isBuiltin(std::string_view name);

  std::string expand(const VariableContext& context,
                     VariableEscape escape = VariableEscape::kNone) const;
  // True when the text holds no variable (expand() is then the text itself).
  bool constant() const { return constant_; }
  const std::string& source() const { return source_; }

 private:
  enum class Kind : uint8_t;
  struct Part {
    Kind kind;
    std::string text;  // literal text, or the NAME of $http_NAME / $arg_NAME / capture name
    int index = 0;     // $1..$9
  };
  std::vector<Part> parts_;
  std::string source_;
  bool constant_ = true;
};

// The conf builder's entry point: compiles a directive value, nullopt with nginx's message.
inline std::optional<Template> compileTemplate(std::string_view text, std::string& error,
                                               const std::vector<std::string>& captureNames = {},
                                               const VariableRegistry* users = nullptr) {
  return Template::compile(text, error, captureNames, users);
}

// The named captures of every regex of `site` (locations and server names): nginx makes each a
// variable usable anywhere.
std::vector<std::string> captureNamesOf(const config::HttpSite& site);

// Compiles every value of `site` that may hold variables (root, alias, return, try_files,
// add_header, error_page, log_format): false with `unknown "x" variable in FILE:LINE` for the
// first bad one. Pure; the master runs it before serving (and on reload), as nginx at startup.
bool validateTemplates(const config::HttpSite& site, std::string& error);

// nginx's Host validation (ngx_http_validate_host): lower-cased, the port and a trailing dot
// removed; nullopt for a host nginx answers with 400 ("..", '/', NUL, empty).
std::optional<std::string> validateHost(std::string_view host);

// The machine's host name (gethostname), cached.
const std::string& machineHostname();

}  // namespace portico::http
