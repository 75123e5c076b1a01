#include "http/autoindex.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "core/log.h"
#include "http/http_date.h"

namespace portico::http {
namespace {

constexpr size_t kNameLen = 50;  // NGX_HTTP_AUTOINDEX_NAME_LEN

// ngx_escape_html
std::string escapeHtml(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

// ngx_escape_uri with NGX_ESCAPE_URI_COMPONENT: all but ALPHA, DIGIT, "-", ".", "_", "~".
std::string escapeUriComponent(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '.' || c == '_' || c == '~';
    if (plain) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// ngx_escape_json
std::string escapeJson(std::string_view s) {
  std::string out;
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c > 0x1f) {
      if (c == '\\' || c == '"') out.push_back('\\');
      out.push_back(ch);
      continue;
    }
    out.push_back('\\');
    switch (c) {
      case '\n': out.push_back('n'); break;
      case '\r': out.push_back('r'); break;
      case '\t': out.push_back('t'); break;
      case '\b': out.push_back('b'); break;
      case '\f': out.push_back('f'); break;
      default: {
        out += "u00";
        out.push_back(static_cast<char>('0' + (c >> 4)));
        unsigned low = c & 0xf;
        out.push_back(static_cast<char>(low < 10 ? '0' + low : 'A' + low - 10));
      }
    }
  }
  return out;
}

std::tm gmt(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  return tm;
}

std::string printf(const char* format, auto... args) {
  char buffer[128];
  int n = std::snprintf(buffer, sizeof buffer, format, args...);
  return std::string(buffer, n > 0 ? static_cast<size_t>(n) : 0);
}

}  // namespace

void sortAutoindexEntries(std::vector<AutoindexEntry>& entries) {
  std::sort(entries.begin(), entries.end(), [](const AutoindexEntry& a, const AutoindexEntry& b) {
    if (a.dir != b.dir) return a.dir;
    return std::strcmp(a.name.c_str(), b.name.c_str()) < 0;
  });
}

std::string renderAutoindexHtml(std::string_view uri, const std::vector<AutoindexEntry>& entries,
                                bool exactSize, int64_t gmtoffSeconds) {
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::string escapedUri = escapeHtml(uri);
  std::string out = "<html>\r\n<head><title>Index of " + escapedUri +
                    "</title></head>\r\n<body>\r\n<h1>Index of " + escapedUri +
                    "</h1><hr><pre><a href=\"../\">../</a>\r\n";
  for (const AutoindexEntry& e : entries) {
    out += "<a href=\"";
    out += escapeUriComponent(e.name);
    if (e.dir) out.push_back('/');
    out += "\">";
    // Without the charset module's utf-8, nginx counts bytes, not characters.
    size_t len = e.name.size();
    bool needsEscape = escapeHtml(e.name).size() != e.name.size();
    if (needsEscape) {
      out += escapeHtml(std::string_view(e.name).substr(0, len > kNameLen ? kNameLen - 3 : len));
    } else {
      out += std::string_view(e.name).substr(0, std::min(len, kNameLen));
      if (len > kNameLen) out.resize(out.size() - 3);
    }
    if (len > kNameLen) {
      out += "..&gt;</a>";
    } else {
      if (e.dir && kNameLen > len) {
        out.push_back('/');
        ++len;
      }
      out += "</a>";
      if (kNameLen > len) out.append(kNameLen - len, ' ');
    }
    out.push_back(' ');
    std::tm tm = gmt(e.mtime + gmtoffSeconds);
    out += printf("%02d-%s-%d %02d:%02d ", tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900,
                  tm.tm_hour, tm.tm_min);
    if (exactSize) {
      out += e.dir ? std::string("                  -")
                   : printf("%19lld", static_cast<long long>(e.size));
    } else if (e.dir) {
      out += "      -";
    } else {
      int64_t length = e.size;
      int64_t size;
      char scale = 0;
      constexpr int64_t kG = 1024 * 1024 * 1024, kM = 1024 * 1024;
      if (length > kG - 1) {
        size = length / kG;
        if (length % kG > kG / 2 - 1) ++size;
        scale = 'G';
      } else if (length > kM - 1) {
        size = length / kM;
        if (length % kM > kM / 2 - 1) ++size;
        scale = 'M';
      } else if (length > 9999) {
        size = length / 1024;
        if (length % 1024 > 511) ++size;
        scale = 'K';
      } else {
        size = length;
      }
      out += scale ? printf("%6lld%c", static_cast<long long>(size), scale)
                   : printf(" %6lld", static_cast<long long>(size));
    }
    out += "\r\n";
  }
  out += "</pre><hr></body>\r\n</html>\r\n";
  return out;
}

std::string renderAutoindexXml(const std::vector<AutoindexEntry>& entries) {
  std::string out = "<?xml version=\"1.0\"?>\r\n<list>\r\n";
  for (const AutoindexEntry& e : entries) {
    const char* type = e.dir ? "directory" : e.file ? "file" : "other";
    std::tm tm = gmt(e.mtime);
    out += std::string("<") + type + " mtime=\"" +
           printf("%4d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (e.file) out += "\" size=\"" + std::to_string(e.size);
    out += "\">" + escapeHtml(e.name) + "</" + type + ">\r\n";
  }
  out += "</list>\r\n";
  return out;
}

std::string renderAutoindexJson(const std::vector<AutoindexEntry>& entries,
                                const std::string* callback) {
  std::string out;
  if (callback) out += "/* callback */\r\n" + *callback + "(";
  out += "[";
  for (const AutoindexEntry& e : entries) {
    out += "\r\n{ \"name\":\"" + escapeJson(e.name) + "\", \"type\":\"";
    out += e.dir ? "directory" : e.file ? "file" : "other";
    out += "\", \"mtime\":\"" + formatHttpDate(static_cast<std::time_t>(e.mtime));
    if (e.file) {
      out += "\", \"size\":" + std::to_string(e.size);
    } else {
      out += "\"";
    }
    out += " },";
  }
  if (!entries.empty()) out.pop_back();  // the last comma
  out += "\r\n]";
  if (callback) out += ");";
  return out;
}

std::optional<std::string> jsonpCallback(std::string_view args, std::string& error) {
  // ngx_http_arg: the first "callback=" argument, name compared caselessly.
  std::optional<std::string_view> value;
  while (!args.empty()) {
    size_t amp = args.find('&');
    std::string_view pair = args.substr(0, amp);
    args = amp == std::string_view::npos ? std::string_view() : args.substr(amp + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = pair.substr(0, eq);
    if (key.size() == 8 && std::equal(key.begin(), key.end(), "callback", [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == b;
        })) {
      value = pair.substr(eq + 1);
      break;
    }
  }
  if (!value) return std::string();
  if (value->size() > 128) {
    error = "client sent too long callback name: \"" + std::string(*value) + "\"";
    return std::nullopt;
  }
  for (char ch : *value) {
    char c = static_cast<char>(ch | 0x20);
    if ((c >= 'a' && c <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.') continue;
    error = "client sent invalid callback name: \"" + std::string(*value) + "\"";
    return std::nullopt;
  }
  return std::string(*value);
}

std::string_view autoindexContentType(config::AutoindexFormat format) {
  switch (format) {
    case config::AutoindexFormat::kJson: return "application/json";
    case config::AutoindexFormat::kJsonp: return "application/javascript";
    case config::AutoindexFormat::kXml: return "text/xml; charset=utf-8";
    case config::AutoindexFormat::kHtml: break;
  }
  return "text/html";
}

int readAutoindexDirectory(const std::string& path, std::vector<AutoindexEntry>& entries) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return errno;
  std::string base = path;
  if (base.empty() || base.back() != '/') base.push_back('/');
  while (true) {
    errno = 0;
    dirent* d = ::readdir(dir);
    if (d == nullptr) {
      if (errno != 0) {
        int error = errno;
        logCritical("readdir() \"" + path + "\" failed (" + std::to_string(error) + ": " +
                    std::strerror(error) + ")");
      }
      break;
    }
    if (d->d_name[0] == '.') continue;
    std::string file = base + d->d_name;
    struct stat st{};
    if (::stat(file.c_str(), &st) != 0) {
      int error = errno;
      if (error != ENOENT && error != ELOOP) {
        logCritical("stat() \"" + file + "\" failed (" + std::to_string(error) + ": " +
                    std::strerror(error) + ")");
        continue;
      }
      if (::lstat(file.c_str(), &st) != 0) continue;
    }
    AutoindexEntry e;
    e.name = d->d_name;
    e.dir = S_ISDIR(st.st_mode);
    e.file = S_ISREG(st.st_mode);
    e.mtime = st.st_mtime;
    e.size = st.st_size;
    entries.push_back(std::move(e));
  }
  ::closedir(dir);
  sortAutoindexEntries(entries);
  return 0;
}

}  // namespace portico::http
