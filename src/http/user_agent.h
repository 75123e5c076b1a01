#pragma once

// The browsers nginx recognises in User-Agent (ngx_http_process_user_agent), for
// keepalive_disable. Pure functions; any thread.

#include <string_view>

namespace portico::http {

struct BrowserFlags {
  bool msie = false;    // "MSIE " and a version (not Opera)
  bool chrome = false;  // "Chrome/" (not MSIE, Opera or Gecko)
  bool msie6 = false;   // MSIE 4.x, 5.x, or 6.x without "SV1" (not Opera)
  bool safari = false;  // Safari on macOS (not MSIE, Opera, Gecko or Chrome)
};

BrowserFlags classifyUserAgent(std::string_view userAgent);

// nginx's ngx_http_update_location_config: whether keepalive_disable `mask` (the
// config::LocationSettings::kKeepaliveDisable* bits) ends keep-alive for this request.
bool keepaliveDisabled(unsigned mask, std::string_view userAgent, bool isPost);

// ngx_http_send_special_response with msie_padding on (its default): error pages (400 and up)
// to MSIE and Chrome get padding comments, so those browsers show them rather than their own.
bool wantsErrorPadding(std::string_view userAgent);

}  // namespace portico::http
