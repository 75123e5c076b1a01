#include "http/response.h"

#include <cstring>

namespace portico::http {

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 511: return "Network Authentication Required";
    default: return "Unknown";
  }
}

namespace {

// nginx's page titles where they differ from the RFC 9110 reason phrases (its status lines
// differ too, but clients read those less than the pages people see).
std::string_view nginxPageTitle(int status) {
  switch (status) {
    case 401: return "Authorization Required";
    case 405: return "Not Allowed";
    case 408: return "Request Time-out";
    case 413: return "Request Entity Too Large";
    case 414: return "Request-URI Too Large";
    case 416: return "Requested Range Not Satisfiable";
    case 503: return "Service Temporarily Unavailable";
    case 504: return "Gateway Time-out";
    default: return reasonPhrase(status);
  }
}

}  // namespace

std::string errorPageBody(int status, std::string_view signature, bool padding) {
  // nginx's own 400s (494-497) say which: "400 Bad Request" and the reason under it.
  std::string_view reason;
  switch (status) {
    case 494: reason = "Request Header Or Cookie Too Large"; break;
    case 495: reason = "The SSL certificate error"; break;
    case 496: reason = "No required SSL certificate was sent"; break;
    case 497: reason = "The plain HTTP request was sent to HTTPS port"; break;
    default: break;
  }
  std::string title = std::to_string(reason.empty() ? status : 400);
  title += ' ';
  title += reason.empty() ? nginxPageTitle(status) : reason;
  std::string body;
  body.reserve(128 + 2 * title.size());
  body += "<html>\r\n<head><title>";
  body += title;
  body += "</title></head>\r\n<body>\r\n<center><h1>";
  body += reason.empty() ? title : std::string("400 Bad Request");
  body += "</h1></center>\r\n";
  if (!reason.empty()) {
    body += "<center>";
    body += reason;
    body += "</center>\r\n";
  }
  body += "<hr><center>";
  body += signature;
  body += "</center>\r\n</body>\r\n</html>\r\n";
  if (padding) {
    for (int i = 0; i < 6; ++i) {
      body += "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n";
    }
  }
  return body;
}

void appendEscapedPath(std::string& out, std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : path) {
    unsigned char c = static_cast<unsigned char>(ch);
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 std::strchr("-._~!$&'()*+,;=:@/", c) != nullptr;
    if (plain && c != 0) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
}

}  // namespace portico::http
