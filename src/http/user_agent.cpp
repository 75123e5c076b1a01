#include "http/user_agent.h"

namespace portico::http {

UserAgentQuirks classifyUserAgent(std::string_view ua) {
  UserAgentQuirks q;
  size_t msie = ua.find("MSIE ");
  // As nginx: "MSIE " followed by at least 3 more bytes, then "N." with N the major version.
  bool isMsie = msie != std::string_view::npos && msie + 7 < ua.size();
  if (isMsie && ua[msie + 6] == '.') {
    char major = ua[msie + 5];
    if (major == '4' || major == '5') {
      q.msie6 = true;
    } else if (major == '6') {
      // Windows XP SP2's MSIE 6 ("SV1") handles keep-alive after POST.
      q.msie6 = ua.find("SV1", msie + 8) == std::string_view::npos;
    }
  }
  if (ua.find("Opera") != std::string_view::npos) {  // Opera pretends to be MSIE
    q.msie6 = false;
    return q;
  }
  if (isMsie) return q;
  if (ua.find("Gecko/") != std::string_view::npos) return q;
  if (ua.find("Chrome/") != std::string_view::npos) return q;
  if (ua.find("Safari/") != std::string_view::npos &&
      ua.find("Mac OS X") != std::string_view::npos) {
    q.safari = true;
  }
  return q;
}

}  // namespace portico::http
