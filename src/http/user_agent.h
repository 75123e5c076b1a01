#pragma once

// nginx's reading of User-Agent (ngx_http_process_user_agent) for the browser quirks its
// core module acts on: keepalive_disable msie6 (old MSIE and POST) and safari. Pure.

#include <string_view>

namespace portico::http {

struct UserAgentQuirks {
  bool msie6 = false;   // MSIE 4, 5, or 6 without "SV1"
  bool safari = false;  // "Safari/" and "Mac OS X", not Gecko/ or Chrome/
};

UserAgentQuirks classifyUserAgent(std::string_view userAgent);

}  // namespace portico::http
