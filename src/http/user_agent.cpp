#include "http/user_agent.h"

#include "config/site.h"

namespace portico::http {

BrowserFlags classifyUserAgent(std::string_view ua) {
  BrowserFlags flags;
  bool& msie = flags.msie;
  size_t at = ua.find("MSIE ");
  // nginx wants a byte after "MSIE N." (msie + 7 < end).
  if (at != std::string_view::npos && at + 7 < ua.size()) {
    msie = true;
    if (ua[at + 6] == '.') {
      char major = ua[at + 5];
      if (major == '4' || major == '5') {
        flags.msie6 = true;
      } else if (major == '6') {
        flags.msie6 = ua.find("SV1", at + 8) == std::string_view::npos;
      }
    }
  }
  bool opera = ua.find("Opera") != std::string_view::npos;
  if (opera) {
    msie = false;
    flags.msie6 = false;
  }
  if (!msie && !opera && ua.find("Gecko/") == std::string_view::npos) {
    flags.chrome = ua.find("Chrome/") != std::string_view::npos;
    flags.safari = !flags.chrome && ua.find("Safari/") != std::string_view::npos &&
                   ua.find("Mac OS X") != std::string_view::npos;
  }
  return flags;
}

bool keepaliveDisabled(unsigned mask, std::string_view userAgent, bool isPost) {
  using config::LocationSettings;
  if (userAgent.empty()) return false;
  BrowserFlags flags = classifyUserAgent(userAgent);
  if (flags.msie6 && isPost && (mask & LocationSettings::kKeepaliveDisableMsie6)) return true;
  return flags.safari && (mask & LocationSettings::kKeepaliveDisableSafari);
}

bool wantsErrorPadding(std::string_view userAgent) {
  if (userAgent.empty()) return false;
  BrowserFlags flags = classifyUserAgent(userAgent);
  return flags.msie || flags.chrome;
}

}  // namespace portico::http
