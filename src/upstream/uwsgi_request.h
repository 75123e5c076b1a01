#pragma once

// The request half of uwsgi_pass's codec (nginx's ngx_http_uwsgi_create_request, 1.22): one
// uwsgi packet — modifier1, the vars' size (u16 LE), modifier2, then the uwsgi_param vars in
// their order and the client's request headers as HTTP_* vars — followed by the request body,
// which the engine sends as it sends proxy_pass's. The response is HTTP (uWSGI writes a status
// line and headers), read by the engine's ResponseParser as for proxy_pass.
//
// nginx's rules kept here: a header's var is "HTTP_" + its name upper-cased with '-' as '_';
// each header goes on its own (duplicates too, as nginx 1.22); a uwsgi_param named HTTP_X
// replaces the header that maps to X (and with an empty value sends nothing: it removes it);
// an if_not_empty param whose value expands empty is not sent. Which header names arrive at all
// is the request parser's rule (ignore_invalid_headers, underscores_in_headers: by default
// "X_Forwarded_For" never gets here to pose as X-Forwarded-For), as nginx's uwsgi module
// passes every header its parser kept. Pure: no I/O.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config/site.h"
#include "http/request.h"
#include "http/variables.h"

namespace portico::upstream {

// One var of the packet, already expanded.
struct UwsgiVar {
  std::string key;
  std::string value;
};

// "HTTP_" + the header name upper-cased, '-' → '_' (nginx's loop over the key).
std::string uwsgiHeaderKey(std::string_view headerName);

// The packet: `params` in order, then each of `headers` (null: uwsgi_pass_request_headers
// off) whose HTTP_ key is not replaced by a param (`replaced`: lower-case names after "HTTP_",
// as nginx's params hash). False with `error` = nginx's "uwsgi request is too big: N" when the
// vars do not fit the u16 size (or a key/value is longer than 65535 bytes).
bool buildUwsgiPacket(const std::vector<UwsgiVar>& params,
                      const std::vector<http::Header>* headers,
                      const std::vector<std::string>& replaced, uint8_t modifier1,
                      uint8_t modifier2, std::string& out, std::string& error);

// A location's uwsgi_param list, compiled once; owned by its ProxyHandler; loop thread.
class UwsgiParams {
 public:
  // Compiles the values (nginx's "unknown variable" messages in `error` otherwise).
  bool compile(const std::vector<config::UwsgiParam>& params,
               const std::vector<std::string>& captureNames, const http::VariableRegistry* users,
               std::string& error);
  // One request's packet: `expand` gives a value's text for this request.
  bool build(const std::function<std::string(const http::Template&)>& expand,
             const std::vector<http::Header>* headers, uint8_t modifier1, uint8_t modifier2,
             std::string& out, std::string& error) const;

 private:
  struct Param {
    std::string name;
    http::Template value;
    bool ifNotEmpty = false;
  };
  std::vector<Param> params_;          // the params sent (HTTP_ ones with an empty source left out)
  std::vector<std::string> replaced_;  // the header names the HTTP_ params replace
};

}  // namespace portico::upstream
